//! The Upstream gate: the Artifact runs, healthy, in every upstream
//! environment, unless it ran here before (a rollback).

use crate::api::{Artifact, Environment, Health};

use super::outcome::Outcome;

/// `upstream`: each upstream environment by name, and the Environment if
/// it exists.
pub fn evaluate(artifact: &Artifact, rollback: bool, upstream: &[(&str, Option<&Environment>)]) -> Outcome {
    if upstream.is_empty() {
        return Outcome::passed("this environment has no upstream");
    }
    let name = artifact.metadata.name.as_deref().unwrap_or_default();
    if rollback {
        return Outcome::passed(format!(
            "rollback: {name} ran here before, upstream does not apply"
        ));
    }
    let application = &artifact.spec.application;
    let mut missing = Vec::new();
    for (upstream_name, environment) in upstream {
        let Some(environment) = environment else {
            missing.push(format!("upstream Environment {upstream_name} does not exist"));
            continue;
        };
        let running = environment.status.as_ref().and_then(|status| {
            status
                .applications
                .iter()
                .find(|app| &app.application == application)
        });
        match running {
            Some(app) if app.artifact == name && app.health == Health::Healthy => {}
            Some(app) if app.artifact == name => {
                missing.push(format!("{name} runs in {upstream_name} but is {:?}", app.health))
            }
            Some(app) => missing.push(format!(
                "{upstream_name} runs {} ({}), not {name}",
                app.artifact, app.version
            )),
            None => missing.push(format!("{name} has not succeeded in {upstream_name}")),
        }
    }
    if missing.is_empty() {
        let names: Vec<&str> = upstream.iter().map(|(name, _)| *name).collect();
        Outcome::passed(format!("{name} is healthy in {}", names.join(", ")))
    } else {
        Outcome::pending(format!("{}; promote it there first", missing.join("; ")))
    }
}
