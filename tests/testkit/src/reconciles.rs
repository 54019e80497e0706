//! Which Environments the operator under test reconciled, read from its
//! own `reconcile` tracing spans (opened once the caches have listed), so
//! a test can tell "nothing was written" from "nothing ran".
//!
//! The recorder is installed once per test process as the global tracing
//! subscriber, together with the log output tests show with `--no-capture`
//! and `RUST_LOG`; tests tell their Environments apart by namespace.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// The target of the Environment reconciler's spans.
const TARGET: &str = "hoist::controller::environment";

static RECONCILED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

fn recorded() -> &'static Mutex<Vec<String>> {
    RECONCILED.get_or_init(Default::default)
}

/// Installs the recorder (and the test log) unless already installed.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let log = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::EnvFilter::from_default_env());
        let subscriber = tracing_subscriber::registry().with(Recorder).with(log);
        // Another subscriber installed first (by a test of its own) wins.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// A mark to count reconciles from: how many of each were seen by now.
#[derive(Debug, Clone)]
pub struct Mark(Vec<String>);

impl Mark {
    pub fn now() -> Self {
        Mark(recorded().lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The Environments of `namespace` reconciled since the mark, by name.
    pub fn since(&self, namespace: &str) -> BTreeSet<String> {
        let prefix = format!("{namespace}/");
        let all = recorded().lock().unwrap_or_else(|p| p.into_inner());
        all[self.0.len().min(all.len())..]
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

struct Recorder;

#[derive(Default)]
struct Fields {
    name: Option<String>,
    namespace: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "name" => self.name = Some(value.to_string()),
            "namespace" => self.namespace = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, text.trim_matches('"'));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let metadata = attributes.metadata();
        if metadata.name() != "reconcile" || metadata.target() != TARGET {
            return;
        }
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        if let (Some(namespace), Some(name)) = (fields.namespace, fields.name) {
            recorded()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{namespace}/{name}"));
        }
    }
}
