//! CRDs are refused as kube-apiserver refuses them when their
//! `x-kubernetes-validations` do not fit the CEL cost budget: Hoist's CRD
//! from before `spec.images[].digest` had a `maxLength` (refused by
//! kube-apiserver 1.36.2 with factor 4.0x), the generated CRDs in `crds/`
//! (accepted), a rule that fits only because of a `maxItems`, and a schema
//! whose rules fit one by one but not together.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube_standin::schema::{ExpressionCost, check_rules};
use kube_standin::{Error, StandIn};
use serde_json::{Value, json};

const GENERATED: [(&str, &str); 3] = [
    ("artifacts.yaml", include_str!("../../../crds/artifacts.yaml")),
    (
        "environments.yaml",
        include_str!("../../../crds/environments.yaml"),
    ),
    ("promotions.yaml", include_str!("../../../crds/promotions.yaml")),
];

const SCHEMA: &str = "spec.validation.openAPIV3Schema";

const ADVICE: &str = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";

fn generated(file: &str) -> anyhow::Result<Value> {
    let (_, yaml) = GENERATED
        .iter()
        .find(|(name, _)| *name == file)
        .ok_or_else(|| anyhow::anyhow!("no generated {file}"))?;
    Ok(serde_yaml::from_str(yaml)?)
}

fn openapi(crd: &Value) -> anyhow::Result<&Value> {
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .ok_or_else(|| anyhow::anyhow!("CRD without openAPIV3Schema"))
}

/// Removes a bound from the node at `pointer` below the CRD's schema.
fn without(mut crd: Value, pointer: &str, bound: &str) -> anyhow::Result<Value> {
    let node = crd
        .pointer_mut(&format!("/spec/versions/0/schema/openAPIV3Schema{pointer}"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow::anyhow!("no schema node at {pointer}"))?;
    node.remove(bound)
        .ok_or_else(|| anyhow::anyhow!("{pointer} has no {bound}"))?;
    Ok(crd)
}

/// The CRD as it was before the digest got its maxLength.
fn artifacts_as_refused_in_production() -> anyhow::Result<Value> {
    without(
        generated("artifacts.yaml")?,
        "/properties/spec/properties/images/items/properties/digest",
        "maxLength",
    )
}

const DIGEST_RULE_PATH: &str = "spec.validation.openAPIV3Schema.properties[spec].properties[images].items.x-kubernetes-validations[0].rule";

async fn create(server: &StandIn, crd: &Value) -> anyhow::Result<kube::core::Status> {
    let crd: CustomResourceDefinition = serde_json::from_value(crd.clone())?;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    match crds.create(&PostParams::default(), &crd).await {
        Err(kube::Error::Api(status)) => Ok(*status),
        Err(other) => Err(other.into()),
        Ok(_) => anyhow::bail!("the CRD was accepted"),
    }
}

#[tokio::test]
async fn the_artifact_crd_without_a_digest_max_length_is_refused_as_kube_apiserver_refused_it()
-> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let status = create(&server, &artifacts_as_refused_in_production()?).await?;
    let error = format!(
        "{DIGEST_RULE_PATH}: Forbidden: estimated rule cost exceeds budget by factor of 4.0x {ADVICE}"
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        format!("CustomResourceDefinition.apiextensions.k8s.io \"artifacts.hoist.dev\" is invalid: {error}")
    );
    let causes: Vec<(String, String)> = status
        .details
        .map(|details| details.causes)
        .unwrap_or_default()
        .into_iter()
        .map(|cause| (cause.field, cause.reason))
        .collect();
    assert_eq!(
        causes,
        vec![(DIGEST_RULE_PATH.to_owned(), "FieldValueForbidden".to_owned())]
    );
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    assert!(
        crds.get_opt("artifacts.hoist.dev").await?.is_none(),
        "nothing was stored"
    );
    Ok(())
}

#[tokio::test]
async fn a_stand_in_given_the_refused_crd_does_not_start() -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_json::from_value(artifacts_as_refused_in_production()?)?;
    match StandIn::builder().crds(vec![crd]).start().await {
        Err(Error::CrdRefused { name, message }) => {
            assert_eq!(name, "artifacts.hoist.dev");
            assert!(
                message.ends_with(&format!(
                    "{DIGEST_RULE_PATH}: Forbidden: estimated rule cost exceeds budget by factor of 4.0x {ADVICE}"
                )),
                "{message}"
            );
            Ok(())
        }
        Err(other) => Err(other.into()),
        Ok(_) => anyhow::bail!("the stand-in started with a CRD kube-apiserver refuses"),
    }
}

/// The schema fixture of the stand-in's own tests is that old CRD too.
#[test]
fn the_old_fixture_is_refused_for_the_digest_rule_alone() -> anyhow::Result<()> {
    let fixture: Value = serde_yaml::from_str(include_str!("fixtures/artifacts.yaml"))?;
    let report = check_rules(openapi(&fixture)?, SCHEMA);
    let messages: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![format!(
            "{DIGEST_RULE_PATH}: Forbidden: estimated rule cost exceeds budget by factor of 4.0x {ADVICE}"
        )]
    );
    let digest_rule = report
        .costs
        .iter()
        .find(|cost| cost.path == DIGEST_RULE_PATH)
        .map(|cost| cost.cost);
    // 629,360 per image, 64 images.
    assert_eq!(digest_rule, Some(40_279_040));
    Ok(())
}

fn cost(path: &str, expression: &str, cost: u64) -> ExpressionCost {
    ExpressionCost {
        path: format!("{SCHEMA}.{path}"),
        expression: expression.to_owned(),
        cost,
        limit: 10_000_000,
    }
}

#[tokio::test]
async fn the_generated_crds_are_accepted_with_these_costs() -> anyhow::Result<()> {
    let mut crds = Vec::new();
    let mut figures = Vec::new();
    for (file, _) in GENERATED {
        let crd = generated(file)?;
        let report = check_rules(openapi(&crd)?, SCHEMA);
        assert_eq!(report.errors, vec![], "{file}");
        println!("{file}: total {} of {}", report.total, report.total_limit);
        for cost in &report.costs {
            println!(
                "  {} = {} (limit {}): {}",
                cost.path, cost.cost, cost.limit, cost.expression
            );
        }
        figures.push((file, report.costs));
        crds.push(serde_json::from_value::<CustomResourceDefinition>(crd)?);
    }
    let rules = |file: &str| -> Vec<ExpressionCost> {
        figures
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, costs)| costs.clone())
            .unwrap_or_default()
    };
    let artifact_rule = |i: usize| {
        let crd = generated("artifacts.yaml").ok()?;
        crd.pointer(&format!(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations/{i}/rule"
        ))
        .and_then(Value::as_str)
        .map(str::to_owned)
    };
    assert_eq!(
        rules("artifacts.yaml"),
        vec![
            cost(
                "properties[spec].properties[images].items.x-kubernetes-validations[0].rule",
                "!has(self.digest) || !self.image.contains('@') || self.image.endsWith('@' + self.digest)",
                272 * 64
            ),
            cost(
                "properties[spec].x-kubernetes-validations[0].rule",
                "self == oldSelf",
                2
            ),
            cost(
                "properties[spec].x-kubernetes-validations[1].rule",
                &artifact_rule(1).unwrap_or_default(),
                3 + 52 * 22 + 2
            ),
            cost(
                "properties[spec].x-kubernetes-validations[2].rule",
                &artifact_rule(2).unwrap_or_default(),
                3 + 52 * 11 + 2
            ),
        ]
    );
    assert_eq!(
        rules("environments.yaml"),
        vec![
            cost(
                "properties[spec].properties[gates].properties[approval].properties[rules].items.x-kubernetes-validations[0].rule",
                "(has(self.users) && size(self.users) > 0) || (has(self.groups) && size(self.groups) > 0)",
                // 10 per rule, at most 16 rules.
                10 * 16
            ),
            cost(
                "properties[spec].properties[gates].properties[approval].x-kubernetes-validations[0].rule",
                "!has(self.rules) || size(self.rules) == 0 || ((!has(self.users) || size(self.users) == 0) && (!has(self.groups) || size(self.groups) == 0))",
                18
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[attestation].properties[keyless].properties[identities].items.x-kubernetes-validations[0].rule",
                "has(self.subject) != has(self.subjectRegExp)",
                // 3 per identity, at most 8 identities.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[attestation].properties[keyless].properties[trustedRoot].x-kubernetes-validations[0].rule",
                "has(self.configMapRef) != has(self.secretRef)",
                3
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[attestation].properties[keys].items.x-kubernetes-validations[0].rule",
                "has(self.pem) != has(self.secretRef)",
                // 3 per key, at most 8 keys.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[attestation].x-kubernetes-validations[0].rule",
                "(has(self.keys) && size(self.keys) > 0) || has(self.keyless)",
                6
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[signatures].properties[keyless].properties[identities].items.x-kubernetes-validations[0].rule",
                "has(self.subject) != has(self.subjectRegExp)",
                // 3 per identity, at most 8 identities.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[signatures].properties[keyless].properties[trustedRoot].x-kubernetes-validations[0].rule",
                "has(self.configMapRef) != has(self.secretRef)",
                3
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[signatures].properties[keys].items.x-kubernetes-validations[0].rule",
                "has(self.pem) != has(self.secretRef)",
                // 3 per key, at most 8 keys.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[provenance].properties[signatures].x-kubernetes-validations[0].rule",
                "(has(self.keys) && size(self.keys) > 0) || has(self.keyless)",
                6
            ),
            cost(
                "properties[spec].properties[gates].properties[verification].items.properties[prometheus].x-kubernetes-validations[0].rule",
                "has(self.baseline) == self.condition.contains('baseline')",
                // 30 per step (contains reads the condition's 64 characters, 256 bytes), at most 8 steps.
                30 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[verification].items.x-kubernetes-validations[0].rule",
                "has(self.job) != has(self.prometheus)",
                // 3 per step, at most 8 steps.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[vulnerabilities].properties[keyless].properties[identities].items.x-kubernetes-validations[0].rule",
                "has(self.subject) != has(self.subjectRegExp)",
                // 3 per identity, at most 8 identities.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[vulnerabilities].properties[keyless].properties[trustedRoot].x-kubernetes-validations[0].rule",
                "has(self.configMapRef) != has(self.secretRef)",
                3
            ),
            cost(
                "properties[spec].properties[gates].properties[vulnerabilities].properties[keys].items.x-kubernetes-validations[0].rule",
                "has(self.pem) != has(self.secretRef)",
                // 3 per key, at most 8 keys.
                3 * 8
            ),
            cost(
                "properties[spec].properties[gates].properties[vulnerabilities].x-kubernetes-validations[0].rule",
                "(has(self.keys) && size(self.keys) > 0) || has(self.keyless)",
                6
            ),
            cost(
                "properties[spec].properties[gates].properties[windows].items.x-kubernetes-validations[0].rule",
                "has(self.schedule) ? (has(self.duration) && !has(self.start) && !has(self.end)) : (has(self.start) && has(self.end) && !has(self.duration) && !has(self.timeZone))",
                // 7 field tests per window, at most 16 windows.
                7 * 16
            ),
            cost(
                "properties[spec].properties[notifications].items.x-kubernetes-validations[0].rule",
                "has(self.url) != has(self.urlSecretRef)",
                // 3 per notification, at most 8.
                3 * 8
            ),
            cost(
                "properties[spec].properties[targets].items.x-kubernetes-validations[0].rule",
                "has(self.deployment) != has(self.workload)",
                // 3 per target, at most 128 targets.
                3 * 128
            ),
        ]
    );
    assert_eq!(
        rules("promotions.yaml"),
        vec![
            cost(
                "properties[spec].properties[override].x-kubernetes-validations[0].rule",
                "!self.waive.exists(g, g == 'Approval')",
                52
            ),
            cost(
                "properties[spec].x-kubernetes-validations[0].rule",
                "self.artifact == oldSelf.artifact && self.environment == oldSelf.environment",
                212
            ),
            cost(
                "properties[spec].x-kubernetes-validations[1].rule",
                "has(self.reason) == has(oldSelf.reason) && (!has(self.reason) || self.reason == oldSelf.reason)",
                419
            ),
            cost(
                "properties[spec].x-kubernetes-validations[2].rule",
                "has(self.override) == has(oldSelf.override) && (!has(self.override) || self.override == oldSelf.override)",
                9
            ),
            cost(
                "properties[spec].x-kubernetes-validations[3].rule",
                "!has(oldSelf.approvals) || (has(self.approvals) && self.approvals.size() >= oldSelf.approvals.size() && oldSelf.approvals.all(a, a in self.approvals))",
                1229
            ),
            cost(
                "properties[spec].x-kubernetes-validations[4].rule",
                "has(self.requestedBy) == has(oldSelf.requestedBy) && (!has(self.requestedBy) || self.requestedBy == oldSelf.requestedBy)",
                214
            ),
        ]
    );
    let server = StandIn::builder().crds(crds).start().await?;
    let served: Api<CustomResourceDefinition> = Api::all(server.client());
    assert_eq!(served.list(&Default::default()).await?.items.len(), 3);
    Ok(())
}

#[tokio::test]
async fn the_append_only_approvals_rule_fits_only_because_of_max_items() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let unbounded = without(
        generated("promotions.yaml")?,
        "/properties/spec/properties/approvals",
        "maxItems",
    )?;
    let status = create(&server, &unbounded).await?;
    let rule = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[3].rule";
    let errors = [
        format!("{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {ADVICE}"),
        format!(
            "{rule}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
        ),
        format!(
            "{SCHEMA}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema \
             exceeds budget by factor of more than 100x {ADVICE}"
        ),
    ];
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        format!(
            "CustomResourceDefinition.apiextensions.k8s.io \"promotions.hoist.dev\" is invalid: [{}]",
            errors.join(", ")
        )
    );
    let report = check_rules(openapi(&unbounded)?, SCHEMA);
    let approvals = report.costs.iter().find(|c| c.path == rule).map(|c| c.cost);
    // 241,978 approvals of at least {"user":""} fit into 3 MiB; each is
    // looked up among as many; 7 more for comparing the two sizes.
    let n: u64 = 241_978;
    assert_eq!(approvals, Some(2 + 1 + 7 + (2 + 1 + n * (2 + 1 + n + 3))));

    let bounded: CustomResourceDefinition = serde_json::from_value(generated("promotions.yaml")?)?;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    crds.create(&PostParams::default(), &bounded).await?;
    Ok(())
}

/// A CRD whose `spec` has `lists` lists of up to 909,090 tags of up to 16
/// characters, each with a rule costing 9,999,992: within the per-rule
/// limit, 11 of them over the per-schema limit.
fn tagged(lists: usize) -> Value {
    let tags = json!({
        "type": "array",
        "maxItems": 909_090,
        "items": {"type": "string", "maxLength": 16},
        "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))", "message": "no gpu tags"}]
    });
    let properties: serde_json::Map<String, Value> = (0..lists)
        .map(|i| (format!("tags{i:02}"), tags.clone()))
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gauges.test.hoist.dev"},
        "spec": {
            "group": "test.hoist.dev",
            "names": {"plural": "gauges", "singular": "gauge", "kind": "Gauge", "listKind": "GaugeList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": properties}}
                }}
            }]
        }
    })
}

#[tokio::test]
async fn rules_that_fit_one_by_one_but_not_together_are_refused_on_create_and_update() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let ten: CustomResourceDefinition = serde_json::from_value(tagged(10))?;
    let stored = crds.create(&PostParams::default(), &ten).await?;

    let contributed = |i: usize| {
        format!(
            "{SCHEMA}.properties[spec].properties[tags{i:02}].x-kubernetes-validations[0].rule: Forbidden: \
             contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
        )
    };
    let errors = [
        contributed(0),
        contributed(1),
        contributed(2),
        contributed(3),
        format!(
            "{SCHEMA}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema \
             exceeds budget by factor of 1.099999x {ADVICE}"
        ),
    ];
    let expected = format!(
        "CustomResourceDefinition.apiextensions.k8s.io \"gauges.test.hoist.dev\" is invalid: [{}]",
        errors.join(", ")
    );
    assert_eq!(
        create(&StandIn::start().await?, &tagged(11)).await?.message,
        expected
    );

    let mut eleven: CustomResourceDefinition = serde_json::from_value(tagged(11))?;
    eleven
        .metadata
        .resource_version
        .clone_from(&stored.metadata.resource_version);
    let status = match crds
        .replace("gauges.test.hoist.dev", &PostParams::default(), &eleven)
        .await
    {
        Err(kube::Error::Api(status)) => *status,
        other => anyhow::bail!("the update was not refused: {other:?}"),
    };
    assert_eq!((status.code, status.message), (422, expected));
    let kept = crds.get("gauges.test.hoist.dev").await?;
    assert_eq!(kept.metadata.resource_version, stored.metadata.resource_version);
    Ok(())
}
