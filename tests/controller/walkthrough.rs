//! The README's "Try it on a cluster", run as written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hoist::api::Phase;
use hoist_testkit::cluster::TestCluster;
use hoist_testkit::example::{ExampleFile, apply_server_side, into_namespaces, shop_cluster};
use hoist_testkit::reconciles;
use hoist_testkit::registry::push_multi;
use serde_json::json;

use super::{Scenario, readme};

/// The people of the example's RBAC and their groups: carol asks for
/// Promotions, alice (staff) and dave (client) approve them.
const PEOPLE: [(&str, &[&str]); 3] = [("carol", &[]), ("alice", &["staff"]), ("dave", &["client"])];

/// What the example names its images; the test's are pushed elsewhere.
const EXAMPLE_REGISTRY: &str = "registry.example.com/shop";

/// The README's section "Try it on a cluster": the cluster example applied
/// file by file as the user each names, shop 1.4.2 promoted dev → staging →
/// prod by carol and approved by alice and dave, shop 1.5.0 after it, and a
/// rollback to 1.4.2; each `kubectl hoist` command is the `kubectl-hoist`
/// binary, with the kubeconfig of the person who runs it. Each block after
/// `<!-- walkthrough:NAME -->` must be what the commands printed, apart
/// from what differs from run to run (see `readme::check`);
/// `HOIST_UPDATE_README=1` writes this run's instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_runs_as_the_readme_shows() {
    reconciles::install();
    let cluster = TestCluster::new().await.expect("test cluster");
    let tenant = cluster.namespace().to_string();
    // The example's namespaces, as this test's (removed when it ends).
    let mut names = BTreeMap::from([("shop", tenant.clone())]);
    let mut stages = BTreeMap::new();
    for (stage, example) in [
        ("dev", "shop-dev"),
        ("staging", "shop-staging"),
        ("prod", "shop-prod"),
    ] {
        let namespace = cluster
            .extra_namespace(example, &[])
            .await
            .expect("stage namespace");
        names.insert(example, namespace.clone());
        stages.insert(stage, namespace);
    }
    let admin = cluster.admin_kubeconfig_file().expect("the admin's kubeconfig");
    let kubeconfigs: BTreeMap<&str, PathBuf> = PEOPLE
        .iter()
        .map(|(person, groups)| {
            let file = cluster
                .user_kubeconfig_file(person, groups)
                .expect("a person's kubeconfig");
            (*person, file)
        })
        .collect();
    let mut scenario = Scenario {
        cluster,
        stages,
        operator: None,
        more_registries: Vec::new(),
        allowed_destinations: Vec::new(),
    };
    // What is this run's own, and how the README shows it.
    let mut own: Vec<(String, String)> = names
        .iter()
        .map(|(example, namespace)| (namespace.clone(), example.to_string()))
        .collect();

    let run = |person: Option<&'static str>, args: Vec<&str>| {
        let person = person.map(|person| (person, kubeconfigs[person].clone()));
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        let (admin, tenant) = (admin.clone(), tenant.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let person = person.as_ref().map(|(person, file)| (*person, file.as_path()));
            readme::kubectl_hoist(&admin, person, &tenant, &args).await
        }
    };
    let mut blocks: Vec<(&'static str, String)> = Vec::new();

    let mut files = shop_cluster();
    let next_release = files.pop().expect("the example's last file: the next release");
    let mut applied = String::new();
    for file in &files {
        applied += &apply(&scenario, &names, file, &mut own).await;
    }
    blocks.push(("apply", applied));
    scenario.start().await;

    let mut promoted = String::new();
    for stage in ["dev", "staging", "prod"] {
        let name = format!("shop-1.4.2-{stage}");
        promoted += &run(
            Some("carol"),
            vec!["promote", "shop-1.4.2", stage, "--name", &name],
        )
        .await;
        let phase = if stage == "prod" {
            Phase::Waiting
        } else {
            Phase::Succeeded
        };
        scenario.wait_phase(&name, phase).await;
    }
    blocks.push(("promote", promoted));
    blocks.push(("why-waiting", run(None, vec!["why", "shop-1.4.2-prod"]).await));
    let mut approved = String::new();
    for approver in ["alice", "dave"] {
        approved += &run(Some(approver), vec!["approve", "shop-1.4.2-prod"]).await;
    }
    blocks.push(("approve", approved));
    scenario.wait_phase("shop-1.4.2-prod", Phase::Succeeded).await;
    blocks.push(("status", run(None, vec!["status", "prod"]).await));

    let mut next = apply(&scenario, &names, &next_release, &mut own).await;
    for stage in ["dev", "staging", "prod"] {
        let name = format!("shop-1.5.0-{stage}");
        next += &run(
            Some("carol"),
            vec!["promote", "shop-1.5.0", stage, "--name", &name],
        )
        .await;
        if stage == "prod" {
            scenario.wait_phase(&name, Phase::Waiting).await;
            for approver in ["alice", "dave"] {
                next += &run(Some(approver), vec!["approve", &name]).await;
            }
        }
        scenario.wait_phase(&name, Phase::Succeeded).await;
    }
    blocks.push(("next-release", next));
    blocks.push((
        "changes",
        run(None, vec!["changes", "prod", "--application", "shop"]).await,
    ));

    let mut rollback = run(Some("carol"), vec!["rollback", "prod", "--application", "shop"]).await;
    let promotion = readme::rollback_promotion(&rollback);
    scenario.wait_phase(&promotion, Phase::Waiting).await;
    for approver in ["alice", "dave"] {
        rollback += &run(Some(approver), vec!["approve", &promotion]).await;
    }
    scenario.wait_phase(&promotion, Phase::Succeeded).await;
    blocks.push(("rollback", rollback));
    let mut after = run(None, vec!["status", "prod"]).await;
    after += &run(None, vec!["why", &promotion]).await;
    blocks.push(("after-rollback", after));
    scenario.stop().await;

    readme::check("walkthrough", "walkthrough", &blocks, &own);
}

/// Applies one file of the cluster example server-side as the user it
/// names, in this test's namespaces, and returns the `kubectl apply` line
/// the README shows for it. Two things differ from the file, because the
/// test's images are not runnable: each Artifact names images pushed to
/// the test registry for its version (their repository is recorded in
/// `own`, shown as the example's), and the Deployments run no pods.
async fn apply(
    scenario: &Scenario,
    names: &BTreeMap<&str, String>,
    file: &ExampleFile,
    own: &mut Vec<(String, String)>,
) -> String {
    let cluster = &scenario.cluster;
    let client = match &file.user {
        Some(user) => cluster.user_client(user, &[]).expect("user's client"),
        None => cluster.client(),
    };
    for document in &file.documents {
        let mut document = into_namespaces(document.clone(), names);
        match document["kind"].as_str() {
            Some("Artifact") => {
                let version = document["spec"]["version"]
                    .as_str()
                    .expect("an Artifact's version")
                    .to_string();
                let pushed = push_multi("shop", &[("backend", &version), ("frontend", &version)])
                    .await
                    .expect("push images");
                for image in document["spec"]["images"]
                    .as_array_mut()
                    .expect("an Artifact's images")
                {
                    let component = image["component"].as_str().expect("a component");
                    let reference = &pushed[component].reference;
                    let repository = reference
                        .strip_suffix(&format!("/{component}:{version}"))
                        .expect("pushed as <repository>/<component>:<version>");
                    own.push((repository.to_string(), EXAMPLE_REGISTRY.to_string()));
                    image["image"] = json!(reference);
                }
            }
            Some("Deployment") => document["spec"]["replicas"] = json!(0),
            _ => {}
        }
        apply_server_side(&client, &document)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{} {} in {} applied as {}: {error}",
                    document["kind"],
                    document["metadata"]["name"],
                    file.name,
                    file.user.as_deref().unwrap_or("the admin")
                )
            });
    }
    let as_user = file
        .user
        .as_ref()
        .map(|user| format!(" --kubeconfig {user}.kubeconfig"))
        .unwrap_or_default();
    format!(
        "$ kubectl apply --server-side -f {}{as_user}\n",
        Path::new("deploy/examples/shop-cluster")
            .join(&file.name)
            .display()
    )
}
