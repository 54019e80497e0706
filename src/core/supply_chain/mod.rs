//! Supply-chain checks at promotion time: cosign signatures, SLSA
//! provenance that must name the Artifact's commit, and vulnerability scans,
//! each checked once per digest and policy.
//!
//! The controller fetches what is attached to a digest (signature and
//! attestation manifests and Sigstore bundles, through the referrers API
//! or cosign's tag scheme)
//! and hands it to [`record`], which decides from those bytes alone; the
//! record lands in the Artifact's status, shared by every Environment with
//! the same policy. The Provenance and Vulnerabilities gates read the
//! records and `now`.

pub mod attestations;
pub mod bundle;
pub mod envelope;
pub mod keyless;
pub mod keys;
pub mod provenance;
pub mod scan;
pub mod signatures;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    Artifact, ArtifactStatus, Environment, KeylessPolicy, PublicKey, Severity, SupplyChainCheck,
    SupplyChainRecord, SupplyChainVerdict,
};
use crate::core::duration;
use crate::core::reasons::{EventReason, FindingReason};
pub use envelope::{Attachments, Layer};
use keyless::{Identity, Keyless, Subject, TrustedRoot};
pub use keys::TrustedKey;

/// The data of the Secrets of a namespace that policies name, by Secret name.
pub type KeySecrets = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The data of the ConfigMaps of a namespace that policies name, by name.
pub type RootConfigMaps = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// What supply-chain policies read besides the Environment: the Secrets
/// (keys, trusted roots) and ConfigMaps (trusted roots) of its namespace
/// they name, and the trusted root the operator was started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSources {
    pub secrets: KeySecrets,
    pub config_maps: RootConfigMaps,
    /// `--trusted-root`: for keyless policies that name no root.
    pub default_root: Option<std::sync::Arc<[u8]>>,
}

/// A supply-chain policy's keys and keyless policy, by the field that
/// holds them.
pub struct TrustSpec<'a> {
    /// `spec.gates.provenance.signatures`, `…attestation` or `spec.gates.vulnerabilities`.
    pub path: &'static str,
    pub keys: &'a [PublicKey],
    pub keyless: Option<&'a KeylessPolicy>,
}

/// The keys and keyless policies of `environment`'s supply-chain gates.
pub fn trust_specs(environment: &Environment) -> Vec<TrustSpec<'_>> {
    let gates = &environment.spec.gates;
    let provenance = gates.provenance.as_ref();
    let signatures = provenance.and_then(|p| p.signatures.as_ref()).map(|s| TrustSpec {
        path: "spec.gates.provenance.signatures",
        keys: &s.keys,
        keyless: s.keyless.as_ref(),
    });
    let attestation = provenance
        .and_then(|p| p.attestation.as_ref())
        .map(|a| TrustSpec {
            path: "spec.gates.provenance.attestation",
            keys: &a.keys,
            keyless: a.keyless.as_ref(),
        });
    let vulnerabilities = gates.vulnerabilities.as_ref().map(|v| TrustSpec {
        path: "spec.gates.vulnerabilities",
        keys: &v.keys,
        keyless: v.keyless.as_ref(),
    });
    [signatures, attestation, vulnerabilities]
        .into_iter()
        .flatten()
        .collect()
}

/// The Secrets the supply-chain policies of `environment` take keys or
/// trusted roots from.
pub fn key_secret_names(environment: &Environment) -> std::collections::BTreeSet<String> {
    trust_specs(environment)
        .into_iter()
        .flat_map(|spec| {
            let roots = spec
                .keyless
                .and_then(|k| k.trusted_root.as_ref())
                .and_then(|root| root.secret_ref.as_ref());
            spec.keys
                .iter()
                .filter_map(|key| key.secret_ref.as_ref())
                .chain(roots)
                .map(|reference| reference.name.clone())
        })
        .collect()
}

/// The ConfigMaps the keyless policies of `environment` take trusted roots from.
pub fn root_config_map_names(environment: &Environment) -> std::collections::BTreeSet<String> {
    trust_specs(environment)
        .into_iter()
        .filter_map(|spec| spec.keyless?.trusted_root.as_ref()?.config_map_ref.as_ref())
        .map(|reference| reference.name.clone())
        .collect()
}

/// A ConfigMap's keys and values (`binaryData` too), as policies read them.
pub fn config_map_data(config_map: &k8s_openapi::api::core::v1::ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let data = config_map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()));
    let binary = config_map
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()));
    data.chain(binary).collect()
}

/// A Secret's keys and values as policies read them (`stringData` of a
/// manifest file over `data`). Only PEM public keys and trusted roots (both
/// public) keep their value: a Secret made by `cosign generate-key-pair
/// k8s://…` also holds the private key and its password, which are never
/// kept (their names are, so a policy naming one is told it is not a
/// public key).
pub fn secret_data(secret: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, Vec<u8>> {
    let data = secret.data.iter().flatten().map(|(k, v)| (k, v.0.as_slice()));
    let string_data = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.as_bytes()));
    data.chain(string_data)
        .map(|(key, value)| {
            let public = pem::parse(value).is_ok_and(|block| block.tag() == "PUBLIC KEY")
                || keyless::root::is_trusted_root(value);
            (key.clone(), if public { value.to_vec() } else { Vec::new() })
        })
        .collect()
}

/// What one check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: SupplyChainVerdict,
    pub reason: FindingReason,
    pub message: String,
    pub signed_by: Vec<String>,
    pub scanned_at: Option<Timestamp>,
}

impl Finding {
    /// A finding of `reason`, with the verdict it comes to.
    pub fn of(reason: FindingReason, message: String) -> Finding {
        Finding {
            verdict: reason.verdict(),
            reason,
            message,
            signed_by: Vec::new(),
            scanned_at: None,
        }
    }

    pub fn verified(message: String) -> Finding {
        Finding::of(FindingReason::Verified, message)
    }
}

/// What a policy asks beyond its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Signatures {
        min: usize,
    },
    Provenance {
        predicate: crate::api::ProvenancePredicate,
        builder: Option<String>,
    },
    Vulnerabilities {
        max: Severity,
        ignore: Vec<String>,
        max_age: Option<SignedDuration>,
    },
}

/// A policy of an Environment with its keys and trusted root read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub check: SupplyChainCheck,
    /// 16 hex digits over the keys' fingerprints, the keyless identities
    /// and trusted root, and the rule (maxAge aside: it is applied to the
    /// record, not checked into it).
    pub id: String,
    pub keys: Vec<TrustedKey>,
    pub keyless: Option<Keyless>,
    pub rule: Rule,
}

/// A policy that cannot be used as written, and why (naming the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    pub check: SupplyChainCheck,
    pub message: String,
    /// A Secret that does not exist (yet): the gate waits for it.
    pub waiting: bool,
}

/// The supply-chain policies of `environment`, keys and trusted roots read
/// from `trust`.
pub fn policies(environment: &Environment, trust: &TrustSources) -> Vec<Result<Policy, PolicyProblem>> {
    let namespace = environment.metadata.namespace.as_deref().unwrap_or_default();
    let gates = &environment.spec.gates;
    let mut policies = Vec::new();
    if let Some(provenance) = &gates.provenance {
        if let Some(signatures) = &provenance.signatures {
            policies.push(policy(
                SupplyChainCheck::Signatures,
                "spec.gates.provenance.signatures",
                (&signatures.keys, signatures.keyless.as_ref()),
                Rule::Signatures {
                    min: usize::try_from(signatures.min_signatures).unwrap_or(1).max(1),
                },
                namespace,
                trust,
            ));
        }
        if let Some(attestation) = &provenance.attestation {
            policies.push(policy(
                SupplyChainCheck::Provenance,
                "spec.gates.provenance.attestation",
                (&attestation.keys, attestation.keyless.as_ref()),
                Rule::Provenance {
                    predicate: attestation.predicate_type,
                    builder: attestation.builder.as_ref().map(|b| b.id.clone()),
                },
                namespace,
                trust,
            ));
        }
    }
    if let Some(vulnerabilities) = &gates.vulnerabilities {
        let max_age = match vulnerabilities
            .max_age
            .as_deref()
            .map(duration::parse)
            .transpose()
        {
            Ok(max_age) => max_age,
            Err(error) => {
                policies.push(Err(PolicyProblem {
                    check: SupplyChainCheck::Vulnerabilities,
                    message: format!("spec.gates.vulnerabilities.maxAge: {error}"),
                    waiting: false,
                }));
                return policies;
            }
        };
        let mut ignore = vulnerabilities.ignore.clone();
        ignore.sort();
        ignore.dedup();
        policies.push(policy(
            SupplyChainCheck::Vulnerabilities,
            "spec.gates.vulnerabilities",
            (&vulnerabilities.keys, vulnerabilities.keyless.as_ref()),
            Rule::Vulnerabilities {
                max: vulnerabilities.max_severity,
                ignore,
                max_age,
            },
            namespace,
            trust,
        ));
    }
    policies
}

fn policy(
    check: SupplyChainCheck,
    field: &str,
    (specs, keyless_spec): (&[PublicKey], Option<&KeylessPolicy>),
    rule: Rule,
    namespace: &str,
    trust: &TrustSources,
) -> Result<Policy, PolicyProblem> {
    let secrets = &trust.secrets;
    let problem = |message: String, waiting| PolicyProblem {
        check,
        message,
        waiting,
    };
    let mut keys = Vec::new();
    for spec in specs {
        let field = format!("{field}.keys[{}]", spec.name);
        let text = match (&spec.pem, &spec.secret_ref) {
            (Some(pem), _) => pem.clone(),
            (None, Some(reference)) => {
                let Some(data) = secrets.get(&reference.name) else {
                    return Err(problem(
                        format!("{field}: Secret {namespace}/{} not found", reference.name),
                        true,
                    ));
                };
                let Some(value) = data.get(&reference.key) else {
                    return Err(problem(
                        format!(
                            "{field}: Secret {namespace}/{} has no key {}",
                            reference.name, reference.key
                        ),
                        true,
                    ));
                };
                String::from_utf8_lossy(value).into_owned()
            }
            (None, None) => return Err(problem(format!("{field}: neither pem nor secretRef"), false)),
        };
        let key = TrustedKey::from_pem(&spec.name, &text)
            .map_err(|error| problem(format!("{field}: the key {error}"), false))?;
        keys.push(key);
    }
    let mut fingerprints: Vec<&str> = keys.iter().map(|k| k.fingerprint.as_str()).collect();
    fingerprints.sort();
    let rule_text = match &rule {
        Rule::Signatures { min } => format!("min={min}"),
        Rule::Provenance { predicate, builder } => {
            format!(
                "type={};builder={}",
                predicate.uri(),
                builder.as_deref().unwrap_or("")
            )
        }
        Rule::Vulnerabilities { max, ignore, .. } => format!("max={max:?};ignore={}", ignore.join(",")),
    };
    let keyless = keyless_spec
        .map(|spec| keyless_policy(&format!("{field}.keyless"), spec, namespace, trust))
        .transpose()
        .map_err(|(message, waiting)| problem(message, waiting))?;
    // A keyed policy's id stays what it was before keyless policies were read.
    let keyless_text = keyless.as_ref().map_or_else(String::new, |keyless| {
        let mut identities: Vec<String> = keyless.identities.iter().map(Identity::describe).collect();
        identities.sort();
        format!(
            ";keyless={};root={}",
            identities.join(","),
            keyless.root.fingerprint
        )
    });
    let hash = keys::fingerprint(
        format!(
            "{check:?};{rule_text};keys={}{keyless_text}",
            fingerprints.join(",")
        )
        .as_bytes(),
    );
    Ok(Policy {
        check,
        id: hash["sha256:".len().."sha256:".len() + 16].to_owned(),
        keys,
        keyless,
        rule,
    })
}

/// A keyless policy with its identities compiled and its trusted root
/// read; else why not, and whether a ConfigMap or Secret to wait for is
/// missing.
fn keyless_policy(
    field: &str,
    spec: &KeylessPolicy,
    namespace: &str,
    trust: &TrustSources,
) -> Result<Keyless, (String, bool)> {
    let identities = spec
        .identities
        .iter()
        .enumerate()
        .map(|(index, identity)| {
            let subject = match (&identity.subject, &identity.subject_reg_exp) {
                (Some(subject), _) => Subject::Exact(subject.clone()),
                (None, Some(pattern)) => Subject::pattern(pattern)
                    .map_err(|error| (format!("{field}.identities[{index}]: {error}"), false))?,
                (None, None) => {
                    return Err((
                        format!("{field}.identities[{index}]: neither subject nor subjectRegExp"),
                        false,
                    ));
                }
            };
            Ok(Identity {
                issuer: identity.issuer.clone(),
                subject,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let field = format!("{field}.trustedRoot");
    let (json, source): (&[u8], String) = match &spec.trusted_root {
        None => match &trust.default_root {
            Some(root) => (root, "the operator's --trusted-root".to_owned()),
            None => {
                return Err((
                    format!("{field}: not set, and the operator was started without --trusted-root"),
                    false,
                ));
            }
        },
        Some(reference) => {
            let (kind, data, name, key) = match (&reference.config_map_ref, &reference.secret_ref) {
                (Some(r), _) => ("ConfigMap", trust.config_maps.get(&r.name), &r.name, &r.key),
                (None, Some(r)) => ("Secret", trust.secrets.get(&r.name), &r.name, &r.key),
                (None, None) => return Err((format!("{field}: neither configMapRef nor secretRef"), false)),
            };
            let source = format!("{kind} {namespace}/{name}");
            let Some(data) = data else {
                return Err((format!("{field}: {source} not found"), true));
            };
            let Some(value) = data.get(key) else {
                return Err((format!("{field}: {source} has no key {key}"), true));
            };
            (value.as_slice(), format!("{source} key {key}"))
        }
    };
    let root = TrustedRoot::from_json(json).map_err(|error| (format!("{field}: {source} {error}"), false))?;
    Ok(Keyless { identities, root })
}

/// A check to make: one component digest of one Artifact against one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    pub artifact: String,
    pub component: String,
    pub image: String,
    pub digest: String,
    pub policy: Policy,
}

/// How long after a scan went stale it is looked for again, and again.
const RESCAN: SignedDuration = SignedDuration::from_hours(1);

/// When a record is to be made again, if ever: an Unavailable one after its
/// backoff; a scan once it is older than maxAge (a newer one may have been
/// pushed), then hourly while it stays so.
pub fn due_at(record: &SupplyChainRecord, policy: &Policy) -> Option<Timestamp> {
    let checked = record.checked_at.0;
    match record.verdict {
        SupplyChainVerdict::Unavailable => Some(checked + retry_delay(record.attempts)),
        SupplyChainVerdict::Failed => None,
        SupplyChainVerdict::Verified => {
            let Rule::Vulnerabilities {
                max_age: Some(max_age),
                ..
            } = &policy.rule
            else {
                return None;
            };
            let stale = record.scanned_at.as_ref()?.0 + *max_age;
            Some(if checked < stale { stale } else { checked + RESCAN })
        }
    }
}

/// Whether `record` is to be made again at `now`.
pub fn is_due(record: &SupplyChainRecord, policy: &Policy, now: Timestamp) -> bool {
    due_at(record, policy).is_some_and(|when| when <= now)
}

/// 10 s after the first failure, doubling, at most 10 minutes.
fn retry_delay(attempts: i32) -> SignedDuration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 6)).unwrap_or(0);
    SignedDuration::from_secs(10 * 2i64.pow(doublings)).min(SignedDuration::from_mins(10))
}

/// The record of `artifact`'s `component` against `policy`, if any.
pub fn record_of<'a>(
    artifact: &'a Artifact,
    component: &str,
    policy: &Policy,
) -> Option<&'a SupplyChainRecord> {
    artifact.status.as_ref()?.supply_chain.iter().find(|record| {
        record.component == component && record.check == policy.check && record.policy == policy.id
    })
}

/// `status` with `records`, each replacing the record of the same
/// component, check and policy, kept in that order.
pub fn merge<'r>(status: &mut ArtifactStatus, records: impl IntoIterator<Item = &'r SupplyChainRecord>) {
    for record in records {
        status.supply_chain.retain(|r| {
            !(r.component == record.component && r.check == record.check && r.policy == record.policy)
        });
        status.supply_chain.push(record.clone());
    }
    status
        .supply_chain
        .sort_by(|a, b| (&a.component, a.check, &a.policy).cmp(&(&b.component, b.check, &b.policy)));
}

/// The checks of `artifact` against `policies` to make at `now`, and the
/// earliest later instant one falls due.
pub fn due(
    policies: &[Result<Policy, PolicyProblem>],
    artifact: &Artifact,
    now: Timestamp,
) -> (Vec<DueCheck>, Option<Timestamp>) {
    let mut checks = Vec::new();
    let mut next: Option<Timestamp> = None;
    let resolved = artifact
        .status
        .as_ref()
        .map(|s| s.images.as_slice())
        .unwrap_or_default();
    for policy in policies.iter().flatten() {
        for image in resolved {
            let when = match record_of(artifact, &image.component, policy) {
                Some(record) if record.digest == image.digest => due_at(record, policy),
                _ => Some(now),
            };
            match when {
                Some(when) if when <= now => checks.push(DueCheck {
                    artifact: artifact.metadata.name.clone().unwrap_or_default(),
                    component: image.component.clone(),
                    image: image.image.clone(),
                    digest: image.digest.clone(),
                    policy: policy.clone(),
                }),
                Some(when) => next = Some(next.map_or(when, |n| n.min(when))),
                None => {}
            }
        }
    }
    (checks, next)
}

/// The record of `check` given what was fetched for its digest (`Err`: the
/// registry could not be read, with why). `previous` is the record it
/// replaces, if any.
pub fn record(
    check: &DueCheck,
    fetched: Result<&Attachments, String>,
    source: Option<&crate::api::Source>,
    previous: Option<&SupplyChainRecord>,
    now: &Time,
) -> SupplyChainRecord {
    let base = |finding: Finding, attempts| SupplyChainRecord {
        component: check.component.clone(),
        check: check.policy.check,
        policy: check.policy.id.clone(),
        digest: check.digest.clone(),
        verdict: finding.verdict,
        reason: finding.reason.as_str().to_owned(),
        message: finding.message,
        attempts,
        signed_by: finding.signed_by,
        scanned_at: finding.scanned_at.map(Time),
        checked_at: now.clone(),
    };
    let previous = previous.filter(|p| p.digest == check.digest);
    let attachments = match fetched {
        Ok(attachments) => attachments,
        Err(message) => {
            // A scan that verified stays verified while a newer one cannot be looked for.
            if let Some(previous) = previous.filter(|p| p.verdict == SupplyChainVerdict::Verified) {
                return SupplyChainRecord {
                    checked_at: now.clone(),
                    ..previous.clone()
                };
            }
            let attempts = previous
                .filter(|p| p.verdict == SupplyChainVerdict::Unavailable)
                .map_or(0, |p| p.attempts)
                + 1;
            return base(Finding::of(FindingReason::RegistryUnavailable, message), attempts);
        }
    };
    let keys = &check.policy.keys;
    let keyless = check.policy.keyless.as_ref();
    let finding = match &check.policy.rule {
        Rule::Signatures { min } => signatures::check(
            &check.digest,
            &attachments.signature_layers(),
            keys,
            keyless,
            *min,
        ),
        Rule::Provenance { predicate, builder } => provenance::check(
            &check.digest,
            &attachments.attestation_layers(),
            keys,
            keyless,
            *predicate,
            builder.as_deref(),
            source,
        ),
        Rule::Vulnerabilities { max, ignore, .. } => scan::check(
            &check.digest,
            &attachments.attestation_layers(),
            keys,
            keyless,
            *max,
            ignore,
        ),
    };
    base(finding, 0)
}

/// The Event for `record`, made in place of `before`, when it says
/// something new (another digest, verdict or reason): its reason and note.
pub fn record_event(
    record: &SupplyChainRecord,
    before: Option<&SupplyChainRecord>,
) -> Option<(EventReason, String)> {
    let reason: FindingReason = record.reason.parse().ok()?;
    let same = before.is_some_and(|before| {
        before.digest == record.digest
            && before.verdict == record.verdict
            && before.reason.parse() == Ok(reason)
    });
    let event = match record.verdict {
        SupplyChainVerdict::Verified => EventReason::Verified(record.check),
        SupplyChainVerdict::Failed | SupplyChainVerdict::Unavailable => EventReason::Finding(reason),
    };
    (!same).then(|| {
        (
            event,
            format!(
                "component {} ({}): {}",
                record.component,
                short(&record.digest),
                record.message
            ),
        )
    })
}

/// `sha256:` and 12 hex digits. Cut at a character: a digest read from a
/// signed payload or statement may hold anything.
pub fn short(digest: &str) -> &str {
    digest
        .char_indices()
        .nth("sha256:".len() + 12)
        .map_or(digest, |(end, _)| &digest[..end])
}

/// `[name (sha256:fp…), …]`.
pub fn key_list(keys: &[TrustedKey]) -> String {
    format!(
        "[{}]",
        keys.iter()
            .map(|k| format!("{} (sha256:{})", k.name, k.short()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests;
