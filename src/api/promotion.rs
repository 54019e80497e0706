//! Promotion: a request to run one Artifact in one Environment.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DIGEST, DNS_SUBDOMAIN, NotificationEvent, WorkloadKind};

/// A request to run one Artifact in one Environment once the Environment's
/// gates pass. Approvals are appended to spec.approvals by approvers; every
/// other spec field is fixed at creation.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hoist.dev",
    version = "v1alpha1",
    kind = "Promotion",
    namespaced,
    derive = "PartialEq",
    status = "PromotionStatus",
    shortname = "promo",
    category = "hoist",
    doc = "A request to run one Artifact in one Environment.",
    printcolumn(name = "Artifact", type_ = "string", json_path = ".spec.artifact"),
    printcolumn(name = "Environment", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    selectable = ".spec.environment",
    selectable = ".spec.artifact"
)]
#[x_kube(validation = Rule::new("self.artifact == oldSelf.artifact && self.environment == oldSelf.environment").message("artifact and environment cannot change: create a new Promotion"))]
#[x_kube(validation = Rule::new("has(self.reason) == has(oldSelf.reason) && (!has(self.reason) || self.reason == oldSelf.reason)").message("reason cannot change"))]
#[x_kube(validation = Rule::new("has(self.override) == has(oldSelf.override) && (!has(self.override) || self.override == oldSelf.override)").message("override cannot change: create a new Promotion"))]
#[x_kube(validation = Rule::new("!has(oldSelf.approvals) || (has(self.approvals) && self.approvals.size() >= oldSelf.approvals.size() && oldSelf.approvals.all(a, a in self.approvals))").message("approvals can only be added, never changed or removed"))]
#[x_kube(validation = Rule::new("has(self.requestedBy) == has(oldSelf.requestedBy) && (!has(self.requestedBy) || self.requestedBy == oldSelf.requestedBy)").message("requestedBy cannot change: it records who created the Promotion"))]
#[serde(rename_all = "camelCase")]
pub struct PromotionSpec {
    /// Name of the Artifact (in this namespace) to run.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub artifact: String,

    /// Name of the Environment (in this namespace) to run it in.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub environment: String,

    /// Why this promotion is made; kept in the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,

    /// Who asked for this promotion: the user the API server authenticated
    /// when the Promotion was created (`kubectl hoist promote` fills it in;
    /// the admission policy hoist-approvals requires it to equal the
    /// creator, and Promotions Hoist creates carry the operator's user).
    /// Cannot change. Where the approval gate forbids self-approval, this
    /// user's approvals do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub requested_by: Option<String>,

    /// Break-glass: gates to waive, with a justification. An override
    /// always needs approval and is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#override: Option<Override>,

    /// Approvals and rejections, appended by approvers (for example with
    /// `kubectl hoist approve`). Entries can be added but never changed or
    /// removed; with the admission policy hoist-approvals installed, each
    /// added entry names the user who added it and their groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub approvals: Vec<ApprovalRequest>,
}

/// Gates waived by a break-glass promotion.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("!self.waive.exists(g, g == 'Approval')").message("an override always needs approval: Approval cannot be waived").field_path(".waive"))]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// The gates to waive.
    #[schemars(length(min = 1, max = 8))]
    pub waive: Vec<GateName>,
    /// Why the gates are waived (at least 10 characters).
    #[schemars(length(min = 10, max = 1024))]
    pub justification: String,
}

/// An approval (or rejection) written by an approver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// The approving user, as the API server authenticates them (the
    /// admission policy hoist-approvals requires the user who adds the
    /// entry).
    #[schemars(length(min = 1, max = 512))]
    pub user: String,
    /// The user's groups, as the API server authenticates them (the
    /// admission policy requires exactly the adding user's groups).
    /// Approval rules by group read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128), inner(length(max = 512)))]
    pub groups: Vec<String>,
    /// Approve, or Reject: a rejection by an allowed approver ends the
    /// Promotion as Rejected.
    // Left out when Approve, which the schema defaults it to, so an approval
    // is written as it always was.
    #[serde(default, skip_serializing_if = "ApprovalDecision::is_approve")]
    #[schemars(extend("default" = "Approve"))]
    pub decision: ApprovalDecision,
    /// An optional remark; for a rejection, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
}

/// What an approver decided.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum ApprovalDecision {
    /// The Promotion may go ahead.
    #[default]
    Approve,
    /// The Promotion must not go ahead: it ends as Rejected.
    Reject,
}

impl ApprovalDecision {
    pub fn is_approve(&self) -> bool {
        *self == ApprovalDecision::Approve
    }
}

/// The gates a Promotion can be held by.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum GateName {
    /// The Artifact is resolved and Ready.
    ArtifactReady,
    /// The Artifact succeeded, and is healthy, in every upstream environment.
    Upstream,
    /// Enough allowed approvers approved.
    Approval,
    /// The Artifact carries the provenance the environment requires.
    Provenance,
    /// The Artifact has been healthy upstream for the soak duration.
    Soak,
    /// No Deny change window is on, and an Allow window is, if there are any.
    Windows,
    /// The compatibility ranges hold against what runs in the environment.
    Compatibility,
    /// The verification steps passed once the rollout was healthy.
    Verification,
    /// A recent signed vulnerability scan shows nothing above the allowed severity.
    Vulnerabilities,
}

/// The lifecycle phase of a Promotion. Terminal phases never change.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Not looked at yet, or held before its gates while the tier of its
    /// Environment's namespace does not allow the Environment (see message).
    #[default]
    Pending,
    /// Queued behind another Promotion, or held by a gate.
    Waiting,
    /// Deployments are being updated.
    Promoting,
    /// The rollout is being watched until healthy.
    Verifying,
    /// Terminal: the Artifact runs and is healthy.
    Succeeded,
    /// Terminal: the rollout failed.
    Failed,
    /// Terminal: the rollout failed and the previous release was restored.
    RolledBack,
    /// Terminal: a newer Artifact succeeded first.
    Superseded,
    /// Terminal: the request cannot be carried out (see message).
    Rejected,
}

impl Phase {
    /// Terminal phases never change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::Failed | Phase::RolledBack | Phase::Superseded | Phase::Rejected
        )
    }
}

/// What happened to a Promotion.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (True once Succeeded) and Complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Where the Promotion is in its lifecycle.
    #[serde(default)]
    pub phase: Phase,
    /// What to know or do next, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// True when the Artifact ran in this environment before, so upstream
    /// gates do not apply.
    #[serde(default)]
    pub rollback: bool,
    /// One entry per gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateStatus>,
    /// Every entry of spec.approvals as the controller judged it: whether
    /// it counts, and why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// One entry per rule of the Environment's approval gate (the implicit
    /// rule of a gate without rules is named `approvers`): who satisfied it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approval_rules: Vec<ApprovalRuleStatus>,
    /// What the promotion changed, per target container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Configuration hash before and after, per application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigChange>,
    /// Each verification step of the Environment, once the rollout is
    /// healthy: its measurements and outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification: Vec<VerificationStatus>,
    /// When the Deployments were updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the rollout's progress last went into `message`: at most once
    /// per 30 seconds, so a slow Deployment controller's every step does not
    /// rewrite the Promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_reported_at: Option<Time>,
    /// When a terminal phase was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The webhook deliveries this Promotion's phase changes made, recorded
    /// with the phase change and updated as they are sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationDelivery>,
}

/// One event told to one webhook.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDelivery {
    /// The idempotency id, `<Promotion uid>/<event>`: the same in every
    /// attempt (the CloudEvents `id`, header `Hoist-Delivery`), so a
    /// receiver can drop duplicates.
    pub id: String,
    /// What happened.
    pub event: NotificationEvent,
    /// The notification: its name in the Environment's spec.notifications,
    /// or `operator/<name>` for one of the operator configuration.
    pub target: String,
    /// Pending (to be sent), Delivered, or Failed (given up).
    pub state: DeliveryState,
    /// When the event happened.
    pub at: Time,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: i32,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Time>,
    /// When it is sent (again), while Pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
}

/// Where a delivery stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DeliveryState {
    /// Not accepted yet: it is sent at nextAttemptAt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: the receiver refused it (4xx), or every attempt failed.
    Failed,
}

/// The state of one gate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateStatus {
    /// Which gate.
    pub gate: GateName,
    /// Passed, Pending, Failed or Waived.
    pub state: GateState,
    /// What the gate saw and what would make it pass.
    pub message: String,
    /// When it was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<Time>,
    /// When the gate's verdict changes by the clock alone (a soak ends, a
    /// change window opens or closes): the Promotion is looked at again then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check: Option<Time>,
}

/// Outcome of a gate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum GateState {
    /// The gate is satisfied.
    Passed,
    /// The gate may still pass.
    Pending,
    /// The gate cannot pass.
    Failed,
    /// The gate was waived by an override.
    Waived,
}

/// An entry of spec.approvals as the controller judged it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Who approved or rejected.
    pub user: String,
    /// The groups the entry names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Approve or Reject.
    #[serde(default)]
    pub decision: ApprovalDecision,
    /// When the controller first saw the entry.
    pub at: Time,
    /// Whether the API server vouched for the entry's user and groups: the
    /// admission policy was installed when the controller first saw it.
    pub verified: bool,
    /// Whether the entry counts for the approval gate.
    #[serde(default)]
    pub counted: bool,
    /// Why the entry does not count, or the rule it counted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How one rule of an approval gate stands.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRuleStatus {
    /// The rule (`approvers` for the implicit rule of a gate without rules).
    pub name: String,
    /// How many distinct approvers the rule needs.
    pub needed: i32,
    /// The approvers counted for this rule; a person counts for one rule only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Whether the rule has the approvals it needs.
    pub met: bool,
}

/// A change to one target container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The component.
    pub component: String,
    /// The kind of the workload (Deployment when absent, as in statuses
    /// written before other kinds were targets).
    #[serde(default = "deployment_kind", skip_serializing_if = "is_deployment")]
    pub kind: WorkloadKind,
    /// Namespace of the workload.
    pub namespace: String,
    /// The workload's name (the field keeps the name it had when targets
    /// were Deployments only).
    pub deployment: String,
    /// The container.
    pub container: String,
    /// The digest before, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DIGEST))]
    pub from: Option<String>,
    /// The digest after.
    #[schemars(pattern(DIGEST))]
    pub to: String,
}

/// A configuration change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    /// The hash before, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The hash after.
    pub to: String,
}

/// How one verification step went.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationStatus {
    /// The step (spec.gates.verification[].name).
    pub name: String,
    /// Pending (not started), Running, Passed or Failed.
    pub phase: VerificationPhase,
    /// What the step saw and what it waits for.
    pub message: String,
    /// The query as sent, with the release's values in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The baseline query as sent, with the replaced release's values in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_query: Option<String>,
    /// The Job of a job step: its logs are `kubectl logs -n <namespace>
    /// job/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobReference>,
    /// Measurements so far, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// When the next measurement is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_measurement: Option<Time>,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
}

/// The phase of a verification step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum VerificationPhase {
    /// Waiting for the rollout or an earlier step.
    Pending,
    /// Measuring.
    Running,
    /// Every measurement needed was taken within the limits.
    Passed,
    /// A limit was exceeded.
    Failed,
}

/// One measurement of a verification step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// When it was taken.
    pub at: Time,
    /// Successful, Failed, Inconclusive, Error or Refused.
    pub outcome: MeasurementOutcome,
    /// The query's result, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The baseline query's result, when the step has one and it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Why it is inconclusive or an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What one measurement showed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MeasurementOutcome {
    /// The condition held.
    Successful,
    /// The condition did not hold.
    Failed,
    /// The query returned no sample.
    Inconclusive,
    /// The query could not be run or its result could not be read.
    Error,
    /// The operator's outbound allow-list does not admit the server's
    /// address: the step fails at once.
    Refused,
}

/// A Job, by namespace and name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobReference {
    pub namespace: String,
    pub name: String,
}

fn deployment_kind() -> WorkloadKind {
    WorkloadKind::Deployment
}

fn is_deployment(kind: &WorkloadKind) -> bool {
    *kind == WorkloadKind::Deployment
}
