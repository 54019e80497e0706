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
