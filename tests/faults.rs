//! Faults, one at a time, each with its whole event sequence and its error as it really is: a slow
//! lookup, a connect timeout, a server that resets the connection (before the response, in the
//! middle of its head, in the middle of its body), a server that closes a pooled connection, a
//! caller that gives up (waiting for the head, during the connect). After each, every Start has
//! its Done and the same client serves the next request. Then: nothing of httptrace outlives
//! the requests, and nothing outlives the client.
//!
//! `ConnectionClosed` comes or not depending on whether the connection's task drops its socket
//! before the request's task is done with the request (a race between two tasks): the sequences
//! are named without it (`names_but_closed`), and `closed_matches` checks it when it comes.

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use httptrace::{
    error::{Canceled, RequestError},
    ClientTrace, Event, Hooks, Recorder, Timings, TraceLayer, TracingConnector, TracingResolver,
};
use httptrace_test_support::clients::{
    client, client_with, get, traced, Body, SendTraced, StaticResolver,
};
use httptrace_test_support::events::{
    assert_paired, causes, got_conn, names_but_closed, sequence, FRESH, FRESH_UNPOOLED, REUSED,
};
use httptrace_test_support::servers::{raw_server, read_head, unanswering, Server};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::{Layer, ServiceExt};

// ---------------------------------------------------------------------------------------------
// Scripted servers and helpers.

/// Closes with a reset (RST), not a FIN.
fn reset(s: TcpStream) {
    s.set_zero_linger().unwrap();
    drop(s);
}

/// A raw server that, on every connection, reads the request head, writes `partial` (the start
/// of a response, or nothing) and resets the connection.
async fn resetting_server(partial: &'static [u8]) -> SocketAddr {
    let (addr, _) = raw_server(move |_, mut s| async move {
        read_head(&mut s).await;
        if !partial.is_empty() {
            let _ = s.write_all(partial).await;
        }
        reset(s);
    })
    .await;
    addr
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

/// What one request came to: the client's error if any, and the body's.
struct Sent {
    events: Vec<Event>,
    error: Option<hyper_util::client::legacy::Error>,
    body_error: Option<hyper::Error>,
    elapsed: Duration,
}

/// Sends a traced GET, reads the body (or fails), and gives the events once everything of the
/// request is dropped (nothing can come after that).
async fn send(client: &impl SendTraced, url: &str) -> Sent {
    let rec = Recorder::new();
    let started = Instant::now();
    let (error, body_error) = match client.clone().oneshot(traced(url, rec.trace())).await {
        Ok(res) => (None, res.into_body().collect().await.err()),
        Err(e) => (Some(e), None),
    };
    // an event the connection's task is delivering right now lands
    tokio::time::sleep(Duration::from_millis(2)).await;
    Sent {
        events: rec.events(),
        error,
        body_error,
        elapsed: started.elapsed(),
    }
}

/// The same client serves a next request, with exactly the `expected` sequence.
async fn then_serves(client: &impl SendTraced, url: &str, expected: &[&str]) {
    // hyper-util gives a connection back to the pool from a task of its own
    tokio::time::sleep(Duration::from_millis(10)).await;
    let next = Recorder::new();
    get(client, url, next.trace()).await;
    let events = next.events();
    assert_eq!(sequence(&events), expected, "the next request");
    assert_paired(&events);
}

/// The same client serves a next request, to a new loopback server, with exactly the `expected`
/// sequence.
async fn then_a_new_server_serves(client: &impl SendTraced, expected: &[&str]) {
    let server = Server::start().await;
    then_serves(client, &server.url("/"), expected).await;
}

/// The kinds of the `io::Error`s in `err`'s chain.
fn io_kinds(err: &(dyn std::error::Error + 'static)) -> Vec<ErrorKind> {
    causes(err)
        .into_iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
        .collect()
}

fn event<'a>(events: &'a [Event], name: &str) -> &'a Event {
    events
        .iter()
        .find(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", sequence(events)))
}

fn error_of<'a>(events: &'a [Event], name: &str) -> &'a (dyn std::error::Error + 'static) {
    event(events, name)
        .error()
        .unwrap_or_else(|| panic!("{name} carries no error"))
}

/// A `ConnectionClosed`, when it comes, is one, names the request's connection, and reports
/// the I/O error that ended it (`None`: a clean close).
fn closed_matches(events: &[Event], error: Option<ErrorKind>) {
    let closed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionClosed(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(closed.len() <= 1, "{:?}", sequence(events));
    if let Some(c) = closed.first() {
        assert_eq!(c.conn_id, got_conn(events).conn_id);
        assert_eq!(
            c.error.as_ref().map(|e| io_kinds(e.get_ref())),
            error.map(|k| vec![k]),
            "{c:?}"
        );
    }
}

/// FRESH up to the request written: what every fault on a fresh connection starts with.
const WRITTEN: &[&str] = &[
    "GetConn",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
];

fn written_then(rest: &[&'static str]) -> Vec<&'static str> {
    [WRITTEN, rest].concat()
}

// ---------------------------------------------------------------------------------------------
// Slow DNS, connect timeout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_dns() {
    let server = Server::start().await;
    let resolver = StaticResolver::answering(server.addr, Duration::from_millis(30));
    let client = client_with(resolver, TraceLayer::new());
    let url = format!("http://slow-dns.test:{}/", server.addr.port());
    let rec = Recorder::new();
    let timings = Timings::new();
    get(&client, &url, rec.trace().compose(timings.trace())).await;
    let events = rec.events();
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["DNSStart", "DNSDone"]);
    assert_eq!(sequence(&events), expected);
    let lookup = event(&events, "DNSDone")
        .at()
        .duration_since(event(&events, "DNSStart").at());
    assert!(lookup >= Duration::from_millis(30), "{lookup:?}");
    assert!(lookup < Duration::from_secs(2), "{lookup:?}");
    assert_eq!(timings.dns(), Some(lookup));
    assert!(timings.namelookup().unwrap() >= Duration::from_millis(30));
    assert_paired(&events);
    then_serves(&client, &url, REUSED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout() {
    let (addr, _listener, _fillers) = unanswering().await;
    let mut http = HttpConnector::new_with_resolver(TracingResolver::new(GaiResolver::new()));
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_millis(100)));
    let client = TraceLayer::new().layer(
        Client::builder(TokioExecutor::new())
            .build::<_, httptrace::RequestBody<Body>>(TracingConnector::new(http)),
    );
    let sent = send(&client, &format!("http://{addr}/")).await;
    let events = &sent.events;
    assert_eq!(
        sequence(events),
        ["GetConn", "ConnectStart", "ConnectDone", "RequestFailed"]
    );
    assert!(
        sent.elapsed >= Duration::from_millis(100),
        "{:?}",
        sent.elapsed
    );
    assert!(sent.elapsed < Duration::from_secs(2), "{:?}", sent.elapsed);
    let connect = event(events, "ConnectDone")
        .at()
        .duration_since(event(events, "ConnectStart").at());
    assert!(connect >= Duration::from_millis(100), "{connect:?}");
    // ConnectDone's error is hyper-util's ("tcp connect error"), over an io::Error TimedOut
    let done = error_of(events, "ConnectDone");
    assert_eq!(done.to_string(), "tcp connect error");
    assert_eq!(io_kinds(done), [ErrorKind::TimedOut]);
    // the request's error: the client's message, caused by that very error
    let failed = error_of(events, "RequestFailed");
    assert_eq!(failed.to_string(), "client error (Connect)");
    assert_eq!(io_kinds(failed), [ErrorKind::TimedOut]);
    let err = sent.error.expect("the client fails");
    assert!(err.is_connect());
    assert_eq!(io_kinds(&err), [ErrorKind::TimedOut]);
    assert_paired(events);
    let server = Server::start().await;
    then_serves(&client, &server.url("/"), FRESH).await;
    then_serves(&client, &server.url("/"), REUSED).await;
}

// ---------------------------------------------------------------------------------------------
// The server resets the connection.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_the_response() {
    let addr = resetting_server(b"").await;
    let client = client();
    let sent = send(&client, &format!("http://{addr}/")).await;
    let events = &sent.events;
    assert_eq!(names_but_closed(events), written_then(&["RequestFailed"]));
    closed_matches(events, Some(ErrorKind::ConnectionReset));
    let failed = error_of(events, "RequestFailed");
    assert_eq!(failed.to_string(), "client error (SendRequest)");
    assert!(failed.downcast_ref::<RequestError>().is_some());
    assert_eq!(io_kinds(failed), [ErrorKind::ConnectionReset]);
    assert!(event(events, "WroteRequest").error().is_none());
    let err = sent.error.expect("the client fails");
    assert_eq!(io_kinds(&err), [ErrorKind::ConnectionReset]);
    assert_paired(events);
    then_a_new_server_serves(&client, FRESH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_in_the_middle_of_the_head() {
    let addr = resetting_server(b"HTTP/1.1 200 OK\r\ncontent-le").await;
    let client = client();
    let sent = send(&client, &format!("http://{addr}/")).await;
    let events = &sent.events;
    assert_eq!(
        names_but_closed(events),
        written_then(&["GotFirstResponseByte", "RequestFailed"])
    );
    closed_matches(events, Some(ErrorKind::ConnectionReset));
    let failed = error_of(events, "RequestFailed");
    assert_eq!(failed.to_string(), "client error (SendRequest)");
    assert_eq!(io_kinds(failed), [ErrorKind::ConnectionReset]);
    let err = sent.error.expect("the client fails");
    assert_eq!(io_kinds(&err), [ErrorKind::ConnectionReset]);
    assert_paired(events);
    then_a_new_server_serves(&client, FRESH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_in_the_middle_of_the_body() {
    let addr = resetting_server(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789").await;
    let client = client();
    let sent = send(&client, &format!("http://{addr}/")).await;
    let events = &sent.events;
    assert_eq!(
        names_but_closed(events),
        written_then(&[
            "GotFirstResponseByte",
            "ResponseHeaders",
            "ResponseBodyDone"
        ])
    );
    closed_matches(events, Some(ErrorKind::ConnectionReset));
    match event(events, "ResponseBodyDone") {
        Event::ResponseBodyDone(done) => {
            assert_eq!(done.bytes, 10, "the 10 bytes before the reset")
        }
        _ => unreachable!(),
    }
    let body = error_of(events, "ResponseBodyDone");
    assert_eq!(body.to_string(), "error reading a body from connection");
    assert_eq!(io_kinds(body), [ErrorKind::ConnectionReset]);
    assert!(sent.error.is_none(), "the head came");
    let err = sent.body_error.expect("the body fails");
    // hyper's `Kind::Body` (no predicate for it): its message, over the reset
    assert_eq!(err.to_string(), "error reading a body from connection");
    assert_eq!(io_kinds(&err), [ErrorKind::ConnectionReset]);
    assert_paired(events);
    then_a_new_server_serves(&client, FRESH).await;
}

// ---------------------------------------------------------------------------------------------
// The server closes a keep-alive connection.

/// The server closes the connection 20 ms after its first response, while it idles in the
/// client's pool. By the next request, 100 ms later, the connection's task has read the end of
/// the stream and hyper-util discards it: the next request dials afresh (the same sequence as
/// any fresh request; a stale connection would not show up in its events either, as hyper-util
/// retries a request its connection never took).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_closes_an_idle_pooled_connection() {
    let (addr, conns) = raw_server(|n, mut s| async move {
        while read_head(&mut s).await {
            if s.write_all(HELLO).await.is_err() {
                return;
            }
            if n == 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return; // FIN, the client's connection idle in its pool
            }
        }
    })
    .await;
    let client = client();
    let url = format!("http://{addr}/");
    let first = send(&client, &url).await;
    assert_eq!(sequence(&first.events), FRESH);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let next = send(&client, &url).await;
    assert_eq!(sequence(&next.events), FRESH);
    assert!(next.error.is_none() && next.body_error.is_none());
    assert_ne!(
        got_conn(&next.events).conn_id,
        got_conn(&first.events).conn_id
    );
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    assert_paired(&next.events);
    then_serves(&client, &url, REUSED).await;
}

/// The server takes the next request on its keep-alive connection, then closes it without an
/// answer: the request was written on a reused connection, so hyper-util doesn't retry it, and
/// hyper reports an incomplete message. No I/O error happened (a clean end of stream): the
/// request's error has no I/O cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_closes_a_pooled_connection_as_the_next_request_arrives() {
    let (addr, conns) = raw_server(|n, mut s| async move {
        while read_head(&mut s).await {
            if n == 1 && s.write_all(HELLO).await.is_ok() && read_head(&mut s).await {
                return; // FIN, after reading the second request
            }
            if n > 1 && s.write_all(HELLO).await.is_err() {
                return;
            }
        }
    })
    .await;
    let client = client();
    let url = format!("http://{addr}/");
    assert_eq!(sequence(&send(&client, &url).await.events), FRESH);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sent = send(&client, &url).await;
    let events = &sent.events;
    assert_eq!(
        names_but_closed(events),
        [
            "GetConn",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "RequestFailed"
        ]
    );
    closed_matches(events, None);
    let got = got_conn(events);
    assert!(got.reused && got.was_idle, "{got:?}");
    let failed = error_of(events, "RequestFailed");
    assert_eq!(failed.to_string(), "client error (SendRequest)");
    assert!(failed.source().is_none(), "{failed:?}");
    let err = sent.error.expect("the client fails");
    let hyper_err = causes(&err)
        .into_iter()
        .find_map(|e| e.downcast_ref::<hyper::Error>())
        .expect("hyper's error");
    assert!(hyper_err.is_incomplete_message(), "{hyper_err:?}");
    assert!(io_kinds(&err).is_empty(), "{err:?}");
    assert_paired(events);
    then_serves(&client, &url, FRESH).await;
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

/// `ConnectionClosed` is "reported to the last request the connection served, if that request
/// is still in progress" (event.rs), and a request ends with its `ResponseBodyDone`,
/// `RequestFailed` or `RequestCanceled`: so it never comes after the end. The server here
/// answers a complete keep-alive response and closes at once (FIN), 300 times (on this machine
/// `ConnectionClosed` followed `ResponseBodyDone` in 4 to 15 of 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_closed_never_comes_after_the_end_of_the_request() {
    let (addr, _) = raw_server(|_, mut s| async move {
        if read_head(&mut s).await {
            let _ = s.write_all(HELLO).await;
        }
    })
    .await;
    let client = client();
    let url = format!("http://{addr}/");
    let mut after_the_end = 0;
    let mut closed = 0;
    for _ in 0..300 {
        let sent = send(&client, &url).await;
        // nothing of the request is alive now: whatever came, came before this
        let events = &sent.events;
        // PutIdleConn when the client hadn't read the FIN yet at the body's end (rare)
        let seq = names_but_closed(events);
        assert!(seq == FRESH_UNPOOLED || seq == FRESH, "{seq:?}");
        closed_matches(events, None);
        let end = events
            .iter()
            .position(|e| e.name() == "ResponseBodyDone")
            .unwrap();
        if let Some(at) = events.iter().position(|e| e.name() == "ConnectionClosed") {
            closed += 1;
            if at > end {
                after_the_end += 1;
            }
        }
    }
    assert_eq!(
        after_the_end, 0,
        "ConnectionClosed came after ResponseBodyDone in {after_the_end} of 300 requests \
         ({closed} had one)"
    );
}

// ---------------------------------------------------------------------------------------------
// The caller gives up.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_while_waiting_for_the_head() {
    let server = Server::start().await;
    let client = client();
    let rec = Recorder::new();
    let fut = client
        .clone()
        .oneshot(traced(&server.url("/?delay_ms=500"), rec.trace()));
    let started = Instant::now();
    assert!(tokio::time::timeout(Duration::from_millis(50), fut)
        .await
        .is_err());
    assert!(started.elapsed() < Duration::from_millis(400));
    let events = rec.events();
    // hyper's connection task may notice first that nobody waits for the response, and close
    assert_eq!(
        names_but_closed(&events),
        written_then(&["RequestCanceled"])
    );
    closed_matches(&events, None);
    let canceled = error_of(&events, "RequestCanceled")
        .downcast_ref::<Canceled>()
        .expect("Canceled");
    assert_eq!(canceled.what(), "request");
    assert_paired(&events);
    // hyper closes a connection whose response nobody waits for: the next request dials
    then_serves(&client, &server.url("/"), FRESH).await;
    assert_eq!(server.conns.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(rec.events().len(), events.len(), "nothing after the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_during_the_connect() {
    let (addr, _listener, _fillers) = unanswering().await;
    let client = client();
    let rec = Recorder::new();
    let fut = client
        .clone()
        .oneshot(traced(&format!("http://{addr}/"), rec.trace()));
    assert!(tokio::time::timeout(Duration::from_millis(50), fut)
        .await
        .is_err());
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        ["GetConn", "ConnectStart", "ConnectDone", "RequestCanceled"]
    );
    match event(&events, "ConnectDone") {
        Event::ConnectDone(d) => {
            assert_eq!(d.addr, Some(addr));
            assert_eq!(d.conn_id, None);
            let canceled = d
                .error
                .as_ref()
                .unwrap()
                .get_ref()
                .downcast_ref::<Canceled>();
            assert_eq!(canceled.map(Canceled::what), Some("connect"));
        }
        _ => unreachable!(),
    }
    let canceled = error_of(&events, "RequestCanceled").downcast_ref::<Canceled>();
    assert_eq!(canceled.map(Canceled::what), Some("request"));
    assert_paired(&events);
    then_a_new_server_serves(&client, FRESH).await;
}

// ---------------------------------------------------------------------------------------------
// Nothing outlives the requests; nothing outlives the client.

/// Hooks that count their drops and hold a marker whose `Weak` tells whether they're alive.
struct Counted {
    drops: Arc<AtomicUsize>,
    _marker: Arc<()>,
}

impl Hooks for Counted {}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A loopback HTTP/1 server that counts its open connections (`delay_ms=N`, `close=1`).
struct Gauge {
    addr: SocketAddr,
    open: Arc<AtomicI64>,
}

async fn gauge_server() -> Gauge {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicI64::new(0));
    let gauge = open.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let gauge = gauge.clone();
            gauge.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
                gauge.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Gauge { addr, open }
}

async fn answer(req: http::Request<Incoming>) -> Result<http::Response<Body>, Infallible> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let param = |k: &str| {
        query.split('&').find_map(|kv| {
            let (key, v) = kv.split_once('=')?;
            (key == k).then(|| v.parse::<u64>().ok()).flatten()
        })
    };
    tokio::time::sleep(Duration::from_millis(param("delay_ms").unwrap_or(0))).await;
    let mut res = http::Response::new(Full::new(Bytes::from_static(b"hello")));
    if param("close") == Some(1) {
        res.headers_mut()
            .insert(http::header::CONNECTION, "close".parse().unwrap());
    }
    Ok(res)
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "still waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outlives_the_requests_nor_the_client() {
    let gauge = gauge_server().await;
    let drops = Arc::new(AtomicUsize::new(0));
    let markers: std::sync::Mutex<Vec<Weak<()>>> = Default::default();
    let alive = || {
        let markers = markers.lock().unwrap();
        markers.iter().filter(|m| m.upgrade().is_some()).count()
    };
    let trace = |rec: &Recorder| {
        let marker = Arc::new(());
        markers.lock().unwrap().push(Arc::downgrade(&marker));
        ClientTrace::new(Counted {
            drops: drops.clone(),
            _marker: marker,
        })
        .compose(rec.trace())
    };
    // the client holds hooks of its own, for every request
    let client_marker = Arc::new(());
    let client_weak = Arc::downgrade(&client_marker);
    let client_drops = Arc::new(AtomicUsize::new(0));
    let layer = TraceLayer::new().default_trace(ClientTrace::new(Counted {
        drops: client_drops.clone(),
        _marker: client_marker,
    }));
    let client = client_with(
        StaticResolver::answering(gauge.addr, Duration::from_millis(150)),
        layer,
    );
    let port = gauge.addr.port();

    // a plain request: its connection stays in the pool
    let rec = Recorder::new();
    get(&client, &format!("http://leak.test:{port}/"), trace(&rec)).await;
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["DNSStart", "DNSDone"]);
    assert_eq!(sequence(&rec.events()), expected);

    // a dial that goes on in the background: R0 holds connection X with a slow response; A
    // finds no idle connection and dials (a 150 ms lookup), X comes back first and serves A
    // (then closes), A's dial ends in the background and lands in the pool
    let base = format!("http://background.test:{port}");
    let r0 = Recorder::new();
    let first = tokio::spawn(
        client
            .clone()
            .oneshot(traced(&format!("{base}/?delay_ms=100"), trace(&r0))),
    );
    wait_until("R0 written", Duration::from_secs(5), || {
        r0.names().contains(&"WroteRequest")
    })
    .await;
    let a = Recorder::new();
    get(&client, &format!("{base}/?close=1"), trace(&a)).await;
    first
        .await
        .unwrap()
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert!(
        got_conn(&a.events()).reused,
        "A was served by R0's connection"
    );

    // faults: a reset in the body, a caller giving up on the head, during the connect, during
    // the lookup, a reset before the response
    let reset_addr =
        resetting_server(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789").await;
    let rec = Recorder::new();
    let res = client
        .clone()
        .oneshot(traced(&format!("http://{reset_addr}/"), trace(&rec)))
        .await
        .unwrap();
    assert!(res.into_body().collect().await.is_err());

    let give_up = |url: String, rec: Recorder, trace: ClientTrace| {
        let client = client.clone();
        async move {
            let fut = client.oneshot(traced(&url, trace));
            assert!(tokio::time::timeout(Duration::from_millis(50), fut)
                .await
                .is_err());
            let names = names_but_closed(&rec.events());
            assert_eq!(names.last(), Some(&"RequestCanceled"), "{names:?}");
        }
    };
    let rec = Recorder::new();
    give_up(
        format!("http://{}/?delay_ms=300", gauge.addr),
        rec.clone(),
        trace(&rec),
    )
    .await;
    let (silent, _listener, _fillers) = unanswering().await;
    let rec = Recorder::new();
    give_up(format!("http://{silent}/"), rec.clone(), trace(&rec)).await;
    let rec = Recorder::new();
    give_up(
        format!("http://slow-lookup.test:{port}/"),
        rec.clone(),
        trace(&rec),
    )
    .await;

    let rst_addr = resetting_server(b"").await;
    let rec = Recorder::new();
    assert!(client
        .clone()
        .oneshot(traced(&format!("http://{rst_addr}/"), trace(&rec)))
        .await
        .is_err());
    drop(rec);

    // every request is over and dropped; A's dial may still be finishing in the background,
    // holding nothing of A
    let made = markers.lock().unwrap().len();
    assert_eq!(made, 8);
    wait_until("every trace dropped", Duration::from_secs(2), || {
        drops.load(Ordering::SeqCst) == made
    })
    .await;
    assert_eq!(alive(), 0);
    // A's dial went on in the background: A reported its lookup ended (left to finish for the
    // pool) when A got its connection, and let A's trace go
    let a_events = a.events();
    assert_eq!(
        names_but_closed(&a_events),
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "ResponseHeaders",
            "ResponseBodyDone"
        ],
    );
    let left = error_of(&a_events, "DNSDone").downcast_ref::<Canceled>();
    assert_eq!(
        left.map(Canceled::what),
        Some("the request's wait for this dial")
    );

    // ...while the client and its pooled connections live on: leak.test's, and A's dial
    assert!(client_weak.upgrade().is_some());
    assert_eq!(client_drops.load(Ordering::SeqCst), 0);
    assert!(gauge.open.load(Ordering::SeqCst) >= 2, "pooled connections");
    let rec = Recorder::new();
    get(&client, &format!("http://leak.test:{port}/"), trace(&rec)).await;
    assert_eq!(sequence(&rec.events()), REUSED);
    let rec = Recorder::new();
    get(&client, &format!("{base}/"), trace(&rec)).await;
    let got = got_conn(&rec.events());
    assert!(!got.reused && got.was_idle, "A's dial, pooled: {got:?}");
    wait_until("the last traces dropped", Duration::from_secs(2), || {
        drops.load(Ordering::SeqCst) == made + 2
    })
    .await;

    // drop the client: its hooks go, and its connections close
    drop(client);
    wait_until("the client's hooks dropped", Duration::from_secs(2), || {
        client_weak.upgrade().is_none()
    })
    .await;
    assert_eq!(client_drops.load(Ordering::SeqCst), 1);
    wait_until(
        "the client's connections closed",
        Duration::from_secs(3),
        || gauge.open.load(Ordering::SeqCst) == 0,
    )
    .await;
    assert_eq!(alive(), 0);
}
