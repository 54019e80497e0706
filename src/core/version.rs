//! Versions of Artifacts: how big a step a promotion is, and which of two
//! releases is newer.

use std::cmp::Ordering;

use crate::api::VersionScheme;

/// How much a promotion changes the version that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bump {
    /// Same version.
    None,
    /// Patch level, pre-release or build change.
    Patch,
    /// Minor version change.
    Minor,
    /// Major version change, a first release, or a version whose size
    /// cannot be told (opaque versions, or versions that do not parse):
    /// when in doubt the biggest step is assumed, so approval is asked for.
    Major,
}

/// Which way a promotion moves the version that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To a newer version (or a first release).
    Upgrade,
    /// To an older version.
    Downgrade,
    /// The same version.
    Same,
    /// Versions that cannot be ordered (opaque or not parsed).
    Unknown,
}

/// The direction of the step from `from` (what runs, if anything) to `to`.
pub fn direction(scheme: VersionScheme, from: Option<&str>, to: &str) -> Direction {
    let Some(from) = from else {
        return Direction::Upgrade;
    };
    if from == to {
        return Direction::Same;
    }
    match compare(scheme, to, from) {
        Some(Ordering::Greater) => Direction::Upgrade,
        Some(Ordering::Less) => Direction::Downgrade,
        Some(Ordering::Equal) => Direction::Same,
        None => Direction::Unknown,
    }
}

/// A step as people say it: `minor bump`, `major downgrade`, `patch
/// change` (when the direction cannot be told), `same version`.
pub fn describe(size: Bump, direction: Direction) -> String {
    let size = format!("{size:?}").to_lowercase();
    match direction {
        Direction::Upgrade => format!("{size} bump"),
        Direction::Downgrade => format!("{size} downgrade"),
        Direction::Same => "same version".into(),
        Direction::Unknown => format!("{size} change"),
    }
}

/// A parsed version, comparable within one scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    Sem(semver::Version),
    Cal { year: u64, month: u64, patch: u64 },
}

fn parse(scheme: VersionScheme, version: &str) -> Option<Parsed> {
    match scheme {
        VersionScheme::SemVer => semver::Version::parse(version).ok().map(Parsed::Sem),
        VersionScheme::CalVer => {
            let mut parts = version.split('.').map(str::parse::<u64>);
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(Ok(year)), Some(Ok(month)), Some(Ok(patch)), None) => {
                    Some(Parsed::Cal { year, month, patch })
                }
                _ => None,
            }
        }
        VersionScheme::Opaque => None,
    }
}

/// The size of the step from `from` (what runs, if anything) to `to`.
pub fn bump(scheme: VersionScheme, from: Option<&str>, to: &str) -> Bump {
    let Some(from) = from else { return Bump::Major };
    if from == to {
        return Bump::None;
    }
    match (parse(scheme, from), parse(scheme, to)) {
        (Some(Parsed::Sem(a)), Some(Parsed::Sem(b))) => {
            if a.major != b.major {
                Bump::Major
            } else if a.minor != b.minor {
                Bump::Minor
            } else {
                Bump::Patch
            }
        }
        // CalVer: a new year or month is a minor step; it never signals
        // breaking changes the way a SemVer major does.
        (
            Some(Parsed::Cal {
                year: ya, month: ma, ..
            }),
            Some(Parsed::Cal {
                year: yb, month: mb, ..
            }),
        ) => {
            if ya != yb || ma != mb {
                Bump::Minor
            } else {
                Bump::Patch
            }
        }
        _ => Bump::Major,
    }
}

/// Compares two versions of one scheme; `None` when they cannot be ordered
/// (opaque or unparsable), in which case callers order by creation time.
pub fn compare(scheme: VersionScheme, a: &str, b: &str) -> Option<Ordering> {
    match (parse(scheme, a)?, parse(scheme, b)?) {
        (Parsed::Sem(a), Parsed::Sem(b)) => Some(a.cmp(&b)),
        (
            Parsed::Cal {
                year: ya,
                month: ma,
                patch: pa,
            },
            Parsed::Cal {
                year: yb,
                month: mb,
                patch: pb,
            },
        ) => Some((ya, ma, pa).cmp(&(yb, mb, pb))),
        _ => None,
    }
}

/// A version as semver sees it, for matching against a range: SemVer as
/// written, CalVer `YYYY.MM.PATCH` as `YYYY.M.PATCH` (a leading zero is not
/// significant); `None` for opaque versions and versions that do not parse.
pub fn as_semver(scheme: VersionScheme, version: &str) -> Option<semver::Version> {
    match parse(scheme, version)? {
        Parsed::Sem(version) => Some(version),
        Parsed::Cal { year, month, patch } => Some(semver::Version::new(year, month, patch)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_bumps() {
        let cases = [
            (None, "1.0.0", Bump::Major),
            (Some("1.4.2"), "1.4.2", Bump::None),
            (Some("1.4.2"), "1.4.3", Bump::Patch),
            (Some("1.4.2"), "1.5.0", Bump::Minor),
            (Some("1.4.2"), "2.0.0", Bump::Major),
            (Some("2.0.0"), "1.9.0", Bump::Major),
            (Some("1.4.2"), "1.4.3-rc.1", Bump::Patch),
            (Some("1.4.2"), "not-semver", Bump::Major),
        ];
        for (from, to, expected) in cases {
            assert_eq!(
                bump(VersionScheme::SemVer, from, to),
                expected,
                "{from:?} -> {to}"
            );
        }
    }

    #[test]
    fn calver_and_opaque_bumps() {
        assert_eq!(
            bump(VersionScheme::CalVer, Some("2026.11.1"), "2026.11.2"),
            Bump::Patch
        );
        assert_eq!(
            bump(VersionScheme::CalVer, Some("2026.11.1"), "2026.12.0"),
            Bump::Minor
        );
        assert_eq!(
            bump(VersionScheme::CalVer, Some("2026.12.4"), "2027.01.0"),
            Bump::Minor
        );
        assert_eq!(
            bump(VersionScheme::Opaque, Some("sha-abc1234"), "sha-def5678"),
            Bump::Major
        );
        assert_eq!(
            bump(VersionScheme::Opaque, Some("sha-abc1234"), "sha-abc1234"),
            Bump::None
        );
    }

    #[test]
    fn ordering() {
        assert_eq!(
            compare(VersionScheme::SemVer, "1.10.0", "1.9.0"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(VersionScheme::SemVer, "1.0.0-rc.1", "1.0.0"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(VersionScheme::CalVer, "2026.02.0", "2026.11.0"),
            Some(Ordering::Less)
        );
        assert_eq!(compare(VersionScheme::Opaque, "b", "a"), None);
    }

    #[test]
    fn a_step_back_is_a_downgrade_of_its_size() {
        let step = |from: Option<&str>, to: &str| {
            describe(
                bump(VersionScheme::SemVer, from, to),
                direction(VersionScheme::SemVer, from, to),
            )
        };
        assert_eq!(step(Some("1.1.0"), "1.0.0"), "minor downgrade");
        assert_eq!(step(Some("1.0.0"), "1.1.0"), "minor bump");
        assert_eq!(step(Some("2.0.0"), "1.9.9"), "major downgrade");
        assert_eq!(step(Some("1.0.1"), "1.0.0"), "patch downgrade");
        assert_eq!(step(Some("1.0.0"), "1.0.0-rc.1"), "patch downgrade");
        assert_eq!(step(None, "1.0.0"), "major bump");
        assert_eq!(step(Some("1.0.0"), "1.0.0"), "same version");
        assert_eq!(
            describe(
                bump(VersionScheme::Opaque, Some("a"), "b"),
                direction(VersionScheme::Opaque, Some("a"), "b")
            ),
            "major change"
        );
        assert_eq!(
            direction(VersionScheme::CalVer, Some("2026.12.1"), "2026.11.4"),
            Direction::Downgrade
        );
    }

    #[test]
    fn versions_as_semver_sees_them() {
        assert_eq!(
            as_semver(VersionScheme::CalVer, "2026.01.3"),
            Some(semver::Version::new(2026, 1, 3))
        );
        assert_eq!(
            as_semver(VersionScheme::SemVer, "1.4.0-rc.1"),
            Some(semver::Version::parse("1.4.0-rc.1").unwrap())
        );
        assert_eq!(as_semver(VersionScheme::SemVer, "1.4"), None);
        assert_eq!(as_semver(VersionScheme::Opaque, "1.4.0"), None);
    }
}
