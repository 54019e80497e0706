//! `hoist render`: the Hoist model on files, for GitOps repositories and for
//! trying Hoist without a cluster.

mod load;
pub mod world;

pub use load::{LoadError, Manifests};

/// Every object, typed and re-serialized: defaults filled in, namespaces set,
/// in a stable order (Artifacts, Environments, Promotions, ConfigMaps,
/// Secrets, Deployments; each by namespace and name).
pub fn normalized_yaml(manifests: &Manifests) -> Result<String, serde_yaml::Error> {
    fn section<K: kube::Resource + serde::Serialize>(
        objects: &[K],
        out: &mut String,
    ) -> Result<(), serde_yaml::Error> {
        let mut sorted: Vec<&K> = objects.iter().collect();
        sorted.sort_by_key(|object| (object.meta().namespace.clone(), object.meta().name.clone()));
        for object in sorted {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(object)?);
        }
        Ok(())
    }
    let mut out = String::new();
    section(&manifests.artifacts, &mut out)?;
    section(&manifests.environments, &mut out)?;
    section(&manifests.promotions, &mut out)?;
    section(&manifests.config_maps, &mut out)?;
    section(&manifests.secrets, &mut out)?;
    section(&manifests.namespaces, &mut out)?;
    section(&manifests.deployments, &mut out)?;
    Ok(out)
}
