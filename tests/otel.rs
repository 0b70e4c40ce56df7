//! Otel: OpenTelemetry metrics and spans, checked with opentelemetry_sdk's in-memory exporters.
#![cfg(feature = "opentelemetry")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use httptrace::{Otel, Recorder, RequestBody, Trace, TracingConnector, TracingResolver};
use httptrace_test_support::clients::{get, request, Body, StaticResolver};
use httptrace_test_support::servers::Server;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{Layer, ServiceExt};

type OtelClient = Trace<
    Client<TracingConnector<HttpConnector<TracingResolver<StaticResolver>>>, RequestBody<Body>>,
>;

struct Setup {
    metrics: InMemoryMetricExporter,
    meters: SdkMeterProvider,
    spans: InMemorySpanExporter,
    client: OtelClient,
}

fn setup(addr: SocketAddr, dns_delay: Duration) -> Setup {
    let metrics = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    let spans = InMemorySpanExporter::default();
    let tracers = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let otel = Otel::new(&meters.meter("test"))
        .with_tracer(tracers.tracer("test"))
        .phase_spans(true);
    let mut http = HttpConnector::new_with_resolver(TracingResolver::new(
        StaticResolver::answering(addr, dns_delay),
    ));
    http.set_nodelay(true);
    let connector = TracingConnector::new(http).observe_connections(otel.connection_observer());
    let client = Client::builder(TokioExecutor::new()).build(connector);
    Setup {
        metrics,
        meters,
        spans,
        client: otel.layer().layer(client),
    }
}

/// Every data point of metric `name`: (attributes, value or count, sum).
fn points(all: &[ResourceMetrics], name: &str) -> (String, Vec<(Vec<KeyValue>, f64, f64)>) {
    let mut unit = String::new();
    let mut out = Vec::new();
    for rm in all {
        for sm in rm.scope_metrics() {
            for m in sm.metrics().filter(|m| m.name() == name) {
                unit = m.unit().to_owned();
                match m.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            out.push((
                                p.attributes().cloned().collect(),
                                p.count() as f64,
                                p.sum(),
                            ));
                        }
                    }
                    AggregatedMetrics::I64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            out.push((p.attributes().cloned().collect(), p.value() as f64, 0.0));
                        }
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
    }
    (unit, out)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The latest export (cumulative: it holds everything so far).
fn flush(s: &Setup) -> Vec<ResourceMetrics> {
    latest(&s.meters, &s.metrics)
}

fn latest(meters: &SdkMeterProvider, metrics: &InMemoryMetricExporter) -> Vec<ResourceMetrics> {
    meters.force_flush().unwrap();
    let mut all = metrics.get_finished_metrics().unwrap();
    all.drain(..all.len().saturating_sub(1));
    all
}

fn span_attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    attr(&span.attributes, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_spans_for_fresh_reused_and_failed_requests() {
    let server = Server::start().await;
    let s = setup(server.addr, Duration::from_millis(10));
    let base = format!("http://otel.test:{}", server.addr.port());

    // fresh, then reused
    let fresh = Recorder::new();
    get(
        &s.client,
        &format!("{base}/?delay_ms=20&secret=1"),
        fresh.trace(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    get(
        &s.client,
        &format!("{base}/?status=503"),
        Recorder::new().trace(),
    )
    .await;

    let all = flush(&s);
    let (unit, reqs) = points(&all, "http.client.request.duration");
    assert_eq!(unit, "s");
    let ok = reqs
        .iter()
        .find(|(a, _, _)| attr(a, "http.response.status_code") == Some(&Value::I64(200)))
        .expect("the 200");
    assert_eq!(ok.1, 1.0);
    assert!(ok.2 >= 0.030, "dns 10 ms + server 20 ms: {}", ok.2);
    assert_eq!(
        attr(&ok.0, "http.request.method"),
        Some(&Value::from("GET"))
    );
    assert_eq!(
        attr(&ok.0, "server.address"),
        Some(&Value::from("otel.test"))
    );
    assert_eq!(
        attr(&ok.0, "server.port"),
        Some(&Value::I64(server.addr.port().into()))
    );
    assert_eq!(attr(&ok.0, "error.type"), None);
    let failed = reqs
        .iter()
        .find(|(a, _, _)| attr(a, "http.response.status_code") == Some(&Value::I64(503)))
        .expect("the 503");
    assert_eq!(attr(&failed.0, "error.type"), Some(&Value::from("503")));

    let (_, active) = points(&all, "http.client.active_requests");
    assert!(
        active.iter().all(|(_, v, _)| *v == 0.0),
        "none in flight: {active:?}"
    );
    let (unit, dns) = points(&all, "dns.lookup.duration");
    assert_eq!(unit, "s");
    assert_eq!(dns.len(), 1);
    assert_eq!(
        dns[0].1, 1.0,
        "one lookup: the second request reused the connection"
    );
    assert!(dns[0].2 >= 0.010);
    assert_eq!(
        attr(&dns[0].0, "dns.question.name"),
        Some(&Value::from("otel.test"))
    );
    let (_, connects) = points(&all, "httptrace.client.connect.duration");
    assert_eq!(connects.iter().map(|c| c.1).sum::<f64>(), 1.0);
    let (_, open) = points(&all, "http.client.open_connections");
    let state = |st: &str| {
        open.iter()
            .filter(|(a, _, _)| {
                attr(a, "http.connection.state") == Some(&Value::from(st.to_owned()))
            })
            .map(|p| p.1)
            .sum::<f64>()
    };
    assert_eq!((state("idle"), state("active")), (1.0, 0.0), "{open:?}");

    // spans: the request span with its attributes, events and phase children
    let spans = s.spans.get_finished_spans().unwrap();
    let requests: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .collect();
    assert_eq!(requests.len(), 2);
    let first = requests
        .iter()
        .find(|s| span_attr(s, "http.response.status_code") == Some(&Value::I64(200)))
        .unwrap();
    assert_eq!(first.name, "GET");
    let url = format!("{base}/?REDACTED");
    assert_eq!(span_attr(first, "url.full"), Some(&Value::from(url)));
    assert_eq!(
        span_attr(first, "network.peer.address"),
        Some(&Value::from("127.0.0.1"))
    );
    assert_eq!(first.status, Status::Unset);
    let event_names: Vec<&str> = first.events.iter().map(|e| e.name.as_ref()).collect();
    let recorded = fresh.names();
    let until_end = recorded
        .iter()
        .position(|n| *n == "ResponseBodyDone")
        .unwrap();
    assert_eq!(event_names, recorded[..=until_end]);
    let phases: Vec<&str> = spans
        .iter()
        .filter(|p| p.parent_span_id == first.span_context.span_id())
        .map(|p| p.name.as_ref())
        .collect();
    assert_eq!(phases, ["dns", "connect", "wait", "body"]);
    let dns_span = spans.iter().find(|p| p.name == "dns").unwrap();
    let dns_took = dns_span
        .end_time
        .duration_since(dns_span.start_time)
        .unwrap();
    assert!(dns_took >= Duration::from_millis(10), "{dns_took:?}");
    assert!(dns_span.start_time >= first.start_time && dns_span.end_time <= first.end_time);
    let second = requests
        .iter()
        .find(|s| s.span_context != first.span_context)
        .unwrap();
    assert_eq!(second.status, Status::error("503"));

    // the connection closes with the client: open connections back to 0, one duration
    let Setup {
        metrics,
        meters,
        spans: _,
        client,
    } = s;
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let all = latest(&meters, &metrics);
        let (unit, durations) = points(&all, "http.client.connection.duration");
        if !durations.is_empty() {
            assert_eq!(unit, "s");
            assert_eq!(durations[0].1, 1.0);
            let (_, open) = points(&all, "http.client.open_connections");
            assert!(open.iter().all(|(_, v, _)| *v == 0.0), "{open:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the connection never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s = setup(dead, Duration::ZERO);
    let url = format!("http://refused.test:{}/", dead.port());
    let _ = s.client.clone().oneshot(request(&url)).await.unwrap_err();
    let all = flush(&s);
    let (_, reqs) = points(&all, "http.client.request.duration");
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        attr(&reqs[0].0, "error.type"),
        Some(&Value::from("connect"))
    );
    assert_eq!(attr(&reqs[0].0, "http.response.status_code"), None);
    let (_, connects) = points(&all, "httptrace.client.connect.duration");
    assert_eq!(
        attr(&connects[0].0, "error.type"),
        Some(&Value::from("connect"))
    );
    let spans = s.spans.get_finished_spans().unwrap();
    let req = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_eq!(req.status, Status::error("connect"));
    let names: Vec<&str> = req.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "RequestFailed"
        ]
    );
}

/// Both consumers and the user's own hooks on one request: each sees every event.
#[cfg(feature = "tracing")]
#[tokio::test(flavor = "current_thread")]
async fn consumers_compose_with_each_other_and_user_hooks() {
    use httptrace::{TraceLayer, TracingHooks};
    use std::sync::{Arc, Mutex};

    // tracing: count the events the tracing consumer emits on this thread
    #[derive(Clone, Default)]
    struct Count(Arc<Mutex<usize>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Has(bool);
            impl tracing::field::Visit for Has {
                fn record_debug(&mut self, f: &tracing::field::Field, _: &dyn std::fmt::Debug) {
                    self.0 |= f.name() == "httptrace.event";
                }
            }
            let mut has = Has(false);
            event.record(&mut has);
            if has.0 {
                *self.0.lock().unwrap() += 1;
            }
        }
    }
    let count = Count::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::layer::SubscriberExt::with(
            tracing_subscriber::registry(),
            count.clone(),
        ));

    let server = Server::start().await;
    let spans = InMemorySpanExporter::default();
    let tracers = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let meters = SdkMeterProvider::builder().build();
    let otel = Otel::new(&meters.meter("test")).with_tracer(tracers.tracer("test"));
    let user = Recorder::new();
    // per request: the tracing consumer, then OpenTelemetry; then the client's default (user's)
    let layer = TraceLayer::new()
        .default_trace(user.trace())
        .trace_factory(move || TracingHooks::new().into_trace().compose(otel.trace()));
    let mut http = HttpConnector::new_with_resolver(TracingResolver::new(
        StaticResolver::answering(server.addr, Duration::ZERO),
    ));
    http.set_nodelay(true);
    let client = layer.layer(
        Client::builder(TokioExecutor::new())
            .build::<_, RequestBody<Body>>(TracingConnector::new(http)),
    );

    let own = Recorder::new();
    get(
        &client,
        &format!("http://compose.test:{}/", server.addr.port()),
        own.trace(),
    )
    .await;
    let names = own.names();
    assert_eq!(names.len(), 12, "{names:?}");
    assert_eq!(
        user.names(),
        names,
        "the client's default sees what the request's own sees"
    );
    assert_eq!(
        *count.0.lock().unwrap(),
        names.len(),
        "the tracing consumer got every event"
    );
    let span = spans.get_finished_spans().unwrap();
    assert_eq!(span.len(), 1);
    let until_end = names.iter().position(|n| *n == "ResponseBodyDone").unwrap();
    let events: Vec<&str> = span[0].events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(
        events,
        names[..=until_end],
        "OpenTelemetry got every event up to the end"
    );
}

/// reqwest writes the request's URL into its errors, query and all: `exception.message` has it
/// redacted as `url.full` is (the userinfo dropped, the query replaced).
#[cfg(feature = "reqwest")]
#[tokio::test(flavor = "current_thread")]
async fn error_text_carries_no_secret_of_the_url() {
    httptrace_test_support::tls::install_provider();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let spans = InMemorySpanExporter::default();
    let tracers = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let meters = SdkMeterProvider::builder().build();
    let otel = Otel::new(&meters.meter("test")).with_tracer(tracers.tracer("test"));
    let client = reqwest::Client::builder()
        .connector_layer(httptrace::reqwest::connector_layer())
        .no_proxy()
        .build()
        .unwrap();
    let svc = otel.layer().layer(client.clone());
    let url = format!("http://user:pw@127.0.0.1:{}/p?token=abc&x=1", dead.port());
    let err = svc
        .oneshot(client.get(&url).build().unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("token=abc"),
        "reqwest's own: {err}"
    );
    let spans = spans.get_finished_spans().unwrap();
    let req = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    let messages: Vec<String> = req
        .events
        .iter()
        .flat_map(|e| e.attributes.iter())
        .filter(|kv| kv.key.as_str() == "exception.message")
        .map(|kv| kv.value.to_string())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("?REDACTED")),
        "{messages:?}"
    );
    for m in &messages {
        assert!(!m.contains("token=abc") && !m.contains("pw@"), "{m}");
    }
}
