//! Compatibility between applications: the version ranges an Artifact
//! declares in `spec.compatibility` (`{application, versions: ">=1.4.0,
//! <2.0.0"}`, semver requirements, CalVer read as `YYYY.M.PATCH`), checked
//! both ways against what runs in an environment. The gate and `kubectl
//! hoist compat` share these checks.

use crate::api::{ApplicationStatus, Artifact, Compatibility, CompatibilityGate, VersionScheme};
use crate::core::version;

use super::outcome::Outcome;

/// A release of one application: what runs in an environment, or the
/// Artifact about to be promoted.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub application: &'a str,
    pub artifact: &'a str,
    pub version: &'a str,
    pub scheme: VersionScheme,
    /// The ranges its Artifact declares (empty when the Artifact is gone).
    pub declares: &'a [Compatibility],
}

impl<'a> Release<'a> {
    pub fn of(artifact: &'a Artifact) -> Self {
        Release {
            application: &artifact.spec.application,
            artifact: artifact.metadata.name.as_deref().unwrap_or_default(),
            version: &artifact.spec.version,
            scheme: artifact.spec.version_scheme,
            declares: &artifact.spec.compatibility,
        }
    }
}

/// What runs for one application, with the ranges its Artifact declares
/// (none, read as SemVer, when the Artifact is gone).
pub fn running_release<'a>(
    app: &'a ApplicationStatus,
    artifacts: &dyn Fn(&str) -> Option<&'a Artifact>,
) -> Release<'a> {
    match artifacts(&app.artifact) {
        Some(artifact) => Release {
            version: &app.version,
            ..Release::of(artifact)
        },
        None => Release {
            application: &app.application,
            artifact: &app.artifact,
            version: &app.version,
            scheme: VersionScheme::SemVer,
            declares: &[],
        },
    }
}

/// How one declared range stands against what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The application in range runs a version the range accepts.
    Holds { version: String },
    /// It runs a version the range does not accept.
    Broken { version: String },
    /// It does not run there: nothing to be incompatible with.
    NotRunning,
    /// Its version cannot be matched against a range (opaque or not parsed).
    Unversioned { version: String },
    /// The range itself is not a semver requirement.
    BadRange(String),
}

impl Check {
    pub fn holds(&self) -> bool {
        matches!(self, Check::Holds { .. } | Check::NotRunning)
    }

    /// A short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            Check::Holds { .. } => "holds",
            Check::Broken { .. } => "BROKEN",
            Check::NotRunning => "not running",
            Check::Unversioned { .. } => "UNCHECKABLE",
            Check::BadRange(_) => "BAD RANGE",
        }
    }
}

/// Whether `range` holds for `other`, the release of range.application
/// (if it runs).
pub fn check(range: &Compatibility, other: Option<&Release<'_>>) -> Check {
    let requirement = match semver::VersionReq::parse(&range.versions) {
        Ok(requirement) => requirement,
        Err(error) => {
            return Check::BadRange(format!("{:?} is not a version range: {error}", range.versions));
        }
    };
    let Some(other) = other else {
        return Check::NotRunning;
    };
    let version = other.version.to_string();
    match version::as_semver(other.scheme, other.version) {
        Some(parsed) if requirement.matches(&parsed) => Check::Holds { version },
        Some(_) => Check::Broken { version },
        None => Check::Unversioned { version },
    }
}

/// The verdict of the compatibility gate for promoting `candidate` where
/// `running` runs (the candidate's own application left out by the caller).
pub fn evaluate(
    gate: Option<&CompatibilityGate>,
    candidate: &Release<'_>,
    running: &[Release<'_>],
) -> Outcome {
    let Some(gate) = gate else {
        return Outcome::passed("compatibility is not checked here");
    };
    let mut malformed = Vec::new();
    let mut problems = Vec::new();
    for (index, range) in candidate.declares.iter().enumerate() {
        let other = running.iter().find(|r| r.application == range.application);
        match check(range, other) {
            Check::Holds { .. } | Check::NotRunning => {}
            Check::BadRange(why) => malformed.push(format!(
                "Artifact {} spec.compatibility[{index}].versions: {why}",
                candidate.artifact
            )),
            Check::Broken { version } | Check::Unversioned { version } => problems.push(format!(
                "{} needs {} {}, and {} {version} ({}) runs here",
                candidate.artifact,
                range.application,
                range.versions,
                range.application,
                other.map(|o| o.artifact).unwrap_or_default()
            )),
        }
    }
    for other in running {
        for range in other
            .declares
            .iter()
            .filter(|r| r.application == candidate.application)
        {
            match check(range, Some(candidate)) {
                Check::Holds { .. } | Check::NotRunning => {}
                Check::BadRange(why) => problems.push(format!(
                    "{} (running here) declares {} {why}",
                    other.artifact, candidate.application
                )),
                Check::Broken { .. } | Check::Unversioned { .. } => problems.push(format!(
                    "{} (running here) accepts {} {}, not {}",
                    other.artifact, candidate.application, range.versions, candidate.version
                )),
            }
        }
    }
    if !malformed.is_empty() {
        return Outcome::failed(format!(
            "{}; build a new Artifact with valid ranges",
            malformed.join("; ")
        ));
    }
    let checked = candidate.declares.len()
        + running
            .iter()
            .flat_map(|o| o.declares)
            .filter(|r| r.application == candidate.application)
            .count();
    match (problems.is_empty(), gate.enforce) {
        (true, _) => Outcome::passed(if checked == 0 {
            "no compatibility ranges concern this release".to_string()
        } else {
            format!("{checked} compatibility range(s) hold against what runs here")
        }),
        (false, true) => Outcome::pending(format!(
            "{}; promote compatible releases first, or waive Compatibility",
            problems.join("; ")
        )),
        (false, false) => Outcome::passed(format!("not enforced; would hold: {}", problems.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GateState;

    fn ranges(yaml: &str) -> Vec<Compatibility> {
        serde_yaml::from_str(yaml).expect("fixture parses")
    }

    fn release<'a>(
        application: &'a str,
        artifact: &'a str,
        version: &'a str,
        declares: &'a [Compatibility],
    ) -> Release<'a> {
        Release {
            application,
            artifact,
            version,
            scheme: VersionScheme::SemVer,
            declares,
        }
    }

    const ENFORCE: CompatibilityGate = CompatibilityGate { enforce: true };

    #[test]
    fn a_range_of_the_candidate_must_accept_what_runs() {
        let needs = ranges(r#"[{application: payments, versions: ">=1.4.0, <2.0.0"}]"#);
        let shop = release("shop", "shop-2.0.0", "2.0.0", &needs);
        let old = release("payments", "payments-1.3.0", "1.3.0", &[]);
        let new = release("payments", "payments-1.4.2", "1.4.2", &[]);
        let outcome = evaluate(Some(&ENFORCE), &shop, &[old]);
        assert_eq!(
            (outcome.state, outcome.message.as_str()),
            (
                GateState::Pending,
                "shop-2.0.0 needs payments >=1.4.0, <2.0.0, and payments 1.3.0 (payments-1.3.0) runs here; \
                 promote compatible releases first, or waive Compatibility"
            )
        );
        let outcome = evaluate(Some(&ENFORCE), &shop, &[new]);
        assert_eq!(
            (outcome.state, outcome.message.as_str()),
            (
                GateState::Passed,
                "1 compatibility range(s) hold against what runs here"
            )
        );
        // What does not run here cannot be incompatible.
        assert_eq!(evaluate(Some(&ENFORCE), &shop, &[]).state, GateState::Passed);
    }

    #[test]
    fn an_application_running_here_must_accept_the_candidate() {
        let accepts = ranges(r#"[{application: shop, versions: "^1.2"}]"#);
        let payments = release("payments", "payments-1.4.2", "1.4.2", &accepts);
        let outcome = evaluate(
            Some(&ENFORCE),
            &release("shop", "shop-2.0.0", "2.0.0", &[]),
            &[payments],
        );
        assert_eq!(
            (outcome.state, outcome.message.as_str()),
            (
                GateState::Pending,
                "payments-1.4.2 (running here) accepts shop ^1.2, not 2.0.0; \
                 promote compatible releases first, or waive Compatibility"
            )
        );
        let fine = evaluate(
            Some(&ENFORCE),
            &release("shop", "shop-1.3.0", "1.3.0", &[]),
            &[payments],
        );
        assert_eq!(fine.state, GateState::Passed);
    }

    #[test]
    fn calver_is_matched_like_semver_and_opaque_versions_cannot_satisfy_a_range() {
        let needs = ranges(
            r#"[{application: data, versions: ">=2026.11.0"}, {application: search, versions: ">=1"}]"#,
        );
        let candidate = release("shop", "shop-1", "1.0.0", &needs);
        let data = Release {
            scheme: VersionScheme::CalVer,
            ..release("data", "data-2026.11.02", "2026.11.02", &[])
        };
        let search = Release {
            scheme: VersionScheme::Opaque,
            ..release("search", "search-abc", "sha-abc", &[])
        };
        assert!(check(&needs[0], Some(&data)).holds());
        assert_eq!(
            check(&needs[1], Some(&search)),
            Check::Unversioned {
                version: "sha-abc".into()
            }
        );
        assert_eq!(
            evaluate(Some(&ENFORCE), &candidate, &[data, search]).message,
            "shop-1 needs search >=1, and search sha-abc (search-abc) runs here; \
             promote compatible releases first, or waive Compatibility"
        );
    }

    #[test]
    fn a_malformed_range_of_the_candidate_fails_and_one_not_enforced_only_reports() {
        let bad = ranges(r#"[{application: payments, versions: "one point four"}]"#);
        let outcome = evaluate(
            Some(&ENFORCE),
            &release("shop", "shop-1", "1.0.0", &bad),
            &[release("payments", "payments-1", "1.0.0", &[])],
        );
        assert_eq!(outcome.state, GateState::Failed);
        assert!(
            outcome.message.starts_with(
                "Artifact shop-1 spec.compatibility[0].versions: \"one point four\" is not a version range"
            ),
            "{}",
            outcome.message
        );
        let needs = ranges(r#"[{application: payments, versions: ">=2"}]"#);
        let report = evaluate(
            Some(&CompatibilityGate { enforce: false }),
            &release("shop", "shop-1", "1.0.0", &needs),
            &[release("payments", "payments-1", "1.0.0", &[])],
        );
        assert_eq!(
            (report.state, report.message.as_str()),
            (
                GateState::Passed,
                "not enforced; would hold: shop-1 needs payments >=2, and payments 1.0.0 (payments-1) runs here"
            )
        );
        assert_eq!(
            evaluate(None, &release("shop", "shop-1", "1.0.0", &needs), &[]).message,
            "compatibility is not checked here"
        );
    }
}
