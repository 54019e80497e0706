//! Where one part of the run happens: a fresh API stand-in in this process
//! (the default), or a real cluster given by `--kubeconfig`, where the bench
//! works in namespaces of its own, labelled with the run, and removes them
//! (and the bare CRDs it installed) afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_standin::StandIn;

use crate::{operator, world};

/// The label on every namespace the bench creates on a real cluster.
pub const RUN_LABEL: &str = "bench.hoist.dev/run";

pub enum Backend {
    StandIn(StandIn),
    Real,
}

pub struct Cluster {
    pub backend: Backend,
    pub client: Client,
    /// What the operator process connects with.
    pub kubeconfig: PathBuf,
    /// Put before every namespace name of this part (empty on a stand-in).
    pub prefix: String,
    /// The user the API server authenticates for the bench: the
    /// `requestedBy` of its Promotions.
    pub requested_by: String,
    run: String,
}

impl Cluster {
    /// A fresh stand-in with the Hoist CRDs and their bare copies (its
    /// Deployment controller answering after `delay`), or the real cluster
    /// of `kubeconfig` with both installed, for part `name`.
    pub async fn new(kubeconfig: Option<&Path>, name: &str, delay: Duration) -> Result<Self> {
        Self::connect(kubeconfig, name, delay, true).await
    }

    /// The workload cluster of a two-cluster run, for part `name`: a fresh
    /// stand-in as [`Cluster::new`] makes, or the real cluster of
    /// `kubeconfig`, where nothing is installed (the Hoist kinds live on
    /// the hub) and the namespaces are named as on the hub.
    pub async fn workload(kubeconfig: Option<&Path>, name: &str, delay: Duration) -> Result<Self> {
        Self::connect(kubeconfig, name, delay, false).await
    }

    async fn connect(
        kubeconfig: Option<&Path>,
        name: &str,
        delay: Duration,
        hoist_kinds: bool,
    ) -> Result<Self> {
        let crds = hoist::api::crds();
        let bare = world::bare_crds(&crds);
        match kubeconfig {
            None => {
                let standin = StandIn::builder()
                    .crds(crds.into_iter().chain(bare))
                    // The operator process keeps every right: the bench
                    // measures it, not its RBAC.
                    .user(operator::USER, &[kube_standin::MASTERS])
                    // A two-cluster run's agent on the hub, held to its
                    // cluster's objects by the `hoist-agents` policy.
                    .user(operator::AGENT_USER, &[kube_standin::MASTERS])
                    // Generous, so no watch of this run falls behind into 410 Gone.
                    .event_history(1_000_000)
                    .deployment_controller_delay(delay)
                    .start()
                    .await?;
                let place = if hoist_kinds { "" } else { "-workload" };
                let kubeconfig = crate::operator::temp_path(&format!("{name}{place}.kubeconfig"));
                std::fs::write(&kubeconfig, standin.kubeconfig_yaml(operator::USER)?)?;
                let client = standin.client();
                // As the chart installs Hoist: its admission policies hold
                // the bench's Promotions to what they hold people's to.
                hoist_testkit::cluster::install_admission_policy(&client).await?;
                let requested_by = requested_by(&client).await?;
                Ok(Cluster {
                    client,
                    requested_by,
                    backend: Backend::StandIn(standin),
                    kubeconfig,
                    prefix: String::new(),
                    run: String::new(),
                })
            }
            Some(path) => {
                let client = connect(path).await?;
                let version = client
                    .apiserver_version()
                    .await
                    .with_context(|| format!("reaching the API server of {}", path.display()))?;
                crate::progress(&format!("{name}: Kubernetes {}", version.git_version));
                let requested_by = requested_by(&client).await?;
                if hoist_kinds {
                    install(&client, crds.into_iter().chain(bare)).await?;
                }
                let run = format!("{name}-{:x}", std::process::id());
                Ok(Cluster {
                    backend: Backend::Real,
                    client,
                    kubeconfig: path.to_path_buf(),
                    prefix: format!("hoist-bench-{name}-"),
                    requested_by,
                    run,
                })
            }
        }
    }

    /// The kubeconfig an agent reaches this cluster (its hub) with: on a
    /// stand-in its own user [`operator::AGENT_USER`]; on a real cluster
    /// the bench's (see the README on the `hoist-agents` policy).
    pub fn agent_kubeconfig(&self, name: &str) -> Result<PathBuf> {
        match &self.backend {
            Backend::StandIn(standin) => {
                let path = crate::operator::temp_path(&format!("{name}-agent-hub.kubeconfig"));
                std::fs::write(&path, standin.kubeconfig_yaml(operator::AGENT_USER)?)?;
                Ok(path)
            }
            Backend::Real => Ok(self.kubeconfig.clone()),
        }
    }

    pub fn standin(&self) -> Option<&StandIn> {
        match &self.backend {
            Backend::StandIn(standin) => Some(standin),
            Backend::Real => None,
        }
    }

    /// Labels every namespace among `objects`, so cleanup finds them.
    pub fn label_namespaces(&self, objects: &mut [(String, serde_json::Value)]) {
        if self.run.is_empty() {
            return;
        }
        for (_, object) in objects.iter_mut().filter(|(_, o)| o["kind"] == "Namespace") {
            object["metadata"]["labels"][RUN_LABEL] = serde_json::json!(self.run);
        }
    }

    /// Stops the stand-in, or deletes this part's namespaces from the real
    /// cluster.
    pub async fn clean_up(self) -> Result<()> {
        match self.backend {
            Backend::StandIn(standin) => {
                standin.shutdown().await;
                Ok(())
            }
            Backend::Real => {
                let namespaces: Api<Namespace> = Api::all(self.client.clone());
                let selector = ListParams::default().labels(&format!("{RUN_LABEL}={}", self.run));
                for namespace in namespaces.list(&selector).await?.items {
                    let name = namespace.metadata.name.unwrap_or_default();
                    namespaces.delete(&name, &DeleteParams::background()).await?;
                }
                crate::progress(&format!(
                    "cleaned up: namespaces labelled {RUN_LABEL}={}",
                    self.run
                ));
                Ok(())
            }
        }
    }

    /// Removes the bare CRDs (and so their objects) from a real cluster,
    /// once every part is done.
    pub async fn remove_bare_crds(&self) -> Result<()> {
        if self.standin().is_some() {
            return Ok(());
        }
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in world::bare_crds(&hoist::api::crds()) {
            let name = crd.metadata.name.unwrap_or_default();
            match crds.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

/// Checks, before the run makes anything, that it can go ahead on the
/// cluster of `kubeconfig` ([`crate::preflight`]), the hub of an agent
/// when `agent` says so.
pub async fn preflight(kubeconfig: &Path, agent: bool) -> Result<()> {
    let client = connect(kubeconfig).await?;
    crate::preflight::check(&client, agent)
        .await
        .with_context(|| format!("checking the cluster of {} before the run", kubeconfig.display()))
}

/// The same for the workload cluster of a two-cluster run.
pub async fn preflight_workload(kubeconfig: &Path) -> Result<()> {
    let client = connect(kubeconfig).await?;
    crate::preflight::check_workload(&client).await.with_context(|| {
        format!(
            "checking the workload cluster of {} before the run",
            kubeconfig.display()
        )
    })
}

/// A client for the cluster of `kubeconfig`.
async fn connect(kubeconfig: &Path) -> Result<Client> {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?,
        &KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("the kubeconfig {}", kubeconfig.display()))?;
    Ok(Client::try_from(config)?)
}

/// Who the API server says the bench is (SelfSubjectReview), as `kubectl
/// hoist promote` asks before it sets `spec.requestedBy`.
async fn requested_by(client: &Client) -> Result<String> {
    Ok(hoist::plugin::whoami(client)
        .await
        .context("asking the API server who the bench is")?
        .user)
}

/// Applies the CRDs and waits until the API server serves them.
async fn install(client: &Client, crds: impl Iterator<Item = CustomResourceDefinition>) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for mut crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crd.metadata.managed_fields = None;
        api.patch(
            &name,
            &PatchParams::apply(world::MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("installing CRD {name}"))?;
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        match tokio::time::timeout(Duration::from_secs(60), established).await {
            Ok(result) => {
                result?;
            }
            Err(_) => bail!("CRD {name} not established within 60 s"),
        }
    }
    Ok(())
}
