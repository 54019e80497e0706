//! Artifact: an immutable, digest-pinned release of one application.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DIGEST, DNS_LABEL, SecretReference};

/// An immutable release of one application: one image per component, each
/// resolved to a digest once, with the source it was built from. Promotions
/// run exactly these digests in every environment; the spec can never change
/// (make a new Artifact instead).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hoist.dev",
    version = "v1alpha1",
    kind = "Artifact",
    namespaced,
    derive = "PartialEq",
    status = "ArtifactStatus",
    shortname = "art",
    category = "hoist",
    doc = "An immutable, digest-pinned release of one application.",
    printcolumn(name = "Application", type_ = "string", json_path = ".spec.application"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    selectable = ".spec.application"
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("Artifact spec is immutable: create a new Artifact for a new release"))]
#[x_kube(validation = Rule::new("self.versionScheme != 'SemVer' || self.version.matches('^(0|[1-9][0-9]*)\\\\.(0|[1-9][0-9]*)\\\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\\\+[0-9A-Za-z.-]+)?$')").message("version must be a semantic version such as 1.4.2 when versionScheme is SemVer").field_path(".version"))]
#[x_kube(validation = Rule::new("self.versionScheme != 'CalVer' || self.version.matches('^[0-9]{4}\\\\.(0[1-9]|1[0-2])\\\\.(0|[1-9][0-9]*)$')").message("version must be YYYY.MM.PATCH such as 2026.11.3 when versionScheme is CalVer").field_path(".version"))]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSpec {
    /// The application this release belongs to (a DNS label). Environments
    /// target components of applications by this name.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub application: String,

    /// The release version, read according to `versionScheme`.
    #[schemars(length(min = 1, max = 128))]
    pub version: String,

    /// How `version` is read: `SemVer` (1.4.2), `CalVer` (YYYY.MM.PATCH) or
    /// `Opaque` (any label such as sha-abc1234; no ordering by bump size).
    #[serde(default)]
    pub version_scheme: VersionScheme,

    /// One image per component of the application. Each is resolved to a
    /// digest once and never re-read.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["component".into()]))]
    pub images: Vec<ComponentImage>,

    /// Where the release was built from. Environments that require
    /// provenance refuse Artifacts without a full source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,

    /// Version ranges of other applications this release works with,
    /// checked against what runs in the target environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["application".into()]))]
    pub compatibility: Vec<Compatibility>,

    /// Secrets of type kubernetes.io/dockerconfigjson in this namespace used
    /// to read the registry. When empty, the namespace's default
    /// ServiceAccount's imagePullSecrets are used, then anonymous access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub image_pull_secrets: Vec<SecretReference>,
}

/// How an Artifact's version is read.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum VersionScheme {
    /// Semantic versioning: MAJOR.MINOR.PATCH with optional pre-release.
    #[default]
    SemVer,
    /// Calendar versioning: YYYY.MM.PATCH.
    CalVer,
    /// Any label; versions are compared only for equality.
    Opaque,
}

/// The image of one component.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.digest) || !self.image.contains('@') || self.image.endsWith('@' + self.digest)").message("digest must equal the digest in image when image is pinned by digest").field_path(".digest"))]
#[serde(rename_all = "camelCase")]
pub struct ComponentImage {
    /// Component name (a DNS label), e.g. backend or frontend.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub component: String,

    /// Image reference with a tag or a digest, e.g.
    /// registry.example.com/shop/backend:1.4.2.
    #[schemars(
        length(min = 1, max = 512),
        pattern(r"^[a-z0-9]+([._:/-][a-zA-Z0-9_.-]+)*(@sha256:[a-f0-9]{64})?$")
    )]
    pub image: String,

    /// The expected digest (sha256:…). When set, the registry must report
    /// exactly this digest or the Artifact never becomes Ready.
    // The maxLength ("sha256:" and 64 hex digits) is what keeps the rule on
    // ComponentImage within kube-apiserver's CEL cost budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 71), pattern(DIGEST))]
    pub digest: Option<String>,
}

/// Build provenance of an Artifact.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Source repository URL, e.g. https://git.example.com/shop/backend.
    #[schemars(length(min = 1, max = 512))]
    pub repository: String,

    /// Full commit id the images were built from (40 or 64 hex digits).
    /// Checked by the provenance gate, not by the schema, so a malformed
    /// value is reported on the Artifact rather than refused outright.
    #[schemars(length(min = 1, max = 128))]
    pub revision: String,

    /// Identifier of the build that produced the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub build_id: Option<String>,

    /// Link to the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub build_url: Option<String>,

    /// When the build finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<Time>,

    /// When the revision was committed. The lead time for changes is
    /// measured from it to the release's success in an environment (from
    /// `builtAt` when it is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<Time>,
}

/// A version range of another application this release works with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compatibility {
    /// The other application (a DNS label).
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub application: String,
    /// Comma-separated semver requirements, e.g. ">=1.4.0, <2.0.0".
    #[schemars(length(min = 1, max = 256))]
    pub versions: String,
}

/// What the controller found out about an Artifact.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready: every image resolved (and matching its spec digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The digest each component's image resolved to. Written once; a
    /// resolved Artifact is never resolved again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["component".into()]))]
    pub images: Vec<ResolvedImage>,

    /// The result of the provenance check, made once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceStatus>,

    /// Supply-chain checks of each component's digest (signatures, SLSA
    /// provenance, vulnerability scans), one per component, check and
    /// policy: made once, read by every Environment with the same policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 512))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["component".into(), "check".into(), "policy".into()]))]
    pub supply_chain: Vec<SupplyChainRecord>,
}

/// What one supply-chain check of one component's digest found.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupplyChainRecord {
    /// Component name.
    pub component: String,
    /// Which check.
    pub check: SupplyChainCheck,
    /// The policy checked against: 16 hex digits of a hash over the key
    /// fingerprints and the policy's other settings. Environments with the
    /// same policy share the record; a changed policy is checked anew.
    pub policy: String,
    /// The digest checked.
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    /// Verified, Failed (the image does not meet the policy) or Unavailable
    /// (the registry could not be read; checked again with backoff).
    pub verdict: SupplyChainVerdict,
    /// PascalCase: Verified, SignatureMissing, UntrustedSignature, …
    pub reason: String,
    /// What was found, for humans.
    pub message: String,
    /// The names of the keys whose signatures verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<String>,
    /// Unavailable: how many checks in a row could not read the registry
    /// (the next waits 10 s, 20 s, … up to 10 minutes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: i32,
    /// For scans: when the newest verified scan finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<Time>,
    /// When it was checked.
    pub checked_at: Time,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A supply-chain check.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum SupplyChainCheck {
    /// Cosign signatures (gates.provenance.signatures).
    Signatures,
    /// SLSA provenance (gates.provenance.attestation).
    Provenance,
    /// A vulnerability scan (gates.vulnerabilities).
    Vulnerabilities,
}

/// The outcome of a supply-chain check.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SupplyChainVerdict {
    /// The image meets the policy.
    Verified,
    /// The image does not meet the policy; only a new image or a new policy changes it.
    Failed,
    /// The registry could not be read; checked again with backoff.
    Unavailable,
}

/// A component image resolved to a digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedImage {
    /// Component name.
    pub component: String,
    /// The reference from the spec.
    pub image: String,
    /// The digest the registry reported.
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    /// When it was resolved.
    pub resolved_at: Time,
}

/// Provenance facts about an Artifact, checked once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceStatus {
    /// Whether spec.source.revision is a full 40- or 64-hex commit id.
    pub revision: RevisionCheck,
    /// What was found, for humans.
    pub message: String,
    /// When it was checked.
    pub checked_at: Time,
}

/// The outcome of the source revision check.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RevisionCheck {
    /// A full commit id is present.
    Valid,
    /// spec.source or its revision is absent.
    Missing,
    /// A revision is present but is not a full commit id.
    Malformed,
}
