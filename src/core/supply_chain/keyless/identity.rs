//! The identities a keyless policy trusts: an OIDC issuer and a subject
//! (the certificate's SAN: a workflow URI, an email), exact or a regular
//! expression that must match the whole SAN.

use regex::Regex;

use super::certificate::Certificate;

/// How a policy names the subject.
#[derive(Debug, Clone)]
pub enum Subject {
    Exact(String),
    /// The pattern as written, and compiled anchored at both ends.
    Pattern(String, Regex),
}

/// An identity of a keyless policy.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: Subject,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.describe() == other.describe()
    }
}

impl Eq for Identity {}

/// A subjectRegExp that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subjectRegExp {pattern:?} is not a regular expression: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

impl Subject {
    /// `subjectRegExp`, matched against the whole SAN.
    pub fn pattern(pattern: &str) -> Result<Subject, PatternError> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(|regex| Subject::Pattern(pattern.to_owned(), regex))
            .map_err(|error| PatternError {
                pattern: pattern.to_owned(),
                message: error.to_string(),
            })
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Subject::Exact(subject) => subject == name,
            Subject::Pattern(_, regex) => regex.is_match(name),
        }
    }
}

impl Identity {
    /// `issuer=…;subject=…` or `issuer=…;subjectRegExp=…`: for messages and
    /// the policy's id.
    pub fn describe(&self) -> String {
        match &self.subject {
            Subject::Exact(subject) => format!("issuer={};subject={subject}", self.issuer),
            Subject::Pattern(pattern, _) => format!("issuer={};subjectRegExp={pattern}", self.issuer),
        }
    }

    /// The SAN of `leaf` this identity matches, if its OIDC issuer is this
    /// identity's too.
    pub fn matched(&self, leaf: &Certificate) -> Option<String> {
        if leaf.oidc_issuer().as_deref() != Some(self.issuer.as_str()) {
            return None;
        }
        leaf.identities()
            .into_iter()
            .find(|name| self.subject.matches(name))
    }
}
