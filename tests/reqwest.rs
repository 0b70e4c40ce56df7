//! reqwest::Client through TraceLayer, TracingResolve, connector_layer and redirect_policy.
#![cfg(feature = "reqwest")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use httptrace::reqwest::{connector_layer, redirect_policy, TracingResolve};
use httptrace::{ClientTrace, Event, Recorder, Timings, TraceLayer};
use httptrace_test_support::events::{assert_paired, got_conn, sequence};
use httptrace_test_support::servers::Server;
use hyper_util::rt::TokioIo;
use tower::{Layer, Service, ServiceExt};

/// A reqwest resolver for tests: every name is `addrs` after `delay`; never the system.
struct StaticResolve {
    addrs: Result<Vec<SocketAddr>, &'static str>,
    delay: Duration,
}

impl reqwest::dns::Resolve for StaticResolve {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (addrs, delay) = (self.addrs.clone(), self.delay);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            match addrs {
                Ok(a) => Ok(Box::new(a.into_iter()) as reqwest::dns::Addrs),
                Err(msg) => {
                    Err(Box::new(std::io::Error::new(std::io::ErrorKind::NotFound, msg)) as _)
                }
            }
        })
    }
}

fn reqwest_client(
    addrs: Result<Vec<SocketAddr>, &'static str>,
    delay: Duration,
) -> reqwest::Client {
    httptrace_test_support::tls::install_provider();
    reqwest::Client::builder()
        .dns_resolver(TracingResolve::new(StaticResolve { addrs, delay }))
        .connector_layer(connector_layer())
        .redirect(redirect_policy(5))
        .no_proxy()
        .build()
        .unwrap()
}

type Svc = httptrace::Trace<reqwest::Client>;

/// What a test looks at in a response, once its body is read.
struct Sent {
    headers: http::HeaderMap,
    timings: Option<Timings>,
    body: Bytes,
}

/// Sends a GET through the traced service inside `trace`'s scope and reads the body.
async fn send(svc: &Svc, client: &reqwest::Client, url: &str, trace: ClientTrace) -> Sent {
    let req = client.get(url).build().unwrap();
    let mut svc = svc.clone();
    let res = trace
        .scope(async move { svc.ready().await?.call(req).await })
        .await
        .expect("response");
    let headers = res.headers().clone();
    let timings = res.extensions().get::<Timings>().cloned();
    let body = res.bytes().await.expect("body");
    Sent {
        headers,
        timings,
        body,
    }
}

const FRESH_REQWEST: &[&str] = &[
    "GetConn",
    "DNSStart",
    "DNSDone",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "ResponseHeaders",
    "PutIdleConn",
    "ResponseBodyDone",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_then_reused() {
    let server = Server::start().await;
    let client = reqwest_client(Ok(vec![server.addr]), Duration::from_millis(5));
    let svc = TraceLayer::new().layer(client.clone());
    let url = format!("http://reqwest.test:{}/", server.addr.port());

    let first = Recorder::new();
    let res = send(&svc, &client, &url, first.trace()).await;
    assert_eq!(res.body, "hello");
    let events = first.events();
    assert_eq!(sequence(&events), FRESH_REQWEST);
    let got = got_conn(&events);
    assert!(!got.reused && !got.was_idle);
    let peer: SocketAddr = res.headers["x-peer"].to_str().unwrap().parse().unwrap();
    assert_eq!(
        got.local_addr,
        Some(peer),
        "GotConn names the connection the server saw"
    );
    assert_eq!(got.remote_addr, Some(server.addr));
    match (&events[2], &events[3], &events[4]) {
        (Event::DnsDone(d), Event::ConnectStart(s), Event::ConnectDone(c)) => {
            assert_eq!(d.addrs, vec![server.addr.ip()]);
            assert_eq!(s.at, d.at);
            // the lookup was of the request's own host, with one answer: that is where it goes
            assert_eq!(s.addr, Some(server.addr));
            assert_eq!(c.addr, Some(server.addr));
            assert_eq!(c.conn_id, Some(got.conn_id));
            assert_eq!(c.local_addr, Some(peer));
        }
        other => panic!("{other:?}"),
    }
    assert_paired(&events);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = Recorder::new();
    let res = send(&svc, &client, &url, second.trace()).await;
    let events = second.events();
    assert_eq!(
        sequence(&events),
        [
            "GetConn",
            "GotConn",
            "ResponseHeaders",
            "PutIdleConn",
            "ResponseBodyDone"
        ]
    );
    let again = got_conn(&events);
    assert!(again.reused && again.was_idle);
    assert_eq!(
        again.conn_id, got.conn_id,
        "the same connection, by the id its connect got"
    );
    assert_eq!(res.headers["x-peer"], peer.to_string().as_str());
}

/// Through an HTTP proxy, reqwest looks up the proxy's name, not the request's host: the lookup
/// says nothing of the request's port, so `ConnectStart` names no address (a guess would name
/// the request's port at the proxy's address); `ConnectDone` names the proxy connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_proxy_connect_start_names_no_guess() {
    let server = Server::start().await;
    httptrace_test_support::tls::install_provider();
    let proxy = format!("http://proxy.test:{}", server.addr.port());
    let client = reqwest::Client::builder()
        .dns_resolver(TracingResolve::new(StaticResolve {
            addrs: Ok(vec![server.addr]),
            delay: Duration::ZERO,
        }))
        .connector_layer(connector_layer())
        .proxy(reqwest::Proxy::http(&proxy).unwrap())
        .build()
        .unwrap();
    let svc = TraceLayer::new().layer(client.clone());
    let rec = Recorder::new();
    // the origin's name is never looked up: the proxy (the test server) answers for it
    send(&svc, &client, "http://origin.test:1/", rec.trace()).await;
    let events = rec.events();
    assert_eq!(sequence(&events), FRESH_REQWEST);
    match (&events[1], &events[3], &events[4]) {
        (Event::DnsStart(d), Event::ConnectStart(s), Event::ConnectDone(c)) => {
            assert_eq!(d.host, "proxy.test");
            assert_eq!(s.addr, None);
            assert_eq!(c.addr, Some(server.addr));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings_through_reqwest() {
    let server = Server::start().await;
    let client = reqwest_client(Ok(vec![server.addr]), Duration::from_millis(20));
    let svc = TraceLayer::new().record_timings(true).layer(client.clone());
    let url = format!("http://timed.test:{}/?delay_ms=30", server.addr.port());
    let res = send(&svc, &client, &url, ClientTrace::from_fn(|_| {})).await;
    let t = res.timings.expect("Timings");
    assert!(t.is_complete() && !t.failed());
    assert_eq!(t.reused(), Some(false));
    assert!(t.dns().unwrap() >= Duration::from_millis(20), "{t:?}");
    assert!(t.connect().is_some());
    assert!(t.total().unwrap() >= Duration::from_millis(50), "{t:?}");
    // no first-byte event through reqwest: the phases split at the response head
    assert!(t.first_byte_derived(), "{t:?}");
    let server = t.server_processing().expect("split at ResponseHeaders");
    let transfer = t.content_transfer().expect("split at ResponseHeaders");
    assert!(server >= Duration::from_millis(30), "{t:?}");
    assert!(
        t.pretransfer().unwrap() + server + transfer <= t.total().unwrap(),
        "{t:?}"
    );
    assert_eq!(t.starttransfer(), Some(t.pretransfer().unwrap() + server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure_through_reqwest() {
    let client = reqwest_client(Err("no such host"), Duration::ZERO);
    let mut svc = TraceLayer::new().layer(client.clone());
    let rec = Recorder::new();
    let req = client.get("http://nowhere.test/").build().unwrap();
    let err = rec
        .trace()
        .scope(async { svc.ready().await.unwrap().call(req).await })
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        ["GetConn", "DNSStart", "DNSDone", "RequestFailed"]
    );
    let dns = events[2].error().unwrap();
    assert_eq!(dns.to_string(), "no such host");
    assert_paired(&events);
}

/// Answers `/hop` with a redirect to `/final` (closing the connection), `/final` with `hello`.
async fn redirecting_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let res = if req.uri().path() == "/hop" {
                            http::Response::builder()
                                .status(302)
                                .header("location", "/final")
                                .header("connection", "close")
                                .body(Full::new(Bytes::new()))
                        } else {
                            http::Response::builder()
                                .header("x-peer", peer.to_string())
                                .body(Full::new(Bytes::from_static(b"hello")))
                        };
                        Ok::<_, Infallible>(res.unwrap())
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_redirect_hop_is_told_apart() {
    let addr = redirecting_server().await;
    let client = reqwest_client(Ok(vec![addr]), Duration::ZERO);
    let svc = TraceLayer::new().layer(client.clone());
    let rec = Recorder::new();
    let url = format!("http://hops.test:{}/hop", addr.port());
    let res = send(&svc, &client, &url, rec.trace()).await;
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "Redirect",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "ResponseHeaders",
            "PutIdleConn",
            "ResponseBodyDone"
        ]
    );
    match &events[5] {
        Event::Redirect(r) => {
            assert_eq!(r.status, 302);
            assert_eq!(r.hop, 1);
            assert_eq!(r.to, format!("http://hops.test:{}/final", addr.port()));
        }
        other => panic!("{other:?}"),
    }
    let got = got_conn(&events);
    assert!(
        !got.reused,
        "the second hop's own connect made the connection"
    );
    assert_eq!(
        got.local_addr.unwrap().to_string(),
        res.headers["x-peer"].to_str().unwrap()
    );
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_with_its_own_trace() {
    let server = Server::start().await;
    let client = reqwest_client(Ok(vec![server.addr]), Duration::ZERO);
    let svc = TraceLayer::new().layer(client.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64u64 {
        let (svc, client) = (svc.clone(), client.clone());
        let url = format!(
            "http://many.test:{}/?delay_ms={}",
            server.addr.port(),
            i % 4
        );
        tasks.spawn(async move {
            let rec = Recorder::new();
            let res = send(&svc, &client, &url, rec.trace()).await;
            // a dial (lookup and connect) that lost the race to a pooled connection ends in the
            // background
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let n = rec.names();
                let count = |x: &str| n.iter().filter(|m| **m == x).count();
                if count("DNSStart") == count("DNSDone")
                    && count("ConnectStart") == count("ConnectDone")
                {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "a dial never ended: {n:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (
                rec.events(),
                res.headers["x-peer"].to_str().unwrap().to_owned(),
            )
        });
    }
    let mut n = 0;
    while let Some(done) = tasks.join_next().await {
        let (events, peer) = done.unwrap();
        let got = got_conn(&events);
        assert_eq!(
            got.local_addr.unwrap().to_string(),
            peer,
            "attributed to its own connection"
        );
        let expected: &[&str] = if got.reused {
            &[
                "GetConn",
                "GotConn",
                "ResponseHeaders",
                "PutIdleConn",
                "ResponseBodyDone",
            ]
        } else {
            FRESH_REQWEST
        };
        // a request whose connect lost the race to a pooled connection also reports its connect
        let core: Vec<_> = sequence(&events)
            .into_iter()
            .filter(|n| {
                !got.reused
                    || !matches!(*n, "DNSStart" | "DNSDone" | "ConnectStart" | "ConnectDone")
            })
            .collect();
        assert_eq!(core, expected);
        assert_paired(&events);
        n += 1;
    }
    assert_eq!(n, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate() {
    use httptrace_test_support::tls::{cert_for, client_config, tls_server, Mode};
    let cert = cert_for(&["secure.test"]);
    let addr = tls_server(&cert, Mode::Serve).await;
    httptrace_test_support::tls::install_provider();
    let client = reqwest::Client::builder()
        .dns_resolver(TracingResolve::new(StaticResolve {
            addrs: Ok(vec![addr]),
            delay: Duration::ZERO,
        }))
        .connector_layer(connector_layer())
        .tls_backend_preconfigured(client_config(&cert, rustls::DEFAULT_VERSIONS))
        .tls_info(true)
        .no_proxy()
        .build()
        .unwrap();
    let mut svc = TraceLayer::new().layer(client.clone());
    let rec = Recorder::new();
    let req = client
        .get(format!("https://secure.test:{}/", addr.port()))
        .build()
        .unwrap();
    let res = rec
        .trace()
        .scope(async { svc.ready().await.unwrap().call(req).await })
        .await
        .unwrap();
    let tls = res
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .cloned()
        .expect("tls_info");
    assert_eq!(tls.peer_certificate(), Some(cert.der.as_ref()));
    assert_eq!(res.bytes().await.unwrap(), "hello");
    let events = rec.events();
    // TCP and TLS are one connector step in reqwest: ConnectDone comes after the handshake
    assert_eq!(sequence(&events), FRESH_REQWEST);
    assert_paired(&events);
}

/// reqwest over HTTPS, the server offering only `h2` by ALPN: the requests go over HTTP/2, on one
/// connection; their `GotConn` says so and is marked derived (reqwest's pool is private, and its
/// connection has no wire wrapper), and no `PutIdleConn` follows (an HTTP/2 connection is shared,
/// never idle-pooled per request).
#[cfg(feature = "http2")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_https_negotiates_http2() {
    use httptrace_test_support::tls::{alpn_server, cert_for, client_config};
    let cert = cert_for(&["h2.test"]);
    let addr = alpn_server(&cert, &[b"h2"], |_req| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            http::Response::new(Full::new(Bytes::from_static(b"hello")))
        })
    })
    .await;
    httptrace_test_support::tls::install_provider();
    let mut tls = client_config(&cert, rustls::DEFAULT_VERSIONS);
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .dns_resolver(TracingResolve::new(StaticResolve {
            addrs: Ok(vec![addr]),
            delay: Duration::ZERO,
        }))
        .connector_layer(connector_layer())
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap();
    let svc = TraceLayer::new().layer(client.clone());
    let url = format!("https://h2.test:{}/", addr.port());

    let one = |svc: Svc, client: reqwest::Client, url: String| async move {
        let rec = Recorder::new();
        let req = client.get(&url).build().unwrap();
        let mut svc = svc.clone();
        let res = rec
            .trace()
            .scope(async move { svc.ready().await?.call(req).await })
            .await
            .unwrap();
        assert_eq!(res.version(), http::Version::HTTP_2);
        assert_eq!(res.bytes().await.unwrap(), "hello");
        rec.events()
    };
    let first = one(svc.clone(), client.clone(), url.clone()).await;
    assert_eq!(
        sequence(&first),
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "ResponseHeaders",
            "ResponseBodyDone"
        ]
    );
    assert_paired(&first);
    let got = got_conn(&first);
    assert!(!got.reused);
    assert!(got
        .derived
        .is_some_and(|d| d.to_string().contains("HTTP/2")));
    let h2 = got.http2.expect("an HTTP/2 GotConn");
    assert_eq!(h2.stream_id, None, "reqwest can't tell the stream");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        tasks.spawn(one(svc.clone(), client.clone(), url.clone()));
    }
    while let Some(events) = tasks.join_next().await {
        let events = events.unwrap();
        assert_eq!(
            sequence(&events),
            ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
        );
        let again = got_conn(&events);
        assert!(again.reused);
        assert_eq!(again.remote_addr, got.remote_addr);
        assert_eq!(again.local_addr, got.local_addr, "the one connection");
    }
}
