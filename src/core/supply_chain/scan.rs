//! The vulnerability check: the newest signed scan of a digest (cosign's
//! vulnerability predicate around a Trivy or Grype JSON report) has no
//! finding above the allowed severity that is not ignored.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::attestations;
use super::envelope::Layer;
use super::keyless::Keyless;
use super::keys::TrustedKey;
use super::{Finding, short};
use crate::api::Severity;
use crate::core::reasons::FindingReason;

pub const VULN_V1: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// How many findings a message lists before "and N more".
const LISTED: usize = 5;

/// One finding of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vulnerability {
    pub id: String,
    pub severity: Severity,
    pub package: String,
}

/// Whether the newest scan in `layers` signed by `keys` about `digest` has
/// no finding above `max` outside `ignore`. The finding's `scanned_at` is
/// that scan's end, which the gate compares with maxAge.
pub fn check(
    digest: &str,
    layers: &[Layer],
    keys: &[TrustedKey],
    keyless: Option<&Keyless>,
    max: Severity,
    ignore: &[String],
) -> Finding {
    let attested =
        match attestations::verified(digest, layers, keys, keyless, &[VULN_V1], "vulnerability scan") {
            Ok(attested) => attested,
            Err(finding) => return finding,
        };
    let mut scans = Vec::new();
    let mut malformed = Vec::new();
    for attestation in &attested {
        match read(&attestation.statement.predicate) {
            Ok(scan) => scans.push((scan, &attestation.signed_by)),
            Err(problem) => malformed.push(problem.to_string()),
        }
    }
    let Some((scan, signed_by)) = scans.into_iter().max_by_key(|(scan, _)| scan.finished) else {
        return Finding::of(
            FindingReason::MalformedAttestation,
            format!("no vulnerability scan could be read: {}", malformed.join("; ")),
        );
    };
    let ignored: BTreeSet<&str> = ignore.iter().map(String::as_str).collect();
    let mut blocking: Vec<&Vulnerability> = scan
        .findings
        .iter()
        .filter(|v| v.severity > max && !ignored.contains(v.id.as_str()))
        .collect();
    blocking.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
    blocking.dedup_by(|a, b| a.id == b.id && a.package == b.package);
    let waived = scan
        .findings
        .iter()
        .filter(|v| v.severity > max && ignored.contains(v.id.as_str()))
        .map(|v| v.id.as_str())
        .collect::<BTreeSet<_>>();
    let waived = if waived.is_empty() {
        String::new()
    } else {
        format!(
            " ({} ignored: {})",
            waived.len(),
            waived.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    let by = format!("{} scan of {}", scan.scanner, scan.finished);
    let finding = if blocking.is_empty() {
        Finding::verified(format!(
            "{by}: {} findings, none above {max:?}{waived}",
            scan.findings.len()
        ))
    } else {
        let listed: Vec<String> = blocking
            .iter()
            .take(LISTED)
            .map(|v| format!("{} ({:?}, {})", v.id, v.severity, v.package))
            .collect();
        let more = blocking.len().saturating_sub(LISTED);
        Finding::of(
            FindingReason::VulnerabilitiesFound,
            format!(
                "{by} of {}: {} above {max:?}: {}{}{waived}",
                short(digest),
                blocking.len(),
                listed.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            ),
        )
    };
    Finding {
        signed_by: signed_by.clone(),
        scanned_at: Some(scan.finished),
        ..finding
    }
}

/// A scan as read from the predicate.
#[derive(Debug)]
struct Scan {
    scanner: String,
    finished: Timestamp,
    findings: Vec<Vulnerability>,
}

/// Why a scan predicate cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("metadata.scanFinishedOn is missing")]
    FinishedMissing,

    #[error("metadata.scanFinishedOn {text:?} is not a time: {source}")]
    Finished {
        text: String,
        #[source]
        source: jiff::Error,
    },

    #[error("scanner.result is neither a Trivy nor a Grype JSON report")]
    UnknownReport,

    #[error("a {what} has no {field}")]
    FieldMissing { what: &'static str, field: &'static str },
}

fn read(predicate: &Value) -> Result<Scan, ScanError> {
    let finished = predicate["metadata"]["scanFinishedOn"]
        .as_str()
        .ok_or(ScanError::FinishedMissing)?;
    let finished: Timestamp = finished.parse().map_err(|source| ScanError::Finished {
        text: finished.to_owned(),
        source,
    })?;
    let scanner = predicate["scanner"]["uri"]
        .as_str()
        .map(|uri| uri.rsplit('/').next().unwrap_or(uri).to_owned())
        .unwrap_or_else(|| "unnamed scanner".to_owned());
    let result = &predicate["scanner"]["result"];
    let findings = if result.get("Results").is_some() || result.get("SchemaVersion").is_some() {
        trivy(result)?
    } else if result.get("matches").is_some() {
        grype(result)?
    } else {
        return Err(ScanError::UnknownReport);
    };
    Ok(Scan {
        scanner,
        finished,
        findings,
    })
}

/// Trivy: `Results[].Vulnerabilities[]` with `VulnerabilityID`, `PkgName`, `Severity`.
fn trivy(report: &Value) -> Result<Vec<Vulnerability>, ScanError> {
    let mut found = Vec::new();
    for result in report["Results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        for v in result["Vulnerabilities"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            found.push(Vulnerability {
                id: text(v, "VulnerabilityID", "Trivy finding")?,
                severity: severity(v["Severity"].as_str().unwrap_or("UNKNOWN")),
                package: package(&v["PkgName"], &v["InstalledVersion"]),
            });
        }
    }
    Ok(found)
}

/// Grype: `matches[]` with `vulnerability.id`, `vulnerability.severity`, `artifact.name`.
fn grype(report: &Value) -> Result<Vec<Vulnerability>, ScanError> {
    let mut found = Vec::new();
    for m in report["matches"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let vulnerability = &m["vulnerability"];
        found.push(Vulnerability {
            id: text(vulnerability, "id", "Grype match")?,
            severity: severity(vulnerability["severity"].as_str().unwrap_or("Unknown")),
            package: package(&m["artifact"]["name"], &m["artifact"]["version"]),
        });
    }
    Ok(found)
}

fn text(value: &Value, field: &'static str, what: &'static str) -> Result<String, ScanError> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or(ScanError::FieldMissing { what, field })
}

fn package(name: &Value, version: &Value) -> String {
    match (name.as_str(), version.as_str()) {
        (Some(name), Some(version)) => format!("{name} {version}"),
        (Some(name), None) => name.to_owned(),
        _ => "unnamed package".to_owned(),
    }
}

/// Trivy writes CRITICAL, Grype Critical; Grype's Negligible is Low.
pub fn severity(text: &str) -> Severity {
    match text.to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" | "moderate" => Severity::Medium,
        "low" | "negligible" => Severity::Low,
        _ => Severity::Unknown,
    }
}

#[cfg(test)]
pub(crate) mod test_reports {
    use serde_json::{Value, json};

    /// A cosign vulnerability predicate around a Trivy report of `findings` (id, severity, package).
    pub fn trivy(finished: &str, findings: &[(&str, &str, &str)]) -> Value {
        json!({
            "invocation": {"uri": "", "event_id": "", "builder.id": ""},
            "scanner": {
                "uri": "pkg:github/aquasecurity/trivy@0.58.1",
                "version": "0.58.1",
                "result": {
                    "SchemaVersion": 2,
                    "Results": [{
                        "Target": "shop",
                        "Vulnerabilities": findings.iter().map(|(id, severity, package)| json!({
                            "VulnerabilityID": id, "PkgName": package, "InstalledVersion": "1.0", "Severity": severity
                        })).collect::<Vec<_>>()
                    }]
                }
            },
            "metadata": {"scanStartedOn": finished, "scanFinishedOn": finished}
        })
    }

    /// The same around a Grype report.
    pub fn grype(finished: &str, findings: &[(&str, &str, &str)]) -> Value {
        json!({
            "scanner": {
                "uri": "pkg:github/anchore/grype@0.86.1",
                "result": {
                    "matches": findings.iter().map(|(id, severity, package)| json!({
                        "vulnerability": {"id": id, "severity": severity},
                        "artifact": {"name": package, "version": "1.0"}
                    })).collect::<Vec<_>>()
                }
            },
            "metadata": {"scanFinishedOn": finished}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::attestations::test_envelopes::attestation;
    use super::super::keys::test_keys::{SigningKey, Trusted};
    use super::test_reports::{grype, trivy};
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn a_critical_finding_blocks_unless_ignored_in_both_report_formats() {
        let key = SigningKey::generate();
        let keys = [key.trusted("scanner")];
        for predicate in [
            trivy(
                "2026-12-01T10:00:00Z",
                &[
                    ("CVE-2026-1", "CRITICAL", "openssl"),
                    ("CVE-2026-2", "LOW", "zlib"),
                ],
            ),
            grype(
                "2026-12-01T10:00:00Z",
                &[
                    ("CVE-2026-1", "Critical", "openssl"),
                    ("CVE-2026-2", "Negligible", "zlib"),
                ],
            ),
        ] {
            let layer = attestation(&key, "", DIGEST, VULN_V1, predicate);
            let blocked = check(
                DIGEST,
                std::slice::from_ref(&layer),
                &keys,
                None,
                Severity::Medium,
                &[],
            );
            assert_eq!(blocked.reason, FindingReason::VulnerabilitiesFound);
            assert!(
                blocked
                    .message
                    .ends_with("of sha256:111111111111: 1 above Medium: CVE-2026-1 (Critical, openssl 1.0)"),
                "{}",
                blocked.message
            );
            assert_eq!(blocked.scanned_at, Some("2026-12-01T10:00:00Z".parse().unwrap()));
            let ignored = check(
                DIGEST,
                &[layer],
                &keys,
                None,
                Severity::Medium,
                &["CVE-2026-1".into()],
            );
            assert_eq!(ignored.reason, FindingReason::Verified);
            assert!(
                ignored
                    .message
                    .ends_with(": 2 findings, none above Medium (1 ignored: CVE-2026-1)"),
                "{}",
                ignored.message
            );
        }
    }

    #[test]
    fn the_newest_scan_decides_and_long_lists_are_cut() {
        let key = SigningKey::generate();
        let keys = [key.trusted("scanner")];
        let many: Vec<(String, &str, &str)> = (0..8)
            .map(|n| (format!("CVE-2026-10{n}"), "HIGH", "libc"))
            .collect();
        let many: Vec<(&str, &str, &str)> = many.iter().map(|(id, s, p)| (id.as_str(), *s, *p)).collect();
        let old = attestation(&key, "", DIGEST, VULN_V1, trivy("2026-11-01T00:00:00Z", &many));
        let new = attestation(&key, "", DIGEST, VULN_V1, trivy("2026-12-01T00:00:00Z", &[]));
        let finding = check(DIGEST, &[old.clone(), new], &keys, None, Severity::Medium, &[]);
        assert_eq!(finding.reason, FindingReason::Verified);
        assert_eq!(finding.scanned_at, Some("2026-12-01T00:00:00Z".parse().unwrap()));
        let finding = check(DIGEST, &[old], &keys, None, Severity::Medium, &[]);
        assert!(
            finding
                .message
                .contains(": 8 above Medium: CVE-2026-100 (High, libc 1.0), "),
            "{}",
            finding.message
        );
        assert!(finding.message.ends_with(", and 3 more"), "{}", finding.message);
    }

    #[test]
    fn a_report_without_a_time_or_a_format_is_malformed() {
        let key = SigningKey::generate();
        let keys = [key.trusted("scanner")];
        for predicate in [
            serde_json::json!({"scanner": {"result": {"matches": []}}}),
            serde_json::json!({"metadata": {"scanFinishedOn": "2026-12-01T00:00:00Z"}, "scanner": {"result": {}}}),
        ] {
            let layer = attestation(&key, "", DIGEST, VULN_V1, predicate);
            assert_eq!(
                check(DIGEST, &[layer], &keys, None, Severity::Medium, &[]).reason,
                FindingReason::MalformedAttestation
            );
        }
    }
}
