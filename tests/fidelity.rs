//! Timings against a script: a lookup that takes 20 ms (a `StaticResolver` behind a
//! `TimedResolver`), a server that answers 40 ms after reading the request and sends the end of
//! the body 30 ms after the head, 20 runs, each with a fresh client.
//!
//! What is asserted:
//! - on every run, `dns` ≥ 20 ms and `server_processing` ≥ 40 ms: exact, the script's wait is
//!   inside the measured interval (the server's 40 ms start when it has read the request, after
//!   the client's `GotConn`; counted from its accept, they could end before `GotConn` + 40 ms);
//! - on every run, `server_processing` + `content_transfer` ≥ 70 ms, exact; `content_transfer`
//!   alone starts when the client reads the first byte, not when the server wrote it, so it is
//!   shorter than the script's wait when that read is late (seen: 29.6 ms in 500 runs, and once
//!   26.7 ms, the first byte read 4 ms late on a loaded machine): alone it is only held to
//!   30 ms − `OUTLIER`;
//! - the median of each phase over the 20 runs within [script, script + `SLACK`] (2 ms), and
//!   every run within script + `OUTLIER` (10 ms; a missed or misplaced event is off by far more).
//!
//! Why not every run within +2 ms: on the development machine (2 vCPUs, debug build) 1 run in
//! 100 or so went over it (up to +6.2 ms), each time with the script itself late by as much, by
//! its own clock: a thread not scheduled in time. Over 500 runs, what httptrace adds (reported
//! minus what the script really did) stayed within +0.008..+0.078 ms for `dns`, -0.89..+2.0 ms
//! for `server_processing` and -1.2..+1.4 ms for `content_transfer` (the server's clock, read
//! after its write returns, is itself a little late). The script waits with the OS's sleep
//! (`precise_sleep_until`): with tokio's timer, which sleeps whole milliseconds and wakes late,
//! it overshot by +0.3 to +2 ms on every run.
//!
//! `cargo test --test fidelity -- --nocapture` prints, per phase, the reported time over the
//! script, the script's own overshoot, and what httptrace adds, and the runs over +2 ms.

use std::time::Duration;

use httptrace::{Recorder, Timings, TraceLayer};
use httptrace_test_support::clients::{client_with, get, StaticResolver, TimedResolver};
use httptrace_test_support::events::{sequence, FRESH};
use httptrace_test_support::servers::{precise_sleep, scripted_server, Script};

const DNS: Duration = Duration::from_millis(20);
const SCRIPT: Script = Script {
    first_byte: Duration::from_millis(40),
    body: Duration::from_millis(30),
};
const SLACK: Duration = Duration::from_millis(2);
const OUTLIER: Duration = Duration::from_millis(10);
const RUNS: usize = 20;

fn ms(d: f64) -> String {
    format!("{:+.3}", d * 1000.0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// min, median, max
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings_match_the_script() {
    // the script waits on tokio's blocking pool: start its threads before measuring
    let warm_up = Duration::from_millis(1);
    tokio::join!(precise_sleep(warm_up), precise_sleep(warm_up));
    let server = scripted_server(SCRIPT).await;
    let url = format!("http://fidelity.test:{}/", server.addr.port());
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["DNSStart", "DNSDone"]);

    let phases = ["dns", "server_processing", "content_transfer"];
    let nominal = [DNS, SCRIPT.first_byte, SCRIPT.body];
    // per run: the phases as Timings reports them, and as the script really did them
    let mut measured: Vec<[Duration; 3]> = Vec::new();
    let mut realized: Vec<[Duration; 3]> = Vec::new();
    for run in 0..RUNS {
        // a client per run: every run looks up and connects
        let resolver = TimedResolver {
            inner: StaticResolver::answering(server.addr, Duration::ZERO),
            delay: DNS,
            lookups: Default::default(),
        };
        let lookups = resolver.lookups.clone();
        let client = client_with(resolver, TraceLayer::new());
        let rec = Recorder::new();
        let timings = Timings::new();
        let parts = get(&client, &url, rec.trace().compose(timings.trace())).await;
        assert_eq!(parts.status, 200);
        assert_eq!(sequence(&rec.events()), expected);
        assert!(timings.is_complete() && !timings.failed());
        measured.push([
            timings.dns().unwrap(),
            timings.server_processing().unwrap(),
            timings.content_transfer().unwrap(),
        ]);
        // the server logs right after its last write, maybe after the client has read it
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while server.served.lock().unwrap().len() <= run {
            assert!(std::time::Instant::now() < deadline, "the server's log");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (looked_up, served) = (
            lookups.lock().unwrap()[0],
            server.served.lock().unwrap()[run],
        );
        realized.push([
            looked_up.1 - looked_up.0,
            served.head_written - served.head_read,
            served.body_written - served.head_written,
        ]);
    }

    println!("{RUNS} runs, ms: min / median / max");
    println!(
        "{:<18} {:>6}  {:^29}  {:^29}  {:^29}",
        "phase", "script", "reported - script", "script's own overshoot", "reported - what it did"
    );
    for i in 0..3 {
        let over = spread(
            measured
                .iter()
                .map(|m| secs(m[i]) - secs(nominal[i]))
                .collect(),
        );
        let own = spread(
            realized
                .iter()
                .map(|r| secs(r[i]) - secs(nominal[i]))
                .collect(),
        );
        let added = spread(
            measured
                .iter()
                .zip(&realized)
                .map(|(m, r)| secs(m[i]) - secs(r[i]))
                .collect(),
        );
        let row = |(a, b, c): (f64, f64, f64)| format!("{} / {} / {}", ms(a), ms(b), ms(c));
        println!(
            "{:<18} {:>4}ms  {:^29}  {:^29}  {:^29}",
            phases[i],
            nominal[i].as_millis(),
            row(over),
            row(own),
            row(added)
        );
    }
    let mut over_slack = Vec::new();
    for run in 0..RUNS {
        for i in 0..3 {
            let (m, script) = (measured[run][i], nominal[i]);
            // a first byte read late (the client's task not scheduled in time) moves time from
            // content transfer to server processing: their sum is checked exactly below
            let lower = if phases[i] == "content_transfer" {
                script - OUTLIER
            } else {
                script
            };
            let context = format!(
                "run {run}: {} {m:?}, the script says {script:?}, it really took {:?}",
                phases[i], realized[run][i]
            );
            assert!(m >= lower, "{context}: shorter than {lower:?}");
            assert!(m <= script + OUTLIER, "{context}: longer than +{OUTLIER:?}");
            if m > script + SLACK {
                over_slack.push(context);
            }
        }
    }
    for (run, m) in measured.iter().enumerate() {
        let (both, script) = (m[1] + m[2], nominal[1] + nominal[2]);
        assert!(
            both >= script,
            "run {run}: server processing and content transfer {both:?}, the script says {script:?}"
        );
    }
    println!("runs over +{SLACK:?}: {over_slack:?}");
    for i in 0..3 {
        let mut all: Vec<Duration> = measured.iter().map(|m| m[i]).collect();
        all.sort();
        let median = all[RUNS / 2];
        assert!(
            median >= nominal[i] && median <= nominal[i] + SLACK,
            "{}: median {median:?} over {RUNS} runs, the script says {:?}",
            phases[i],
            nominal[i]
        );
    }
}
