//! Image references: parsed without a regular expression, normalised as
//! Docker does, pinned to digests.
//!
//! A name without a registry lives on `docker.io`, and a single-segment
//! Docker Hub name lives under `library/`, so `nginx:1.27` is
//! `docker.io/library/nginx:1.27`. A reference without tag or digest means
//! `:latest`. Pinning and the registry's digest cache both work on the
//! normalised form, so `nginx:1.27` and `docker.io/library/nginx:1.27` are
//! one image.
//!
//! `oci-client`'s `Reference::try_from` matches one large regular expression
//! whose compiled automaton and per-thread search caches stay in memory for
//! the life of the process (about 20 MiB once a few threads have used it).
//! Hoist parses a reference on every plan that pins a Deployment, so it
//! parses the same grammar by hand, with the same normalisation and the same
//! errors, and builds the `Reference` through its constructors. The tests
//! compare both parsers on a corpus of good and bad references.
//!
//! The grammar is Docker's (distribution/reference):
//!
//! ```text
//! reference := name [ ":" tag ] [ "@" digest ]
//! name      := [ domain "/" ] path-component ( "/" path-component )*
//! domain    := domain-component ( "." domain-component )* [ ":" port ]
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest    := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
//! ```
//!
//! Tags are ASCII, as the OCI distribution specification has them.

use oci_client::{ParseError, Reference};

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_REPOSITORIES: &str = "library";
const DEFAULT_TAG: &str = "latest";
/// The longest repository name a registry accepts.
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// Why an image reference cannot be used. Each names the reference as the
/// caller gave it.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("{reference:?} is not a valid image reference")]
    InvalidReference {
        reference: String,
        #[source]
        source: ParseError,
    },

    #[error("{digest:?} is not a valid digest for image {reference}")]
    InvalidDigest {
        reference: String,
        digest: String,
        #[source]
        source: ParseError,
    },
}

/// Parses `image`, normalised as Docker does.
pub fn parse_image(image: &str) -> Result<Reference, ReferenceError> {
    parse(image).map_err(|source| ReferenceError::InvalidReference {
        reference: image.to_owned(),
        source,
    })
}

/// The reference to deploy: `image`'s registry and repository, normalised,
/// pinned to `digest`, with any tag dropped (`nginx:1.27` and
/// `sha256:ab…` give `docker.io/library/nginx@sha256:ab…`).
pub fn pinned_reference(image: &str, digest: &str) -> Result<String, ReferenceError> {
    let reference = parse_image(image)?;
    let pinned = reference.clone_with_digest(digest.to_owned()).whole();
    // Parsing the result back refuses a malformed digest here, before it can
    // reach a pod template.
    parse(&pinned).map_err(|source| ReferenceError::InvalidDigest {
        reference: image.to_owned(),
        digest: digest.to_owned(),
        source,
    })?;
    Ok(pinned)
}

/// The registry and repository `image` names, normalised as for pinning:
/// `nginx:1.27` is (`docker.io`, `library/nginx`).
pub fn registry_and_repository(image: &str) -> Result<(String, String), ReferenceError> {
    let reference = parse_image(image)?;
    Ok((reference.registry().to_owned(), reference.repository().to_owned()))
}

/// Parses `text` as an image reference, normalised as Docker does:
/// `nginx:1.27` is `docker.io/library/nginx:1.27`, and a reference without
/// tag or digest means `:latest`.
fn parse(text: &str) -> Result<Reference, ParseError> {
    if text.is_empty() {
        return Err(ParseError::NameEmpty);
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    // A ':' after the last '/' starts the tag; one before it belongs to a port.
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if !rest[colon..].contains('/') => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    };
    if !is_name(name) || !tag.is_none_or(is_tag) || !digest.is_none_or(is_digest) {
        return Err(ParseError::ReferenceInvalidFormat);
    }
    let (registry, repository) = split_domain(name);
    if repository.len() > NAME_MAX {
        return Err(ParseError::NameTooLong);
    }
    if let Some(digest) = digest {
        check_digest_length(digest)?;
    }
    let tag = tag.map(str::to_owned);
    let digest = digest.map(str::to_owned);
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => Reference::with_tag_and_digest(registry, repository, tag, digest),
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or_else(|| DEFAULT_TAG.into())),
    })
}

fn is_name(name: &str) -> bool {
    let mut components = name.split('/');
    let first = components.next().unwrap_or_default();
    let rest: Vec<&str> = components.collect();
    let rest_are_paths = rest.iter().all(|component| is_path_component(component));
    rest_are_paths && (is_path_component(first) || (!rest.is_empty() && is_domain(first)))
}

/// `[a-z0-9]+` runs joined by ".", "_", "__" or dashes.
fn is_path_component(component: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut at = 0;
    while at < bytes.len() {
        if alnum(&bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && !alnum(&bytes[at]) {
            at += 1;
        }
        let separator = &component[start..at];
        if !(matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    port_ok && host.split('.').all(is_domain_component)
}

fn is_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(|b| word(*b))
        && bytes.len() <= TAG_MAX
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic) && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The registered algorithms have hex digests of a fixed length.
fn check_digest_length(digest: &str) -> Result<(), ParseError> {
    let (algorithm, hex) = digest.split_once(':').ok_or(ParseError::DigestInvalidFormat)?;
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ParseError::DigestUnsupported),
    };
    if hex.len() == expected {
        Ok(())
    } else {
        Err(ParseError::DigestInvalidLength)
    }
}

/// Docker Hub by its one name: `index.docker.io` is `docker.io`.
pub fn canonical_registry(host: &str) -> &str {
    if host == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        host
    }
}

/// Docker's normalisation: a first component that looks like a host (it has
/// a '.' or a ':', or is `localhost`) is the registry; otherwise the image
/// lives on Docker Hub, under `library/` when its name has one segment.
fn split_domain(name: &str) -> (String, String) {
    let (domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (canonical_registry(first).to_owned(), rest.to_owned())
        }
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    if domain == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPOSITORIES}/{remainder}");
    }
    (domain, remainder)
}

#[cfg(test)]
mod tests;
