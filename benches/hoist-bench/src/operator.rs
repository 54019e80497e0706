//! The operator as a process of its own, so its resident memory is its own:
//! this binary started again as `hoist-bench operator`, which runs exactly
//! what `hoist controller` runs, against the stand-in through a kubeconfig;
//! or as `hoist-bench agent`, which runs what `hoist agent` runs in a
//! workload cluster.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The client name the operator's requests carry in the stand-in's log
/// (what `--trace` prints).
pub const USER: &str = "hoist";

/// The workload cluster's name: the `spec.cluster` of the Environments of
/// a two-cluster run.
pub const CLUSTER: &str = "workload";

/// The agent's user on a hub stand-in: the ServiceAccount
/// `hoist-agent-<cluster>` the chart creates per agent, so the chart's
/// `hoist-agents` admission policy holds its writes to its own cluster's.
pub const AGENT_USER: &str = "system:serviceaccount:default:hoist-agent-workload";

/// What the process runs.
pub enum Role<'a> {
    /// `hoist controller`.
    Operator,
    /// `hoist agent --cluster` [`CLUSTER`], reaching the hub with `hub_kubeconfig`.
    Agent { hub_kubeconfig: &'a Path },
}

pub struct Operator {
    child: Child,
    pid: u32,
    health: SocketAddr,
    heap_file: PathBuf,
    started: Instant,
}

/// A port nobody listens on now; the operator binds it a moment later.
fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

impl Operator {
    /// Starts the operator (or agent) with `kubeconfig`, logging to `log`;
    /// `retention_interval` is its `--retention-interval` unless the default.
    pub fn start(
        role: &Role<'_>,
        kubeconfig: &Path,
        registry: &str,
        registry_concurrency: usize,
        retention_interval: Option<Duration>,
        log: &Path,
    ) -> Result<Self> {
        let health = free_port()?;
        let heap_file = crate::heap::path_for(log);
        let _ = std::fs::remove_file(&heap_file);
        let output = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let errors = output.try_clone()?;
        let mut command = Command::new(std::env::current_exe().context("locating the bench binary")?);
        match role {
            Role::Operator => command.arg("operator"),
            Role::Agent { hub_kubeconfig } => command
                .arg("agent")
                .arg("--hub-kubeconfig")
                .arg(hub_kubeconfig)
                .arg(format!("--cluster={CLUSTER}")),
        };
        if let Some(interval) = retention_interval {
            command.arg(format!("--retention-interval={}ms", interval.as_millis()));
        }
        let child = command
            .arg(format!("--health-address={health}"))
            .arg(format!("--insecure-registry={registry}"))
            .arg(format!("--registry-concurrency={registry_concurrency}"))
            .arg("--heap-file")
            .arg(&heap_file)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .kill_on_drop(true)
            .spawn()
            .context("starting the operator process")?;
        let pid = child.id().context("the operator exited at once")?;
        Ok(Operator {
            child,
            pid,
            health,
            heap_file,
            started: Instant::now(),
        })
    }

    /// Waits until `/readyz` answers 200 (every cache listed once); returns
    /// the time since the process started.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = http_get(self.health, "/readyz").await {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the operator exited with {status} before it was ready");
            }
            if Instant::now() > deadline {
                bail!("the operator was not ready within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Time since the process started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Resident memory and live heap bytes (the latter as published up to
    /// 100 ms ago).
    pub fn memory(&self) -> Result<crate::report::Memory> {
        Ok(crate::report::Memory {
            rss: self.rss()?,
            heap: crate::heap::read(&self.heap_file).unwrap_or(0),
            code: proc_status_kib(self.pid, "RssFile:")? * 1024,
        })
    }

    /// CPU time the operator has used so far.
    pub fn cpu(&self) -> Result<Duration> {
        cpu_time(self.pid)
    }

    /// Resident memory in bytes (`VmRSS` of /proc/<pid>/status).
    pub fn rss(&self) -> Result<u64> {
        proc_status_kib(self.pid, "VmRSS:").map(|kib| kib * 1024)
    }

    /// The sum of every sample of a Prometheus metric (all label sets).
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let (code, body) = http_get(self.health, "/metrics").await?;
        if code != 200 {
            bail!("/metrics answered {code}");
        }
        Ok(body
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// The operator's API requests so far, by `verb resource`, from its
    /// own client's `hoist_api_requests_total` (so they are counted the
    /// same way on the stand-in and on a real cluster).
    pub async fn requests(&self) -> Result<BTreeMap<String, usize>> {
        let (code, body) = http_get(self.health, "/metrics").await?;
        if code != 200 {
            bail!("/metrics answered {code}");
        }
        let mut requests = BTreeMap::new();
        for line in body.lines() {
            let Some(labels) = line.strip_prefix("hoist_api_requests_total{") else {
                continue;
            };
            let Some((labels, value)) = labels.rsplit_once("} ") else {
                continue;
            };
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
                    .unwrap_or_default()
                    .to_owned()
            };
            let count = value.parse::<f64>().unwrap_or(0.0) as usize;
            *requests
                .entry(format!("{} {}", label("verb"), label("resource")))
                .or_default() += count;
        }
        Ok(requests)
    }

    /// Stops the operator with SIGTERM, as Kubernetes stops a pod.
    pub async fn stop(mut self) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("the operator did not stop within 30s")??;
        Ok(())
    }
}

/// CPU time (user and system) a process has used so far, from
/// /proc/<pid>/stat, in clock ticks of `getconf CLK_TCK`.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count from after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("malformed /proc/{pid}/stat"))
    };
    // utime and stime are fields 14 and 15 of stat(5), 12th and 13th after the name.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks_per_second()))
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// A one-shot HTTP/1.1 GET: the status code and body.
async fn http_get(address: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("not an HTTP response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    Ok((code, body))
}

/// Where the operator's logs of one run go.
pub fn log_path(name: &str) -> PathBuf {
    temp_path(&format!("{name}.log"))
}

/// A file of this run in the temporary directory: runs side by side
/// (the bench's own tests) keep their kubeconfigs and logs apart.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hoist-bench-{}-{name}", std::process::id()))
}
