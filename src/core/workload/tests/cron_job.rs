use super::*;

#[test]
fn a_cron_job_is_rolled_out_once_pinned_whatever_its_jobs_do() {
    let cron_job = workload(
        WorkloadKind::CronJob,
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop, generation: 3}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: app, image: "registry.example.com/shop/report:latest"}]
status:
  lastScheduleTime: "2026-12-07T03:00:00Z"
  active: [{kind: Job, namespace: shop, name: report-29420100, apiVersion: batch/v1}]"#,
    );
    assert_eq!(cron_job.rollout(), Rollout::Complete);
}
