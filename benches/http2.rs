//! What httptrace costs on HTTP/2: 64 concurrent GETs (5-byte body) as streams of one h2c
//! connection (`http2_only`), through the bare hyper-util client and through the traced stack
//! with no trace, a no-op trace on one request in 100, a no-op trace on every request, and
//! `record_timings(true)`. Every request is counted as hyper opens its stream, so each traced
//! one knows its stream and its frames are followed. The server runs in this process, on a thread and runtime of its
//! own; the client on a current-thread runtime.
//!
//! - `taskset -c 0 cargo bench --bench http2`: criterion, the variants side by side.
//! - `taskset -c 0 cargo bench --bench http2 -- --ratios` (or `HTTPTRACE_RATIOS=1`): the
//!   interleaved measurement of `benches/overhead.rs`: every round runs each variant in turn
//!   (bare, bare again as the A/A control, the floor, untraced, sampled, no-op, timings); the
//!   table
//!   gives the median µs/request over the rounds and the median ratio to the bare run of the
//!   same round, with its min–max, beside the process CPU per request. `HTTPTRACE_ROUNDS`
//!   (default 15) and `HTTPTRACE_REQUESTS` (default 4000 per variant and round) change the
//!   sizes.
//! - `--profile ID` (`bare`, `floor`, `untraced`, `sampled`, `noop`, `timings`): `HTTPTRACE_REQUESTS`
//!   requests of one variant only, for a profiler such as `valgrind --tool=callgrind`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use http::Uri;
use http_body_util::{BodyExt, Full};
use httptrace::{ClientTrace, Event, Recorder, TraceLayer, TracingConnector};
use httptrace_test_support::bench::floor;
use httptrace_test_support::bench::ratios::{
    self, allowed_cpus, env_u64, interleave, median, ratio, verbose,
};
use httptrace_test_support::hooks::Noop;
use httptrace_test_support::loopback::{
    call, client_runtime, nodelay_http, request, send, Bare, Server, Traced,
};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::Layer;

/// Streams in flight.
const CONCURRENCY: u64 = 64;

/// A server speaking HTTP/2 (h2c) on every connection, answering `hello`.
fn h2_server() -> Server {
    Server::start_with(|tcp| async move {
        let svc = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
                b"hello",
            ))))
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tcp), svc)
            .await;
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bare,
    Floor,
    Untraced,
    Sampled,
    Noop,
    Timings,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Bare,
        Kind::Floor,
        Kind::Untraced,
        Kind::Sampled,
        Kind::Noop,
        Kind::Timings,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare hyper-util, http2_only",
            Kind::Floor => "bare + hyper's hooks and a timed state (the floor)",
            Kind::Untraced => "traced stack, no trace",
            Kind::Sampled => "no-op trace on 1 request in 100",
            Kind::Noop => "no-op trace on every request",
            Kind::Timings => "record_timings(true)",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Floor => "floor",
            Kind::Untraced => "untraced",
            Kind::Sampled => "sampled",
            Kind::Noop => "noop",
            Kind::Timings => "timings",
        }
    }
}

fn traced(layer: TraceLayer) -> Traced {
    layer.layer(
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(TracingConnector::new(nodelay_http())),
    )
}

fn bare() -> Bare {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(nodelay_http())
}

#[derive(Clone)]
enum Stack {
    Bare(Bare),
    Floor(Bare),
    Untraced(Traced),
    /// A trace on one request in 100 (the count shared by the clones).
    Sampled(Traced, ClientTrace, Arc<AtomicU64>),
    Noop(Traced, ClientTrace),
}

impl Stack {
    fn new(kind: Kind) -> Stack {
        match kind {
            Kind::Bare => Stack::Bare(bare()),
            Kind::Floor => Stack::Floor(bare()),
            Kind::Untraced => Stack::Untraced(traced(TraceLayer::new())),
            Kind::Sampled => Stack::Sampled(
                traced(TraceLayer::new()),
                ClientTrace::new(Noop),
                Arc::default(),
            ),
            Kind::Noop => Stack::Noop(traced(TraceLayer::new()), ClientTrace::new(Noop)),
            Kind::Timings => Stack::Untraced(traced(TraceLayer::new().record_timings(true))),
        }
    }

    async fn get(&mut self, uri: &Uri) {
        let mut req = request(uri);
        match self {
            Stack::Bare(client) => send(client, req).await,
            Stack::Floor(client) => floor::get(client, req, true).await,
            Stack::Untraced(svc) => send(svc, req).await,
            Stack::Noop(svc, trace) => {
                req.extensions_mut().insert(trace.clone());
                send(svc, req).await
            }
            Stack::Sampled(svc, trace, count) => {
                if count.fetch_add(1, Ordering::Relaxed) % 100 == 0 {
                    req.extensions_mut().insert(trace.clone());
                }
                send(svc, req).await
            }
        }
    }
}

/// Checks that the traced stack speaks HTTP/2 and knows the streams.
async fn sanity(uri: &Uri) {
    let rec = Recorder::new();
    let mut svc = traced(TraceLayer::new().default_trace(rec.trace()));
    for _ in 0..2 {
        let res = call(&mut svc, request(uri)).await;
        assert_eq!(res.version(), http::Version::HTTP_2);
        res.into_body().collect().await.expect("body");
    }
    let streams: Vec<Option<u32>> = rec
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::GotConn(g) => Some(g.http2.as_ref().and_then(|h| h.stream_id)),
            _ => None,
        })
        .collect();
    assert_eq!(streams, [Some(1), Some(3)], "{:?}", rec.names());
    assert!(rec.names().contains(&"GotFirstResponseByte"));
}

/// `n` requests on `stack`, `CONCURRENCY` in flight.
async fn concurrent(stack: &Stack, uri: &Uri, n: u64) -> Duration {
    let uri = uri.clone();
    ratios::concurrently(stack, n, CONCURRENCY, move |mut stack: Stack| {
        let uri = uri.clone();
        async move {
            stack.get(&uri).await;
            stack
        }
    })
    .await
}

fn criterion_benches(c: &mut Criterion) {
    let server = h2_server();
    let uri = server.uri();
    let rt = client_runtime();
    rt.block_on(sanity(&uri));
    let mut group = c.benchmark_group("http2_streams64");
    group.throughput(Throughput::Elements(1));
    for kind in Kind::ALL {
        let stack = Stack::new(kind);
        group.bench_function(BenchmarkId::from_parameter(kind.id()), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (stack, uri) = (stack.clone(), uri.clone());
                async move { concurrent(&stack, &uri, iters).await }
            })
        });
    }
    group.finish();
}

fn ratios() {
    let rounds = env_u64("HTTPTRACE_ROUNDS", 15);
    let n = env_u64("HTTPTRACE_REQUESTS", 4000);
    let variants: [(&str, Kind); 7] = [
        (Kind::Bare.name(), Kind::Bare),
        ("bare again (A/A control)", Kind::Bare),
        (Kind::Floor.name(), Kind::Floor),
        (Kind::Untraced.name(), Kind::Untraced),
        (Kind::Sampled.name(), Kind::Sampled),
        (Kind::Noop.name(), Kind::Noop),
        (Kind::Timings.name(), Kind::Timings),
    ];
    let server = h2_server();
    let uri = server.uri();
    let rt = client_runtime();
    let cpus = allowed_cpus();
    let series = rt.block_on(async {
        sanity(&uri).await;
        let mut stacks: Vec<Stack> = variants.iter().map(|(_, k)| Stack::new(*k)).collect();
        for stack in &stacks {
            concurrent(stack, &uri, CONCURRENCY * 40).await;
        }
        let series = interleave(&mut stacks, rounds, n, async |stack, n| {
            concurrent(stack, &uri, n).await
        })
        .await;
        if verbose() {
            for (s, (name, _)) in series.iter().zip(&variants) {
                eprintln!("{name:<42} µs/req by round: {}", s.rounds(2));
            }
        }
        series
    });
    println!(
        "\nloopback h2c GET, 5-byte body, {CONCURRENCY} streams in flight on one connection; client \
         on a current-thread runtime, server on its own thread; allowed CPUs: {cpus}; {rounds} \
         interleaved rounds of {n} requests per variant; µs/req and CPU: median over rounds \
         (CPU: whole process); ratio: median of per-round ratios to the bare run [min–max]\n"
    );
    println!("| stack | µs/req | ratio | CPU µs/req |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "| {name} | {:.2} | {} | {:.2} |",
            median(&series[i].wall),
            ratio(&series[i].wall, &series[0].wall),
            median(&series[i].cpu),
        );
    }
}

/// `--profile ID`: only `HTTPTRACE_REQUESTS` requests of one variant, for a profiler (e.g.
/// `valgrind --tool=callgrind`), after a warm-up.
fn profile(id: &str) {
    let Some(kind) = Kind::ALL.into_iter().find(|k| k.id() == id) else {
        eprintln!("--profile: no variant {id:?}");
        std::process::exit(2);
    };
    let n = env_u64("HTTPTRACE_REQUESTS", 4000);
    let server = h2_server();
    let uri = server.uri();
    client_runtime().block_on(async {
        let stack = Stack::new(kind);
        concurrent(&stack, &uri, CONCURRENCY * 10).await;
        let took = concurrent(&stack, &uri, n).await;
        println!("{}: {n} requests, {:?}/req", kind.name(), took / n as u32);
    });
}

fn main() {
    if ratios::requested() {
        ratios();
        return;
    }
    if let Some(id) = ratios::profile_requested() {
        profile(&id);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
