//! The real client over `test_util::MemoryConnector`: every event of Go's fresh and reused
//! HTTP/1 sequences, TLS, HTTP/2, closes, breaks and refusals, with exact instants under a
//! paused clock (the connections are in memory: no time passes but the scripted one).
#![cfg(feature = "test-util")]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httptrace::test_util::{MemoryConnector, Plan};
use httptrace::{Event, Recorder, RequestBody, TraceLayer};
use httptrace_test_support::events::{
    assert_paired, causes, got_conn, names_but_closed, sequence, sequence_but_lost_dial,
    with_handshake, FRESH, FRESH_UNPOOLED, REUSED,
};
use httptrace_test_support::h2::STREAM;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// The server: answers `body` after sleeping the milliseconds of the path (`/40`).
fn server(
    body: &'static [u8],
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync
       + 'static {
    hyper::service::service_fn(
        move |req: http::Request<hyper::body::Incoming>| async move {
            let ms = req.uri().path()[1..].parse().unwrap_or(0);
            tokio::time::sleep(MS(ms)).await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(body))))
        },
    )
}

type Svc = httptrace::Trace<
    Client<
        httptrace::TracingConnector<MemoryConnector, httptrace::test_util::MemoryTls>,
        RequestBody<Empty<Bytes>>,
    >,
>;

fn client(connector: MemoryConnector, http2: bool) -> Svc {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(http2);
    TraceLayer::new().layer(builder.build(connector.traced()))
}

/// Sends a GET to `url` traced by a new recorder; its events once the body is read (or the
/// failure).
async fn get(svc: &Svc, url: &str) -> (Vec<Event>, Result<Bytes, String>) {
    let rec = Recorder::new();
    let mut req = http::Request::get(url).body(Empty::new()).unwrap();
    req.extensions_mut().insert(rec.trace());
    let body = match svc.clone().ready().await.unwrap().call(req).await {
        Ok(res) => res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    (rec.events(), body)
}

fn at(events: &[Event], name: &str) -> std::time::Instant {
    events.iter().find(|e| e.name() == name).unwrap().at()
}

#[tokio::test(start_paused = true)]
async fn fresh_then_reused_with_exact_instants() {
    let connector = MemoryConnector::new(server(b"hello")).plan(|_| Plan::new().connect(MS(5)));
    let svc = client(connector.clone(), false);

    let (fresh, body) = get(&svc, "http://api.test/40").await;
    assert_eq!(body.unwrap(), "hello");
    assert_eq!(sequence(&fresh), FRESH);
    assert_paired(&fresh);
    assert_eq!(
        at(&fresh, "ConnectDone") - at(&fresh, "ConnectStart"),
        MS(5)
    );
    assert_eq!(
        at(&fresh, "GotFirstResponseByte") - at(&fresh, "WroteRequest"),
        MS(40)
    );
    let got = got_conn(&fresh);
    assert_eq!(got.local_addr, Some("127.0.0.1:49152".parse().unwrap()));
    assert_eq!(got.remote_addr, Some("127.0.0.1:80".parse().unwrap()));

    tokio::time::sleep(MS(100)).await;
    let (reused, _) = get(&svc, "http://api.test/10").await;
    assert_eq!(sequence(&reused), REUSED);
    let got = got_conn(&reused);
    assert!(got.reused && got.was_idle);
    // idle from the first response's last read to this request's GotConn: the test's sleep
    assert_eq!(got.idle_time, MS(100));
    assert_eq!(connector.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_planned_tls_handshake_is_reported() {
    let connector =
        MemoryConnector::new(server(b"hello")).plan(|_| Plan::new().connect(MS(5)).tls(MS(12)));
    let svc = client(connector, false);
    let (events, _) = get(&svc, "https://api.test/0").await;
    assert_eq!(sequence(&events), with_handshake(FRESH));
    assert_eq!(
        at(&events, "TLSHandshakeDone") - at(&events, "TLSHandshakeStart"),
        MS(12)
    );
    let state = events
        .iter()
        .find_map(|e| match e {
            Event::TlsHandshakeDone(d) => d.state.clone(),
            _ => None,
        })
        .expect("a TLS state");
    assert_eq!(state.version, "TLSv1.3");
    assert_eq!(state.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(state.server_name.as_deref(), Some("api.test"));
}

#[tokio::test(start_paused = true)]
async fn http2_streams_over_memory() {
    let connector = MemoryConnector::new(server(b"h2")).plan(|_| Plan::new().http2());
    let svc = client(connector.clone(), false);
    // a stream's own events, after its GetConn
    let stream = &STREAM[1..];
    let (first, body) = get(&svc, "http://api.test/20").await;
    assert_eq!(body.unwrap(), "h2");
    let mut expected = vec!["GetConn", "ConnectStart", "ConnectDone", "Http2Ready"];
    expected.extend(stream);
    assert_eq!(sequence(&first), expected);
    assert_eq!(
        at(&first, "GotFirstResponseByte") - at(&first, "WroteRequest"),
        MS(20)
    );
    assert_eq!(got_conn(&first).http2.unwrap().stream_id, Some(1));

    let (second, _) = get(&svc, "http://api.test/0").await;
    let mut expected = vec!["GetConn"];
    expected.extend(stream);
    assert_eq!(sequence(&second), expected);
    let got = got_conn(&second);
    assert!(got.reused);
    assert_eq!(got.http2.unwrap().stream_id, Some(3));
    assert_eq!(connector.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_closed_after_its_first_request_is_not_pooled() {
    let connector = MemoryConnector::new(server(b"bye")).plan(|_| Plan::new().close_after(1));
    let svc = client(connector.clone(), false);
    let (first, _) = get(&svc, "http://api.test/0").await;
    assert_eq!(names_but_closed(&first), FRESH_UNPOOLED);
    let (second, _) = get(&svc, "http://api.test/0").await;
    assert_eq!(names_but_closed(&second), FRESH_UNPOOLED);
    assert_eq!(connector.connections(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_response_broken_mid_body_fails_its_body() {
    static BODY: [u8; 4096] = [b'x'; 4096];
    // the head and a part of the body, then the end of the stream
    let connector = MemoryConnector::new(server(&BODY)).plan(|_| Plan::new().break_after(1024));
    let svc = client(connector, false);
    let (events, body) = get(&svc, "http://api.test/0").await;
    assert!(body.is_err(), "{body:?}");
    assert_eq!(names_but_closed(&events), FRESH_UNPOOLED);
    let done = events.last().unwrap();
    assert_eq!(done.name(), "ResponseBodyDone");
    assert!(done.error().is_some(), "{done:?}");
}

#[tokio::test(start_paused = true)]
async fn a_refused_connect_fails_the_request() {
    let connector = MemoryConnector::new(server(b"")).plan(|_| Plan::new().connect(MS(3)).refuse());
    let svc = client(connector, false);
    let (events, body) = get(&svc, "http://api.test/0").await;
    assert!(body.is_err());
    assert_eq!(
        sequence(&events),
        ["GetConn", "ConnectStart", "ConnectDone", "RequestFailed"]
    );
    assert_eq!(
        at(&events, "ConnectDone") - at(&events, "ConnectStart"),
        MS(3)
    );
    let refused = causes(events[2].error().unwrap())
        .iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    assert!(refused, "{:?}", events[2]);
    assert_paired(&events);
}

/// On the multi-thread runtime (real time): concurrent requests over memory connections, each
/// with its own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_events() {
    let connector = MemoryConnector::new(server(b"ok"));
    let svc = client(connector.clone(), false);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16u64 {
        let svc = svc.clone();
        tasks.spawn(async move { get(&svc, &format!("http://api.test/{}", i % 4)).await });
    }
    let mut conns = std::collections::HashSet::new();
    while let Some(res) = tasks.join_next().await {
        let (events, body) = res.unwrap();
        assert_eq!(body.unwrap(), "ok");
        // a request may start a dial that another connection outruns
        let seq = sequence_but_lost_dial(&events);
        assert!(seq == FRESH || seq == REUSED, "{seq:?}");
        assert_paired(&events);
        conns.insert(got_conn(&events).conn_id);
    }
    assert!(conns.len() as u64 <= connector.connections());
}
