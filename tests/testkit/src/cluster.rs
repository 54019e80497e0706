//! One way for every integration test to get a Kubernetes API: a real
//! cluster when `HOIST_TEST_KUBECONFIG` names a kubeconfig, otherwise the
//! in-process API stand-in. Either way the test gets a fresh namespace, the
//! Hoist CRDs from `crds/` installed, an admin client, clients that act as
//! the operator with exactly the chart's RBAC rules (and count the requests
//! they make, so "this reconcile wrote nothing" can be asserted against a
//! real cluster too), and clients for any test user.
//!
//! Every identity but the admin is the admin's client impersonating it
//! (`Impersonate-User`, `Impersonate-Group`), on the stand-in as on a real
//! cluster, so the API server authorizes each request of the code under test
//! as it would authorize the real operator's or user's.
//!
//! Against a real cluster nothing may hang and nothing may be left behind:
//! every request of the test client has a timeout, a refused CRD fails the
//! test at once with the API server's message, and the test's namespaces
//! and its cluster-scoped RBAC objects are deleted when the [`TestCluster`]
//! is dropped, also when the test panicked, within [`CLEANUP_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
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
/// The label opting a namespace in for a tenant (the namespace of that name on the hub).
const TENANT_LABEL: &str = "hoist.dev/tenant";
/// The operator's ServiceAccount name in the test namespace, as the chart names it.
const OPERATOR_SERVICE_ACCOUNT: &str = "hoist";

/// One HTTP request a test client made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
}

impl Request {
    /// POST, PUT, PATCH and DELETE change state; GET never does, nor does
    /// a POST of a review (`selfsubjectreviews`, `*accessreviews`): the API
    /// server answers it and stores nothing.
    pub fn is_write(&self) -> bool {
        let review = self.method == "POST"
            && (self.path.starts_with("/apis/authentication.k8s.io/")
                || self.path.starts_with("/apis/authorization.k8s.io/"))
            && self.path.ends_with("reviews");
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") && !review
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

/// A cluster-scoped object a test created, deleted with its namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leftover {
    Namespace(String),
    ClusterRoleBinding(String),
    ClusterRole(String),
    ValidatingAdmissionPolicyBinding(String),
    ValidatingAdmissionPolicy(String),
}

impl Leftover {
    /// The `kubectl delete` resource type.
    fn kind(&self) -> &'static str {
        match self {
            Leftover::Namespace(_) => "namespace",
            Leftover::ClusterRoleBinding(_) => "clusterrolebinding",
            Leftover::ClusterRole(_) => "clusterrole",
            Leftover::ValidatingAdmissionPolicyBinding(_) => "validatingadmissionpolicybinding",
            Leftover::ValidatingAdmissionPolicy(_) => "validatingadmissionpolicy",
        }
    }

    fn name(&self) -> &str {
        match self {
            Leftover::Namespace(name)
            | Leftover::ClusterRoleBinding(name)
            | Leftover::ClusterRole(name)
            | Leftover::ValidatingAdmissionPolicyBinding(name)
            | Leftover::ValidatingAdmissionPolicy(name) => name,
        }
    }
}

/// A Kubernetes API for one test: a namespace of its own on a real cluster or
/// on a fresh stand-in.
pub struct TestCluster {
    /// The admin's user name, as the API server authenticates it.
    admin: String,
    /// The admin's configuration (the kubeconfig's user on a real cluster).
    config: Config,
    /// The kubeconfig of a real cluster.
    kubeconfig: Option<PathBuf>,
    client: Client,
    namespace: String,
    extra_namespaces: Mutex<Vec<String>>,
    /// The operator's ClusterRole and ClusterRoleBinding, and admission
    /// policies a test installed under names of its own.
    cluster_objects: Mutex<Vec<Leftover>>,
    /// Kubeconfig files written for processes of the code under test.
    files: Mutex<Vec<PathBuf>>,
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
            None => Self::start_standin(None).await,
        }
    }

    /// As [`TestCluster::new`], but a stand-in's Deployment controller
    /// takes `delay` from a Deployment write to its status update, as a
    /// loaded kube-controller-manager does; a real cluster's takes what it
    /// takes.
    pub async fn with_deployment_controller_delay(delay: Duration) -> Result<Self> {
        match std::env::var_os(KUBECONFIG_VAR) {
            Some(_) => Self::new().await,
            None => {
                let standin = StandIn::builder()
                    .deployment_controller_delay(delay)
                    .start()
                    .await
                    .context("starting the API stand-in")?;
                Self::connect(standin.config(), Some(standin), None).await
            }
        }
    }

    /// A fresh stand-in; the test's namespace is `namespace` (labelled as
    /// opted in for the tenant of that name) when given, and the operator's
    /// ServiceAccount is then an agent's, with the chart's rules of an
    /// agent in its workload cluster.
    pub(crate) async fn start_standin(namespace: Option<&str>) -> Result<Self> {
        let standin = StandIn::start().await.context("starting the API stand-in")?;
        Self::connect(standin.config(), Some(standin), namespace).await
    }

    /// The cluster of the kubeconfig at `path` (its current context), as with
    /// `HOIST_TEST_KUBECONFIG`: its namespaces are deleted on drop.
    pub async fn from_kubeconfig(path: &Path) -> Result<Self> {
        Self::from_kubeconfig_in(path, None).await
    }

    /// The cluster of the kubeconfig at `path`, with `namespace` as the
    /// test's namespace when given (see [`TestCluster::start_standin`]).
    pub(crate) async fn from_kubeconfig_in(path: &Path, namespace: Option<&str>) -> Result<Self> {
        let kubeconfig = Kubeconfig::read_from(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("building a client config from {}", path.display()))?;
        let mut cluster = Self::connect(config, None, namespace).await?;
        cluster.kubeconfig = Some(path.to_path_buf());
        Ok(cluster)
    }

    async fn connect(config: Config, standin: Option<StandIn>, namespace: Option<&str>) -> Result<Self> {
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
        install_admission_policy(&client).await?;
        let admin = admin_user(&client).await?;
        let cluster_rules = match namespace {
            Some(_) => agent_local_rules_file(),
            None => operator_rules_file(),
        };
        let namespace = match namespace {
            Some(name) => create_named_namespace(&client, name, &[(TENANT_LABEL, name)]).await?,
            None => create_namespace(&client, "hoist-test", &[]).await?,
        };
        await_admission(&client, &namespace).await?;
        let mut cluster = Self {
            admin,
            config,
            kubeconfig: None,
            client,
            namespace,
            extra_namespaces: Mutex::new(Vec::new()),
            cluster_objects: Mutex::new(Vec::new()),
            files: Mutex::new(Vec::new()),
            standin,
        };
        cluster.grant_operator_rules(&cluster_rules).await?;
        Ok(cluster)
    }

    /// The admin's user name (what `client()` is authenticated as): the
    /// requester of Promotions the admin creates.
    pub fn admin_user(&self) -> &str {
        &self.admin
    }

    /// The operator's user: ServiceAccount `hoist` of the test namespace.
    pub fn operator_user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{OPERATOR_SERVICE_ACCOUNT}",
            self.namespace
        )
    }

    /// The name of the test's ClusterRole and ClusterRoleBinding for the operator.
    fn operator_role_name(&self) -> String {
        format!("hoist-test-operator-{}", self.namespace)
    }

    /// Records a cluster-scoped object to delete when the test ends.
    fn leave(&self, object: Leftover) {
        self.cluster_objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(object);
    }

    /// Installs the shipped admission policy and its binding under `name`
    /// (a copy that checks the same as the chart's), both deleted when the
    /// test ends: for tests that point the operator at a policy of their own
    /// and change it.
    pub async fn install_policy_copy(&self, name: &str) -> Result<()> {
        let (policy, binding) = shipped_policy(name)?;
        self.leave(Leftover::ValidatingAdmissionPolicy(name.to_owned()));
        apply_policy(&self.client, &policy).await?;
        self.leave(Leftover::ValidatingAdmissionPolicyBinding(name.to_owned()));
        apply_policy(&self.client, &binding).await
    }

    /// Deletes the ValidatingAdmissionPolicyBinding `name` (of a copy from
    /// [`TestCluster::install_policy_copy`]).
    pub async fn delete_policy_binding(&self, name: &str) -> Result<()> {
        Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting ValidatingAdmissionPolicyBinding {name}"))?;
        Ok(())
    }

    /// Applies the binding `name` of the shipped policy copy `name` again.
    pub async fn restore_policy_binding(&self, name: &str) -> Result<()> {
        let (_, binding) = shipped_policy(name)?;
        apply_policy(&self.client, &binding).await
    }

    /// Binds the operator's ServiceAccount to a ClusterRole of the chart's
    /// cluster-wide rules `cluster_rules` (`charts/hoist/files/operator-rules.yaml`,
    /// or `agent-local-rules.yaml` in a workload cluster), both
    /// removed with the test's namespaces, and to a Role of its namespace
    /// rules (`operator-namespace-rules.yaml`) in the test's namespace.
    async fn grant_operator_rules(&mut self, cluster_rules: &Path) -> Result<()> {
        let rules = read_operator_rules(cluster_rules)?;
        let name = self.operator_role_name();
        self.grant_service_account_cluster_wide(&name, rules, OPERATOR_SERVICE_ACCOUNT)
            .await?;
        // Jobs, Secrets and ServiceAccounts in the test's namespace only, as
        // the chart's namespace-scoped install grants them (the operator
        // under test watches that namespace).
        self.grant_operator_namespace_rules(&self.namespace).await
    }

    /// A Role of the chart's namespace rules (`operator-namespace-rules.yaml`)
    /// in `namespace`, bound to the operator's ServiceAccount: what the
    /// chart grants in each namespace of `watchNamespaces`.
    async fn grant_operator_namespace_rules(&self, namespace: &str) -> Result<()> {
        let name = self.operator_role_name();
        let rules = read_operator_rules(&operator_namespace_rules_file())?;
        let role = Role {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            rules: Some(rules),
        };
        Api::<Role>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &role)
            .await
            .with_context(|| format!("creating Role {namespace}/{name}"))?;
        let (metadata, role_ref, subjects) = self.operator_binding("Role", &name);
        let binding = RoleBinding {
            metadata,
            role_ref,
            subjects,
        };
        Api::<RoleBinding>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &binding)
            .await
            .with_context(|| format!("creating RoleBinding {namespace}/{name}"))?;
        Ok(())
    }

    /// The name, role reference and subject of a binding `name` of the
    /// operator's ServiceAccount to the `kind` (Role or ClusterRole) `name`.
    fn operator_binding(
        &self,
        kind: &str,
        name: &str,
    ) -> (kube::api::ObjectMeta, RoleRef, Option<Vec<Subject>>) {
        (
            kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: kind.into(),
                name: name.to_owned(),
            },
            Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: OPERATOR_SERVICE_ACCOUNT.into(),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            }]),
        )
    }

    /// A client of this cluster's admin (requests not counted): the
    /// stand-in's [`kube_standin::ADMIN`] (in `system:masters`), or the
    /// kubeconfig's user of a real cluster.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client acting as the operator (see [`TestCluster::operator_user`],
    /// allowed the chart's rules) whose requests are recorded in the
    /// returned counter; give it to the code under test to assert what it
    /// did.
    pub fn counted_client(&self) -> Result<(Client, RequestCounter)> {
        self.delayed_client(|_, _| None)
    }

    /// A counted client of the operator (see [`TestCluster::counted_client`])
    /// whose requests picked by `slowness` are held back before they are
    /// sent, as over a slow network.
    pub fn delayed_client(&self, slowness: Slowness) -> Result<(Client, RequestCounter)> {
        self.delayed_client_as(&self.operator_user(), slowness)
    }

    /// A counted client acting as `user` whose requests picked by
    /// `slowness` are held back (see [`TestCluster::delayed_client`]).
    pub fn delayed_client_as(&self, user: &str, slowness: Slowness) -> Result<(Client, RequestCounter)> {
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
        let client = ClientBuilder::try_from(self.impersonating(user, &[]))
            .context("creating a counted client")?
            .with_layer(&DelayLayer(slowness))
            .with_layer(&layer)
            .build();
        Ok((client, counter))
    }

    /// A Role `name` of `rules` (RBAC PolicyRules as JSON) in the test's
    /// namespace, bound to `users`, as a cluster admin grants people rights.
    pub async fn grant(&self, name: &str, rules: serde_json::Value, users: &[&str]) -> Result<()> {
        let rules: Vec<PolicyRule> =
            serde_json::from_value(rules).with_context(|| format!("the rules of Role {name}"))?;
        let subjects = users
            .iter()
            .map(|user| Subject {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "User".into(),
                name: (*user).into(),
                namespace: None,
            })
            .collect();
        self.grant_in_namespace(name, rules, subjects).await
    }

    /// A Role `name` of `rules` in the test's namespace, bound to its
    /// ServiceAccount `service_account`; both go with the namespace.
    pub async fn grant_service_account_in_namespace(
        &self,
        name: &str,
        rules: Vec<PolicyRule>,
        service_account: &str,
    ) -> Result<()> {
        let subject = Subject {
            kind: "ServiceAccount".into(),
            name: service_account.to_owned(),
            namespace: Some(self.namespace.clone()),
            ..Default::default()
        };
        self.grant_in_namespace(name, rules, vec![subject]).await
    }

    /// A Role `name` of `rules` in the test's namespace bound to `subjects`.
    async fn grant_in_namespace(
        &self,
        name: &str,
        rules: Vec<PolicyRule>,
        subjects: Vec<Subject>,
    ) -> Result<()> {
        let role = Role {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            rules: Some(rules),
        };
        Api::<Role>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &role)
            .await
            .with_context(|| format!("creating Role {name}"))?;
        let binding = RoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: name.to_owned(),
            },
            subjects: Some(subjects),
        };
        Api::<RoleBinding>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &binding)
            .await
            .with_context(|| format!("creating RoleBinding {name}"))?;
        Ok(())
    }

    /// A client acting as `user` in `groups` (and `system:authenticated`),
    /// e.g. an approver: it may do what RBAC grants them.
    pub fn user_client(&self, user: &str, groups: &[&str]) -> Result<Client> {
        Client::try_from(self.impersonating(user, groups)).context("creating a user's client")
    }

    /// A client acting as `user` in no group but `system:authenticated`: a
    /// user nobody bound a role to may do nothing.
    pub fn impersonating_client(&self, user: &str) -> Result<Client> {
        self.user_client(user, &[])
    }

    /// A kubeconfig file for a process of the code under test (`hoist
    /// controller`) acting as the operator, like
    /// [`TestCluster::counted_client`]; removed when the cluster is dropped.
    pub fn kubeconfig_file(&self) -> Result<PathBuf> {
        self.user_kubeconfig_file(&self.operator_user(), &[])
    }

    /// A kubeconfig file for a process acting as `user` in `groups` (e.g.
    /// `kubectl hoist approve`); removed when the cluster is dropped.
    pub fn user_kubeconfig_file(&self, user: &str, groups: &[&str]) -> Result<PathBuf> {
        self.write_kubeconfig(Some((user, groups)))
    }

    /// A kubeconfig file for a process acting as the admin, as a person
    /// running `kubectl hoist` with the cluster's own credentials would;
    /// removed when the cluster is dropped.
    pub fn admin_kubeconfig_file(&self) -> Result<PathBuf> {
        self.write_kubeconfig(None)
    }

    fn write_kubeconfig(&self, impersonate: Option<(&str, &[&str])>) -> Result<PathBuf> {
        let mut kubeconfig = match (&self.kubeconfig, &self.standin) {
            (Some(path), _) => Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?,
            (None, Some(standin)) => serde_yaml::from_str(&standin.kubeconfig_yaml(kube_standin::ADMIN)?)
                .context("the stand-in's kubeconfig")?,
            (None, None) => bail!("neither a cluster nor a stand-in"),
        };
        let context = kubeconfig
            .current_context
            .clone()
            .context("the kubeconfig has no current context")?;
        let user_name = kubeconfig
            .contexts
            .iter()
            .find(|named| named.name == context)
            .and_then(|named| named.context.as_ref())
            .map(|context| context.user.clone())
            .context("the kubeconfig's current context names no user")?;
        let auth_info = kubeconfig
            .auth_infos
            .iter_mut()
            .find(|named| Some(&named.name) == user_name.as_ref())
            .and_then(|named| named.auth_info.as_mut())
            .context("the kubeconfig's current user is not defined")?;
        if let Some((user, groups)) = impersonate {
            auth_info.impersonate = Some(user.to_owned());
            auth_info.impersonate_groups =
                (!groups.is_empty()).then(|| groups.iter().map(|group| (*group).to_owned()).collect());
        }
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let path = std::env::temp_dir().join(format!("{}-{}.kubeconfig", self.namespace, &suffix[..8]));
        std::fs::write(&path, serde_yaml::to_string(&kubeconfig)?)
            .with_context(|| format!("writing {}", path.display()))?;
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(path.clone());
        Ok(path)
    }

    /// The admin's configuration, impersonating `user` in `groups`, for
    /// the code under test.
    fn impersonating(&self, user: &str, groups: &[&str]) -> Config {
        // No read timeout for the code under test: its watches stay silent
        // for minutes (kube-runtime's watcher has an idle timeout of its
        // own), and a read timeout would only break them. The tests' waits
        // bound how long a test waits for the operator.
        let mut config = self.config.clone();
        config.read_timeout = None;
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups =
            (!groups.is_empty()).then(|| groups.iter().map(|group| (*group).to_owned()).collect());
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

    /// Grants the operator the chart's Argo Rollouts rules
    /// (`argo-rollouts-rules.yaml`, what `argoRollouts.enabled` adds).
    pub async fn grant_operator_argo_rollouts(&self) -> Result<()> {
        let rules = read_operator_rules(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/argo-rollouts-rules.yaml"),
        )?;
        let name = format!("{}-argo-rollouts", self.operator_role_name());
        self.grant_service_account_cluster_wide(&name, rules, OPERATOR_SERVICE_ACCOUNT)
            .await
    }

    /// A ClusterRole `name` of `rules` bound to the ServiceAccount
    /// `service_account` of the test's namespace, both removed when the
    /// test ends.
    pub async fn grant_service_account_cluster_wide(
        &self,
        name: &str,
        rules: Vec<PolicyRule>,
        service_account: &str,
    ) -> Result<()> {
        let role = ClusterRole {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            rules: Some(rules),
            ..Default::default()
        };
        Api::<ClusterRole>::all(self.client.clone())
            .create(&PostParams::default(), &role)
            .await
            .with_context(|| format!("creating ClusterRole {name}"))?;
        self.leave(Leftover::ClusterRole(name.to_owned()));
        let binding = ClusterRoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: name.to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: service_account.to_owned(),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            }]),
        };
        Api::<ClusterRoleBinding>::all(self.client.clone())
            .create(&PostParams::default(), &binding)
            .await
            .with_context(|| format!("creating ClusterRoleBinding {name}"))?;
        self.leave(Leftover::ClusterRoleBinding(name.to_owned()));
        Ok(())
    }

    /// Grants the operator the chart's namespace rules
    /// (`operator-namespace-rules.yaml`) in every namespace, by a
    /// ClusterRole, as the chart's cluster-wide install (no
    /// `watchNamespaces`) does; removed when the test ends.
    pub async fn grant_cluster_wide_install(&self) -> Result<()> {
        let rules = read_operator_rules(&operator_namespace_rules_file())?;
        let name = format!("{}-cluster-wide", self.operator_role_name());
        self.grant_service_account_cluster_wide(&name, rules, OPERATOR_SERVICE_ACCOUNT)
            .await
    }

    /// Another fresh namespace where the operator holds the chart's
    /// namespace rules, as in one more namespace of `watchNamespaces` (a
    /// tenant of its own, besides the test's namespace).
    pub async fn watched_namespace(&self, prefix: &str) -> Result<String> {
        let namespace = self.extra_namespace(prefix, &[]).await?;
        self.grant_operator_namespace_rules(&namespace).await?;
        Ok(namespace)
    }

    /// Another fresh namespace, with the given labels, removed with the test's
    /// (e.g. a target namespace of another tenant).
    pub async fn extra_namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> Result<String> {
        let name = create_namespace(&self.client, prefix, labels).await?;
        self.keep_namespace(name)
    }

    /// A namespace named `name` with the given labels, removed with the
    /// test's: in a workload cluster, one of the same name as a namespace
    /// of the hub.
    pub async fn named_namespace(&self, name: &str, labels: &[(&str, &str)]) -> Result<String> {
        let name = create_named_namespace(&self.client, name, labels).await?;
        self.keep_namespace(name)
    }

    fn keep_namespace(&self, name: String) -> Result<String> {
        self.extra_namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(name.clone());
        Ok(name)
    }
}

impl Drop for TestCluster {
    /// Removes the kubeconfig files written for the test, and the test's
    /// namespaces and cluster-scoped objects from a real cluster (the
    /// stand-in simply goes away), also when the test panicked. `Drop`
    /// cannot await, and the test's own client cannot be used here: its
    /// connection worker runs on the test's runtime, which is blocked in
    /// this very call. So a fresh client on a thread and runtime of its own
    /// does it, and the test waits for it at most [`CLEANUP_TIMEOUT`].
    fn drop(&mut self) {
        for file in std::mem::take(self.files.get_mut().unwrap_or_else(|p| p.into_inner())) {
            let _ = std::fs::remove_file(file);
        }
        if self.standin.is_some() {
            return;
        }
        let mut objects: Vec<Leftover> =
            std::mem::take(self.extra_namespaces.get_mut().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .map(Leftover::Namespace)
                .collect();
        objects.push(Leftover::Namespace(self.namespace.clone()));
        objects.append(self.cluster_objects.get_mut().unwrap_or_else(|p| p.into_inner()));
        if let Err(left) = delete_objects(&self.config, objects, CLEANUP_TIMEOUT) {
            eprintln!("{left}");
        }
    }
}

/// Objects that could not be deleted, and why.
#[derive(Debug)]
struct LeftBehind {
    objects: Vec<Leftover>,
    reason: String,
}

impl std::fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut commands: Vec<(&str, Vec<&str>)> = Vec::new();
        for object in &self.objects {
            match commands.iter_mut().find(|(kind, _)| *kind == object.kind()) {
                Some((_, names)) => names.push(object.name()),
                None => commands.push((object.kind(), vec![object.name()])),
            }
        }
        let commands: Vec<String> = commands
            .iter()
            .map(|(kind, names)| format!("kubectl delete {kind} {}", names.join(" ")))
            .collect();
        write!(
            f,
            "cleanup: objects left on the cluster ({}); delete them with: {}",
            self.reason,
            commands.join("; ")
        )
    }
}

/// Deletes `objects` through a new client of `config`, on a thread and
/// runtime of its own so that it works from any thread, inside a runtime or
/// not, whatever that runtime is doing. Waits at most `timeout`, then
/// answers what is left (the thread is left to finish or die with the
/// process).
fn delete_objects(config: &Config, objects: Vec<Leftover>, timeout: Duration) -> Result<(), LeftBehind> {
    let (done, finished) = mpsc::channel();
    let config = config.clone();
    let pending = objects.clone();
    let spawned = std::thread::Builder::new()
        .name("hoist-test-cleanup".into())
        .spawn(move || {
            let _ = done.send(delete_on_own_runtime(config, pending, timeout));
        });
    if let Err(error) = spawned {
        return Err(LeftBehind {
            objects,
            reason: format!("could not start the cleanup thread: {error}"),
        });
    }
    match finished.recv_timeout(timeout) {
        Ok(outcome) => outcome,
        Err(_) => Err(LeftBehind {
            objects,
            reason: format!("the API server did not answer within {timeout:?}"),
        }),
    }
}

/// Deletes one object; `None` when it is gone (or was already).
async fn delete_object(client: &Client, object: &Leftover) -> Option<String> {
    let params = DeleteParams::background();
    let outcome = match object {
        Leftover::Namespace(name) => Api::<Namespace>::all(client.clone())
            .delete(name, &params)
            .await
            .map(|_| ()),
        Leftover::ClusterRoleBinding(name) => Api::<ClusterRoleBinding>::all(client.clone())
            .delete(name, &params)
            .await
            .map(|_| ()),
        Leftover::ClusterRole(name) => Api::<ClusterRole>::all(client.clone())
            .delete(name, &params)
            .await
            .map(|_| ()),
        Leftover::ValidatingAdmissionPolicyBinding(name) => {
            Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                .delete(name, &params)
                .await
                .map(|_| ())
        }
        Leftover::ValidatingAdmissionPolicy(name) => Api::<ValidatingAdmissionPolicy>::all(client.clone())
            .delete(name, &params)
            .await
            .map(|_| ()),
    };
    match outcome {
        Ok(()) => None,
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(error) => Some(format!("{} {}: {error}", object.kind(), object.name())),
    }
}

fn delete_on_own_runtime(
    config: Config,
    objects: Vec<Leftover>,
    timeout: Duration,
) -> Result<(), LeftBehind> {
    let left = |objects: Vec<Leftover>, reason: String| Err(LeftBehind { objects, reason });
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return left(objects, format!("could not start a runtime: {error}")),
    };
    runtime.block_on(async move {
        let client = match Client::try_from(config) {
            Ok(client) => client,
            Err(error) => return left(objects, format!("could not create a client: {error}")),
        };
        let deletes = futures::future::join_all(objects.iter().map(|object| delete_object(&client, object)));
        let Ok(outcomes) = tokio::time::timeout(timeout, deletes).await else {
            return left(
                objects,
                format!("the API server did not answer within {timeout:?}"),
            );
        };
        let (failed, errors): (Vec<Leftover>, Vec<String>) = objects
            .into_iter()
            .zip(outcomes)
            .filter_map(|(object, error)| error.map(|error| (object, error)))
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

/// The chart's RBAC rules for the operator.
pub fn operator_rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/operator-rules.yaml")
}

/// The chart's cluster-wide rules of an agent in its workload cluster.
pub fn agent_local_rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/agent-local-rules.yaml")
}

/// The chart's RBAC rules for the operator in the namespaces it watches
/// (a Role there in a namespace-scoped install, in the ClusterRole otherwise).
pub fn operator_namespace_rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/operator-namespace-rules.yaml")
}

/// The YAML list of RBAC rules in `path`.
pub fn read_operator_rules(path: &Path) -> Result<Vec<PolicyRule>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rules: Vec<PolicyRule> = serde_yaml::from_str(&text)
        .with_context(|| format!("parsing the RBAC rules of {}", path.display()))?;
    if rules.is_empty() {
        bail!("{} holds no RBAC rules", path.display());
    }
    Ok(rules)
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
/// The admission policy the chart ships (and `scripts/test` applies to a
/// real cluster), so every test runs where approvals are verified, as in
/// production.
pub fn admission_policy_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/admission-policy.yaml")
}

/// The admission policy on Environments the chart ships, so every test runs
/// where the operator may act on Job steps and Secret references, as in
/// production.
pub fn environment_policy_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/environment-policy.yaml")
}

/// The admission policy on workload-cluster agents the chart ships, so
/// every test runs where agents write only what is theirs, as in production.
pub fn agent_policy_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/agent-policy.yaml")
}

/// The rules of a workload-cluster agent on the hub (the chart's
/// ClusterRole `<release>-agent`).
pub fn agent_rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/agent-hub-rules.yaml")
}

/// The rules of a workload-cluster agent in the agent namespace (its Lease).
pub fn agent_namespace_rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/hoist/files/agent-hub-namespace-rules.yaml")
}

/// The shipped admission policy and its binding, named `name` (the
/// binding's policyName too).
fn shipped_policy(name: &str) -> Result<(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding)> {
    shipped_policy_from(&admission_policy_file(), name)
}

/// The policy and binding of the chart's file `path`, named `name`.
fn shipped_policy_from(
    path: &Path,
    name: &str,
) -> Result<(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut documents = serde_yaml::Deserializer::from_str(&text);
    let mut policy: ValidatingAdmissionPolicy =
        serde::Deserialize::deserialize(documents.next().context("the policy document")?)
            .with_context(|| format!("parsing the policy in {}", path.display()))?;
    let mut binding: ValidatingAdmissionPolicyBinding =
        serde::Deserialize::deserialize(documents.next().context("the binding document")?)
            .with_context(|| format!("parsing the binding in {}", path.display()))?;
    policy.metadata.name = Some(name.to_owned());
    binding.metadata.name = Some(name.to_owned());
    if let Some(spec) = binding.spec.as_mut() {
        spec.policy_name = Some(name.to_owned());
    }
    Ok((policy, binding))
}

/// Applies the chart's admission policies and their bindings as shipped
/// (cluster-scoped; the same objects for every test, so they are left in
/// place).
pub async fn install_admission_policy(client: &Client) -> Result<()> {
    for (path, name) in [
        (admission_policy_file(), SHIPPED_POLICY),
        (environment_policy_file(), SHIPPED_ENVIRONMENT_POLICY),
        (agent_policy_file(), SHIPPED_AGENT_POLICY),
    ] {
        let (policy, binding) = shipped_policy_from(&path, name)?;
        apply_policy(client, &policy).await?;
        apply_policy(client, &binding).await?;
    }
    Ok(())
}

/// The name of the shipped policy and of its binding.
const SHIPPED_POLICY: &str = "hoist-approvals";
/// The name of the shipped policy on Environments and of its binding.
const SHIPPED_ENVIRONMENT_POLICY: &str = "hoist-environments";

/// The name of the shipped policy on workload-cluster agents and of its binding.
const SHIPPED_AGENT_POLICY: &str = "hoist-agents";

/// Server-side applies one admission object as [`TEST_MANAGER`].
async fn apply_policy<K>(client: &Client, object: &K) -> Result<()>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = object
        .meta()
        .name
        .clone()
        .context("an admission object without a name")?;
    Api::<K>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(|error| refused(&K::kind(&()), &name, error))?;
    Ok(())
}

/// Waits until the API server enforces the admission policy, at most
/// [`ADMISSION_TIMEOUT`]: a real kube-apiserver starts enforcing a new
/// policy shortly after it is created. The probe is a Promotion that names
/// someone else as its requester: refused once the policy is enforced; one
/// created before that is deleted at once.
async fn await_admission(client: &Client, namespace: &str) -> Result<()> {
    let resource = kube::discovery::ApiResource {
        group: "hoist.dev".into(),
        version: "v1alpha1".into(),
        api_version: "hoist.dev/v1alpha1".into(),
        kind: "Promotion".into(),
        plural: "promotions".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let probe = kube::api::DynamicObject::new("hoist-admission-probe", &resource).data(serde_json::json!({
        "spec": {"artifact": "probe", "environment": "probe", "requestedBy": "hoist-tests-nobody"}
    }));
    let deadline = std::time::Instant::now() + ADMISSION_TIMEOUT;
    loop {
        match api.create(&PostParams::default(), &probe).await {
            Err(kube::Error::Api(status))
                if status.code == 403 && status.message.contains("ValidatingAdmissionPolicy") =>
            {
                return Ok(());
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context("probing the admission policy with a Promotion of a foreign requester"));
            }
            Ok(_) => {
                api.delete("hoist-admission-probe", &DeleteParams::default())
                    .await
                    .context("deleting the admission probe")?;
            }
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the API server did not enforce the ValidatingAdmissionPolicy {SHIPPED_POLICY} within {ADMISSION_TIMEOUT:?}: \
                 a Promotion naming another requester was admitted"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long a new admission policy may take to be enforced.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(30);

fn refused(kind: &str, name: &str, error: kube::Error) -> anyhow::Error {
    match error {
        kube::Error::Api(status) => anyhow::anyhow!(
            "the API server refused {kind} {name}: {} ({} {}); Hoist's approvals need Kubernetes 1.30+",
            status.message,
            status.code,
            status.reason
        ),
        other => anyhow::Error::new(other).context(format!("applying {kind} {name}")),
    }
}

/// Who the admin client is, from a SelfSubjectReview.
async fn admin_user(client: &Client) -> Result<String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .context("asking the API server who the test's admin is (SelfSubjectReview)")?;
    review
        .status
        .and_then(|status| status.user_info)
        .and_then(|info| info.username)
        .context("the SelfSubjectReview named no user")
}

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
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    create_named_namespace(client, &format!("{prefix}-{}", &suffix[..8]), labels).await
}

async fn create_named_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) -> Result<String> {
    let name = name.to_owned();
    let api: Api<Namespace> = Api::all(client.clone());
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
mod request_tests {
    use super::Request;

    #[test]
    fn reviews_store_nothing_and_are_not_writes() {
        let request = |method: &str, path: &str| Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
        };
        assert!(!request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews").is_write());
        assert!(!request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").is_write());
        assert!(request("POST", "/apis/hoist.dev/v1alpha1/namespaces/t/promotions").is_write());
        assert!(request("PATCH", "/apis/apps/v1/namespaces/t/deployments/backend").is_write());
        assert!(!request("GET", "/api/v1/namespaces").is_write());
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
            admin: "unanswered".into(),
            client: Client::try_from(config.clone()).expect("client"),
            config,
            kubeconfig: None,
            namespace: "hoist-test-unanswered".into(),
            extra_namespaces: Mutex::new(vec!["hoist-dev-unanswered".into()]),
            cluster_objects: Mutex::new(vec![Leftover::ClusterRole(
                "hoist-test-operator-hoist-test-unanswered".into(),
            )]),
            files: Mutex::new(Vec::new()),
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

    fn test_objects() -> Vec<Leftover> {
        vec![
            Leftover::Namespace("hoist-test-a".into()),
            Leftover::Namespace("hoist-dev-b".into()),
            Leftover::ClusterRole("hoist-test-operator-hoist-test-a".into()),
            Leftover::ClusterRoleBinding("hoist-test-operator-hoist-test-a".into()),
        ]
    }

    #[test]
    fn cleanup_without_an_answer_names_the_objects_left() {
        let left = delete_objects(&config(&black_hole()), test_objects(), Duration::from_millis(500))
            .expect_err("no answer");
        assert_eq!(
            left.to_string(),
            "cleanup: objects left on the cluster (the API server did not answer within 500ms); \
             delete them with: kubectl delete namespace hoist-test-a hoist-dev-b; \
             kubectl delete clusterrole hoist-test-operator-hoist-test-a; \
             kubectl delete clusterrolebinding hoist-test-operator-hoist-test-a"
        );
    }

    #[test]
    fn cleanup_that_cannot_connect_names_the_objects_left_and_why() {
        let started = std::time::Instant::now();
        let left =
            delete_objects(&config(&closed_port()), test_objects(), CLEANUP_TIMEOUT).expect_err("refused");
        assert!(started.elapsed() < CLEANUP_TIMEOUT, "{:?}", started.elapsed());
        assert_eq!(left.objects, test_objects());
        assert!(
            left.reason.starts_with("namespace hoist-test-a: ")
                && left.reason.contains("; namespace hoist-dev-b: ")
                && left
                    .reason
                    .contains("; clusterrole hoist-test-operator-hoist-test-a: "),
            "{}",
            left.reason
        );
    }

    #[test]
    fn the_operator_rules_are_the_charts() {
        let rules = read_operator_rules(&operator_rules_file()).expect("rules");
        let promotions_status = rules
            .iter()
            .find(|rule| {
                rule.resources
                    .as_deref()
                    .unwrap_or_default()
                    .contains(&"promotions/status".to_owned())
            })
            .expect("a rule for promotions/status");
        assert_eq!(
            promotions_status.api_groups.as_deref(),
            Some(&["hoist.dev".to_owned()][..])
        );
        let empty = std::env::temp_dir().join(format!("empty-rules-{}.yaml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&empty, "[]\n").expect("written");
        let error = read_operator_rules(&empty).expect_err("no rules").to_string();
        std::fs::remove_file(&empty).expect("removed");
        assert!(error.ends_with("holds no RBAC rules"), "{error}");
    }

    #[tokio::test]
    async fn the_operator_and_users_act_through_impersonation_with_their_own_rights() {
        let cluster = TestCluster::new().await.expect("test cluster");
        let ns = cluster.namespace().to_owned();
        let (operator, _) = cluster.counted_client().expect("operator");
        let who = |client: Client| async move {
            Api::<k8s_openapi::api::authentication::v1::SelfSubjectReview>::all(client)
                .create(&PostParams::default(), &Default::default())
                .await
                .expect("review")
                .status
                .and_then(|status| status.user_info)
                .expect("user info")
        };
        let info = who(operator.clone()).await;
        assert_eq!(info.username, Some(format!("system:serviceaccount:{ns}:hoist")));
        assert_eq!(
            info.groups,
            Some(vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".to_owned()
            ])
        );
        // The chart's rules: reading ConfigMaps, never writing Secrets.
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(operator.clone(), &ns)
            .list(&Default::default())
            .await
            .expect("the operator lists ConfigMaps");
        let secret = k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let refused = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(operator, &ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect_err("the chart does not let the operator create Secrets");
        assert!(
            matches!(&refused, kube::Error::Api(status) if status.code == 403),
            "{refused:?}"
        );

        let alice = cluster.user_client("alice", &["staff"]).expect("alice");
        let info = who(alice.clone()).await;
        assert_eq!(info.username.as_deref(), Some("alice"));
        assert_eq!(
            info.groups,
            Some(vec!["staff".to_owned(), "system:authenticated".to_owned()])
        );
        let refused = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(alice, &ns)
            .list(&Default::default())
            .await
            .expect_err("nobody granted alice anything");
        assert!(
            matches!(&refused, kube::Error::Api(status) if status.code == 403),
            "{refused:?}"
        );

        let file = cluster
            .user_kubeconfig_file("bob", &["client"])
            .expect("kubeconfig");
        let kubeconfig = Kubeconfig::read_from(&file).expect("readable");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("config");
        assert_eq!(
            who(Client::try_from(config).expect("client"))
                .await
                .username
                .as_deref(),
            Some("bob")
        );
        drop(cluster);
        assert!(!file.exists(), "the kubeconfig file is removed with the cluster");
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
