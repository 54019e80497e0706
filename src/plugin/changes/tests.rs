use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{ComponentDigest, EnvironmentStatus};

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const W: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const C1: &str = "0123abc4567def890123abc4567def890123abc4";
const C2: &str = "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f";

fn at(seconds: i64) -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap())
}

fn entry(application: &str, version: &str, backend: &str, commit: &str, hash: &str) -> HistoryEntry {
    HistoryEntry {
        application: application.into(),
        artifact: format!("{application}-{}", version.replace('.', "-")),
        version: version.into(),
        change: ChangeKind::Release,
        images: vec![
            ComponentDigest {
                component: "backend".into(),
                digest: backend.into(),
            },
            ComponentDigest {
                component: "frontend".into(),
                digest: W.into(),
            },
        ],
        source_repository: Some("https://github.com/acme/shop".into()),
        source_revision: Some(commit.into()),
        build_id: None,
        build_url: None,
        committed_at: None,
        built_at: None,
        config_hash: Some(hash.into()),
        promotion: format!("{application}-{version}-prod"),
        promoted_at: Some(at(0)),
        approvers: Vec::new(),
        approvals: Vec::new(),
        outcome: Phase::Succeeded,
        completed_at: Some(at(60)),
        restored_at: None,
    }
}

fn prod(history: Vec<HistoryEntry>) -> Environment {
    let mut environment: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "prod", "namespace": "shop"},
        "spec": {"targets": []}
    }))
    .unwrap();
    environment.status = Some(EnvironmentStatus {
        history,
        ..Default::default()
    });
    environment
}

fn rendered(hash: &str, data: &[(&str, &str)]) -> RenderedConfig {
    RenderedConfig {
        application: "shop".into(),
        data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        binary_data: Default::default(),
        hash: hash.into(),
        secrets: Default::default(),
    }
}

#[test]
fn compare_links_for_github_and_gitlab_style_repositories_only() {
    assert_eq!(
        compare_link("https://github.com/acme/shop.git", "a1", "b2").as_deref(),
        Some("https://github.com/acme/shop/compare/a1...b2")
    );
    assert_eq!(
        compare_link("git@github.com:acme/shop.git", "a1", "b2").as_deref(),
        Some("https://github.com/acme/shop/compare/a1...b2")
    );
    assert_eq!(
        compare_link("https://gitlab.com/acme/platform/shop/", "a1", "b2").as_deref(),
        Some("https://gitlab.com/acme/platform/shop/-/compare/a1...b2")
    );
    assert_eq!(
        compare_link("ssh://git@gitlab.example.com:2222/acme/shop.git", "a1", "b2").as_deref(),
        Some("https://gitlab.example.com/acme/shop/-/compare/a1...b2")
    );
    assert_eq!(compare_link("https://git.example.com/shop", "a1", "b2"), None);
    assert_eq!(
        compare_link("https://github.com/acme", "a1", "b2"),
        None,
        "no project"
    );
    assert_eq!(compare_link("shop", "a1", "b2"), None);
}

#[test]
fn the_default_is_the_last_two_successful_releases_of_each_application() {
    let mut failed = entry("shop", "1.3.0", B, C2, "sha256:33");
    failed.outcome = Phase::RolledBack;
    let environment = prod(vec![
        failed,
        entry("shop", "1.2.0", B, C2, "sha256:22"),
        entry("cart", "2.0.0", A, C1, "sha256:99"),
        entry("shop", "1.1.0", A, C1, "sha256:11"),
        entry("shop", "1.0.0", A, C1, "sha256:00"),
    ]);
    let history = &environment.status.as_ref().unwrap().history;
    let pairs = select(&environment, &Selection::default()).unwrap();
    assert_eq!(
        pairs,
        vec![Pair::One("cart".into()), Pair::Two(&history[3], &history[1])]
    );
    let named = Selection {
        application: None,
        from: Some("1.0.0".into()),
        to: Some("shop-1-1-0".into()),
    };
    assert_eq!(
        select(&environment, &named).unwrap(),
        vec![Pair::Two(&history[4], &history[3])]
    );
    let only_to = Selection {
        application: Some("shop".into()),
        to: Some("1.1.0".into()),
        ..Selection::default()
    };
    assert_eq!(
        select(&environment, &only_to).unwrap(),
        vec![Pair::Two(&history[4], &history[3])]
    );
}

#[test]
fn releases_that_are_not_there_or_could_be_of_two_applications_are_named() {
    let environment = prod(vec![
        entry("shop", "1.1.0", A, C1, "sha256:11"),
        entry("cart", "1.1.0", A, C1, "sha256:99"),
        entry("shop", "1.0.0", A, C1, "sha256:00"),
    ]);
    let error = |selection: Selection| select(&environment, &selection).unwrap_err().to_string();
    assert_eq!(
        error(Selection {
            to: Some("1.1.0".into()),
            ..Selection::default()
        }),
        "1.1.0 names releases of several applications in Environment prod (cart, shop): choose one with --application"
    );
    assert_eq!(
        error(Selection {
            application: Some("shop".into()),
            from: Some("1.1.0".into()),
            to: None,
        }),
        "no successful release 1.1.0 (older than 1.1.0) of shop in the history of Environment prod \
             (kubectl hoist history prod lists them)"
    );
    assert_eq!(
        error(Selection {
            application: Some("web".into()),
            ..Selection::default()
        }),
        "no successful release of web in the history of Environment prod \
             (kubectl hoist history prod lists them)"
    );
}

#[test]
fn a_release_shows_its_step_commit_range_digests_and_configuration_keys() {
    let from = entry("shop", "1.1.0", A, C1, "sha256:11");
    let to = entry("shop", "1.2.0", B, C2, "sha256:22");
    let snapshots = [
        rendered("sha256:11", &[("LOG_LEVEL", "info"), ("OLD", "1")]),
        rendered(
            "sha256:22",
            &[("LOG_LEVEL", "debug"), ("NEW", "line one\nline two")],
        ),
    ];
    let changes = plan_changes("prod", &from, &to, VersionScheme::SemVer, &snapshots);
    assert_eq!(
        changes.to_string(),
        "shop in prod: 1.1.0 → 1.2.0 (minor bump)
  from  shop-1-1-0 (Promotion shop-1.1.0-prod, 2027-01-15T08:00:00Z)
  to    shop-1-2-0 (Promotion shop-1.2.0-prod, 2027-01-15T08:00:00Z)
  commits: 0123abc4567d..3f2c9a1b7e4d
  compare: https://github.com/acme/shop/compare/0123abc4567def890123abc4567def890123abc4...3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f
  images:
    backend   sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb
    frontend  unchanged (sha256:cccccccccccc)
  configuration: sha256:11 → sha256:22
    ~ LOG_LEVEL: \"info\" → \"debug\"
    + NEW: \"line one\\nline two\"
    - OLD: \"1\"
"
    );
}

#[test]
fn a_rollback_and_a_configuration_change_say_so() {
    let from = entry("shop", "1.2.0", B, C2, "sha256:22");
    let mut back = entry("shop", "1.1.0", A, C1, "sha256:11");
    back.change = ChangeKind::Rollback;
    let changes = plan_changes("prod", &from, &back, VersionScheme::SemVer, &[]);
    let text = changes.to_string();
    assert!(
        text.starts_with("shop in prod: 1.2.0 → 1.1.0 (rollback to an earlier release, minor downgrade)\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "  configuration: sha256:22 → sha256:11; which keys changed cannot be told: \
                 snapshot hoist-prod-22, hoist-prod-11 no longer kept\n"
        ),
        "{text}"
    );

    let mut config = entry("shop", "1.1.0", A, C1, "sha256:33");
    config.change = ChangeKind::Configuration;
    let snapshots = [
        rendered("sha256:11", &[("LOG_LEVEL", "info")]),
        rendered("sha256:33", &[("LOG_LEVEL", "info")]),
    ];
    let text = plan_changes("prod", &back, &config, VersionScheme::SemVer, &snapshots).to_string();
    assert!(
        text.starts_with(
            "shop in prod: 1.1.0 → 1.1.0 (configuration change only, the same images)\n  \
                 from  shop-1-1-0 (Promotion shop-1.1.0-prod, 2027-01-15T08:00:00Z)\n  \
                 to    shop-1-1-0 (configuration of Promotion shop-1.1.0-prod, 2027-01-15T08:00:00Z)\n  \
                 commit: 0123abc4567d (unchanged)\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "  configuration: sha256:11 → sha256:33\n    \
                 ~ a referenced Secret changed (its snapshot predates Secret records)\n"
        ),
        "{text}"
    );
}

#[test]
fn long_values_are_cut_and_say_how_long_they_are() {
    let long = "x".repeat(100);
    assert_eq!(shown(&long), format!("\"{}…\" (100 characters)", "x".repeat(55)));
    assert_eq!(shown("short"), "\"short\"");
}
