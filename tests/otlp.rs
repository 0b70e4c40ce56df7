//! The path users take to a collector, end to end: `Otel` with the SDK's OTLP/HTTP exporters
//! (protobuf, the blocking client), a loopback receiver that decodes what it gets with the
//! official `opentelemetry-proto` definitions, and the metric names, units, kinds, buckets,
//! attributes, and the spans' kind, name, status and events checked as a collector sees them.
#![cfg(feature = "opentelemetry")]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httptrace::{Otel, RequestBody, TracingConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use prost::Message;
use tower::{Layer, ServiceExt};

/// What the receiver got: (path, content type, body).
type Received = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// A loopback OTLP/HTTP receiver: keeps every POST, answers `200` with an empty protobuf.
async fn receiver() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Received = Arc::default();
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let keep = keep.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let kind = req
                                .headers()
                                .get(http::header::CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            keep.lock().unwrap().push((path, kind, body));
                            let mut res = http::Response::new(Full::new(Bytes::new()));
                            res.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/x-protobuf"),
                            );
                            Ok::<_, Infallible>(res)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, got)
}

/// The server the requests go to: `hello` after 30 ms.
async fn server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
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
    addr
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string(s: &str) -> Value {
    Value::StringValue(s.to_owned())
}

const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[test]
fn otlp_http_reaches_a_receiver_with_the_conventions() {
    httptrace_test_support::tls::install_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (otlp, received) = rt.block_on(receiver());
    let endpoint = |signal: &str| format!("http://{otlp}/v1/{signal}");
    // the providers, outside the runtime (the blocking OTLP client is built and used there)
    let resource = Resource::builder().with_service_name("otlp-test").build();
    let meters = SdkMeterProvider::builder()
        .with_resource(resource.clone())
        .with_periodic_exporter(
            opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(endpoint("metrics"))
                .with_timeout(Duration::from_secs(5))
                .with_headers(HashMap::new())
                .build()
                .unwrap(),
        )
        .build();
    let tracers = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint("traces"))
                .with_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .build();
    let otel = Otel::new(&meters.meter("httptrace")).with_tracer(tracers.tracer("httptrace"));

    let (ok_url, failed_url) = rt.block_on(async {
        let addr = server().await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let connector = TracingConnector::http().observe_connections(otel.connection_observer());
        let client =
            Client::builder(TokioExecutor::new()).build::<_, RequestBody<Empty<Bytes>>>(connector);
        let svc = otel.layer().layer(client);
        let ok_url = format!("http://{addr}/hello?secret=1");
        for _ in 0..2 {
            let res = svc
                .clone()
                .oneshot(http::Request::get(&ok_url).body(Empty::new()).unwrap())
                .await
                .unwrap();
            res.into_body().collect().await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let failed_url = format!("http://{closed}/");
        let req = http::Request::get(&failed_url).body(Empty::new()).unwrap();
        assert!(svc.oneshot(req).await.is_err());
        (ok_url, failed_url)
    });
    tracers.shutdown().expect("the spans exported");
    meters.shutdown().expect("the metrics exported");
    let got = received.lock().unwrap().clone();
    drop(rt);

    // one export of each signal, in protobuf
    let bodies = |path: &str| -> Vec<Bytes> {
        got.iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, kind, body)| {
                assert_eq!(kind, "application/x-protobuf");
                body.clone()
            })
            .collect()
    };
    let traces = bodies("/v1/traces");
    let metrics = bodies("/v1/metrics");
    assert!(!traces.is_empty() && !metrics.is_empty(), "{got:?}");

    // metrics
    let mut by_name: HashMap<String, Metric> = HashMap::new();
    for body in &metrics {
        let req = ExportMetricsServiceRequest::decode(body.clone()).unwrap();
        for rm in req.resource_metrics {
            let resource = rm.resource.unwrap();
            assert_eq!(
                attr(&resource.attributes, "service.name"),
                Some(&string("otlp-test"))
            );
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    by_name.insert(m.name.clone(), m);
                }
            }
        }
    }
    let histogram = |name: &str| match by_name.get(name).and_then(|m| m.data.clone()) {
        Some(Data::Histogram(h)) => (by_name[name].unit.clone(), h.data_points),
        other => panic!("{name}: {other:?} in {:?}", by_name.keys()),
    };
    let sum = |name: &str| match by_name.get(name).and_then(|m| m.data.clone()) {
        Some(Data::Sum(s)) => (by_name[name].unit.clone(), s.is_monotonic, s.data_points),
        other => panic!("{name}: {other:?}"),
    };
    let (unit, points) = histogram("http.client.request.duration");
    assert_eq!(unit, "s");
    assert_eq!(
        points.len(),
        2,
        "one series for the successes, one for the failure"
    );
    for p in &points {
        assert_eq!(p.explicit_bounds, BUCKETS);
        assert_eq!(
            attr(&p.attributes, "http.request.method"),
            Some(&string("GET"))
        );
        assert_eq!(
            attr(&p.attributes, "server.address"),
            Some(&string("127.0.0.1"))
        );
        assert!(matches!(
            attr(&p.attributes, "server.port"),
            Some(Value::IntValue(_))
        ));
        assert_eq!(attr(&p.attributes, "url.scheme"), Some(&string("http")));
    }
    let ok = points
        .iter()
        .find(|p| attr(&p.attributes, "error.type").is_none())
        .unwrap();
    assert_eq!(ok.count, 2);
    assert_eq!(
        attr(&ok.attributes, "http.response.status_code"),
        Some(&Value::IntValue(200))
    );
    assert_eq!(
        attr(&ok.attributes, "network.protocol.version"),
        Some(&string("1.1"))
    );
    // both took the server's 30 ms at least: none in the buckets below 0.025 s (with the
    // SDK's default boundaries, for milliseconds, both would be in the second)
    assert_eq!(ok.bucket_counts.iter().sum::<u64>(), 2);
    assert_eq!(ok.bucket_counts[..3], [0, 0, 0], "{:?}", ok.bucket_counts);
    let failed = points
        .iter()
        .find(|p| attr(&p.attributes, "error.type").is_some())
        .unwrap();
    assert_eq!(
        attr(&failed.attributes, "error.type"),
        Some(&string("connect"))
    );

    let (unit, monotonic, _) = sum("http.client.active_requests");
    assert_eq!((unit.as_str(), monotonic), ("{request}", false));
    let (unit, monotonic, points) = sum("http.client.open_connections");
    assert_eq!((unit.as_str(), monotonic), ("{connection}", false));
    for p in &points {
        assert_eq!(
            attr(&p.attributes, "server.address"),
            Some(&string("127.0.0.1"))
        );
        assert!(attr(&p.attributes, "http.connection.state").is_some());
        assert!(attr(&p.attributes, "network.peer.address").is_some());
    }
    let (unit, points) = histogram("http.client.connection.duration");
    assert_eq!(unit, "s");
    // a connection's life: the longer buckets
    let connection_buckets = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ];
    assert!(!points.is_empty());
    for p in &points {
        assert_eq!(p.explicit_bounds, connection_buckets);
        assert!(attr(&p.attributes, "server.address").is_some());
    }
    let (_, points) = histogram("httptrace.client.connect.duration");
    assert!(points.iter().all(|p| p.explicit_bounds == BUCKETS));

    // spans
    let spans: Vec<Span> = traces
        .iter()
        .flat_map(|b| {
            ExportTraceServiceRequest::decode(b.clone())
                .unwrap()
                .resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    assert_eq!(spans.len(), 3);
    for span in &spans {
        assert_eq!(span.name, "GET");
        assert_eq!(span.kind, SpanKind::Client as i32);
        // every event within the span, in time order
        let times: Vec<u64> = span.events.iter().map(|e| e.time_unix_nano).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(times.first(), Some(&span.start_time_unix_nano));
        assert_eq!(times.last(), Some(&span.end_time_unix_nano));
        assert_eq!(span.events[0].name, "GetConn");
    }
    let (ok, failed): (Vec<&Span>, Vec<&Span>) = spans
        .iter()
        .partition(|s| attr(&s.attributes, "error.type").is_none());
    assert_eq!((ok.len(), failed.len()), (2, 1));
    for span in ok {
        let status = span.status.clone().unwrap_or_default();
        assert_ne!(status.code, StatusCode::Error as i32);
        // the query is redacted, the address and port of the peer named
        let url = ok_url.replace("secret=1", "REDACTED");
        assert_eq!(attr(&span.attributes, "url.full"), Some(&string(&url)));
        assert_eq!(
            attr(&span.attributes, "http.response.status_code"),
            Some(&Value::IntValue(200))
        );
        assert_eq!(
            attr(&span.attributes, "network.protocol.version"),
            Some(&string("1.1"))
        );
        assert!(matches!(
            attr(&span.attributes, "network.peer.port"),
            Some(Value::IntValue(_))
        ));
        let names: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.last(), Some(&"ResponseBodyDone"), "{names:?}");
    }
    let status = failed[0].status.clone().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(
        attr(&failed[0].attributes, "url.full"),
        Some(&string(&failed_url))
    );
    let names: Vec<&str> = failed[0].events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["GetConn", "ConnectStart", "ConnectDone", "RequestFailed"]
    );
}
