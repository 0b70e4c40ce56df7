//! Two layers on one HTTP/2 client, one of them with `http2_streams(false)`: its requests go
//! without hyper-util's capture and open streams nobody registers, so from then on no stream is
//! named, on any client, even when no HTTP/2 connection was live when it was made (in its own
//! test binary: what it turns off is process-wide).

use httptrace::TraceLayer;
use httptrace_test_support::clients::traced;
use httptrace_test_support::events::{got_conn, names};
use httptrace_test_support::h2::{fetch, h2_server, h2c_inner};
use tower::Layer;

#[tokio::test(flavor = "current_thread")]
async fn a_layer_without_http2_streams_ends_the_naming() {
    let (addr, _answered) = h2_server(None).await;
    let inner = h2c_inner();
    let a = TraceLayer::new().record_timings(true).layer(inner.clone());
    let b = TraceLayer::new()
        .record_timings(true)
        .http2_streams(false)
        .layer(inner.clone());
    // B's first request is made before any HTTP/2 connection is live (it could dial the first
    // one and open its first stream before A registers there), and sent later: from the moment
    // it is made, no stream is named, even A's first
    let early = httptrace::Recorder::new();
    let early_res = {
        use tower::{Service, ServiceExt};
        let mut b = b.clone();
        b.ready().await.unwrap();
        b.call(traced(&format!("http://{addr}/0/early"), early.trace()))
    };
    let (warm, _) = fetch(a.clone(), format!("http://{addr}/0/warm")).await;
    let got = got_conn(&warm);
    assert_eq!(got.http2.unwrap().stream_id, None);
    assert!(got.derived.is_some());
    let res = early_res.await.unwrap();
    http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();
    assert_eq!(
        names(&early.events()),
        ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
    );
    for round in 0..10 {
        // B, unregistered, then A, queued together on the one connection
        let ((b_events, b_body), (a_events, a_body)) = tokio::join!(
            fetch(b.clone(), format!("http://{addr}/20/b{round}")),
            fetch(a.clone(), format!("http://{addr}/0/a{round}"))
        );
        assert!(b_body.is_ok() && a_body.is_ok());
        // B knows no connection (it asked hyper-util nothing)
        assert_eq!(
            names(&b_events),
            ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
        );
        let got = got_conn(&a_events);
        assert_eq!(got.http2.unwrap().stream_id, None, "round {round}");
        assert!(got.derived.is_some());
        assert_eq!(
            names(&a_events),
            ["GetConn", "GotConn", "ResponseHeaders", "ResponseBodyDone"]
        );
    }
}
