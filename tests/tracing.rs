//! TracingHooks: the request span, its phase spans and events, their fields, and redaction,
//! checked with a recording subscriber layer.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httptrace::{Recorder, TraceLayer, TracingHooks};
use httptrace_test_support::clients::{client_with, request, StaticResolver};
use httptrace_test_support::servers::Server;
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::Instrument;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Default)]
struct SpanRec {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
    /// When the subscriber saw it open, and close: what a span viewer draws.
    opened: Option<std::time::Instant>,
    closed: Option<std::time::Instant>,
}

#[derive(Debug, Clone, Default)]
struct EventRec {
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Recorded {
    spans: BTreeMap<u64, SpanRec>,
    events: Vec<EventRec>,
}

#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Recorded>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl<S> tracing_subscriber::Layer<S> for Recording
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            opened: Some(std::time::Instant::now()),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        rec.parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| self.label(p.id().into_u64(), p.name()));
        self.0.lock().unwrap().spans.insert(id.into_u64(), rec);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: Context<'_, S>,
    ) {
        if let Some(rec) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut rec.fields));
        }
    }

    fn on_close(&self, id: tracing::span::Id, _: Context<'_, S>) {
        if let Some(rec) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            rec.closed = Some(std::time::Instant::now());
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut rec = EventRec::default();
        event.record(&mut Fields(&mut rec.fields));
        rec.parent = ctx
            .event_span(event)
            .map(|s| self.label(s.id().into_u64(), s.name()));
        self.0.lock().unwrap().events.push(rec);
    }
}

impl Recording {
    /// A span's name with its `otel.name` (the phase spans share one name).
    fn label(&self, id: u64, name: &str) -> String {
        let rec = self.0.lock().unwrap();
        match rec.spans.get(&id).and_then(|s| s.fields.get("otel.name")) {
            Some(otel) => format!("{name}:{otel}"),
            None => name.to_owned(),
        }
    }

    /// What was recorded of httptrace (other crates in the stack may trace too).
    fn take(&self) -> Recorded {
        let mut got = std::mem::take(&mut *self.0.lock().unwrap());
        got.events
            .retain(|e| e.fields.contains_key("httptrace.event"));
        got.spans
            .retain(|_, s| s.name == "HTTP" || s.name == "phase");
        got
    }
}

fn traced_layer() -> TraceLayer {
    TraceLayer::new().trace_factory(|| TracingHooks::new().into_trace())
}

#[tokio::test(flavor = "current_thread")]
async fn one_span_per_request_with_phases_and_redaction() {
    let recording = Recording::default();
    let subscriber = tracing_subscriber::registry().with(recording.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let server = Server::start().await;
    let resolver = StaticResolver::answering(server.addr, Duration::from_millis(20));
    let client = client_with(resolver, traced_layer());
    let url = format!(
        "http://user:secret@traced.test:{}/path?token=abc&delay_ms=30",
        server.addr.port()
    );
    let rec = Recorder::new();
    let mut req = request(&url);
    req.headers_mut()
        .insert("authorization", "Bearer xyz".parse().unwrap());
    req.headers_mut()
        .insert("cookie", "session=cookievalue".parse().unwrap());
    req.extensions_mut().insert(rec.trace());
    let outer = tracing::info_span!("outer");
    let res = client.clone().oneshot(req).instrument(outer).await.unwrap();
    http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();

    let got = recording.take();
    let requests: Vec<&SpanRec> = got.spans.values().filter(|s| s.name == "HTTP").collect();
    assert_eq!(requests.len(), 1);
    let span = requests[0];
    assert_eq!(
        span.parent.as_deref(),
        Some("outer"),
        "the span current where it was sent"
    );
    let field = |k: &str| span.fields.get(k).map(String::as_str);
    assert_eq!(field("otel.name"), Some("GET"));
    assert_eq!(field("otel.kind"), Some("client"));
    assert_eq!(field("http.request.method"), Some("GET"));
    assert_eq!(field("server.address"), Some("traced.test"));
    assert_eq!(
        field("server.port"),
        Some(server.addr.port().to_string().as_str())
    );
    let url_full = format!("http://traced.test:{}/path?REDACTED", server.addr.port());
    assert_eq!(field("url.full"), Some(url_full.as_str()));
    assert_eq!(field("network.peer.address"), Some("127.0.0.1"));
    assert_eq!(
        field("network.peer.port"),
        Some(server.addr.port().to_string().as_str())
    );
    assert_eq!(field("http.response.status_code"), Some("200"));
    assert_eq!(field("httptrace.reused"), Some("false"));
    assert_eq!(field("error.type"), None);

    // one child span per phase, with its true timing
    let phases: Vec<(String, u64)> = got
        .spans
        .values()
        .filter(|s| s.name == "phase")
        .map(|s| {
            assert_eq!(s.parent.as_deref(), Some("HTTP:GET"));
            let d = s.fields["httptrace.duration_us"].parse().unwrap();
            (s.fields["httptrace.phase"].clone(), d)
        })
        .collect();
    let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["dns", "connect", "wait", "body"]);
    assert!(
        phases[0].1 >= 20_000,
        "dns took the resolver's 20 ms: {phases:?}"
    );
    assert!(
        phases[2].1 >= 30_000,
        "wait took the server's 30 ms: {phases:?}"
    );
    // as a span viewer draws them: each phase span open as long as the phase, within 2 ms; the
    // wait at least the server's 30 ms (as long as it, within 2 ms, unless the machine is so
    // loaded that the server's own sleep runs late: the phase's true length says by how much)
    let ms = Duration::from_millis;
    for s in got.spans.values().filter(|s| s.name == "phase") {
        let drawn = s.closed.unwrap() - s.opened.unwrap();
        let true_us: u64 = s.fields["httptrace.duration_us"].parse().unwrap();
        let true_len = Duration::from_micros(true_us);
        let gap = drawn.max(true_len) - drawn.min(true_len);
        assert!(
            gap < ms(2),
            "{}: drawn {drawn:?}, true {true_len:?}",
            s.fields["httptrace.phase"]
        );
        if s.fields["httptrace.phase"] == "wait" {
            assert!(
                drawn >= ms(30) && true_len >= ms(30),
                "wait drawn {drawn:?}"
            );
        }
    }

    // an event per httptrace event, in the request span, in order
    let events: Vec<&str> = got
        .events
        .iter()
        .map(|e| {
            assert_eq!(e.parent.as_deref(), Some("HTTP:GET"));
            e.fields["httptrace.event"].as_str()
        })
        .collect();
    assert_eq!(events, rec.names());

    // nothing sensitive anywhere
    let everything = format!("{:?} {:?}", got.spans, got.events);
    for secret in [
        "secret",
        "token",
        "abc",
        "Bearer",
        "xyz",
        "cookievalue",
        "user:",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failures_have_an_error_type() {
    let recording = Recording::default();
    let subscriber = tracing_subscriber::registry().with(recording.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let resolver = StaticResolver {
        addrs: Err("no such host"),
        delay: Duration::ZERO,
    };
    let client = client_with(resolver, traced_layer());
    let _ = client
        .oneshot(request("http://nowhere.test/?q=1"))
        .await
        .unwrap_err();
    let got = recording.take();
    let span = got.spans.values().find(|s| s.name == "HTTP").unwrap();
    assert_eq!(
        span.fields.get("error.type").map(String::as_str),
        Some("dns")
    );
    let events: Vec<&str> = got
        .events
        .iter()
        .map(|e| e.fields["httptrace.event"].as_str())
        .collect();
    assert_eq!(events, ["GetConn", "DNSStart", "DNSDone", "RequestFailed"]);
    let failed = &got.events[3].fields;
    assert!(failed["error"].contains("client error"), "{failed:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn levels_are_configurable() {
    let recording = Recording::default();
    let subscriber = tracing_subscriber::registry().with(recording.clone().with_filter_info());
    let _default = tracing::subscriber::set_default(subscriber);

    let server = Server::start().await;
    let layer = TraceLayer::new().trace_factory(|| {
        TracingHooks::new()
            .level(tracing::Level::INFO)
            .event_level(tracing::Level::TRACE)
            .redact_query(false)
            .into_trace()
    });
    let client = client_with(
        StaticResolver::answering(server.addr, Duration::ZERO),
        layer,
    );
    let res = client
        .clone()
        .oneshot(request(&server.url("/?visible=1")))
        .await
        .unwrap();
    http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();
    let got = recording.take();
    let span = got.spans.values().find(|s| s.name == "HTTP").unwrap();
    assert!(span.fields["url.full"].ends_with("/?visible=1"));
    assert!(
        got.events.is_empty(),
        "TRACE events are filtered out at INFO"
    );
}

trait WithFilterInfo: Sized {
    fn with_filter_info(
        self,
    ) -> tracing_subscriber::filter::Filtered<
        Self,
        tracing_subscriber::filter::LevelFilter,
        tracing_subscriber::Registry,
    >;
}

impl WithFilterInfo for Recording {
    fn with_filter_info(
        self,
    ) -> tracing_subscriber::filter::Filtered<
        Self,
        tracing_subscriber::filter::LevelFilter,
        tracing_subscriber::Registry,
    > {
        tracing_subscriber::Layer::with_filter(self, tracing_subscriber::filter::LevelFilter::INFO)
    }
}

/// reqwest writes the request's URL into its errors, query and all: the `error` field of the
/// events has it redacted as `url.full` is.
#[cfg(feature = "reqwest")]
#[tokio::test(flavor = "current_thread")]
async fn error_text_carries_no_secret_of_the_url() {
    httptrace_test_support::tls::install_provider();
    let recording = Recording::default();
    let subscriber = tracing_subscriber::registry().with(recording.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = reqwest::Client::builder()
        .connector_layer(httptrace::reqwest::connector_layer())
        .no_proxy()
        .build()
        .unwrap();
    let svc = tower::Layer::layer(&traced_layer(), client.clone());
    let url = format!("http://user:pw@127.0.0.1:{}/p?token=abc&x=1", dead.port());
    let err = svc
        .oneshot(client.get(&url).build().unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("token=abc"),
        "reqwest's own: {err}"
    );
    let got = recording.take();
    let failed = got
        .events
        .iter()
        .find(|e| e.fields["httptrace.event"] == "RequestFailed")
        .expect("RequestFailed");
    let error = &failed.fields["error"];
    assert!(error.contains("?REDACTED"), "{error}");
    let everything = format!("{got:?}");
    assert!(
        !everything.contains("token=abc") && !everything.contains("pw@"),
        "{everything}"
    );
}

/// The request span is entered while the client's future is polled: what a middleware below
/// the layer (or hyper-util) logs meanwhile on the request's task nests under it.
#[tokio::test(flavor = "current_thread")]
async fn logs_during_the_request_nest_under_its_span() {
    use bytes::Bytes;
    use http_body_util::Empty;
    use httptrace::{RequestBody, TracingConnector};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let recording = Recording::default();
    let subscriber = tracing_subscriber::registry().with(recording.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let server = Server::start().await;
    let client = Client::builder(TokioExecutor::new())
        .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::http());
    let svc = tower::ServiceBuilder::new()
        .layer(traced_layer())
        .map_future(|fut| async move {
            tracing::info!(httptrace.event = "below the layer", "sending");
            let res = fut.await;
            tracing::info!(httptrace.event = "below the layer", "answered");
            res
        })
        .service(client);
    let url = format!("http://{}/?delay_ms=5", server.addr);
    let req = http::Request::get(url).body(Empty::new()).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();

    let got = recording.take();
    let below: Vec<Option<&str>> = got
        .events
        .iter()
        .filter(|e| e.fields["httptrace.event"] == "below the layer")
        .map(|e| e.parent.as_deref())
        .collect();
    assert_eq!(below, [Some("HTTP:GET"), Some("HTTP:GET")]);
}

/// A hook whose `request_span` panics is contained and counted like any hook's panic: the
/// request goes on.
#[tokio::test(flavor = "current_thread")]
async fn a_panicking_request_span_is_contained_and_counted() {
    struct Panics;
    impl httptrace::Hooks for Panics {
        fn request_span(&self, _: httptrace::event::RequestId) -> Option<tracing::Span> {
            panic!("no span today")
        }
    }
    let server = Server::start().await;
    let resolver = StaticResolver::answering(server.addr, Duration::ZERO);
    let client = client_with(resolver, TraceLayer::new());
    let before = httptrace::ClientTrace::hook_panics();
    let mut req = request(&format!("http://{}/", server.addr));
    req.extensions_mut()
        .insert(httptrace::ClientTrace::new(Panics));
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(httptrace::ClientTrace::hook_panics() > before);
}
