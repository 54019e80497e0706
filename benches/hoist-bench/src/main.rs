//! `cargo run --release -p hoist-bench`: Hoist's operator, as a process of
//! its own, against the in-process API stand-in (or the real cluster of
//! `--kubeconfig`) and the real local registry (`HOIST_TEST_REGISTRY`).
//! Prints one Markdown report; every figure in it comes from the same run,
//! and operator latencies sit next to bare writes made on the same API
//! server, so machine noise cancels in the ratio.

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

/// The operator's allocator options, as `hoist` exports them (src/main.rs).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&std::ffi::c_char> =
    // SAFETY: a pointer to a NUL-terminated string that lives as long as the program.
    Some(unsafe { &*hoist::controller::allocator::MALLOC_CONF.as_ptr() });

mod cluster;
mod heap;
mod observe;
mod operator;
mod preflight;
mod report;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use hoist_testkit::registry::{PushedImage, push_image, registry_address};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube_standin::StandIn;
use serde_json::{Value, json};

use cluster::Cluster;
use observe::{Tracker, key, rollout_key};
use operator::{Operator, Role};
use report::{Cpu, Latencies, LevelReport, RegistryReport, Resync, Retained};
use world::{BARE_GROUP, Size};

#[derive(Parser)]
#[command(about = "Benchmark Hoist's operator: latency, memory, idle resync, registry lookups")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Environments at 1× (each with 10 Artifacts and 10 Promotions).
    #[arg(long, default_value_t = 64)]
    base_environments: usize,
    /// Promotions per Environment, one per release; each application has
    /// as many Artifacts.
    #[arg(long, default_value_t = world::VERSIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    promotions_per_environment: usize,
    /// Retention on: every Environment keeps 3 Artifacts per application,
    /// 3 finished Promotions (those older than 1 s beyond them go) and 3
    /// history entries; Artifacts are published release by release, each
    /// just before its Promotions; the operator makes a pass every
    /// `--retention-interval`. The report adds the memory once retention
    /// has deleted what it would, and what is left.
    #[arg(long)]
    retention: bool,
    /// The operator's `--retention-interval` with `--retention`.
    #[arg(long, default_value = "2s", value_parser = hoist::core::duration::parse_flag)]
    retention_interval: Duration,
    /// Growth factors to run; the largest also gets the idle resync.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    factors: Vec<usize>,
    /// Promotions timed one at a time per size (the rest run in bulk first),
    /// and as many bare write sequences.
    #[arg(long, default_value_t = 1000)]
    timed: usize,
    /// Artifacts of the registry section.
    #[arg(long, default_value_t = 1000)]
    registry_artifacts: usize,
    /// Distinct image references they use.
    #[arg(long, default_value_t = 200)]
    registry_references: usize,
    /// The operator's concurrent lookups per registry.
    #[arg(long, default_value_t = 4)]
    registry_concurrency: usize,
    /// Prints, for this many timed promotions per size, every API request
    /// made from its creation until it is seen `Succeeded` (and 20 ms more);
    /// on the stand-in only, whose request log it reads.
    #[arg(long, default_value_t = 0)]
    trace: usize,
    /// Secrets (4 KiB each) that no Environment references, created in
    /// namespaces of their own before the operator starts at every size:
    /// a cluster-wide install watches Secrets only where Environments read
    /// them, so they should not show in its memory.
    #[arg(long, default_value_t = 0)]
    unrelated_secrets: usize,
    /// Run against the cluster of this kubeconfig instead of the stand-in:
    /// the bench installs the Hoist CRDs and copies of them under
    /// bare.hoist.dev, works in namespaces `hoist-bench-*` of its own and
    /// deletes them (and the copies) afterwards. Before anything it checks
    /// that its user may do all that (and run the operator), and that no
    /// Hoist operator of the chart runs there, and names what is missing.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// How long the stand-in's Deployment controller takes from a
    /// Deployment write to its status update (`300ms`), as a loaded
    /// kube-controller-manager does; a real cluster's takes what it takes.
    #[arg(long, value_parser = hoist::core::duration::parse_flag)]
    deployment_controller_delay: Option<Duration>,
    /// Two clusters: the Hoist kinds and the operator on a hub, the
    /// Deployments and an agent (`hoist agent`) for the Environments
    /// (`spec.cluster`) in a workload cluster; two stand-ins, or with
    /// `--kubeconfig` (the hub) and `--workload-kubeconfig` two real clusters.
    #[arg(long)]
    workload_cluster: bool,
    /// The workload cluster of a two-cluster run on real clusters (implies
    /// `--workload-cluster`); the bench checks there too what it needs.
    #[arg(long, requires = "kubeconfig")]
    workload_kubeconfig: Option<PathBuf>,
}

impl Args {
    fn two_clusters(&self) -> bool {
        self.workload_cluster || self.workload_kubeconfig.is_some()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs the operator as `hoist controller` does (the bench starts itself so).
    #[command(hide = true)]
    Operator {
        #[command(flatten)]
        process: Process,
    },
    /// Runs an agent as `hoist agent` does in a workload cluster (the
    /// cluster of `KUBECONFIG`).
    #[command(hide = true)]
    Agent {
        #[command(flatten)]
        process: Process,
        #[arg(long)]
        hub_kubeconfig: PathBuf,
        #[arg(long)]
        cluster: String,
    },
}

/// The settings of an operator or agent process the bench starts.
#[derive(clap::Args)]
struct Process {
    #[arg(long)]
    health_address: std::net::SocketAddr,
    #[arg(long)]
    insecure_registry: String,
    #[arg(long)]
    registry_concurrency: std::num::NonZeroUsize,
    /// Where to publish the live heap bytes.
    #[arg(long)]
    heap_file: std::path::PathBuf,
    /// `hoist controller --retention-interval`, when not its default.
    #[arg(long, value_parser = hoist::core::duration::parse_flag)]
    retention_interval: Option<Duration>,
}

impl Process {
    /// Publishes the heap and answers the operator's settings.
    fn settings(self) -> hoist::controller::Settings {
        heap::publish(self.heap_file);
        hoist::controller::Settings {
            health_address: self.health_address,
            insecure_registries: vec![self.insecure_registry],
            registry_concurrency: self.registry_concurrency,
            retention_interval: self
                .retention_interval
                .unwrap_or(hoist::controller::DEFAULT_RETENTION_INTERVAL),
            ..Default::default()
        }
    }
}

const WAIT: Duration = Duration::from_secs(600);
const PROMOTION_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Operator { process }) => {
            hoist::cli::controller(process.settings(), false).await?;
            return Ok(());
        }
        Some(Command::Agent {
            process,
            hub_kubeconfig,
            cluster,
        }) => {
            let agent = hoist::controller::agent::Agent {
                cluster,
                namespace: None,
                identity: "hoist-bench-agent".to_owned(),
                timing: Default::default(),
            };
            hoist::cli::agent_run(&hub_kubeconfig, agent, process.settings(), false).await?;
            return Ok(());
        }
        None => {}
    }
    if let Some(kubeconfig) = &args.kubeconfig {
        if args.deployment_controller_delay.is_some() {
            bail!(
                "--deployment-controller-delay sets the stand-in's Deployment controller; the cluster of \
                 --kubeconfig has its own"
            );
        }
        cluster::preflight(kubeconfig, args.two_clusters()).await?;
    }
    if let Some(workload) = &args.workload_kubeconfig {
        cluster::preflight_workload(workload).await?;
    } else if args.kubeconfig.is_some() && args.workload_cluster {
        bail!(
            "--workload-cluster with --kubeconfig runs on two real clusters: name the workload cluster with \
             --workload-kubeconfig"
        );
    }
    let registry = registry_address().context("the bench needs the local registry")?;
    let started = Instant::now();
    let images = push_images("bench", args.promotions_per_environment, 0).await?;
    let registry_report = registry_section(&args, &registry).await?;
    let delay = args.deployment_controller_delay.unwrap_or_default();
    let mut levels = Vec::new();
    let largest = args.factors.iter().copied().max().unwrap_or(1);
    for &factor in &args.factors {
        let name = format!("{factor}x");
        let cluster = Cluster::new(args.kubeconfig.as_deref(), &name, delay).await?;
        let workload = match args.two_clusters() {
            true => Some(Cluster::workload(args.workload_kubeconfig.as_deref(), &name, delay).await?),
            false => None,
        };
        let size = Size {
            environments: args.base_environments * factor,
            versions: args.promotions_per_environment,
            retention: args.retention,
            prefix: cluster.prefix.clone(),
        };
        progress(&format!(
            "{factor}×: {} Environments, {} Artifacts, {} Promotions",
            size.environments,
            size.artifacts(),
            size.promotions()
        ));
        let outcome = level(
            &args,
            (&cluster, workload.as_ref()),
            &registry,
            factor,
            size,
            &images,
            factor == largest,
        )
        .await;
        // The bare CRDs go with the last level, or with the one that failed.
        if factor == largest || outcome.is_err() {
            cluster.remove_bare_crds().await?;
        }
        cluster.clean_up().await?;
        if let Some(workload) = workload {
            workload.clean_up().await?;
        }
        levels.push(outcome?);
    }
    print!(
        "{}",
        report::render(
            &levels,
            &registry_report,
            args.registry_concurrency,
            started.elapsed(),
            &format!(
                "{}{}",
                api_servers(&args),
                match args.unrelated_secrets {
                    0 => String::new(),
                    count => format!(", with {count} unrelated Secrets of 4 KiB in namespaces of their own"),
                }
            ),
        )
    );
    Ok(())
}

/// Which API servers the run used, for the report.
fn api_servers(args: &Args) -> String {
    let servers = match (&args.kubeconfig, &args.workload_kubeconfig, args.two_clusters()) {
        (Some(hub), Some(workload), _) => format!(
            "the hub of {} (the operator) and the workload cluster of {} (an agent, `hoist agent`)",
            hub.display(),
            workload.display()
        ),
        (Some(path), _, _) => format!("the cluster of {}", path.display()),
        (None, _, true) => {
            "two in-process stand-ins: a hub (the operator) and a workload cluster (an agent, `hoist agent`)"
                .to_owned()
        }
        (None, _, false) => "the in-process stand-in".to_owned(),
    };
    match (&args.kubeconfig, args.deployment_controller_delay) {
        (None, Some(delay)) => format!(
            "{servers}, the Deployment controller answering after {} ms",
            delay.as_millis()
        ),
        _ => servers,
    }
}

fn progress(message: &str) {
    eprintln!("[hoist-bench] {message}");
}

/// Pushes `versions` backend and frontend images to `hoist-bench/<prefix>-…`.
async fn push_images(prefix: &str, versions: usize, seed: u64) -> Result<Vec<[PushedImage; 2]>> {
    let mut images = Vec::new();
    for version in 0..versions {
        let tag = format!("1.0.{version}");
        let seed = seed + 2 * version as u64;
        let backend = push_image(&format!("hoist-bench/{prefix}-backend"), &tag, seed).await?;
        let frontend = push_image(&format!("hoist-bench/{prefix}-frontend"), &tag, seed + 1).await?;
        images.push([backend, frontend]);
    }
    Ok(images)
}

fn start_operator(args: &Args, kubeconfig: &Path, registry: &str, name: &str) -> Result<Operator> {
    start_process(&Role::Operator, args, kubeconfig, registry, name)
}

fn start_process(
    role: &Role<'_>,
    args: &Args,
    kubeconfig: &Path,
    registry: &str,
    name: &str,
) -> Result<Operator> {
    Operator::start(
        role,
        kubeconfig,
        registry,
        args.registry_concurrency,
        args.retention.then_some(args.retention_interval),
        &operator::log_path(name),
    )
}

/// Creates `batches` on `cluster`, or split between it (the hub) and a
/// `workload` cluster ([`world::split_for_workload`]), the workload's first
/// so that the Environments find their Deployments.
async fn populate_both(
    cluster: &Cluster,
    workload: Option<&Cluster>,
    batches: Vec<Vec<(String, Value)>>,
) -> Result<()> {
    match workload {
        Some(workload) => {
            let (hub, local) = world::split_for_workload(batches, operator::CLUSTER);
            populate(workload, local).await?;
            populate(cluster, hub).await
        }
        None => populate(cluster, batches).await,
    }
}

/// The requests of the operator and, in a two-cluster run, of the agent,
/// by kind; an agent's by where they went: to the hub (Hoist's kinds, their
/// statuses, Events, its Lease) or to its workload cluster (the rest).
async fn requests_of(operator: &Operator, agent: Option<&Operator>) -> Result<BTreeMap<String, usize>> {
    let Some(agent) = agent else {
        return operator.requests().await;
    };
    let mut requests: BTreeMap<String, usize> = operator
        .requests()
        .await?
        .into_iter()
        .map(|(kind, count)| (format!("hub operator: {kind}"), count))
        .collect();
    for (kind, count) in agent.requests().await? {
        let resource = kind.split_once(' ').map_or("", |(_, resource)| resource);
        let on_hub = resource.starts_with("artifacts")
            || resource.starts_with("environments")
            || resource.starts_with("promotions")
            || resource.starts_with("events")
            || resource.starts_with("leases")
            || resource.starts_with("selfsubject");
        let place = if on_hub {
            "agent → hub"
        } else {
            "agent → workload"
        };
        *requests.entry(format!("{place}: {kind}")).or_default() += count;
    }
    Ok(requests)
}

/// The CPU time `processes` used so far, together.
fn cpu_of(processes: &[&Operator]) -> Result<Duration> {
    processes.iter().map(|process| process.cpu()).sum()
}

async fn populate(cluster: &Cluster, batches: Vec<Vec<(String, Value)>>) -> Result<()> {
    for mut batch in batches {
        cluster.label_namespaces(&mut batch);
        world::create_all(&cluster.client, batch).await?;
    }
    Ok(())
}

/// Waits until the operator made no request for `quiet`.
async fn wait_quiet(operator: &Operator, quiet: Duration) -> Result<()> {
    wait_all_quiet(&[operator], quiet).await
}

/// Waits until none of `processes` made a request for `quiet`, but for
/// an agent's heartbeat (it renews its Lease every second or two).
async fn wait_all_quiet(processes: &[&Operator], quiet: Duration) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    let mut last = usize::MAX;
    let mut since = Instant::now();
    loop {
        let mut count = 0;
        for process in processes {
            count += process
                .requests()
                .await?
                .iter()
                .filter(|(kind, _)| !kind.ends_with(" leases"))
                .map(|(_, count)| count)
                .sum::<usize>();
        }
        if count != last {
            last = count;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the operator was still busy after {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `verb resource[/subresource]` of a request in the stand-in's log.
fn request_kind(record: &kube_standin::RequestRecord) -> String {
    let verb = record.verb.map_or("other", |verb| verb.as_str());
    match &record.subresource {
        Some(subresource) => format!("{verb} {}/{subresource}", record.resource),
        None => format!("{verb} {}", record.resource),
    }
}

/// The requests counted in `after` but not yet in `before`.
fn since(before: &BTreeMap<String, usize>, after: BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    after
        .into_iter()
        .filter_map(|(kind, count)| {
            let new = count.saturating_sub(before.get(&kind).copied().unwrap_or(0));
            (new > 0).then_some((kind, new))
        })
        .collect()
}

async fn level(
    args: &Args,
    (cluster, workload): (&Cluster, Option<&Cluster>),
    registry: &str,
    factor: usize,
    size: Size,
    images: &[[PushedImage; 2]],
    resync: bool,
) -> Result<LevelReport> {
    let name = format!("{factor}x");
    let client = cluster.client.clone();
    // Where the Deployments are: the workload cluster of a two-cluster run.
    let local = workload.unwrap_or(cluster).client.clone();
    let kubeconfig = &cluster.kubeconfig;
    let bare_namespace = size.bare_namespace();
    let begun = Instant::now();
    populate_both(cluster, workload, world::objects(&size, images)).await?;
    let bare_environments = size.environments.min(64);
    populate_both(
        cluster,
        workload,
        world::bare_objects(&bare_namespace, bare_environments),
    )
    .await?;
    populate_both(
        cluster,
        workload,
        world::unrelated_secrets(&size.prefix, args.unrelated_secrets),
    )
    .await?;
    let populated = begun.elapsed();
    progress(&format!("{name}: store filled in {populated:.1?}"));

    let artifacts = Tracker::start(
        world::api(&client, "hoist.dev", "Artifact", "artifacts"),
        observe::ready,
    );
    let environments = Tracker::start(
        world::api(&client, "hoist.dev", "Environment", "environments"),
        observe::observed,
    );
    let promotions = Tracker::start(
        world::api(&client, "hoist.dev", "Promotion", "promotions"),
        observe::succeeded,
    );
    let bare_promotions = Tracker::start(
        world::api(&client, BARE_GROUP, "Promotion", "promotions"),
        observe::succeeded,
    );
    let rollouts = observe::rollouts(&local);

    let mut operator = start_operator(args, kubeconfig, registry, &name)?;
    let mut ready = operator.wait_ready(WAIT).await?;
    let mut agent = match workload {
        Some(workload) => {
            let hub_kubeconfig = cluster.agent_kubeconfig(&name)?;
            let role = Role::Agent {
                hub_kubeconfig: &hub_kubeconfig,
            };
            let mut agent = start_process(
                &role,
                args,
                &workload.kubeconfig,
                registry,
                &format!("{name}-agent"),
            )?;
            ready = ready.max(agent.wait_ready(WAIT).await?);
            Some(agent)
        }
        None => None,
    };
    let processes: Vec<&Operator> = [Some(&operator), agent.as_ref()].into_iter().flatten().collect();
    // The process that reconciles the Environments: its memory and time.
    let worker = agent.as_ref().unwrap_or(&operator);
    artifacts.wait_count(size.artifacts_up_front(), WAIT).await?;
    environments.wait_count(size.environments, WAIT).await?;
    let settled = worker.uptime();
    wait_all_quiet(&processes, Duration::from_secs(1)).await?;
    let rss_synced = worker.memory()?;
    let lookups = operator.metric("hoist_registry_lookups_total").await?;
    progress(&format!(
        "{name}: ready after {ready:.1?}, settled after {settled:.1?}, RSS {} MiB, {lookups} registry lookups",
        rss_synced.rss / (1 << 20)
    ));

    // Promotions in creation order, round by round (one version per
    // Environment and round); all but the last `timed` run in bulk.
    let order: Vec<(usize, usize)> = (0..size.versions)
        .flat_map(|version| (0..size.environments).map(move |index| (version, index)))
        .collect();
    let timed_count = args.timed.min(order.len());
    let (bulk, timed) = order.split_at(order.len() - timed_count);
    let bulk_started = Instant::now();
    let mut done = 0;
    let mut published = size.artifacts_up_front();
    for version in 0..size.versions {
        let pairs: Vec<(usize, usize)> = bulk.iter().copied().filter(|(v, _)| *v == version).collect();
        if pairs.is_empty() {
            continue;
        }
        published += publish(&client, &artifacts, &size, images, &pairs, published).await?;
        let round: Vec<(String, Value)> = pairs
            .iter()
            .map(|&(v, index)| {
                let (namespace, environment) = size.environment(index);
                (
                    namespace,
                    world::promotion(
                        "hoist.dev",
                        &environment,
                        (v, size.versions),
                        &cluster.requested_by,
                    ),
                )
            })
            .collect();
        done += round.len();
        world::create_all(&client, round).await?;
        promotions.wait_count(done, WAIT).await?;
    }
    let bulk_time = bulk_started.elapsed();
    if !bulk.is_empty() {
        progress(&format!(
            "{name}: {} bulk promotions in {bulk_time:.1?}",
            bulk.len()
        ));
    }

    wait_all_quiet(&processes, Duration::from_secs(1)).await?;
    let requests_before = requests_of(&operator, agent.as_ref()).await?;
    let operator_cpu = cpu_of(&processes)?;
    let bench_cpu = operator::cpu_time(std::process::id())?;
    let mut operator_latencies = Vec::with_capacity(timed.len());
    let mut overheads = Vec::with_capacity(timed.len());
    for &(version, index) in timed {
        let (namespace, environment) = size.environment(index);
        published += publish(&client, &artifacts, &size, images, &[(version, index)], published).await?;
        let promotion = world::promotion(
            "hoist.dev",
            &environment,
            (version, size.versions),
            &cluster.requested_by,
        );
        let start = Instant::now();
        world::create(&client, &namespace, promotion).await?;
        let seen = promotions
            .wait(
                &key(
                    &namespace,
                    &world::promotion_name(&environment, version, size.versions),
                ),
                PROMOTION_TIMEOUT,
            )
            .await?;
        operator_latencies.push(seen - start);
        let observed = rolled_out(&local, &rollouts, &namespace, &environment).await?;
        overheads.push(seen.saturating_duration_since(observed));
        if operator_latencies.len() <= args.trace {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trace(cluster.standin(), start, seen);
        }
    }
    let operator_cpu = cpu_of(&processes)? - operator_cpu;
    let bench_cpu = operator::cpu_time(std::process::id())? - bench_cpu;
    wait_all_quiet(&processes, Duration::from_secs(1)).await?;
    let requests = since(&requests_before, requests_of(&operator, agent.as_ref()).await?);
    progress(&format!("{name}: {} timed promotions done", timed.len()));
    verify_pins(&local, &size, images).await?;

    let statuses = status_templates(&client, &size).await?;
    let bench_before_bare = operator::cpu_time(std::process::id())?;
    let mut bare_latencies = Vec::with_capacity(timed.len());
    for (sequence, &(version, _)) in timed.iter().enumerate() {
        let index = sequence % bare_environments;
        let environment = format!("env-{index:02}");
        let start = Instant::now();
        bare_promotion(
            cluster,
            (&local, &rollouts),
            (&bare_namespace, &environment),
            (version, size.versions),
            sequence,
            &images[sequence % images.len()],
            &statuses,
        )
        .await?;
        let seen = bare_promotions
            .wait(
                &key(&bare_namespace, &format!("{environment}-{sequence}")),
                PROMOTION_TIMEOUT,
            )
            .await?;
        bare_latencies.push(seen - start);
        if bare_latencies.len() <= args.trace {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trace(cluster.standin(), start, seen);
        }
    }
    // The stand-in runs in this process; a real API server's CPU is not ours to read.
    let cpu = Cpu {
        operator: operator_cpu,
        standin: cluster.standin().map(|_| bench_cpu),
        standin_bare: cluster
            .standin()
            .map(|_| operator::cpu_time(std::process::id()))
            .transpose()?
            .map(|after| after - bench_before_bare),
    };
    progress(&format!("{name}: {} bare promotions done", timed.len()));
    let rss_after = worker.memory()?;
    let retained = match size.retention {
        true => Some(retained(args, &operator, worker, &client, &size).await?),
        false => None,
    };

    let resync = if let Some(agent) = agent.take() {
        // A two-cluster run measures promotions; the idle resync is the
        // one-cluster run's.
        agent.stop().await?;
        operator.stop().await?;
        None
    } else if resync {
        Some(idle_resync(args, kubeconfig, registry, &name, operator).await?)
    } else {
        operator.stop().await?;
        None
    };
    Ok(LevelReport {
        factor,
        size,
        populated,
        ready,
        settled,
        rss_synced,
        rss_after,
        bulk: bulk.len(),
        bulk_time,
        operator: Latencies::new(operator_latencies),
        overhead: Latencies::new(overheads),
        bare: Latencies::new(bare_latencies),
        requests,
        cpu,
        lookups,
        retained,
        resync,
    })
}

/// With retention, publishes the Artifacts of `pairs` (version, environment
/// index) not yet created, as a pipeline does just before it promotes, and
/// waits until they are Ready; answers how many it created. `published`
/// Artifacts were seen Ready before.
async fn publish(
    client: &Client,
    ready: &Tracker,
    size: &Size,
    images: &[[PushedImage; 2]],
    pairs: &[(usize, usize)],
    published: usize,
) -> Result<usize> {
    let up_front = size.artifacts_up_front() / size.environments.max(1);
    let releases: Vec<(String, Value)> = pairs
        .iter()
        .filter(|(version, _)| *version >= up_front)
        .map(|&(version, index)| world::release(size, images, version, index))
        .collect();
    let created = releases.len();
    world::create_all(client, releases).await?;
    ready.wait_count(published + created, WAIT).await?;
    Ok(created)
}

/// Waits until retention's passes delete nothing more (two passes and the
/// minimum age without a deletion, the operator quiet), then takes the
/// memory of `worker` (the operator, or the agent of a two-cluster run)
/// and counts what is left of the run's Artifacts and Promotions.
async fn retained(
    args: &Args,
    operator: &Operator,
    worker: &Operator,
    client: &Client,
    size: &Size,
) -> Result<Retained> {
    let min_age = hoist::core::duration::parse_flag(world::RETAINED_MIN_AGE)?;
    let deadline = Instant::now() + WAIT;
    let mut deletions = operator.metric("hoist_retention_deletions_total").await?;
    loop {
        tokio::time::sleep(2 * args.retention_interval + min_age).await;
        wait_quiet(operator, Duration::from_secs(1)).await?;
        let now = operator.metric("hoist_retention_deletions_total").await?;
        if now == deletions {
            break;
        }
        deletions = now;
        if Instant::now() > deadline {
            bail!("retention was still deleting after {WAIT:?}");
        }
    }
    let memory = worker.memory()?;
    let tenants = format!("{}tenant-", size.prefix);
    let left = |objects: Vec<DynamicObject>| {
        objects
            .iter()
            .filter(|object| {
                object
                    .metadata
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| ns.starts_with(&tenants))
            })
            .count()
    };
    let list = kube::api::ListParams::default();
    let artifacts = world::api(client, "hoist.dev", "Artifact", "artifacts")
        .list(&list)
        .await?;
    let promotions = world::api(client, "hoist.dev", "Promotion", "promotions")
        .list(&list)
        .await?;
    progress(&format!(
        "{} Environments: retention deleted {deletions} objects; RSS {} MiB",
        size.environments,
        memory.rss / (1 << 20)
    ));
    Ok(Retained {
        memory,
        interval: args.retention_interval,
        artifacts: left(artifacts.items),
        promotions: left(promotions.items),
        deletions,
    })
}

/// When the Deployment controller had rolled out both Deployments of
/// `environment` at their current generations (the pins of its last
/// promotion), as [`observe::rollouts`] saw it.
async fn rolled_out(
    client: &Client,
    rollouts: &Tracker,
    namespace: &str,
    environment: &str,
) -> Result<Instant> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), namespace);
    let application = world::application(environment);
    let mut last = None;
    for component in ["backend", "frontend"] {
        let name = format!("{application}-{component}");
        let generation = api.get(&name).await?.metadata.generation.unwrap_or(0);
        let at = rollouts
            .wait(&rollout_key(namespace, &name, generation), PROMOTION_TIMEOUT)
            .await?;
        last = last.max(Some(at));
    }
    last.context("an environment has two Deployments")
}

/// Prints the requests made since `start` to stderr, with their times
/// (from the stand-in's log; nothing on a real cluster).
fn trace(standin: Option<&StandIn>, start: Instant, seen: Instant) {
    let Some(standin) = standin else {
        return;
    };
    let ms = |at: Instant| at.saturating_duration_since(start).as_secs_f64() * 1000.0;
    eprintln!("[hoist-bench] trace: seen Succeeded at {:.2} ms", ms(seen));
    for record in standin
        .requests()
        .records()
        .iter()
        .filter(|r| r.received >= start)
    {
        eprintln!(
            "[hoist-bench]   {:7.2} ms +{:5.2} ms  {:10} {} {}",
            ms(record.received),
            record.took.as_secs_f64() * 1000.0,
            record.user.as_deref().unwrap_or("-"),
            request_kind(record),
            record.name.as_deref().unwrap_or(""),
        );
    }
}

/// Every Deployment runs the last version's pinned image.
async fn verify_pins(client: &Client, size: &Size, images: &[[PushedImage; 2]]) -> Result<()> {
    let last = &images[size.versions - 1];
    for index in 0..size.environments {
        let (namespace, environment) = size.environment(index);
        let name = format!("{}-backend", world::application(&environment));
        let deployment =
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &namespace)
                .get(&name)
                .await?;
        let image = deployment
            .spec
            .and_then(|spec| spec.template.spec)
            .and_then(|pod| pod.containers.into_iter().next())
            .and_then(|container| container.image);
        if image.as_deref() != Some(last[0].by_digest().as_str()) {
            let promotion = Api::<hoist::api::Promotion>::namespaced(client.clone(), &namespace)
                .get(&world::promotion_name(
                    &environment,
                    size.versions - 1,
                    size.versions,
                ))
                .await?;
            bail!(
                "{namespace}/{name} runs {image:?}, not {}; the last Promotion:\n{}",
                last[0].by_digest(),
                serde_json::to_string_pretty(&promotion)?
            );
        }
    }
    Ok(())
}

/// The status of a Promotion and of an Environment as the operator wrote them.
struct Statuses {
    promotion: Value,
    environment: Value,
}

/// The status of a Promotion and an Environment as the operator wrote them,
/// for the bare writes to write the same amount.
async fn status_templates(client: &Client, size: &Size) -> Result<Statuses> {
    let (namespace, environment) = size.environment(0);
    let promotions: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &namespace,
        &kube::api::ApiResource::erase::<hoist::api::Promotion>(&()),
    );
    let promotion = promotions
        .get(&world::promotion_name(
            &environment,
            size.versions - 1,
            size.versions,
        ))
        .await?;
    let environments: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &namespace,
        &kube::api::ApiResource::erase::<hoist::api::Environment>(&()),
    );
    let environment = environments.get(&environment).await?;
    Ok(Statuses {
        promotion: promotion.data["status"].clone(),
        environment: environment.data["status"].clone(),
    })
}

/// What a perfect operator writes for one promotion, issued directly: the
/// Promotion is created as for the operator, then both Deployments are
/// pinned; once the Deployment controller has rolled both out (what the
/// operator waits for, seen by a watch: no requests), the Promotion's
/// status is set to Succeeded and the Environment's status records the
/// release.
async fn bare_promotion(
    cluster: &Cluster,
    (local, rollouts): (&Client, &Tracker),
    (namespace, environment): (&str, &str),
    (version, versions): (usize, usize),
    sequence: usize,
    images: &[PushedImage; 2],
    statuses: &Statuses,
) -> Result<()> {
    let name = format!("{environment}-{sequence}");
    let client = &cluster.client;
    let mut promotion = world::promotion(
        BARE_GROUP,
        environment,
        (version, versions),
        &cluster.requested_by,
    );
    promotion["metadata"]["name"] = json!(name);
    world::create(client, namespace, promotion).await?;
    let application = world::application(environment);
    let artifact = world::artifact_name(environment, version, versions);
    let hash = format!("sha256:{sequence:064x}");
    let mut pinned = Vec::new();
    for (component, container, image) in [("backend", "app", &images[0]), ("frontend", "web", &images[1])] {
        let deployment = format!("{application}-{component}");
        let pin = world::bare_pin(
            namespace,
            &deployment,
            container,
            &image.by_digest(),
            &artifact,
            &hash,
        );
        let written = world::apply(local, namespace, &pin, false).await?;
        pinned.push((deployment, written.metadata.generation.unwrap_or(0)));
    }
    for (deployment, generation) in pinned {
        rollouts
            .wait(
                &rollout_key(namespace, &deployment, generation),
                PROMOTION_TIMEOUT,
            )
            .await?;
    }
    let status = json!({"apiVersion": format!("{BARE_GROUP}/v1alpha1"), "kind": "Promotion",
                        "metadata": {"name": name, "namespace": namespace},
                        "status": statuses.promotion});
    world::apply(client, namespace, &status, true).await?;
    let mut environment_status = statuses.environment.clone();
    environment_status["summary"] = json!(format!("{application}@1.0.{version} #{sequence}"));
    let status = json!({"apiVersion": format!("{BARE_GROUP}/v1alpha1"), "kind": "Environment",
                        "metadata": {"name": environment, "namespace": namespace},
                        "status": environment_status});
    world::apply(client, namespace, &status, true).await?;
    Ok(())
}

/// Restarts the operator on the settled store: a full resync.
async fn idle_resync(
    args: &Args,
    kubeconfig: &Path,
    registry: &str,
    name: &str,
    operator: Operator,
) -> Result<Resync> {
    wait_quiet(&operator, Duration::from_secs(2)).await?;
    operator.stop().await?;
    // A new process: its request counters start at zero.
    let mut operator = start_operator(args, kubeconfig, registry, &format!("{name}-resync"))?;
    let ready = operator.wait_ready(WAIT).await?;
    let rss_ready = operator.memory()?;
    wait_quiet(&operator, Duration::from_secs(3)).await?;
    let settled = operator.uptime();
    let rss = operator.memory()?;
    let reconciles = operator.metric("hoist_reconciliations_total").await?;
    let lookups = operator.metric("hoist_registry_lookups_total").await?;
    let requests = operator.requests().await?;
    operator.stop().await?;
    let writes: Vec<String> = requests
        .iter()
        // Reads, and a review (the operator asks who it is), store nothing.
        .filter(|(kind, _)| {
            !["get ", "list ", "watch "]
                .iter()
                .any(|verb| kind.starts_with(verb))
                && !kind.ends_with("reviews")
        })
        .map(|(kind, count)| format!("{kind} ×{count}"))
        .collect();
    Ok(Resync {
        ready,
        settled,
        rss_ready,
        rss,
        reconciles,
        lookups,
        requests,
        writes,
    })
}

/// 1,000 Artifacts over a few hundred distinct references, on a store of their own.
async fn registry_section(args: &Args, registry: &str) -> Result<RegistryReport> {
    progress("registry: pushing images");
    let images = push_images("registry", args.registry_references / 2, 1000).await?;
    let cluster = Cluster::new(args.kubeconfig.as_deref(), "registry", Duration::ZERO).await?;
    let outcome = registry_lookups(args, registry, &cluster, &images).await;
    cluster.clean_up().await?;
    outcome
}

async fn registry_lookups(
    args: &Args,
    registry: &str,
    cluster: &Cluster,
    images: &[[PushedImage; 2]],
) -> Result<RegistryReport> {
    let client = cluster.client.clone();
    let namespace = format!("{}registry", cluster.prefix);
    populate(cluster, vec![vec![world::namespace(&namespace)]]).await?;
    let ready_artifacts = Tracker::start(
        world::api(&client, "hoist.dev", "Artifact", "artifacts"),
        observe::ready,
    );
    let mut operator = start_operator(args, &cluster.kubeconfig, registry, "registry")?;
    operator.wait_ready(WAIT).await?;
    let before = operator.metric("hoist_registry_lookups_total").await?;
    let artifacts: Vec<(String, Value)> = (0..args.registry_artifacts)
        .map(|index| {
            let [backend, frontend] = &images[index % images.len()];
            let mut artifact = world::artifact(&format!("env-{index:04}"), (0, 1), backend, frontend);
            artifact["metadata"]["name"] = json!(format!("release-{index:04}"));
            (namespace.clone(), artifact)
        })
        .collect();
    let started = Instant::now();
    world::create_all(&client, artifacts).await?;
    ready_artifacts.wait_count(args.registry_artifacts, WAIT).await?;
    let wall = started.elapsed();
    let lookups = operator.metric("hoist_registry_lookups_total").await? - before;

    // Touch every Artifact: each is reconciled again and must not be looked up again.
    let reconciles_before = operator.metric("hoist_reconciliations_total").await?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &namespace,
        &kube::api::ApiResource::erase::<hoist::api::Artifact>(&()),
    );
    for index in 0..args.registry_artifacts {
        let touch = json!({"metadata": {"annotations": {"bench.hoist.dev/touched": "yes"}}});
        api.patch(
            &format!("release-{index:04}"),
            &PatchParams::default(),
            &Patch::Merge(&touch),
        )
        .await?;
    }
    let deadline = Instant::now() + WAIT;
    let wanted = reconciles_before + args.registry_artifacts as f64;
    while operator.metric("hoist_reconciliations_total").await? < wanted {
        if Instant::now() > deadline {
            bail!(
                "the touched Artifacts were not reconciled: {} of {wanted}",
                operator.metric("hoist_reconciliations_total").await?
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let relookups = operator.metric("hoist_registry_lookups_total").await? - before - lookups;
    operator.stop().await?;
    progress(&format!(
        "registry: {} Artifacts, {lookups} lookups in {wall:.1?}, {relookups} on re-reconcile",
        args.registry_artifacts
    ));
    Ok(RegistryReport {
        artifacts: args.registry_artifacts,
        references: images.len() * 2,
        lookups,
        relookups,
        wall,
    })
}
