//! Environment: a stage (dev, staging, prod, or custom) of one tenant.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DIGEST, DNS_LABEL, DNS_SUBDOMAIN, Phase, SecretReference};

/// A stage of one tenant: which Deployments run which application
/// components, the configuration they get here, the environments a release
/// must pass first, and the gates every Promotion into it must pass.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hoist.dev",
    version = "v1alpha1",
    kind = "Environment",
    namespaced,
    derive = "PartialEq",
    status = "EnvironmentStatus",
    shortname = "env",
    category = "hoist",
    selectable = ".spec.cluster",
    doc = "A stage of one tenant, with targets, configuration and gates.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Running", type_ = "string", json_path = ".status.summary"),
    printcolumn(
        name = "Upstream",
        type_ = "string",
        json_path = ".spec.upstream",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// Environments (in this namespace) an Artifact must have succeeded in,
    /// and still be healthy in, before it may be promoted here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 63), pattern(DNS_LABEL)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub upstream: Vec<String>,

    /// The workload cluster whose agent (`hoist agent --cluster NAME`)
    /// reconciles this Environment. Unset: the operator in the cluster
    /// that holds the Environment reconciles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub cluster: Option<String>,

    /// The workload containers that run each application component here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub targets: Vec<Target>,

    /// Per-application configuration: an overlay merged over an optional
    /// base ConfigMap, plus Secrets whose content also rolls the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["application".into()]))]
    pub config: Vec<ApplicationConfig>,

    /// The policy every Promotion into this environment must pass.
    #[serde(default)]
    pub gates: Gates,

    /// Promote new Ready Artifacts automatically once they pass the gates
    /// (typical for dev); `autoPromotion` narrows which.
    #[serde(default)]
    pub auto_promote: bool,

    /// The policy of `autoPromote: true`: which version steps it takes,
    /// the environments a release must run in first, and a hold that
    /// pauses it. Manual Promotions are never affected. Set without
    /// `autoPromote: true`, the Environment is not Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion: Option<AutoPromotion>,
    /// How long rollouts of workloads without a progress deadline of their own may take.
    #[serde(default)]
    pub rollout: RolloutPolicy,

    /// What to do when a rollout or its verification fails.
    #[serde(default)]
    pub rollback: RollbackPolicy,

    /// How many past releases status.history keeps per environment.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub history_limit: i32,

    /// Webhooks told when a Promotion into this environment reaches some
    /// phases (besides the operator configuration's tenant-wide ones).
    /// Delivered at least once, each with an id receivers can drop
    /// duplicates by; see status.notifications of the Promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub notifications: Vec<Notification>,
    /// How many old Artifacts and finished Promotions Hoist keeps; each
    /// field unset takes the operator configuration's `retention`, else
    /// the built-in default. Whatever runs, is in a history, is the
    /// rollback target or is referenced by an open Promotion is never
    /// deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// How many old Artifacts and finished Promotions to keep.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Artifacts kept per application of this namespace, newest (by
    /// creation) first; older ones nothing needs are deleted. Artifacts are
    /// shared by the namespace's Environments, so the largest value any of
    /// them asks for applies. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub artifacts: Option<i32>,
    /// Finished Promotions into this Environment kept, newest (by
    /// completion) first. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub promotions: Option<i32>,
    /// Finished Promotions younger than this are kept whatever their
    /// number, e.g. `72h`. Default `336h` (14 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub promotions_min_age: Option<String>,
}

fn default_history_limit() -> i32 {
    20
}

/// Which new Artifacts autoPromote promotes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoPromotion {
    /// The largest version step from what runs that is promoted by itself;
    /// a larger one waits for a manual Promotion. Opaque versions, whose
    /// step cannot be told, are promoted only with `Any`.
    #[serde(default)]
    pub versions: VersionPolicy,
    /// Environments (in this namespace) the Artifact must run in, healthy,
    /// before a Promotion of it is created here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 63), pattern(DNS_LABEL)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub upstream: Vec<String>,
    /// While set, no Promotion is created by autoPromote (`kubectl hoist
    /// hold` / `unhold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<AutoPromotionHold>,
}

/// The version steps autoPromote takes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum VersionPolicy {
    /// Every newer release.
    #[default]
    Any,
    /// Releases of the same major version.
    MinorOrPatch,
    /// Releases of the same major and minor version.
    Patch,
}

/// A pause of autoPromote, and who asked for it when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoPromotionHold {
    /// Why, shown in the Environment's status.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Who held it, as `kubectl hoist hold` learned from the API server
    /// (SelfSubjectReview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub by: Option<String>,
    /// When it was held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// A webhook told of Promotions' phase changes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.url) != has(self.urlSecretRef)").message("a notification's webhook is either url or urlSecretRef"))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Names the notification in the Promotions' status.notifications.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub name: String,
    /// The webhook's URL (http or https); its host must be admitted by the
    /// operator's outbound allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// A key of a Secret in this namespace holding the webhook's URL (for
    /// URLs that carry a token, such as Slack's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<SecretKeyReference>,
    /// The events that trigger it.
    #[schemars(length(min = 1, max = 6))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub on: Vec<NotificationEvent>,
    /// CloudEvents (1.0, JSON structured mode) or Slack (an incoming
    /// webhook's `text` and `blocks`).
    #[serde(default)]
    pub format: NotificationFormat,
    /// A key of a Secret in this namespace: the HMAC-SHA256 key the body is
    /// signed with (header `Hoist-Signature: t=<unix seconds>,v1=<hex>`
    /// over `<t>.<body>`). Unset, requests are not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_secret_ref: Option<SecretKeyReference>,
}

/// What a Promotion went through that a notification tells.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum NotificationEvent {
    /// It waits for approval: phase Waiting with the Approval gate pending.
    WaitingForApproval,
    /// It reached phase Succeeded.
    Succeeded,
    /// It reached phase Failed.
    Failed,
    /// It reached phase RolledBack.
    RolledBack,
    /// It reached phase Rejected.
    Rejected,
    /// It ended Failed or RolledBack because a verification step failed.
    VerificationFailed,
}

impl NotificationEvent {
    /// The PascalCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForApproval => "WaitingForApproval",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::RolledBack => "RolledBack",
            Self::Rejected => "Rejected",
            Self::VerificationFailed => "VerificationFailed",
        }
    }
}

/// How a notification's body is written.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NotificationFormat {
    /// A CloudEvents 1.0 event in JSON structured mode
    /// (`application/cloudevents+json`).
    #[default]
    CloudEvents,
    /// A Slack incoming-webhook message: `text` and `blocks`.
    Slack,
}

/// One container of one workload that runs an application component. The
/// workload is named by `workload` (any kind) or, as before, `deployment`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.deployment) != has(self.workload)").message("a target names exactly one of deployment and workload"))]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The application (matches Artifact spec.application).
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub application: String,
    /// The component (matches Artifact spec.images[].component).
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub component: String,
    /// The Deployment to update (the same as `workload` with kind
    /// Deployment; kept for the Environments written before `workload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentReference>,
    /// The workload to update: a Deployment, StatefulSet, DaemonSet,
    /// CronJob or Argo Rollouts Rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadReference>,
    /// The container in the workload's pod template whose image is set.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub container: String,
}

impl Target {
    /// The workload this target updates, whichever form names it (`None`
    /// only for a target naming neither, which the schema refuses).
    pub fn workload(&self) -> Option<WorkloadReference> {
        match (&self.workload, &self.deployment) {
            (Some(workload), _) => Some(workload.clone()),
            (None, Some(deployment)) => Some(WorkloadReference {
                kind: WorkloadKind::Deployment,
                name: deployment.name.clone(),
                namespace: deployment.namespace.clone(),
            }),
            (None, None) => None,
        }
    }

    /// The field that names the workload, for messages: `deployment` or `workload`.
    pub fn workload_field(&self) -> &'static str {
        match self.workload {
            Some(_) => "workload",
            None => "deployment",
        }
    }
}

/// A Deployment, by name and optional namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentReference {
    /// Name of the Deployment.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
    /// Namespace of the Deployment; defaults to the Environment's own. Another
    /// namespace must carry the label hoist.dev/tenant=<this namespace>, set
    /// by the cluster admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub namespace: Option<String>,
}

/// A workload of one of the kinds Hoist updates, by kind, name and optional namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReference {
    /// The kind: Deployment, StatefulSet, DaemonSet (apps/v1), CronJob
    /// (batch/v1) or Rollout (argoproj.io/v1alpha1, Argo Rollouts).
    pub kind: WorkloadKind,
    /// Name of the workload.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
    /// Namespace of the workload; defaults to the Environment's own. Another
    /// namespace must carry the label hoist.dev/tenant=<this namespace>, set
    /// by the cluster admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub namespace: Option<String>,
}

/// The kinds of workload a target may name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    /// Argo Rollouts' Rollout (argoproj.io/v1alpha1).
    Rollout,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 5] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::CronJob,
        WorkloadKind::Rollout,
    ];

    /// The API group and version serving the kind.
    pub fn api_version(self) -> &'static str {
        match self {
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => "apps/v1",
            WorkloadKind::CronJob => "batch/v1",
            WorkloadKind::Rollout => "argoproj.io/v1alpha1",
        }
    }

    /// The resource's plural name.
    pub fn plural(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
            WorkloadKind::CronJob => "cronjobs",
            WorkloadKind::Rollout => "rollouts",
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Rollout => "Rollout",
        })
    }
}

/// How long a rollout may take.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPolicy {
    /// How long StatefulSets and DaemonSets may take to roll out after Hoist
    /// updated them before the Promotion fails (they have no progress
    /// deadline of their own), e.g. `15m`; default `10m`, as a
    /// Deployment's default progressDeadlineSeconds. Deployments and
    /// Rollouts fail by their own spec.progressDeadlineSeconds; a CronJob
    /// is rolled out once updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub timeout: Option<String>,
}

/// Configuration of one application in this environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationConfig {
    /// The application this configuration is for.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub application: String,
    /// Name of the ConfigMap Hoist renders into every target namespace of
    /// the application, for the pods to mount; default `<application>-config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub config_map_name: Option<String>,
    /// A ConfigMap in this namespace whose data is the base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub base_config_map: Option<String>,
    /// Keys set over the base.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Secrets in this namespace whose content is part of the config hash,
    /// so rotating one rolls the Deployments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub secret_refs: Vec<SecretReference>,
}

/// The gates of an environment. An absent gate always passes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gates {
    /// Human approval before promoting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalGate>,
    /// Provenance the Artifact must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceGate>,
    /// How long the Artifact must have been healthy in every upstream
    /// environment before it may be promoted here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakGate>,
    /// Change windows: `Deny` windows (freezes) hold every Promotion while
    /// they are on; with `Allow` windows, Promotions start only inside one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub windows: Vec<ChangeWindow>,
    /// Whether the version ranges of Artifact spec.compatibility must hold
    /// against what runs here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<CompatibilityGate>,
    /// Checks run in order once the rollout is healthy, before the
    /// Promotion succeeds. A failed check fails the Promotion, and with
    /// rollback.automatic restores the previous release and configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub verification: Vec<VerificationStep>,
    /// A recent, signed vulnerability scan of every component image without
    /// findings above a severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<VulnerabilityGate>,
}

/// One verification step: a Job or a Prometheus query.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.job) != has(self.prometheus)").message("a verification step is either a job or a prometheus query"))]
#[serde(rename_all = "camelCase")]
pub struct VerificationStep {
    /// The step's name, unique in the gate, shown in status and messages.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub name: String,
    /// A Job Hoist runs in the application's (first) target namespace,
    /// with the release in its environment; it passes when the Job
    /// completes, and fails when the Job fails or times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobCheck>,
    /// A Prometheus query measured at intervals, with the analysis
    /// semantics of Argo Rollouts: count measurements, failureLimit,
    /// inconclusiveLimit, consecutiveErrorLimit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusCheck>,
}

/// A verification Job: one Pod, one container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCheck {
    /// The runner image, e.g. `registry.example.com/shop/smoke-tests:1.4`.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// The container's command (its entrypoint when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 4096)))]
    pub command: Vec<String>,
    /// The command's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 4096)))]
    pub args: Vec<String>,
    /// Environment variables, besides the HOIST_* ones describing the
    /// release (HOIST_ARTIFACT, HOIST_VERSION, HOIST_APPLICATION,
    /// HOIST_ENVIRONMENT, HOIST_NAMESPACE, HOIST_PROMOTION,
    /// HOIST_SOURCE_REPOSITORY, HOIST_SOURCE_REVISION and
    /// HOIST_IMAGE_<COMPONENT> with each component's digest-pinned image).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvValue>,
    /// The ServiceAccount the Pod runs as (the namespace's default when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub service_account_name: Option<String>,
    /// How long the Job may run, all attempts together, e.g. `5m`
    /// (activeDeadlineSeconds); then it fails.
    #[serde(default = "default_job_timeout")]
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub timeout: String,
    /// Failed attempts tolerated before the Job fails (backoffLimit); each
    /// retry comes after Kubernetes' back-off (10 s, doubling).
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    pub retries: i32,
}

fn default_job_timeout() -> String {
    "10m".into()
}

/// An environment variable with a literal value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct EnvValue {
    /// The variable (a C identifier; HOIST_ is reserved).
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Its value.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub value: String,
}

/// A PromQL query whose result must meet a condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.baseline) == self.condition.contains('baseline')").message("prometheus.baseline.query is required when prometheus.condition reads baseline, and only then"))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusCheck {
    /// The Prometheus server, e.g. `http://prometheus.monitoring:9090`;
    /// default: the operator's --prometheus-address (chart value
    /// verification.prometheusAddress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), pattern(r"^https?://[^\s]+$"))]
    pub address: Option<String>,
    /// A key of a Secret in this namespace holding a bearer token sent to
    /// the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<SecretKeyReference>,
    /// The PromQL query. `{{namespace}}`, `{{environment}}`,
    /// `{{application}}`, `{{artifact}}` and `{{version}}` are replaced by
    /// the release's values; nothing else is a template. The result must be
    /// a scalar or a vector of one sample.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// The same measurement of the release this one replaces, read by the
    /// condition as `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineQuery>,
    /// What a measurement must meet: `result` compared with a number, e.g.
    /// `result < 0.01` or `result >= 0.99`; with a baseline, compared with
    /// it: `result <= baseline`, `result <= baseline * 1.1`,
    /// `result <= baseline + 0.05` (or `- 0.05`), or their difference with
    /// a number: `result - baseline < 0.005`.
    #[schemars(length(min = 8, max = 64), pattern(CONDITION))]
    pub condition: String,
    /// Time between measurements, e.g. `30s`.
    #[serde(default = "default_interval")]
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub interval: String,
    /// Measurements to take; the step passes after this many without
    /// exceeding a limit.
    #[serde(default = "default_count")]
    #[schemars(range(min = 1, max = 60))]
    pub count: i32,
    /// Failed measurements (condition not met) tolerated; one more fails the step.
    #[serde(default)]
    #[schemars(range(min = 0, max = 60))]
    pub failure_limit: i32,
    /// Inconclusive measurements (an empty result) tolerated; one more
    /// fails the step.
    #[serde(default)]
    #[schemars(range(min = 0, max = 60))]
    pub inconclusive_limit: i32,
    /// Errors in a row (server unreachable, a query it refuses, a result
    /// of several series) tolerated; one more fails the step. An error is
    /// measured again after interval and does not count toward count.
    #[serde(default = "default_error_limit")]
    #[schemars(range(min = 0, max = 60))]
    pub consecutive_error_limit: i32,
}

/// `result <op> <right>` with a number, `baseline`, `baseline * <number>`
/// or `baseline ± <number>` on the right, or `result - baseline <op>
/// <number>`; read by the core's condition parser.
const CONDITION: &str = concat!(
    r"^(result ?(<|<=|>|>=|==|!=) ?(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?",
    r"|baseline( ?[*+-] ?-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)?)",
    r"|result ?- ?baseline ?(<|<=|>|>=|==|!=) ?-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$"
);

/// The query measuring the release a Promotion replaces.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct BaselineQuery {
    /// The PromQL query, with the placeholders of the step's query plus
    /// `{{previousVersion}}` and `{{previousArtifact}}`, the release being
    /// replaced. An empty or failing result is inconclusive, never a pass.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
}

fn default_interval() -> String {
    "30s".into()
}

fn default_count() -> i32 {
    1
}

fn default_error_limit() -> i32 {
    4
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
    /// The key whose value is used.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A duration written as hours, minutes and seconds: `30m`, `1h30m`, `72h`.
pub(crate) const DURATION: &str = r"^([0-9]{1,6}(h|m|s))+$";

/// Soak time in upstream environments.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoakGate {
    /// How long the Artifact must have been Healthy (status.applications[].
    /// healthSince) in every upstream environment, e.g. `30m` or `24h`. A
    /// rollback to a release that ran here before skips the soak.
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub duration: String,
}

/// A period in which promotions are denied (a freeze) or allowed: a cron
/// schedule with a duration in a time zone, or an absolute start and end.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.schedule) ? (has(self.duration) && !has(self.start) && !has(self.end)) : (has(self.start) && has(self.end) && !has(self.duration) && !has(self.timeZone))").message("a window is either schedule with duration (and optional timeZone), or start with end"))]
#[serde(rename_all = "camelCase")]
pub struct ChangeWindow {
    /// The window's name, unique in the gate, shown in messages.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub name: String,
    /// Deny: no Promotion starts while the window is on. Allow: Promotions
    /// start only while an Allow window is on. Deny wins where both are on.
    pub r#type: WindowType,
    /// When the window opens: a five-field cron schedule (minute hour
    /// day-of-month month day-of-week), e.g. `0 18 * * FRI`, read in
    /// timeZone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub schedule: Option<String>,
    /// How long the window stays on after each opening of schedule, e.g.
    /// `62h`: elapsed time, so a window over a daylight-saving change ends
    /// by the clock one hour earlier or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub duration: Option<String>,
    /// The IANA time zone the schedule is read in, e.g. `Europe/Berlin`;
    /// default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// An absolute window's start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    /// An absolute window's end (RFC 3339), after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
}

/// Whether a change window denies or allows promotions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WindowType {
    /// No Promotion starts while the window is on.
    Deny,
    /// Promotions start only while an Allow window is on.
    Allow,
}

/// Enforcement of Artifact spec.compatibility.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatibilityGate {
    /// Hold a Promotion whose ranges are not satisfied by what runs here,
    /// or that an application running here does not accept. When false the
    /// gate passes and its message says what it would hold.
    pub enforce: bool,
}

/// Who must approve, and when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.rules) || size(self.rules) == 0 || ((!has(self.users) || size(self.users) == 0) && (!has(self.groups) || size(self.groups) == 0))").message("with rules, name who may approve in each rule: users and groups of the gate itself must be empty"))]
#[serde(rename_all = "camelCase")]
pub struct ApprovalGate {
    /// When approval is needed: Always, or only for a bump of at least
    /// Minor or Major size compared with what runs here.
    #[serde(default)]
    pub required: ApprovalRequired,
    /// How many distinct approvers are needed: without rules, from users
    /// and groups; with rules, at least this many in total, besides what
    /// each rule needs.
    #[serde(default = "default_min_approvals")]
    #[schemars(range(min = 1, max = 10))]
    pub min_approvals: i32,
    /// Users allowed to approve, when there are no rules. Empty with empty
    /// groups means anyone (whom the admission policy lets approve: the
    /// RBAC verb `approve` on this Environment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub users: Vec<String>,
    /// Groups whose members may approve, when there are no rules. Group
    /// membership is read from the approval entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// Approvals by the user who asked for the Promotion
    /// (spec.requestedBy) do not count. A Promotion without requestedBy
    /// then gets no counted approval, unless allowUnverified is set.
    #[serde(default = "default_true")]
    pub forbid_self_approval: bool,
    /// Every rule must be met, by distinct people: a person counts for at
    /// most one rule. For example one approval from group staff and one
    /// from group client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub rules: Vec<ApprovalRule>,
    /// Count approvals whose identity the API server did not vouch for
    /// (the admission policy hoist-approvals is not installed, as on
    /// clusters before Kubernetes 1.30, or `hoist render` on files): anyone
    /// who may edit the Promotion can then approve in any name.
    #[serde(default)]
    pub allow_unverified: bool,
}

fn default_min_approvals() -> i32 {
    1
}

fn default_true() -> bool {
    true
}

/// One rule of an approval gate: who may approve for it, and how many of
/// them must.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.users) && size(self.users) > 0) || (has(self.groups) && size(self.groups) > 0)").message("a rule must name users or groups who may approve for it"))]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRule {
    /// The rule's name, unique in the gate (a DNS label such as `staff`).
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub name: String,
    /// Users who may approve for this rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub users: Vec<String>,
    /// Groups whose members may approve for this rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// How many distinct approvers this rule needs.
    #[serde(default = "default_min_approvals")]
    #[schemars(range(min = 1, max = 10))]
    pub min_approvals: i32,
}

/// When an approval gate applies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ApprovalRequired {
    /// Every Promotion needs approval.
    #[default]
    Always,
    /// Only a minor or major version bump needs approval.
    MinorOrMajor,
    /// Only a major version bump needs approval.
    Major,
}

/// Provenance required of Artifacts promoted here.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceGate {
    /// The Artifact must name a full source commit id.
    #[serde(default)]
    pub require_source_revision: bool,
    /// Where images may come from; empty allows any. An entry is a registry
    /// host (`registry.example.com`, or `registry.example.com:5000`: the port
    /// must match too) or a host and repository prefix (`ghcr.io/acme`),
    /// which matches whole path segments: `ghcr.io/acme` allows
    /// `ghcr.io/acme/api`, never `ghcr.io/acmeevil/api`. Images are compared
    /// as Docker normalises them: a name without a registry is on
    /// `docker.io`, one-segment names there are under `library/`
    /// (`nginx:1.27` is `docker.io/library/nginx`), and `index.docker.io` is
    /// `docker.io`. Hosts compare without regard to case; tags and digests
    /// play no part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 512)))]
    pub allowed_registries: Vec<String>,
    /// Cosign signatures every component image of the Artifact must carry,
    /// verified once per digest against these keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<SignaturePolicy>,
    /// A signed SLSA provenance attestation every component image must
    /// carry, naming the Artifact's spec.source repository and exactly its
    /// revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationPolicy>,
}

/// Which cosign signatures an image must carry: made with a listed key,
/// or keyless by a listed identity (or both kinds).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(KEYS_OR_KEYLESS).message(KEYS_OR_KEYLESS_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct SignaturePolicy {
    /// The public keys a signature may be made with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub keys: Vec<PublicKey>,
    /// Keyless signatures: the identities (CI workflows, people) whose
    /// Fulcio certificates may sign, and the trusted root they are
    /// verified against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessPolicy>,
    /// How many signers must each have signed every component image
    /// (distinct listed keys and keyless identities; default 1).
    #[serde(default = "default_min_signatures")]
    #[schemars(range(min = 1, max = 8))]
    pub min_signatures: i32,
}

fn default_min_signatures() -> i32 {
    1
}

/// A supply-chain policy names keys, a keyless policy, or both.
const KEYS_OR_KEYLESS: &str = "(has(self.keys) && size(self.keys) > 0) || has(self.keyless)";
const KEYS_OR_KEYLESS_MESSAGE: &str = "name keys, keyless identities, or both";

/// Keyless signing: a short-lived certificate Fulcio issued for an OIDC
/// identity (a CI workflow, a person), with the signing time proven by a
/// Rekor entry or an RFC 3161 timestamp, all verified offline against a
/// Sigstore trusted root.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeylessPolicy {
    /// The identities a certificate may name; one must match.
    #[schemars(length(min = 1, max = 8))]
    pub identities: Vec<KeylessIdentity>,
    /// The trusted_root.json (Sigstore's, or your own Fulcio's) to verify
    /// against; unset, the operator's `--trusted-root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<TrustedRootReference>,
}

/// An identity of a keyless signer: the OIDC issuer and the certificate's
/// subject alternative name (a workflow URI or an email).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.subject) != has(self.subjectRegExp)").message("an identity has either subject or subjectRegExp"))]
#[serde(rename_all = "camelCase")]
pub struct KeylessIdentity {
    /// The OIDC issuer, exactly, e.g. https://token.actions.githubusercontent.com
    /// for GitHub Actions.
    #[schemars(length(min = 1, max = 512))]
    pub issuer: String,
    /// The subject alternative name, exactly, e.g.
    /// https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject: Option<String>,
    /// A regular expression (RE2 syntax) the whole subject alternative
    /// name must match, e.g. ^https://github\.com/acme/shop/\.github/workflows/release\.yml@refs/tags/v.*$
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject_reg_exp: Option<String>,
}

/// Where a trusted_root.json is: a key of a ConfigMap or of a Secret in
/// this namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.configMapRef) != has(self.secretRef)").message("a trusted root is either configMapRef or secretRef"))]
#[serde(rename_all = "camelCase")]
pub struct TrustedRootReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// A key of a ConfigMap in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ConfigMapKeyReference {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
    /// The key whose value is used.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A public key (ECDSA P-256 or P-384, Ed25519, or RSA), PEM-encoded as
/// `cosign generate-key-pair` writes `cosign.pub`: inline, or in a key of a
/// Secret of this namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.pem) != has(self.secretRef)").message("a key is either pem or secretRef"))]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// A name for the key, shown in messages (e.g. release-ci).
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub name: String,
    /// The key itself: `-----BEGIN PUBLIC KEY-----` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub pem: Option<String>,
    /// A key of a Secret in this namespace holding the PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// The SLSA provenance every component image must carry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(KEYS_OR_KEYLESS).message(KEYS_OR_KEYLESS_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct AttestationPolicy {
    /// The keys the attestation (a DSSE envelope) may be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub keys: Vec<PublicKey>,
    /// Keyless attestations: the identities whose Fulcio certificates may
    /// sign them, and the trusted root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessPolicy>,
    /// The in-toto predicate type looked for.
    #[serde(default)]
    pub predicate_type: ProvenancePredicate,
    /// The builder that must have made the image (builder.id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<BuilderMatch>,
}

/// Which SLSA provenance predicate an attestation carries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProvenancePredicate {
    /// SLSA provenance v1: the source is in
    /// buildDefinition.resolvedDependencies, the builder in runDetails.builder.id.
    #[default]
    #[serde(rename = "https://slsa.dev/provenance/v1")]
    SlsaV1,
    /// SLSA provenance v0.2: the source is in materials (or
    /// invocation.configSource), the builder in builder.id.
    #[serde(rename = "https://slsa.dev/provenance/v0.2")]
    SlsaV02,
}

/// The builder an attestation must name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuilderMatch {
    /// builder.id, compared exactly, e.g.
    /// https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0
    #[schemars(length(min = 1, max = 512))]
    pub id: String,
}

/// A vulnerability scan every component image must carry: a signed
/// attestation with cosign's vulnerability predicate whose result is a Trivy
/// or Grype JSON report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(KEYS_OR_KEYLESS).message(KEYS_OR_KEYLESS_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct VulnerabilityGate {
    /// The keys the scan attestation may be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub keys: Vec<PublicKey>,
    /// Keyless scan attestations: the identities whose Fulcio
    /// certificates may sign them, and the trusted root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessPolicy>,
    /// The most severe finding allowed (default Medium: High and Critical
    /// block).
    #[serde(default = "default_max_severity")]
    pub max_severity: Severity,
    /// Vulnerability ids that never block (CVE-…, GHSA-…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 64)))]
    pub ignore: Vec<String>,
    /// How old the newest scan may be (its metadata.scanFinishedOn), e.g.
    /// `168h`; unset, any age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), pattern(DURATION))]
    pub max_age: Option<String>,
}

fn default_max_severity() -> Severity {
    Severity::Medium
}

/// The severity of a vulnerability, as Trivy and Grype report it (Grype's
/// Negligible counts as Low).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

/// Rollback policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPolicy {
    /// On a failed rollout, redeploy the previous Artifact and its config.
    #[serde(default)]
    pub automatic: bool,
}

/// What runs in an environment and how it got there.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, one condition per problem found in the spec, and, with an
    /// approval gate, ApprovalsVerified (whether the admission policy
    /// vouches for approvers; it does not affect Ready); TenantBoundaries
    /// False while the operator acts on none of the Environment's
    /// verification Jobs and Secret references, because the admission
    /// policy on Environments is not installed (Ready is False then too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// One line for kubectl get: application@version per application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What runs here now, per application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["application".into()]))]
    pub applications: Vec<ApplicationStatus>,
    /// Past releases, newest first, at most spec.historyLimit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// The release of one application running in an environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The application.
    pub application: String,
    /// The Artifact running.
    pub artifact: String,
    /// Its version.
    pub version: String,
    /// The digest running per component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ComponentDigest>,
    /// The source commit it was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// Hash of the configuration running with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Hash of what spec.config rendered to when configuration was last
    /// rolled out from the spec. A later change of the overlay, base
    /// ConfigMap or referenced Secrets rolls the pods; a rollback to an older
    /// configuration stays until such a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_config_hash: Option<String>,
    /// The Promotion that put it here.
    pub promotion: String,
    /// When that Promotion succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Time>,
    /// Who approved it: the approvals that counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Rollout health of its Deployments.
    pub health: Health,
    /// When health last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_since: Option<Time>,
}

/// An approval that counted for a release.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedBy {
    /// The approver.
    pub user: String,
    /// When Hoist first saw the approval.
    pub at: Time,
    /// Whether the admission policy vouched for the approver's identity.
    pub verified: bool,
}

/// A component's digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDigest {
    /// Component name.
    pub component: String,
    /// Image digest.
    #[schemars(pattern(DIGEST))]
    pub digest: String,
}

/// Rollout health.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Health {
    /// Every target Deployment rolled out and available.
    Healthy,
    /// A rollout is under way.
    Progressing,
    /// A rollout failed or replicas are unavailable.
    Degraded,
}

/// What a history entry records.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ChangeKind {
    /// A Promotion of an Artifact that had not run here before, or not
    /// successfully.
    #[default]
    Release,
    /// A Promotion of an Artifact that ran here successfully before.
    Rollback,
    /// A change of the configuration (overlay, base ConfigMap or a
    /// referenced Secret) alone, rolled out with the same images.
    Configuration,
}

/// One past release of an application in an environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The application.
    pub application: String,
    /// The Artifact.
    pub artifact: String,
    /// Its version.
    pub version: String,
    /// What kind of change this was: a release of an Artifact, a rollback
    /// to an earlier one, or a configuration change alone.
    #[serde(default)]
    pub change: ChangeKind,
    /// Digest per component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ComponentDigest>,
    /// The repository the Artifact was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_repository: Option<String>,
    /// The source commit it was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// The build that produced it (the Artifact's `spec.source.buildId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// A link to that build (the Artifact's `spec.source.buildUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
    /// When its source revision was committed (the Artifact's
    /// `spec.source.committedAt`), kept here since retention may delete
    /// the Artifact: the start of the lead time for changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<Time>,
    /// When it was built (the Artifact's `spec.source.builtAt`): the start
    /// of the lead time when the commit's time is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<Time>,
    /// Hash of the configuration shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The Promotion (for a configuration change: the one that put the
    /// Artifact there).
    pub promotion: String,
    /// When it was promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Time>,
    /// Who approved it: the approvals that counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Those approvals with when Hoist first saw each and whether the API
    /// server vouched for the approver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovedBy>,
    /// How the Promotion ended: Succeeded, Failed or RolledBack (a
    /// configuration change: Succeeded, recorded when Hoist rolls it out).
    pub outcome: Phase,
    /// When it ended (a configuration change: when its Deployments were
    /// healthy again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// RolledBack: when the release rolled back to was healthy again (the
    /// end of the time to restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<Time>,
}
