//! One way for every integration test to get a Kubernetes API: a real
//! cluster when `HOIST_TEST_KUBECONFIG` names a kubeconfig, otherwise the
//! in-process API stand-in. Either way the test gets a fresh namespace, the
//! Hoist CRDs from `crds/` installed, and a client that counts the requests
//! it makes (so "this reconcile wrote nothing" can be asserted against a
//! real cluster too).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_standin::StandIn;
use tower::util::MapRequestLayer;

/// The environment variable naming a kubeconfig of a real cluster.
pub const KUBECONFIG_VAR: &str = "HOIST_TEST_KUBECONFIG";
/// The field manager the test helpers write with.
const TEST_MANAGER: &str = "hoist-tests";

/// One HTTP request a test client made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
}

impl Request {
    /// POST, PUT, PATCH and DELETE change state; GET never does.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// A list or watch of a collection rather than a read of one object.
    pub fn is_list_or_watch(&self, collection_path: &str) -> bool {
        self.method == "GET" && self.path == collection_path
    }
}

/// The requests a counted client has made, shared with its clones.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<Vec<Request>>>);

impl RequestCounter {
    fn record(&self, request: Request) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(request);
    }

    /// Everything recorded so far.
    pub fn all(&self) -> Vec<Request> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The writes recorded so far.
    pub fn writes(&self) -> Vec<Request> {
        self.all().into_iter().filter(Request::is_write).collect()
    }

    /// Forgets what was recorded.
    pub fn reset(&self) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

/// A Kubernetes API for one test: a namespace of its own on a real cluster or
/// on a fresh stand-in.
pub struct TestCluster {
    config: Config,
    client: Client,
    namespace: String,
    extra_namespaces: Mutex<Vec<String>>,
    standin: Option<StandIn>,
}

impl TestCluster {
    /// Connects (see the module docs), installs the CRDs and creates a fresh
    /// namespace.
    pub async fn new() -> Result<Self> {
        let crds = read_crds(&crds_dir())?;
        let (config, standin) = match std::env::var_os(KUBECONFIG_VAR) {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(&path)
                    .with_context(|| format!("reading {KUBECONFIG_VAR}={}", Path::new(&path).display()))?;
                let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .context("building a client config from the kubeconfig")?;
                (config, None)
            }
            None => {
                let standin = StandIn::start().await.context("starting the API stand-in")?;
                (standin.config(), Some(standin))
            }
        };
        let client = Client::try_from(config.clone()).context("creating a client")?;
        install_crds(&client, &crds).await?;
        let namespace = create_namespace(&client, "hoist-test", &[]).await?;
        Ok(Self {
            config,
            client,
            namespace,
            extra_namespaces: Mutex::new(Vec::new()),
            standin,
        })
    }

    /// A client of this cluster (requests not counted).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client whose requests are recorded in the returned counter; give it
    /// to the code under test to assert what it did.
    pub fn counted_client(&self) -> Result<(Client, RequestCounter)> {
        let counter = RequestCounter::default();
        let recorder = counter.clone();
        let layer = MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
            recorder.record(Request {
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
                query: request.uri().query().unwrap_or_default().to_string(),
            });
            request
        });
        let client = ClientBuilder::try_from(self.config.clone())
            .context("creating a counted client")?
            .with_layer(&layer)
            .build();
        Ok((client, counter))
    }

    /// The test's own namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The stand-in, when the test is not running against a real cluster.
    /// Tests must not depend on it for their assertions.
    pub fn standin(&self) -> Option<&StandIn> {
        self.standin.as_ref()
    }

    /// Another fresh namespace, with the given labels, removed with the test's
    /// (e.g. a target namespace of another tenant).
    pub async fn extra_namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> Result<String> {
        let name = create_namespace(&self.client, prefix, labels).await?;
        self.extra_namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(name.clone());
        Ok(name)
    }
}

impl Drop for TestCluster {
    /// Removes the test's namespaces from a real cluster (the stand-in simply
    /// goes away). Runs on its own thread and runtime because `Drop` cannot
    /// await, and it must also run when the test panicked.
    fn drop(&mut self) {
        if self.standin.is_some() {
            return;
        }
        let client = self.client.clone();
        let mut namespaces =
            std::mem::take(self.extra_namespaces.get_mut().unwrap_or_else(|p| p.into_inner()));
        namespaces.push(self.namespace.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                let api: Api<Namespace> = Api::all(client);
                for namespace in namespaces {
                    if let Err(error) = api.delete(&namespace, &DeleteParams::background()).await {
                        eprintln!("cleanup: could not delete namespace {namespace}: {error}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// `crds/` at the repository root.
pub fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds")
}

/// Every CustomResourceDefinition in `dir`, in file-name order.
pub fn read_crds(dir: &Path) -> Result<Vec<CustomResourceDefinition>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "yaml"));
    files.sort();
    files
        .iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        })
        .collect()
}

/// Applies the CRDs and waits until the API server serves them.
async fn install_crds(client: &Client, crds: &[CustomResourceDefinition]) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(TEST_MANAGER).force();
    for crd in crds {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        let mut crd = crd.clone();
        crd.metadata.managed_fields = None;
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .with_context(|| format!("CRD {name} not established within 30s"))??;
    }
    Ok(())
}

/// Creates a namespace named `<prefix>-<random>` with the given labels.
async fn create_namespace(client: &Client, prefix: &str, labels: &[(&str, &str)]) -> Result<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{prefix}-{}", &suffix[..8]);
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.clone());
    namespace.metadata.labels = Some(
        labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
    );
    let created = api
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    if created.metadata.name.as_deref() != Some(name.as_str()) {
        bail!("namespace {name} was created as {:?}", created.metadata.name);
    }
    Ok(name)
}

impl TestCluster {
    /// Waits until `name` in the test namespace satisfies `condition`, for at
    /// most `timeout`. On timeout the error shows the object as last seen and
    /// the namespace's recent Events, so a failing test explains itself.
    pub async fn wait_for<K>(
        &self,
        name: &str,
        timeout: Duration,
        condition: impl Fn(&K) -> bool,
    ) -> Result<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        self.wait_for_in(self.namespace(), name, timeout, condition).await
    }

    /// [`TestCluster::wait_for`] in another namespace.
    pub async fn wait_for_in<K>(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        condition: impl Fn(&K) -> bool,
    ) -> Result<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            if let Some(object) = api.get_opt(name).await? {
                if condition(&object) {
                    return Ok(object);
                }
                last = Some(object);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let events = self
            .recent_events()
            .await
            .unwrap_or_else(|error| format!("(events unavailable: {error})"));
        let shown = last
            .map(|object| serde_yaml::to_string(&object).unwrap_or_else(|error| format!("{error}")))
            .unwrap_or_else(|| "(never found)".into());
        bail!(
            "{} {namespace}/{name} did not reach the condition within {timeout:?}\nlast seen:\n{shown}\nrecent events:\n{events}",
            K::kind(&())
        )
    }

    /// The test namespace's Events, oldest first, one line each.
    pub async fn recent_events(&self) -> Result<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), self.namespace());
        let mut events = api.list(&Default::default()).await?.items;
        events.sort_by_key(|event| event.metadata.creation_timestamp.clone());
        Ok(events
            .iter()
            .map(|event| {
                format!(
                    "  {} {} {}: {}",
                    event.type_.as_deref().unwrap_or("?"),
                    event
                        .regarding
                        .as_ref()
                        .and_then(|r| r.name.clone())
                        .unwrap_or_default(),
                    event.reason.as_deref().unwrap_or("?"),
                    event.note.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
