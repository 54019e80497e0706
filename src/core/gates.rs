//! The gates of one Promotion: what each sees, and whether it passes.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    ApplicationStatus, Approval, ApprovalRuleStatus, Artifact, Environment, GateName, GateState, GateStatus,
    Health, Promotion, RevisionCheck, SupplyChainCheck,
};
use crate::core::approval::{self, ApprovalInput, ApprovalNotice, ApprovalTrust, Rejection};
use crate::core::artifact::ResolutionFailure;
use crate::core::reference::{canonical_registry, registry_and_repository};
use crate::core::soak::{self, SoakInput};
use crate::core::{compatibility, conditions, supply_chain, verification, version, windows};

/// A gate's verdict: its state, what it saw, and when the clock alone
/// changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: GateState,
    pub message: String,
    pub next_check: Option<Timestamp>,
}

impl Outcome {
    pub fn passed(message: impl Into<String>) -> Self {
        Outcome {
            state: GateState::Passed,
            message: message.into(),
            next_check: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Outcome {
            state: GateState::Failed,
            message: message.into(),
            next_check: None,
        }
    }
}

impl From<(GateState, String)> for Outcome {
    fn from((state, message): (GateState, String)) -> Self {
        Outcome {
            state,
            message,
            next_check: None,
        }
    }
}

/// Everything the gates of one Promotion look at.
pub struct GateInput<'a> {
    pub environment: &'a Environment,
    /// Finds another Environment of the namespace by name.
    pub environments: &'a dyn Fn(&str) -> Option<&'a Environment>,
    /// Finds an Artifact of the namespace by name (for the ranges of what runs).
    pub artifacts: &'a dyn Fn(&str) -> Option<&'a Artifact>,
    /// Releases of other applications rolling out here now: they will run.
    pub in_flight: &'a [&'a Artifact],
    pub artifact: &'a Artifact,
    pub promotion: &'a Promotion,
    /// What runs in the environment now for the Artifact's application.
    pub current: Option<&'a ApplicationStatus>,
    /// The Artifact ran here before: upstream gates do not apply.
    pub rollback: bool,
    /// Whether the API server vouches for approvers now.
    pub trust: &'a ApprovalTrust,
    /// The Environment's supply-chain policies, keys read.
    pub supply_chain: &'a [Result<supply_chain::Policy, supply_chain::PolicyProblem>],
    pub now: &'a Time,
}

/// The gates' verdicts, and what the approval gate made of spec.approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateVerdict {
    pub gates: Vec<GateStatus>,
    /// status.approvals: every entry, whether it counts and why.
    pub approvals: Vec<Approval>,
    /// status.approvalRules.
    pub approval_rules: Vec<ApprovalRuleStatus>,
    /// A rejection by an allowed approver: the Promotion ends Rejected.
    pub rejection: Option<Rejection>,
    /// Events about entries seen for the first time.
    pub approval_notices: Vec<ApprovalNotice>,
}

impl GateVerdict {
    /// The first gate that holds the Promotion, if any. Verification runs
    /// after the rollout, so it never holds one from starting.
    pub fn first_holding(&self) -> Option<&GateStatus> {
        self.gates.iter().find(|gate| {
            gate.gate != GateName::Verification
                && matches!(gate.state, GateState::Pending | GateState::Failed)
        })
    }
}

/// Provenance facts about an Artifact's source revision, from its spec alone.
pub fn revision_check(artifact: &Artifact) -> (RevisionCheck, String) {
    match artifact
        .spec
        .source
        .as_ref()
        .map(|source| source.revision.as_str())
    {
        None => (RevisionCheck::Missing, "spec.source.revision is not set".into()),
        Some(revision) => {
            let hex = revision
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if hex && (revision.len() == 40 || revision.len() == 64) {
                (RevisionCheck::Valid, format!("source revision {revision}"))
            } else {
                (
                    RevisionCheck::Malformed,
                    format!("spec.source.revision {revision:?} is not a full 40- or 64-hex-digit commit id"),
                )
            }
        }
    }
}

/// Evaluates every gate of `input.promotion`. `previous` approvals keep the
/// time each was first seen, and whether it was verified then.
pub fn evaluate(input: &GateInput<'_>, previous: &[Approval]) -> GateVerdict {
    let waived: BTreeSet<GateName> = input
        .promotion
        .spec
        .r#override
        .iter()
        .flat_map(|o| o.waive.iter().copied())
        .collect();
    let gate = approval::policy(input.environment, input.promotion);
    let approval = approval::evaluate(&ApprovalInput {
        gate: gate.as_ref(),
        environment: input.environment.metadata.name.as_deref().unwrap_or_default(),
        promotion: input.promotion,
        bump: version::bump(
            input.artifact.spec.version_scheme,
            input.current.map(|current| current.version.as_str()),
            &input.artifact.spec.version,
        ),
        direction: version::direction(
            input.artifact.spec.version_scheme,
            input.current.map(|current| current.version.as_str()),
            &input.artifact.spec.version,
        ),
        trust: input.trust,
        previous,
        now: input.now,
    });
    let gates: Vec<(GateName, Outcome)> = vec![
        (GateName::ArtifactReady, artifact_ready(input.artifact).into()),
        (GateName::Upstream, upstream(input).into()),
        (GateName::Approval, (approval.state, approval.message).into()),
        (GateName::Provenance, provenance(input)),
        (GateName::Vulnerabilities, vulnerabilities(input)),
        (GateName::Soak, soak(input)),
        (
            GateName::Windows,
            windows::evaluate(&input.environment.spec.gates.windows, input.now.0),
        ),
        (GateName::Compatibility, compatibility(input)),
        (
            GateName::Verification,
            verification::before_rollout(&input.environment.spec.gates.verification),
        ),
    ];
    let gates = gates
        .into_iter()
        .map(|(gate, outcome)| {
            let Outcome {
                state,
                message,
                next_check,
            } = outcome;
            let (state, message, next_check) =
                if waived.contains(&gate) && gate != GateName::Approval && state != GateState::Passed {
                    (GateState::Waived, format!("waived by override: {message}"), None)
                } else {
                    (state, message, next_check)
                };
            GateStatus {
                gate,
                state,
                message,
                last_checked: Some(input.now.clone()),
                next_check: next_check.map(Time),
            }
        })
        .collect();
    GateVerdict {
        gates,
        approvals: approval.approvals,
        approval_rules: approval.rules,
        rejection: approval.rejection,
        approval_notices: approval.notices,
    }
}

fn soak(input: &GateInput<'_>) -> Outcome {
    soak::evaluate(&SoakInput {
        gate: input.environment.spec.gates.soak.as_ref(),
        artifact: input.artifact.metadata.name.as_deref().unwrap_or_default(),
        application: &input.artifact.spec.application,
        rollback: input.rollback,
        upstream: input
            .environment
            .spec
            .upstream
            .iter()
            .map(|name| (name.as_str(), (input.environments)(name)))
            .collect(),
        now: input.now.0,
    })
}

fn compatibility(input: &GateInput<'_>) -> Outcome {
    let candidate = compatibility::Release::of(input.artifact);
    let running: Vec<compatibility::Release<'_>> = input
        .environment
        .status
        .iter()
        .flat_map(|status| &status.applications)
        .filter(|app| app.application != input.artifact.spec.application)
        .map(|app| running_release(app, input.artifacts))
        .chain(
            input
                .in_flight
                .iter()
                .filter(|other| other.spec.application != input.artifact.spec.application)
                .map(|other| compatibility::Release::of(other)),
        )
        .collect();
    compatibility::evaluate(
        input.environment.spec.gates.compatibility.as_ref(),
        &candidate,
        &running,
    )
}

/// What runs for one application, with the ranges its Artifact declares
/// (none, read as SemVer, when the Artifact is gone).
pub fn running_release<'a>(
    app: &'a ApplicationStatus,
    artifacts: &dyn Fn(&str) -> Option<&'a Artifact>,
) -> compatibility::Release<'a> {
    match artifacts(&app.artifact) {
        Some(artifact) => compatibility::Release {
            version: &app.version,
            ..compatibility::Release::of(artifact)
        },
        None => compatibility::Release {
            application: &app.application,
            artifact: &app.artifact,
            version: &app.version,
            scheme: crate::api::VersionScheme::SemVer,
            declares: &[],
        },
    }
}

fn artifact_ready(artifact: &Artifact) -> (GateState, String) {
    let name = artifact.metadata.name.as_deref().unwrap_or_default();
    let status = artifact.status.clone().unwrap_or_default();
    match conditions::find(&status.conditions, crate::api::CONDITION_READY) {
        Some(ready) if ready.status == "True" => (GateState::Passed, format!("Artifact {name} is resolved")),
        Some(ready)
            if ResolutionFailure::from_reason(&ready.reason).is_some_and(ResolutionFailure::is_terminal) =>
        {
            (
                GateState::Failed,
                format!("Artifact {name} can never be promoted: {}", ready.message),
            )
        }
        Some(ready) => (
            GateState::Pending,
            format!("Artifact {name} is not Ready yet: {}", ready.message),
        ),
        None => (
            GateState::Pending,
            format!("Artifact {name} has not been resolved yet"),
        ),
    }
}

fn upstream(input: &GateInput<'_>) -> (GateState, String) {
    let upstream = &input.environment.spec.upstream;
    if upstream.is_empty() {
        return (GateState::Passed, "this environment has no upstream".into());
    }
    let artifact = input.artifact.metadata.name.as_deref().unwrap_or_default();
    if input.rollback {
        return (
            GateState::Passed,
            format!("rollback: {artifact} ran here before, upstream does not apply"),
        );
    }
    let application = &input.artifact.spec.application;
    let mut missing = Vec::new();
    for name in upstream {
        let Some(environment) = (input.environments)(name) else {
            missing.push(format!("upstream Environment {name} does not exist"));
            continue;
        };
        let running = environment.status.as_ref().and_then(|status| {
            status
                .applications
                .iter()
                .find(|app| &app.application == application)
        });
        match running {
            Some(app) if app.artifact == artifact && app.health == Health::Healthy => {}
            Some(app) if app.artifact == artifact => {
                missing.push(format!("{artifact} runs in {name} but is {:?}", app.health))
            }
            Some(app) => missing.push(format!(
                "{name} runs {} ({}), not {artifact}",
                app.artifact, app.version
            )),
            None => missing.push(format!("{artifact} has not succeeded in {name}")),
        }
    }
    if missing.is_empty() {
        (
            GateState::Passed,
            format!("{artifact} is healthy in {}", upstream.join(", ")),
        )
    } else {
        (
            GateState::Pending,
            format!("{}; promote it there first", missing.join("; ")),
        )
    }
}

/// The Provenance gate: what the spec shows (revision, registries), then
/// the signatures and SLSA provenance checked for each digest.
fn provenance(input: &GateInput<'_>) -> Outcome {
    let (state, message) = spec_provenance(input);
    if state != GateState::Passed {
        return (state, message).into();
    }
    let checks = [SupplyChainCheck::Signatures, SupplyChainCheck::Provenance]
        .into_iter()
        .filter_map(|check| supply_chain::outcome(check, input.supply_chain, input.artifact, input.now.0))
        .collect::<Vec<_>>();
    if checks.is_empty() {
        return (state, message).into();
    }
    let worst = checks
        .iter()
        .map(|o| o.state)
        .find(|s| *s == GateState::Failed)
        .or_else(|| checks.iter().map(|o| o.state).find(|s| *s == GateState::Pending))
        .unwrap_or(GateState::Passed);
    let lines: Vec<&str> = checks
        .iter()
        .filter(|o| o.state == worst)
        .map(|o| o.message.as_str())
        .collect();
    let message = match worst {
        GateState::Failed => format!(
            "{}; the image cannot change: build and sign a new Artifact",
            lines.join("; ")
        ),
        _ if message == "no provenance required here" => lines.join("; "),
        _ => format!("{message}; {}", lines.join("; ")),
    };
    Outcome {
        state: worst,
        message,
        next_check: checks.iter().filter_map(|o| o.next_check).min(),
    }
}

/// The Vulnerabilities gate.
fn vulnerabilities(input: &GateInput<'_>) -> Outcome {
    supply_chain::outcome(
        SupplyChainCheck::Vulnerabilities,
        input.supply_chain,
        input.artifact,
        input.now.0,
    )
    .unwrap_or_else(|| Outcome::passed("no vulnerability scan required here"))
}

fn spec_provenance(input: &GateInput<'_>) -> (GateState, String) {
    let Some(gate) = &input.environment.spec.gates.provenance else {
        return (GateState::Passed, "no provenance required here".into());
    };
    let mut problems = Vec::new();
    if gate.require_source_revision {
        let (check, message) = revision_check(input.artifact);
        if check != RevisionCheck::Valid {
            problems.push(message);
        }
    }
    if !gate.allowed_registries.is_empty() {
        for image in &input.artifact.spec.images {
            match registry_and_repository(&image.image) {
                Ok((host, repository)) => {
                    let allowed = gate
                        .allowed_registries
                        .iter()
                        .any(|entry| registry_allows(entry, &host, &repository));
                    if !allowed {
                        problems.push(format!(
                            "image {} of component {} is not from an allowed registry ({})",
                            image.image,
                            image.component,
                            gate.allowed_registries.join(", ")
                        ));
                    }
                }
                Err(error) => problems.push(format!("component {}: {error}", image.component)),
            }
        }
    }
    if problems.is_empty() {
        (GateState::Passed, "provenance requirements met".into())
    } else {
        (
            GateState::Failed,
            format!(
                "{}; build a new Artifact that meets spec.gates.provenance",
                problems.join("; ")
            ),
        )
    }
}

/// Whether `entry` of `spec.gates.provenance.allowedRegistries` allows the
/// normalised image `host`/`repository`: the same host (Docker Hub by either
/// name, in any case), and, when the entry names a repository prefix, the
/// repository equal to it or below it, on a `/`.
fn registry_allows(entry: &str, host: &str, repository: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    let (entry_host, prefix) = match entry.split_once('/') {
        Some((entry_host, prefix)) => (entry_host, Some(prefix)),
        None => (entry, None),
    };
    let same_host = canonical_registry(&entry_host.to_ascii_lowercase())
        == canonical_registry(&host.to_ascii_lowercase());
    same_host
        && prefix.is_none_or(|prefix| {
            repository
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact_with_ready(status: &str, reason: &str) -> Artifact {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: shop-1, namespace: shop}}
spec:
  application: shop
  version: 1.0.0
  images: [{{component: backend, image: "registry.example.com/shop/backend:1.0.0"}}]
status:
  conditions:
    - {{type: Ready, status: "{status}", reason: {reason}, message: why, lastTransitionTime: "2026-11-01T00:00:00Z"}}
"#
        ))
        .expect("fixture parses")
    }

    #[test]
    fn an_artifact_that_can_never_resolve_fails_the_gate_and_one_that_may_holds_it() {
        for reason in ["DigestMismatch", "ImageNotFound", "InvalidReference"] {
            assert_eq!(
                artifact_ready(&artifact_with_ready("False", reason)),
                (
                    GateState::Failed,
                    "Artifact shop-1 can never be promoted: why".to_string()
                ),
                "{reason}"
            );
        }
        for reason in [
            "Unauthorized",
            "PullSecretMissing",
            "RegistryUnavailable",
            "RegistryError",
            "Resolving",
            "SomethingNew",
        ] {
            assert_eq!(
                artifact_ready(&artifact_with_ready("False", reason)),
                (
                    GateState::Pending,
                    "Artifact shop-1 is not Ready yet: why".to_string()
                ),
                "{reason}"
            );
        }
        assert_eq!(
            artifact_ready(&artifact_with_ready("True", "Resolved")).0,
            GateState::Passed
        );
    }

    fn allows(entries: &[&str], image: &str) -> bool {
        let (host, repository) = registry_and_repository(image).expect("valid reference");
        entries
            .iter()
            .any(|entry| registry_allows(entry, &host, &repository))
    }

    #[test]
    fn docker_hub_short_names_are_matched_as_normalised() {
        assert!(allows(&["docker.io"], "nginx:1.27"));
        assert!(allows(&["docker.io/library"], "nginx:1.27"));
        assert!(allows(&["docker.io/library/nginx"], "nginx"));
        assert!(allows(&["docker.io/library"], "docker.io/nginx:1.27"));
        assert!(allows(&["docker.io/bitnami"], "bitnami/redis:7"));
        assert!(!allows(&["docker.io/library"], "bitnami/redis:7"));
        // Official images live under library/: an entry naming the bare name is a namespace.
        assert!(!allows(&["docker.io/nginx"], "nginx:1.27"));
        assert!(allows(&["docker.io/nginx"], "nginx/nginx-ingress:3.4"));
        assert!(!allows(&["registry.example.com"], "nginx:1.27"));
    }

    #[test]
    fn index_docker_io_is_docker_io_on_either_side() {
        assert!(allows(&["index.docker.io"], "nginx"));
        assert!(allows(&["index.docker.io/library"], "docker.io/library/nginx"));
        assert!(allows(&["docker.io"], "index.docker.io/library/nginx:1.27"));
        assert!(allows(&["docker.io/bitnami"], "index.docker.io/bitnami/redis"));
    }

    #[test]
    fn a_host_entry_allows_that_host_and_port_only() {
        assert!(allows(&["ghcr.io"], "ghcr.io/acme/api:v1"));
        assert!(allows(&["GHCR.IO"], "ghcr.io/acme/api:v1"));
        assert!(!allows(&["ghcr.io"], "ghcr.io.evil.example/acme/api"));
        // A Docker Hub repository that looks like a host is still on Docker Hub.
        assert!(!allows(&["ghcr.io"], "docker.io/ghcr.io/api"));
        assert!(allows(
            &["registry.example.com:5000"],
            "registry.example.com:5000/shop/api:1"
        ));
        assert!(!allows(
            &["registry.example.com"],
            "registry.example.com:5000/shop/api:1"
        ));
        assert!(!allows(
            &["registry.example.com:5000"],
            "registry.example.com/shop/api:1"
        ));
        assert!(!allows(
            &["registry.example.com:5000"],
            "registry.example.com:5001/shop/api:1"
        ));
        assert!(allows(&["localhost:5000/shop"], "localhost:5000/shop/web"));
        assert!(allows(&["127.0.0.1:5000"], "127.0.0.1:5000/shop/backend:v1.2.3"));
    }

    #[test]
    fn a_repository_prefix_matches_on_whole_segments() {
        assert!(allows(&["ghcr.io/acme"], "ghcr.io/acme/api:v1"));
        assert!(allows(&["ghcr.io/acme/"], "ghcr.io/acme/api:v1"));
        assert!(allows(&["ghcr.io/acme"], "ghcr.io/acme:v1"));
        assert!(allows(&["ghcr.io/acme"], "ghcr.io/acme/team/api"));
        assert!(!allows(&["ghcr.io/acme"], "ghcr.io/acmeevil/x"));
        assert!(!allows(&["ghcr.io/acme/api"], "ghcr.io/acme/api-evil"));
        assert!(!allows(&["ghcr.io/acme/api/"], "ghcr.io/acme"));
        assert!(allows(&["quay.io/x", "ghcr.io/acme"], "ghcr.io/acme/api"));
    }

    #[test]
    fn digests_and_tags_do_not_take_part() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(allows(&["ghcr.io/acme"], &format!("ghcr.io/acme/api@{digest}")));
        assert!(allows(
            &["ghcr.io/acme/api"],
            &format!("ghcr.io/acme/api:v1@{digest}")
        ));
        assert!(allows(&["docker.io/library/nginx"], &format!("nginx@{digest}")));
        assert!(!allows(
            &["ghcr.io/acme/api"],
            &format!("ghcr.io/acme/api2@{digest}")
        ));
    }

    #[test]
    fn the_provenance_gate_names_each_image_it_refuses() {
        let environment: Environment = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: prod, namespace: shop}
spec:
  gates: {provenance: {allowedRegistries: ["ghcr.io/acme", "docker.io/library"]}}
"#,
        )
        .expect("fixture parses");
        let artifact: Artifact = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {name: shop-1, namespace: shop}
spec:
  application: shop
  version: 1.0.0
  images:
    - {component: backend, image: "ghcr.io/acme/backend:1.0.0"}
    - {component: proxy, image: "nginx:1.27"}
    - {component: frontend, image: "ghcr.io/acmeevil/frontend:1.0.0"}
    - {component: broken, image: "Not A Reference"}
"#,
        )
        .expect("fixture parses");
        let promotion = Promotion::new(
            "to-prod",
            crate::api::PromotionSpec {
                artifact: "shop-1".into(),
                environment: "prod".into(),
                reason: None,
                requested_by: None,
                r#override: None,
                approvals: Vec::new(),
            },
        );
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_795_000_000).expect("valid time"));
        let none = |_: &str| None;
        let no_artifacts = |_: &str| None;
        let input = GateInput {
            environment: &environment,
            environments: &none,
            artifacts: &no_artifacts,
            in_flight: &[],
            artifact: &artifact,
            promotion: &promotion,
            current: None,
            rollback: false,
            trust: &ApprovalTrust::Verified,
            supply_chain: &[],
            now: &now,
        };
        assert_eq!(
            provenance(&input),
            Outcome::from((
                GateState::Failed,
                "image ghcr.io/acmeevil/frontend:1.0.0 of component frontend is not from an allowed registry (ghcr.io/acme, docker.io/library); \
                 component broken: \"Not A Reference\" is not a valid image reference; \
                 build a new Artifact that meets spec.gates.provenance"
                    .to_string()
            ))
        );
    }
}
