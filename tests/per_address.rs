//! Per-address connects: one ConnectStart/ConnectDone per address attempt, Happy Eyeballs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use httptrace::{
    connect::PerAddressConnector,
    error::Canceled,
    event::{ConnectDoneInfo, ConnectStartInfo},
    Event, Recorder, RequestBody, TraceLayer, TracingConnector,
};
use httptrace_test_support::clients::{get, traced, Body, StaticResolver};
use httptrace_test_support::events::{assert_paired, got_conn, sequence, FRESH};
use httptrace_test_support::servers::{unanswering_on, Server};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

type PerAddressClient = httptrace::Trace<
    Client<TracingConnector<PerAddressConnector<StaticResolver>>, RequestBody<Body>>,
>;

fn per_address_client(addrs: Vec<SocketAddr>, delay: Duration) -> PerAddressClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let resolver = StaticResolver {
        addrs: Ok(addrs),
        delay: Duration::ZERO,
    };
    let connector = PerAddressConnector::new(http, resolver).happy_eyeballs_delay(delay);
    let client = Client::builder(TokioExecutor::new()).build(TracingConnector::new(connector));
    TraceLayer::new().layer(client)
}

fn with_port(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn starts(events: &[Event]) -> Vec<ConnectStartInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ConnectStart(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

fn dones(events: &[Event]) -> Vec<ConnectDoneInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ConnectDone(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_address_then_a_live_one() {
    let server = Server::start().await;
    let port = server.addr.port();
    // nothing listens on 127.0.0.2 at this port: refused at once
    let dead = with_port("127.0.0.2", port);
    let client = per_address_client(vec![dead, server.addr], Duration::from_millis(300));
    let rec = Recorder::new();
    let url = format!("http://multi.test:{port}/");
    get(&client, &url, rec.trace()).await;
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "ResponseHeaders",
            "PutIdleConn",
            "ResponseBodyDone"
        ]
    );
    let (s, d) = (starts(&events), dones(&events));
    assert_eq!(s[0].addr, Some(dead));
    assert_eq!(d[0].addr, Some(dead));
    assert!(d[0].error.is_some() && d[0].conn_id.is_none());
    assert_eq!(s[1].addr, Some(server.addr));
    assert_eq!(d[1].addr, Some(server.addr));
    assert!(d[1].error.is_none());
    assert_eq!(d[1].conn_id, Some(got_conn(&events).conn_id));
    // the second attempt started when the first failed, not after the 300 ms delay
    assert!(s[1].at.duration_since(s[0].at) < Duration::from_millis(250));
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_dead() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (a, b) = (with_port("127.0.0.2", port), with_port("127.0.0.3", port));
    let client = per_address_client(vec![a, b], Duration::from_millis(300));
    let rec = Recorder::new();
    let url = format!("http://dead.test:{port}/");
    let err = client.oneshot(traced(&url, rec.trace())).await.unwrap_err();
    assert!(err.is_connect());
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "ConnectStart",
            "ConnectDone",
            "RequestFailed"
        ]
    );
    let d = dones(&events);
    assert_eq!((d[0].addr, d[1].addr), (Some(a), Some(b)));
    assert!(d.iter().all(|d| d.error.is_some()));
    // the request's error is the last attempt's
    let cause = std::error::Error::source(events[7].error().unwrap()).unwrap();
    assert!(format!("{cause:?}").contains(&b.to_string()), "{cause:?}");
    assert!(!format!("{cause:?}").contains(&a.to_string()), "{cause:?}");
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_address_races_the_next_after_the_delay() {
    let server = Server::start().await;
    let slow = with_port("127.0.0.2", server.addr.port());
    let _hold = unanswering_on(slow).await;
    let delay = Duration::from_millis(80);
    let client = per_address_client(vec![slow, server.addr], delay);
    let rec = Recorder::new();
    let url = format!("http://race.test:{}/", server.addr.port());
    let started = Instant::now();
    get(&client, &url, rec.trace()).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let events = rec.events();
    let connects: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::ConnectStart(_) | Event::ConnectDone(_)))
        .map(|e| match e {
            Event::ConnectStart(i) => ("start", i.addr.unwrap()),
            Event::ConnectDone(i) => ("done", i.addr.unwrap()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        connects,
        [
            ("start", slow),
            ("start", server.addr),
            ("done", server.addr),
            ("done", slow)
        ]
    );
    let (s, d) = (starts(&events), dones(&events));
    assert!(
        s[1].at.duration_since(s[0].at) >= delay,
        "the next attempt waits for the delay"
    );
    assert!(d[0].error.is_none());
    let canceled = d[1]
        .error
        .as_ref()
        .unwrap()
        .get_ref()
        .downcast_ref::<Canceled>();
    assert_eq!(canceled.map(Canceled::what), Some("connect attempt"));
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_resolver_under_it_doesnt_report_the_lookup_twice() {
    let server = Server::start().await;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let resolver =
        httptrace::TracingResolver::new(StaticResolver::answering(server.addr, Duration::ZERO));
    let connector = TracingConnector::new(PerAddressConnector::new(http, resolver));
    let client = TraceLayer::new()
        .layer(Client::builder(TokioExecutor::new()).build::<_, RequestBody<Body>>(connector));
    let rec = Recorder::new();
    get(
        &client,
        &format!("http://once.test:{}/", server.addr.port()),
        rec.trace(),
    )
    .await;
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["DNSStart", "DNSDone"]);
    assert_eq!(sequence(&rec.events()), expected);
}
