//! Many concurrent requests over a few keep-alive connections, with jitter in the server and in
//! the hooks: every event belongs to its own request, none lost, none duplicated.
//!
//! The checks are `httptrace_test_support::load::run_load`'s (shared with `tests/stress.rs` and
//! `examples/stress.rs`): per request, its exact core sequence, Start/Done pairs, time order, and
//! that the connection its `GotConn` names is the socket the server read the request on; per
//! connection, one exchange at a time, the first fresh and every later one reused; and every
//! dial reported once.

use std::time::Duration;

use httptrace_test_support::clients::server_and_client;
use httptrace_test_support::load::{run_load, LoadConfig};

const REQUESTS: u64 = 600;
const CONCURRENCY: usize = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_events() {
    let (server, client) = server_and_client().await;
    let cfg = LoadConfig::jittered(REQUESTS, CONCURRENCY, Duration::from_secs(60));
    let report = run_load(&client, &server, &cfg, |_| {}).await;
    println!("{report}");
    report.assert_clean(REQUESTS);
}
