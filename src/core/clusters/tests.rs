use super::*;
use crate::core::environment::fixture::{environment, promotion, yaml};

fn agent(cluster: &str) -> Scope {
    Scope::Agent {
        cluster: cluster.to_owned(),
    }
}

#[test]
fn the_hub_reconciles_environments_naming_no_cluster_and_an_agent_those_naming_its_own() {
    let hub_dev = environment("dev", "");
    let eu_prod = environment("prod", "  cluster: eu");
    assert!(Scope::Hub.reconciles(&hub_dev));
    assert!(!Scope::Hub.reconciles(&eu_prod));
    assert!(agent("eu").reconciles(&eu_prod));
    assert!(!agent("eu").reconciles(&hub_dev));
    assert!(!agent("us").reconciles(&eu_prod));
}

#[test]
fn an_agent_acts_only_on_promotions_labelled_with_its_cluster() {
    let unlabelled = promotion("p1", "shop-1", 0);
    let mut labelled = unlabelled.clone();
    labelled
        .labels_mut()
        .insert(LABEL_CLUSTER.to_owned(), "eu".to_owned());
    assert!(Scope::Hub.acts_on(&unlabelled));
    assert!(agent("eu").acts_on(&labelled));
    assert!(!agent("eu").acts_on(&unlabelled));
    assert!(!agent("us").acts_on(&labelled));
}

#[test]
fn selectable_fields_are_served_from_kubernetes_1_31() {
    assert!(selects_custom_fields("1", "31"));
    assert!(selects_custom_fields("1", "32+"));
    assert!(selects_custom_fields("2", "0"));
    assert!(!selects_custom_fields("1", "30"));
    assert!(!selects_custom_fields("1", "29+"));
    assert!(!selects_custom_fields("", ""));
}

#[test]
fn the_lease_and_selectors_name_the_cluster() {
    assert_eq!(lease_name("eu"), "hoist-agent-eu");
    assert_eq!(field_selector("eu"), "spec.cluster=eu");
    assert_eq!(label_selector("eu"), "hoist.dev/cluster=eu");
    let (labels, annotations) = lease_metadata("eu", "1.2.3");
    assert_eq!(
        labels,
        BTreeMap::from([("hoist.dev/cluster".to_owned(), "eu".to_owned())])
    );
    assert_eq!(
        annotations,
        BTreeMap::from([("hoist.dev/agent-version".to_owned(), "1.2.3".to_owned())])
    );
}

#[test]
fn the_hubs_condition_is_left_out_of_what_an_agent_compares() {
    let status: EnvironmentStatus = yaml(
        r#"
observedGeneration: 1
conditions:
  - {type: Ready, status: "True", reason: Ready, message: ok, lastTransitionTime: "2026-12-07T10:00:00Z"}
  - {type: AgentConnected, status: "True", reason: Heartbeat, message: "agent 1.0", lastTransitionTime: "2026-12-07T10:00:00Z"}
"#,
    );
    let own = without_hub_conditions(&status);
    let types: Vec<&str> = own.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Ready"]);
    assert_eq!(own.observed_generation, Some(1));
}

#[test]
fn a_cluster_name_is_a_dns_label() {
    assert_eq!(invalid_name("eu-west-1"), None);
    assert!(invalid_name("EU").is_some());
    assert!(invalid_name("-eu").is_some());
    assert!(invalid_name("").is_some());
    assert!(invalid_name(&"a".repeat(64)).is_some());
}
