//! The acceptance criterion: kube-runtime's watcher, Controller (with a
//! finalizer) and events Recorder work unmodified against the stand-in.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::runtime::watcher;
use kube_standin::{StandIn, Verb};
use serde_json::json;
use tokio::sync::mpsc;

use crate::common::{Widget, widget};

async fn next_watcher_event<S>(stream: &mut S) -> anyhow::Result<watcher::Event<Widget>>
where
    S: futures::Stream<Item = Result<watcher::Event<Widget>, watcher::Error>> + Unpin,
{
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await?;
    Ok(next.ok_or_else(|| anyhow::anyhow!("watcher ended"))??)
}

fn describe(event: &watcher::Event<Widget>) -> (&'static str, String, i32) {
    let (kind, widget) = match event {
        watcher::Event::Apply(widget) => ("Apply", widget),
        watcher::Event::Delete(widget) => ("Delete", widget),
        watcher::Event::InitApply(widget) => ("InitApply", widget),
        watcher::Event::Init => return ("Init", String::new(), 0),
        watcher::Event::InitDone => return ("InitDone", String::new(), 0),
    };
    (
        kind,
        widget.metadata.name.clone().unwrap_or_default(),
        widget.spec.size,
    )
}

#[tokio::test]
async fn watcher_sees_initial_state_then_create_update_delete() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    widgets
        .create(&PostParams::default(), &widget("early", "red", 1))
        .await?;
    let mut stream = watcher(widgets.clone(), watcher::Config::default()).boxed();

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next_watcher_event(&mut stream).await?));
    }
    assert_eq!(
        seen,
        vec![
            ("Init", String::new(), 0),
            ("InitApply", "early".to_owned(), 1),
            ("InitDone", String::new(), 0)
        ]
    );

    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    let size = json!({"spec": {"size": 2}});
    widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&size))
        .await?;
    widgets.delete("w", &DeleteParams::default()).await?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next_watcher_event(&mut stream).await?));
    }
    assert_eq!(
        seen,
        vec![
            ("Apply", "w".to_owned(), 1),
            ("Apply", "w".to_owned(), 2),
            ("Delete", "w".to_owned(), 2)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_their_end() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    widgets
        .create(&PostParams::default(), &widget("early", "red", 1))
        .await?;
    let mut stream = watcher(widgets.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next_watcher_event(&mut stream).await?));
    }
    assert_eq!(
        seen,
        vec![
            ("Init", String::new(), 0),
            ("InitApply", "early".to_owned(), 1),
            ("InitDone", String::new(), 0)
        ]
    );
    assert_eq!(
        server.requests().count(Verb::List, "widgets"),
        0,
        "no list call with streaming lists"
    );
    Ok(())
}

const FINALIZER: &str = "test.hoist.dev/cleanup";

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed")]
struct ReconcileError;

struct Context {
    api: Api<Widget>,
    seen: mpsc::UnboundedSender<(&'static str, String, i32)>,
}

async fn reconcile(
    widget: Arc<Widget>,
    context: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    let seen = context.seen.clone();
    finalizer(&context.api, FINALIZER, widget, |event| async move {
        let (kind, widget) = match event {
            Finalized::Apply(widget) => ("apply", widget),
            Finalized::Cleanup(widget) => ("cleanup", widget),
        };
        let name = widget.metadata.name.clone().unwrap_or_default();
        seen.send((kind, name, widget.spec.size))
            .map_err(|_| ReconcileError)?;
        Ok(Action::await_change())
    })
    .await
}

fn retry(_: Arc<Widget>, _: &kube::runtime::finalizer::Error<ReconcileError>, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

/// The next reconcile outcome that differs from `previous` (a controller may
/// reconcile the same state more than once).
async fn next_distinct(
    receiver: &mut mpsc::UnboundedReceiver<(&'static str, String, i32)>,
    previous: Option<&(&'static str, String, i32)>,
) -> anyhow::Result<(&'static str, String, i32)> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await?;
        let next = next.ok_or_else(|| anyhow::anyhow!("controller stopped"))?;
        if Some(&next) != previous {
            return Ok(next);
        }
    }
}

#[tokio::test]
async fn controller_reconciles_create_update_and_cleans_up_on_delete() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let context = Arc::new(Context {
        api: widgets.clone(),
        seen: sender,
    });
    let controller = Controller::new(widgets.clone(), watcher::Config::default());
    let store = controller.store();
    let running = tokio::spawn(controller.run(reconcile, retry, context).for_each(|_| async {}));

    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    let first = next_distinct(&mut receiver, None).await?;
    assert_eq!(first, ("apply", "w".to_owned(), 1));
    let with_finalizer = widgets.get("w").await?;
    assert_eq!(
        with_finalizer.metadata.finalizers,
        Some(vec![FINALIZER.to_owned()])
    );

    let size = json!({"spec": {"size": 2}});
    widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&size))
        .await?;
    let second = next_distinct(&mut receiver, Some(&first)).await?;
    assert_eq!(second, ("apply", "w".to_owned(), 2));

    widgets.delete("w", &DeleteParams::default()).await?;
    let third = next_distinct(&mut receiver, Some(&second)).await?;
    assert_eq!(third, ("cleanup", "w".to_owned(), 2));

    let reference = kube::runtime::reflector::ObjectRef::<Widget>::new("w").within("default");
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while store.get(&reference).is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the deleted widget left the controller's store");
    assert!(widgets.get_opt("w").await?.is_none());
    running.abort();
    Ok(())
}

#[tokio::test]
async fn recorder_publishes_and_aggregates_events() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    let created = widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    let recorder = Recorder::new(
        server.client(),
        Reporter {
            controller: "hoist".to_owned(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Promoted".to_owned(),
        note: Some("promoted w".to_owned()),
        action: "Promote".to_owned(),
        secondary: None,
    };
    recorder.publish(&event, &created.object_ref(&())).await?;
    recorder.publish(&event, &created.object_ref(&())).await?;

    let events: Api<KubeEvent> = Api::namespaced(server.client(), "default");
    let list = events.list(&ListParams::default()).await?;
    assert_eq!(list.items.len(), 1);
    let stored = &list.items[0];
    assert_eq!(stored.reason.as_deref(), Some("Promoted"));
    assert_eq!(
        stored
            .regarding
            .as_ref()
            .and_then(|regarding| regarding.name.as_deref()),
        Some("w")
    );
    assert_eq!(stored.series.as_ref().map(|series| series.count), Some(2));
    let log = server.requests();
    assert_eq!(
        (
            log.count(Verb::Create, "events.events.k8s.io"),
            log.count(Verb::Patch, "events.events.k8s.io")
        ),
        (1, 1)
    );
    Ok(())
}
