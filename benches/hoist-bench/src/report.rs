//! The printed report: Markdown tables, ready to paste into the README.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::world::{RETAINED, RETAINED_MIN_AGE, Size};

const MIB: f64 = (1 << 20) as f64;
/// What the issue asks for.
const TARGET_RATIO: f64 = 1.5;
const TARGET_P99: Duration = Duration::from_millis(50);
const TARGET_RSS_MIB: f64 = 64.0;

pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Latencies(samples)
    }

    /// The nearest-rank percentile.
    pub fn percentile(&self, percent: usize) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = (percent * self.0.len()).div_ceil(100).max(1);
        self.0[rank.min(self.0.len()) - 1]
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn triple(&self) -> String {
        format!(
            "{} / {} / {}",
            ms(self.percentile(50)),
            ms(self.percentile(90)),
            ms(self.percentile(99))
        )
    }
}

pub struct LevelReport {
    pub factor: usize,
    pub size: Size,
    pub populated: Duration,
    pub ready: Duration,
    pub settled: Duration,
    pub rss_synced: Memory,
    pub rss_after: Memory,
    pub bulk: usize,
    pub bulk_time: Duration,
    pub operator: Latencies,
    /// The operator's own part of each timed promotion: from the
    /// Deployment controller having rolled out both pins to `Succeeded`.
    pub overhead: Latencies,
    pub bare: Latencies,
    /// Operator requests during the timed promotions, by kind.
    pub requests: BTreeMap<String, usize>,
    pub cpu: Cpu,
    pub lookups: f64,
    /// With `--retention`: once its passes deleted what they would.
    pub retained: Option<Retained>,
    pub resync: Option<Resync>,
}

/// The operator after retention's passes, with `--retention`.
pub struct Retained {
    pub memory: Memory,
    /// The operator's `--retention-interval`.
    pub interval: Duration,
    /// Artifacts and Promotions of the run left in the API.
    pub artifacts: usize,
    pub promotions: usize,
    /// `hoist_retention_deletions_total`.
    pub deletions: f64,
}

/// The operator's memory at one moment.
#[derive(Clone, Copy)]
pub struct Memory {
    /// Resident set size (VmRSS).
    pub rss: u64,
    /// Bytes allocated and not freed: the data, without the allocator's
    /// free space and fragmentation.
    pub heap: u64,
    /// The resident pages of files (RssFile): the program's code and
    /// read-only data, as large as the build makes them (a debug build's
    /// are several times a release build's), whatever the data.
    pub code: u64,
}

impl Memory {
    fn show(&self) -> String {
        format!("{} (heap {})", mib(self.rss), mib(self.heap))
    }

    /// [`Memory::show`] with the program's own pages.
    fn show_code(&self) -> String {
        format!(
            "{} (heap {}, code {})",
            mib(self.rss),
            mib(self.heap),
            mib(self.code)
        )
    }
}

/// CPU time used during the timed promotions.
pub struct Cpu {
    /// By the operator process, during the operator's promotions.
    pub operator: Duration,
    /// By the bench process (the API stand-in and the bench's own watches),
    /// during the operator's promotions; `None` against a real cluster,
    /// whose API server runs elsewhere.
    pub standin: Option<Duration>,
    /// By the bench process during the bare write sequences.
    pub standin_bare: Option<Duration>,
}

impl LevelReport {
    fn ratio(&self, percent: usize) -> f64 {
        self.operator.percentile(percent).as_secs_f64()
            / self.bare.percentile(percent).as_secs_f64().max(1e-9)
    }
}

pub struct Resync {
    pub ready: Duration,
    pub settled: Duration,
    pub rss_ready: Memory,
    pub rss: Memory,
    pub reconciles: f64,
    pub lookups: f64,
    pub requests: BTreeMap<String, usize>,
    pub writes: Vec<String>,
}

pub struct RegistryReport {
    pub artifacts: usize,
    pub references: usize,
    pub lookups: f64,
    pub relookups: f64,
    pub wall: Duration,
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

fn secs(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("?".to_owned(), |kib| {
            format!("{:.1} GiB", kib / (1024.0 * 1024.0))
        });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|model| model.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    format!("{cores} cores (nproc), {memory} RAM, {cpu}")
}

fn kinds(requests: &BTreeMap<String, usize>, per: usize) -> String {
    requests
        .iter()
        .map(|(kind, count)| format!("{kind} {:.2}", *count as f64 / per.max(1) as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(
    levels: &[LevelReport],
    registry: &RegistryReport,
    registry_concurrency: usize,
    total: Duration,
    api_server: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}. API server: {api_server}. Whole run: {}.\n",
        machine(),
        secs(total)
    );
    let _ = writeln!(
        out,
        "| size | Artifacts / Environments / Promotions | timed | operator p50 / p90 / p99 (ms) | bare p50 / p90 / p99 (ms) | operator/bare p50, p99 | operator overhead p50 / p90 / p99 (ms) | RSS (live heap) synced | RSS (live heap) after promotions | ready / settled after start |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for level in levels {
        let _ = writeln!(
            out,
            "| {}× | {} / {} / {} | {} | {} | {} | {:.2}, {:.2} | {} | {} | {} | {} / {} |",
            level.factor,
            level.size.artifacts(),
            level.size.environments,
            level.size.promotions(),
            level.operator.len(),
            level.operator.triple(),
            level.bare.triple(),
            level.ratio(50),
            level.ratio(99),
            level.overhead.triple(),
            level.rss_synced.show(),
            level.rss_after.show(),
            secs(level.ready),
            secs(level.settled),
        );
    }
    let _ = writeln!(out);
    for level in levels {
        let _ = writeln!(
            out,
            "- {}×: store filled in {}; {} registry lookups to resolve {} Artifacts; {} bulk promotions before the timed ones took {}; operator requests per timed promotion: {}; CPU per timed promotion: operator {}{}.",
            level.factor,
            secs(level.populated),
            level.lookups,
            level.size.artifacts(),
            level.bulk,
            secs(level.bulk_time),
            kinds(&level.requests, level.operator.len()),
            per_promotion(level.cpu.operator, level.operator.len()),
            match (level.cpu.standin, level.cpu.standin_bare) {
                (Some(standin), Some(bare)) => format!(
                    ", API stand-in and bench {} (bare: {})",
                    per_promotion(standin, level.operator.len()),
                    per_promotion(bare, level.bare.len())
                ),
                _ => " (the API server's is not measured)".to_string(),
            },
        );
    }
    for level in levels {
        if let Some(retained) = &level.retained {
            let _ = writeln!(
                out,
                "- {}× with retention (every Environment keeps {RETAINED} Artifacts per application, {RETAINED} finished Promotions, none younger than {RETAINED_MIN_AGE}, and {RETAINED} history entries; Artifacts published release by release; a pass every {}): RSS {} after the promotions, {} once retention deleted {} objects; {} of {} Artifacts and {} of {} Promotions left. Code is the resident pages of the program's file (RssFile).",
                level.factor,
                secs(retained.interval),
                level.rss_after.show_code(),
                retained.memory.show_code(),
                retained.deletions,
                retained.artifacts,
                level.size.artifacts(),
                retained.promotions,
                level.size.promotions(),
            );
        }
    }
    let _ = writeln!(
        out,
        "- bare, per promotion: create promotions 1, patch deployments 2 (server-side apply), then (seen by a watch) both Deployments rolled out by the Deployment controller as the operator judges it, then patch promotions/status 1, patch environments/status 1.\n- operator overhead: from the Deployment controller having rolled out both pins (seen by a watch) to the Promotion seen `Succeeded`: the operator's own part of the latency, without the controller's.\n"
    );

    let largest = levels.iter().max_by_key(|level| level.factor);
    if let Some(resync) = largest.and_then(|level| level.resync.as_ref().map(|r| (level, r))) {
        let (level, resync) = resync;
        let reads: usize = resync
            .requests
            .iter()
            .filter(|(kind, _)| {
                ["get ", "list ", "watch "]
                    .iter()
                    .any(|verb| kind.starts_with(verb))
            })
            .map(|(_, count)| count)
            .sum();
        let _ = writeln!(
            out,
            "Idle resync (operator restarted on the settled {}× store): {} writes, {} reads ({}); {} reconciles, {} registry lookups; ready after {}, quiet after {}; RSS {} at ready, {} after.\n",
            level.factor,
            resync.writes.len(),
            reads,
            kinds(&resync.requests, 1),
            resync.reconciles,
            resync.lookups,
            secs(resync.ready),
            secs(resync.settled),
            resync.rss_ready.show(),
            resync.rss.show(),
        );
        if !resync.writes.is_empty() {
            let _ = writeln!(out, "Writes: {}\n", resync.writes.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "Registry: {} Artifacts over {} distinct references: {} lookups, {} on re-reconcile of all of them; all Ready {} after creation; {} concurrent lookups per registry.\n",
        registry.artifacts,
        registry.references,
        registry.lookups,
        registry.relookups,
        secs(registry.wall),
        registry_concurrency,
    );

    let _ = writeln!(out, "| target | measured | |");
    let _ = writeln!(out, "|---|---|---|");
    if let Some(level) = largest {
        let ratio = level.ratio(50);
        let _ = writeln!(
            out,
            "| operator/bare ≤ {TARGET_RATIO} | {ratio:.2} (p50, {}×) | {} |",
            level.factor,
            met(ratio <= TARGET_RATIO)
        );
        let p99 = level.operator.percentile(99);
        let _ = writeln!(
            out,
            "| p99 ≤ {} ms | {} ms ({}×) | {} |",
            TARGET_P99.as_millis(),
            ms(p99),
            level.factor,
            met(p99 <= TARGET_P99)
        );
        let mut most = level.rss_synced.rss.max(level.rss_after.rss);
        let mut with_retention = "";
        let mut measured = String::new();
        if let Some(retained) = &level.retained {
            let moments = [level.rss_synced, level.rss_after, retained.memory]
                .into_iter()
                .chain(level.resync.as_ref().map(|resync| resync.rss_ready));
            let largest = moments.max_by_key(|memory| memory.rss).unwrap_or(retained.memory);
            most = largest.rss;
            with_retention = ", retention on (the most of synced, after promotions, after retention and at ready after a restart)";
            measured = format!(" ({} of it code)", mib(largest.code));
        }
        let rss = most as f64 / MIB;
        let _ = writeln!(
            out,
            "| RSS ≤ {TARGET_RSS_MIB} MiB at {}/{}/{}{with_retention} | {rss:.1} MiB{measured} | {} |",
            level.size.artifacts(),
            level.size.environments,
            level.size.promotions(),
            met(rss <= TARGET_RSS_MIB)
        );
        if let Some(resync) = &level.resync {
            let _ = writeln!(
                out,
                "| 0 writes on idle resync | {} | {} |",
                resync.writes.len(),
                met(resync.writes.is_empty())
            );
        }
    }
    let one_each = registry.lookups == registry.references as f64 && registry.relookups == 0.0;
    let _ = writeln!(
        out,
        "| 1 registry lookup per distinct reference | {} for {}, {} on re-reconcile | {} |",
        registry.lookups,
        registry.references,
        registry.relookups,
        met(one_each)
    );
    out
}

/// A duration spread over `count` promotions, in milliseconds.
fn per_promotion(total: Duration, count: usize) -> String {
    format!("{:.2} ms", total.as_secs_f64() * 1000.0 / count.max(1) as f64)
}
