//! The ArtifactReady gate: every image of the Artifact is resolved to a
//! digest; one that never can be fails the gate.

use crate::api::Artifact;
use crate::core::conditions;
use crate::core::reasons::ResolutionFailure;

use super::outcome::Outcome;

pub fn evaluate(artifact: &Artifact) -> Outcome {
    let name = artifact.metadata.name.as_deref().unwrap_or_default();
    let status = artifact.status.clone().unwrap_or_default();
    match conditions::find(&status.conditions, crate::api::CONDITION_READY) {
        Some(ready) if ready.status == "True" => Outcome::passed(format!("Artifact {name} is resolved")),
        Some(ready)
            if ready
                .reason
                .parse::<ResolutionFailure>()
                .is_ok_and(ResolutionFailure::is_terminal) =>
        {
            Outcome::failed(format!(
                "Artifact {name} can never be promoted: {}",
                ready.message
            ))
        }
        Some(ready) => Outcome::pending(format!("Artifact {name} is not Ready yet: {}", ready.message)),
        None => Outcome::pending(format!("Artifact {name} has not been resolved yet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GateState;

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
                evaluate(&artifact_with_ready("False", reason)),
                Outcome::failed("Artifact shop-1 can never be promoted: why"),
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
                evaluate(&artifact_with_ready("False", reason)),
                Outcome::pending("Artifact shop-1 is not Ready yet: why"),
                "{reason}"
            );
        }
        assert_eq!(
            evaluate(&artifact_with_ready("True", "Resolved")).state,
            GateState::Passed
        );
    }
}
