//! The sequences of SEMANTICS.md, event for event, through hyper-util's Client on loopback.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use httptrace::{Event, Recorder, TraceLayer};
use httptrace_test_support::clients::{
    client, client_with, get, server_and_client, traced, Body, StaticResolver,
};
use httptrace_test_support::events::{
    assert_paired, got_conn, names_but_closed, sequence, FRESH, FRESH_UNPOOLED, REUSED,
};
use httptrace_test_support::servers::Server;
use tower::ServiceExt;

fn go_only(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.is_go())
        .map(Event::name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_then_reused_ip_literal() {
    let (server, client) = server_and_client().await;

    let first = Recorder::new();
    let parts = get(&client, &server.url("/"), first.trace()).await;
    let events = first.events();
    assert_eq!(sequence(&events), FRESH);
    assert_eq!(
        go_only(&events),
        [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "PutIdleConn"
        ]
    );
    let conn = got_conn(&events);
    assert!(!conn.reused && !conn.was_idle);
    assert_eq!(conn.idle_time, Duration::ZERO);
    assert_eq!(conn.remote_addr, Some(server.addr));
    let peer = parts.headers["x-peer"].to_str().unwrap().parse().unwrap();
    assert_eq!(
        conn.local_addr,
        Some(peer),
        "GotConn names the connection the server saw"
    );
    match &events[1] {
        Event::ConnectStart(i) => assert_eq!(i.addr, Some(server.addr)),
        other => panic!("{other:?}"),
    }
    match &events[2] {
        Event::ConnectDone(i) => {
            assert_eq!(i.conn_id, Some(conn.conn_id));
            assert_eq!(i.addr, Some(server.addr));
            assert!(i.error.is_none());
        }
        other => panic!("{other:?}"),
    }
    match &events[0] {
        Event::GetConn(i) => assert_eq!(i.host_port(), server.addr.to_string()),
        other => panic!("{other:?}"),
    }
    assert_paired(&events);
    assert!(events
        .windows(2)
        .all(|w| w[0].at() <= w[1].at() || w[1].name() == "PutIdleConn"));

    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = Recorder::new();
    get(&client, &server.url("/"), second.trace()).await;
    let events = second.events();
    assert_eq!(sequence(&events), REUSED);
    let again = got_conn(&events);
    assert!(again.reused && again.was_idle);
    assert_eq!(again.conn_id, conn.conn_id);
    assert!(
        again.idle_time >= Duration::from_millis(15),
        "{:?}",
        again.idle_time
    );
    assert!(again.idle_time < Duration::from_secs(5));
    assert_eq!(server.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_localhost_has_dns() {
    let (server, client) = server_and_client().await;
    let rec = Recorder::new();
    let url = format!("http://localhost:{}/", server.addr.port());
    get(&client, &url, rec.trace()).await;
    let events = rec.events();
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["DNSStart", "DNSDone"]);
    assert_eq!(sequence(&events), expected);
    match (&events[1], &events[2], &events[3]) {
        (Event::DnsStart(s), Event::DnsDone(d), Event::ConnectStart(c)) => {
            assert_eq!(s.host, "localhost");
            assert!(d.error.is_none());
            assert!(d.addrs.iter().all(|ip| ip.is_loopback()), "{:?}", d.addrs);
            assert_eq!(c.at, d.at, "the connect starts when the lookup ends");
        }
        other => panic!("{other:?}"),
    }
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_resolver_dns_then_connect() {
    let server = Server::start().await;
    let resolver = StaticResolver::answering(server.addr, Duration::from_millis(5));
    let client = client_with(resolver, TraceLayer::new());
    let rec = Recorder::new();
    get(
        &client,
        &format!("http://traced.test:{}/", server.addr.port()),
        rec.trace(),
    )
    .await;
    let events = rec.events();
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["DNSStart", "DNSDone"]);
    assert_eq!(sequence(&events), expected);
    match (&events[2], &events[3]) {
        (Event::DnsDone(d), Event::ConnectStart(c)) => {
            assert_eq!(d.addrs, vec![server.addr.ip()]);
            assert_eq!(
                c.addr,
                Some(server.addr),
                "the only address is the one dialled"
            );
            assert!(d.at.duration_since(events[1].at()) >= Duration::from_millis(4));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure() {
    let resolver = StaticResolver {
        addrs: Err("no such host"),
        delay: Duration::ZERO,
    };
    let client = client_with(resolver, TraceLayer::new());
    let rec = Recorder::new();
    let err = client
        .oneshot(traced("http://nowhere.test/", rec.trace()))
        .await
        .unwrap_err();
    assert!(err.is_connect());
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        ["GetConn", "DNSStart", "DNSDone", "RequestFailed"]
    );
    let dns_err = events[2].error().expect("DNSDone carries the error");
    let io = dns_err
        .downcast_ref::<std::io::Error>()
        .expect("the resolver's own error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(io.to_string(), "no such host");
    let failed = events[3].error().unwrap();
    let cause = failed.source().expect("the cause");
    assert_eq!(cause.to_string(), "no such host");
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = client();
    let rec = Recorder::new();
    let err = client
        .oneshot(traced(&format!("http://{addr}/"), rec.trace()))
        .await
        .unwrap_err();
    assert!(err.is_connect());
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        ["GetConn", "ConnectStart", "ConnectDone", "RequestFailed"]
    );
    let mut chain = events[2]
        .error()
        .map(|e| e as &(dyn std::error::Error + 'static));
    let mut refused = false;
    while let Some(e) = chain {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain = e.source();
    }
    assert!(
        refused,
        "ConnectDone's error is the refusal: {:?}",
        events[2].error()
    );
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_has_no_put_idle_conn() {
    let (server, client) = server_and_client().await;
    let rec = Recorder::new();
    get(&client, &server.url("/?close=1"), rec.trace()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let events = rec.events();
    assert_eq!(names_but_closed(&events), FRESH_UNPOOLED);
    assert!(
        sequence(&events)
            .iter()
            .filter(|n| **n == "ConnectionClosed")
            .count()
            <= 1
    );

    // the next request needs a new connection
    let next = Recorder::new();
    get(&client, &server.url("/"), next.trace()).await;
    assert_eq!(sequence(&next.events()), FRESH);
    assert_eq!(server.conns.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_and_extension_compose_innermost_first() {
    let (server, client) = server_and_client().await;
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tag = |name: &'static str| {
        let order = order.clone();
        httptrace::ClientTrace::from_fn(move |e: &Event| {
            if e.name() == "GetConn" {
                order.lock().unwrap().push(name);
            }
        })
    };
    let default = tag("default");
    let client = {
        let layer = TraceLayer::new().default_trace(default);
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        let inner =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, httptrace::RequestBody<Body>>(httptrace::TracingConnector::new(http));
        drop(client);
        tower::Layer::layer(&layer, inner)
    };
    let req = traced(&server.url("/"), tag("extension"));
    let res = tag("outer")
        .scope(tag("inner").scope(client.oneshot(req)))
        .await
        .unwrap();
    res.into_body().collect().await.unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        ["extension", "inner", "outer", "default"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraced_request_reports_nothing_and_keeps_framing() {
    let (server, client) = server_and_client().await;
    let post = || {
        http::Request::post(server.url("/"))
            .body(Full::new(Bytes::from_static(b"twelve bytes")))
            .unwrap()
    };
    let res = client.clone().oneshot(post()).await.unwrap();
    assert_eq!(res.headers()["x-got-cl"], "12");
    assert!(res.headers().get("x-got-te").is_none());
    assert_eq!(res.headers()["x-got-len"], "12");
    res.into_body().collect().await.unwrap();

    // traced: same framing, and a GET sends no body at all
    let rec = Recorder::new();
    let mut req = post();
    req.extensions_mut().insert(rec.trace());
    let res = client.clone().oneshot(req).await.unwrap();
    assert_eq!(res.headers()["x-got-cl"], "12");
    assert!(res.headers().get("x-got-te").is_none());
    res.into_body().collect().await.unwrap();
    let parts = get(&client, &server.url("/"), rec.trace()).await;
    assert!(parts.headers.get("x-got-cl").is_none());
    assert!(parts.headers.get("x-got-te").is_none());
    assert_eq!(parts.headers["x-got-len"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_connector_a_mock_one() {
    let server = Server::start().await;
    let target = server.addr;
    // hyper-util wants an Unpin connect future, traced or not
    let mock = tower::service_fn(move |_dst: http::Uri| {
        Box::pin(async move {
            tokio::net::TcpStream::connect(target)
                .await
                .map(hyper_util::rt::TokioIo::new)
        })
    });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, httptrace::RequestBody<Body>>(httptrace::TracingConnector::new(mock));
    let client = tower::Layer::layer(&TraceLayer::new(), client);
    let rec = Recorder::new();
    get(&client, "http://mock.test/", rec.trace()).await;
    let events = rec.events();
    assert_eq!(sequence(&events), FRESH);
    match (&events[1], &events[2]) {
        (Event::ConnectStart(s), Event::ConnectDone(d)) => {
            // no lookup was seen: the connect started when the connector was called
            assert_eq!(s.addr, None);
            assert!(s.at >= events[0].at() && s.at <= d.at);
            assert_eq!(d.addr, Some(target));
        }
        other => panic!("{other:?}"),
    }
}

/// A body of a few chunks whose length only the request's `Content-Length` tells: hyper stops
/// polling it once that many bytes are written.
struct Chunks(std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_of_declared_length_is_written() {
    let server = Server::start().await;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, httptrace::RequestBody<Chunks>>(httptrace::TracingConnector::new(http));
    let client = tower::Layer::layer(&TraceLayer::new(), client);
    let rec = Recorder::new();
    let chunks: [&'static str; 3] = ["hello ", "streamed ", "world"];
    let chunks = chunks.map(|c| Bytes::from_static(c.as_bytes()));
    let mut req = http::Request::post(server.url("/"))
        .header(http::header::CONTENT_LENGTH, "20")
        .body(Chunks(chunks.into_iter().collect()))
        .unwrap();
    req.extensions_mut().insert(rec.trace());
    let res = client.clone().oneshot(req).await.unwrap();
    assert_eq!(res.headers()["x-got-len"], "20");
    assert!(res.headers().get("x-got-te").is_none());
    res.into_body().collect().await.unwrap();
    assert_eq!(sequence(&rec.events()), FRESH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_looks_at_the_body_first_changes_nothing() {
    use http_body::Body as _;
    let server = Server::start().await;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, httptrace::RequestBody<Body>>(httptrace::TracingConnector::new(http));
    // between httptrace and the client, a layer asks the body whether it is empty
    let client = tower::ServiceBuilder::new()
        .layer(TraceLayer::new())
        .map_request(|req: http::Request<httptrace::RequestBody<Body>>| {
            let _ = req.body().is_end_stream();
            req
        })
        .service(client);
    for expected in [FRESH, REUSED] {
        let rec = Recorder::new();
        let res = client
            .clone()
            .oneshot(traced(&server.url("/"), rec.trace()))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
        assert_eq!(sequence(&rec.events()), expected);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
