use super::*;
use crate::core::environment::fixture::environment;

fn unenforced() -> Boundaries {
    Boundaries::Unenforced {
        policy: POLICY.into(),
        reason: "the ValidatingAdmissionPolicy hoist-environments is not installed".into(),
    }
}

const EVERY_FIELD: &str = r#"
  config:
    - {application: shop, secretRefs: [{name: db}]}
    - {application: web}
  notifications:
    - {name: chat, urlSecretRef: {name: hooks, key: chat}, on: [Succeeded], signingKeySecretRef: {name: hooks, key: signing}}
    - {name: audit, url: "https://audit.example.com", on: [Failed]}
  gates:
    verification:
      - {name: smoke, job: {image: smoke:1}}
      - {name: errors, prometheus: {query: up, condition: result > 0, bearerTokenSecret: {name: token, key: t}}}
      - {name: latency, prometheus: {query: up, condition: result > 0}}
    provenance:
      signatures: {keys: [{name: ci, secretRef: {name: keys, key: pub}}, {name: inline, pem: x}]}
      attestation:
        keys: [{name: slsa, secretRef: {name: keys, key: slsa}}]
        keyless: {identities: [{issuer: i, subject: s}], trustedRoot: {secretRef: {name: root, key: r}}}
    vulnerabilities:
      keyless: {identities: [{issuer: i, subject: s}], trustedRoot: {configMapRef: {name: root, key: r}}}
"#;

#[test]
fn every_job_step_and_secret_reference_is_delegated() {
    assert_eq!(
        delegated(&environment("prod", EVERY_FIELD)),
        [
            "spec.gates.verification[0].job",
            "spec.gates.verification[1].prometheus.bearerTokenSecret",
            "spec.config[application=shop].secretRefs",
            "spec.notifications[name=chat].urlSecretRef",
            "spec.notifications[name=chat].signingKeySecretRef",
            "spec.gates.provenance.signatures.keys[name=ci].secretRef",
            "spec.gates.provenance.attestation.keys[name=slsa].secretRef",
            "spec.gates.provenance.attestation.keyless.trustedRoot.secretRef",
        ]
    );
    assert_eq!(delegated(&environment("dev", "")), Vec::<String>::new());
}

#[test]
fn only_an_unenforced_policy_holds_and_only_environments_that_delegate() {
    let prod = environment("prod", EVERY_FIELD);
    assert_eq!(held(&prod, &Boundaries::Enforced), None);
    assert_eq!(held(&prod, &Boundaries::Trusted), None);
    assert_eq!(held(&environment("dev", ""), &unenforced()), None);
    let job_only = environment(
        "staging",
        "  gates: {verification: [{name: smoke, job: {image: smoke:1}}]}",
    );
    assert_eq!(
        held(&job_only, &unenforced()).as_deref(),
        Some(
            "Hoist creates no verification Job and reads no Secret for this Environment \
             (spec.gates.verification[0].job): the ValidatingAdmissionPolicy hoist-environments is not installed, \
             so the API server does not check that its authors may do that themselves; a cluster admin must install \
             the ValidatingAdmissionPolicy hoist-environments and its ValidatingAdmissionPolicyBinding \
             hoist-environments (Kubernetes 1.30+) from the Hoist chart or deploy/admission/, or run the operator \
             with --trust-environments-without-policy"
        )
    );
}
