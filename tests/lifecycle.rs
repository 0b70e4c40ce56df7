//! The lives of requests and connections beyond the plain sequences: a dial that serves another
//! request, 1xx responses, cancellation, early body drops, panicking hooks, Timings, and what
//! stays alive afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use httptrace::{error::Canceled, ClientTrace, Event, Hooks, Recorder, Timings, TraceLayer};
use httptrace_test_support::clients::{
    client, client_with, client_with_layer, get, request, server_and_client, traced, StaticResolver,
};
use httptrace_test_support::events::{
    assert_paired, got_conn, names_but_closed, sequence, sequence_but_lost_dial, wait_for, FRESH,
    FRESH_UNPOOLED, REUSED,
};
use httptrace_test_support::hooks::DropCounted;
use httptrace_test_support::servers::{answering_server, Server};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_that_ends_up_serving_another_request() {
    let server = Server::start().await;
    let resolver = StaticResolver::answering(server.addr, Duration::from_millis(150));
    let client = client_with(resolver, TraceLayer::new());
    let base = format!("http://dial.test:{}", server.addr.port());

    // R0 opens connection X and holds it with a slow response
    let r0 = Recorder::new();
    let first = tokio::spawn(
        client
            .clone()
            .oneshot(traced(&format!("{base}/?delay_ms=120"), r0.trace())),
    );
    wait_for(&r0, "WroteRequest").await;

    // A finds no idle connection and dials; X comes back first, so A is served by X (which then
    // closes) while A's dial goes on in the background and lands in the pool: A reports its
    // lookup ended when it gets X (it stops waiting for it) and lets its trace go
    let a = Recorder::new();
    get(&client, &format!("{base}/?close=1"), a.trace()).await;
    first
        .await
        .unwrap()
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();

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
        ]
    );
    let left = a_events
        .iter()
        .find(|e| e.name() == "DNSDone")
        .and_then(Event::error)
        .and_then(|e| e.downcast_ref::<Canceled>())
        .map(Canceled::what);
    assert_eq!(left, Some("the request's wait for this dial"));
    let a_got = match &a_events[3] {
        Event::GotConn(g) => g.clone(),
        other => panic!("{other:?}"),
    };
    assert!(a_got.reused, "A was served by R0's connection");

    // B gets A's dial from the pool (once it lands there): not reused, but idle
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = Recorder::new();
    get(&client, &format!("{base}/"), b.trace()).await;
    let b_events = b.events();
    assert_eq!(sequence(&b_events), REUSED);
    match &b_events[1] {
        Event::GotConn(g) => {
            assert_ne!(g.conn_id, a_got.conn_id, "X closed after A");
            assert!(!g.reused && g.was_idle, "{g:?}");
            assert!(g.idle_time >= Duration::from_millis(15), "{g:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.conns.load(Ordering::SeqCst), 2);
}

/// A fresh request answered `INFORMATIONAL` (which closes the connection).
const INFORMATIONAL_SEQUENCE: &[&str] = &[
    "GetConn",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "Got100Continue",
    "Got1xxResponse",
    "Got1xxResponse",
    "ResponseHeaders",
    "ResponseBodyDone",
];

const INFORMATIONAL: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_responses() {
    let addr = answering_server(INFORMATIONAL, 4).await;
    let client = client();
    let rec = Recorder::new();
    let user_calls = Arc::new(Mutex::new(Vec::new()));
    let calls = user_calls.clone();
    let mut req = http::Request::post(format!("http://{addr}/"))
        .header(http::header::EXPECT, "100-continue")
        .body(Full::new(Bytes::from_static(b"body")))
        .unwrap();
    req.extensions_mut().insert(rec.trace());
    httptrace::on_informational(&mut req, move |res: &http::Response<()>| {
        calls.lock().unwrap().push(res.status().as_u16())
    });
    let res = client.oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    let events = rec.events();
    assert_eq!(names_but_closed(&events), INFORMATIONAL_SEQUENCE);
    let statuses: Vec<u16> = events
        .iter()
        .filter_map(|e| match e {
            Event::Got1xxResponse(i) => Some(i.status.as_u16()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [100, 103]);
    let link = events.iter().find_map(|e| match e {
        Event::Got1xxResponse(i) if i.status == 103 => i.headers.get("link").cloned(),
        _ => None,
    });
    assert_eq!(link.unwrap(), "</style.css>; rel=preload");
    assert_eq!(
        *user_calls.lock().unwrap(),
        [100, 103],
        "the user's callback still runs"
    );
}

/// `Timings` needs no 1xx and has hyper keep no 1xx callback for it; but a trace composed with
/// it that may want them gets them, and so does the caller's own callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_responses_with_timings() {
    let addr = answering_server(INFORMATIONAL, 0).await;
    let client = client_with_layer(TraceLayer::new().record_timings(true));

    // Timings alone, and the caller's callback
    let user_calls = Arc::new(Mutex::new(Vec::new()));
    let calls = user_calls.clone();
    let mut req = request(&format!("http://{addr}/"));
    httptrace::on_informational(&mut req, move |res: &http::Response<()>| {
        calls.lock().unwrap().push(res.status().as_u16())
    });
    let res = client.clone().oneshot(req).await.unwrap();
    let timings = res.extensions().get::<Timings>().cloned().unwrap();
    res.into_body().collect().await.unwrap();
    assert!(timings.is_complete() && !timings.failed());
    assert!(timings.server_processing().is_some());
    assert_eq!(*user_calls.lock().unwrap(), [100, 103]);

    // Timings and a recorder
    let rec = Recorder::new();
    let res = client
        .oneshot(traced(&format!("http://{addr}/"), rec.trace()))
        .await
        .unwrap();
    let timings = res.extensions().get::<Timings>().cloned().unwrap();
    res.into_body().collect().await.unwrap();
    // both filled: the recorder's events and the layer's timings, from the same instants
    assert!(timings.is_complete() && !timings.failed());
    let at = |name: &str| {
        rec.events()
            .iter()
            .find(|e| e.name() == name)
            .map(Event::at)
    };
    assert_eq!(timings.start(), at("GetConn"));
    assert_eq!(
        timings.total(),
        Some(at("ResponseBodyDone").unwrap() - at("GetConn").unwrap())
    );
    assert_eq!(
        timings.server_processing(),
        Some(at("GotFirstResponseByte").unwrap() - at("GotConn").unwrap())
    );
    let statuses: Vec<u16> = rec
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Got1xxResponse(i) => Some(i.status.as_u16()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [100, 103], "{:?}", rec.names());
    assert_eq!(names_but_closed(&rec.events()), INFORMATIONAL_SEQUENCE);
}

/// `103 Early Hints` then a keep-alive `200`, in one write: one read brings the whole response,
/// so hyper-util can put the connection back (and the next request take it) before the head
/// reaches the caller. Every event keeps its time order: the 1xx, the head and `PutIdleConn`
/// are stamped at the read that brought them, and each next request on the connection took it
/// after the previous one's `PutIdleConn`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_hints_and_a_pooled_response_keep_their_time_order() {
    use httptrace_test_support::servers::{raw_server, read_head};
    use tokio::io::AsyncWriteExt;
    const ANSWER: &[u8] = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (addr, _) = raw_server(|_, mut s| async move {
        // one more than asked: the connection stays open after the last answer
        for _ in 0..21 {
            if !read_head(&mut s).await || s.write_all(ANSWER).await.is_err() {
                return;
            }
        }
    })
    .await;
    let client = client();
    let mut put_back = std::collections::HashMap::new();
    let mut reused = 0;
    for i in 0..20 {
        let rec = Recorder::new();
        let mut req = traced(&format!("http://{addr}/"), rec.trace());
        httptrace::on_informational(&mut req, |_: &http::Response<()>| {});
        let res = client.clone().oneshot(req).await.unwrap();
        let arrived = std::time::Instant::now();
        res.into_body().collect().await.unwrap();
        let events = rec.events();
        let got = got_conn(&events);
        // the connection comes back a moment after the response, from a task of hyper-util's:
        // a request in between dials, and the connection (usually) outruns the dial; on a
        // loaded machine the dial may win, and the request gets a connection of its own
        let mut expected = match got.reused {
            false => FRESH.to_vec(),
            true => REUSED.to_vec(),
        };
        let head = expected
            .iter()
            .position(|n| *n == "ResponseHeaders")
            .unwrap();
        expected.insert(head, "Got1xxResponse");
        assert_eq!(sequence_but_lost_dial(&events), expected, "request {i}");
        let at = |name: &str| events.iter().find(|e| e.name() == name).unwrap().at();
        // one read brought the whole response: the 1xx, the head and the end are its instant
        let read = at("GotFirstResponseByte");
        for name in ["Got1xxResponse", "ResponseHeaders", "PutIdleConn"] {
            assert_eq!(at(name), read, "request {i}: {name}");
        }
        assert!(read <= arrived, "request {i}");
        // a connection is taken again only after it was put back
        if let Some(put_back) = put_back.get(&got.conn_id) {
            assert!(got.reused && at("GotConn") >= *put_back, "request {i}");
        }
        put_back.insert(got.conn_id, at("PutIdleConn"));
        reused += usize::from(got.reused);
    }
    // the connection was reused, but for a dial that won a race now and then
    assert!(reused >= 15, "{reused} of 19 reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_set_in_hyper_is_kept() {
    let addr = answering_server(INFORMATIONAL, 0).await;
    let client = client();
    let rec = Recorder::new();
    let user_calls = Arc::new(AtomicUsize::new(0));
    let calls = user_calls.clone();
    let mut req = traced(&format!("http://{addr}/"), rec.trace());
    hyper::ext::on_informational(&mut req, move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
    });
    let res = client.oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    assert_eq!(
        user_calls.load(Ordering::SeqCst),
        2,
        "hyper's slot keeps the user's callback"
    );
    assert!(!rec.names().contains(&"Got1xxResponse"));
    assert!(rec.names().contains(&"GotFirstResponseByte"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceled_during_dns() {
    let resolver =
        StaticResolver::answering("127.0.0.1:9".parse().unwrap(), Duration::from_secs(30));
    let client = client_with(resolver, TraceLayer::new());
    let rec = Recorder::new();
    let fut = client.oneshot(traced("http://slow.test/", rec.trace()));
    assert!(tokio::time::timeout(Duration::from_millis(50), fut)
        .await
        .is_err());
    let events = rec.events();
    assert_eq!(
        sequence(&events),
        ["GetConn", "DNSStart", "DNSDone", "RequestCanceled"]
    );
    for e in &events[2..] {
        let canceled = e.error().and_then(|e| e.downcast_ref::<Canceled>());
        assert!(canceled.is_some(), "{e:?}");
    }
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_dropped_before_its_end() {
    let (server, client) = server_and_client().await;
    let rec = Recorder::new();
    let res = client
        .clone()
        .oneshot(traced(&server.url("/?len=4000000"), rec.trace()))
        .await
        .unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    let got = first.data_ref().map(|d| d.len()).unwrap_or(0) as u64;
    drop(body);
    let events = rec.events();
    assert_eq!(names_but_closed(&events), FRESH_UNPOOLED);
    match events.iter().find(|e| e.name() == "ResponseBodyDone") {
        Some(Event::ResponseBodyDone(i)) => {
            assert_eq!(i.bytes, got);
            assert_eq!(
                i.error
                    .as_ref()
                    .unwrap()
                    .get_ref()
                    .downcast_ref::<Canceled>()
                    .unwrap()
                    .what(),
                "response body"
            );
        }
        other => panic!("{other:?}"),
    }
    // the client still serves the next request
    let next = Recorder::new();
    get(&client, &server.url("/"), next.trace()).await;
    assert!(next.names().contains(&"PutIdleConn"), "{:?}", next.names());
    drop(client);
}

struct Panics;
impl Hooks for Panics {
    fn got_conn(&self, _: &httptrace::event::GotConnInfo) {
        panic!("a hook that panics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_hook_is_contained() {
    let (server, client) = server_and_client().await;
    let panics = httptrace::ClientTrace::hook_panics();
    for expected in [FRESH, REUSED] {
        let rec = Recorder::new();
        let trace = ClientTrace::new(Panics).compose(rec.trace());
        get(&client, &server.url("/"), trace).await;
        // the next hook still runs, every event, and the connection is still pooled
        assert_eq!(sequence(&rec.events()), expected);
        // hyper-util puts the connection back from a task of its own, just after the body ends
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        httptrace::ClientTrace::hook_panics() - panics,
        2,
        "each panic counted once"
    );
    assert_eq!(
        server.conns.load(Ordering::SeqCst),
        1,
        "one connection served both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings_in_the_response() {
    let server = Server::start().await;
    let resolver = StaticResolver::answering(server.addr, Duration::from_millis(20));
    let client = client_with(resolver, TraceLayer::new().record_timings(true));
    let url = format!("http://timed.test:{}/?delay_ms=30", server.addr.port());
    let res = client.clone().oneshot(request(&url)).await.unwrap();
    let t = res
        .extensions()
        .get::<Timings>()
        .cloned()
        .expect("Timings in the extensions");
    assert!(!t.is_complete());
    res.into_body().collect().await.unwrap();
    assert!(t.is_complete() && !t.failed());
    assert_eq!(t.reused(), Some(false));
    let ms = Duration::from_millis;
    assert!(
        t.dns().unwrap() >= ms(20) && t.dns().unwrap() < ms(500),
        "{t:?}"
    );
    assert!(t.connect().unwrap() < ms(500), "{t:?}");
    assert!(t.server_processing().unwrap() >= ms(30), "{t:?}");
    assert_eq!(t.tls(), None);
    let total = t.total().unwrap();
    assert!(total >= t.dns().unwrap() + t.connect().unwrap() + t.server_processing().unwrap());
    assert!(t.namelookup() <= t.connected() && t.connected() <= t.pretransfer());
    assert!(t.pretransfer() <= t.starttransfer() && t.starttransfer() <= t.total());

    let res = client.oneshot(request(&url)).await.unwrap();
    let t = res.extensions().get::<Timings>().cloned().unwrap();
    res.into_body().collect().await.unwrap();
    assert_eq!(t.reused(), Some(true));
    assert_eq!((t.dns(), t.connect()), (None, None));
    assert!(t.server_processing().unwrap() >= ms(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_default_and_factory() {
    let server = Server::start().await;
    let all = Recorder::new();
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let layer = TraceLayer::new()
        .default_trace(all.trace())
        .trace_factory(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            ClientTrace::from_fn(|_| {})
        });
    let client = client_with_layer(layer);
    for _ in 0..3 {
        let res = client
            .clone()
            .oneshot(request(&server.url("/")))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
    }
    assert_eq!(made.load(Ordering::SeqCst), 3);
    assert_eq!(all.names().iter().filter(|n| **n == "GetConn").count(), 3);
    assert_eq!(
        all.names().iter().filter(|n| **n == "PutIdleConn").count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_keep_no_trace_alive() {
    let (server, client) = server_and_client().await;
    let drops = Arc::new(AtomicUsize::new(0));
    for i in 1..=3 {
        let trace = ClientTrace::new(DropCounted(drops.clone()));
        get(&client, &server.url("/"), trace).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            drops.load(Ordering::SeqCst),
            i,
            "the pooled connection holds no trace"
        );
    }
}
