//! Many requests of one client as a picture: a Chrome / Perfetto trace (open it in
//! `ui.perfetto.dev`) and a self-contained HTML page (open it in a browser), from a run against
//! built-in loopback servers: HTTP/1 keep-alive requests in waves (the first dials, the next
//! reuse, some wait for a connection), one slow response, and HTTP/2 streams sharing one
//! connection.
//!
//! ```sh
//! cargo run --example timeline             # writes timeline.json and timeline.html in the temp dir
//! cargo run --example timeline -- out/     # or in out/
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httptrace::{RequestBody, Timeline, TraceLayer, TracingConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, Service, ServiceExt};

#[tokio::main]
async fn main() {
    let out = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, PathBuf::from);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("timeline: can't create {}: {e}", out.display());
        std::process::exit(2);
    }
    let addr = serve().await;
    let timeline = Timeline::new(1000);

    // HTTP/1.1 through `localhost` (a lookup on each dial), and HTTP/2 over one connection
    let h1 = TraceLayer::new().default_trace(timeline.trace()).layer(
        Client::builder(TokioExecutor::new())
            .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::http()),
    );
    let h2 = TraceLayer::new().default_trace(timeline.trace()).layer(
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::http()),
    );
    let h1_url = |ms: u64| format!("http://localhost:{}/{ms}", addr.port());
    let h2_url = |ms: u64| format!("http://127.0.0.1:{}/{ms}", addr.port());

    // wave 1: 8 at once, 8 connections; wave 2: 12 at once, 8 reused and 4 more dialled, one
    // of them slow; then a pause (idle connections) and wave 3
    let delays = [
        [5, 12, 20, 8, 30, 15, 25, 10].as_slice(),
        &[6, 9, 12, 250, 15, 18, 4, 7, 22, 11, 14, 16],
        &[10, 20, 30, 40],
    ];
    for (i, wave) in delays.iter().enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for &ms in *wave {
            set.spawn(send(h1.clone(), h1_url(ms)));
        }
        if i == 1 {
            // meanwhile 16 HTTP/2 streams on one connection
            for k in 0..16u64 {
                set.spawn(send(h2.clone(), h2_url(5 + (k * 7) % 40)));
            }
        }
        while let Some(res) = set.join_next().await {
            if let Ok(Err(e)) = res {
                eprintln!("timeline: a request failed: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let json = out.join("timeline.json");
    let html = out.join("timeline.html");
    for (path, text) in [(&json, timeline.chrome_json()), (&html, timeline.html())] {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("timeline: can't write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    println!("{} requests drawn", timeline.len());
    println!(
        "Chrome / Perfetto trace: {} (open it in ui.perfetto.dev)",
        json.display()
    );
    println!("HTML page:               {}", html.display());
}

/// Sends one GET and reads its body.
async fn send<S>(mut svc: S, url: String) -> Result<(), String>
where
    S: Service<
        http::Request<Empty<Bytes>>,
        Response = http::Response<httptrace::ResponseBody<hyper::body::Incoming>>,
    >,
    S::Error: std::fmt::Display,
{
    let req = http::Request::get(url)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let svc = svc.ready().await.map_err(|e| e.to_string())?;
    let res = svc.call(req).await.map_err(|e| e.to_string())?;
    res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// A loopback server speaking HTTP/1.1 and HTTP/2 (prior knowledge): `/N` answers after N ms.
async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let service = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let ms = req.uri().path()[1..].parse().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"ok",
                        ))))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}
