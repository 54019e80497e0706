//! The Helm chart as `helm template` renders it (helm from `.tools/bin`,
//! installed by scripts/setup): two replicas with leader election, a
//! PodDisruptionBudget, a hardened pod, the Lease's RBAC in the release's
//! namespace only, and values checked by `values.schema.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use serde_yaml::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> anyhow::Result<PathBuf> {
    let helm = repo().join(".tools/bin/helm");
    ensure!(
        helm.is_file(),
        "{} is missing: scripts/setup installs helm there",
        helm.display()
    );
    Ok(helm)
}

/// `helm template` of the chart with `args`: the objects, or helm's error.
fn template(args: &[&str]) -> anyhow::Result<Result<Vec<Value>, String>> {
    let output = Command::new(helm()?)
        .args(["template", "hoist", "charts/hoist", "--namespace", "hoist-system"])
        .args(args)
        .current_dir(repo())
        .output()
        .context("running helm template")?;
    if !output.status.success() {
        return Ok(Err(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    let text = String::from_utf8(output.stdout)?;
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let object = Value::deserialize(document)?;
        if !object.is_null() {
            objects.push(object);
        }
    }
    Ok(Ok(objects))
}

use serde::Deserialize as _;

fn rendered(args: &[&str]) -> anyhow::Result<Vec<Value>> {
    template(args)?.map_err(|error| anyhow::anyhow!("helm template {args:?} failed: {error}"))
}

fn refused(args: &[&str]) -> anyhow::Result<String> {
    match template(args)? {
        Ok(_) => anyhow::bail!("helm template {args:?} rendered; it should have been refused"),
        Err(error) => Ok(error),
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_sequence()?.iter().find(|e| e["name"] == name)
}

#[test]
fn defaults_run_two_replicas_with_leader_election_a_budget_and_a_hardened_pod() -> anyhow::Result<()> {
    let objects = rendered(&[])?;
    let deployment = find(&objects, "Deployment", "hoist").context("no Deployment hoist")?;
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"].as_str(),
        Some(format!("ghcr.io/hoist-dev/hoist:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    // The image's own user (scripts/image, Dockerfile).
    assert_eq!(security["runAsUser"], 65532);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");

    let anti = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        anti["podAffinityTerm"]["labelSelector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );

    assert_eq!(
        env(container, "HOIST_LEADER_ELECTION").context("no HOIST_LEADER_ELECTION")?["value"],
        "true"
    );
    assert_eq!(
        env(container, "HOIST_LEASE_NAME").context("no HOIST_LEASE_NAME")?["value"],
        "hoist"
    );
    assert_eq!(
        env(container, "HOIST_LEASE_NAMESPACE").context("no HOIST_LEASE_NAMESPACE")?["valueFrom"]["fieldRef"]
            ["fieldPath"],
        "metadata.namespace"
    );
    for (name, value) in [
        ("HOIST_LEASE_DURATION", "15s"),
        ("HOIST_RENEW_DEADLINE", "10s"),
        ("HOIST_RETRY_PERIOD", "1s"),
    ] {
        assert_eq!(
            env(container, name).with_context(|| format!("no {name}"))?["value"],
            value
        );
    }

    let budget = find(&objects, "PodDisruptionBudget", "hoist").context("no PodDisruptionBudget")?;
    assert_eq!(budget["spec"]["minAvailable"], 1);
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );

    // The Lease: a Role in the release's namespace, by name where RBAC can.
    let role = find(&objects, "Role", "hoist-leader-election").context("no Role for the Lease")?;
    assert_eq!(role["metadata"]["namespace"], "hoist-system");
    assert_eq!(role["rules"][0]["verbs"], serde_yaml::to_value(["create"])?);
    assert_eq!(
        role["rules"][1]["resourceNames"],
        serde_yaml::to_value(["hoist"])?
    );
    assert_eq!(
        role["rules"][1]["verbs"],
        serde_yaml::to_value(["get", "update"])?
    );
    let binding = find(&objects, "RoleBinding", "hoist-leader-election").context("no RoleBinding")?;
    assert_eq!(binding["subjects"][0]["name"], "hoist");
    Ok(())
}

#[test]
fn one_replica_without_election_is_replaced_by_stopping_first() -> anyhow::Result<()> {
    let objects = rendered(&["--set", "replicas=1", "--set", "leaderElection.enabled=false"])?;
    let deployment = find(&objects, "Deployment", "hoist").context("no Deployment hoist")?;
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(env(container, "HOIST_LEADER_ELECTION").is_none());
    assert!(find(&objects, "PodDisruptionBudget", "hoist").is_none());
    assert!(find(&objects, "Role", "hoist-leader-election").is_none());
    Ok(())
}

#[test]
fn two_replicas_without_election_are_refused() -> anyhow::Result<()> {
    let error = refused(&["--set", "leaderElection.enabled=false"])?;
    assert!(
        error.contains("replicas above 1 need leaderElection.enabled"),
        "helm said: {error}"
    );
    Ok(())
}

#[test]
fn the_values_schema_refuses_wrong_types_and_unknown_keys() -> anyhow::Result<()> {
    for (args, path) in [
        (&["--set", "replicas=two"][..], "/replicas"),
        (
            &["--set-string", "leaderElection.enabled=yes"][..],
            "/leaderElection/enabled",
        ),
        (
            &["--set", "leaderElection.leaseDuration=1500ms"][..],
            "/leaderElection/leaseDuration",
        ),
        (&["--set", "image.digest=latest"][..], "/image/digest"),
        (&["--set", "metrics.port=70000"][..], "/metrics/port"),
    ] {
        let error = refused(args)?;
        assert!(
            error.contains("values don't meet the specifications of the schema") && error.contains(path),
            "helm template {args:?} said: {error}"
        );
    }
    // A misspelt key is refused, not silently ignored.
    let error = refused(&["--set", "replica=3"])?;
    assert!(error.contains("replica"), "helm said: {error}");
    Ok(())
}

#[test]
fn allowed_destinations_reach_the_operator_as_entries_it_reads() -> anyhow::Result<()> {
    let container = |objects: &[Value]| -> anyhow::Result<Value> {
        let deployment = find(objects, "Deployment", "hoist").context("no Deployment hoist")?;
        Ok(deployment["spec"]["template"]["spec"]["containers"][0].clone())
    };
    // By default only the host of prometheusAddress is reached (src/core/destinations.rs).
    assert!(env(&container(&rendered(&[])?)?, "HOIST_ALLOWED_DESTINATIONS").is_none());
    let objects = rendered(&[
        "--set",
        "verification.allowedDestinations={prometheus.monitoring:9090,10.20.0.0/16}",
    ])?;
    let variable = env(&container(&objects)?, "HOIST_ALLOWED_DESTINATIONS")
        .context("no HOIST_ALLOWED_DESTINATIONS")?["value"]
        .as_str()
        .context("a value")?
        .to_owned();
    assert_eq!(variable, "prometheus.monitoring:9090,10.20.0.0/16");
    let entries = variable
        .split(',')
        .map(str::parse::<hoist::core::destinations::Allowed>)
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(
        entries.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["prometheus.monitoring:9090", "10.20.0.0/16"]
    );
    let error = refused(&["--set", "verification.allowedDestinations=10.0.0.0/8"])?;
    assert!(
        error.contains("/verification/allowedDestinations"),
        "helm said: {error}"
    );
    Ok(())
}

/// The resources of the rules of `role`, flattened.
fn resources(role: &Value) -> Vec<String> {
    role["rules"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["resources"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|resource| resource.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_namespace_scoped_install_grants_jobs_and_secrets_in_its_namespace_only() -> anyhow::Result<()> {
    let tenant_owned = ["jobs", "secrets", "serviceaccounts"];
    let cluster_wide = rendered(&[])?;
    let role = find(&cluster_wide, "ClusterRole", "hoist").context("no ClusterRole")?;
    for resource in tenant_owned {
        assert!(resources(role).iter().any(|r| r == resource), "{resource}");
    }
    assert!(find(&cluster_wide, "Role", "hoist").is_none());

    let scoped = rendered(&["--set", "watchNamespace=shop"])?;
    let role = find(&scoped, "ClusterRole", "hoist").context("no ClusterRole")?;
    for resource in tenant_owned {
        assert!(
            !resources(role).iter().any(|r| r == resource),
            "{resource} cluster-wide"
        );
    }
    let namespaced = find(&scoped, "Role", "hoist").context("no Role hoist")?;
    assert_eq!(namespaced["metadata"]["namespace"], "shop");
    assert_eq!(resources(namespaced), tenant_owned);
    let binding = find(&scoped, "RoleBinding", "hoist").context("no RoleBinding hoist")?;
    assert_eq!(
        (
            &binding["metadata"]["namespace"],
            &binding["roleRef"]["kind"],
            &binding["roleRef"]["name"],
            &binding["subjects"][0]["name"],
            &binding["subjects"][0]["namespace"]
        ),
        (
            &Value::from("shop"),
            &Value::from("Role"),
            &Value::from("hoist"),
            &Value::from("hoist"),
            &Value::from("hoist-system")
        )
    );
    let container = &find(&scoped, "Deployment", "hoist").context("no Deployment")?["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(
        env(container, "HOIST_WATCH_NAMESPACE").context("no HOIST_WATCH_NAMESPACE")?["value"],
        "shop"
    );
    Ok(())
}

#[test]
fn a_list_of_namespaces_grants_jobs_and_secrets_by_a_role_in_each_and_nowhere_else() -> anyhow::Result<()> {
    let tenant_owned = ["jobs", "secrets", "serviceaccounts"];
    let scoped = rendered(&[
        "--set",
        "watchNamespaces={shop,payments}",
        "--set",
        "watchNamespace=shop",
    ])?;
    let role = find(&scoped, "ClusterRole", "hoist").context("no ClusterRole")?;
    for resource in tenant_owned {
        assert!(
            !resources(role).iter().any(|r| r == resource),
            "{resource} cluster-wide"
        );
    }
    let of_kind = |kind: &str| -> Vec<&Value> {
        scoped
            .iter()
            .filter(|object| object["kind"] == kind && object["metadata"]["name"] == "hoist")
            .collect()
    };
    let roles = of_kind("Role");
    let bindings = of_kind("RoleBinding");
    let namespaces = |objects: &[&Value]| -> Vec<Value> {
        objects
            .iter()
            .map(|o| o["metadata"]["namespace"].clone())
            .collect()
    };
    assert_eq!(namespaces(&roles), [Value::from("payments"), Value::from("shop")]);
    assert_eq!(
        namespaces(&bindings),
        [Value::from("payments"), Value::from("shop")]
    );
    for role in &roles {
        assert_eq!(resources(role), tenant_owned);
    }
    for binding in &bindings {
        assert_eq!(
            (&binding["roleRef"]["kind"], &binding["roleRef"]["name"]),
            (&Value::from("Role"), &Value::from("hoist"))
        );
        assert_eq!(
            (
                &binding["subjects"][0]["name"],
                &binding["subjects"][0]["namespace"]
            ),
            (&Value::from("hoist"), &Value::from("hoist-system"))
        );
    }
    let container = &find(&scoped, "Deployment", "hoist").context("no Deployment")?["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(
        env(container, "HOIST_WATCH_NAMESPACE").context("no HOIST_WATCH_NAMESPACE")?["value"],
        "payments,shop"
    );
    kubernetes_validate(&roles.iter().chain(&bindings).copied().collect::<Vec<_>>())?;
    assert!(
        refused(&["--set", "watchNamespaces={Shop}"])?.contains("watchNamespaces"),
        "not a namespace name"
    );
    Ok(())
}

#[test]
fn every_operator_rule_says_why_and_what_a_holder_of_the_token_could_do() -> anyhow::Result<()> {
    for file in [
        "operator-rules.yaml",
        "operator-namespace-rules.yaml",
        "agent-local-rules.yaml",
        "agent-hub-rules.yaml",
        "agent-hub-namespace-rules.yaml",
        "argo-rollouts-rules.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("charts/hoist/files").join(file))?;
        let lines: Vec<&str> = text.lines().collect();
        let mut rules = 0;
        for (index, line) in lines.iter().enumerate() {
            if !line.starts_with("- apiGroups:") {
                continue;
            }
            rules += 1;
            let comment: Vec<&str> = lines[..index]
                .iter()
                .rev()
                .take_while(|line| line.starts_with('#'))
                .copied()
                .collect();
            assert!(
                comment.len() >= 2
                    && comment
                        .iter()
                        .any(|line| line.starts_with("# Holder of the token:")),
                "{file}: the rule at line {} needs a comment saying why and what a holder of the token could do",
                index + 1
            );
        }
        assert!(rules > 0, "{file} has no rules");
    }
    Ok(())
}

#[test]
fn a_trusted_root_value_ships_as_a_configmap_the_operator_reads() -> anyhow::Result<()> {
    let root =
        "{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\", \"tlogs\": []}\n";
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), root)?;
    let path = file.path().display().to_string();
    let objects = rendered(&["--set-file", &format!("keyless.trustedRoot={path}")])?;
    let config_map =
        find(&objects, "ConfigMap", "hoist-trusted-root").context("no ConfigMap hoist-trusted-root")?;
    assert_eq!(config_map["data"]["trusted_root.json"], root);
    let deployment = find(&objects, "Deployment", "hoist").context("no Deployment hoist")?;
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        env(container, "HOIST_TRUSTED_ROOT").context("no HOIST_TRUSTED_ROOT")?["value"],
        "/etc/hoist/trusted-root/trusted_root.json"
    );
    assert!(
        container["volumeMounts"]
            .as_sequence()
            .context("no volumeMounts")?
            .iter()
            .any(|mount| mount["name"] == "trusted-root" && mount["mountPath"] == "/etc/hoist/trusted-root"),
        "{container:?}"
    );
    assert!(
        pod["volumes"]
            .as_sequence()
            .context("no volumes")?
            .iter()
            .any(|volume| volume["name"] == "trusted-root"
                && volume["configMap"]["name"] == "hoist-trusted-root"),
        "{pod:?}"
    );

    let defaults = rendered(&[])?;
    assert!(find(&defaults, "ConfigMap", "hoist-trusted-root").is_none());
    let deployment = find(&defaults, "Deployment", "hoist").context("no Deployment hoist")?;
    assert!(
        env(
            &deployment["spec"]["template"]["spec"]["containers"][0],
            "HOIST_TRUSTED_ROOT"
        )
        .is_none()
    );
    Ok(())
}

#[test]
fn the_operator_configuration_ships_as_a_configmap_the_operator_reads_and_a_change_rolls_the_pods()
-> anyhow::Result<()> {
    let objects = rendered(&[])?;
    let config_map = find(&objects, "ConfigMap", "hoist-config").context("no ConfigMap hoist-config")?;
    let text = config_map["data"]["config.yaml"]
        .as_str()
        .context("no config.yaml")?;
    assert_eq!(hoist::core::operator_config::parse(text), Ok(Default::default()));
    let deployment = find(&objects, "Deployment", "hoist").context("no Deployment hoist")?;
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        env(container, "HOIST_CONFIG").context("no HOIST_CONFIG")?["value"],
        "/etc/hoist/config/config.yaml"
    );
    assert!(
        pod["spec"]["volumes"]
            .as_sequence()
            .context("no volumes")?
            .iter()
            .any(|volume| volume["configMap"]["name"] == "hoist-config"),
        "{pod:?}"
    );
    let checksum = &pod["metadata"]["annotations"]["checksum/config"];
    assert!(checksum.is_string(), "{pod:?}");
    let error = refused(&["--set-json", "config={\"unknown\":1}"])?;
    assert!(error.contains("unknown"), "{error}");
    kubernetes_validate(&[config_map, deployment])?;
    Ok(())
}

#[test]
fn registry_retention_reaches_the_operator_configuration_and_the_schema_refuses_a_url() -> anyhow::Result<()>
{
    let objects = rendered(&[
        "--set-json",
        r#"config={"registryRetention":{"registries":["registry.example.com:5000"]}}"#,
    ])?;
    let config_map = find(&objects, "ConfigMap", "hoist-config").context("no ConfigMap hoist-config")?;
    let text = config_map["data"]["config.yaml"]
        .as_str()
        .context("no config.yaml")?;
    let config = hoist::core::operator_config::parse(text)?;
    assert!(config.registry_retention.allows("registry.example.com:5000"));
    let error = refused(&[
        "--set-json",
        r#"config={"registryRetention":{"registries":["https://registry.example.com"]}}"#,
    ])?;
    assert!(error.contains("registryRetention"), "{error}");
    Ok(())
}

/// `.venv/bin/kubernetes-validate --strict` (Kubernetes 1.33) on `objects`
/// written to a file: Ok, or its complaint.
fn kubernetes_validate(objects: &[&Value]) -> anyhow::Result<()> {
    let validate = repo().join(".venv/bin/kubernetes-validate");
    ensure!(
        validate.is_file(),
        "{} is missing: scripts/setup installs it",
        validate.display()
    );
    let mut text = String::new();
    for object in objects {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(object)?);
    }
    let file = std::env::temp_dir().join(format!("hoist-chart-{}.yaml", std::process::id()));
    std::fs::write(&file, text)?;
    let output = Command::new(validate)
        .args(["--strict", "-k", "1.33", "--quiet"])
        .arg(&file)
        .output()
        .context("running kubernetes-validate")?;
    std::fs::remove_file(&file)?;
    ensure!(
        output.status.success(),
        "kubernetes-validate refused: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn the_environments_policy_is_installed_as_shipped_unless_turned_off() -> anyhow::Result<()> {
    let objects = rendered(&[])?;
    let policy = find(&objects, "ValidatingAdmissionPolicy", "hoist-environments").context("no policy")?;
    let binding =
        find(&objects, "ValidatingAdmissionPolicyBinding", "hoist-environments").context("no binding")?;
    let mut shipped =
        serde_yaml::Deserializer::from_str(include_str!("../charts/hoist/files/environment-policy.yaml"));
    let shipped_policy = Value::deserialize(shipped.next().context("the policy document")?)?;
    let shipped_binding = Value::deserialize(shipped.next().context("the binding document")?)?;
    assert_eq!(policy, &shipped_policy);
    assert_eq!(binding, &shipped_binding);
    assert_eq!(
        binding["spec"]["validationActions"],
        serde_yaml::to_value(["Deny"])?
    );
    kubernetes_validate(&[policy, binding])?;
    let container = &find(&objects, "Deployment", "hoist").context("no Deployment")?["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(env(container, "HOIST_TRUST_ENVIRONMENTS_WITHOUT_POLICY"), None);

    let objects = rendered(&[
        "--set",
        "environmentPolicy.install=false",
        "--set",
        "environmentPolicy.trustWithoutPolicy=true",
    ])?;
    assert_eq!(
        find(&objects, "ValidatingAdmissionPolicy", "hoist-environments"),
        None
    );
    assert_eq!(
        find(&objects, "ValidatingAdmissionPolicyBinding", "hoist-environments"),
        None
    );
    let container = &find(&objects, "Deployment", "hoist").context("no Deployment")?["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(
        env(container, "HOIST_TRUST_ENVIRONMENTS_WITHOUT_POLICY").context("no trust flag")?["value"],
        "true"
    );
    Ok(())
}

#[test]
fn agent_mode_runs_hoist_agent_with_the_hub_kubeconfig_and_only_the_local_rules() -> anyhow::Result<()> {
    let objects = rendered(&[
        "--set",
        "mode=agent",
        "--set",
        "agent.cluster=eu",
        "--set",
        "agent.hubKubeconfigSecret=hoist-hub",
        "--set",
        "agent.hubNamespace=hoist-agents",
    ])?;
    let deployment = find(&objects, "Deployment", "hoist").context("no Deployment hoist")?;
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(
        spec["strategy"]["type"], "RollingUpdate",
        "one works, the other stands by"
    );
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"], serde_yaml::to_value(["agent"])?);
    for (name, value) in [
        ("HOIST_CLUSTER", "eu"),
        ("HOIST_HUB_KUBECONFIG", "/etc/hoist/hub/kubeconfig"),
        ("HOIST_AGENT_NAMESPACE", "hoist-agents"),
        ("HOIST_LEASE_DURATION", "15s"),
        ("HOIST_RENEW_DEADLINE", "10s"),
        ("HOIST_RETRY_PERIOD", "1s"),
    ] {
        assert_eq!(env(container, name).context(name)?["value"], value, "{name}");
    }
    for absent in [
        "HOIST_LEADER_ELECTION",
        "HOIST_LEASE_NAME",
        "HOIST_LEASE_NAMESPACE",
    ] {
        assert!(
            env(container, absent).is_none(),
            "{absent}: the agent's Lease is on the hub"
        );
    }
    assert_eq!(
        container["volumeMounts"],
        serde_yaml::from_str::<Value>(
            "[{name: config, mountPath: /etc/hoist/config, readOnly: true}, {name: hub-kubeconfig, mountPath: /etc/hoist/hub, readOnly: true}]"
        )?
    );
    assert_eq!(
        pod["volumes"],
        serde_yaml::from_str::<Value>(
            "[{name: config, configMap: {name: hoist-config}}, {name: hub-kubeconfig, secret: {secretName: hoist-hub, items: [{key: kubeconfig, path: kubeconfig}]}}]"
        )?
    );

    let role = find(&objects, "ClusterRole", "hoist").context("no ClusterRole hoist")?;
    assert_eq!(
        resources(role),
        [
            "deployments",
            "statefulsets",
            "daemonsets",
            "cronjobs",
            "configmaps",
            "namespaces",
            "events",
            "jobs",
            "secrets",
            "serviceaccounts"
        ]
    );
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for absent in [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "Role",
        "RoleBinding",
    ] {
        assert!(!kinds.contains(&absent), "{absent} in {kinds:?}");
    }
    assert!(
        find(&objects, "ClusterRole", "hoist-approver").is_none(),
        "approvers act on the hub"
    );
    kubernetes_validate(&objects.iter().collect::<Vec<_>>())?;

    let missing = refused(&[
        "--set",
        "mode=agent",
        "--set",
        "agent.hubKubeconfigSecret=hoist-hub",
    ])?;
    assert!(missing.contains("mode: agent needs agent.cluster"), "{missing}");
    let missing = refused(&["--set", "mode=agent", "--set", "agent.cluster=eu"])?;
    assert!(
        missing.contains("mode: agent needs agent.hubKubeconfigSecret"),
        "{missing}"
    );
    let wrong = refused(&["--set", "mode=hub"])?;
    assert!(wrong.contains("mode"), "{wrong}");
    Ok(())
}

#[test]
fn the_agents_policy_is_installed_as_shipped_unless_turned_off() -> anyhow::Result<()> {
    let objects = rendered(&[])?;
    let policy = find(&objects, "ValidatingAdmissionPolicy", "hoist-agents").context("no policy")?;
    let binding = find(&objects, "ValidatingAdmissionPolicyBinding", "hoist-agents").context("no binding")?;
    let mut shipped =
        serde_yaml::Deserializer::from_str(include_str!("../charts/hoist/files/agent-policy.yaml"));
    let shipped_policy = Value::deserialize(shipped.next().context("the policy document")?)?;
    let shipped_binding = Value::deserialize(shipped.next().context("the binding document")?)?;
    assert_eq!(policy, &shipped_policy);
    assert_eq!(binding, &shipped_binding);
    assert_eq!(
        include_str!("../deploy/admission/hoist-agents.yaml"),
        include_str!("../charts/hoist/files/agent-policy.yaml"),
        "deploy/admission/hoist-agents.yaml is a copy of the chart's file"
    );
    kubernetes_validate(&[policy, binding])?;
    // No agents: no agent ServiceAccount nor role.
    assert_eq!(find(&objects, "ClusterRole", "hoist-agent"), None);

    let objects = rendered(&["--set", "agents.policy.install=false"])?;
    assert_eq!(find(&objects, "ValidatingAdmissionPolicy", "hoist-agents"), None);
    assert_eq!(
        find(&objects, "ValidatingAdmissionPolicyBinding", "hoist-agents"),
        None
    );
    Ok(())
}

#[test]
fn each_agent_cluster_gets_a_service_account_bound_to_the_agent_rules() -> anyhow::Result<()> {
    let objects = rendered(&["--set", "agents.clusters={eu,us}"])?;
    let cluster_role = find(&objects, "ClusterRole", "hoist-agent").context("no ClusterRole hoist-agent")?;
    assert_eq!(
        resources(cluster_role),
        [
            "artifacts",
            "environments",
            "promotions",
            "artifacts/status",
            "environments/status",
            "promotions/status",
            "events",
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "namespaces"
        ]
    );
    let role = find(&objects, "Role", "hoist-agent").context("no Role hoist-agent")?;
    assert_eq!(role["metadata"]["namespace"], "hoist-system");
    assert_eq!(resources(role), ["leases"]);
    let mut validated = vec![cluster_role, role];
    for cluster in ["eu", "us"] {
        let account = format!("hoist-agent-{cluster}");
        let service_account =
            find(&objects, "ServiceAccount", &account).context("no agent ServiceAccount")?;
        assert_eq!(service_account["metadata"]["namespace"], "hoist-system");
        for (kind, role_kind) in [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")] {
            let binding =
                find(&objects, kind, &format!("hoist-agent-{cluster}")).context("no agent binding")?;
            assert_eq!(
                (
                    &binding["roleRef"]["kind"],
                    &binding["roleRef"]["name"],
                    &binding["subjects"][0]["kind"],
                    &binding["subjects"][0]["name"],
                    &binding["subjects"][0]["namespace"]
                ),
                (
                    &Value::from(role_kind),
                    &Value::from("hoist-agent"),
                    &Value::from("ServiceAccount"),
                    &Value::from(account.as_str()),
                    &Value::from("hoist-system")
                )
            );
            validated.push(binding);
        }
        validated.push(service_account);
    }
    kubernetes_validate(&validated)?;
    assert!(refused(&["--set", "agents.clusters={EU}"])?.contains("/agents/clusters/0"));
    Ok(())
}

/// The rules of `role` granting `resource`, as (apiGroups, verbs).
fn rules_for(role: &Value, resource: &str) -> Vec<(Value, Value)> {
    role["rules"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|rule| {
            rule["resources"]
                .as_sequence()
                .is_some_and(|resources| resources.iter().any(|r| r.as_str() == Some(resource)))
        })
        .map(|rule| (rule["apiGroups"].clone(), rule["verbs"].clone()))
        .collect()
}

#[test]
fn each_target_kind_is_read_watched_and_patched_and_rollouts_only_when_enabled() -> anyhow::Result<()> {
    let verbs: Value = serde_yaml::from_str("[get, list, watch, patch]")?;
    for mode in [
        &[][..],
        &[
            "--set",
            "mode=agent",
            "--set",
            "agent.cluster=eu",
            "--set",
            "agent.hubKubeconfigSecret=hoist-hub",
        ][..],
    ] {
        let objects = rendered(mode)?;
        let role = find(&objects, "ClusterRole", "hoist").context("no ClusterRole")?;
        for (group, resource) in [
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "cronjobs"),
        ] {
            assert_eq!(
                rules_for(role, resource),
                vec![(Value::Sequence(vec![group.into()]), verbs.clone())],
                "{resource} in {mode:?}"
            );
        }
        assert_eq!(rules_for(role, "rollouts"), Vec::new(), "{mode:?}");
        let container = &find(&objects, "Deployment", "hoist").context("no Deployment")?["spec"]["template"]
            ["spec"]["containers"][0];
        assert!(env(container, "HOIST_ARGO_ROLLOUTS").is_none());
    }

    let objects = rendered(&["--set", "argoRollouts.enabled=true"])?;
    let role = find(&objects, "ClusterRole", "hoist").context("no ClusterRole")?;
    assert_eq!(
        rules_for(role, "rollouts"),
        vec![(Value::Sequence(vec!["argoproj.io".into()]), verbs)]
    );
    let container = &find(&objects, "Deployment", "hoist").context("no Deployment")?["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(
        env(container, "HOIST_ARGO_ROLLOUTS"),
        Some(&serde_yaml::from_str::<Value>(
            "{name: HOIST_ARGO_ROLLOUTS, value: \"true\"}"
        )?)
    );
    Ok(())
}

fn dashboard() -> PathBuf {
    repo().join("charts/hoist/dashboards/hoist.json")
}

#[test]
fn the_grafana_dashboard_ships_as_a_configmap_for_the_sidecar_only_when_enabled() -> anyhow::Result<()> {
    let defaults = rendered(&[])?;
    assert!(find(&defaults, "ConfigMap", "hoist-dashboards").is_none());

    let objects = rendered(&[
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        "--set",
        "metrics.grafanaDashboard.annotations.grafana_folder=Platform",
    ])?;
    let config_map =
        find(&objects, "ConfigMap", "hoist-dashboards").context("no ConfigMap hoist-dashboards")?;
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        config_map["metadata"]["annotations"]["grafana_folder"],
        "Platform"
    );
    let shipped = config_map["data"]["hoist.json"]
        .as_str()
        .context("no hoist.json")?;
    assert_eq!(shipped, std::fs::read_to_string(dashboard())?.trim_end());
    let parsed: serde_json::Value = serde_json::from_str(shipped)?;
    assert_eq!(parsed["uid"], "hoist");

    let other = rendered(&[
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        "--set",
        "metrics.grafanaDashboard.labels.dashboards=hoist",
    ])?;
    let labels =
        &find(&other, "ConfigMap", "hoist-dashboards").context("no ConfigMap")?["metadata"]["labels"];
    assert_eq!(
        (&labels["dashboards"], &labels["grafana_dashboard"]),
        (&Value::from("hoist"), &Value::from("1"))
    );
    let error = refused(&["--set", "metrics.grafanaDashboard.enabled=yes"])?;
    assert!(error.contains("grafanaDashboard"), "helm said: {error}");
    Ok(())
}

/// Every query of the dashboard parses as PromQL: `promtool check rules`
/// (Debian's prometheus package, which scripts/prometheus installs) over a
/// rule per query, Grafana's variables given values.
#[test]
fn every_dashboard_query_parses_as_promql() -> anyhow::Result<()> {
    let queries = hoist_testkit::dashboard::queries(&dashboard())?;
    assert!(queries.len() >= 20, "{queries:?}");
    let rules: Vec<serde_json::Value> = queries
        .iter()
        .enumerate()
        .map(|(index, query)| {
            serde_json::json!({
                "record": format!("hoist:dashboard_query_{index}"),
                "expr": hoist_testkit::dashboard::substituted(&query.expr),
            })
        })
        .collect();
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(
        file.path(),
        serde_yaml::to_string(&serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]}))?,
    )?;
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file.path())
        .output()
        .context("running promtool (Debian's prometheus package)")?;
    assert!(
        output.status.success(),
        "promtool refused a query: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // And it would refuse one that is not PromQL.
    let broken = tempfile::NamedTempFile::new()?;
    std::fs::write(
        broken.path(),
        "groups: [{name: broken, rules: [{record: 'hoist:broken', expr: 'sum by (le (rate(x[5m]))'}]}]\n",
    )?;
    let refused = Command::new("promtool")
        .args(["check", "rules"])
        .arg(broken.path())
        .output()?;
    assert!(!refused.status.success());
    Ok(())
}

/// The tenant model's tiers and a tier of two custom Environments, as
/// `--set-json` values of the chart.
const TIERS: &str = r#"{"default": "Low", "tiers": {
    "Low": {"environments": ["prod"]},
    "Mid": {"environments": ["dev", "prod"]},
    "High": {"environments": ["dev", "staging", "prod"], "custom": "Unlimited"},
    "Business": {"environments": ["dev", "staging", "prod"], "custom": "Unlimited"},
    "Pair": {"environments": ["prod"], "custom": 2}}}"#;

/// Creates Environment `name` in `namespace`: Ok, or the API server's refusal.
async fn create_environment(client: &kube::Client, namespace: &str, name: &str) -> Result<(), String> {
    let environment: hoist::api::Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name},
        "spec": {"targets": [{"application": "shop", "component": "backend",
                              "deployment": {"name": "backend"}, "container": "app"}]}
    }))
    .map_err(|error| error.to_string())?;
    kube::Api::<hoist::api::Environment>::namespaced(client.clone(), namespace)
        .create(&Default::default(), &environment)
        .await
        .map(|_| ())
        .map_err(|error| match error {
            kube::Error::Api(status) => status.message,
            other => other.to_string(),
        })
}

/// What the operator says of Environment `name` in a namespace labelled
/// `labels` under `config`'s tiers: `None` when allowed.
fn operator_says(
    config: &hoist::core::operator_config::OperatorConfig,
    labels: &[(&str, &str)],
    name: &str,
) -> Option<String> {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let environment = hoist::api::Environment::new(
        name,
        serde_json::from_value(serde_json::json!({"targets": []})).ok()?,
    );
    hoist::core::tiers::decide(config.tiers.as_ref(), &labels, [&environment], &environment)
        .err()
        .map(|forbidden| forbidden.to_string())
}

#[tokio::test]
async fn the_tier_policy_refuses_at_creation_what_the_tier_forbids_with_the_operators_message()
-> anyhow::Result<()> {
    assert_eq!(
        find(&rendered(&[])?, "ValidatingAdmissionPolicy", "hoist-tiers"),
        None,
        "off by default"
    );
    let error = refused(&["--set", "tierPolicy.enabled=true"])?;
    assert!(error.contains("tierPolicy.enabled needs config.tiers"), "{error}");
    let objects = rendered(&[
        "--set",
        "tierPolicy.enabled=true",
        "--set-json",
        &format!("config.tiers={TIERS}"),
    ])?;
    let policy = find(&objects, "ValidatingAdmissionPolicy", "hoist-tiers").context("no policy")?;
    let binding = find(&objects, "ValidatingAdmissionPolicyBinding", "hoist-tiers").context("no binding")?;
    kubernetes_validate(&[policy, binding])?;
    let config_map = find(&objects, "ConfigMap", "hoist-config").context("no ConfigMap hoist-config")?;
    let config = hoist::core::operator_config::parse(
        config_map["data"]["config.yaml"]
            .as_str()
            .context("no config.yaml")?,
    )?;

    // Bound to this test's namespaces only (a real cluster runs other tests).
    let cluster = hoist_testkit::cluster::TestCluster::new().await?;
    let marker = cluster.namespace().to_string();
    let name = format!("hoist-tiers-{marker}");
    let mut policy: serde_json::Value = serde_json::to_value(policy)?;
    policy["metadata"]["name"] = name.clone().into();
    let mut binding: serde_json::Value = serde_json::to_value(binding)?;
    binding["metadata"]["name"] = name.clone().into();
    binding["spec"]["policyName"] = name.clone().into();
    binding["spec"]["matchResources"] =
        serde_json::json!({"namespaceSelector": {"matchLabels": {"hoist.dev/tier-test": marker}}});
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let client = cluster.client();
    let policies = kube::Api::<ValidatingAdmissionPolicy>::all(client.clone());
    let bindings = kube::Api::<ValidatingAdmissionPolicyBinding>::all(client.clone());
    policies
        .create(&Default::default(), &serde_json::from_value(policy)?)
        .await?;
    bindings
        .create(&Default::default(), &serde_json::from_value(binding)?)
        .await?;

    let namespace = |labels: Vec<(&'static str, String)>| {
        let cluster = &cluster;
        let marker = marker.clone();
        async move {
            let mut all: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            all.push(("hoist.dev/tier-test", marker.as_str()));
            cluster.extra_namespace("hoist-tier", &all).await
        }
    };
    let mid = namespace(vec![("hoist.dev/tier", "Mid".into())]).await?;
    let pair = namespace(vec![("hoist.dev/tier", "Pair".into())]).await?;
    let unknown = namespace(vec![("hoist.dev/tier", "Gold".into())]).await?;
    let unlabelled = namespace(Vec::new()).await?;

    // A real API server enforces a new policy shortly after it is created.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refusal = loop {
        match create_environment(&client, &mid, "staging").await {
            Err(message) => break message,
            Ok(()) => {
                kube::Api::<hoist::api::Environment>::namespaced(client.clone(), &mid)
                    .delete("staging", &Default::default())
                    .await?;
                ensure!(
                    std::time::Instant::now() < deadline,
                    "{name} was not enforced within 30s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    let says = |labels: &[(&str, &str)], environment: &str| operator_says(&config, labels, environment);
    let mid_says =
        says(&[("hoist.dev/tier", "Mid")], "staging").context("the operator forbids staging in Mid")?;
    assert_eq!(
        refusal,
        format!(
            "environments.hoist.dev \"staging\" is forbidden: ValidatingAdmissionPolicy '{name}' with binding \
             '{name}' denied request: {mid_says}"
        )
    );
    assert_eq!(create_environment(&client, &mid, "dev").await, Ok(()));

    let unlabelled_says = says(&[], "dev").context("the default tier forbids dev")?;
    let refusal = create_environment(&client, &unlabelled, "dev").await.unwrap_err();
    assert!(
        refusal.ends_with(&format!("denied request: {unlabelled_says}")),
        "{refusal}"
    );
    assert_eq!(create_environment(&client, &unlabelled, "prod").await, Ok(()));

    let unknown_says = says(&[("hoist.dev/tier", "Gold")], "prod").context("an unknown tier forbids")?;
    let refusal = create_environment(&client, &unknown, "prod").await.unwrap_err();
    assert!(
        refusal.ends_with(&format!("denied request: {unknown_says}")),
        "{refusal}"
    );

    // Names only: a tier with custom Environments admits any name (the
    // operator counts them).
    for custom in ["perf-1", "perf-2", "perf-3"] {
        assert_eq!(create_environment(&client, &pair, custom).await, Ok(()));
    }

    bindings.delete(&name, &Default::default()).await?;
    policies.delete(&name, &Default::default()).await?;
    Ok(())
}
