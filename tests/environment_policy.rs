//! Tenants get only what RBAC already gives them, end to end: the admission
//! policy hoist-environments shipped with the chart refuses, at the API
//! server (stand-in, or a real cluster with HOIST_TEST_KUBECONFIG), an
//! Environment write that adds or changes a verification Job step or a
//! Secret reference its author could not have made directly. (The operator
//! without the policy: tests/controller/verification.rs.)
//!
//! People, each a client of their own through impersonation:
//! - frank may edit Environments in the tenant namespace, nothing else;
//! - grace may edit Environments too, and is granted what each test adds.

use std::time::Duration;

use hoist::api::Environment;
use hoist_testkit::cluster::TestCluster;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);
const FRANK: &str = "frank";
const GRACE: &str = "grace";

struct Tenant {
    cluster: TestCluster,
}

impl Tenant {
    /// A tenant namespace where frank and grace may edit Environments, and
    /// the API server enforces hoist-environments.
    async fn new() -> Self {
        let tenant = Tenant {
            cluster: TestCluster::new().await.expect("test cluster"),
        };
        tenant
            .grant(
                "environment-editor",
                &[FRANK, GRACE],
                json!([{"apiGroups": ["hoist.dev"], "resources": ["environments"],
                        "verbs": ["get", "list", "watch", "create", "patch", "update"]}]),
            )
            .await;
        tenant.await_enforced().await;
        tenant
    }

    fn namespace(&self) -> &str {
        self.cluster.namespace()
    }

    fn admin(&self) -> Client {
        self.cluster.client()
    }

    fn client(&self, user: &str) -> Client {
        self.cluster.user_client(user, &[]).expect("user client")
    }

    /// A Role of `rules` bound to `users`, as a cluster admin grants it.
    async fn grant(&self, name: &str, users: &[&str], rules: serde_json::Value) {
        self.cluster.grant(name, rules, users).await.expect("grant");
    }

    /// `who` applies Environment `name` with `spec` (server-side, as `kubectl apply --server-side`).
    async fn apply(
        &self,
        who: Option<&str>,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<Environment, kube::Error> {
        let client = who.map_or_else(|| self.admin(), |user| self.client(user));
        let body = json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                          "metadata": {"name": name}, "spec": spec});
        Api::<Environment>::namespaced(client, self.namespace())
            .patch(
                name,
                &PatchParams::apply(who.unwrap_or("hoist-tests")).force(),
                &Patch::Apply(&body),
            )
            .await
    }

    /// Waits until a write the policy refuses is refused: a real API server
    /// enforces a new policy shortly after it is created.
    async fn await_enforced(&self) {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            match self.apply(Some(FRANK), "probe", with_job(None)).await {
                Err(kube::Error::Api(status)) if status.message.contains("hoist-environments") => break,
                Err(error) => panic!("probing hoist-environments: {error}"),
                Ok(_) => {
                    Api::<Environment>::namespaced(self.admin(), self.namespace())
                        .delete("probe", &Default::default())
                        .await
                        .expect("delete the probe");
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the API server did not enforce hoist-environments within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A spec with one target and `extra` merged in.
fn spec(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"targets": [{"application": "shop", "component": "backend",
                                        "deployment": {"name": "backend"}, "container": "app"}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    spec
}

/// A spec whose verification runs a smoke-test Job, as `service_account` when given.
fn with_job(service_account: Option<&str>) -> serde_json::Value {
    let mut job = json!({"image": "registry.example.com/shop/smoke:1", "command": ["/smoke"]});
    if let Some(account) = service_account {
        job["serviceAccountName"] = json!(account);
    }
    spec(json!({"gates": {"verification": [{"name": "smoke", "job": job}]}}))
}

/// The refusal of a write: its code and message.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

const DENIED: &str =
    "ValidatingAdmissionPolicy 'hoist-environments' with binding 'hoist-environments' denied request: ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_job_needs_create_on_jobs() {
    let tenant = Tenant::new().await;
    let ns = tenant.namespace().to_owned();
    let (code, message) = refused(tenant.apply(Some(FRANK), "prod", with_job(None)).await);
    assert_eq!(code, 403, "{message}");
    assert_eq!(
        message,
        format!(
            "environments.hoist.dev \"prod\" is forbidden: {DENIED}user frank may not add or change the verification Job \
             of environment prod (spec.gates.verification[0].job): needs RBAC verb create on jobs.batch in namespace {ns}"
        )
    );
    tenant
        .grant(
            "job-creator",
            &[FRANK],
            json!([{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]),
        )
        .await;
    tenant
        .apply(Some(FRANK), "prod", with_job(None))
        .await
        .expect("frank may create Jobs now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_job_as_a_service_account_needs_to_act_as_it() {
    let tenant = Tenant::new().await;
    let ns = tenant.namespace().to_owned();
    let jobs = json!({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]});
    tenant.grant("job-creator", &[FRANK, GRACE], json!([jobs])).await;
    let (code, message) = refused(
        tenant
            .apply(Some(FRANK), "prod", with_job(Some("deployer")))
            .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.ends_with(&format!(
            "{DENIED}user frank may not run a verification Job of environment prod as ServiceAccount deployer \
             (spec.gates.verification[0].job.serviceAccountName): needs RBAC verb impersonate on serviceaccounts/deployer, \
             or create on serviceaccounts/token, in namespace {ns}"
        )),
        "{message}"
    );
    // Impersonating the ServiceAccount is acting as it …
    tenant
        .grant(
            "deployer-impersonator",
            &[FRANK],
            json!([{"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["deployer"],
                    "verbs": ["impersonate"]}]),
        )
        .await;
    tenant
        .apply(Some(FRANK), "prod", with_job(Some("deployer")))
        .await
        .expect("frank may act as deployer");
    // … and so is asking for its tokens.
    tenant
        .grant(
            "deployer-tokens",
            &[GRACE],
            json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["deployer"],
                    "verbs": ["create"]}]),
        )
        .await;
    tenant
        .apply(Some(GRACE), "staging", with_job(Some("deployer")))
        .await
        .expect("grace may act as deployer");
    let (_, message) = refused(
        tenant
            .apply(Some(GRACE), "staging", with_job(Some("builder")))
            .await,
    );
    assert!(message.contains("as ServiceAccount builder"), "{message}");
}

/// Each field that names a Secret, as a spec referencing `secret` there.
fn secret_references(secret: &str) -> Vec<(&'static str, serde_json::Value)> {
    let key = |list: &str| json!([{"name": "release-ci", "secretRef": {"name": secret, "key": list}}]);
    let keyless = json!({
        "identities": [{"issuer": "https://token.actions.githubusercontent.com",
                        "subject": "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main"}],
        "trustedRoot": {"secretRef": {"name": secret, "key": "trusted_root.json"}}
    });
    vec![
        (
            "spec.config[application=shop].secretRefs",
            spec(json!({"config": [{"application": "shop", "secretRefs": [{"name": secret}]}]})),
        ),
        (
            "spec.gates.verification[0].prometheus.bearerTokenSecret",
            spec(
                json!({"gates": {"verification": [{"name": "errors", "prometheus": {
                "address": "http://prometheus.monitoring:9090",
                "bearerTokenSecret": {"name": secret, "key": "token"},
                "query": "sum(rate(errors[5m]))", "condition": "result < 0.01"}}]}}),
            ),
        ),
        (
            "spec.notifications[name=chat].urlSecretRef",
            spec(
                json!({"notifications": [{"name": "chat", "urlSecretRef": {"name": secret, "key": "url"},
                "on": ["Succeeded"]}]}),
            ),
        ),
        (
            "spec.notifications[name=chat].signingKeySecretRef",
            spec(
                json!({"notifications": [{"name": "chat", "url": "https://hooks.example.com/hoist",
                "on": ["Failed"], "signingKeySecretRef": {"name": secret, "key": "signing"}}]}),
            ),
        ),
        (
            "spec.gates.provenance.signatures.keys[name=release-ci].secretRef",
            spec(json!({"gates": {"provenance": {"signatures": {"keys": key("cosign.pub")}}}})),
        ),
        (
            "spec.gates.provenance.attestation.keys[name=release-ci].secretRef",
            spec(json!({"gates": {"provenance": {"attestation": {"keys": key("cosign.pub")}}}})),
        ),
        (
            "spec.gates.vulnerabilities.keys[name=release-ci].secretRef",
            spec(json!({"gates": {"vulnerabilities": {"keys": key("cosign.pub")}}})),
        ),
        // Keyless-only policies: no keys, the trusted root in a Secret.
        (
            "spec.gates.provenance.signatures.keyless.trustedRoot.secretRef",
            spec(json!({"gates": {"provenance": {"signatures": {"keyless": keyless}}}})),
        ),
        (
            "spec.gates.provenance.attestation.keyless.trustedRoot.secretRef",
            spec(json!({"gates": {"provenance": {"attestation": {"keyless": keyless}}}})),
        ),
        (
            "spec.gates.vulnerabilities.keyless.trustedRoot.secretRef",
            spec(json!({"gates": {"vulnerabilities": {"keyless": keyless}}})),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reference_needs_get_on_that_secret() {
    let tenant = Tenant::new().await;
    let ns = tenant.namespace().to_owned();
    tenant
        .grant(
            "shared-reader",
            &[FRANK],
            json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["shared"], "verbs": ["get"]}]),
        )
        .await;
    for (index, (field, spec)) in secret_references("db-password").into_iter().enumerate() {
        let name = format!("env-{index}");
        let (code, message) = refused(tenant.apply(Some(FRANK), &name, spec).await);
        assert_eq!(code, 403, "{field}: {message}");
        assert!(
            message.ends_with(&format!(
                "{DENIED}user frank may not reference Secret db-password in environment {name} ({field}): \
                 needs RBAC verb get on secrets/db-password in namespace {ns}"
            )),
            "{field}: {message}"
        );
    }
    // The Secret frank may read, he may reference anywhere.
    for (index, (field, spec)) in secret_references("shared").into_iter().enumerate() {
        tenant
            .apply(Some(FRANK), &format!("env-{index}"), spec)
            .await
            .unwrap_or_else(|error| panic!("{field}: {error}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_is_added_or_changed_needs_the_permission() {
    let tenant = Tenant::new().await;
    // The admin sets up prod with a Job step and every kind of Secret reference.
    let mut prod = with_job(Some("deployer"));
    for (_, spec) in secret_references("db-password") {
        merge(&mut prod, &spec);
    }
    tenant
        .apply(None, "prod", prod.clone())
        .await
        .expect("the admin may");
    // frank, who may neither create Jobs nor read Secrets, changes the rest.
    let mut edited = prod.clone();
    edited["autoPromote"] = json!(true);
    edited["historyLimit"] = json!(5);
    tenant
        .apply(Some(FRANK), "prod", edited.clone())
        .await
        .expect("unrelated fields need nothing more");
    // Changing the Job, or where the bearer token goes, is not unrelated.
    let mut job = edited.clone();
    job["gates"]["verification"][0]["job"]["image"] = json!("registry.example.com/shop/smoke:2");
    let (_, message) = refused(tenant.apply(Some(FRANK), "prod", job).await);
    assert!(
        message.contains("user frank may not add or change the verification Job of environment prod (spec.gates.verification[0].job)"),
        "{message}"
    );
    let mut address = edited.clone();
    address["gates"]["verification"][1]["prometheus"]["address"] = json!("http://collector.example.com");
    let (_, message) = refused(tenant.apply(Some(FRANK), "prod", address).await);
    assert!(
        message.contains(
            "user frank may not reference Secret db-password in environment prod (spec.gates.verification[1].prometheus.bearerTokenSecret)"
        ),
        "{message}"
    );
    // Removing references needs nothing.
    let mut removed = edited;
    removed["config"] = json!([]);
    tenant
        .apply(Some(FRANK), "prod", removed)
        .await
        .expect("removing a Secret reference needs nothing");
}

/// `extra`'s fields merged into `spec`, verification steps appended.
fn merge(spec: &mut serde_json::Value, extra: &serde_json::Value) {
    let steps = spec["gates"]["verification"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (key, value) in extra.as_object().into_iter().flatten() {
        match key.as_str() {
            "gates" => {
                for (gate, value) in value.as_object().into_iter().flatten() {
                    spec["gates"][gate] = value.clone();
                }
            }
            _ => spec[key] = value.clone(),
        }
    }
    if let Some(added) = extra["gates"]["verification"].as_array() {
        spec["gates"]["verification"] = json!([steps, added.clone()].concat());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_one_request_may_add_stays_within_the_api_servers_cel_budget() {
    let tenant = Tenant::new().await;
    let secrets = |count: usize| -> Vec<serde_json::Value> {
        (0..count)
            .map(|index| json!({"name": format!("secret-{index}")}))
            .collect()
    };
    let job = |name: &str, account: &str| json!({"name": name, "job": {"image": "smoke:1", "serviceAccountName": account}});
    let most = spec(json!({
        "config": [{"application": "shop", "secretRefs": secrets(16)}],
        "gates": {"verification": [job("first", "deployer"), job("second", "tester")]}
    }));
    // 1 check for the Jobs, 2 per ServiceAccount, 1 per Secret: 21 × 350,000.
    tenant.apply(None, "prod", most).await.expect("within the budget");
    let (code, message) = refused(
        tenant
            .apply(
                None,
                "staging",
                spec(json!({"config": [
                    {"application": "shop", "secretRefs": secrets(16)},
                    {"application": "cart", "secretRefs": [{"name": "secret-16"}]}
                ]})),
            )
            .await,
    );
    assert_eq!(code, 403, "{message}");
    let admin = tenant.cluster.admin_user().to_owned();
    assert!(
        message.ends_with(&format!(
            "{DENIED}user {admin} may not add or change references to 17 Secrets of environment staging in one \
             request: at most 16 (each is an authorization check within the CEL cost budget of the API server); \
             apply the change in parts"
        )),
        "{message}"
    );
}
