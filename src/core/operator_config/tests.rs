use super::*;

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(parse(""), Ok(OperatorConfig::default()));
    assert_eq!(parse("# nothing set\n"), Ok(OperatorConfig::default()));
    assert_eq!(parse("{}"), Ok(OperatorConfig::default()));
}

#[test]
fn an_unknown_field_is_refused_by_name() {
    let error = parse("retension: {}\n").unwrap_err();
    assert_eq!(error.field, "retension");
    assert!(error.message.starts_with("unknown field `retension`"), "{error}");
}

#[test]
fn a_document_that_is_not_a_mapping_is_refused() {
    let error = parse("- a\n- b\n").unwrap_err();
    assert!(
        error.message.contains("expected struct OperatorConfig"),
        "{error}"
    );
}

#[test]
fn tiers_are_read_with_their_default() {
    let config = parse(
        "tiers:\n  default: Low\n  tiers:\n    Low: {environments: [prod]}\n    High: {environments: [dev, staging, prod], custom: Unlimited}\n",
    )
    .expect("tiers parse");
    let tiers = config.tiers.expect("tiers are set");
    assert_eq!(tiers.default, "Low");
    assert_eq!(
        tiers.tiers.keys().map(String::as_str).collect::<Vec<_>>(),
        ["High", "Low"]
    );
    assert_eq!(parse("retention: {}\n").map(|config| config.tiers), Ok(None));
}

#[test]
fn tiers_whose_default_is_no_tier_are_refused_at_the_field() {
    let error = parse("tiers: {default: Gold, tiers: {Low: {}}}\n").unwrap_err();
    assert_eq!(error.field, "tiers");
    assert_eq!(error.message, r#"default tier "Gold" is not one of tiers"#);
    let error = parse("tiers: {default: Low, tiers: {Low: {custom: some}}}\n").unwrap_err();
    assert_eq!(error.field, "tiers.tiers.Low.custom");
}
