//! Heap allocations per request, counted by a global allocator: a request with no trace costs
//! nothing beyond the bare hyper-util stack, and a no-op trace a small fixed amount.
//!
//! The server runs on a thread of its own (not counted); the client runs on a current-thread
//! runtime on the test thread, so hyper-util's connection task, spawned on that runtime, runs
//! (and is counted) on the test thread too. `cargo test --test alloc -- --nocapture` prints the
//! figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use httptrace::{ClientTrace, Recorder, TraceLayer};
use httptrace_test_support::hooks::Noop;
use httptrace_test_support::loopback::{bare, call, read_hello, request, traced, Server};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::Service;

// ---------------------------------------------------------------------------------------------
// The counting allocator: counts only on threads that turned their flag on.

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static REALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump(key: &'static std::thread::LocalKey<Cell<u64>>) {
    // `try_with`: the allocator can be called while this thread's locals are being torn down
    if ON.try_with(Cell::get).unwrap_or(false) {
        let _ = key.try_with(|c| c.set(c.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(&REALLOCS);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    allocs: u64,
    reallocs: u64,
}

fn counts() -> Counts {
    Counts {
        allocs: ALLOCS.with(Cell::get),
        reallocs: REALLOCS.with(Cell::get),
    }
}

// ---------------------------------------------------------------------------------------------
// The loopback server (on its own thread and runtime), the client stacks and the measured loop.

/// Sends `n` sequential GETs on `svc` (keep-alive: one connection), each built by `make` and its
/// body read to the end; returns what the test thread allocated meanwhile, over all `n`, and the
/// smallest and largest allocation count of one request.
async fn run<S, B>(
    svc: &mut S,
    n: usize,
    mut make: impl FnMut() -> Request<Empty<Bytes>>,
) -> (Counts, u64, u64)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let (mut min, mut max) = (u64::MAX, 0);
    let before = counts();
    ON.with(|on| on.set(true));
    for _ in 0..n {
        let start = ALLOCS.with(Cell::get);
        let req = make();
        let res = call(svc, req).await;
        assert_eq!(res.status(), 200);
        read_hello(res.into_body()).await;
        let one = ALLOCS.with(Cell::get) - start;
        min = min.min(one);
        max = max.max(one);
    }
    ON.with(|on| on.set(false));
    let after = counts();
    let total = Counts {
        allocs: after.allocs - before.allocs,
        reallocs: after.reallocs - before.reallocs,
    };
    (total, min, max)
}

const WARM_UP: usize = 50;

/// Warms `svc` up, then measures `n` requests.
async fn measure<S, B>(
    name: &str,
    svc: &mut S,
    n: usize,
    mut make: impl FnMut() -> Request<Empty<Bytes>>,
) -> Counts
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    run(svc, WARM_UP, &mut make).await;
    let (total, min, max) = run(svc, n, &mut make).await;
    println!(
        "{name:<28} {n:>4} requests: {:>6} allocs ({:>6.2}/req, one request {min}..={max}), {:>5} reallocs ({:.2}/req)",
        total.allocs,
        total.allocs as f64 / n as f64,
        total.reallocs,
        total.reallocs as f64 / n as f64,
    );
    total
}

/// What a no-op trace adds per request: the measured value, exactly (not a loose bound). Found
/// by recording the backtraces of one request's allocations, all on the request's own task:
/// - 3 are the caller's, for attaching any trace at all: the request's extension map (its `Box`
///   and its hash table) and the `Box` of the `ClientTrace` in it;
/// - 1 the `RequestCtx` (`Arc`) of `Trace::call`;
/// - 2 hyper's 1xx callback for the request (`hyper::ext::on_informational`: its `Arc`, and the
///   `Box` it is stored in among the extensions);
/// - 4 (measured as the difference with (e)) hyper-util's `CaptureConnection`, which binds a
///   request to an HTTP/2 connection: its watch channel's `Arc`, the `Arc` of its sender, the
///   sender's `Box` among the extensions, and the copy of the connection's `Connected` extras
///   it keeps per request. `TraceLayer::http2_streams(false)` saves them.
///
/// Nothing is allocated on the connection's task, and delivering the events to the no-op hooks
/// allocates nothing.
const NOOP_EXTRA_ALLOCS: u64 = 10;
/// A no-op trace on a layer that doesn't bind HTTP/2 streams.
const NOOP_HTTP1_EXTRA_ALLOCS: u64 = 6;
/// `record_timings(true)`, no other trace: the `Timings` (`Arc`), the `RequestCtx`, the
/// request's extension map (its `Box` and its hash table: the capture is its first entry),
/// hyper-util's capture (4), and the `Box` of the `Timings` in the response's extensions. No
/// 1xx callback: `Timings` needs none; and its trace shares the `Timings`' allocation.
const TIMINGS_EXTRA_ALLOCS: u64 = 9;
/// And no realloc.
const NOOP_EXTRA_REALLOCS: u64 = 0;

#[test]
fn untraced_costs_nothing_noop_trace_costs_a_fixed_few() {
    let server = Server::start();
    let uri = server.uri();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let get = || request(&uri);
        let noop = ClientTrace::new(Noop);
        let with_noop = || {
            let mut req = get();
            req.extensions_mut().insert(noop.clone());
            req
        };

        let mut per_n = Vec::new();
        for n in [100, 300] {
            let a = measure("(a) bare hyper-util", &mut bare(HttpConnector::new()), n, get).await;
            let b = measure("(b) traced, no trace", &mut traced(HttpConnector::new(), TraceLayer::new()), n, get).await;
            let c = measure("(c) traced, no-op trace", &mut traced(HttpConnector::new(), TraceLayer::new()), n, with_noop).await;
            let e = measure("(e) no-op, http2_streams off", &mut traced(HttpConnector::new(), TraceLayer::new().http2_streams(false)), n, with_noop).await;
            let d = measure("(d) traced, Recorder/request", &mut traced(HttpConnector::new(), TraceLayer::new()), n, || {
                let mut req = get();
                req.extensions_mut().insert(Recorder::new().trace());
                req
            })
            .await;
            let f = measure("(f) record_timings(true)", &mut traced(HttpConnector::new(), TraceLayer::new().record_timings(true)), n, get).await;
            let n64 = n as u64;
            assert_eq!((f.allocs - a.allocs) % n64, 0);
            assert_eq!(
                (f.allocs - a.allocs) / n64,
                TIMINGS_EXTRA_ALLOCS,
                "record_timings: extra allocs per request changed"
            );
            println!(
                "per request over bare: (b) {:+} allocs {:+} reallocs, (c) {:+.2} allocs {:+.2} reallocs, (d) {:+.2} allocs {:+.2} reallocs",
                b.allocs as i64 - a.allocs as i64,
                b.reallocs as i64 - a.reallocs as i64,
                (c.allocs as f64 - a.allocs as f64) / n as f64,
                (c.reallocs as f64 - a.reallocs as f64) / n as f64,
                (d.allocs as f64 - a.allocs as f64) / n as f64,
                (d.reallocs as f64 - a.reallocs as f64) / n as f64,
            );

            // (b): a request with no trace allocates nothing beyond the bare stack
            assert_eq!(b, a, "{n} untraced requests allocate more than the bare stack");

            // (c): a no-op trace adds a fixed, small number per request
            let extra = c.allocs.checked_sub(a.allocs).expect("(c) allocates less than bare");
            assert_eq!(extra % n64, 0, "no-op trace: {extra} extra allocs over {n} requests");
            assert_eq!(
                extra / n64,
                NOOP_EXTRA_ALLOCS,
                "no-op trace: extra allocs per request changed"
            );
            assert_eq!(
                (e.allocs - a.allocs) / n64,
                NOOP_HTTP1_EXTRA_ALLOCS,
                "no-op trace without HTTP/2 streams: extra allocs per request changed"
            );
            assert_eq!((e.allocs - a.allocs) % n64, 0);
            assert_eq!(
                c.reallocs,
                a.reallocs + NOOP_EXTRA_REALLOCS * n64,
                "no-op trace: {} reallocs vs bare {}",
                c.reallocs,
                a.reallocs
            );
            per_n.push(extra / n64);
        }
        assert_eq!(
            per_n[0], per_n[1],
            "no-op trace: extra allocs per request grow with the number of requests"
        );
    });
}
