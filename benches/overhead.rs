//! What httptrace costs per request: loopback HTTP/1 keep-alive GETs (5-byte body), sequential
//! and 64 concurrent, through the bare hyper-util client, the bare client paying the floor of
//! any tracer (`tests/support/src/bench/floor.rs`: hyper-util's capture, hyper's 1xx callback
//! and a timed state per request, nothing else) and the traced stack (no trace, a no-op trace, a `Recorder` per
//! request, `record_timings`...). The server runs in this process, on a thread and runtime of
//! its own; the client on a current-thread runtime.
//!
//! - `taskset -c 0 cargo bench --bench overhead`: criterion, the variants side by side in one
//!   group per case. Pin it: unpinned, each sequential request wakes a thread on the other vCPU
//!   and the figures (~100 µs/req instead of ~22) say more about the scheduler than the stack.
//! - `taskset -c 0 cargo bench --bench overhead -- --ratios` (or `HTTPTRACE_RATIOS=1`): instead
//!   of criterion, the interleaved measurement of `shared/BENCHMARKING.md`: every round runs
//!   each variant in turn (bare, bare again as the A/A control, the floor, untraced, a no-op
//!   trace on one request in 100, no-op, no-op with `http2_streams(false)`, recorder,
//!   timings...), and the table gives the median
//!   µs/request over the rounds and the median ratio to the bare run of the same round, with
//!   its min–max, beside the process CPU per request.
//!   `HTTPTRACE_ROUNDS` (default 15) and `HTTPTRACE_REQUESTS` (default 2000 per variant and
//!   round, sequential; twice that concurrent) change the sizes, and `HTTPTRACE_VERBOSE=1`
//!   prints every round's µs/request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use http::Uri;
use http_body_util::BodyExt;
use httptrace::{ClientTrace, Recorder, Timings, TraceLayer};
use httptrace_test_support::bench::floor;
use httptrace_test_support::bench::ratios::{
    self, allowed_cpus, env_u64, interleave, median, ratio, verbose,
};
use httptrace_test_support::hooks::Noop;
use httptrace_test_support::loopback::{
    self, bare, call, client_runtime, nodelay_http, request, send, Bare, Server, Traced,
};

/// Requests in flight in the concurrent case.
const CONCURRENCY: u64 = 64;

// ---------------------------------------------------------------------------------------------
// The server (its own thread and runtime, answering `hello` on every connection) and the stacks.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bare,
    Floor,
    FloorTimings,
    Untraced,
    Sampled,
    Noop,
    NoopHttp1,
    NoopDefault,
    Recorder,
    Timings,
    Tracing,
    Otel,
}

impl Kind {
    const ALL: [Kind; 12] = [
        Kind::Bare,
        Kind::Floor,
        Kind::FloorTimings,
        Kind::Untraced,
        Kind::Sampled,
        Kind::Noop,
        Kind::NoopHttp1,
        Kind::NoopDefault,
        Kind::Recorder,
        Kind::Timings,
        Kind::Tracing,
        Kind::Otel,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare hyper-util",
            Kind::Floor => "bare + hyper's hooks and a timed state (the floor)",
            Kind::FloorTimings => "the floor without the 1xx callback (under timings)",
            Kind::Untraced => "traced stack, no trace",
            Kind::Sampled => "no-op trace on 1 request in 100",
            Kind::Noop => "no-op trace, in the request's extensions",
            Kind::NoopHttp1 => "the same, http2_streams(false)",
            Kind::NoopDefault => "no-op trace, per-client default",
            Kind::Recorder => "Recorder per request",
            Kind::Timings => "record_timings(true)",
            Kind::Tracing => "TracingHooks per request, no subscriber",
            Kind::Otel => "Otel: SDK metrics and spans, not exported",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Floor => "floor",
            Kind::FloorTimings => "floor_timings",
            Kind::Untraced => "untraced",
            Kind::Sampled => "sampled",
            Kind::Noop => "noop",
            Kind::NoopHttp1 => "noop_http1",
            Kind::NoopDefault => "noop_default",
            Kind::Recorder => "recorder",
            Kind::Timings => "timings",
            Kind::Tracing => "tracing",
            Kind::Otel => "otel",
        }
    }
}

#[cfg(feature = "tracing")]
fn tracing_layer() -> TraceLayer {
    TraceLayer::new().trace_factory(|| httptrace::TracingHooks::new().into_trace())
}

/// Without the `tracing` feature this variant measures the per-request factory alone.
#[cfg(not(feature = "tracing"))]
fn tracing_layer() -> TraceLayer {
    TraceLayer::new().trace_factory(|| ClientTrace::new(Noop))
}

#[cfg(feature = "opentelemetry")]
fn otel_layer() -> TraceLayer {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::trace::TracerProvider as _;
    let meters = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(
            // aggregates; exports only when asked (never, here)
            opentelemetry_sdk::metrics::PeriodicReader::builder(
                opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
            )
            .with_interval(Duration::from_secs(24 * 3600))
            .build(),
        )
        .build();
    let tracers = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    httptrace::Otel::new(&meters.meter("bench"))
        .with_tracer(tracers.tracer("bench"))
        .layer()
}

/// Without the `opentelemetry` feature this variant measures the per-request factory alone.
#[cfg(not(feature = "opentelemetry"))]
fn otel_layer() -> TraceLayer {
    TraceLayer::new().trace_factory(|| ClientTrace::new(Noop))
}

fn traced(layer: TraceLayer) -> Traced {
    loopback::traced(nodelay_http(), layer)
}

/// One client stack, with what it attaches to each request. Clones share the client's pool.
#[derive(Clone)]
enum Stack {
    Bare(Bare),
    /// The floor; with hyper's 1xx callback or not.
    Floor(Bare, bool),
    Untraced(Traced),
    /// A trace on one request in 100 (the count shared by the clones).
    Sampled(Traced, ClientTrace, Arc<AtomicU64>),
    Noop(Traced, ClientTrace),
    Recorder(Traced),
    Timings(Traced),
}

impl Stack {
    /// A new client (its own pool) of this kind.
    fn new(kind: Kind) -> Stack {
        match kind {
            Kind::Bare => Stack::Bare(bare(nodelay_http())),
            Kind::Floor => Stack::Floor(bare(nodelay_http()), true),
            Kind::FloorTimings => Stack::Floor(bare(nodelay_http()), false),
            Kind::Untraced => Stack::Untraced(traced(TraceLayer::new())),
            Kind::Sampled => Stack::Sampled(
                traced(TraceLayer::new()),
                ClientTrace::new(Noop),
                Arc::default(),
            ),
            Kind::Noop => Stack::Noop(traced(TraceLayer::new()), ClientTrace::new(Noop)),
            Kind::NoopHttp1 => Stack::Noop(
                traced(TraceLayer::new().http2_streams(false)),
                ClientTrace::new(Noop),
            ),
            Kind::Recorder => Stack::Recorder(traced(TraceLayer::new())),
            Kind::NoopDefault => Stack::Untraced(traced(
                TraceLayer::new().default_trace(ClientTrace::new(Noop)),
            )),
            Kind::Timings => Stack::Timings(traced(TraceLayer::new().record_timings(true))),
            Kind::Tracing => Stack::Untraced(traced(tracing_layer())),
            Kind::Otel => Stack::Untraced(traced(otel_layer())),
        }
    }

    /// One GET, its body read to the end.
    async fn get(&mut self, uri: &Uri) {
        let mut req = request(uri);
        match self {
            Stack::Bare(client) => send(client, req).await,
            Stack::Floor(client, informational) => floor::get(client, req, *informational).await,
            Stack::Untraced(svc) | Stack::Timings(svc) => send(svc, req).await,
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
            Stack::Recorder(svc) => {
                req.extensions_mut().insert(Recorder::new().trace());
                send(svc, req).await
            }
        }
    }
}

/// Checks that each traced variant really traces, before anything is measured.
async fn sanity(uri: &Uri) {
    let rec = Recorder::new();
    let mut req = request(uri);
    req.extensions_mut().insert(rec.trace());
    send(&mut traced(TraceLayer::new()), req).await;
    assert!(
        rec.names().contains(&"PutIdleConn"),
        "recorder: {:?}",
        rec.names()
    );

    let mut svc = traced(TraceLayer::new().record_timings(true));
    let res = call(&mut svc, request(uri)).await;
    let timings = res.extensions().get::<Timings>().cloned().expect("timings");
    res.into_body().collect().await.expect("body");
    assert!(timings.is_complete(), "timings incomplete");
}

/// `n` sequential requests on `stack`.
async fn sequential(stack: &mut Stack, uri: &Uri, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        stack.get(uri).await;
    }
    start.elapsed()
}

/// `n` requests on `stack`, `CONCURRENCY` in flight (each task on its own clone of the stack,
/// all sharing its pool).
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

// ---------------------------------------------------------------------------------------------
// Criterion.

fn criterion_benches(c: &mut Criterion) {
    let server = Server::start();
    let uri = server.uri();
    let rt = client_runtime();
    rt.block_on(sanity(&uri));

    let mut group = c.benchmark_group("sequential");
    group.throughput(Throughput::Elements(1));
    for kind in Kind::ALL {
        let stack = Stack::new(kind);
        group.bench_function(BenchmarkId::from_parameter(kind.id()), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (mut stack, uri) = (stack.clone(), uri.clone());
                async move { sequential(&mut stack, &uri, iters).await }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("concurrent64");
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

// ---------------------------------------------------------------------------------------------
// The interleaved ratios.

fn ratios() {
    let rounds = env_u64("HTTPTRACE_ROUNDS", 15);
    let seq_n = env_u64("HTTPTRACE_REQUESTS", 2000);
    let conc_n = seq_n * 2;
    let variants: [(&str, Kind); 13] = [
        ("bare hyper-util", Kind::Bare),
        ("bare again (A/A control)", Kind::Bare),
        (Kind::Floor.name(), Kind::Floor),
        (Kind::FloorTimings.name(), Kind::FloorTimings),
        (Kind::Untraced.name(), Kind::Untraced),
        (Kind::Sampled.name(), Kind::Sampled),
        (Kind::Noop.name(), Kind::Noop),
        (Kind::NoopHttp1.name(), Kind::NoopHttp1),
        (Kind::NoopDefault.name(), Kind::NoopDefault),
        (Kind::Recorder.name(), Kind::Recorder),
        (Kind::Timings.name(), Kind::Timings),
        (Kind::Tracing.name(), Kind::Tracing),
        (Kind::Otel.name(), Kind::Otel),
    ];

    let server = Server::start();
    let uri = server.uri();
    let rt = client_runtime();
    let cpus = allowed_cpus();

    let (seq, conc) = rt.block_on(async {
        sanity(&uri).await;
        // separate clients for the two cases: the sequential one keeps a single connection
        let mut seq_stacks: Vec<Stack> = variants.iter().map(|(_, k)| Stack::new(*k)).collect();
        let mut conc_stacks: Vec<Stack> = variants.iter().map(|(_, k)| Stack::new(*k)).collect();
        // the sequential rounds, then the concurrent ones; each case's rounds interleave the
        // variants: A B C ... A B C ...
        for stack in &mut seq_stacks {
            sequential(stack, &uri, 500).await;
        }
        let seq = interleave(&mut seq_stacks, rounds, seq_n, async |stack, n| {
            sequential(stack, &uri, n).await
        })
        .await;
        for stack in &conc_stacks {
            // opens the connections, and warms up again after the sequential phase
            concurrent(stack, &uri, CONCURRENCY * 40).await;
        }
        let conc = interleave(&mut conc_stacks, rounds, conc_n, async |stack, n| {
            concurrent(stack, &uri, n).await
        })
        .await;
        if verbose() {
            for (case, series) in [("sequential", &seq), ("concurrent", &conc)] {
                for (s, (name, _)) in series.iter().zip(&variants) {
                    eprintln!("{case:<10} {name:<26} µs/req by round: {}", s.rounds(2));
                }
            }
        }
        (seq, conc)
    });

    println!(
        "\nloopback HTTP/1 keep-alive GET, 5-byte body; client on a current-thread runtime, server \
         on its own thread; allowed CPUs: {cpus}; {rounds} interleaved rounds, {seq_n} sequential \
         and {conc_n} {CONCURRENCY}-concurrent requests per variant and round; µs/req and CPU: \
         median over rounds (CPU: whole process, client and server); ratio: median of per-round \
         ratios to the bare run [min–max]\n"
    );
    println!(
        "| stack | sequential µs/req | ratio | CPU µs/req | {CONCURRENCY} concurrent µs/req | ratio | CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "| {name} | {:.2} | {} | {:.2} | {:.2} | {} | {:.2} |",
            median(&seq[i].wall),
            ratio(&seq[i].wall, &seq[0].wall),
            median(&seq[i].cpu),
            median(&conc[i].wall),
            ratio(&conc[i].wall, &conc[0].wall),
            median(&conc[i].cpu),
        );
    }
}

/// `--profile ID`: only `HTTPTRACE_REQUESTS` sequential requests of one variant, for a profiler
/// (e.g. `valgrind --tool=callgrind`), after a warm-up of 500; with `HTTPTRACE_CONCURRENT=1`,
/// that many requests 64 at a time instead.
fn profile(id: &str) {
    let Some(kind) = Kind::ALL.into_iter().find(|k| k.id() == id) else {
        eprintln!("--profile: no variant {id:?}");
        std::process::exit(2);
    };
    let n = env_u64("HTTPTRACE_REQUESTS", 2000);
    let server = Server::start();
    let uri = server.uri();
    client_runtime().block_on(async {
        let mut stack = Stack::new(kind);
        let took = if std::env::var_os("HTTPTRACE_CONCURRENT").is_some_and(|v| v == "1") {
            concurrent(&stack, &uri, 500).await;
            concurrent(&stack, &uri, n).await
        } else {
            sequential(&mut stack, &uri, 500).await;
            sequential(&mut stack, &uri, n).await
        };
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
