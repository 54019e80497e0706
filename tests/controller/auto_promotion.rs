//! Auto-promotion by policy: prod promotes patch releases by itself once
//! they run healthy in staging (its canary), a minor release waits for a
//! manual Promotion and prod's status says so, and a hold stops
//! auto-promotion until it is lifted.

use hoist::api::{AutoPromotion, AutoPromotionHold, Environment, Phase, Promotion, VersionPolicy};
use kube::api::Api;

use super::{REVISION, Scenario, TIMEOUT};

/// prod's `AutoPromotion` condition: (status, reason, message).
fn auto_promotion(environment: &Environment) -> Option<(String, String, String)> {
    environment
        .status
        .iter()
        .flat_map(|status| &status.conditions)
        .find(|c| c.type_ == "AutoPromotion")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

impl Scenario {
    /// Releases `version` as Artifact `name` and promotes it through dev
    /// and staging.
    async fn release_into_staging(&self, name: &str, version: &str) {
        self.release(name, version, Some(REVISION)).await;
        self.promote_and_wait(&format!("{name}-to-dev"), name, "dev")
            .await;
        self.promote_and_wait(&format!("{name}-to-staging"), name, "staging")
            .await;
    }

    /// Waits until prod's `AutoPromotion` condition is `wanted`.
    async fn wait_auto_promotion(&self, wanted: (&str, &str, &str)) {
        let wanted = (wanted.0.to_string(), wanted.1.to_string(), wanted.2.to_string());
        self.cluster
            .wait_for::<Environment>("prod", TIMEOUT, |prod| {
                auto_promotion(prod).as_ref() == Some(&wanted)
            })
            .await
            .unwrap_or_else(|error| panic!("{error}; wanted {wanted:?}"));
    }

    /// The names of the Promotions into prod.
    async fn promotions_into_prod(&self) -> Vec<String> {
        let mut names: Vec<String> = Api::<Promotion>::namespaced(self.client(), self.namespace())
            .list(&Default::default())
            .await
            .expect("list promotions")
            .items
            .into_iter()
            .filter(|p| p.spec.environment == "prod")
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn a_patch_release_reaches_prod_after_staging_a_minor_one_waits_and_a_hold_stops_it() {
    let mut scenario = Scenario::new().await;
    let policy = |hold: Option<AutoPromotionHold>| AutoPromotion {
        versions: VersionPolicy::Patch,
        upstream: vec!["staging".into()],
        hold,
    };
    scenario
        .update_environment("prod", |spec| {
            spec.auto_promote = true;
            spec.auto_promotion = Some(policy(None));
            spec.gates.approval = None;
        })
        .await;
    scenario.start().await;

    // A first release is a step only `Any` takes: it is promoted by hand.
    scenario.release_into_staging("shop-1-0-0", "1.0.0").await;
    scenario
        .wait_auto_promotion((
            "False",
            "StepTooLarge",
            "shop-1-0-0 (1.0.0) would be the first release of shop here and autoPromotion.versions is \
             Patch: it waits for a manual Promotion (kubectl hoist promote shop-1-0-0 prod)",
        ))
        .await;
    scenario.promote_and_wait("to-prod", "shop-1-0-0", "prod").await;

    // Held: a patch release that ran in staging is not promoted.
    scenario
        .update_environment("prod", |spec| {
            spec.auto_promotion = Some(policy(Some(AutoPromotionHold {
                reason: "incident 42".into(),
                by: Some("alice".into()),
                since: None,
            })));
        })
        .await;
    scenario
        .wait_auto_promotion((
            "False",
            "Held",
            "held by alice: incident 42; manual Promotions still run; kubectl hoist unhold prod resumes it",
        ))
        .await;
    scenario.release_into_staging("shop-1-0-1", "1.0.1").await;
    scenario.quiet().await;
    assert_eq!(
        scenario.promotions_into_prod().await,
        vec!["to-prod".to_string()],
        "held"
    );

    // Unheld: the patch release reaches prod by itself.
    scenario
        .update_environment("prod", |spec| spec.auto_promotion = Some(policy(None)))
        .await;
    let promoted = scenario.wait_phase("shop-1-0-1-prod", Phase::Succeeded).await;
    assert_eq!(promoted.spec.reason.as_deref(), Some("autoPromote"));
    assert_eq!(
        promoted
            .metadata
            .labels
            .unwrap_or_default()
            .get("hoist.dev/auto-promoted"),
        Some(&"true".to_string())
    );
    scenario
        .wait_auto_promotion((
            "True",
            "Active",
            "promotes newer Ready Artifacts of the same major and minor version once it runs healthy in \
             staging",
        ))
        .await;

    // A minor release waits, and prod's status says so.
    scenario.release_into_staging("shop-1-1-0", "1.1.0").await;
    scenario
        .wait_auto_promotion((
            "False",
            "StepTooLarge",
            "shop-1-1-0 (1.1.0) is a minor bump from 1.0.1 and autoPromotion.versions is Patch: it waits \
             for a manual Promotion (kubectl hoist promote shop-1-1-0 prod)",
        ))
        .await;
    scenario.quiet().await;
    assert_eq!(
        scenario.promotions_into_prod().await,
        vec!["shop-1-0-1-prod".to_string(), "to-prod".to_string()]
    );
    let prod = scenario.environment("prod").await;
    assert_eq!(
        prod.status.expect("status").applications[0].artifact,
        "shop-1-0-1"
    );
    scenario.stop().await;
}
