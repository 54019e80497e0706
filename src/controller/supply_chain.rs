//! Makes the supply-chain checks an Environment's plan asks for: fetches
//! what is attached to each digest (once per digest per reconcile), lets
//! the core decide, records the results in the Artifacts' statuses and
//! tells them in Events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::Error;
use super::context::{Ctx, FIELD_MANAGER};
use super::pull_secrets::{PullSecretError, pull_secrets};
use crate::api::{Artifact, Environment, SupplyChainRecord};
use crate::core::supply_chain::{self, Attachments, DueCheck, TrustSources};

const CONTROLLER: &str = "environment";
/// Tries to write an Artifact's status against concurrent writers.
const WRITE_ATTEMPTS: usize = 5;

/// The data of the Secrets and ConfigMaps the Environment's policies take
/// keys and trusted roots from, read through the context's cache of
/// configuration sources, and the operator's default trusted root.
pub async fn trust_sources(ctx: &Ctx, environment: &Environment) -> Result<TrustSources, Error> {
    let namespace = environment.namespace().unwrap_or_default();
    let mut trust = TrustSources {
        default_root: ctx.trusted_root.clone(),
        ..TrustSources::default()
    };
    for name in supply_chain::key_secret_names(environment) {
        if let Some(data) = ctx.key_secret(&namespace, &name).await? {
            trust.secrets.insert(name, data.as_ref().clone());
        }
    }
    for name in supply_chain::root_config_map_names(environment) {
        if let Some(config_map) = ctx.config_map(&namespace, &name).await? {
            trust
                .config_maps
                .insert(name, supply_chain::config_map_data(&config_map));
        }
    }
    Ok(trust)
}

/// Makes `checks` on `artifacts` and records them; returns each Artifact
/// that gained records, as recorded.
pub async fn run(
    ctx: &Ctx,
    namespace: &str,
    checks: &[DueCheck],
    artifacts: &BTreeMap<String, Arc<Artifact>>,
) -> Result<BTreeMap<String, Artifact>, Error> {
    let now = ctx.now();
    let mut by_artifact: BTreeMap<&str, Vec<&DueCheck>> = BTreeMap::new();
    for check in checks {
        by_artifact.entry(&check.artifact).or_default().push(check);
    }
    let mut recorded = BTreeMap::new();
    for (name, checks) in by_artifact {
        let Some(artifact) = artifacts.get(name) else {
            continue;
        };
        let previous =
            |check: &DueCheck| supply_chain::record_of(artifact, &check.component, &check.policy).cloned();
        let mut records = Vec::new();
        let mut fetched: HashMap<String, Result<Attachments, String>> = HashMap::new();
        let mut secrets = None;
        for check in checks {
            let made = ctx.checks.get(namespace, check);
            if let Some(made) =
                made.filter(|m| m.digest == check.digest && !supply_chain::is_due(m, &check.policy, now.0))
            {
                records.push((made, previous(check)));
                continue;
            }
            if !fetched.contains_key(&check.digest) {
                if secrets.is_none() {
                    secrets = Some(match pull_secrets(ctx, artifact).await {
                        Ok(secrets) => Ok(secrets),
                        Err(PullSecretError::Read { source }) => return Err(Error::Kube(source)),
                        Err(error) => Err(error.to_string()),
                    });
                }
                let attachments = match secrets.as_ref().expect("read above") {
                    Ok(secrets) => ctx
                        .resolver
                        .attachments(&check.image, &check.digest, secrets)
                        .await
                        .map_err(|error| error.to_string()),
                    Err(message) => Err(message.clone()),
                };
                fetched.insert(check.digest.clone(), attachments);
            }
            let attachments = fetched[&check.digest].as_ref().map_err(Clone::clone);
            let before = previous(check);
            let record = supply_chain::record(
                check,
                attachments,
                artifact.spec.source.as_ref(),
                before.as_ref(),
                &now,
            );
            ctx.metrics.supply_chain_check(record.check, record.verdict);
            ctx.checks.insert(namespace, check, record.clone());
            records.push((record, before));
        }
        let written = write(ctx, artifact, records.iter().map(|(r, _)| r)).await?;
        for (record, before) in &records {
            if let Some((reason, note)) = supply_chain::record_event(record, before.as_ref()) {
                ctx.event(&written, reason, note);
            }
        }
        recorded.insert(name.to_owned(), written);
    }
    Ok(recorded)
}

/// Writes `records` into the Artifact's status, replacing those of the same
/// component, check and policy, against the newest version of the Artifact.
async fn write<'r>(
    ctx: &Ctx,
    artifact: &Artifact,
    records: impl Iterator<Item = &'r SupplyChainRecord> + Clone,
) -> Result<Artifact, Error> {
    let namespace = artifact.namespace().unwrap_or_default();
    let api: Api<Artifact> = Api::namespaced(ctx.hub.clone(), &namespace);
    let mut current = artifact.clone();
    for attempt in 0..WRITE_ATTEMPTS {
        let mut updated = current.clone();
        supply_chain::merge(
            updated.status.get_or_insert_with(Default::default),
            records.clone(),
        );
        if updated.status == current.status {
            return Ok(updated);
        }
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.replace_status(&artifact.name_any(), &params, &updated).await {
            Ok(written) => {
                ctx.metrics.write(CONTROLLER);
                return Ok(written);
            }
            Err(kube::Error::Api(status)) if status.code == 409 && attempt + 1 < WRITE_ATTEMPTS => {
                current = api.get(&artifact.name_any()).await.map_err(Error::Kube)?;
            }
            Err(error) => return Err(Error::Kube(error)),
        }
    }
    unreachable!("the last attempt returns")
}
