use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;

use super::shows_write;

fn deployment(version: &str, generation: i64) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("backend".into()),
            resource_version: Some(version.into()),
            generation: Some(generation),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn config_map(version: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("shop-config".into()),
            resource_version: Some(version.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn a_pin_is_seen_in_its_own_version_or_a_later_one() {
    // Cached at 10 (generation 3); the pin answered 12, generation 4.
    let written = deployment("12", 4);
    assert!(!shows_write(None, Some("10"), &written));
    assert!(!shows_write(Some(&deployment("10", 3)), Some("10"), &written));
    assert!(shows_write(Some(&deployment("12", 4)), Some("10"), &written));
    // The Deployment controller's status after the pin, or a later spec write.
    assert!(shows_write(Some(&deployment("13", 4)), Some("10"), &written));
    assert!(shows_write(Some(&deployment("14", 5)), Some("10"), &written));
}

#[test]
fn a_status_write_committed_before_the_pin_is_not_the_pin() {
    // The Deployment controller wrote status at 11, between the cached 10
    // and the pin at 12; the watch delivers 11 first.
    let written = deployment("12", 4);
    assert!(!shows_write(Some(&deployment("11", 3)), Some("10"), &written));
}

#[test]
fn a_write_that_changed_nothing_is_seen_at_once() {
    let written = deployment("10", 3);
    assert!(shows_write(Some(&deployment("10", 3)), Some("10"), &written));
}

#[test]
fn kinds_without_a_generation_are_caught_up_by_any_other_version() {
    let written = config_map("12");
    assert!(!shows_write(Some(&config_map("10")), Some("10"), &written));
    assert!(shows_write(Some(&config_map("11")), Some("10"), &written));
    assert!(shows_write(Some(&config_map("12")), Some("10"), &written));
    assert!(shows_write(Some(&config_map("12")), None, &written));
}
