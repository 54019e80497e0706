//! The provenance check: a signed SLSA provenance attestation whose source
//! is the Artifact's repository at exactly its revision, by the expected
//! builder.

use serde_json::Value;

use super::attestations;
use super::envelope::Layer;
use super::keyless::Keyless;
use super::keys::TrustedKey;
use super::{Finding, short};
use crate::api::{ProvenancePredicate, Source};
use crate::core::reasons::FindingReason;

pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";

impl ProvenancePredicate {
    pub fn uri(self) -> &'static str {
        match self {
            ProvenancePredicate::SlsaV1 => SLSA_V1,
            ProvenancePredicate::SlsaV02 => SLSA_V02,
        }
    }
}

/// A source the provenance names: repository and commit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    uri: String,
    commit: Option<String>,
}

/// Whether a signed provenance of `predicate` about `digest` names `source`
/// (the Artifact's spec.source) and, when given, `builder`.
pub fn check(
    digest: &str,
    layers: &[Layer],
    keys: &[TrustedKey],
    keyless: Option<&Keyless>,
    predicate: ProvenancePredicate,
    builder: Option<&str>,
    source: Option<&Source>,
) -> Finding {
    let Some(source) = source else {
        return Finding::of(
            FindingReason::SourceMissing,
            "the Artifact has no spec.source to compare its provenance with".to_string(),
        );
    };
    let attested =
        match attestations::verified(digest, layers, keys, keyless, &[predicate.uri()], "provenance") {
            Ok(attested) => attested,
            Err(finding) => return finding,
        };
    let repository = normalise(&source.repository);
    let mut problems: Vec<Finding> = Vec::new();
    for attestation in &attested {
        let predicate_body = &attestation.statement.predicate;
        let built_by = builder_id(predicate, predicate_body);
        if let Some(wanted) = builder
            && built_by.as_deref() != Some(wanted)
        {
            problems.push(Finding::of(
                FindingReason::BuilderMismatch,
                format!(
                    "image {} was built by {}, not {wanted}",
                    short(digest),
                    built_by.as_deref().unwrap_or("an unnamed builder")
                ),
            ));
            continue;
        }
        let named = sources(predicate, predicate_body);
        let same_repository: Vec<&Named> = named.iter().filter(|n| normalise(&n.uri) == repository).collect();
        if same_repository.is_empty() {
            problems.push(Finding::of(
                FindingReason::RepositoryMismatch,
                format!(
                    "the provenance of {} names no source in {}; it names {}",
                    short(digest),
                    source.repository,
                    if named.is_empty() {
                        "no source at all".to_string()
                    } else {
                        named.iter().map(|n| n.uri.clone()).collect::<Vec<_>>().join(", ")
                    }
                ),
            ));
            continue;
        }
        if same_repository
            .iter()
            .any(|n| n.commit.as_deref() == Some(source.revision.as_str()))
        {
            return Finding {
                signed_by: attestation.signed_by.clone(),
                ..Finding::verified(format!(
                    "built from {}@{} by {}, attested by {}",
                    source.repository,
                    short_commit(&source.revision),
                    built_by.as_deref().unwrap_or("an unnamed builder"),
                    attestation.signed_by.join(", ")
                ))
            };
        }
        let commits: Vec<String> = same_repository
            .iter()
            .map(|n| n.commit.as_deref().map_or("no commit".to_string(), short_commit))
            .collect();
        problems.push(Finding::of(
            FindingReason::RevisionMismatch,
            format!(
                "image {} was built from {}, Artifact says {}",
                short(digest),
                commits.join(", "),
                short_commit(&source.revision)
            ),
        ));
    }
    problems
        .into_iter()
        .next()
        .unwrap_or_else(|| Finding::of(FindingReason::AttestationMissing, "no provenance".into()))
}

/// Cut at a character: the provenance's commit may hold anything.
fn short_commit(commit: &str) -> String {
    match commit.char_indices().nth(12) {
        Some((end, _)) => format!("{}…", &commit[..end]),
        None => commit.to_owned(),
    }
}

/// builder.id of either predicate version.
fn builder_id(predicate: ProvenancePredicate, body: &Value) -> Option<String> {
    let id = match predicate {
        ProvenancePredicate::SlsaV1 => &body["runDetails"]["builder"]["id"],
        ProvenancePredicate::SlsaV02 => &body["builder"]["id"],
    };
    id.as_str().map(str::to_owned)
}

/// The sources a predicate names: v1's resolvedDependencies, v0.2's
/// materials and invocation.configSource.
fn sources(predicate: ProvenancePredicate, body: &Value) -> Vec<Named> {
    let entries: Vec<&Value> = match predicate {
        ProvenancePredicate::SlsaV1 => body["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        ProvenancePredicate::SlsaV02 => body["materials"]
            .as_array()
            .map(|a| a.iter().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(Some(&body["invocation"]["configSource"]).filter(|v| v.is_object()))
            .collect(),
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let uri = entry["uri"].as_str()?;
            let digest = &entry["digest"];
            let commit = ["gitCommit", "sha1", "sha256"]
                .iter()
                .find_map(|algorithm| digest[algorithm].as_str())
                .map(str::to_owned);
            Some(Named {
                uri: uri.to_owned(),
                commit,
            })
        })
        .collect()
}

/// A repository URL as compared: without `git+`, a trailing `@ref`, `.git`
/// or `/`, and without regard to the host's case.
fn normalise(uri: &str) -> String {
    let uri = uri.trim().trim_start_matches("git+");
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split_once('@').map_or(path, |(path, _reference)| path);
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    format!("{scheme}://{}/{path}", host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::attestations::test_envelopes::attestation;
    use super::super::keys::test_keys::{SigningKey, Trusted};
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const COMMIT: &str = "3f2c9a1b4d5e6f708192a3b4c5d6e7f809102132";
    const OTHER_COMMIT: &str = "0123abcdef0123abcdef0123abcdef0123abcdef";
    const BUILDER: &str = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main";

    fn source() -> Source {
        Source {
            repository: "https://github.com/acme/shop".into(),
            revision: COMMIT.into(),
            build_id: None,
            build_url: None,
            built_at: None,
            committed_at: None,
        }
    }

    fn v1(commit: &str) -> serde_json::Value {
        json!({
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "resolvedDependencies": [
                    {"uri": "git+https://github.com/acme/shop@refs/heads/main", "digest": {"gitCommit": commit}}
                ]
            },
            "runDetails": {"builder": {"id": BUILDER}}
        })
    }

    #[test]
    fn slsa_v1_from_the_artifacts_commit_passes_and_another_commit_is_named() {
        let key = SigningKey::generate();
        let keys = [key.trusted("ci")];
        let good = attestation(&key, "", DIGEST, SLSA_V1, v1(COMMIT));
        let finding = check(
            DIGEST,
            &[good],
            &keys,
            None,
            ProvenancePredicate::SlsaV1,
            Some(BUILDER),
            Some(&source()),
        );
        assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
        assert_eq!(
            finding.message,
            format!("built from https://github.com/acme/shop@3f2c9a1b4d5e… by {BUILDER}, attested by ci")
        );
        let bad = attestation(&key, "", DIGEST, SLSA_V1, v1(OTHER_COMMIT));
        let finding = check(
            DIGEST,
            &[bad],
            &keys,
            None,
            ProvenancePredicate::SlsaV1,
            None,
            Some(&source()),
        );
        assert_eq!(finding.reason, FindingReason::RevisionMismatch);
        assert_eq!(
            finding.message,
            "image sha256:111111111111 was built from 0123abcdef01…, Artifact says 3f2c9a1b4d5e…"
        );
    }

    #[test]
    fn builder_repository_and_missing_source_are_each_named() {
        let key = SigningKey::generate();
        let keys = [key.trusted("ci")];
        let layer = attestation(&key, "", DIGEST, SLSA_V1, v1(COMMIT));
        let reason = |builder, source: Option<&Source>| {
            check(
                DIGEST,
                std::slice::from_ref(&layer),
                &keys,
                None,
                ProvenancePredicate::SlsaV1,
                builder,
                source,
            )
            .reason
        };
        assert_eq!(
            reason(Some("https://other.example/builder"), Some(&source())),
            FindingReason::BuilderMismatch
        );
        let mut elsewhere = source();
        elsewhere.repository = "https://github.com/acme/other".into();
        assert_eq!(reason(None, Some(&elsewhere)), FindingReason::RepositoryMismatch);
        assert_eq!(reason(None, None), FindingReason::SourceMissing);
        // The wrong version of the predicate is not looked at.
        assert_eq!(
            check(
                DIGEST,
                std::slice::from_ref(&layer),
                &keys,
                None,
                ProvenancePredicate::SlsaV02,
                None,
                Some(&source())
            )
            .reason,
            FindingReason::AttestationMissing
        );
    }

    #[test]
    fn slsa_v0_2_materials_and_config_source_name_the_source() {
        let key = SigningKey::generate();
        let keys = [key.trusted("ci")];
        for predicate in [
            json!({"builder": {"id": BUILDER}, "materials": [{"uri": "git+https://GitHub.com/acme/shop.git", "digest": {"sha1": COMMIT}}]}),
            json!({"builder": {"id": BUILDER}, "invocation": {"configSource": {"uri": "https://github.com/acme/shop/", "digest": {"sha1": COMMIT}}}}),
        ] {
            let layer = attestation(&key, "", DIGEST, SLSA_V02, predicate);
            let finding = check(
                DIGEST,
                &[layer],
                &keys,
                None,
                ProvenancePredicate::SlsaV02,
                Some(BUILDER),
                Some(&source()),
            );
            assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
        }
    }

    #[test]
    fn repositories_compare_as_git_urls() {
        assert_eq!(
            normalise("git+https://GitHub.com/acme/shop.git@refs/tags/v1"),
            "https://github.com/acme/shop"
        );
        assert_eq!(
            normalise("https://github.com/acme/shop/"),
            "https://github.com/acme/shop"
        );
        assert_ne!(
            normalise("https://github.com/acme/shop2"),
            normalise("https://github.com/acme/shop")
        );
    }
}
