//! The HTTP/2 load: requests as streams of h2c connections, each request checked as it ends.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use httptrace::Event;

use super::rng;
use crate::clients::{request, SendTraced};
use crate::events::{names, out_of_time_order, unpaired};
use crate::h2::{at, fetch, own_of, Answered, STREAM};

/// What [`run_h2_load`] found.
#[derive(Debug, Default)]
pub struct H2Report {
    /// Requests answered.
    pub ok: u64,
    /// Of those, traced (each checked).
    pub traced: u64,
    /// Requests that failed (a stream refused by a GOAWAY: hyper-util doesn't retry it).
    pub failed: u64,
    /// Requests with no answer after `STALL` (dropped then): hyper-util's client, bare, stalls
    /// the same way now and then under GOAWAYs (seen: 68 of 1,000,000 never answered).
    pub stalled: u64,
    /// Connections that carried the answered requests.
    pub connections: usize,
    /// Events checked.
    pub events: u64,
    /// How many checks failed.
    pub violations: u64,
    /// The first violations, described.
    pub first_violations: Vec<String>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl std::fmt::Display for H2Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answered ({} traced), {} failed (streams refused by a GOAWAY), {} stalled, {} \
             events checked, on {} connections, in {:.1?}; violations: {}",
            self.ok,
            self.traced,
            self.failed,
            self.stalled,
            self.events,
            self.connections,
            self.elapsed,
            self.violations
        )?;
        for v in &self.first_violations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    report: H2Report,
    streams: HashSet<(u64, u32)>,
    conns: BTreeSet<u64>,
}

impl Tally {
    fn violation(&mut self, v: String) {
        self.report.violations += 1;
        if self.report.first_violations.len() < 10 {
            self.report.first_violations.push(v);
        }
    }

    /// Checks one request: one terminal event, every Start paired, a stream no other request
    /// has; and, answered, its whole sequence with its own first response byte.
    fn check(&mut self, events: &[Event], body: Result<String, String>, seen: &Answered) {
        self.report.events += events.len() as u64;
        if let Some(problem) = unpaired(events) {
            self.violation(problem);
        }
        if let Some(problem) = out_of_time_order(events) {
            self.violation(problem);
        }
        let terminal = names(events)
            .into_iter()
            .filter(|n| matches!(*n, "ResponseBodyDone" | "RequestFailed" | "RequestCanceled"))
            .count();
        if terminal != 1 {
            self.violation(format!("{terminal} terminal events: {:?}", names(events)));
        }
        let got = events.iter().find_map(|e| match e {
            Event::GotConn(g) => Some(g.clone()),
            _ => None,
        });
        if let Some(g) = &got {
            if let Some(id) = g.http2.as_ref().and_then(|h| h.stream_id) {
                if !self.streams.insert((g.conn_id, id)) {
                    self.violation(format!("stream {id} of #{} given twice", g.conn_id));
                }
            }
        }
        let path = match body {
            Ok(path) => path,
            Err(e) => {
                self.report.failed += 1;
                if e != "client error (SendRequest)" {
                    self.violation(format!("failed with {e}"));
                }
                return;
            }
        };
        self.report.ok += 1;
        self.report.traced += 1;
        let Some(got) = got else {
            return self.violation(format!("{path}: no GotConn"));
        };
        self.conns.insert(got.conn_id);
        if own_of(names(events)) != STREAM {
            return self.violation(format!("{path}: {:?}", names(events)));
        }
        let Some(served) = seen.lock().unwrap().remove(&path) else {
            return self.violation(format!("{path}: the server didn't answer it"));
        };
        let answered_at = served.answered;
        let stream = got.http2.as_ref().and_then(|h| h.stream_id);
        let port = got.local_addr.map(|a| a.port());
        if (port, stream) != (Some(served.peer_port), Some(served.stream_id)) {
            self.violation(format!(
                "{path}: GotConn says port {port:?} stream {stream:?}, the server saw it on port \
                 {} stream {}",
                served.peer_port, served.stream_id
            ));
        }
        let first_byte = at(events, "GotFirstResponseByte");
        if first_byte < answered_at {
            self.violation(format!(
                "{path}: a byte of another stream, before its answer"
            ));
        }
        if first_byte > at(events, "ResponseHeaders") {
            self.violation(format!("{path}: its first byte after its head"));
        }
    }
}

/// How long a request may go unanswered before the load gives up on it.
pub const STALL: Duration = Duration::from_secs(10);

/// `requests` GETs, `concurrency` at a time, one in `traced_every` with its own trace (the
/// others untraced, through the same client), through `client` to the server at `addr`
/// (`h2_server`), each delayed 0..=3 ms by the server; every traced request is checked as it
/// ends (see `Tally::check`: its stream is the one the server saw it on), and `progress` told
/// how many ended. Bounded by `time_limit`.
#[allow(clippy::too_many_arguments)]
pub async fn run_h2_load<S>(
    client: &S,
    addr: SocketAddr,
    seen: &Answered,
    requests: u64,
    concurrency: u64,
    traced_every: u64,
    time_limit: Duration,
    mut progress: impl FnMut(u64),
) -> H2Report
where
    S: SendTraced + Send + Sync + 'static,
{
    let started = Instant::now();
    let deadline = started + time_limit;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency.min(requests) {
        let (client, next, done) = (client.clone(), next.clone(), done.clone());
        let (tally, seen) = (tally.clone(), seen.clone());
        workers.spawn(async move {
            let mut rand = rng(w + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests || Instant::now() > deadline {
                    return;
                }
                let url = format!("http://{addr}/{}/{i}", rand() % 4);
                if i % traced_every.max(1) != 0 {
                    let answer = tokio::time::timeout(STALL, untraced(client.clone(), url)).await;
                    let mut tally = tally.lock().unwrap();
                    match answer {
                        Ok(true) => tally.report.ok += 1,
                        Ok(false) => tally.report.failed += 1,
                        Err(_) => tally.report.stalled += 1,
                    }
                    drop(tally);
                    done.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match tokio::time::timeout(STALL, fetch(client.clone(), url)).await {
                    Ok((events, body)) => tally.lock().unwrap().check(&events, body, &seen),
                    Err(_) => tally.lock().unwrap().report.stalled += 1,
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(res) => res.expect("a load worker"),
                None => break,
            },
            _ = tick.tick() => progress(done.load(Ordering::Relaxed)),
        }
    }
    progress(done.load(Ordering::Relaxed));
    let mut tally = std::mem::take(&mut *tally.lock().unwrap());
    tally.report.connections = tally.conns.len();
    tally.report.elapsed = started.elapsed();
    tally.report
}

/// One untraced GET, its body read: whether it was answered.
async fn untraced<S: SendTraced>(client: S, url: String) -> bool {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    match client.oneshot(request(&url)).await {
        Ok(res) => res.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}
