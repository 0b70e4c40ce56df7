//! HTTP/2 on hyper-util's client, h2c (`http2_only`) and TLS with ALPN `h2`: each request's
//! events name its stream exactly and happen when its frames cross the wire, or are left out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use httptrace::{Event, Recorder, RequestBody, TraceLayer, TracingConnector};
use httptrace_test_support::clients::{request, traced, Body, SendTraced};
use httptrace_test_support::events::{assert_paired, got_conn, names, names_but_closed, wait_for};
use httptrace_test_support::h2::{
    at, fetch, get_around_the_layer, h2_server, h2c_client, h2c_inner, own, Answered, STREAM,
};
use httptrace_test_support::hooks::DropCounted;
use httptrace_test_support::load::{rng, run_h2_load};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

fn stream_id(events: &[Event]) -> Option<u32> {
    got_conn(events).http2.expect("an HTTP/2 GotConn").stream_id
}

/// 64 concurrent requests with shuffled delays on one connection, each with its own trace, on
/// a layer that traces every request (it records `Timings`), so each stream is known: each
/// request's events are checked whole, and its wire events against what the server saw of it.
/// On a new connection (`first_id` 1) one of them dials it, and its events are returned.
async fn sixty_four_exact(
    client: impl SendTraced + Send + 'static,
    base: &str,
    seen: &Answered,
    first_id: u32,
) -> Vec<Event> {
    // delays 0, 3, 6... ms, shuffled: the streams end out of order
    let mut next = rng(7);
    let mut delays: Vec<u64> = (0..64).map(|i| i * 3).collect();
    for i in (1..delays.len()).rev() {
        delays.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for &d in &delays {
        tasks.spawn(fetch(client.clone(), format!("{base}/{d}")));
    }
    // stream ids by connection
    let mut ids: HashMap<u64, BTreeSet<u32>> = HashMap::new();
    let mut dialler_events = Vec::new();
    let mut dialled_conns = BTreeSet::new();
    // (connection, when the request started, whether it says it waited for the connect)
    let mut others = Vec::new();
    let mut connected_at = HashMap::new();
    while let Some(res) = tasks.join_next().await {
        let (events, body) = res.unwrap();
        let path = body.unwrap();
        let got = got_conn(&events);
        let h2 = got.http2.clone().unwrap();
        assert_eq!(got.derived, None);
        let id = h2.stream_id.expect("every stream is known");
        assert!(
            ids.entry(got.conn_id).or_default().insert(id),
            "stream {id} given twice"
        );
        let seq = names(&events);
        let dialled = events.iter().find_map(|e| match e {
            Event::ConnectDone(d) => d.conn_id,
            _ => None,
        });
        if dialled == Some(got.conn_id) {
            assert!(
                dialled_conns.insert(got.conn_id),
                "one connection, one dial"
            );
            // the connect, then the stream; the server's SETTINGS come when they come: after
            // the connect (and TLS), before the response (hyper-util hands the connection out
            // without waiting for them)
            let (connect, got_at) = (
                seq.iter().position(|n| *n == "ConnectStart").unwrap(),
                seq.iter().position(|n| *n == "GotConn").unwrap(),
            );
            let ready = seq
                .iter()
                .position(|n| *n == "Http2Ready")
                .expect("Http2Ready");
            let first_byte = seq
                .iter()
                .position(|n| *n == "GotFirstResponseByte")
                .unwrap();
            assert!(
                connect < got_at && ready > connect && ready < first_byte,
                "{seq:?}"
            );
            connected_at.insert(got.conn_id, at(&events, "ConnectDone"));
            if dialler_events.is_empty() {
                dialler_events = events.clone();
            }
        } else {
            others.push((got.conn_id, at(&events, "GetConn"), h2.waited_for_connect));
        }
        // a connect of its own that hyper-util finished in the background (another request's
        // connection was ready first) is reported too, wherever it ends; set it aside
        assert_eq!(own(&events), STREAM, "{path}");
        // the wire events are this stream's: its request was written by when the server got it
        // (give or take the scheduling: the write returns as the server may already read it),
        // and its first response byte came after the server answered it (the answers are 3 ms
        // apart: a stream answered earlier would show here as early)
        let (got_at, answered_at) = seen.lock().unwrap()[&path];
        assert!(
            at(&events, "WroteRequest") <= got_at + Duration::from_millis(25),
            "{path}"
        );
        let first_byte = at(&events, "GotFirstResponseByte");
        assert!(
            first_byte >= answered_at,
            "{path}: a byte of an earlier answer"
        );
        assert!(first_byte <= at(&events, "ResponseHeaders"));
        assert!(
            first_byte < answered_at + Duration::from_millis(100),
            "{path}: late"
        );
        assert_paired(&events);
    }
    // on each connection, hyper's stream ids, in order, with none missing: every stream known
    assert_eq!(ids.values().map(BTreeSet::len).sum::<usize>(), 64);
    for (conn, ids) in &ids {
        let first = *ids.first().unwrap();
        assert!(
            first == 1 || first == first_id,
            "connection {conn}: {ids:?}"
        );
        let expected: BTreeSet<u32> = (0..ids.len() as u32).map(|k| first + 2 * k).collect();
        assert_eq!(ids, &expected, "connection {conn}: consecutive streams");
    }
    if first_id == 1 {
        assert!(!dialler_events.is_empty(), "one request dialled");
        // a request that started before the connection was even made can only have waited for it
        for (conn, started, waited) in &others {
            if connected_at.get(conn).is_some_and(|done| started < done) {
                assert!(waited, "started before the connect ended, yet not waited");
            }
        }
    }
    dialler_events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_64_streams_each_exact_and_its_own() {
    let (addr, seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let dialler = sixty_four_exact(client, &format!("http://{addr}"), &seen, 1).await;
    assert_eq!(
        names(&dialler)[..3],
        ["GetConn", "ConnectStart", "ConnectDone"]
    );
}

/// The same over TLS, HTTP/2 chosen by ALPN: the dialler sees the handshake agree on `h2`.
#[cfg(feature = "rustls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_h2_64_streams_each_exact_and_its_own() {
    use httptrace_test_support::clients::StaticResolver;
    use httptrace_test_support::h2::h2_server_over;
    use httptrace_test_support::tls;

    let cert = tls::cert_for(&["localhost"]);
    let mut config = tls::server_config(&cert, &[&rustls::version::TLS13]);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (addr, seen) = h2_server_over(None, move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            acceptor
                .accept(tcp)
                .await
                .ok()
                .map(hyper_util::rt::TokioIo::new)
        }
    })
    .await;

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let resolver = StaticResolver::answering(addr, Duration::ZERO);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(&cert, &[&rustls::version::TLS13]))
        .https_only()
        .enable_all_versions()
        .wrap_connector(httptrace::connect::TracingTransport::new(
            httptrace::connect::PerAddressConnector::new(http, resolver),
        ));
    let client = Client::builder(TokioExecutor::new()).build::<_, RequestBody<Body>>(
        TracingConnector::with_inspector(https, httptrace::connect::Rustls),
    );
    let client = TraceLayer::new().record_timings(true).layer(client);
    let base = format!("https://localhost:{}", addr.port());
    // the first request makes the connection: until ALPN tells, hyper-util can't know it will
    // be shared, so concurrent first requests would each dial one
    let (first, body) = fetch(client.clone(), format!("{base}/0")).await;
    assert_eq!(body.unwrap(), "/0");
    let mut seq = names(&first);
    let ready = seq
        .iter()
        .position(|n| *n == "Http2Ready")
        .expect("Http2Ready");
    seq.remove(ready);
    assert_eq!(
        seq,
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "TLSHandshakeStart",
            "TLSHandshakeDone",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "ResponseHeaders",
            "ResponseBodyDone"
        ]
    );
    assert!(
        (7..=10).contains(&ready),
        "after the handshake, before the answer"
    );
    let tls = first
        .iter()
        .find_map(|e| match e {
            Event::TlsHandshakeDone(i) => i.state.clone(),
            _ => None,
        })
        .expect("the handshake's state");
    assert_eq!(tls.alpn.as_deref(), Some(&b"h2"[..]));
    let got = got_conn(&first);
    assert!(!got.reused && !got.was_idle);
    assert_eq!(got.http2.unwrap().stream_id, Some(1));
    // then 64 at once on it
    sixty_four_exact(client, &base, &seen, 3).await;
}

/// A connector observer, recording what it sees.
fn observed() -> (Recorder, TracingConnector<HttpConnector>) {
    let rec = Recorder::new();
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let connector = TracingConnector::new(http).observe_connections(rec.trace());
    (rec, connector)
}

/// The server shuts the connection down gracefully (GOAWAY) once it got 8 requests: the 8 in
/// flight each hear of it and complete; the next request dials a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_mid_flight_reaches_the_streams_in_flight() {
    let (addr, _seen) = h2_server(Some(8)).await;
    let (observer, connector) = observed();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, RequestBody<Body>>(connector);
    let client = TraceLayer::new().record_timings(true).layer(client);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        tasks.spawn(fetch(client.clone(), format!("http://{addr}/40")));
    }
    let mut conn_ids = BTreeSet::new();
    while let Some(res) = tasks.join_next().await {
        let (events, body) = res.unwrap();
        assert_eq!(body.unwrap(), "/40");
        conn_ids.insert(got_conn(&events).conn_id);
        let seq: Vec<&str> = names_but_closed(&events)
            .into_iter()
            .filter(|n| !["ConnectStart", "ConnectDone", "Http2Ready"].contains(n))
            .collect();
        // hyper's graceful shutdown sends GOAWAY twice: "no new streams", then the last one
        let goaways = seq.iter().filter(|n| **n == "GoAway").count();
        assert!((1..=2).contains(&goaways), "{seq:?}");
        let without: Vec<&str> = seq.iter().copied().filter(|n| *n != "GoAway").collect();
        assert_eq!(without, STREAM);
        // the GOAWAY came while the request waited for its answer
        let first = seq.iter().position(|n| *n == "GoAway").unwrap();
        assert!(first > 3 && first < seq.len() - 1, "{seq:?}");
        for e in &events {
            if let Event::GoAway(g) = e {
                assert_eq!(g.error_code, 0, "graceful");
                assert_eq!(g.conn_id, got_conn(&events).conn_id);
            }
        }
    }
    assert_eq!(conn_ids.len(), 1, "one connection");
    wait_for(&observer, "ConnectionClosed").await;
    // the observer's view of that connection (hyper-util may have begun another one)
    let conn = *conn_ids.first().unwrap();
    let of_conn: Vec<Event> = observer
        .events()
        .into_iter()
        .filter(|e| match e {
            Event::ConnectDone(d) => d.conn_id == Some(conn),
            Event::Http2Ready(r) => r.conn_id == conn,
            Event::GoAway(g) => g.conn_id == conn,
            Event::ConnectionClosed(c) => c.conn_id == conn,
            _ => false,
        })
        .collect();
    let seen: Vec<&str> = names(&of_conn)
        .into_iter()
        .filter(|n| *n != "GoAway")
        .collect();
    assert_eq!(seen, ["ConnectDone", "Http2Ready", "ConnectionClosed"]);
    assert!(names(&of_conn).contains(&"GoAway"));
    match of_conn.last() {
        Some(Event::ConnectionClosed(c)) => assert_eq!(c.requests, 8),
        other => panic!("{other:?}"),
    }

    // the client goes on, on a new connection
    let (events, body) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(body.unwrap(), "/0");
    assert!(names(&events).contains(&"ConnectStart"));
    assert!(!conn_ids.contains(&got_conn(&events).conn_id));
    assert_eq!(stream_id(&events), Some(1));
}

/// The server resets one stream (RST_STREAM): that request hears it and fails; the others on the
/// same connection complete, each with its own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_stream_fails_its_request_only() {
    let (addr, _seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    // one connection first, so that all the streams below share it
    let (warm, _) = fetch(client.clone(), format!("http://{addr}/0")).await;
    let conn = got_conn(&warm).conn_id;
    let mut tasks = tokio::task::JoinSet::new();
    for path in ["/20", "/20", "/reset", "/20", "/20"] {
        tasks.spawn(fetch(client.clone(), format!("http://{addr}{path}")));
    }
    let mut failed = 0;
    while let Some(res) = tasks.join_next().await {
        let (events, body) = res.unwrap();
        assert_eq!(got_conn(&events).conn_id, conn);
        match body {
            Ok(path) => {
                assert_eq!(path, "/20");
                assert_eq!(names(&events), STREAM);
            }
            Err(_) => {
                failed += 1;
                assert_eq!(
                    names(&events),
                    // no response frame came: the reset is not a response byte
                    [
                        "GetConn",
                        "GotConn",
                        "WroteHeaders",
                        "WroteRequest",
                        "StreamReset",
                        "RequestFailed"
                    ]
                );
                let reset = events
                    .iter()
                    .find_map(|e| match e {
                        Event::StreamReset(r) => Some(r.clone()),
                        _ => None,
                    })
                    .unwrap();
                assert!(reset.by_server);
                assert_eq!(reset.error_code, 2, "INTERNAL_ERROR");
                assert_eq!(Some(reset.stream_id), stream_id(&events));
            }
        }
    }
    assert_eq!(failed, 1);
}

/// A layer that doesn't trace every request: untraced requests may open streams nobody
/// registers, so no stream is named and no wire event is given; the connection is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraced_requests_on_the_connection_leave_streams_unnamed() {
    let (addr, _seen) = h2_server(None).await;
    let (observer, connector) = observed();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, RequestBody<Body>>(connector);
    let client = TraceLayer::new().layer(client);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (client, url) = (client.clone(), format!("http://{addr}/{}", i % 4));
        tasks.spawn(async move {
            if i % 2 == 0 {
                // untraced
                let res = client.oneshot(request(&url)).await.unwrap();
                res.into_body().collect().await.unwrap();
                return None;
            }
            let timings = httptrace::Timings::new();
            let rec = Recorder::new();
            let res = client
                .oneshot(traced(&url, rec.trace().compose(timings.trace())))
                .await
                .unwrap();
            res.into_body().collect().await.unwrap();
            // no wire event: the phases that need one aren't known
            assert!(timings.is_complete() && timings.total().is_some());
            assert_eq!(timings.server_processing(), None);
            assert_eq!(timings.content_transfer(), None);
            Some(rec.events())
        });
    }
    let mut conns = BTreeSet::new();
    while let Some(res) = tasks.join_next().await {
        let Some(events) = res.unwrap() else { continue };
        let got = got_conn(&events);
        conns.insert(got.conn_id);
        assert!(got.derived.is_some());
        assert_eq!(got.http2.as_ref().unwrap().stream_id, None);
        let seq: Vec<&str> = names(&events)
            .into_iter()
            .filter(|n| !["ConnectStart", "ConnectDone", "Http2Ready"].contains(n))
            .collect();
        assert_eq!(
            seq,
            ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
        );
    }
    assert_eq!(conns.len(), 1);
    wait_for(&observer, "Http2Ready").await;
    let ready = observer
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Http2Ready(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(ready.conn_id, *conns.first().unwrap());
    // hyper's server allows 200 concurrent streams by default
    assert_eq!(ready.max_concurrent_streams, Some(200));
}

/// A pooled HTTP/2 connection keeps no trace of the requests it served alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_http2_connections_keep_no_trace_alive() {
    let (addr, _seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..4 {
        let trace = httptrace::ClientTrace::new(DropCounted(drops.clone()));
        let mut req = request(&format!("http://{addr}/{i}"));
        req.extensions_mut().insert(trace);
        let res = client.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
        // the connection stays in the pool, the trace is gone
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), i + 1);
    }
}

/// Load with connections coming and going: 3,000 requests, 128 at a time, random delays, on h2c
/// connections the server shuts down (GOAWAY) after 200 requests each. Every request that gets
/// a response has its whole sequence, a stream no other request has, and its own first byte;
/// every request ends once. (`examples/stress.rs --http2` runs the same for millions.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_goaways_stays_exact() {
    const REQUESTS: u64 = 3_000;
    let (addr, seen) = h2_server(Some(200)).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let report = run_h2_load(
        &client,
        addr,
        &seen,
        REQUESTS,
        128,
        Duration::from_secs(60),
        |_| {},
    )
    .await;
    println!("{report}");
    assert_eq!(report.violations, 0, "{report}");
    assert_eq!(
        report.ok + report.failed + report.stalled,
        REQUESTS,
        "bounded in time"
    );
    assert!(report.connections >= 10, "the server shut connections down");
    // a stream the server refuses in its GOAWAY fails (hyper-util doesn't retry it): the bare
    // client loses as many here (160-270 of 3,000 in our runs); tracing adds no failure of its own
    assert!(report.failed * 4 < REQUESTS, "{report}");
}

/// A request's own stream counts from its first `HEADERS`: the server's `WINDOW_UPDATE`s for a
/// large request body are not the response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_gets_its_first_byte_after_the_body() {
    let (addr, _seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let rec = Recorder::new();
    // past hyper's server's stream window (1 MiB): the server sends WINDOW_UPDATEs mid-body
    let body = Body::from(vec![7u8; 4 << 20]);
    let mut req = http::Request::post(format!("http://{addr}/0"))
        .body(body)
        .unwrap();
    req.extensions_mut().insert(rec.trace());
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    res.into_body().collect().await.unwrap();
    let events = rec.events();
    assert_eq!(own(&events), STREAM);
    assert!(at(&events, "WroteRequest") <= at(&events, "GotFirstResponseByte"));
}

/// A request sent on the client without the layer (an untraced `RequestBody`) takes a stream id
/// nobody registered: the next traced request sees the wire past its prediction and names no
/// stream, rather than another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opened_around_the_layer_ends_the_mapping() {
    let (addr, _seen) = h2_server(None).await;
    let inner = h2c_inner();
    let client = TraceLayer::new().record_timings(true).layer(inner.clone());
    let (a, _) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(stream_id(&a), Some(1));
    // around the layer: stream 3, unregistered
    get_around_the_layer(&inner, format!("http://{addr}/0")).await;
    let (c, body) = fetch(client.clone(), format!("http://{addr}/5")).await;
    assert_eq!(body.unwrap(), "/5");
    assert_eq!(got_conn(&c).conn_id, got_conn(&a).conn_id);
    assert_eq!(stream_id(&c), None, "stream 3 was taken: no guess");
    assert!(got_conn(&c).derived.is_some());
    assert_eq!(
        names(&c),
        ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
    );
}

/// The first stream of a connection sent around the layer: the traced request after it sees
/// the wire already past its prediction, and names no stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_stream_around_the_layer_is_seen_at_the_next_registration() {
    let (addr, _seen) = h2_server(None).await;
    let inner = h2c_inner();
    let client = TraceLayer::new().record_timings(true).layer(inner.clone());
    get_around_the_layer(&inner, format!("http://{addr}/0")).await;
    let (b, body) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(body.unwrap(), "/0");
    assert_eq!(stream_id(&b), None, "stream 1 was taken: no guess");
    assert_eq!(
        names(&b),
        ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
    );
}

/// A request made before another that carries the caller's own capture, but sent after it:
/// whether its layer still counts every stream is read when its stream opens, not when it was
/// made, so it doesn't take the uncounted request's stream id.
#[tokio::test(flavor = "current_thread")]
async fn the_callers_capture_counts_when_the_stream_opens() {
    use tower::Service;
    let (addr, _seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let (warm, _) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(stream_id(&warm), Some(1));
    // A is made first, B (with the caller's capture) second; hyper sends B first
    let rec_a = Recorder::new();
    let mut svc_a = client.clone();
    let fut_a = svc_a
        .ready()
        .await
        .unwrap()
        .call(traced(&format!("http://{addr}/0"), rec_a.trace()));
    let mut req_b = traced(&format!("http://{addr}/0"), Recorder::new().trace());
    let _theirs = hyper_util::client::legacy::connect::capture_connection(&mut req_b);
    let mut svc_b = client.clone();
    let fut_b = svc_b.ready().await.unwrap().call(req_b);
    let (res_b, res_a) = tokio::join!(fut_b, fut_a);
    res_a.unwrap().into_body().collect().await.unwrap();
    res_b.unwrap().into_body().collect().await.unwrap();
    let a = rec_a.events();
    assert_eq!(stream_id(&a), None, "{:?}", got_conn(&a));
    assert_eq!(
        names(&a),
        ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
    );
}

/// A traced request that carries the caller's own hyper-util capture can't be counted (hyper-util
/// keeps one per request, and the caller's stays): the layer stops claiming that it counts every
/// stream, and the next requests name none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_own_capture_stays_and_streams_go_unnamed() {
    let (addr, _seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let (a, _) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(stream_id(&a), Some(1));

    let rec = Recorder::new();
    let mut req = traced(&format!("http://{addr}/0"), rec.trace());
    let mut theirs = hyper_util::client::legacy::connect::capture_connection(&mut req);
    let res = client.clone().oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    // the caller's capture works
    let connected = theirs.wait_for_connection_metadata().await;
    assert!(connected.as_ref().is_some());
    // this request reports what needs no binding
    assert_eq!(
        names(&rec.events()),
        ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
    );

    let (c, body) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(body.unwrap(), "/0");
    assert_eq!(stream_id(&c), None);
    assert_eq!(
        names(&c),
        ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
    );
}
