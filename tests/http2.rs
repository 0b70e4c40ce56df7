//! HTTP/2 on hyper-util's client, h2c (`http2_only`) and TLS with ALPN `h2`: each request's
//! events name its stream exactly and happen when its frames cross the wire, or are left out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use httptrace::{Event, Recorder, RequestBody, TraceLayer, TracingConnector};
use httptrace_test_support::clients::{request, traced, Body, SendTraced};
use httptrace_test_support::events::{
    assert_paired, got_conn, names_but_closed, sequence, wait_for,
};
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
        let seq = sequence(&events);
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
        let served = seen.lock().unwrap()[&path];
        let (got_at, answered_at) = (served.got, served.answered);
        // the stream is the one the server saw it on
        assert_eq!(
            (got.local_addr.unwrap().port(), id),
            (served.peer_port, served.stream_id),
            "{path}"
        );
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
        sequence(&dialler)[..3],
        ["GetConn", "ConnectStart", "ConnectDone"]
    );
}

/// The same over TLS, HTTP/2 chosen by ALPN: the dialler sees the handshake agree on `h2`.
#[cfg(feature = "rustls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_h2_64_streams_each_exact_and_its_own() {
    let (addr, seen, client) = tls_h2(TraceLayer::new().record_timings(true)).await;
    let base = format!("https://localhost:{}", addr.port());
    // the first request makes the connection: until ALPN tells, hyper-util can't know it will
    // be shared, so concurrent first requests would each dial one
    let (first, body) = fetch(client.clone(), format!("{base}/0")).await;
    assert_eq!(body.unwrap(), "/0");
    let mut seq = sequence(&first);
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

/// An h2 server over TLS (ALPN `h2`) for `localhost`, and a client through `layer` that
/// reaches it through the one-line stack's parts (a test resolver answers `localhost`).
#[cfg(feature = "rustls")]
async fn tls_h2(
    layer: TraceLayer,
) -> (
    std::net::SocketAddr,
    Answered,
    impl SendTraced + Send + 'static,
) {
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
    (addr, seen, layer.layer(client))
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
    let seen: Vec<&str> = sequence(&of_conn)
        .into_iter()
        .filter(|n| *n != "GoAway")
        .collect();
    assert_eq!(seen, ["ConnectDone", "Http2Ready", "ConnectionClosed"]);
    assert!(sequence(&of_conn).contains(&"GoAway"));
    match of_conn.last() {
        Some(Event::ConnectionClosed(c)) => assert_eq!(c.requests, 8),
        other => panic!("{other:?}"),
    }

    // the client goes on, on a new connection
    let (events, body) = fetch(client.clone(), format!("http://{addr}/0")).await;
    assert_eq!(body.unwrap(), "/0");
    assert!(sequence(&events).contains(&"ConnectStart"));
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
                assert_eq!(sequence(&events), STREAM);
            }
            Err(_) => {
                failed += 1;
                assert_eq!(
                    sequence(&events),
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

/// A layer that traces some requests only: every request is counted as hyper opens its stream,
/// so each traced one names its own stream (the one the server saw it on), gets its wire events
/// and its `Timings` every phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_requests_among_untraced_ones_name_their_own_streams() {
    let (addr, seen) = h2_server(None).await;
    let (observer, connector) = observed();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, RequestBody<Body>>(connector);
    let client = TraceLayer::new().layer(client);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (client, url) = (client.clone(), format!("http://{addr}/{}/{i}", i % 4));
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
            assert!(timings.is_complete());
            assert!(timings.server_processing().is_some());
            assert!(timings.content_transfer().is_some());
            Some((url, rec.events()))
        });
    }
    let mut conns = BTreeSet::new();
    while let Some(res) = tasks.join_next().await {
        let Some((url, events)) = res.unwrap() else {
            continue;
        };
        let path = url.rsplit_once(&addr.to_string()).unwrap().1.to_owned();
        let got = got_conn(&events);
        conns.insert(got.conn_id);
        assert_eq!(got.derived, None);
        let served = seen.lock().unwrap()[&path];
        assert_eq!(
            (got.local_addr.unwrap().port(), stream_id(&events)),
            (served.peer_port, Some(served.stream_id)),
            "{path}"
        );
        assert_eq!(own(&events), STREAM, "{path}");
        assert!(at(&events, "GotFirstResponseByte") >= served.answered);
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
        1,
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

/// A request sent on the client around the layer has a `RequestBody` too (the client is built
/// for it): it is counted as hyper opens its stream, and the traced request after it names its
/// own stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sent_around_the_layer_is_counted() {
    let (addr, seen) = h2_server(None).await;
    let inner = h2c_inner();
    let client = TraceLayer::new().record_timings(true).layer(inner.clone());
    let (a, _) = fetch(client.clone(), format!("http://{addr}/0/a")).await;
    assert_eq!(stream_id(&a), Some(1));
    // around the layer: stream 3
    get_around_the_layer(&inner, format!("http://{addr}/0/b")).await;
    let (c, body) = fetch(client.clone(), format!("http://{addr}/5/c")).await;
    assert_eq!(body.unwrap(), "/5/c");
    assert_eq!(got_conn(&c).conn_id, got_conn(&a).conn_id);
    assert_eq!(stream_id(&c), Some(5));
    assert_eq!(seen.lock().unwrap()["/5/c"].stream_id, 5);
    assert_eq!(own(&c), STREAM);
}

/// The first stream of a connection sent around the layer is counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_stream_around_the_layer_is_counted_too() {
    let (addr, seen) = h2_server(None).await;
    let inner = h2c_inner();
    let client = TraceLayer::new().record_timings(true).layer(inner.clone());
    get_around_the_layer(&inner, format!("http://{addr}/0/a")).await;
    let (b, body) = fetch(client.clone(), format!("http://{addr}/0/b")).await;
    assert_eq!(body.unwrap(), "/0/b");
    assert_eq!(stream_id(&b), Some(3));
    assert_eq!(seen.lock().unwrap()["/0/b"].stream_id, 3);
    assert_eq!(own(&b), STREAM);
}

/// A request made before another that carries the caller's own capture, but sent after it:
/// the one with the caller's capture can't find its connection (hyper-util keeps one capture
/// per request, and the caller's stays) but is counted, so the other names its own stream.
#[tokio::test(flavor = "current_thread")]
async fn a_request_with_the_callers_capture_is_still_counted() {
    use tower::Service;
    let (addr, seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let (warm, _) = fetch(client.clone(), format!("http://{addr}/0/warm")).await;
    assert_eq!(stream_id(&warm), Some(1));
    // A is made first, B (with the caller's capture) second; hyper sends B first
    let rec_a = Recorder::new();
    let mut svc_a = client.clone();
    let fut_a = svc_a
        .ready()
        .await
        .unwrap()
        .call(traced(&format!("http://{addr}/0/a"), rec_a.trace()));
    let rec_b = Recorder::new();
    let mut req_b = traced(&format!("http://{addr}/0/b"), rec_b.trace());
    let _theirs = hyper_util::client::legacy::connect::capture_connection(&mut req_b);
    let mut svc_b = client.clone();
    let fut_b = svc_b.ready().await.unwrap().call(req_b);
    let (res_b, res_a) = tokio::join!(fut_b, fut_a);
    res_a.unwrap().into_body().collect().await.unwrap();
    res_b.unwrap().into_body().collect().await.unwrap();
    let a = rec_a.events();
    let served = seen.lock().unwrap()["/0/a"];
    assert_eq!(stream_id(&a), Some(served.stream_id), "{:?}", got_conn(&a));
    assert_eq!(served.stream_id, 5);
    assert_eq!(own(&a), STREAM);
    assert_eq!(
        sequence(&rec_b.events()),
        ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
    );
}

/// A traced request that carries the caller's own hyper-util capture reports what needs no
/// binding, and the caller's capture works; the requests after it name their streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_own_capture_stays_and_the_next_streams_are_named() {
    let (addr, seen) = h2_server(None).await;
    let client = h2c_client(TraceLayer::new().record_timings(true));
    let (a, _) = fetch(client.clone(), format!("http://{addr}/0/a")).await;
    assert_eq!(stream_id(&a), Some(1));

    let rec = Recorder::new();
    let mut req = traced(&format!("http://{addr}/0/b"), rec.trace());
    let mut theirs = hyper_util::client::legacy::connect::capture_connection(&mut req);
    let res = client.clone().oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    // the caller's capture works
    let connected = theirs.wait_for_connection_metadata().await;
    assert!(connected.as_ref().is_some());
    // this request reports what needs no binding
    assert_eq!(
        sequence(&rec.events()),
        ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
    );

    let (c, body) = fetch(client.clone(), format!("http://{addr}/0/c")).await;
    assert_eq!(body.unwrap(), "/0/c");
    assert_eq!(stream_id(&c), Some(5));
    assert_eq!(seen.lock().unwrap()["/0/c"].stream_id, 5);
    assert_eq!(own(&c), STREAM);
}

/// Go's sequences over HTTP/2 with TLS (ALPN `h2`), with `TraceLayer::new()` and a trace on
/// some requests only: a fresh connection, then a reused one, each traced request with its own
/// `Recorder`, untraced requests sent between them on the same connection.
#[cfg(feature = "rustls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sequences_for_requests_traced_one_by_one() {
    let (addr, seen, client) = tls_h2(TraceLayer::new()).await;
    let base = format!("https://localhost:{}", addr.port());
    let go = |events: &[Event]| -> Vec<&'static str> {
        events
            .iter()
            .filter(|e| e.is_go())
            .map(|e| e.name())
            .collect()
    };
    let (fresh, body) = fetch(client.clone(), format!("{base}/0/fresh")).await;
    assert_eq!(body.unwrap(), "/0/fresh");
    assert_eq!(
        go(&fresh),
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
            "GotFirstResponseByte"
        ]
    );
    let got = got_conn(&fresh);
    assert!(!got.reused && !got.was_idle && got.derived.is_none());
    assert_eq!(got.http2.unwrap().stream_id, Some(1));
    // untraced requests between, on the same connection: streams 3, 5, 7
    for i in 0..3 {
        let res = client
            .clone()
            .oneshot(request(&format!("{base}/0/untraced{i}")))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
    }
    let (reused, body) = fetch(client.clone(), format!("{base}/0/reused")).await;
    assert_eq!(body.unwrap(), "/0/reused");
    assert_eq!(
        go(&reused),
        [
            "GetConn",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte"
        ]
    );
    assert_eq!(own(&reused), STREAM);
    let got = got_conn(&reused);
    assert!(got.reused && got.was_idle && got.derived.is_none());
    assert_eq!(got.http2.unwrap().stream_id, Some(9));
    let served = seen.lock().unwrap()["/0/reused"];
    assert_eq!(
        (got.local_addr.unwrap().port(), 9),
        (served.peer_port, served.stream_id)
    );
}

/// 10,000 requests, 64 at a time, one in a hundred traced, on h2c connections the server shuts
/// down (GOAWAY) after 200 requests each: every traced request that gets an answer names the
/// stream the server saw it on, has its whole sequence and its own first response byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_in_a_hundred_traced_under_goaways_stays_exact() {
    const REQUESTS: u64 = 10_000;
    let (addr, seen) = h2_server(Some(200)).await;
    let client = h2c_client(TraceLayer::new());
    let report = run_h2_load(
        &client,
        addr,
        &seen,
        REQUESTS,
        64,
        100,
        Duration::from_secs(120),
        |_| {},
    )
    .await;
    println!("{report}");
    assert_eq!(report.violations, 0, "{report}");
    assert_eq!(report.ok + report.failed + report.stalled, REQUESTS);
    assert!(report.connections >= 10, "{report}");
    // about 1% of the answered ones were traced, and checked
    assert!(
        report.traced * 100 >= report.ok * 8 / 10 && report.traced > 50,
        "{report}"
    );
}

/// HTTP/1 and HTTP/2 clients in one process, at once: the HTTP/1 load (every request traced,
/// checked against the server's view of each socket) and an HTTP/2 load with one request in
/// ten traced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_clients_at_once_in_one_process() {
    use httptrace_test_support::clients::server_and_client;
    use httptrace_test_support::load::{run_load, LoadConfig};

    let (h2_addr, seen) = h2_server(Some(150)).await;
    let h2 = h2c_client(TraceLayer::new());
    let (server, h1) = server_and_client().await;
    let cfg = LoadConfig::jittered(2_000, 64, Duration::from_secs(60));
    let (h1_report, h2_report) = tokio::join!(
        run_load(&h1, &server, &cfg, |_| {}),
        run_h2_load(
            &h2,
            h2_addr,
            &seen,
            2_000,
            64,
            10,
            Duration::from_secs(60),
            |_| {}
        )
    );
    println!("{h1_report}\n{h2_report}");
    h1_report.assert_clean(2_000);
    assert_eq!(h2_report.violations, 0, "{h2_report}");
    assert!(h2_report.traced > 100, "{h2_report}");
}

/// HTTP/2 over a connector that tells no addresses (an in-memory pipe, as a Unix socket or a
/// mock): hyper-util carries the connection to each request all the same, and traced requests
/// name their streams among untraced ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_an_in_memory_connector() {
    use httptrace_test_support::h2::in_memory_connector;

    let (connector, seen) = in_memory_connector();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, RequestBody<Body>>(TracingConnector::new(connector));
    let client = TraceLayer::new().layer(client);
    let (first, body) = fetch(client.clone(), "http://memory.test/0/a".to_owned()).await;
    assert_eq!(body.unwrap(), "/0/a");
    let seq: Vec<&str> = sequence(&first)
        .into_iter()
        .filter(|n| *n != "Http2Ready")
        .collect();
    assert_eq!(
        seq,
        [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "ResponseHeaders",
            "ResponseBodyDone"
        ]
    );
    let got = got_conn(&first);
    assert_eq!((got.local_addr, got.remote_addr), (None, None));
    assert_eq!(got.http2.unwrap().stream_id, Some(1));
    let res = client
        .clone()
        .oneshot(request("http://memory.test/0/b"))
        .await
        .unwrap();
    res.into_body().collect().await.unwrap();
    let (third, _) = fetch(client.clone(), "http://memory.test/0/c".to_owned()).await;
    let got = got_conn(&third);
    assert_eq!(got.conn_id, got_conn(&first).conn_id);
    assert_eq!(got.http2.unwrap().stream_id, Some(5));
    assert_eq!(seen.lock().unwrap()["/0/c"].stream_id, 5);
    assert_eq!(own(&third), STREAM);
}
