//! The soak gate: the Artifact must have been `Healthy` in every upstream
//! environment for at least `spec.gates.soak.duration`, counted from
//! `status.applications[].healthSince` there. The verdict names the instant
//! the soak ends, which is when the Promotion is looked at again.

use jiff::Timestamp;

use crate::api::{Environment, Health, SoakGate};
use crate::core::duration;

use super::outcome::Outcome;

/// Everything the soak gate looks at.
pub struct SoakInput<'a> {
    pub gate: Option<&'a SoakGate>,
    pub artifact: &'a str,
    pub application: &'a str,
    /// The Artifact ran in this environment before: no soak.
    pub rollback: bool,
    /// Each upstream environment by name, and the Environment if it exists.
    pub upstream: &'a [(&'a str, Option<&'a Environment>)],
    pub now: Timestamp,
}

/// The problem of spec.gates.soak that the schema cannot see.
pub fn problem(gate: &SoakGate) -> Option<String> {
    duration::parse(&gate.duration)
        .err()
        .map(|error| format!("spec.gates.soak.duration: {error}"))
}

pub fn evaluate(input: &SoakInput<'_>) -> Outcome {
    let Some(gate) = input.gate else {
        return Outcome::passed("no soak required here");
    };
    let artifact = input.artifact;
    let soak = match duration::parse(&gate.duration) {
        Ok(soak) => soak,
        Err(error) => {
            return Outcome::failed(format!("spec.gates.soak.duration: {error}; fix the Environment"));
        }
    };
    if input.rollback {
        return Outcome::passed(format!(
            "rollback: {artifact} ran here before, soak does not apply"
        ));
    }
    if input.upstream.is_empty() {
        return Outcome::passed("no upstream environment to soak in");
    }
    let mut waiting = Vec::new();
    // (end of soak, environment, healthy since) of the environment that ends last.
    let mut last: Option<(Timestamp, &str, Timestamp)> = None;
    for (name, environment) in input.upstream {
        let running = environment
            .and_then(|environment| environment.status.as_ref())
            .and_then(|status| {
                status
                    .applications
                    .iter()
                    .find(|app| app.application == input.application)
            })
            .filter(|app| app.artifact == artifact);
        match running {
            Some(app) if app.health == Health::Healthy => match &app.health_since {
                Some(since) => {
                    let Ok(end) = since.0.checked_add(soak) else {
                        return Outcome::failed(format!(
                            "spec.gates.soak.duration: {} is too long; fix the Environment",
                            gate.duration
                        ));
                    };
                    if last.is_none_or(|(latest, ..)| end > latest) {
                        last = Some((end, name, since.0));
                    }
                }
                None => waiting.push(format!("{artifact} in {name} has no healthSince yet")),
            },
            Some(app) => waiting.push(format!("{artifact} is {:?} in {name}", app.health)),
            None => waiting.push(format!("{artifact} does not run in {name}")),
        }
    }
    if !waiting.is_empty() {
        return Outcome::pending(format!(
            "the {} soak starts once {artifact} is Healthy upstream: {}",
            gate.duration,
            waiting.join("; ")
        ));
    }
    let Some((end, name, since)) = last else {
        return Outcome::passed("no upstream environment to soak in");
    };
    if input.now >= end {
        Outcome::passed(format!(
            "{artifact} has soaked {} upstream: Healthy in {name} since {since}, soak ended at {end}",
            gate.duration
        ))
    } else {
        Outcome {
            next_check: Some(end),
            ..Outcome::pending(format!(
                "{artifact} soaks until {end}: Healthy in {name} since {since}, soak {}",
                gate.duration
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GateState;
    use crate::core::environment::fixture::{A, environment, running};

    fn upstream(name: &str, artifact: &str, health: Health, since: Option<&str>) -> Environment {
        let mut environment = environment(name, "");
        let mut app = running(artifact, "1.0.0", A, None);
        app.health = health;
        app.health_since =
            since.map(|since| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(since.parse().unwrap()));
        environment.status = Some(crate::api::EnvironmentStatus {
            applications: vec![app],
            ..Default::default()
        });
        environment
    }

    fn verdict(
        gate: Option<&SoakGate>,
        rollback: bool,
        upstream: &[(&str, Option<&Environment>)],
        now: &str,
    ) -> (GateState, String, Option<String>) {
        let outcome = evaluate(&SoakInput {
            gate,
            artifact: "shop-1",
            application: "shop",
            rollback,
            upstream,
            now: now.parse().unwrap(),
        });
        (
            outcome.state,
            outcome.message,
            outcome.next_check.map(|t| t.to_string()),
        )
    }

    fn soak(duration: &str) -> SoakGate {
        SoakGate {
            duration: duration.into(),
        }
    }

    #[test]
    fn a_soak_holds_until_exactly_its_end_in_the_upstream_that_became_healthy_last() {
        let gate = soak("30m");
        let dev = upstream("dev", "shop-1", Health::Healthy, Some("2026-12-02T10:00:00Z"));
        let staging = upstream("staging", "shop-1", Health::Healthy, Some("2026-12-02T10:10:00Z"));
        let both = [("dev", Some(&dev)), ("staging", Some(&staging))];
        let held = (
            GateState::Pending,
            "shop-1 soaks until 2026-12-02T10:40:00Z: Healthy in staging since 2026-12-02T10:10:00Z, soak 30m"
                .to_string(),
            Some("2026-12-02T10:40:00Z".to_string()),
        );
        assert_eq!(verdict(Some(&gate), false, &both, "2026-12-02T10:10:00Z"), held);
        assert_eq!(verdict(Some(&gate), false, &both, "2026-12-02T10:39:59Z"), held);
        assert_eq!(
            verdict(Some(&gate), false, &both, "2026-12-02T10:40:00Z"),
            (
                GateState::Passed,
                "shop-1 has soaked 30m upstream: Healthy in staging since 2026-12-02T10:10:00Z, \
                 soak ended at 2026-12-02T10:40:00Z"
                    .into(),
                None
            )
        );
    }

    #[test]
    fn the_soak_waits_without_a_clock_while_the_artifact_is_not_healthy_upstream() {
        let gate = soak("1h");
        let degraded = upstream(
            "staging",
            "shop-1",
            Health::Degraded,
            Some("2026-12-02T10:00:00Z"),
        );
        let other = upstream("dev", "shop-0", Health::Healthy, Some("2026-12-02T09:00:00Z"));
        assert_eq!(
            verdict(
                Some(&gate),
                false,
                &[("dev", Some(&other)), ("staging", Some(&degraded)), ("qa", None)],
                "2026-12-02T12:00:00Z"
            ),
            (
                GateState::Pending,
                "the 1h soak starts once shop-1 is Healthy upstream: shop-1 does not run in dev; \
                 shop-1 is Degraded in staging; shop-1 does not run in qa"
                    .into(),
                None
            )
        );
    }

    #[test]
    fn a_rollback_and_an_environment_without_upstream_or_soak_pass() {
        let gate = soak("1h");
        assert_eq!(
            verdict(Some(&gate), true, &[("dev", None)], "2026-12-02T12:00:00Z").1,
            "rollback: shop-1 ran here before, soak does not apply"
        );
        assert_eq!(
            verdict(Some(&gate), false, &[], "2026-12-02T12:00:00Z").1,
            "no upstream environment to soak in"
        );
        assert_eq!(
            verdict(None, false, &[("dev", None)], "2026-12-02T12:00:00Z"),
            (GateState::Passed, "no soak required here".into(), None)
        );
    }

    #[test]
    fn a_duration_that_does_not_parse_fails_the_gate_naming_the_field() {
        let gate = soak("0m");
        assert!(problem(&soak("90m")).is_none());
        let text = problem(&gate).expect("zero is refused");
        assert_eq!(text, "spec.gates.soak.duration: \"0m\" must be longer than zero");
        assert_eq!(
            verdict(Some(&gate), false, &[], "2026-12-02T12:00:00Z"),
            (GateState::Failed, format!("{text}; fix the Environment"), None)
        );
    }
}
