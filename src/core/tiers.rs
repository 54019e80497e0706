//! Tiers: which Environments a tenant may have. The operator configuration
//! (section `tiers`) names each tier's Environments and how many custom
//! ones (names not in its list) it allows; a tenant namespace's label
//! `hoist.dev/tier` selects its tier, the default tier applies to a
//! namespace without it. Without the section nothing is enforced.
//!
//! Custom Environments are counted oldest first (by creation, then name),
//! so a new one never takes an older one's place: the newest beyond the
//! limit are the ones forbidden. A forbidden Environment is not deleted:
//! what runs in it keeps running and nothing new is promoted into it until
//! its tier allows it again (a relabelled namespace, another configuration).
//!
//! The same message is what the chart's admission policy answers
//! (`tierPolicy.enabled`), which can check names only: CEL cannot count
//! the namespace's other Environments.

use std::collections::BTreeMap;
use std::fmt;

use kube::ResourceExt;
use serde::Deserialize;

use crate::api::Environment;

/// The label of a tenant namespace that names its tier.
pub const LABEL_TIER: &str = "hoist.dev/tier";

/// The operator configuration's `tiers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TiersFields")]
pub struct Tiers {
    /// The tier of a namespace without the label.
    pub default: String,
    /// Every tier, by name (the label's value).
    pub tiers: BTreeMap<String, Tier>,
}

/// What one tier allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tier {
    /// The Environment names it allows.
    #[serde(default)]
    pub environments: Vec<String>,
    /// How many Environments of other names it allows.
    #[serde(default)]
    pub custom: Custom,
}

/// How many custom Environments a tier allows: a number (0 when not set)
/// or `Unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Custom {
    UpTo(u32),
    Unlimited,
}

impl Default for Custom {
    fn default() -> Self {
        Self::UpTo(0)
    }
}

impl<'de> Deserialize<'de> for Custom {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Custom;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of custom Environments, or Unlimited")
            }

            fn visit_u64<E: serde::de::Error>(self, count: u64) -> Result<Custom, E> {
                u32::try_from(count)
                    .map(Custom::UpTo)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(count), &self))
            }

            fn visit_i64<E: serde::de::Error>(self, count: i64) -> Result<Custom, E> {
                u64::try_from(count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(count), &self))
                    .and_then(|count| self.visit_u64(count))
            }

            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<Custom, E> {
                match word {
                    "Unlimited" => Ok(Custom::Unlimited),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(word), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `tiers` as written, before its checks.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TiersFields {
    default: String,
    tiers: BTreeMap<String, Tier>,
}

/// Why a configuration's `tiers` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TiersError {
    #[error("default tier {0:?} is not one of tiers")]
    UnknownDefault(String),
    #[error(
        "tier name {0:?} is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending \
         with a letter or digit)"
    )]
    Name(String),
}

impl TryFrom<TiersFields> for Tiers {
    type Error = TiersError;

    fn try_from(fields: TiersFields) -> Result<Self, TiersError> {
        if let Some(name) = fields.tiers.keys().find(|name| !is_label_value(name)) {
            return Err(TiersError::Name(name.clone()));
        }
        if !fields.tiers.contains_key(&fields.default) {
            return Err(TiersError::UnknownDefault(fields.default));
        }
        Ok(Tiers {
            default: fields.default,
            tiers: fields.tiers,
        })
    }
}

/// A non-empty Kubernetes label value.
fn is_label_value(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Tier {
    /// What it allows, as messages say it: "Environments dev, prod and no
    /// custom ones".
    pub fn allows(&self) -> String {
        let named = match self.environments.as_slice() {
            [] => "no named Environments".to_string(),
            names => format!("Environments {}", names.join(", ")),
        };
        let custom = match self.custom {
            Custom::UpTo(0) => "no custom ones".to_string(),
            Custom::UpTo(1) => "1 custom one".to_string(),
            Custom::UpTo(count) => format!("up to {count} custom ones"),
            Custom::Unlimited => "any custom ones".to_string(),
        };
        format!("{named} and {custom}")
    }
}

/// How a namespace's tier was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// By its label.
    Label,
    /// The default: the namespace has no label.
    Default,
}

impl fmt::Display for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label => write!(f, "label {LABEL_TIER}"),
            Self::Default => write!(f, "the default tier: the namespace has no label {LABEL_TIER}"),
        }
    }
}

/// Why a tier does not allow an Environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    /// The namespace's label names no tier.
    #[error(
        "the namespace's label {LABEL_TIER}={label} names no tier (tiers: {known}); a cluster admin can label \
         the namespace with one of them"
    )]
    UnknownTier { label: String, known: String },
    /// A custom Environment where the tier allows none.
    #[error(
        "tier {tier} ({selected}) allows {allows}: Environment {environment} is not one of them; a cluster admin \
         can label the namespace with a tier that allows it"
    )]
    NotAllowed {
        tier: String,
        selected: Selected,
        allows: String,
        environment: String,
    },
    /// A custom Environment beyond the tier's number, counted oldest first.
    #[error(
        "tier {tier} ({selected}) allows {allows}: Environment {environment} is newer than the custom \
         Environments {older}; a cluster admin can label the namespace with a tier that allows more, or a \
         custom Environment can be deleted"
    )]
    TooMany {
        tier: String,
        selected: Selected,
        allows: String,
        environment: String,
        older: String,
    },
}

/// Whether `environment` may exist in a namespace labelled `labels`, among
/// the namespace's `environments` (it among them or not), under `tiers`
/// (`None`: no tiers configured, every Environment is allowed).
pub fn decide<'a>(
    tiers: Option<&Tiers>,
    labels: &BTreeMap<String, String>,
    environments: impl IntoIterator<Item = &'a Environment>,
    environment: &Environment,
) -> Result<(), Forbidden> {
    let Some(tiers) = tiers else {
        return Ok(());
    };
    let (name, selected) = match labels.get(LABEL_TIER) {
        Some(label) => (label, Selected::Label),
        None => (&tiers.default, Selected::Default),
    };
    let Some(tier) = tiers.tiers.get(name) else {
        return Err(Forbidden::UnknownTier {
            label: name.clone(),
            known: tiers.tiers.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    let own = environment.name_any();
    if tier.environments.contains(&own) {
        return Ok(());
    }
    let limit = match tier.custom {
        Custom::Unlimited => return Ok(()),
        Custom::UpTo(limit) => usize::try_from(limit).unwrap_or(usize::MAX),
    };
    let forbidden = |older: Vec<String>| match older.is_empty() {
        true => Forbidden::NotAllowed {
            tier: name.clone(),
            selected: selected.clone(),
            allows: tier.allows(),
            environment: own.clone(),
        },
        false => Forbidden::TooMany {
            tier: name.clone(),
            selected: selected.clone(),
            allows: tier.allows(),
            environment: own.clone(),
            older: older.join(", "),
        },
    };
    if limit == 0 {
        return Err(forbidden(Vec::new()));
    }
    // Oldest first; one not yet created (no timestamp) is the newest.
    let mut custom: BTreeMap<String, &Environment> = environments
        .into_iter()
        .filter(|e| !tier.environments.contains(&e.name_any()))
        .map(|e| (e.name_any(), e))
        .collect();
    custom.insert(own.clone(), environment);
    let mut custom: Vec<(&String, &Environment)> = custom.iter().map(|(name, e)| (name, *e)).collect();
    custom.sort_by_key(|(name, e)| {
        let created = e.metadata.creation_timestamp.as_ref();
        (created.is_none(), created.map(|time| time.0), name.as_str())
    });
    let position = custom
        .iter()
        .position(|(name, _)| **name == own)
        .unwrap_or(custom.len());
    if position < limit {
        return Ok(());
    }
    Err(forbidden(
        custom[..limit].iter().map(|(name, _)| (*name).clone()).collect(),
    ))
}

#[cfg(test)]
mod tests;
