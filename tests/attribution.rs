//! Many concurrent requests over a few keep-alive connections, with jitter in the server and in
//! the hooks: every event belongs to its own request, none lost, none duplicated.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use http_body_util::BodyExt;
use httptrace::{ClientTrace, Event, Hooks, Recorder};
use tower::ServiceExt;

const REQUESTS: u64 = 600;
const CONCURRENCY: usize = 48;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Records, after sleeping a little now and then: a slow hook delays the task it runs on.
struct Jittery {
    rec: Recorder,
    seed: u64,
}

impl Hooks for Jittery {
    fn on_event(&self, event: &Event) {
        let mut r = rng(self.seed ^ event.at().elapsed().subsec_nanos() as u64);
        if r() % 4 == 0 {
            std::thread::sleep(Duration::from_micros(r() % 80));
        }
        self.rec.on_event(event);
    }
}

struct Outcome {
    id: u64,
    close: bool,
    peer: SocketAddr,
    server_conn: u64,
    events: Vec<Event>,
}

const CORE: &[&str] = &[
    "GetConn",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_events() {
    let (server, client) = server_and_client().await;
    let started = Instant::now();

    let mut outcomes = Vec::new();
    let mut ids = 0..REQUESTS;
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < CONCURRENCY {
            let Some(id) = ids.next() else { break };
            let client = client.clone();
            let url = server.url("/");
            running.spawn(async move {
                let mut r = rng(id + 1);
                let delay = r() % 4;
                let close = r() % 20 == 0;
                let url = format!("{url}?delay_ms={delay}&close={}", close as u8);
                let rec = Recorder::new();
                let trace = ClientTrace::new(Jittery {
                    rec: rec.clone(),
                    seed: id,
                });
                let mut req = http::Request::get(url).body(Body::default()).unwrap();
                req.headers_mut().insert("x-req", id.into());
                req.extensions_mut().insert(trace);
                let res = client.oneshot(req).await.expect("response");
                assert_eq!(res.headers()["x-req"], id.to_string().as_str());
                let peer = res.headers()["x-peer"].to_str().unwrap().parse().unwrap();
                let server_conn = res.headers()["x-conn"].to_str().unwrap().parse().unwrap();
                res.into_body().collect().await.expect("body");
                (id, close, peer, server_conn, rec)
            });
        }
        match running.join_next().await {
            Some(done) => {
                let (id, close, peer, server_conn, rec) = done.unwrap();
                outcomes.push((id, close, peer, server_conn, rec));
            }
            None => break,
        }
        assert!(started.elapsed() < Duration::from_secs(60), "took too long");
    }
    assert_eq!(outcomes.len() as u64, REQUESTS);

    // background connects (an idle connection won the race) report when they finish
    let deadline = Instant::now() + Duration::from_secs(10);
    let all_dials_done = |outcomes: &[(u64, bool, SocketAddr, u64, Recorder)]| {
        outcomes.iter().all(|o| {
            let n = o.4.names();
            let count = |x| n.iter().filter(|m| **m == x).count();
            count("ConnectStart") == count("ConnectDone")
        })
    };
    while !all_dials_done(&outcomes) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|(id, close, peer, server_conn, rec)| Outcome {
            id,
            close,
            peer,
            server_conn,
            events: rec.events(),
        })
        .collect();

    let mut by_conn: BTreeMap<u64, Vec<(Instant, bool, bool, u64)>> = BTreeMap::new();
    let mut conn_to_server: HashMap<u64, u64> = HashMap::new();
    let mut server_to_conn: HashMap<u64, u64> = HashMap::new();
    let mut dialled = Vec::new();
    let mut total_events = 0;
    for o in &outcomes {
        let ev = &o.events;
        total_events += ev.len();
        assert_paired(ev);
        let core: Vec<_> = ev
            .iter()
            .map(Event::name)
            .filter(|n| {
                !matches!(
                    *n,
                    "ConnectStart" | "ConnectDone" | "ConnectionClosed" | "PutIdleConn"
                )
            })
            .collect();
        assert_eq!(core, CORE, "request {}: {:?}", o.id, names(ev));
        let puts = ev.iter().filter(|e| e.name() == "PutIdleConn").count();
        if o.close {
            assert_eq!(puts, 0, "request {} asked to close: {:?}", o.id, names(ev));
        } else {
            assert!(puts <= 1, "request {}: {:?}", o.id, names(ev));
        }
        // core events in time order
        let core_at: Vec<Instant> = ev
            .iter()
            .filter(|e| CORE.contains(&e.name()))
            .map(Event::at)
            .collect();
        assert!(
            core_at.windows(2).all(|w| w[0] <= w[1]),
            "request {} out of order",
            o.id
        );

        let got = got_conn(ev);
        // the proof: the connection GotConn names is the socket the server read this request on
        assert_eq!(
            got.local_addr,
            Some(o.peer),
            "request {} attributed to the wrong connection",
            o.id
        );
        assert_eq!(got.remote_addr, Some(server.addr));
        assert_eq!(
            *conn_to_server.entry(got.conn_id).or_insert(o.server_conn),
            o.server_conn
        );
        assert_eq!(
            *server_to_conn.entry(o.server_conn).or_insert(got.conn_id),
            got.conn_id
        );

        let own_dial = ev.iter().find_map(|e| match e {
            Event::ConnectDone(i) => Some(i.conn_id.expect("loopback connects succeed")),
            _ => None,
        });
        if let Some(conn) = own_dial {
            dialled.push(conn);
        }
        let pos = |n: &str| ev.iter().position(|e| e.name() == n);
        if own_dial == Some(got.conn_id) {
            // served by its own dial: the connect comes before GotConn, and it wasn't idle
            assert!(pos("ConnectDone") < pos("GotConn"));
            assert!(!got.was_idle, "request {}: {:?}", o.id, got);
        } else {
            assert!(
                got.was_idle,
                "request {} didn't dial its connection: {:?}",
                o.id, got
            );
        }
        by_conn
            .entry(got.conn_id)
            .or_default()
            .push((got.at, got.reused, got.was_idle, o.id));
    }
    // per connection, the first request has it fresh, every later one reused
    for (conn, mut reqs) in by_conn.clone() {
        reqs.sort();
        assert!(
            !reqs[0].1,
            "conn {conn}: first request marked reused: {reqs:?}"
        );
        assert!(
            reqs[1..].iter().all(|r| r.1 && r.2),
            "conn {conn}: {reqs:?}"
        );
    }
    dialled.sort();
    dialled.dedup();
    let server_conns = server.conns.load(Ordering::SeqCst);
    assert_eq!(
        dialled.len() as u64,
        server_conns,
        "every connection's dial reported once"
    );
    assert!(by_conn.keys().all(|c| dialled.binary_search(c).is_ok()));
    println!(
        "{} requests, {} events, {} connections ({} served requests), each request checked against the server's view, in {:?}",
        outcomes.len(),
        total_events,
        server_conns,
        by_conn.len(),
        started.elapsed()
    );
}
