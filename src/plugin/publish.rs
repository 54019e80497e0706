//! `kubectl hoist publish`: what a CI pipeline runs after it pushed the
//! images of a release. It creates the Artifact with every image pinned to
//! the digest the registry has now (or the digest the flag gives), and the
//! source filled from the flags, else from the CI system's variables, and
//! optionally the first Promotion. Publishing the same release again (a
//! re-run pipeline) changes nothing; publishing other digests under a name
//! that exists is refused, since an Artifact never changes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

use super::promote::{create, new_promotion, requester};
use super::{FIELD_MANAGER, PluginError, get};
use crate::api::{Artifact, ArtifactSpec, ComponentImage, Environment, Source, VersionScheme};
use crate::core::reference::parse_image;
use crate::registry::{PullSecrets, RegistryError, Resolver};

/// Why a release cannot be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "--image {flag:?}: expected COMPONENT=IMAGE, e.g. backend=registry.example.com/shop/backend:1.4.2"
    )]
    ImageFlag { flag: String },
    #[error("--image: component {component} is given twice")]
    DuplicateComponent { component: String },
    #[error("--image: at least one COMPONENT=IMAGE is needed")]
    NoImages,
    #[error("cannot resolve {image} (component {component})")]
    Resolve {
        component: String,
        image: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "the source needs both a repository and a revision: {missing} is missing (pass --{flag}, or run where \
         GitHub Actions or GitLab CI set it)"
    )]
    SourceIncomplete {
        missing: &'static str,
        flag: &'static str,
    },
    #[error(
        "{origin} {value:?} is not an RFC 3339 time such as 2026-11-03T10:00:00Z or 2026-11-03T11:00:00+01:00"
    )]
    CommittedAt {
        origin: &'static str,
        value: String,
        #[source]
        source: jiff::Error,
    },
    #[error("cannot read the registry credentials {}", path.display())]
    DockerConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the registry credentials {} are not valid", path.display())]
    DockerConfigInvalid {
        path: PathBuf,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "Artifact {artifact} already exists in namespace {namespace} with another {field} ({existing}, not \
         {wanted}); an Artifact never changes: publish under another version or --name"
    )]
    Conflict {
        artifact: String,
        namespace: String,
        field: String,
        existing: String,
        wanted: String,
    },
}

/// What `publish` was asked for.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub application: String,
    pub version: String,
    pub version_scheme: VersionScheme,
    /// `COMPONENT=IMAGE` as given.
    pub images: Vec<String>,
    /// The Artifact's name; `<application>-<version>` when absent.
    pub name: Option<String>,
    pub source_repository: Option<String>,
    pub revision: Option<String>,
    pub build_id: Option<String>,
    pub build_url: Option<String>,
    /// When the revision was committed (RFC 3339), as given.
    pub committed_at: Option<String>,
    /// Create a Promotion of the Artifact into this Environment.
    pub promote: Option<String>,
}

/// What was published.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub artifact: Artifact,
    /// False when the same release was published before.
    pub created: bool,
    pub promotion: Option<String>,
}

/// The source of a release from the flags, else from the variables of the
/// CI system the command runs in (`variable` reads one): GitHub Actions
/// (`GITHUB_SHA`, `GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`, `GITHUB_RUN_ID`)
/// or GitLab CI (`CI_COMMIT_SHA`, `CI_PROJECT_URL`, `CI_PIPELINE_ID`,
/// `CI_PIPELINE_URL`, `CI_COMMIT_TIMESTAMP`; GitHub Actions sets no
/// variable with the commit's time). None when neither gives a revision nor
/// a repository.
pub fn source_of(
    request: &PublishRequest,
    variable: &dyn Fn(&str) -> Option<String>,
    now: &Time,
) -> Result<Option<Source>, PublishError> {
    let github_repository = || {
        Some(format!(
            "{}/{}",
            variable("GITHUB_SERVER_URL")?.trim_end_matches('/'),
            variable("GITHUB_REPOSITORY")?
        ))
    };
    let github_run = || {
        Some(format!(
            "{}/actions/runs/{}",
            github_repository()?,
            variable("GITHUB_RUN_ID")?
        ))
    };
    let repository = request
        .source_repository
        .clone()
        .or_else(github_repository)
        .or_else(|| variable("CI_PROJECT_URL"));
    let revision = request
        .revision
        .clone()
        .or_else(|| variable("GITHUB_SHA"))
        .or_else(|| variable("CI_COMMIT_SHA"));
    let (repository, revision) = match (repository, revision) {
        (None, None) if request.committed_at.is_none() => return Ok(None),
        (None, None) => {
            return Err(PublishError::SourceIncomplete {
                missing: "the repository",
                flag: "source-repository",
            });
        }
        (Some(_), None) => {
            return Err(PublishError::SourceIncomplete {
                missing: "the revision",
                flag: "revision",
            });
        }
        (None, Some(_)) => {
            return Err(PublishError::SourceIncomplete {
                missing: "the repository",
                flag: "source-repository",
            });
        }
        (Some(repository), Some(revision)) => (repository, revision),
    };
    let build_id = request
        .build_id
        .clone()
        .or_else(|| variable("GITHUB_RUN_ID"))
        .or_else(|| variable("CI_PIPELINE_ID"));
    let build_url = request
        .build_url
        .clone()
        .or_else(github_run)
        .or_else(|| variable("CI_PIPELINE_URL"));
    let committed_at = match (&request.committed_at, variable("CI_COMMIT_TIMESTAMP")) {
        (Some(flag), _) => Some(rfc3339("--committed-at", flag)?),
        (None, Some(gitlab)) => Some(rfc3339("CI_COMMIT_TIMESTAMP", &gitlab)?),
        (None, None) => None,
    };
    Ok(Some(Source {
        repository,
        revision,
        build_id,
        build_url,
        built_at: Some(now.clone()),
        committed_at,
    }))
}

/// An RFC 3339 time with any offset, e.g. GitLab's `2022-11-22T16:19:31+01:00`.
fn rfc3339(origin: &'static str, value: &str) -> Result<Time, PublishError> {
    value
        .parse::<jiff::Timestamp>()
        .map(Time)
        .map_err(|source| PublishError::CommittedAt {
            origin,
            value: value.to_owned(),
            source,
        })
}

/// `--image COMPONENT=IMAGE` flags as (component, image), in order.
pub fn parse_images(flags: &[String]) -> Result<Vec<(String, String)>, PublishError> {
    if flags.is_empty() {
        return Err(PublishError::NoImages);
    }
    let mut seen = BTreeMap::new();
    for flag in flags {
        let (component, image) = flag
            .split_once('=')
            .filter(|(component, image)| !component.is_empty() && !image.is_empty())
            .ok_or_else(|| PublishError::ImageFlag { flag: flag.clone() })?;
        if seen.insert(component.to_string(), image.to_string()).is_some() {
            return Err(PublishError::DuplicateComponent {
                component: component.to_string(),
            });
        }
    }
    let mut out: Vec<(String, String)> = seen.into_iter().collect();
    // The order given, for the Artifact's readers.
    out.sort_by_key(|(component, _)| {
        flags
            .iter()
            .position(|flag| flag.split_once('=').is_some_and(|(c, _)| c == component))
    });
    Ok(out)
}

/// The Artifact's default name: `<application>-<version>`, lower case,
/// with anything a Kubernetes name may not hold as `-`.
pub fn artifact_name(application: &str, version: &str) -> String {
    let name: String = format!("{application}-{version}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    name.trim_matches(['-', '.']).to_string()
}

/// The registry credentials of `docker login`: `$DOCKER_CONFIG/config.json`
/// or `~/.docker/config.json`; anonymous when there is none or it keeps
/// its credentials in a helper (no `auths`).
pub fn docker_credentials(variable: &dyn Fn(&str) -> Option<String>) -> Result<PullSecrets, PublishError> {
    let path = match variable("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match variable("HOME") {
            Some(home) => PathBuf::from(home).join(".docker/config.json"),
            None => return Ok(PullSecrets::default()),
        },
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(PullSecrets::default()),
        Err(source) => return Err(PublishError::DockerConfig { path, source }),
    };
    let has_auths = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .is_some_and(|config| config.get("auths").is_some());
    if !has_auths {
        return Ok(PullSecrets::default());
    }
    PullSecrets::from_dockerconfigjson(&bytes).map_err(|source| PublishError::DockerConfigInvalid {
        path,
        source: Box::new(source),
    })
}

/// Each component's image with the digest the flag gives or the registry
/// has now.
async fn pin(
    images: Vec<(String, String)>,
    resolver: &Resolver,
    credentials: &PullSecrets,
) -> Result<Vec<ComponentImage>, PublishError> {
    let mut out = Vec::new();
    for (component, image) in images {
        let given = parse_image(&image)
            .map_err(|error| PublishError::Resolve {
                component: component.clone(),
                image: image.clone(),
                source: Box::new(RegistryError::from(error)),
            })?
            .digest()
            .map(str::to_string);
        let digest = match given {
            Some(digest) => digest,
            None => resolver
                .resolve(&image, None, credentials)
                .await
                .map_err(|source| PublishError::Resolve {
                    component: component.clone(),
                    image: image.clone(),
                    source: Box::new(source),
                })?,
        };
        out.push(ComponentImage {
            component,
            image,
            digest: Some(digest),
        });
    }
    Ok(out)
}

/// The first field in which `existing` is another release than `wanted`:
/// (field, existing, wanted). The build's id, link and time may differ (a
/// re-run pipeline publishes the same release).
fn difference(existing: &ArtifactSpec, wanted: &ArtifactSpec) -> Option<(String, String, String)> {
    if existing.application != wanted.application {
        return Some((
            "spec.application".into(),
            existing.application.clone(),
            wanted.application.clone(),
        ));
    }
    if existing.version != wanted.version {
        return Some((
            "spec.version".into(),
            existing.version.clone(),
            wanted.version.clone(),
        ));
    }
    let images = |spec: &ArtifactSpec| -> Vec<String> {
        spec.images
            .iter()
            .map(|i| format!("{}={}", i.component, i.digest.as_deref().unwrap_or(&i.image)))
            .collect()
    };
    if images(existing) != images(wanted) {
        return Some((
            "spec.images".into(),
            images(existing).join(", "),
            images(wanted).join(", "),
        ));
    }
    let source = |spec: &ArtifactSpec| {
        spec.source
            .as_ref()
            .map(|s| format!("{}@{}", s.repository, s.revision))
            .unwrap_or_else(|| "none".into())
    };
    (source(existing) != source(wanted)).then(|| ("spec.source".into(), source(existing), source(wanted)))
}

/// `publish APPLICATION VERSION --image C=REF …`: creates the Artifact
/// (or finds the same release published before) and, with `--promote`, a
/// Promotion of it.
pub async fn publish(
    client: &Client,
    namespace: &str,
    request: PublishRequest,
    resolver: &Resolver,
    variable: &dyn Fn(&str) -> Option<String>,
    now: &Time,
) -> Result<Published, PluginError> {
    let images = parse_images(&request.images)?;
    let source = source_of(&request, variable, now)?;
    if let Some(environment) = &request.promote {
        let environments: Api<Environment> = Api::namespaced(client.clone(), namespace);
        get(&environments, "Environment", environment, namespace).await?;
    }
    let credentials = docker_credentials(variable)?;
    let images = pin(images, resolver, &credentials).await?;
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| artifact_name(&request.application, &request.version));
    let mut artifact = Artifact::new(
        &name,
        ArtifactSpec {
            application: request.application.clone(),
            version: request.version.clone(),
            version_scheme: request.version_scheme,
            images,
            source,
            compatibility: Vec::new(),
            image_pull_secrets: Vec::new(),
        },
    );
    artifact.metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.to_string()),
        ..ObjectMeta::default()
    };
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let (artifact, created) = match artifacts.create(&params, &artifact).await {
        Ok(created) => (created, true),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = get(&artifacts, "Artifact", &name, namespace).await?;
            if let Some((field, existing, wanted)) = difference(&existing.spec, &artifact.spec) {
                return Err(PublishError::Conflict {
                    artifact: name,
                    namespace: namespace.to_string(),
                    field,
                    existing,
                    wanted,
                }
                .into());
            }
            (existing, false)
        }
        Err(source) => {
            return Err(PluginError::Api {
                action: format!("create Artifact {name} in namespace {namespace}"),
                source,
            });
        }
    };
    let promotion = match &request.promote {
        Some(environment) => {
            let requested_by = requester(client).await?;
            let promotion = new_promotion(
                namespace,
                &name,
                environment,
                Some(format!("published {} {}", request.application, request.version)),
                None,
                requested_by,
            );
            Some(create(client, namespace, &promotion).await?.name_any())
        }
        None => None,
    };
    Ok(Published {
        artifact,
        created,
        promotion,
    })
}

impl fmt::Display for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.created {
            "created"
        } else {
            "unchanged (published before)"
        };
        writeln!(f, "artifact.hoist.dev/{} {verb}", self.artifact.name_any())?;
        let width = self
            .artifact
            .spec
            .images
            .iter()
            .map(|i| i.component.len())
            .max()
            .unwrap_or(0)
            .max("source".len());
        for image in &self.artifact.spec.images {
            writeln!(
                f,
                "  {:width$}  {}@{}",
                image.component,
                image.image.split('@').next().unwrap_or(&image.image),
                image.digest.as_deref().unwrap_or("")
            )?;
        }
        if let Some(source) = &self.artifact.spec.source {
            write!(
                f,
                "  {:width$}  {}@{}",
                "source", source.repository, source.revision
            )?;
            match (&source.build_id, &source.build_url) {
                (Some(id), Some(url)) => write!(f, " (build {id}: {url})")?,
                (Some(id), None) => write!(f, " (build {id})")?,
                (None, Some(url)) => write!(f, " (build {url})")?,
                (None, None) => {}
            }
            writeln!(f)?;
        }
        if let Some(promotion) = &self.promotion {
            writeln!(f, "promotion.hoist.dev/{promotion} created")?;
        }
        Ok(())
    }
}
