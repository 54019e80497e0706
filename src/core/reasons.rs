//! The reasons Hoist gives: of the conditions it sets, of the Events it
//! records, of the supply-chain findings it keeps, and the reasons of
//! Kubernetes' own controllers it reads. Each is an enum, so no reason is
//! compared as a string; [`as_str`](ConditionReason::as_str) (and `Display`)
//! give the PascalCase word the API shows, and `FromStr` reads one back.

use std::fmt;
use std::str::FromStr;

use crate::api::{SupplyChainCheck, SupplyChainVerdict};

/// A reason that is not one of its enum's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a reason Hoist knows")]
pub struct UnknownReason(pub String);

/// An enum of reasons whose words are the variants' names, and those of
/// the reason enums it nests.
macro_rules! reasons {
    (
        $(#[$meta:meta])* $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident,)+
        }
        $(nested {
            $($(#[$nested_meta:meta])* $nested:ident($inner:ty),)+
        })?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
            $($($(#[$nested_meta])* $nested($inner),)+)?
        }

        impl $name {
            /// Its own reasons (not those of the enums it nests).
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The PascalCase word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                    $($(Self::$nested(reason) => reason.as_str(),)+)?
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownReason;

            fn from_str(text: &str) -> Result<Self, UnknownReason> {
                match text {
                    $(stringify!($variant) => Ok(Self::$variant),)+
                    _ => {
                        $($(
                            if let Ok(reason) = text.parse::<$inner>() {
                                return Ok(Self::$nested(reason));
                            }
                        )+)?
                        Err(UnknownReason(text.to_owned()))
                    }
                }
            }
        }
    };
}

reasons! {
    /// Why an image was not resolved: the Artifact's `Ready` reason.
    ResolutionFailure {
        /// The registry has another digest than `spec.images[].digest`.
        DigestMismatch,
        /// The repository or tag does not exist.
        ImageNotFound,
        /// The reference or its digest is malformed.
        InvalidReference,
        /// The registry refused the credentials, or they could not be used.
        Unauthorized,
        /// A pull Secret the Artifact names (or the default ServiceAccount's)
        /// is missing or unusable.
        PullSecretMissing,
        /// The registry did not answer, or not as the protocol says.
        RegistryUnavailable,
        /// The registry refused the request otherwise.
        RegistryError,
    }
}

impl ResolutionFailure {
    /// No retry can change it: the spec is immutable, so only a new Artifact
    /// can be promoted.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::DigestMismatch | Self::ImageNotFound | Self::InvalidReference
        )
    }

    /// Worth retrying without anyone changing anything.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::RegistryUnavailable | Self::PullSecretMissing)
    }

    /// The Artifact's `Ready` reason.
    pub fn reason(self) -> ConditionReason {
        ConditionReason::Unresolved(self)
    }
}

reasons! {
    /// Why retention keeps an Artifact or a finished Promotion.
    KeepReason {
        /// Among the newest its application (Artifacts) or Environment
        /// (Promotions) keeps.
        Newest,
        /// An Environment runs the Artifact.
        Runs,
        /// An Environment's history (within its historyLimit) or status
        /// names it.
        InHistory,
        /// A Promotion that has not finished refers to the Artifact.
        OpenPromotion,
        /// An Environment would roll back to the Artifact.
        RollbackTarget,
        /// The Promotion has not finished.
        Open,
        /// The Promotion finished less than promotionsMinAge ago.
        Young,
    }
}

reasons! {
    /// Why retention deletes an Artifact or a finished Promotion.
    DeleteReason {
        /// Older than the newest kept, and nothing needs it.
        BeyondNewest,
    }
}

reasons! {
    /// Why registry retention leaves an image's manifest in its registry.
    ManifestKeepReason {
        /// The registry is not in `registryRetention.registries`.
        NotAllowed,
        /// A remaining Artifact (of any namespace) references the same
        /// repository and digest.
        SharedDigest,
        /// The image has no digest (never resolved) or no valid reference.
        Unresolved,
    }
}

reasons! {
    /// What deleting a manifest from its registry came to: the `outcome`
    /// of `hoist_registry_deletions_total`.
    RegistryDeletionOutcome {
        /// The registry accepted the deletion (202).
        Deleted,
        /// The manifest was already gone (404).
        NotFound,
        /// The registry does not allow deletion (405 UNSUPPORTED).
        Unsupported,
        /// The registry refused (401, 403 or another client error), or the
        /// pull secret could not be used.
        Denied,
        /// Transient failures (5xx, 429, connection, timeout) outlasted
        /// every attempt.
        Failed,
    }
}

impl RegistryDeletionOutcome {
    /// The manifest is gone (or was already).
    pub fn is_gone(self) -> bool {
        matches!(self, Self::Deleted | Self::NotFound)
    }
}

reasons! {
    /// The reason of a condition Hoist sets.
    ConditionReason {
        /// An Artifact's `Ready`: every image resolved to a digest.
        Resolved,
        /// An Artifact's `Ready` while images are being resolved.
        Resolving,
        /// An Environment's `Ready`: its spec is valid.
        Ready,
        /// An Environment's `Ready`: some check of its spec failed.
        InvalidSpec,
        /// An Environment's `Ready`: its namespace's tier does not allow it.
        TierForbidden,
        /// An Environment's check passed.
        Valid,
        /// `TargetsValid` failed.
        InvalidTarget,
        /// `UpstreamValid` failed.
        InvalidUpstream,
        /// `ConfigValid` failed.
        InvalidConfig,
        /// `GatesValid` failed.
        InvalidGates,
        /// `ApprovalsVerified`: the admission policy is installed as shipped.
        PolicyInstalled,
        /// `ApprovalsVerified`: it is not.
        PolicyMissing,
        /// `AutoPromotion`: autoPromote promotes what its policy allows.
        Active,
        /// `AutoPromotion`: a hold (`kubectl hoist hold`) pauses it.
        Held,
        /// `AutoPromotion`: a newer release is a larger version step than
        /// the policy's and waits for a manual Promotion.
        StepTooLarge,
        /// `AgentConnected`: the cluster's agent renews its Lease on the hub.
        LeaseRenewed,
        /// `AgentConnected`: it does not (no Lease, released or expired).
        AgentSilent,
        /// An Environment's `Reconciling` (kstatus): a rollout progresses.
        Progressing,
        /// An Environment's `Stalled` (kstatus): a release it runs is Degraded.
        Degraded,
        /// A Promotion's `Ready`: its phase.
        Pending,
        Waiting,
        Promoting,
        Verifying,
        Succeeded,
        Failed,
        RolledBack,
        Superseded,
        Rejected,
    }
    nested {
        /// An Artifact's `Ready`: an image could not be resolved.
        Unresolved(ResolutionFailure),
    }
}

reasons! {
    /// The reason of a supply-chain check's finding: why a digest verified
    /// or did not.
    FindingReason {
        Verified,
        /// The registry could not be read: checked again with backoff.
        RegistryUnavailable,
        SignatureMissing,
        WrongDigest,
        NotEnoughSignatures,
        UntrustedSignature,
        MalformedSignature,
        WrongSubject,
        UnknownKey,
        UntrustedAttestation,
        MalformedAttestation,
        /// A Sigstore bundle that is not valid bundle JSON.
        MalformedBundle,
        /// A Sigstore bundle of a version Hoist does not read.
        UnsupportedBundle,
        AttestationMissing,
        SourceMissing,
        BuilderMismatch,
        RepositoryMismatch,
        RevisionMismatch,
        VulnerabilitiesFound,
        /// A keyless signature's certificate chains to no certificate
        /// authority of the trusted root.
        UntrustedCertificate,
        /// A keyless signature's certificate names another identity (SAN
        /// or OIDC issuer) than the policy's.
        IdentityMismatch,
        /// Nothing the trusted root vouches for (a Rekor entry's signed
        /// timestamp, an RFC 3161 timestamp) says when a keyless signature
        /// was made.
        NoTrustedTimestamp,
        /// A keyless signature was made outside its certificate's validity.
        CertificateExpired,
    }
}

impl FindingReason {
    /// A failure no later look at the digest changes: the image cannot
    /// change, so only a new Artifact passes.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Verified | Self::RegistryUnavailable)
    }

    /// The verdict a finding of this reason comes to.
    pub fn verdict(self) -> SupplyChainVerdict {
        if self == Self::Verified {
            SupplyChainVerdict::Verified
        } else if self.is_terminal() {
            SupplyChainVerdict::Failed
        } else {
            SupplyChainVerdict::Unavailable
        }
    }
}

reasons! {
    /// Reasons Kubernetes' controllers give that Hoist acts on.
    KubernetesReason {
        /// A Deployment's `Progressing`: the rollout exceeded its deadline.
        ProgressDeadlineExceeded,
        /// A Job's `Failed`: it ran longer than activeDeadlineSeconds.
        DeadlineExceeded,
        /// A Job's `Failed`: its pods failed more often than backoffLimit.
        BackoffLimitExceeded,
    }
}

impl KubernetesReason {
    /// Whether `reason`, as a condition of Kubernetes carries it, is this one.
    pub fn is(self, reason: Option<&str>) -> bool {
        reason.and_then(|reason| reason.parse().ok()) == Some(self)
    }
}

/// The reason of an Event Hoist records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReason {
    /// An approval that counts, seen for the first time.
    Approved,
    /// An entry of spec.approvals that does not count.
    ApprovalIgnored,
    /// spec.autoPromote created a Promotion.
    AutoPromoted,
    /// A gate failed.
    Blocked,
    /// A configuration change rolls out on its own.
    ConfigChanged,
    /// A rollout or its verification failed.
    Failed,
    /// An override waived a gate.
    GateWaived,
    /// A notification's delivery was given up.
    NotificationFailed,
    /// Another field manager overwrote a field Hoist pins on a workload
    /// (see [`crate::core::gitops`]); Hoist pinned it again.
    PinOverwritten,
    Promoted,
    Promoting,
    Rejected,
    RolledBack,
    Superseded,
    /// The API server refused a verification Job.
    VerificationJobRefused,
    /// Retention deleted old Artifacts or finished Promotions.
    RetentionDeleted,
    /// Registry retention deleted a deleted Artifact's manifest.
    RegistryManifestDeleted,
    /// A registry refused to delete a manifest, or kept failing.
    RegistryDeletionRefused,
    /// An Artifact's `Ready` condition changed to this reason.
    Resolution(ConditionReason),
    /// A supply-chain check of a digest verified.
    Verified(SupplyChainCheck),
    /// A supply-chain check of a digest did not verify.
    Finding(FindingReason),
}

impl EventReason {
    /// The PascalCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "Approved",
            Self::ApprovalIgnored => "ApprovalIgnored",
            Self::AutoPromoted => "AutoPromoted",
            Self::Blocked => "Blocked",
            Self::ConfigChanged => "ConfigChanged",
            Self::Failed => "Failed",
            Self::GateWaived => "GateWaived",
            Self::NotificationFailed => "NotificationFailed",
            Self::PinOverwritten => "PinOverwritten",
            Self::Promoted => "Promoted",
            Self::Promoting => "Promoting",
            Self::Rejected => "Rejected",
            Self::RolledBack => "RolledBack",
            Self::Superseded => "Superseded",
            Self::VerificationJobRefused => "VerificationJobRefused",
            Self::RetentionDeleted => "RetentionDeleted",
            Self::RegistryManifestDeleted => "RegistryManifestDeleted",
            Self::RegistryDeletionRefused => "RegistryDeletionRefused",
            Self::Resolution(reason) => reason.as_str(),
            Self::Verified(SupplyChainCheck::Signatures) => "SignaturesVerified",
            Self::Verified(SupplyChainCheck::Provenance) => "ProvenanceVerified",
            Self::Verified(SupplyChainCheck::Vulnerabilities) => "VulnerabilitiesVerified",
            Self::Finding(reason) => reason.as_str(),
        }
    }

    /// Recorded as a Warning: something a human may have to act on.
    pub fn is_warning(self) -> bool {
        match self {
            Self::Approved
            | Self::AutoPromoted
            | Self::ConfigChanged
            | Self::Promoted
            | Self::Promoting
            | Self::RetentionDeleted
            | Self::RegistryManifestDeleted
            | Self::Superseded
            | Self::Verified(_) => false,
            Self::ApprovalIgnored
            | Self::Blocked
            | Self::Failed
            | Self::GateWaived
            | Self::NotificationFailed
            | Self::PinOverwritten
            | Self::Rejected
            | Self::RolledBack
            | Self::VerificationJobRefused
            | Self::RegistryDeletionRefused
            | Self::Finding(_) => true,
            Self::Resolution(reason) => reason != ConditionReason::Resolved,
        }
    }
}

impl fmt::Display for EventReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_word_and_no_other() {
        for failure in ResolutionFailure::ALL {
            assert_eq!(failure.as_str().parse(), Ok(*failure));
            assert_eq!(failure.as_str().parse(), Ok(failure.reason()));
            assert_eq!(failure.reason().as_str(), failure.as_str());
        }
        for reason in ConditionReason::ALL {
            assert_eq!(reason.as_str().parse(), Ok(*reason));
        }
        for reason in FindingReason::ALL {
            assert_eq!(reason.as_str().parse(), Ok(*reason));
        }
        assert_eq!(
            "Resolved".parse::<ResolutionFailure>(),
            Err(UnknownReason("Resolved".into()))
        );
        assert!("digestmismatch".parse::<ResolutionFailure>().is_err());
    }

    #[test]
    fn only_what_a_new_artifact_fixes_is_terminal_and_only_availability_is_transient() {
        let terminal: Vec<&str> = ResolutionFailure::ALL
            .iter()
            .filter(|f| f.is_terminal())
            .map(|f| f.as_str())
            .collect();
        assert_eq!(terminal, ["DigestMismatch", "ImageNotFound", "InvalidReference"]);
        let transient: Vec<&str> = ResolutionFailure::ALL
            .iter()
            .filter(|f| f.is_transient())
            .map(|f| f.as_str())
            .collect();
        assert_eq!(transient, ["PullSecretMissing", "RegistryUnavailable"]);
    }

    #[test]
    fn a_finding_is_terminal_unless_it_verified_or_the_registry_was_unreadable() {
        for reason in FindingReason::ALL {
            assert_eq!(
                reason.is_terminal(),
                reason.verdict() == SupplyChainVerdict::Failed,
                "{reason}"
            );
        }
        assert_eq!(
            FindingReason::RegistryUnavailable.verdict(),
            SupplyChainVerdict::Unavailable
        );
    }

    #[test]
    fn a_human_is_warned_of_what_holds_ends_or_ignores_a_promotion() {
        let warnings: Vec<&str> = [
            EventReason::Approved,
            EventReason::ApprovalIgnored,
            EventReason::AutoPromoted,
            EventReason::Blocked,
            EventReason::ConfigChanged,
            EventReason::Failed,
            EventReason::GateWaived,
            EventReason::PinOverwritten,
            EventReason::Promoted,
            EventReason::Promoting,
            EventReason::Rejected,
            EventReason::RolledBack,
            EventReason::Superseded,
            EventReason::VerificationJobRefused,
        ]
        .into_iter()
        .filter(|reason| reason.is_warning())
        .map(EventReason::as_str)
        .collect();
        assert_eq!(
            warnings,
            [
                "ApprovalIgnored",
                "Blocked",
                "Failed",
                "GateWaived",
                "PinOverwritten",
                "Rejected",
                "RolledBack",
                "VerificationJobRefused"
            ]
        );
    }

    #[test]
    fn events_say_what_verified_and_warn_of_what_did_not() {
        assert_eq!(
            EventReason::Verified(SupplyChainCheck::Signatures).as_str(),
            "SignaturesVerified"
        );
        assert!(!EventReason::Verified(SupplyChainCheck::Vulnerabilities).is_warning());
        assert!(EventReason::Finding(FindingReason::WrongDigest).is_warning());
        assert!(!EventReason::Resolution(ConditionReason::Resolved).is_warning());
        let not_found = EventReason::Resolution(ResolutionFailure::ImageNotFound.reason());
        assert!(not_found.is_warning());
        assert_eq!(not_found.as_str(), "ImageNotFound");
    }

    #[test]
    fn a_kubernetes_reason_is_matched_as_written() {
        assert!(KubernetesReason::ProgressDeadlineExceeded.is(Some("ProgressDeadlineExceeded")));
        assert!(!KubernetesReason::ProgressDeadlineExceeded.is(Some("NewReplicaSetAvailable")));
        assert!(!KubernetesReason::DeadlineExceeded.is(None));
    }
}
