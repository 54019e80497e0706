//! Tenants get only what RBAC already gives them. Some fields of an
//! Environment make the operator act for whoever wrote them, with its own
//! permissions: a verification Job step makes it create Jobs, a Secret
//! reference makes it read that Secret (and send a bearer token to a
//! Prometheus address; a keyless policy's trusted root may be a Secret too). The admission policy hoist-environments
//! (`charts/hoist/files/environment-policy.yaml`) lets only those write
//! such a field who could create the Job or read the Secret themselves;
//! while it is not installed as shipped, the operator acts on none of them,
//! unless the cluster admin runs it trusting Environments without it.

use crate::api::Environment;
use crate::core::supply_chain;

/// The name of the policy (and of its binding) the chart installs.
pub const POLICY: &str = "hoist-environments";
/// The operator flag with which a cluster admin accepts Environments the
/// policy did not check.
pub const TRUST_FLAG: &str = "--trust-environments-without-policy";

/// Whether the API server checks that authors of Environments stay within
/// their RBAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boundaries {
    /// The policy and its binding are installed as shipped.
    Enforced,
    /// They are not, and the cluster admin runs the operator trusting
    /// Environments anyway ([`TRUST_FLAG`]), or `hoist render` reads files
    /// (nothing checked who wrote them; it runs no Job and reads the
    /// Secrets in them with its user's own rights).
    Trusted,
    /// They are not (`reason`): the operator creates no verification Job and
    /// reads no Secret an Environment names.
    Unenforced { policy: String, reason: String },
}

/// The fields of `environment` that make the operator act for its authors,
/// as paths in the words of the admission policy's messages.
pub fn delegated(environment: &Environment) -> Vec<String> {
    let spec = &environment.spec;
    let gates = &spec.gates;
    let mut fields = Vec::new();
    for (index, step) in gates.verification.iter().enumerate() {
        if step.job.is_some() {
            fields.push(format!("spec.gates.verification[{index}].job"));
        }
        if step
            .prometheus
            .as_ref()
            .is_some_and(|check| check.bearer_token_secret.is_some())
        {
            fields.push(format!(
                "spec.gates.verification[{index}].prometheus.bearerTokenSecret"
            ));
        }
    }
    for config in &spec.config {
        if !config.secret_refs.is_empty() {
            fields.push(format!(
                "spec.config[application={}].secretRefs",
                config.application
            ));
        }
    }
    for notification in &spec.notifications {
        if notification.url_secret_ref.is_some() {
            fields.push(format!(
                "spec.notifications[name={}].urlSecretRef",
                notification.name
            ));
        }
        if notification.signing_key_secret_ref.is_some() {
            fields.push(format!(
                "spec.notifications[name={}].signingKeySecretRef",
                notification.name
            ));
        }
    }
    for spec in supply_chain::trust_specs(environment) {
        for key in spec.keys.iter().filter(|key| key.secret_ref.is_some()) {
            fields.push(format!("{}.keys[name={}].secretRef", spec.path, key.name));
        }
        let root = spec.keyless.and_then(|k| k.trusted_root.as_ref());
        if root.is_some_and(|root| root.secret_ref.is_some()) {
            fields.push(format!("{}.keyless.trustedRoot.secretRef", spec.path));
        }
    }
    fields
}

/// Why the operator must not act on `environment`'s Job steps and Secret
/// references, when it must not: the policy is not enforced and the
/// Environment has such fields.
pub fn held(environment: &Environment, boundaries: &Boundaries) -> Option<String> {
    let Boundaries::Unenforced { policy, reason } = boundaries else {
        return None;
    };
    let fields = delegated(environment);
    (!fields.is_empty()).then(|| {
        format!(
            "Hoist creates no verification Job and reads no Secret for this Environment ({}): {reason}, so the \
             API server does not check that its authors may do that themselves; a cluster admin must install the \
             ValidatingAdmissionPolicy {policy} and its ValidatingAdmissionPolicyBinding {policy} (Kubernetes \
             1.30+) from the Hoist chart or deploy/admission/, or run the operator with {TRUST_FLAG}",
            fields.join(", ")
        )
    })
}

#[cfg(test)]
#[path = "tenancy/tests.rs"]
mod tests;
