//! Many concurrent requests over a few keep-alive connections, with jitter in the server and in
//! the hooks: every event belongs to its own request, none lost, none duplicated.
//!
//! The checks are `common::run_load`'s (shared with `tests/stress.rs` and `examples/stress.rs`):
//! per request, its exact core sequence, Start/Done pairs, time order, and that the connection
//! its `GotConn` names is the socket the server read the request on; per connection, one
//! exchange at a time, the first fresh and every later one reused; and every dial reported once.

mod common;

use std::time::Duration;

use common::*;

const REQUESTS: u64 = 600;
const CONCURRENCY: usize = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_events() {
    let (server, client) = server_and_client().await;
    let cfg = LoadConfig {
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        max_delay_ms: 3,
        close_one_in: 20,
        time_limit: Duration::from_secs(60),
        mix_logs_one_in: 0,
    };
    let report = run_load(&client, &server, &cfg, |_| {}).await;
    println!("{report}");
    assert_eq!(report.violations.total(), 0, "{report}");
    assert_eq!(report.requests, REQUESTS);
    assert_eq!(
        report.fresh + report.reused + report.served_by_other_dial,
        REQUESTS
    );
}
