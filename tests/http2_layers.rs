//! Two layers on one HTTP/2 client, one of them with `http2_streams(false)`: its traced requests
//! go without hyper-util's capture, so they can't find their connection, but every request of
//! both layers is counted as hyper opens its stream, so the other layer's requests name their
//! own streams, also when the first request is made before any HTTP/2 connection is live.

use httptrace::TraceLayer;
use httptrace_test_support::clients::traced;
use httptrace_test_support::events::{got_conn, sequence};
use httptrace_test_support::h2::{fetch, h2_server, h2c_inner, own, STREAM};
use tower::Layer;

#[tokio::test(flavor = "current_thread")]
async fn a_layer_without_http2_streams_leaves_the_others_exact() {
    let (addr, seen) = h2_server(None).await;
    let inner = h2c_inner();
    let a = TraceLayer::new().record_timings(true).layer(inner.clone());
    let b = TraceLayer::new()
        .record_timings(true)
        .http2_streams(false)
        .layer(inner.clone());
    // B's first request is made before any HTTP/2 connection is live, and sent later
    let early = httptrace::Recorder::new();
    let early_res = {
        use tower::{Service, ServiceExt};
        let mut b = b.clone();
        b.ready().await.unwrap();
        b.call(traced(&format!("http://{addr}/0/early"), early.trace()))
    };
    let (warm, _) = fetch(a.clone(), format!("http://{addr}/0/warm")).await;
    let got = got_conn(&warm);
    assert_eq!(got.http2.unwrap().stream_id, Some(1));
    assert_eq!(got.derived, None);
    let res = early_res.await.unwrap();
    http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();
    assert_eq!(
        sequence(&early.events()),
        ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
    );
    for round in 0..10 {
        // B, then A, queued together on the one connection
        let ((b_events, b_body), (a_events, a_body)) = tokio::join!(
            fetch(b.clone(), format!("http://{addr}/20/b{round}")),
            fetch(a.clone(), format!("http://{addr}/0/a{round}"))
        );
        assert!(b_body.is_ok() && a_body.is_ok());
        // B knows no connection (it asked hyper-util nothing)
        assert_eq!(
            sequence(&b_events),
            ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
        );
        let got = got_conn(&a_events);
        let served = seen.lock().unwrap()[&format!("/0/a{round}")];
        assert_eq!(
            got.http2.unwrap().stream_id,
            Some(served.stream_id),
            "round {round}"
        );
        assert_eq!(got.derived, None);
        assert_eq!(own(&a_events), STREAM);
    }
}
