//! HTTP/2 (h2c): one connection carries many requests at once, so no exchange is bound to the
//! wire; each request reports only what is exact for it, and nothing of another's.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use httptrace::{Recorder, RequestBody, TraceLayer, TracingConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, ServiceExt};

/// An h2c server answering `hello` after a few milliseconds.
async fn h2_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        b"hello",
                    ))))
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_report_only_what_is_theirs() {
    let addr = h2_server().await;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, RequestBody<Body>>(TracingConnector::new(http));
    let client = TraceLayer::new().layer(client);
    let url = format!("http://{addr}/");

    // the first request makes the connection
    let first = Recorder::new();
    let res = client
        .clone()
        .oneshot(traced(&url, first.trace()))
        .await
        .unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    res.into_body().collect().await.unwrap();
    assert_eq!(
        first.names(),
        [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "ResponseHeaders",
            "ResponseBodyDone"
        ]
    );

    // 32 streams at once on it, each with its own trace
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let rec = Recorder::new();
            let res = client.oneshot(traced(&url, rec.trace())).await.unwrap();
            assert_eq!(res.version(), http::Version::HTTP_2);
            res.into_body().collect().await.unwrap();
            rec.names()
        });
    }
    let mut n = 0;
    while let Some(names) = tasks.join_next().await {
        assert_eq!(
            names.unwrap(),
            ["GetConn", "ResponseHeaders", "ResponseBodyDone"]
        );
        n += 1;
    }
    assert_eq!(n, 32);
    // and no late event reached the first request
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(first.names().len(), 5, "{:?}", first.names());
}
