//! CronJobs: the API server's defaults and the validation Hoist can trip.
//! No controller is emulated: the stand-in creates no Job on schedule, so a
//! CronJob's status stays as written (without `lastScheduleTime`), which is
//! all Hoist reads of a pinned CronJob.

use serde_json::{Value, json};

use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};
use crate::workloads::{self, default_field, validate_pod_spec};

pub(crate) const GROUP: &str = "batch";
pub(crate) const PLURAL: &str = "cronjobs";

/// `cron.ParseStandard`'s descriptors (`@every` takes a duration).
const DESCRIPTORS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// `SetDefaults_CronJob` of `batch/v1`, and the Pod default `restartPolicy:
/// Always` of the Job template (which validation then refuses).
pub(crate) fn apply_defaults(cron_job: &mut Value) {
    let Some(spec) = workloads::spec_mut(cron_job) else {
        return;
    };
    default_field(spec, "concurrencyPolicy", json!("Allow"));
    default_field(spec, "suspend", json!(false));
    default_field(spec, "successfulJobsHistoryLimit", json!(3));
    default_field(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(pod) = spec
        .get_mut("jobTemplate")
        .and_then(|template| template.pointer_mut("/spec/template/spec"))
        .and_then(Value::as_object_mut)
    {
        default_field(pod, "restartPolicy", json!("Always"));
    }
}

/// `robfig/cron`'s `ParseStandard` as far as the shape goes: five fields or
/// a descriptor (the values in the fields are not range-checked).
fn schedule_problem(schedule: &str) -> Option<String> {
    let spec = schedule
        .strip_prefix("TZ=")
        .or_else(|| schedule.strip_prefix("CRON_TZ="))
        .map_or(schedule, |rest| rest.split_once(' ').map_or("", |(_, spec)| spec))
        .trim();
    if spec.is_empty() {
        return Some("empty spec string".to_owned());
    }
    if spec.starts_with('@') {
        let known = DESCRIPTORS.contains(&spec) || spec.starts_with("@every ");
        return (!known).then(|| format!("unrecognized descriptor: {spec}"));
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    (fields.len() != 5).then(|| {
        format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        )
    })
}

/// `ValidateCronJobSpec`: a schedule (well formed, without a time zone in
/// it), a known `concurrencyPolicy`, and a Job template whose Pods restart
/// `OnFailure` or `Never` and have containers.
pub(crate) fn validate(cron_job: &Value) -> Vec<FieldError> {
    let spec = &cron_job["spec"];
    let mut errors = Vec::new();
    let schedule_value = &spec["schedule"];
    match schedule_value.as_str().filter(|schedule| !schedule.is_empty()) {
        None => errors.push(field::required("spec.schedule", "")),
        Some(schedule) => {
            if let Some(problem) = schedule_problem(schedule) {
                errors.push(field::invalid(
                    "spec.schedule",
                    BadValue::Json(schedule_value),
                    &problem,
                ));
            }
            if schedule.contains("TZ") {
                errors.push(field::invalid(
                    "spec.schedule",
                    BadValue::Json(schedule_value),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
    }
    let policy = &spec["concurrencyPolicy"];
    if !matches!(policy.as_str(), Some("Allow" | "Forbid" | "Replace")) {
        errors.push(field::not_supported(
            "spec.concurrencyPolicy",
            BadValue::Json(policy),
            &["Allow".to_owned(), "Forbid".to_owned(), "Replace".to_owned()],
        ));
    }
    errors.extend(validate_pod_spec(
        &spec["jobTemplate"]["spec"]["template"]["spec"],
        "spec.jobTemplate.spec.template.spec",
        &["OnFailure", "Never"],
    ));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(cron_job: &Value) -> Vec<String> {
        validate(cron_job)
            .into_iter()
            .map(|error| error.message)
            .collect()
    }

    #[test]
    fn defaults_are_the_api_servers_and_the_pod_restarts_always() {
        let mut nightly = json!({"spec": {"schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}}});
        apply_defaults(&mut nightly);
        assert_eq!(
            (
                &nightly["spec"]["concurrencyPolicy"],
                &nightly["spec"]["suspend"],
                &nightly["spec"]["successfulJobsHistoryLimit"],
                &nightly["spec"]["failedJobsHistoryLimit"],
            ),
            (&json!("Allow"), &json!(false), &json!(3), &json!(1))
        );
        assert_eq!(
            messages(&nightly),
            [
                "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ]
        );
        nightly["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        assert!(messages(&nightly).is_empty());
    }

    #[test]
    fn a_schedule_is_required_and_well_formed() {
        let mut cron_job = json!({"spec": {"concurrencyPolicy": "Allow", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "a", "image": "busybox"}]}}}}}});
        assert_eq!(messages(&cron_job), ["spec.schedule: Required value"]);
        cron_job["spec"]["schedule"] = json!("every night");
        assert_eq!(
            messages(&cron_job),
            [
                "spec.schedule: Invalid value: \"every night\": expected exactly 5 fields, found 2: [every night]"
            ]
        );
        cron_job["spec"]["schedule"] = json!("@nightly");
        assert_eq!(
            messages(&cron_job),
            ["spec.schedule: Invalid value: \"@nightly\": unrecognized descriptor: @nightly"]
        );
        cron_job["spec"]["schedule"] = json!("TZ=UTC 0 3 * * *");
        assert_eq!(
            messages(&cron_job),
            [
                "spec.schedule: Invalid value: \"TZ=UTC 0 3 * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
        for valid in ["@daily", "@every 1h", "*/5 * * * *"] {
            cron_job["spec"]["schedule"] = json!(valid);
            assert!(messages(&cron_job).is_empty(), "{valid}");
        }
    }
}
