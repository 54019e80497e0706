//! One way for every integration test to get a Kubernetes API: a real
//! cluster when `HOIST_TEST_KUBECONFIG` names a kubeconfig, otherwise the
//! in-process API stand-in. Either way the test gets a fresh namespace, the
//! Hoist CRDs from `crds/` installed, and a client that counts the requests
//! it makes (so "this reconcile wrote nothing" can be asserted against a
//! real cluster too).
//!
//! Against a real cluster nothing may hang and nothing may be left behind:
//! every request of the test client has a timeout, a refused CRD fails the
//! test at once with the API server's message, and the test's namespaces are
//! deleted when the [`TestCluster`] is dropped, also when the test panicked,
//! within [`CLEANUP_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_standin::StandIn;

use crate::delay::{DelayLayer, Slowness};
use tower::util::MapRequestLayer;

/// The environment variable naming a kubeconfig of a real cluster.
pub const KUBECONFIG_VAR: &str = "HOIST_TEST_KUBECONFIG";
/// The field manager the test helpers write with.
const TEST_MANAGER: &str = "hoist-tests";
/// How long a test client waits to connect to the API server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request of a test client may wait for the API server to
/// send or take its next bytes; longer than any wait a test makes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long removing a test's namespaces may take before the test gives up
/// and names those left behind.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the API server may take to establish the CRDs.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The kubeconfig of a real cluster.
    kubeconfig: Option<PathBuf>,
    client: Client,
    namespace: String,
    extra_namespaces: Mutex<Vec<String>>,
    standin: Option<StandIn>,
}

impl TestCluster {
    /// Connects (see the module docs), installs the CRDs and creates a fresh
    /// namespace.
    pub async fn new() -> Result<Self> {
        match std::env::var_os(KUBECONFIG_VAR) {
            Some(path) => Self::from_kubeconfig(Path::new(&path))
                .await
                .with_context(|| format!("{KUBECONFIG_VAR}={}", Path::new(&path).display())),
            None => {
                let standin = StandIn::start().await.context("starting the API stand-in")?;
                Self::connect(standin.config(), Some(standin)).await
            }
        }
    }

    /// The cluster of the kubeconfig at `path` (its current context), as with
    /// `HOIST_TEST_KUBECONFIG`: its namespaces are deleted on drop.
    pub async fn from_kubeconfig(path: &Path) -> Result<Self> {
        let kubeconfig = Kubeconfig::read_from(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("building a client config from {}", path.display()))?;
        let mut cluster = Self::connect(config, None).await?;
        cluster.kubeconfig = Some(path.to_path_buf());
        Ok(cluster)
    }

    async fn connect(config: Config, standin: Option<StandIn>) -> Result<Self> {
        let crds = read_crds(&crds_dir())?;
        let config = with_timeouts(config);
        let client = Client::try_from(config.clone()).context("creating a client")?;
        let version = client.apiserver_version().await.with_context(|| {
            format!(
                "cannot reach the API server at {} (GET /version)",
                config.cluster_url
            )
        })?;
        install_crds(&client, &crds).await.with_context(|| {
            format!(
                "installing the CRDs of {} on Kubernetes {}",
                crds_dir().display(),
                version.git_version
            )
        })?;
        let namespace = create_namespace(&client, "hoist-test", &[]).await?;
        Ok(Self {
            config,
            kubeconfig: None,
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
        self.delayed_client(|_, _| None)
    }

    /// A counted client (see [`TestCluster::counted_client`]) whose requests
    /// picked by `slowness` are held back before they are sent, as over a
    /// slow network.
    pub fn delayed_client(&self, slowness: Slowness) -> Result<(Client, RequestCounter)> {
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
        let client = ClientBuilder::try_from(self.operator_config())
            .context("creating a counted client")?
            .with_layer(&DelayLayer(slowness))
            .with_layer(&layer)
            .build();
        Ok((client, counter))
    }

    /// A client for the code under test acting as `user`, through
    /// impersonation (the kubeconfig's user needs the `impersonate` verb,
    /// as a cluster admin has). A user nobody bound a role to may do
    /// nothing. The stand-in has no authorization and ignores it.
    pub fn impersonating_client(&self, user: &str) -> Result<Client> {
        let mut config = self.operator_config();
        config.auth_info.impersonate = Some(user.to_string());
        Client::try_from(config).context("creating an impersonating client")
    }

    /// A kubeconfig file for a process of the code under test (`hoist
    /// controller`): the real cluster's own, or one for the stand-in
    /// written to a temporary file.
    pub fn kubeconfig_file(&self) -> Result<PathBuf> {
        if let Some(path) = &self.kubeconfig {
            return Ok(path.clone());
        }
        let standin = self
            .standin
            .as_ref()
            .context("neither a cluster nor a stand-in")?;
        let path = std::env::temp_dir().join(format!("{}.kubeconfig", self.namespace));
        std::fs::write(&path, standin.kubeconfig_yaml("hoist-operator"))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The configuration of clients given to the code under test.
    fn operator_config(&self) -> Config {
        // No read timeout for the code under test: its watches stay silent
        // for minutes (kube-runtime's watcher has an idle timeout of its
        // own), and a read timeout would only break them. The tests' waits
        // bound how long a test waits for the operator.
        let mut config = self.config.clone();
        config.read_timeout = None;
        config
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
    /// goes away), also when the test panicked. `Drop` cannot await, and the
    /// test's own client cannot be used here: its connection worker runs on
    /// the test's runtime, which is blocked in this very call. So a fresh
    /// client on a thread and runtime of its own does it, and the test waits
    /// for it at most [`CLEANUP_TIMEOUT`].
    fn drop(&mut self) {
        if self.standin.is_some() {
            return;
        }
        let mut namespaces =
            std::mem::take(self.extra_namespaces.get_mut().unwrap_or_else(|p| p.into_inner()));
        namespaces.push(self.namespace.clone());
        if let Err(left) = delete_namespaces(&self.config, namespaces, CLEANUP_TIMEOUT) {
            eprintln!("{left}");
        }
    }
}

/// Namespaces that could not be deleted, and why.
#[derive(Debug)]
struct LeftBehind {
    namespaces: Vec<String>,
    reason: String,
}

impl std::fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cleanup: namespaces left on the cluster ({}); delete them with: kubectl delete namespace {}",
            self.reason,
            self.namespaces.join(" ")
        )
    }
}

/// Deletes `namespaces` through a new client of `config`, on a thread and
/// runtime of its own so that it works from any thread, inside a runtime or
/// not, whatever that runtime is doing. Waits at most `timeout`, then
/// answers what is left (the thread is left to finish or die with the
/// process).
fn delete_namespaces(config: &Config, namespaces: Vec<String>, timeout: Duration) -> Result<(), LeftBehind> {
    let (done, finished) = mpsc::channel();
    let config = config.clone();
    let pending = namespaces.clone();
    let spawned = std::thread::Builder::new()
        .name("hoist-test-cleanup".into())
        .spawn(move || {
            let _ = done.send(delete_on_own_runtime(config, pending, timeout));
        });
    if let Err(error) = spawned {
        return Err(LeftBehind {
            namespaces,
            reason: format!("could not start the cleanup thread: {error}"),
        });
    }
    match finished.recv_timeout(timeout) {
        Ok(outcome) => outcome,
        Err(_) => Err(LeftBehind {
            namespaces,
            reason: format!("the API server did not answer within {timeout:?}"),
        }),
    }
}

fn delete_on_own_runtime(
    config: Config,
    namespaces: Vec<String>,
    timeout: Duration,
) -> Result<(), LeftBehind> {
    let left = |namespaces: Vec<String>, reason: String| Err(LeftBehind { namespaces, reason });
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return left(namespaces, format!("could not start a runtime: {error}")),
    };
    runtime.block_on(async move {
        let client = match Client::try_from(config) {
            Ok(client) => client,
            Err(error) => return left(namespaces, format!("could not create a client: {error}")),
        };
        let api: Api<Namespace> = Api::all(client);
        let deletes = futures::future::join_all(namespaces.iter().map(|namespace| {
            let api = api.clone();
            async move {
                match api.delete(namespace, &DeleteParams::background()).await {
                    Ok(_) => None,
                    Err(kube::Error::Api(status)) if status.code == 404 => None,
                    Err(error) => Some(format!("{namespace}: {error}")),
                }
            }
        }));
        let Ok(outcomes) = tokio::time::timeout(timeout, deletes).await else {
            return left(
                namespaces,
                format!("the API server did not answer within {timeout:?}"),
            );
        };
        let (failed, errors): (Vec<String>, Vec<String>) = namespaces
            .into_iter()
            .zip(outcomes)
            .filter_map(|(namespace, error)| error.map(|error| (namespace, error)))
            .unzip();
        if failed.is_empty() {
            Ok(())
        } else {
            left(failed, errors.join("; "))
        }
    })
}

/// The test client's timeouts (see [`REQUEST_TIMEOUT`]), so that no request
/// hangs a test against an API server that stopped answering.
fn with_timeouts(mut config: Config) -> Config {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(REQUEST_TIMEOUT);
    config.write_timeout = Some(REQUEST_TIMEOUT);
    // The read timeout counts from the request, not from when its pooled
    // connection went idle.
    config.reset_reader_on_write = true;
    config
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

/// Applies the CRDs and waits until the API server serves them. A CRD the
/// API server refuses, or whose names it does not accept, fails at once with
/// the API server's own message.
async fn install_crds(client: &Client, crds: &[CustomResourceDefinition]) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(TEST_MANAGER).force();
    for crd in crds {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        let mut crd = crd.clone();
        crd.metadata.managed_fields = None;
        match api.patch(&name, &params, &Patch::Apply(&crd)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) => bail!(
                "the API server refused CRD {name}: {} ({} {})",
                status.message,
                status.code,
                status.reason
            ),
            Err(error) => return Err(error).with_context(|| format!("applying CRD {name}")),
        }
        let settled = kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            |crd: Option<&CustomResourceDefinition>| {
                crd.is_some_and(|crd| {
                    condition(crd, "Established") == Some("True") || names_refused(crd).is_some()
                })
            },
        );
        let crd = tokio::time::timeout(ESTABLISH_TIMEOUT, settled)
            .await
            .with_context(|| format!("CRD {name} not established within {ESTABLISH_TIMEOUT:?}"))?
            .with_context(|| format!("watching CRD {name}"))?;
        if let Some(message) = crd.as_ref().and_then(names_refused) {
            bail!("the API server did not accept the names of CRD {name}: {message}");
        }
    }
    Ok(())
}

/// The status of a CRD's condition `kind`.
fn condition<'a>(crd: &'a CustomResourceDefinition, kind: &str) -> Option<&'a str> {
    crd.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_ == kind)
        .map(|condition| condition.status.as_str())
}

/// The message of a `NamesAccepted: False` condition (e.g. a plural another
/// CRD already serves).
fn names_refused(crd: &CustomResourceDefinition) -> Option<String> {
    crd.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_ == "NamesAccepted" && condition.status == "False")
        .map(|condition| condition.message.clone().unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL of a server that accepts connections and never answers, like
    /// an API server that hangs.
    fn black_hole() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        url
    }

    /// The URL of a port nothing listens on.
    fn closed_port() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    }

    fn config(url: &str) -> Config {
        with_timeouts(Config::new(url.parse().expect("url")))
    }

    #[tokio::test]
    async fn dropping_a_cluster_whose_api_server_hangs_returns_after_the_cleanup_timeout() {
        let config = config(&black_hole());
        let cluster = TestCluster {
            client: Client::try_from(config.clone()).expect("client"),
            config,
            kubeconfig: None,
            namespace: "hoist-test-unanswered".into(),
            extra_namespaces: Mutex::new(vec!["hoist-dev-unanswered".into()]),
            standin: None,
        };
        let started = std::time::Instant::now();
        drop(cluster);
        let took = started.elapsed();
        assert!(
            (CLEANUP_TIMEOUT..CLEANUP_TIMEOUT + Duration::from_secs(2)).contains(&took),
            "the drop took {took:?}"
        );
    }

    #[test]
    fn cleanup_without_an_answer_names_the_namespaces_left() {
        let left = delete_namespaces(
            &config(&black_hole()),
            vec!["hoist-test-a".into(), "hoist-dev-b".into()],
            Duration::from_millis(500),
        )
        .expect_err("no answer");
        assert_eq!(
            left.to_string(),
            "cleanup: namespaces left on the cluster (the API server did not answer within 500ms); \
             delete them with: kubectl delete namespace hoist-test-a hoist-dev-b"
        );
    }

    #[test]
    fn cleanup_that_cannot_connect_names_the_namespaces_left_and_why() {
        let started = std::time::Instant::now();
        let left = delete_namespaces(
            &config(&closed_port()),
            vec!["hoist-test-a".into(), "hoist-dev-b".into()],
            CLEANUP_TIMEOUT,
        )
        .expect_err("refused");
        assert!(started.elapsed() < CLEANUP_TIMEOUT, "{:?}", started.elapsed());
        assert_eq!(left.namespaces, ["hoist-test-a", "hoist-dev-b"]);
        assert!(
            left.reason.starts_with("hoist-test-a: ") && left.reason.contains("; hoist-dev-b: "),
            "{}",
            left.reason
        );
    }

    #[tokio::test]
    async fn a_refused_crd_fails_at_once_with_the_api_servers_message() {
        let standin = StandIn::start().await.expect("stand-in");
        let client = Client::try_from(with_timeouts(standin.config())).expect("client");
        let crds = read_crds(&crds_dir()).expect("crds");
        let mut broken = serde_json::to_value(&crds[0]).expect("json");
        broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] =
            serde_json::json!([{"rule": "self.("}]);
        let broken: CustomResourceDefinition = serde_json::from_value(broken).expect("a CRD");
        let message = install_crds(&client, &[broken])
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            message.starts_with(
                "the API server refused CRD artifacts.hoist.dev: \
                 CustomResourceDefinition.apiextensions.k8s.io \"artifacts.hoist.dev\" is invalid: \
                 spec.validation.openAPIV3Schema.x-kubernetes-validations[0].rule: Invalid value"
            ) && message.contains("self.(")
                && message.ends_with("(422 Invalid)"),
            "{message}"
        );
    }
}
