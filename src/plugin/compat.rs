//! `kubectl hoist compat [ENVIRONMENT]`: the supported version matrix. Per
//! Environment and application: what runs, the ranges its Artifact declares
//! for other applications, what of those runs there, and whether each range
//! holds, checked as the Compatibility gate checks it.

use kube::api::Api;
use kube::{Client, ResourceExt};

use super::status::pipeline_order;
use super::table::{NONE, Table};
use super::{PluginError, get, list};
use crate::api::{Artifact, Environment};
use crate::core::gates::compatibility::{self, Check, running_release};

/// `compat [ENVIRONMENT]`: one matrix per Environment (all of the namespace
/// when `environment` is `None`).
pub async fn compat(
    client: &Client,
    namespace: &str,
    environment: Option<&str>,
) -> Result<String, PluginError> {
    let environments_api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environments = match environment {
        Some(name) => vec![get(&environments_api, "Environment", name, namespace).await?],
        None => list(&environments_api, "Environment", namespace).await?,
    };
    let artifacts_api: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let artifacts = list(&artifacts_api, "Artifact", namespace).await?;
    Ok(render_compat(namespace, &environments, &artifacts))
}

/// The matrices, upstream Environments first.
pub fn render_compat(namespace: &str, environments: &[Environment], artifacts: &[Artifact]) -> String {
    if environments.is_empty() {
        return format!("no Environments in namespace {namespace}\n");
    }
    let lookup = |name: &str| artifacts.iter().find(|a| a.name_any() == name);
    pipeline_order(environments)
        .into_iter()
        .map(|environment| render_environment(environment, &lookup))
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_environment<'a>(
    environment: &'a Environment,
    artifacts: &dyn Fn(&str) -> Option<&'a Artifact>,
) -> String {
    let name = environment.name_any();
    let enforced = match &environment.spec.gates.compatibility {
        Some(gate) if gate.enforce => "enforced",
        Some(_) => "reported, not enforced",
        None => "not checked",
    };
    let mut out = format!("Environment {name} (Compatibility gate: {enforced})\n");
    let applications = environment
        .status
        .as_ref()
        .map(|status| status.applications.as_slice())
        .unwrap_or_default();
    if applications.is_empty() {
        out.push_str("Nothing runs here yet.\n");
        return out;
    }
    let running: Vec<compatibility::Release<'_>> = applications
        .iter()
        .map(|app| running_release(app, artifacts))
        .collect();
    let mut table = Table::new(&[
        "APPLICATION",
        "ARTIFACT",
        "VERSION",
        "DECLARES",
        "RUNS HERE",
        "CHECK",
    ]);
    let mut broken = Vec::new();
    for release in &running {
        let identity = vec![
            release.application.to_string(),
            release.artifact.to_string(),
            release.version.to_string(),
        ];
        if release.declares.is_empty() {
            table.row([identity, vec![NONE.into(), NONE.into(), NONE.into()]].concat());
            continue;
        }
        for range in release.declares {
            let other = running.iter().find(|r| r.application == range.application);
            let check = compatibility::check(range, other);
            let runs = other.map_or_else(
                || NONE.to_string(),
                |o| format!("{} {}", o.application, o.version),
            );
            if !check.holds() {
                broken.push(match &check {
                    Check::BadRange(why) => {
                        format!("{} declares {} {why}", release.artifact, range.application)
                    }
                    _ => format!(
                        "{} needs {} {}, {} runs",
                        release.artifact, range.application, range.versions, runs
                    ),
                });
            }
            table.row(
                [
                    identity.clone(),
                    vec![
                        format!("{} {}", range.application, range.versions),
                        runs,
                        check.word().to_string(),
                    ],
                ]
                .concat(),
            );
        }
    }
    out.push_str(&table.render());
    if broken.is_empty() {
        out.push_str("Every declared range holds.\n");
    } else {
        out.push_str(&format!(
            "{} range(s) do not hold: {}\n",
            broken.len(),
            broken.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).expect("fixture parses")
    }

    fn artifact(name: &str, application: &str, version: &str, compatibility: &str) -> Artifact {
        yaml(&format!(
            "{{apiVersion: hoist.dev/v1alpha1, kind: Artifact, metadata: {{name: {name}, namespace: shop}}, \
             spec: {{application: {application}, version: {version}, images: [{{component: api, image: \"r.example/{application}:{version}\"}}], \
             compatibility: {compatibility}}}}}"
        ))
    }

    #[test]
    fn the_matrix_shows_every_declared_range_against_what_runs_and_sums_up() {
        let prod: Environment = yaml(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: prod, namespace: shop}
spec:
  gates: {compatibility: {enforce: true}}
status:
  applications:
    - {application: payments, artifact: payments-1.4.2, version: 1.4.2, promotion: p1, health: Healthy}
    - {application: search, artifact: search-0.9.0, version: 0.9.0, promotion: p2, health: Healthy}
    - {application: shop, artifact: shop-1.3.0, version: 1.3.0, promotion: p3, health: Healthy}
"#,
        );
        let dev: Environment = yaml(
            "{apiVersion: hoist.dev/v1alpha1, kind: Environment, metadata: {name: dev, namespace: shop}, spec: {}}",
        );
        let artifacts = vec![
            artifact(
                "payments-1.4.2",
                "payments",
                "1.4.2",
                r#"[{application: shop, versions: ">=1.2, <2"}]"#,
            ),
            artifact("search-0.9.0", "search", "0.9.0", "[]"),
            artifact(
                "shop-1.3.0",
                "shop",
                "1.3.0",
                r#"[{application: payments, versions: ">=1.4.0, <2.0.0"}, {application: search, versions: ">=1"}, {application: mail, versions: "^3"}]"#,
            ),
        ];
        assert_eq!(
            render_compat("shop", &[prod, dev], &artifacts),
            "\
Environment dev (Compatibility gate: not checked)
Nothing runs here yet.

Environment prod (Compatibility gate: enforced)
APPLICATION   ARTIFACT         VERSION   DECLARES                   RUNS HERE        CHECK
payments      payments-1.4.2   1.4.2     shop >=1.2, <2             shop 1.3.0       holds
search        search-0.9.0     0.9.0     <none>                     <none>           <none>
shop          shop-1.3.0       1.3.0     payments >=1.4.0, <2.0.0   payments 1.4.2   holds
shop          shop-1.3.0       1.3.0     search >=1                 search 0.9.0     BROKEN
shop          shop-1.3.0       1.3.0     mail ^3                    <none>           not running
1 range(s) do not hold: shop-1.3.0 needs search >=1, search 0.9.0 runs
"
        );
    }
}
