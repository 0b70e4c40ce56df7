//! httptrace's OpenTelemetry metrics and spans for a few requests.
//!
//! ```text
//! cargo run --example otel --features opentelemetry [URL]
//! ```
//!
//! Without a URL, it starts a loopback HTTP server and sends three requests to it: a fresh one,
//! one on the reused connection, and one to a closed port that fails. The metrics
//! (`http.client.request.duration`, `http.client.open_connections`, ...) and the spans go to
//! stdout; when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://localhost:4318`) they go to
//! that OTLP/HTTP endpoint instead, such as an OpenTelemetry Collector's `otlp` receiver.

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httptrace::{Otel, RequestBody, TracingConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower::{Layer, ServiceExt};

/// The providers: OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, stdout otherwise.
fn providers() -> Result<(SdkMeterProvider, SdkTracerProvider), Box<dyn std::error::Error>> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .build()?;
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        Ok((
            SdkMeterProvider::builder()
                .with_periodic_exporter(metrics)
                .build(),
            SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .build(),
        ))
    } else {
        Ok((
            SdkMeterProvider::builder()
                .with_periodic_exporter(opentelemetry_stdout::MetricExporter::default())
                .build(),
            SdkTracerProvider::builder()
                .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
                .build(),
        ))
    }
}

/// A loopback server answering `hello` after 10 ms.
async fn server() -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        b"hello",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otel: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (meters, tracers) = providers()?;
    let otel = Otel::new(&meters.meter("httptrace")).with_tracer(tracers.tracer("httptrace"));
    let connector = TracingConnector::http().observe_connections(otel.connection_observer());
    let client =
        Client::builder(TokioExecutor::new()).build::<_, RequestBody<Empty<Bytes>>>(connector);
    let svc = otel.layer().layer(client);

    let urls = match std::env::args().nth(1) {
        Some(url) => vec![url],
        None => {
            let addr = server().await?;
            let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            vec![
                format!("http://{addr}/fresh"),
                format!("http://{addr}/reused"),
                format!("http://{closed}/fails"),
            ]
        }
    };
    for url in urls {
        let req = http::Request::get(&url).body(Empty::new())?;
        match svc.clone().oneshot(req).await {
            Ok(res) => {
                let status = res.status();
                let body = res.into_body().collect().await?.to_bytes();
                eprintln!("{url}: {status}, {} bytes", body.len());
            }
            Err(e) => eprintln!("{url}: {e}"),
        }
        // let the connection go back to the pool before the next request
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(svc);
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracers.shutdown()?;
    meters.shutdown()?;
    Ok(())
}
