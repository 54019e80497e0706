//! The Jobs of job steps: what Hoist creates for a step, named so that no
//! two Promotions share one, and which finished ones it deletes.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::api::{JobCheck, VerificationStep};
use crate::core::duration;
use crate::core::workload::{LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT};

/// The release verified: the values of a query's placeholders, and of a
/// Job's HOIST_ variables.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub namespace: &'a str,
    pub environment: &'a str,
    pub application: &'a str,
    pub artifact: &'a str,
    pub version: &'a str,
    /// The release it replaces, if one runs: what a baseline query measures.
    pub previous: Option<Previous<'a>>,
}

/// The release a Promotion replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous<'a> {
    pub artifact: &'a str,
    pub version: &'a str,
}

/// What a verification Job is told about the release, and where it runs.
pub struct JobContext<'a> {
    /// The namespace the Job runs in: the Environment's (and Promotion's) own.
    pub namespace: &'a str,
    /// The Promotion's uid: the Job's owner, and part of its name.
    pub promotion_uid: Option<&'a str>,
    /// (component, digest-pinned image) of the release.
    pub images: &'a [(String, String)],
    pub source_repository: Option<&'a str>,
    pub source_revision: Option<&'a str>,
    /// The verification Jobs that exist in that namespace, by name.
    pub jobs: &'a BTreeMap<String, &'a Job>,
}

/// The name of a step's Job: `<promotion>-<step>-<hash>`, a DNS label of
/// at most 63 characters. The hash is of the Promotion's uid (its name where
/// the uid is unknown) and the step, so a Promotion created again under the
/// same name, or names that read alike (`a.b`, `a-b`), never share a Job.
pub fn job_name(promotion: &str, uid: Option<&str>, step: &str) -> String {
    let readable = format!("{promotion}-{step}").replace('.', "-");
    let readable = readable[..readable.len().min(52)].trim_end_matches('-');
    let hash = Sha256::digest(format!("{}/{step}", uid.unwrap_or(promotion)).as_bytes());
    let suffix: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{readable}-{suffix}")
}

/// `COMPONENT` of HOIST_IMAGE_<COMPONENT>.
fn variable(component: &str) -> String {
    component.to_ascii_uppercase().replace('-', "_")
}

/// The Job of a job step, as Hoist creates it.
pub(super) fn verification_job(
    promotion: &str,
    release: &Release<'_>,
    context: &JobContext<'_>,
    step: &VerificationStep,
    check: &JobCheck,
    name: &str,
) -> Job {
    let mut env: Vec<EnvVar> = [
        ("HOIST_ARTIFACT", release.artifact),
        ("HOIST_VERSION", release.version),
        ("HOIST_APPLICATION", release.application),
        ("HOIST_ENVIRONMENT", release.environment),
        ("HOIST_NAMESPACE", release.namespace),
        ("HOIST_PROMOTION", promotion),
        (
            "HOIST_SOURCE_REPOSITORY",
            context.source_repository.unwrap_or_default(),
        ),
        (
            "HOIST_SOURCE_REVISION",
            context.source_revision.unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    })
    .collect();
    env.extend(context.images.iter().map(|(component, image)| EnvVar {
        name: format!("HOIST_IMAGE_{}", variable(component)),
        value: Some(image.clone()),
        ..Default::default()
    }));
    env.extend(check.env.iter().map(|v| EnvVar {
        name: v.name.clone(),
        value: Some(v.value.clone()),
        ..Default::default()
    }));
    let labels: BTreeMap<String, String> = [
        (LABEL_TENANT, release.namespace),
        (LABEL_ENVIRONMENT, release.environment),
        (LABEL_ROLE, VERIFICATION_ROLE),
        (LABEL_STEP, step.name.as_str()),
        (LABEL_PROMOTION_UID, context.promotion_uid.unwrap_or_default()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let timeout = duration::parse(&check.timeout)
        .map(|d| d.as_secs().max(1))
        .unwrap_or(600);
    let owner = context
        .promotion_uid
        .filter(|_| context.namespace == release.namespace)
        .map(|uid| OwnerReference {
            api_version: "hoist.dev/v1alpha1".into(),
            kind: "Promotion".into(),
            name: promotion.into(),
            uid: uid.into(),
            ..Default::default()
        });
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(context.namespace.into()),
            labels: Some(labels.clone()),
            annotations: Some([(ANNOTATION_PROMOTION.to_string(), promotion.to_string())].into()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(check.retries),
            active_deadline_seconds: Some(timeout),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    service_account_name: check.service_account_name.clone(),
                    containers: vec![Container {
                        name: "verify".into(),
                        image: Some(check.image.clone()),
                        command: (!check.command.is_empty()).then(|| check.command.clone()),
                        args: (!check.args.is_empty()).then(|| check.args.clone()),
                        env: Some(env),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The `hoist.dev/role` of verification Jobs.
pub const VERIFICATION_ROLE: &str = "verification";
/// The label naming a verification Job's step.
pub const LABEL_STEP: &str = "hoist.dev/verification-step";
/// The label holding the uid of a verification Job's Promotion.
pub const LABEL_PROMOTION_UID: &str = "hoist.dev/promotion-uid";
/// The annotation naming a verification Job's Promotion (names may be
/// longer than a label value).
pub const ANNOTATION_PROMOTION: &str = "hoist.dev/promotion";

/// Finished verification Jobs kept per Environment for inspection.
pub const KEPT_JOBS: usize = 10;

/// Finished verification Jobs beyond the newest `KEPT_JOBS`, except those
/// of `running` Promotions: to delete.
pub fn jobs_to_delete<'a>(jobs: impl Iterator<Item = &'a Job>, running: &[String]) -> Vec<(String, String)> {
    let finished = |job: &Job| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            })
    };
    let mut done: Vec<&Job> = jobs
        .filter(|job| finished(job))
        .filter(|job| {
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PROMOTION))
                .is_none_or(|p| !running.contains(p))
        })
        .collect();
    done.sort_by_key(|job| {
        std::cmp::Reverse((
            job.metadata.creation_timestamp.clone().map(|t| t.0),
            job.metadata.name.clone(),
        ))
    });
    done.into_iter()
        .skip(KEPT_JOBS)
        .filter_map(|job| Some((job.metadata.namespace.clone()?, job.metadata.name.clone()?)))
        .collect()
}
