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
//! that OTLP/HTTP endpoint instead (protobuf), such as an OpenTelemetry Collector's `otlp`
//! receiver, as the service `httptrace-example`, flushed at exit; if the endpoint can't take
//! them, one line says why and the exit code is 1.
//!
//! The SDK exports from threads of its own with a blocking HTTP client (`opentelemetry-otlp`'s
//! `reqwest-blocking-client`), so the providers are built and shut down outside the tokio
//! runtime. For gRPC (port 4317), build the exporters `.with_tonic()` instead, with the
//! `grpc-tonic` feature, inside the runtime.

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
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tower::{Layer, ServiceExt};

/// How long an export may take: a collector that accepts and never answers doesn't hold the
/// exit longer.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// The providers: OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, stdout otherwise.
fn providers() -> Result<(SdkMeterProvider, SdkTracerProvider), Box<dyn std::error::Error>> {
    let resource = Resource::builder()
        .with_service_name("httptrace-example")
        .build();
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        Ok((
            SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_periodic_exporter(metrics)
                .build(),
            SdkTracerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(spans)
                .build(),
        ))
    } else {
        Ok((
            SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_periodic_exporter(opentelemetry_stdout::MetricExporter::default())
                .build(),
            SdkTracerProvider::builder()
                .with_resource(resource)
                .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
                .build(),
        ))
    }
}

/// Why nothing reached the OTLP endpoint, in a few words: whether it takes connections.
fn why_not_exported() -> String {
    let Some(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok() else {
        return "the stdout exporter failed".to_owned();
    };
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?} is not a URL");
    };
    let host = uri.host().unwrap_or("localhost");
    let port = uri.port_u16().unwrap_or(4318);
    let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(host, port));
    match addrs.map(|mut a| a.next()) {
        Ok(Some(addr)) => match std::net::TcpStream::connect_timeout(&addr, EXPORT_TIMEOUT) {
            Ok(_) => format!("{endpoint} takes connections but did not accept the export"),
            Err(e) => format!("no collector at {endpoint} ({addr}: {e})"),
        },
        Ok(None) => format!("{host} has no address"),
        Err(e) => format!("{host}: {e}"),
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

/// Installs rustls' ring provider for the process (rustls 0.23.48 deprecates it for its lack of
/// post-quantum key exchange; plain HTTP to a local collector needs none).
#[allow(deprecated)]
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn main() -> ExitCode {
    // this crate's dev-dependency on reqwest (the OTLP client's) chooses no crypto provider:
    // the process's is ring (an application with reqwest's default features needs nothing)
    install_ring();
    // outside the runtime: the blocking OTLP client can't be built, nor dropped, inside it
    let (meters, tracers) = match providers() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("otel: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otel: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sent = runtime.block_on(run(&meters, &tracers));
    drop(runtime);
    if let Err(e) = sent {
        eprintln!("otel: {e}");
        return ExitCode::FAILURE;
    }
    // flush and stop: the spans, then the metrics
    let spans = tracers.shutdown();
    let metrics = meters.shutdown();
    if spans.is_err() || metrics.is_err() {
        let what = match (spans.is_err(), metrics.is_err()) {
            (true, true) => "spans and metrics",
            (true, false) => "spans",
            _ => "metrics",
        };
        eprintln!("otel: the {what} were not exported: {}", why_not_exported());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn run(
    meters: &SdkMeterProvider,
    tracers: &SdkTracerProvider,
) -> Result<(), Box<dyn std::error::Error>> {
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
    // the connections close and report their end
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
