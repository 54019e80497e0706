//! Reading a directory of Kubernetes manifests into typed objects.

// These errors end a command and carry the file, document and field they
// name; their size is irrelevant next to the I/O that produced them.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::{Resource, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::api::{Artifact, Environment, Promotion};
use crate::core::workload::{ArgoRollout, Workload, WorkloadId};

/// Why a directory of manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: document {document}: not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        document: usize,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{path}: document {document}: {kind} {name:?}: field {field}: {message}")]
    Field {
        path: PathBuf,
        document: usize,
        kind: String,
        name: String,
        field: String,
        message: String,
    },
    #[error("{path}: document {document}: missing {field}")]
    Missing {
        path: PathBuf,
        document: usize,
        field: &'static str,
    },
    #[error(
        "{path}: document {document}: unsupported kind {api_version}/{kind}; hoist render reads \
         hoist.dev/v1alpha1 Artifact, Environment and Promotion, apps/v1 Deployment, StatefulSet and DaemonSet, \
         batch/v1 CronJob, argoproj.io/v1alpha1 Rollout, v1 ConfigMap, Secret and Namespace"
    )]
    UnsupportedKind {
        path: PathBuf,
        document: usize,
        api_version: String,
        kind: String,
    },
    #[error("{path}: document {document}: {kind} {namespace}/{name} is defined twice")]
    Duplicate {
        path: PathBuf,
        document: usize,
        kind: String,
        namespace: String,
        name: String,
    },
}

/// Every object found in a directory, typed, each with its namespace set.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    pub artifacts: Vec<Artifact>,
    pub environments: Vec<Environment>,
    pub promotions: Vec<Promotion>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub cron_jobs: Vec<CronJob>,
    pub rollouts: Vec<ArgoRollout>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub namespaces: Vec<Namespace>,
}

/// Just enough of an object to know what it is before reading it whole.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeHeader {
    api_version: Option<String>,
    kind: Option<String>,
}

/// Where a document came from, for error messages.
struct Origin<'a> {
    path: &'a Path,
    document: usize,
}

impl Manifests {
    /// Reads every `*.yaml`/`*.yml` file under `dir` (recursively, in path
    /// order). Objects without a namespace get `default_namespace`.
    pub fn load(dir: &Path, default_namespace: &str) -> Result<Self, LoadError> {
        let mut manifests = Manifests::default();
        let mut seen = BTreeSet::new();
        for path in yaml_files(dir)? {
            let text = fs::read_to_string(&path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            manifests.read(&text, &path, default_namespace, &mut seen)?;
        }
        Ok(manifests)
    }

    /// Reads a multi-document YAML text (named `origin` in errors).
    pub fn parse(text: &str, origin: &Path, default_namespace: &str) -> Result<Self, LoadError> {
        let mut manifests = Manifests::default();
        manifests.read(text, origin, default_namespace, &mut BTreeSet::new())?;
        Ok(manifests)
    }

    fn read(
        &mut self,
        text: &str,
        path: &Path,
        default_namespace: &str,
        seen: &mut BTreeSet<(String, String, String)>,
    ) -> Result<(), LoadError> {
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let origin = Origin {
                path,
                document: index + 1,
            };
            let value = serde_yaml::Value::deserialize(document).map_err(|source| LoadError::Yaml {
                path: path.to_path_buf(),
                document: origin.document,
                source,
            })?;
            if value.is_null() {
                continue;
            }
            self.add(value, &origin, default_namespace, seen)?;
        }
        Ok(())
    }

    fn add(
        &mut self,
        value: serde_yaml::Value,
        origin: &Origin<'_>,
        default_namespace: &str,
        seen: &mut BTreeSet<(String, String, String)>,
    ) -> Result<(), LoadError> {
        let header: TypeHeader = serde_yaml::from_value(value.clone()).map_err(|source| LoadError::Yaml {
            path: origin.path.to_path_buf(),
            document: origin.document,
            source,
        })?;
        let missing = |field| LoadError::Missing {
            path: origin.path.to_path_buf(),
            document: origin.document,
            field,
        };
        let api_version = header.api_version.ok_or_else(|| missing("apiVersion"))?;
        let kind = header.kind.ok_or_else(|| missing("kind"))?;
        let name = match &value["metadata"]["name"] {
            serde_yaml::Value::String(name) => name.clone(),
            _ => return Err(missing("metadata.name")),
        };
        let key = match (api_version.as_str(), kind.as_str()) {
            ("hoist.dev/v1alpha1", "Artifact") => push(
                &mut self.artifacts,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("hoist.dev/v1alpha1", "Environment") => push(
                &mut self.environments,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("hoist.dev/v1alpha1", "Promotion") => push(
                &mut self.promotions,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("apps/v1", "Deployment") => push(
                &mut self.deployments,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("apps/v1", "StatefulSet") => push(
                &mut self.stateful_sets,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("apps/v1", "DaemonSet") => push(
                &mut self.daemon_sets,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("batch/v1", "CronJob") => push(
                &mut self.cron_jobs,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("argoproj.io/v1alpha1", "Rollout") => {
                push(&mut self.rollouts, value, origin, &kind, &name, default_namespace)
            }
            ("v1", "ConfigMap") => push(
                &mut self.config_maps,
                value,
                origin,
                &kind,
                &name,
                default_namespace,
            ),
            ("v1", "Secret") => push(&mut self.secrets, value, origin, &kind, &name, default_namespace),
            ("v1", "Namespace") => push(&mut self.namespaces, value, origin, &kind, &name, ""),
            _ => {
                return Err(LoadError::UnsupportedKind {
                    path: origin.path.to_path_buf(),
                    document: origin.document,
                    api_version,
                    kind,
                });
            }
        }?;
        if !seen.insert(key.clone()) {
            let (kind, namespace, name) = key;
            return Err(LoadError::Duplicate {
                path: origin.path.to_path_buf(),
                document: origin.document,
                kind,
                namespace,
                name,
            });
        }
        Ok(())
    }
}

impl Manifests {
    /// Every workload of a kind Hoist pins, as the core reads them:
    /// Deployments, StatefulSets, DaemonSets, CronJobs, then Rollouts.
    pub fn workloads(&self) -> Vec<Workload> {
        let deployments = self.deployments.iter().cloned().map(Workload::Deployment);
        let stateful_sets = self.stateful_sets.iter().cloned().map(Workload::StatefulSet);
        let daemon_sets = self.daemon_sets.iter().cloned().map(Workload::DaemonSet);
        let cron_jobs = self.cron_jobs.iter().cloned().map(Workload::CronJob);
        let rollouts = self.rollouts.iter().cloned().map(Workload::Rollout);
        deployments
            .chain(stateful_sets)
            .chain(daemon_sets)
            .chain(cron_jobs)
            .chain(rollouts)
            .collect()
    }

    /// The workload of kind, namespace and name `id`, if the files hold it.
    pub fn workload(&self, id: &WorkloadId) -> Option<Workload> {
        self.workloads().into_iter().find(|workload| &workload.id() == id)
    }

    /// Puts `workload` in place of the object of its kind, namespace and name.
    pub fn replace_workload(&mut self, workload: Workload) {
        match workload {
            Workload::Deployment(object) => replace(&mut self.deployments, object),
            Workload::StatefulSet(object) => replace(&mut self.stateful_sets, object),
            Workload::DaemonSet(object) => replace(&mut self.daemon_sets, object),
            Workload::CronJob(object) => replace(&mut self.cron_jobs, object),
            Workload::Rollout(object) => replace(&mut self.rollouts, object),
        }
    }
}

/// Puts `object` in place of the one of `objects` with its namespace and name.
fn replace<K: Resource>(objects: &mut [K], object: K) {
    let same = |other: &K| {
        other.meta().namespace == object.meta().namespace && other.meta().name == object.meta().name
    };
    if let Some(slot) = objects.iter_mut().find(|other| same(other)) {
        *slot = object;
    }
}

/// Reads one document as `K`, naming the failing field on error, and returns
/// its identity for duplicate detection.
fn push<K>(
    into: &mut Vec<K>,
    value: serde_yaml::Value,
    origin: &Origin<'_>,
    kind: &str,
    name: &str,
    default_namespace: &str,
) -> Result<(String, String, String), LoadError>
where
    K: Resource + DeserializeOwned,
{
    let mut object: K = serde_path_to_error::deserialize(value).map_err(|error| LoadError::Field {
        path: origin.path.to_path_buf(),
        document: origin.document,
        kind: kind.to_string(),
        name: name.to_string(),
        field: error.path().to_string(),
        message: error.inner().to_string(),
    })?;
    // Cluster-scoped kinds are read with an empty default namespace.
    if object.namespace().is_none() && !default_namespace.is_empty() {
        object.meta_mut().namespace = Some(default_namespace.to_string());
    }
    let key = (
        kind.to_string(),
        object.namespace().unwrap_or_default(),
        name.to_string(),
    );
    into.push(object);
    Ok(key)
}

/// The YAML files under `dir`, recursively, sorted by path.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
