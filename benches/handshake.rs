//! What httptrace costs on a fresh TLS connection: every request dials loopback TCP, makes a
//! full TLS 1.3 handshake and sends one GET (5-byte body), because the clients keep no idle
//! connection (`pool_max_idle_per_host(0)`). Compared: the bare hyper-util client over
//! hyper-rustls' `HttpsConnector` on a plain `HttpConnector`, and the traced stack
//! (`HttpsStack::https` inside `TraceLayer`) with no trace, a no-op trace, and
//! `record_timings(true)`.
//!
//! The URL is `https://127.0.0.1:PORT/` and the server's self-signed certificate is valid for
//! that IP, so no name is looked up. The client trusts that certificate only and never resumes
//! a session (every handshake is a full one: ECDHE, certificate, signature); the server sends no
//! session tickets. The server runs in this process, on a thread and runtime of its own; the
//! client on a current-thread runtime.
//!
//! - `taskset -c 0 cargo bench --bench handshake`: criterion, the variants side by side.
//! - `taskset -c 0 cargo bench --bench handshake -- --ratios` (or `HTTPTRACE_RATIOS=1`): the
//!   interleaved measurement of `shared/BENCHMARKING.md`, as in `benches/overhead.rs`: every
//!   round runs each variant in turn (bare, bare again as the A/A control, untraced, no-op,
//!   timings); the table gives the median µs/request over the rounds, the median ratio to the
//!   bare run of the same round with its min–max, the median difference to it in µs, and the
//!   process CPU per request with its ratio. A handshake costs ~0.5 ms of CPU whose duration
//!   swings by ±20% from one second to the next on these VMs, so the rounds are many and short:
//!   `HTTPTRACE_ROUNDS` (default 101) rounds of `HTTPTRACE_REQUESTS` (default 200) requests per
//!   variant, about a minute in all; `HTTPTRACE_VERBOSE=1` prints every round's µs/request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use http::Uri;
use http_body_util::{BodyExt, Empty};
use httptrace::{
    connect::HttpsStack, ClientTrace, Event, Recorder, RequestBody, Timings, Trace, TraceLayer,
};
use httptrace_test_support::bench::ratios::{
    self, allowed_cpus, delta, env_u64, interleave, median, ratio, verbose,
};
use httptrace_test_support::hooks::Noop;
use httptrace_test_support::loopback::{call, client_runtime, request, send, serve_hello, Server};
use httptrace_test_support::tls;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::Layer;

// ---------------------------------------------------------------------------------------------
// The TLS server: its own thread and runtime, `hello` on every connection.

struct TlsServer {
    server: Server,
    /// The connections it accepted so far.
    accepted: Arc<AtomicU64>,
    /// What a client needs to trust it (and nothing else).
    client_config: rustls::ClientConfig,
}

impl TlsServer {
    fn start() -> TlsServer {
        // an IP SAN: rcgen reads "127.0.0.1" as an address
        let cert = tls::cert_for(&["127.0.0.1"]);
        let mut client_config = tls::client_config(&cert, rustls::DEFAULT_VERSIONS);
        // every handshake a full one
        client_config.resumption = rustls::client::Resumption::disabled();
        let mut server = tls::server_config(&cert, rustls::DEFAULT_VERSIONS);
        server.send_tls13_tickets = 0;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        let server = Server::start_with(move |tcp| {
            counter.fetch_add(1, Ordering::Relaxed);
            let acceptor = acceptor.clone();
            async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_hello(tls).await;
                }
            }
        });
        TlsServer {
            server,
            accepted,
            client_config,
        }
    }

    fn uri(&self) -> Uri {
        format!("https://{}/", self.server.addr)
            .parse()
            .expect("uri")
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// The client stacks, none keeping an idle connection.

type Bare = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;
type Traced = Trace<Client<HttpsStack, RequestBody<Empty<Bytes>>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bare,
    Untraced,
    Noop,
    Timings,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Bare, Kind::Untraced, Kind::Noop, Kind::Timings];

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare hyper-util + hyper-rustls",
            Kind::Untraced => "traced stack, no trace",
            Kind::Noop => "no-op trace",
            Kind::Timings => "record_timings(true)",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Untraced => "untraced",
            Kind::Noop => "noop",
            Kind::Timings => "timings",
        }
    }
}

/// hyper-util's client on hyper-rustls over a plain `HttpConnector`, untraced.
fn bare(config: &rustls::ClientConfig) -> Bare {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(config.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(https)
}

/// hyper-util's client on the traced HTTPS stack, traced by `layer`.
fn traced(config: &rustls::ClientConfig, layer: TraceLayer) -> Traced {
    layer.layer(
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(HttpsStack::https(config.clone())),
    )
}

/// One client stack, with what it attaches to each request.
#[derive(Clone)]
enum Stack {
    Bare(Bare),
    Untraced(Traced),
    Noop(Traced, ClientTrace),
    Timings(Traced),
}

impl Stack {
    fn new(kind: Kind, config: &rustls::ClientConfig) -> Stack {
        match kind {
            Kind::Bare => Stack::Bare(bare(config)),
            Kind::Untraced => Stack::Untraced(traced(config, TraceLayer::new())),
            Kind::Noop => Stack::Noop(traced(config, TraceLayer::new()), ClientTrace::new(Noop)),
            Kind::Timings => Stack::Timings(traced(config, TraceLayer::new().record_timings(true))),
        }
    }

    /// One GET on a new connection, its body read to the end.
    async fn get(&mut self, uri: &Uri) {
        let mut req = request(uri);
        match self {
            Stack::Bare(client) => send(client, req).await,
            Stack::Untraced(svc) | Stack::Timings(svc) => send(svc, req).await,
            Stack::Noop(svc, trace) => {
                req.extensions_mut().insert(trace.clone());
                send(svc, req).await
            }
        }
    }
}

/// Checks, before anything is measured, that every stack dials and shakes hands for every
/// request, and that the traced stack reports the handshake.
async fn sanity(server: &TlsServer) {
    let uri = server.uri();
    let config = &server.client_config;
    for kind in Kind::ALL {
        let mut stack = Stack::new(kind, config);
        let before = server.accepted();
        for _ in 0..3 {
            stack.get(&uri).await;
        }
        assert_eq!(
            server.accepted() - before,
            3,
            "{kind:?}: a connection per request"
        );
    }

    let svc = traced(config, TraceLayer::new());
    for _ in 0..2 {
        let rec = Recorder::new();
        let mut req = request(&uri);
        req.extensions_mut().insert(rec.trace());
        send(&mut svc.clone(), req).await;
        let events = rec.events();
        let names: Vec<&str> = events.iter().map(Event::name).collect();
        let expected = [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "TLSHandshakeStart",
            "TLSHandshakeDone",
            "GotConn",
        ];
        assert_eq!(names[..expected.len()], expected, "{names:?}");
        let done = events.iter().find_map(|e| match e {
            Event::TlsHandshakeDone(i) => Some(i),
            _ => None,
        });
        let state = done.and_then(|d| d.state.as_ref()).expect("a handshake");
        assert!(!state.resumed, "a full handshake");
        assert_eq!(state.version, "TLSv1.3");
    }

    let mut svc = traced(config, TraceLayer::new().record_timings(true));
    let res = call(&mut svc, request(&uri)).await;
    let timings = res.extensions().get::<Timings>().cloned().expect("timings");
    res.into_body().collect().await.expect("body");
    assert!(timings.is_complete(), "timings incomplete");
    assert!(timings.tls().is_some(), "no TLS phase: {timings:?}");
}

/// `n` sequential requests on `stack`, each on a new connection.
async fn sequential(stack: &mut Stack, uri: &Uri, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        stack.get(uri).await;
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Criterion.

fn criterion_benches(c: &mut Criterion) {
    let server = TlsServer::start();
    let uri = server.uri();
    let rt = client_runtime();
    rt.block_on(sanity(&server));

    let mut group = c.benchmark_group("fresh_tls_connection");
    group.throughput(Throughput::Elements(1));
    for kind in Kind::ALL {
        let stack = Stack::new(kind, &server.client_config);
        group.bench_function(BenchmarkId::from_parameter(kind.id()), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (mut stack, uri) = (stack.clone(), uri.clone());
                async move { sequential(&mut stack, &uri, iters).await }
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// The interleaved ratios.

fn ratios() {
    let rounds = env_u64("HTTPTRACE_ROUNDS", 101);
    let n = env_u64("HTTPTRACE_REQUESTS", 200);
    let variants: [(&str, Kind); 5] = [
        (Kind::Bare.name(), Kind::Bare),
        ("bare again (A/A control)", Kind::Bare),
        (Kind::Untraced.name(), Kind::Untraced),
        (Kind::Noop.name(), Kind::Noop),
        (Kind::Timings.name(), Kind::Timings),
    ];

    let server = TlsServer::start();
    let uri = server.uri();
    let rt = client_runtime();
    let cpus = allowed_cpus();

    let series = rt.block_on(async {
        sanity(&server).await;
        let mut stacks: Vec<Stack> = variants
            .iter()
            .map(|(_, k)| Stack::new(*k, &server.client_config))
            .collect();
        for stack in &mut stacks {
            sequential(stack, &uri, 50).await;
        }
        let series = interleave(&mut stacks, rounds, n, async |stack, n| {
            sequential(stack, &uri, n).await
        })
        .await;
        if verbose() {
            for (s, (name, _)) in series.iter().zip(&variants) {
                eprintln!("{name:<30} µs/req by round: {}", s.rounds(1));
            }
        }
        series
    });

    println!(
        "\nloopback HTTPS/1 GET on a fresh connection per request (TCP connect + full TLS 1.3 \
         handshake, ECDSA P-256 certificate, no resumption + GET, 5-byte body); client on a \
         current-thread runtime, server on its own thread; allowed CPUs: {cpus}; {rounds} \
         interleaved rounds of {n} sequential requests per variant; µs/req and CPU: median over \
         rounds (CPU: whole process, client and server); ratio: median of per-round ratios to \
         the bare run [min–max], of wall time and of CPU time; Δ: median of per-round differences \
         to the bare run\n"
    );
    println!("| stack | fresh TLS µs/req | ratio | Δ µs/req | CPU µs/req | CPU ratio |");
    println!("|---|---|---|---|---|---|");
    let bare = &series[0];
    for (s, (name, _)) in series.iter().zip(&variants) {
        println!(
            "| {name} | {:.1} | {} | {:+.1} | {:.1} | {} |",
            median(&s.wall),
            ratio(&s.wall, &bare.wall),
            delta(&s.wall, &bare.wall),
            median(&s.cpu),
            ratio(&s.cpu, &bare.cpu),
        );
    }
}

fn main() {
    if ratios::requested() {
        ratios();
        return;
    }
    // a request is a handshake (~1 ms): fewer samples than criterion's 100 by default
    let mut c = Criterion::default().sample_size(30).configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
