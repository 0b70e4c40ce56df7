//! The proof under load: 20,000 requests, 256 at a time, through one traced hyper-util client to
//! a loopback server, with random delays in the server (0..=3 ms) and in the hooks, and
//! keep-alive connections coming and going (one request in 20 asks the server to close its
//! connection). Every request is checked against what the server saw
//! (`httptrace_test_support::load::run_load`): no event of another request, none lost, none
//! duplicated, every Start with its Done, and per connection one exchange at a time, the first
//! fresh and every later one reused.
//!
//! `cargo test --test stress -- --nocapture` prints the counts. `examples/stress.rs` runs the
//! same, bigger, in release.

use httptrace_test_support::clients::server_and_client;
use httptrace_test_support::load::{run_load, LoadConfig, LOAD_CORE};
use std::time::Duration;

const REQUESTS: u64 = 20_000;
const CONCURRENCY: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_requests_each_get_their_own_events() {
    let (server, client) = server_and_client().await;
    let cfg = LoadConfig::jittered(REQUESTS, CONCURRENCY, Duration::from_secs(50));
    let report = run_load(&client, &server, &cfg, |_| {}).await;
    println!("{report}");
    report.assert_clean(REQUESTS);
    // the run did what it says: connections came and went, many exchanges reused them
    assert!(report.closes > REQUESTS / 40, "{report}");
    assert!(report.server_conns > report.closes, "{report}");
    assert!(report.reused > REQUESTS / 2, "{report}");
}

/// The checks are not vacuous: one request in 50 records into its neighbour's log, and the run
/// reports it (the sabotaged requests' own logs lack every event; their neighbours' have two of
/// each, or get them after their check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_catch_events_of_another_request() {
    let (server, client) = server_and_client().await;
    let cfg = LoadConfig {
        mix_logs_one_in: 50,
        ..LoadConfig::jittered(500, 32, Duration::from_secs(50))
    };
    let report = run_load(&client, &server, &cfg, |_| {}).await;
    println!("{report}");
    let v = &report.violations;
    // 10 sabotaged requests: each lost its 7 core events at least
    assert!(v.lost >= 10 * LOAD_CORE.len() as u64, "{report}");
    assert!(v.duplicated + v.late >= 10, "{report}");
}
