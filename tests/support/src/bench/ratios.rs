//! The interleaved measurement of `shared/BENCHMARKING.md`, shared by `benches/overhead.rs`,
//! `benches/http2.rs` and `benches/handshake.rs`: every round runs each variant in turn, and
//! each variant's rounds are compared with the bare run of the same round.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the interleaved ratios were asked for (`--ratios`, or `HTTPTRACE_RATIOS` set) instead
/// of criterion.
pub fn requested() -> bool {
    std::env::args().any(|a| a == "--ratios") || std::env::var_os("HTTPTRACE_RATIOS").is_some()
}

/// `--profile ID`: the variant to run alone, for a profiler.
pub fn profile_requested() -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != "--profile");
    args.next()?;
    Some(args.next().unwrap_or_default())
}

/// Whether every round's µs/request is to be printed (`HTTPTRACE_VERBOSE` set).
pub fn verbose() -> bool {
    std::env::var_os("HTTPTRACE_VERBOSE").is_some()
}

/// The positive number in the environment variable `name`, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`), or `?`.
pub fn allowed_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "?".into())
}

/// CPU time of this process so far: the sum over its threads of `/proc/self/task/*/schedstat`
/// (nanoseconds on CPU). `None` where that isn't readable.
pub fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue;
        }; // thread just exited
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Per variant and round: wall and CPU µs per request.
#[derive(Default, Clone)]
pub struct Series {
    /// Wall µs per request, by round.
    pub wall: Vec<f64>,
    /// Process CPU µs per request, by round (NaN where not readable).
    pub cpu: Vec<f64>,
}

impl Series {
    /// One measurement of `n` requests: their wall time, and the process CPU time since `cpu`.
    pub fn push(&mut self, wall: Duration, cpu: Option<Duration>, n: u64) {
        let cpu = process_cpu().zip(cpu).map(|(now, before)| now - before);
        self.wall.push(wall.as_secs_f64() * 1e6 / n as f64);
        self.cpu
            .push(cpu.map_or(f64::NAN, |c| c.as_secs_f64() * 1e6 / n as f64));
    }

    /// Every round's wall µs/request, with `decimals` decimals, separated by spaces.
    pub fn rounds(&self, decimals: usize) -> String {
        let rounds: Vec<String> = self
            .wall
            .iter()
            .map(|w| format!("{w:.decimals$}"))
            .collect();
        rounds.join(" ")
    }
}

/// `rounds` rounds that each run every one of `stacks` in turn (A B C ... A B C ...), `n`
/// requests by `run`; per stack, the series of its rounds.
pub async fn interleave<S>(
    stacks: &mut [S],
    rounds: u64,
    n: u64,
    mut run: impl AsyncFnMut(&mut S, u64) -> Duration,
) -> Vec<Series> {
    let mut series = vec![Series::default(); stacks.len()];
    for _ in 0..rounds {
        for (i, stack) in stacks.iter_mut().enumerate() {
            let cpu = process_cpu();
            let wall = run(stack, n).await;
            series[i].push(wall, cpu, n);
        }
    }
    series
}

/// The median of `v`.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of per-round ratios, and their min–max; shown as `median [min–max]`.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// The median ratio.
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ratio { median, min, max } = self;
        write!(f, "{median:.3} [{min:.3}–{max:.3}]")
    }
}

/// Median per-round ratio to the bare run of the same round, and its min–max.
pub fn ratio(x: &[f64], bare: &[f64]) -> Ratio {
    let r: Vec<f64> = x.iter().zip(bare).map(|(x, b)| x / b).collect();
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ratio {
        median: median(&r),
        min,
        max,
    }
}

/// Median per-round difference to the bare run of the same round.
pub fn delta(x: &[f64], bare: &[f64]) -> f64 {
    let d: Vec<f64> = x.iter().zip(bare).map(|(x, b)| x - b).collect();
    median(&d)
}

/// `n` calls of `one` on clones of `stack`, `in_flight` at a time (a task each, all sharing the
/// stack's pool); the wall time they took.
pub async fn concurrently<S, F, Fut>(stack: &S, n: u64, in_flight: u64, one: F) -> Duration
where
    S: Clone + Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = S> + Send,
{
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight.min(n) {
        let (mut stack, next, one) = (stack.clone(), next.clone(), one.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                stack = one(stack).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("request task");
    }
    start.elapsed()
}
