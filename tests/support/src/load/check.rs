//! The checks of a load run: every request as it completes, the connections across requests.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use httptrace::Event;

use super::{EventLog, LoadReport, LOAD_CORE};
use crate::events::{names, out_of_time_order, unpaired};

/// A request of the run, done.
pub(super) struct Done {
    pub(super) id: u64,
    pub(super) close: bool,
    pub(super) peer: SocketAddr,
    pub(super) server_conn: u64,
    pub(super) log: EventLog,
}

/// One exchange as its connection saw it.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    got_at: Instant,
    reused: bool,
    was_idle: bool,
    id: u64,
    first_byte: Option<Instant>,
    put_at: Option<Instant>,
}

/// Checks every request of a load run as it completes, and the connections across requests.
pub(super) struct Checker {
    server_addr: SocketAddr,
    pub(super) report: LoadReport,
    /// Requests whose own dial hasn't finished yet (it goes on in the background).
    pending: Vec<Done>,
    /// Every request's log, to catch events delivered after the check.
    logs: Vec<EventLog>,
    by_conn: HashMap<u64, Vec<Exchange>>,
    conn_to_server: HashMap<u64, u64>,
    server_to_conn: HashMap<u64, u64>,
    dialled: HashSet<u64>,
}

fn dials_done(events: &[Event]) -> bool {
    let count = |n: &str| events.iter().filter(|e| e.name() == n).count();
    count("ConnectStart") == count("ConnectDone")
}

impl Checker {
    pub(super) fn new(server_addr: SocketAddr) -> Self {
        Checker {
            server_addr,
            report: LoadReport::default(),
            pending: Vec::new(),
            logs: Vec::new(),
            by_conn: HashMap::new(),
            conn_to_server: HashMap::new(),
            server_to_conn: HashMap::new(),
            dialled: Default::default(),
        }
    }

    pub(super) fn add(&mut self, done: Done) {
        self.logs.push(done.log.clone());
        let ready = dials_done(&done.log.lock().unwrap_or_else(|e| e.into_inner()));
        if ready {
            self.check(done);
        } else {
            self.pending.push(done);
        }
    }

    fn check(&mut self, o: Done) {
        let ev = std::mem::take(&mut *o.log.lock().unwrap_or_else(|e| e.into_inner()));
        let v = &mut self.report.violations;
        let id = o.id;
        self.report.requests += 1;
        self.report.events += ev.len() as u64;
        if o.close {
            self.report.closes += 1;
        }
        let all = names(&ev);
        if let Some(msg) = unpaired(&ev) {
            v.add(|v| &mut v.unpaired, format!("request {id}: {msg}"));
        }
        if let Some(msg) = out_of_time_order(&ev) {
            v.add(|v| &mut v.backwards, format!("request {id}: {msg}"));
        }
        let count = |n: &str| all.iter().filter(|m| **m == n).count();
        let core: Vec<&str> = all
            .iter()
            .copied()
            .filter(|n| {
                !matches!(
                    *n,
                    "ConnectStart" | "ConnectDone" | "ConnectionClosed" | "PutIdleConn"
                )
            })
            .collect();
        if core != LOAD_CORE {
            let mut explained = false;
            for n in LOAD_CORE {
                match count(n) {
                    0 => v.add(|v| &mut v.lost, format!("request {id}: no {n} in {all:?}")),
                    1 => continue,
                    _ => v.add(
                        |v| &mut v.duplicated,
                        format!("request {id}: {n} twice in {all:?}"),
                    ),
                }
                explained = true;
            }
            for n in core.iter().filter(|n| !LOAD_CORE.contains(n)) {
                v.add(
                    |v| &mut v.unexpected,
                    format!("request {id}: {n} in {all:?}"),
                );
                explained = true;
            }
            if !explained {
                v.add(|v| &mut v.misordered, format!("request {id}: {all:?}"));
            }
        }
        for n in ["ConnectStart", "ConnectDone", "ConnectionClosed"] {
            if count(n) > 1 {
                v.add(
                    |v| &mut v.duplicated,
                    format!("request {id}: {n} twice in {all:?}"),
                );
            }
        }
        match (o.close, count("PutIdleConn")) {
            (true, 0) | (false, 1) => {}
            (true, _) => v.add(
                |v| &mut v.unexpected,
                format!("request {id} asked to close, its connection was pooled: {all:?}"),
            ),
            (false, 0) => v.add(
                |v| &mut v.lost,
                format!("request {id}: no PutIdleConn in {all:?}"),
            ),
            (false, _) => v.add(
                |v| &mut v.duplicated,
                format!("request {id}: PutIdleConn twice in {all:?}"),
            ),
        }
        // the core events in time order
        let core_at: Vec<Instant> = ev
            .iter()
            .filter(|e| LOAD_CORE.contains(&e.name()))
            .map(Event::at)
            .collect();
        if !core_at.windows(2).all(|w| w[0] <= w[1]) {
            v.add(
                |v| &mut v.misordered,
                format!("request {id}: core events out of time order"),
            );
        }

        let Some(got) = ev.iter().find_map(|e| match e {
            Event::GotConn(i) => Some(i.clone()),
            _ => None,
        }) else {
            return; // counted as lost above
        };
        if got.reused {
            self.report.reused += 1;
        } else if got.was_idle {
            self.report.served_by_other_dial += 1;
        } else {
            self.report.fresh += 1;
        }
        // the proof: the connection GotConn names is the socket the server read this request on
        if got.local_addr != Some(o.peer) {
            v.add(
                |v| &mut v.wrong_request,
                format!(
                    "request {id}: GotConn names local {:?}, the server read it from {}",
                    got.local_addr, o.peer
                ),
            );
        }
        if got.remote_addr != Some(self.server_addr) {
            v.add(
                |v| &mut v.wrong_request,
                format!("request {id}: GotConn names remote {:?}", got.remote_addr),
            );
        }
        if *self
            .conn_to_server
            .entry(got.conn_id)
            .or_insert(o.server_conn)
            != o.server_conn
            || *self
                .server_to_conn
                .entry(o.server_conn)
                .or_insert(got.conn_id)
                != got.conn_id
        {
            v.add(
                |v| &mut v.wrong_request,
                format!(
                    "request {id}: connection {} vs the server's connection {}",
                    got.conn_id, o.server_conn
                ),
            );
        }
        let mut put_at = None;
        let mut first_byte = None;
        for e in &ev {
            match e {
                Event::PutIdleConn(p) => {
                    put_at = Some(p.at);
                    if p.conn_id != got.conn_id {
                        v.add(
                            |v| &mut v.wrong_request,
                            format!(
                                "request {id}: PutIdleConn of {} on {}",
                                p.conn_id, got.conn_id
                            ),
                        );
                    }
                }
                Event::ConnectionClosed(c) => {
                    self.report.connection_closed_events += 1;
                    if c.conn_id != got.conn_id || !o.close {
                        v.add(
                            |v| &mut v.wrong_request,
                            format!(
                                "request {id} (close={}): ConnectionClosed of {} on {}",
                                o.close, c.conn_id, got.conn_id
                            ),
                        );
                    }
                }
                Event::GotFirstResponseByte(f) => first_byte = Some(f.at),
                // a dial its request stopped waiting for: it finishes for the pool
                Event::ConnectDone(_) | Event::DnsDone(_) if left_to_pool(e) => {
                    self.report.left_to_pool += 1;
                }
                Event::ConnectDone(d) if d.error.is_some() => v.add(
                    |v| &mut v.unexpected,
                    format!("request {id}: a loopback connect failed: {:?}", d.error),
                ),
                _ => {}
            }
        }

        let own_dial = ev.iter().find_map(|e| match e {
            Event::ConnectDone(i) => i.conn_id,
            _ => None,
        });
        if let Some(conn) = own_dial {
            if !self.dialled.insert(conn) {
                v.add(
                    |v| &mut v.duplicated,
                    format!("request {id}: connection {conn} dialled twice"),
                );
            }
        }
        let pos = |n: &str| ev.iter().position(|e| e.name() == n);
        if own_dial == Some(got.conn_id) {
            // served by its own dial: the connect comes before GotConn, and it wasn't idle
            if pos("ConnectDone") > pos("GotConn") || got.was_idle || got.reused {
                v.add(
                    |v| &mut v.misordered,
                    format!("request {id} on its own dial: {all:?} {got:?}"),
                );
            }
        } else {
            if own_dial.is_some() {
                self.report.dialled_for_others += 1;
            }
            if !got.was_idle {
                v.add(
                    |v| &mut v.wrong_request,
                    format!("request {id} didn't dial its connection: {got:?}"),
                );
            }
        }
        self.by_conn.entry(got.conn_id).or_default().push(Exchange {
            got_at: got.at,
            reused: got.reused,
            was_idle: got.was_idle,
            id,
            first_byte,
            put_at,
        });
    }

    pub(super) async fn finish(mut self, server_conns: u64, started: Instant) -> LoadReport {
        // background connects (an idle connection won the race) report when they finish
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .pending
            .iter()
            .all(|d| dials_done(&d.log.lock().unwrap_or_else(|e| e.into_inner())))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for done in std::mem::take(&mut self.pending) {
            self.check(done);
        }
        let v = &mut self.report.violations;
        for log in &self.logs {
            let late = log.lock().unwrap_or_else(|e| e.into_inner()).len();
            if late > 0 {
                v.add(|v| &mut v.late, format!("{late} events after the end"));
            }
        }
        // per connection: one exchange at a time; the first fresh, every later one reused
        let mut unreported = 0;
        for (conn, mut xs) in std::mem::take(&mut self.by_conn) {
            xs.sort_by_key(|x| x.got_at);
            if xs[0].reused {
                v.add(
                    |v| &mut v.misordered,
                    format!(
                        "conn {conn}: first exchange (request {}) marked reused",
                        xs[0].id
                    ),
                );
            }
            for w in xs.windows(2) {
                let (prev, next) = (w[0], w[1]);
                if !(next.reused && next.was_idle) {
                    v.add(
                        |v| &mut v.misordered,
                        format!(
                            "conn {conn}: request {} after {} not reused",
                            next.id, prev.id
                        ),
                    );
                }
                if prev.first_byte.is_some_and(|t| next.got_at < t)
                    || prev.put_at.is_some_and(|t| next.got_at < t)
                {
                    v.add(
                        |v| &mut v.misordered,
                        format!(
                            "conn {conn}: request {} overlaps request {}",
                            next.id, prev.id
                        ),
                    );
                }
            }
            self.report.serving_conns += 1;
            if !self.dialled.contains(&conn) {
                unreported += 1;
            }
        }
        // a dial left to the pool finished unreported: at most one served connection each
        if unreported > self.report.left_to_pool {
            v.add(
                |v| &mut v.lost,
                format!(
                    "{unreported} served connections' dials not reported, {} left to the pool",
                    self.report.left_to_pool
                ),
            );
        }
        self.report.server_conns = server_conns;
        // every connection the server accepted was dialled by a request, reported or left to the
        // pool; a dial left to the pool may still be connecting when the server is counted (or
        // never connect, its client gone), so it counts at most once
        let reported = self.dialled.len() as u64;
        if server_conns < reported || server_conns > reported + self.report.left_to_pool {
            v.add(
                |v| &mut v.lost,
                format!(
                    "{} dials reported and {} left to the pool, the server accepted \
                     {server_conns} connections",
                    self.dialled.len(),
                    self.report.left_to_pool
                ),
            );
        }
        self.report.elapsed = started.elapsed();
        self.report
    }
}

/// A Done that says its request stopped waiting for the dial (the request ended first).
fn left_to_pool(event: &Event) -> bool {
    event
        .error()
        .and_then(|e| e.downcast_ref::<httptrace::error::Canceled>())
        .is_some_and(|c| c.what() == "the request's wait for this dial")
}
