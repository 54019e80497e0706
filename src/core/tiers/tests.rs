use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;

/// The tenant model's tiers, as the README configures them, with a tier
/// of two custom Environments besides.
const TENANT_MODEL: &str = r#"
default: Low
tiers:
  Low: {environments: [prod]}
  Mid: {environments: [dev, prod]}
  High: {environments: [dev, staging, prod], custom: Unlimited}
  Business: {environments: [dev, staging, prod], custom: Unlimited}
  Pair: {environments: [prod], custom: 2}
"#;

fn tiers() -> Tiers {
    serde_yaml::from_str(TENANT_MODEL).expect("the tenant model parses")
}

fn labelled(tier: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_TIER.to_string(), tier.to_string())])
}

/// Environment `name` of namespace shop, not created yet.
fn proposed(name: &str) -> Environment {
    Environment::new(
        name,
        serde_json::from_value(serde_json::json!({"targets": []})).expect("a spec"),
    )
}

/// Environment `name` of namespace shop, created `seconds` after a fixed instant.
fn created(name: &str, seconds: i64) -> Environment {
    let mut environment = proposed(name);
    environment.metadata.namespace = Some("shop".into());
    environment.metadata.creation_timestamp = Some(Time(
        Timestamp::from_second(1_795_000_000 + seconds).expect("a valid instant"),
    ));
    environment
}

#[test]
fn without_tiers_every_environment_is_allowed() {
    let qa = created("qa", 0);
    assert_eq!(decide(None, &labelled("Nonsense"), [&qa], &qa), Ok(()));
}

#[test]
fn a_tier_allows_its_environments_and_forbids_others_by_name() {
    let tiers = tiers();
    let staging = created("staging", 0);
    let dev = created("dev", 1);
    assert_eq!(
        decide(Some(&tiers), &labelled("Mid"), [&staging, &dev], &dev),
        Ok(())
    );
    let forbidden = decide(Some(&tiers), &labelled("Mid"), [&staging, &dev], &staging).unwrap_err();
    assert_eq!(
        forbidden.to_string(),
        "tier Mid (label hoist.dev/tier) allows Environments dev, prod and no custom ones: Environment staging \
         is not one of them; a cluster admin can label the namespace with a tier that allows it"
    );
    assert_eq!(
        decide(Some(&tiers), &labelled("High"), [&staging], &staging),
        Ok(())
    );
    let custom = created("perf-test", 2);
    assert_eq!(
        decide(Some(&tiers), &labelled("Business"), [&custom], &custom),
        Ok(())
    );
}

#[test]
fn a_namespace_without_the_label_is_in_the_default_tier() {
    let tiers = tiers();
    let dev = created("dev", 0);
    let prod = created("prod", 0);
    assert_eq!(decide(Some(&tiers), &BTreeMap::new(), [&prod], &prod), Ok(()));
    assert_eq!(
        decide(Some(&tiers), &BTreeMap::new(), [&dev], &dev),
        Err(Forbidden::NotAllowed {
            tier: "Low".into(),
            selected: Selected::Default,
            allows: "Environments prod and no custom ones".into(),
            environment: "dev".into(),
        })
    );
    assert_eq!(
        decide(Some(&tiers), &BTreeMap::new(), [&dev], &dev)
            .unwrap_err()
            .to_string(),
        "tier Low (the default tier: the namespace has no label hoist.dev/tier) allows Environments prod and no \
         custom ones: Environment dev is not one of them; a cluster admin can label the namespace with a tier \
         that allows it"
    );
}

#[test]
fn an_unknown_tier_forbids_every_environment_naming_the_label_and_the_tiers() {
    let tiers = tiers();
    let prod = created("prod", 0);
    let forbidden = decide(Some(&tiers), &labelled("Gold"), [&prod], &prod).unwrap_err();
    assert_eq!(
        forbidden,
        Forbidden::UnknownTier {
            label: "Gold".into(),
            known: "Business, High, Low, Mid, Pair".into(),
        }
    );
    assert_eq!(
        forbidden.to_string(),
        "the namespace's label hoist.dev/tier=Gold names no tier (tiers: Business, High, Low, Mid, Pair); a \
         cluster admin can label the namespace with one of them"
    );
}

#[test]
fn custom_environments_are_counted_oldest_first_so_a_new_one_never_evicts_an_old_one() {
    let tiers = tiers();
    let prod = created("prod", 0);
    // Created in this order; the names sort the other way.
    let zeta = created("zeta", 1);
    let alpha = created("alpha", 2);
    let newest = created("beta", 3);
    let all = [&prod, &zeta, &alpha, &newest];
    let pair = labelled("Pair");
    assert_eq!(decide(Some(&tiers), &pair, all, &prod), Ok(()));
    assert_eq!(decide(Some(&tiers), &pair, all, &zeta), Ok(()));
    assert_eq!(decide(Some(&tiers), &pair, all, &alpha), Ok(()));
    assert_eq!(
        decide(Some(&tiers), &pair, all, &newest),
        Err(Forbidden::TooMany {
            tier: "Pair".into(),
            selected: Selected::Label,
            allows: "Environments prod and up to 2 custom ones".into(),
            environment: "beta".into(),
            older: "zeta, alpha".into(),
        })
    );
    // The same instant: by name.
    let twin = created("aardvark", 2);
    assert_eq!(
        decide(Some(&tiers), &pair, [&zeta, &alpha, &twin], &alpha)
            .unwrap_err()
            .to_string(),
        "tier Pair (label hoist.dev/tier) allows Environments prod and up to 2 custom ones: Environment alpha \
         is newer than the custom Environments zeta, aardvark; a cluster admin can label the namespace with a \
         tier that allows more, or a custom Environment can be deleted"
    );
}

#[test]
fn an_environment_not_yet_created_counts_as_the_newest() {
    let tiers = tiers();
    let old = created("old", 0);
    let older = created("older", -1);
    let proposed = proposed("aaa");
    assert!(matches!(
        decide(Some(&tiers), &labelled("Pair"), [&old, &older], &proposed),
        Err(Forbidden::TooMany { .. })
    ));
    assert_eq!(decide(Some(&tiers), &labelled("Pair"), [&old], &proposed), Ok(()));
}

#[test]
fn downgrading_forbids_what_the_lower_tier_does_not_allow_and_upgrading_allows_it_again() {
    let tiers = tiers();
    let staging = created("staging", 0);
    assert_eq!(
        decide(Some(&tiers), &labelled("High"), [&staging], &staging),
        Ok(())
    );
    assert!(decide(Some(&tiers), &labelled("Mid"), [&staging], &staging).is_err());
    assert_eq!(
        decide(Some(&tiers), &labelled("Business"), [&staging], &staging),
        Ok(())
    );
}

#[test]
fn what_a_tier_allows_reads_as_a_sentence() {
    let tier = |yaml: &str| {
        serde_yaml::from_str::<Tier>(yaml)
            .expect("a tier parses")
            .allows()
    };
    assert_eq!(
        tier("{environments: [prod]}"),
        "Environments prod and no custom ones"
    );
    assert_eq!(tier("{custom: 1}"), "no named Environments and 1 custom one");
    assert_eq!(
        tier("{environments: [dev, prod], custom: Unlimited}"),
        "Environments dev, prod and any custom ones"
    );
}

#[test]
fn custom_is_a_number_or_unlimited() {
    let custom = |yaml: &str| serde_yaml::from_str::<Tier>(yaml).map(|tier| tier.custom);
    assert_eq!(custom("{}").ok(), Some(Custom::UpTo(0)));
    assert_eq!(custom("{custom: 3}").ok(), Some(Custom::UpTo(3)));
    assert_eq!(custom("{custom: Unlimited}").ok(), Some(Custom::Unlimited));
    for refused in [
        "{custom: -1}",
        "{custom: unlimited}",
        "{custom: 1.5}",
        "{custom: 4294967296}",
    ] {
        let error = custom(refused).unwrap_err().to_string();
        assert!(
            error.contains("expected a number of custom Environments, or Unlimited"),
            "{refused}: {error}"
        );
    }
}

#[test]
fn the_default_must_be_a_tier_and_names_must_be_label_values() {
    let parse = |yaml: &str| serde_yaml::from_str::<Tiers>(yaml).map_err(|e| e.to_string());
    assert!(
        parse("{default: Gold, tiers: {Low: {}}}")
            .unwrap_err()
            .contains(r#"default tier "Gold" is not one of tiers"#)
    );
    assert!(
        parse("{default: Low, tiers: {Low: {}, 'with space': {}}}")
            .unwrap_err()
            .contains(r#"tier name "with space" is not a label value"#)
    );
    assert!(
        parse("{tiers: {Low: {}}}")
            .unwrap_err()
            .contains("missing field `default`")
    );
    assert!(
        parse("{default: Low, tiers: {Low: {environment: [prod]}}}")
            .unwrap_err()
            .contains("unknown field `environment`")
    );
    for name in ["a", "Low", "tier-1.b_c", &"x".repeat(63)] {
        assert!(is_label_value(name), "{name}");
    }
    for name in ["", "-a", "a-", "a/b", &"x".repeat(64)] {
        assert!(!is_label_value(name), "{name}");
    }
}
