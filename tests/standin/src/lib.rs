//! An in-process stand-in for the Kubernetes API server.
//!
//! It speaks the real REST and watch protocol over HTTP on 127.0.0.1, so the
//! unmodified `kube::Client` and `kube_runtime` machinery run against it.
//! It is a test tool: it is never linked into the `hoist` binary.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//!
//! let server = kube_standin::StandIn::start().await?;
//! let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! # let config_map = ConfigMap::default();
//! config_maps.create(&PostParams::default(), &config_map).await?;
//! assert_eq!(server.requests().count(kube_standin::Verb::Create, "configmaps"), 1);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! What it serves, and where it knowingly differs from a real API server, is
//! described in the crate's `README.md`.

mod admission;
mod auth;
mod cronjobs;
mod daemonsets;
mod deployments;
mod discovery;
mod emulation;
pub mod fieldmanager;
mod jobs;
mod log;
mod meta;
mod rbac;
mod resources;
mod reviews;
mod rollouts;
pub mod schema;
mod selector;
mod server;
mod statefulsets;
mod status;
mod store;
mod watch;
mod workloads;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::{JoinHandle, JoinSet};

pub use auth::MASTERS;
pub use log::{Fault, FaultResponse, PatchType, RequestLog, RequestMatch, RequestRecord, Verb};

use server::{Shared, lock};
use store::{Store, WriteOptions, WriteTarget};

/// The user [`StandIn::client`] and [`StandIn::config`] authenticate as, in
/// [`MASTERS`] (`system:masters`), which may do anything.
pub const ADMIN: &str = "kube-standin-admin";

/// How long connections may take to finish when the server shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding a port on 127.0.0.1 failed")]
    Bind(#[source] std::io::Error),
    #[error("the server URL {url} is not a valid URI")]
    Url {
        url: String,
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    #[error("building a kube client for the stand-in failed")]
    Client(#[source] kube::Error),
    #[error("serializing CustomResourceDefinition {name} failed")]
    SerializeCrd {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("CustomResourceDefinition {name} was refused: {message}")]
    CrdRefused { name: String, message: String },
    #[error("creating the initial {object} failed: {message}")]
    Setup { object: String, message: String },
    #[error("the stand-in's Rollout CustomResourceDefinition (crds/rollouts.yaml) does not parse")]
    RolloutCrd(#[source] serde_yaml::Error),
    #[error("the stand-in has no user {user}; register it with StandInBuilder::user or StandIn::add_user")]
    UnknownUser { user: String },
}

/// Configures a [`StandIn`] before it starts.
#[derive(Debug, Clone)]
pub struct StandInBuilder {
    crds: Vec<CustomResourceDefinition>,
    event_history: usize,
    bookmark_interval: Duration,
    deployment_controller: bool,
    nodes: usize,
    users: Vec<(String, Vec<String>)>,
}

impl Default for StandInBuilder {
    fn default() -> Self {
        StandInBuilder {
            crds: Vec::new(),
            event_history: 10_000,
            bookmark_interval: Duration::from_secs(1),
            deployment_controller: true,
            nodes: daemonsets::DEFAULT_NODES,
            users: vec![(ADMIN.to_owned(), vec![MASTERS.to_owned()])],
        }
    }
}

impl StandInBuilder {
    /// Registers CustomResourceDefinitions at start, as if created through the API.
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// How many changes (across all resources) are kept for watches and
    /// paginated lists; older resourceVersions answer 410 Gone.
    pub fn event_history(mut self, changes: usize) -> Self {
        self.event_history = changes;
        self
    }

    /// How often watches that allow bookmarks receive one.
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Whether the emulated Deployment controller runs (default: yes, as a
    /// cluster has one). Turn it off for tests that write a Deployment's
    /// status by hand and need it to stay as written.
    pub fn deployment_controller(mut self, enabled: bool) -> Self {
        self.deployment_controller = enabled;
        self
    }

    /// How many nodes the emulated DaemonSet controller runs a Pod on
    /// (default 2).
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }

    /// Registers a user in `groups` (and `system:authenticated`), with a
    /// bearer token of its own, as a line of `--token-auth-file` does; get a
    /// client for it with [`StandIn::client_for`]. Registering a name again
    /// replaces its groups.
    pub fn user(mut self, name: impl Into<String>, groups: &[&str]) -> Self {
        self.users.push((
            name.into(),
            groups.iter().map(|group| (*group).to_owned()).collect(),
        ));
        self
    }

    pub async fn start(self) -> Result<StandIn, Error> {
        let mut store = Store::new(self.event_history);
        let now = meta::now();
        let options = setup_write(&now);
        let namespaces = store
            .resources
            .lookup("", "v1", "namespaces")
            .ok_or_else(|| Error::Setup {
                object: "namespaces".to_owned(),
                message: "not served".to_owned(),
            })?;
        for namespace in ["default", "kube-system"] {
            let body =
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            store
                .create(&namespaces, None, body, &options)
                .map_err(|error| Error::Setup {
                    object: format!("namespace {namespace}"),
                    message: error.message,
                })?;
        }
        for (plural, object) in rbac::bootstrap() {
            let name = meta::name(&object).to_owned();
            let resource = store
                .resources
                .lookup(rbac::GROUP, "v1", plural)
                .ok_or_else(|| Error::Setup {
                    object: plural.to_owned(),
                    message: "not served".to_owned(),
                })?;
            store
                .create(&resource, None, object, &options)
                .map_err(|error| Error::Setup {
                    object: format!("{plural} {name}"),
                    message: error.message,
                })?;
        }
        let crd_resource = crd_resource(&store)?;
        for crd in self.crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let body = serde_json::to_value(&crd).map_err(|source| Error::SerializeCrd {
                name: name.clone(),
                source,
            })?;
            store
                .create(&crd_resource, None, body, &options)
                .map_err(|error| Error::CrdRefused {
                    name,
                    message: error.message,
                })?;
        }

        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(Error::Bind)?;
        let address = listener.local_addr().map_err(Error::Bind)?;
        let url = format!("http://{address}");
        let uri: hyper::Uri = url.parse().map_err(|source| Error::Url {
            url: url.clone(),
            source,
        })?;
        let mut users = auth::Users::default();
        for (name, groups) in &self.users {
            users.add(name, groups);
        }
        let mut config = kube::Config::new(uri);
        config.auth_info.token = users.token(ADMIN).map(|token| token.to_owned().into());
        let client = kube::Client::try_from(config.clone()).map_err(Error::Client)?;
        let (shutdown, shutdown_signal) = signal::channel(false);
        let shared = Arc::new(Shared {
            store: Arc::new(Mutex::new(store)),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(log::Faults::default()),
            bookmark_interval: self.bookmark_interval,
            address: address.to_string(),
            shutdown: shutdown_signal.clone(),
            users: Mutex::new(users),
        });
        if self.deployment_controller {
            lock(&shared.store).run_deployment_controller(Arc::downgrade(&shared.store));
            lock(&shared.store).run_workload_controllers(Arc::downgrade(&shared.store), self.nodes);
        }
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), shutdown_signal));
        Ok(StandIn {
            inner: Arc::new(Inner {
                shared,
                url,
                config,
                client,
                shutdown,
                task: Mutex::new(Some(task)),
            }),
        })
    }
}

/// How the stand-in writes the objects it sets up itself.
fn setup_write(now: &str) -> WriteOptions<'_> {
    WriteOptions {
        manager: "kube-standin",
        now,
        target: WriteTarget::Main,
        fields_recorded: false,
        require_resource_version: false,
        admission: None,
    }
}

fn crd_resource(store: &Store) -> Result<Arc<resources::ResourceInfo>, Error> {
    store
        .resources
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .ok_or_else(|| Error::Setup {
            object: "customresourcedefinitions".to_owned(),
            message: "not served".to_owned(),
        })
}

/// A running stand-in API server. Clones share the server; it stops on
/// [`StandIn::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct StandIn {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    url: String,
    config: kube::Config,
    client: kube::Client,
    shutdown: signal::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The server task sees the signal and closes its connections.
        let _ = self.shutdown.send(true);
    }
}

impl StandIn {
    /// Starts with the built-in resources and the namespaces `default` and `kube-system`.
    pub async fn start() -> Result<StandIn, Error> {
        StandInBuilder::default().start().await
    }

    /// Starts with these CustomResourceDefinitions already registered.
    pub async fn start_with_crds(crds: Vec<CustomResourceDefinition>) -> Result<StandIn, Error> {
        StandInBuilder::default().crds(crds).start().await
    }

    pub fn builder() -> StandInBuilder {
        StandInBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// Installs Argo Rollouts as far as the stand-in goes: the project's
    /// Rollout CustomResourceDefinition (`crds/rollouts.yaml`, kept if
    /// already there) and the emulated Rollout controller (see
    /// `README.md`). Calling it again changes nothing.
    pub fn install_argo_rollouts(&self) -> Result<(), Error> {
        let crd: serde_json::Value =
            serde_yaml::from_str(include_str!("../crds/rollouts.yaml")).map_err(Error::RolloutCrd)?;
        let name = meta::name(&crd).to_owned();
        let now = meta::now();
        let options = setup_write(&now);
        let mut store = lock(&self.inner.shared.store);
        let crds = crd_resource(&store)?;
        if store.get(&crds, None, &name).is_none() {
            store
                .create(&crds, None, crd, &options)
                .map_err(|error| Error::CrdRefused {
                    name,
                    message: error.message,
                })?;
        }
        store.run_rollout_controller(Arc::downgrade(&self.inner.shared.store));
        Ok(())
    }

    /// A client configuration for this server as [`ADMIN`] (default
    /// namespace `default`).
    pub fn config(&self) -> kube::Config {
        self.inner.config.clone()
    }

    /// A client of [`ADMIN`], who may do anything.
    pub fn client(&self) -> kube::Client {
        self.inner.client.clone()
    }

    /// Registers a user while the server runs (see [`StandInBuilder::user`])
    /// and answers its bearer token.
    pub fn add_user(&self, name: &str, groups: &[&str]) -> String {
        let groups: Vec<String> = groups.iter().map(|group| (*group).to_owned()).collect();
        lock(&self.inner.shared.users).add(name, &groups)
    }

    /// The bearer token of a registered user.
    pub fn token(&self, user: &str) -> Option<String> {
        lock(&self.inner.shared.users).token(user).map(str::to_owned)
    }

    fn known_token(&self, user: &str) -> Result<String, Error> {
        self.token(user).ok_or_else(|| Error::UnknownUser {
            user: user.to_owned(),
        })
    }

    /// A client configuration authenticating as a registered user.
    pub fn config_for(&self, user: &str) -> Result<kube::Config, Error> {
        let mut config = self.inner.config.clone();
        config.auth_info.token = Some(self.known_token(user)?.into());
        Ok(config)
    }

    /// A client authenticating as a registered user.
    pub fn client_for(&self, user: &str) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config_for(user)?).map_err(Error::Client)
    }

    /// A kubeconfig for a client in another process (such as `hoist
    /// controller`) authenticating as a registered user, whose requests are
    /// logged with that name as [`RequestRecord::user`].
    pub fn kubeconfig_yaml(&self, user: &str) -> Result<String, Error> {
        let token = self.known_token(user)?;
        Ok(format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: standin\n\
             clusters:\n- name: standin\n  cluster:\n    server: {url}\n\
             users:\n- name: standin-user\n  user:\n    token: {token}\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin-user\n    namespace: default\n",
            url = self.inner.url,
        ))
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.inner.shared.store).resource_version()
    }

    /// A snapshot of the requests served so far.
    pub fn requests(&self) -> RequestLog {
        RequestLog::new(lock(&self.inner.shared.log).clone())
    }

    pub fn reset_requests(&self) {
        lock(&self.inner.shared.log).clear();
    }

    /// Adds a fault; the first fault matching a request applies to it.
    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.inner.shared.faults).add(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.shared.faults).clear();
    }

    /// Stops accepting, ends watches and waits for connections to close.
    pub async fn shutdown(self) {
        let _ = self.inner.shutdown.send(true);
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            // A panicked server task has nothing left to clean up.
            let _ = task.await;
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: signal::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // As Go's net package does for every API server connection:
                // without it, a watch event written while the previous one
                // is unacknowledged waits for the client's delayed ACK.
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let mut connection_shutdown = shutdown.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(server::handle(shared, request).await) }
                    });
                    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = connection_shutdown.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}
