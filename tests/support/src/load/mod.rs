//! Attribution under load: many concurrent requests through one client, every event of every
//! request checked against the server's view. Shared by `tests/attribution.rs`,
//! `tests/stress.rs`, `tests/http2.rs` and `examples/stress.rs`.

mod check;
mod h2;
mod report;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Request;
use http_body_util::BodyExt;
use httptrace::{ClientTrace, Event};
use tower::ServiceExt;

use crate::clients::{Body, SendTraced};
use crate::servers::Server;
use check::{Checker, Done};

pub use h2::{run_h2_load, H2Report, STALL};
pub use report::{LoadReport, Violations};

/// A small xorshift generator: the same seed gives the same numbers.
pub fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The events one request's hooks received, in delivery order.
pub type EventLog = Arc<Mutex<Vec<Event>>>;

/// Records into `log`, after sleeping a little now and then: a slow hook delays the task it runs
/// on (the request's, or the connection's).
pub struct Jittery {
    /// Where the events go.
    pub log: EventLog,
    /// Seeds the jitter (with the time of each event).
    pub seed: u64,
}

impl httptrace::Hooks for Jittery {
    fn on_event(&self, event: &Event) {
        let mut r = rng(self.seed ^ event.at().elapsed().subsec_nanos() as u64);
        if r() % 4 == 0 {
            std::thread::sleep(Duration::from_micros(r() % 80));
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

/// The shape of a load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// How many requests in all.
    pub requests: u64,
    /// How many in flight at a time.
    pub concurrency: usize,
    /// The server waits 0..=`max_delay_ms` before each response.
    pub max_delay_ms: u64,
    /// One request in `close_one_in` asks the server to close its connection after it.
    pub close_one_in: u64,
    /// The run stops (and reports a violation) past this.
    pub time_limit: Duration,
    /// Sabotage, to show the checks catch it: one request in `mix_logs_one_in` (0: none) records
    /// its events into the previous request's log instead of its own.
    pub mix_logs_one_in: u64,
}

impl LoadConfig {
    /// `requests` GETs, `concurrency` at a time, within `time_limit`: server delays of 0..=3 ms,
    /// one request in 20 asking the server to close its connection, no sabotage.
    pub fn jittered(requests: u64, concurrency: usize, time_limit: Duration) -> LoadConfig {
        LoadConfig {
            requests,
            concurrency,
            max_delay_ms: 3,
            close_one_in: 20,
            time_limit,
            mix_logs_one_in: 0,
        }
    }
}

/// The core of every request of a load run, in order: what remains without its own dial, the
/// connection's close and its return to the pool.
pub const LOAD_CORE: &[&str] = &[
    "GetConn",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
];

/// Sends `cfg.requests` GETs through `client` to `server`, `cfg.concurrency` at a time, with
/// random server delays, hook jitter and some `close=1`, and checks every event of every request
/// against the server's view. `progress` is told the number of requests done so far.
pub async fn run_load<S>(
    client: &S,
    server: &Server,
    cfg: &LoadConfig,
    mut progress: impl FnMut(u64),
) -> LoadReport
where
    S: SendTraced + Send + Sync + 'static,
{
    let started = Instant::now();
    let mut checker = Checker::new(server.addr);
    let mut ids = 0..cfg.requests;
    let mut running = tokio::task::JoinSet::new();
    let mut done = 0;
    let mut prev_log: Option<EventLog> = None;
    loop {
        while running.len() < cfg.concurrency {
            let Some(id) = ids.next() else { break };
            let log = EventLog::default();
            let sabotage = cfg.mix_logs_one_in > 0 && id % cfg.mix_logs_one_in == 1;
            let hook_log = match (&prev_log, sabotage) {
                (Some(prev), true) => prev.clone(),
                _ => log.clone(),
            };
            prev_log = Some(log.clone());
            let client = client.clone();
            let (max_delay, close_one_in) = (cfg.max_delay_ms + 1, cfg.close_one_in.max(1));
            let url = server.url("/");
            running.spawn(async move {
                let mut r = rng(id + 1);
                let delay = r() % max_delay;
                let close = r() % close_one_in == 0;
                let url = format!("{url}?delay_ms={delay}&close={}", close as u8);
                let trace = ClientTrace::new(Jittery {
                    log: hook_log,
                    seed: id,
                });
                let mut req = Request::get(url).body(Body::default()).unwrap();
                req.headers_mut().insert("x-req", id.into());
                req.extensions_mut().insert(trace);
                let res = client
                    .oneshot(req)
                    .await
                    .map_err(|e| format!("request {id} failed: {e:?}"))?;
                let header = |k: &str| res.headers().get(k).and_then(|v| v.to_str().ok());
                if header("x-req") != Some(id.to_string().as_str()) {
                    return Err(format!(
                        "request {id}: the server echoed {:?}",
                        header("x-req")
                    ));
                }
                let peer = header("x-peer").and_then(|p| p.parse().ok()).unwrap();
                let server_conn = header("x-conn").and_then(|c| c.parse().ok()).unwrap();
                res.into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("request {id}: body failed: {e:?}"))?;
                Ok(Done {
                    id,
                    close,
                    peer,
                    server_conn,
                    log,
                })
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        done += 1;
        progress(done);
        match joined.expect("request task") {
            Ok(d) => checker.add(d),
            Err(msg) => checker.report.violations.add(|v| &mut v.unexpected, msg),
        }
        if started.elapsed() > cfg.time_limit {
            checker.report.violations.add(
                |v| &mut v.unexpected,
                format!(
                    "time limit {:?} reached after {done} requests",
                    cfg.time_limit
                ),
            );
            running.abort_all();
            break;
        }
    }
    let server_conns = server.conns.load(Ordering::SeqCst);
    checker.finish(server_conns, started).await
}
