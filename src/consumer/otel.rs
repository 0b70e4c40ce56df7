use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use opentelemetry::global::BoxedTracer;
use opentelemetry::metrics::{Histogram, Meter, UpDownCounter};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::{connect_started, error_type, url_full};
use crate::event::{Event, Hooks};
use crate::trace::ClientTrace;

/// OpenTelemetry metrics and spans under the HTTP semantic conventions, for one client.
///
/// Make one per client from a `Meter` (and, for spans, a `Tracer`), configure it
/// ([`Otel::with_tracer`], [`Otel::phase_spans`], [`Otel::redact_query`]) before anything else
/// holds it (a setting made after `trace()`, `layer()` or `connection_observer()` is ignored),
/// then:
/// - give [`Otel::layer`] (or `TraceLayer::trace_factory(move || otel.trace())`) to the client,
///   so that every request reports;
/// - give [`Otel::connection_observer`] to
///   [`TracingConnector::observe_connections`](crate::TracingConnector::observe_connections),
///   for the connection metrics.
///
/// Metrics, under the HTTP client conventions the 0.33 crates follow (semantic conventions
/// 1.3x); durations in seconds, in the advised buckets (`0.005` to `10` s; `0.01` to `300` s
/// for `http.client.connection.duration`), set by httptrace without a `View`:
///
/// | name | convention | kind | attributes |
/// |---|---|---|---|
/// | `http.client.request.duration` | stable | histogram, `s`: `GetConn` to the body's end (or the failure) | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `network.protocol.version`, `http.response.status_code`, `error.type` |
/// | `http.client.active_requests` | experimental | up-down counter, `{request}` | `http.request.method`, `server.address`, `server.port`, `url.scheme` |
/// | `http.client.open_connections` | experimental | up-down counter, `{connection}`, needs the connection observer | `http.connection.state` (`active`/`idle`), `server.address` (the peer's address: the host name isn't known to a connection), `server.port`, `network.peer.address` |
/// | `http.client.connection.duration` | experimental | histogram, `s`, needs the connection observer | `server.address`, `server.port`, `network.peer.address` |
/// | `dns.lookup.duration` | experimental | histogram, `s` | `dns.question.name`, `error.type` |
/// | `httptrace.client.connect.duration` | httptrace's own | histogram, `s`, per address attempt | `server.address`, `server.port`, `network.peer.address`, `error.type` |
/// | `httptrace.client.tls_handshake.duration` | httptrace's own | histogram, `s` | `server.address`, `error.type` |
///
/// Spans: one client span per request, named by the method, with `http.request.method`,
/// `server.address`, `server.port`, `url.full` (userinfo dropped, query redacted unless
/// [`Otel::redact_query`] is off), `url.scheme`, `http.response.status_code`,
/// `network.protocol.version`, `network.peer.address`, `network.peer.port` and `error.type`;
/// its start and end are the true instants (its first and last event, converted to wall-clock
/// time once per request, so that every event lies within them, in order), and each httptrace
/// event is a span event at the instant it happened (a failure's with its `exception.message`, every URL in it
/// redacted as `url.full` is). With [`Otel::phase_spans`], each phase (`dns`, `connect`,
/// `tls`, `wait`, `body`) is also a child span with its true start and end. The parent is the
/// OpenTelemetry `Context` current where the request is sent; propagating it on the wire is
/// left to your propagator.
///
/// ```
/// use httptrace::Otel;
/// use opentelemetry::metrics::MeterProvider as _;
///
/// let provider = opentelemetry::global::meter_provider();
/// let otel = Otel::new(&provider.meter("httptrace"));
/// let layer = otel.layer();
/// let connector = httptrace::TracingConnector::http().observe_connections(otel.connection_observer());
/// # drop((layer, connector));
/// ```
#[derive(Clone)]
pub struct Otel {
    shared: Arc<Shared>,
}

struct Shared {
    request_duration: Histogram<f64>,
    active_requests: UpDownCounter<i64>,
    open_connections: UpDownCounter<i64>,
    connection_duration: Histogram<f64>,
    dns_duration: Histogram<f64>,
    connect_duration: Histogram<f64>,
    tls_duration: Histogram<f64>,
    tracer: Option<BoxedTracer>,
    phase_spans: bool,
    redact_query: bool,
    conns: Mutex<HashMap<u64, Conn>>,
}

struct Conn {
    active: bool,
    attrs: [KeyValue; 3],
}

impl fmt::Debug for Otel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Otel")
            .field("spans", &self.shared.tracer.is_some())
            .field("phase_spans", &self.shared.phase_spans)
            .field("redact_query", &self.shared.redact_query)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Otel {
    /// Metrics from `meter`; no spans until [`Otel::with_tracer`].
    pub fn new(meter: &Meter) -> Self {
        let histogram = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        let seconds = |name, description| histogram(name, description, &DURATION_BUCKETS);
        Self {
            shared: Arc::new(Shared {
                request_duration: seconds(
                    "http.client.request.duration",
                    "Duration of HTTP client requests.",
                ),
                active_requests: meter
                    .i64_up_down_counter("http.client.active_requests")
                    .with_unit("{request}")
                    .with_description("Number of active HTTP requests.")
                    .build(),
                open_connections: meter
                    .i64_up_down_counter("http.client.open_connections")
                    .with_unit("{connection}")
                    .with_description(
                        "Number of outbound HTTP connections that are active or idle.",
                    )
                    .build(),
                connection_duration: histogram(
                    "http.client.connection.duration",
                    "The duration of the successfully established outbound HTTP connections.",
                    &CONNECTION_BUCKETS,
                ),
                dns_duration: seconds(
                    "dns.lookup.duration",
                    "Measures the time taken to perform a DNS lookup.",
                ),
                connect_duration: seconds(
                    "httptrace.client.connect.duration",
                    "Duration of one TCP connect attempt (httptrace).",
                ),
                tls_duration: seconds(
                    "httptrace.client.tls_handshake.duration",
                    "Duration of the TLS handshake (httptrace).",
                ),
                tracer: None,
                phase_spans: false,
                redact_query: true,
                conns: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            f(shared);
        }
        self
    }

    /// Also make a client span per request with `tracer`. Default: no spans.
    ///
    /// ```
    /// use opentelemetry::trace::TracerProvider as _;
    /// let tracer = opentelemetry::global::tracer_provider().tracer("httptrace");
    /// # let meter = opentelemetry::global::meter("httptrace");
    /// let otel = httptrace::Otel::new(&meter).with_tracer(tracer);
    /// # drop(otel);
    /// ```
    pub fn with_tracer<T>(self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.edit(|s| s.tracer = Some(BoxedTracer::new(Box::new(tracer))))
    }

    /// Also make a child span per phase. Default: `false` (the phases are span events).
    pub fn phase_spans(self, yes: bool) -> Self {
        self.edit(|s| s.phase_spans = yes)
    }

    /// Replace the URL's query by `REDACTED` in `url.full`. Default: `true`.
    pub fn redact_query(self, yes: bool) -> Self {
        self.edit(|s| s.redact_query = yes)
    }

    /// The hooks of one request.
    pub fn trace(&self) -> ClientTrace {
        ClientTrace::new(OtelHooks {
            shared: self.shared.clone(),
            state: Mutex::new(Req::default()),
        })
    }

    /// A [`TraceLayer`](crate::TraceLayer) that reports every request of the client.
    pub fn layer(&self) -> crate::TraceLayer {
        let otel = self.clone();
        crate::TraceLayer::new().trace_factory(move || otel.trace())
    }

    /// The connection observer, for
    /// [`TracingConnector::observe_connections`](crate::TracingConnector::observe_connections):
    /// `http.client.open_connections` and `http.client.connection.duration` come from it.
    pub fn connection_observer(&self) -> ClientTrace {
        ClientTrace::new(Connections {
            shared: self.shared.clone(),
        })
    }
}

/// The buckets the HTTP conventions advise for durations in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The buckets they advise for a connection's life: pooled connections live for minutes.
const CONNECTION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A connection's attributes: its peer's address (as `server.address` too: a connection
/// doesn't know the host name it was dialled for) and port.
fn conn_attrs(addr: Option<SocketAddr>) -> [KeyValue; 3] {
    let ip = addr.map(|a| a.ip().to_string()).unwrap_or_default();
    [
        KeyValue::new("server.address", ip.clone()),
        KeyValue::new(
            "server.port",
            addr.map(|a| i64::from(a.port())).unwrap_or(0),
        ),
        KeyValue::new("network.peer.address", ip),
    ]
}

fn state_attrs(conn: &Conn, active: bool) -> [KeyValue; 4] {
    let [a, b, c] = conn.attrs.clone();
    [
        KeyValue::new(
            "http.connection.state",
            if active { "active" } else { "idle" },
        ),
        a,
        b,
        c,
    ]
}

impl Shared {
    /// A connection served a request (`true`) or went back to the pool (`false`).
    fn set_active(&self, conn_id: u64, active: bool) {
        let mut conns = lock(&self.conns);
        if let Some(conn) = conns.get_mut(&conn_id) {
            if conn.active != active {
                self.open_connections
                    .add(-1, &state_attrs(conn, conn.active));
                self.open_connections.add(1, &state_attrs(conn, active));
                conn.active = active;
            }
        }
    }
}

/// The connection observer of [`Otel`].
struct Connections {
    shared: Arc<Shared>,
}

impl Hooks for Connections {
    fn on_event(&self, event: &Event) {
        let shared = &self.shared;
        match event {
            Event::ConnectDone(i) => {
                let Some(id) = i.conn_id else { return };
                let conn = Conn {
                    active: false,
                    attrs: conn_attrs(i.addr),
                };
                shared.open_connections.add(1, &state_attrs(&conn, false));
                lock(&shared.conns).insert(id, conn);
            }
            Event::ConnectionClosed(i) => {
                let Some(conn) = lock(&shared.conns).remove(&i.conn_id) else {
                    return;
                };
                shared
                    .open_connections
                    .add(-1, &state_attrs(&conn, conn.active));
                shared
                    .connection_duration
                    .record(i.lifetime.as_secs_f64(), &conn.attrs);
            }
            _ => {}
        }
    }
}

/// The hooks of one request, made by [`Otel::trace`].
struct OtelHooks {
    shared: Arc<Shared>,
    state: Mutex<Req>,
}

#[derive(Default)]
struct Req {
    start: Option<Instant>,
    /// The wall-clock time of one instant: every instant of the request is converted with it,
    /// so the span's events keep their order and stay within its bounds.
    anchor: Option<(Instant, SystemTime)>,
    /// `1.1`, `2`: from the response.
    version: Option<&'static str>,
    attrs: Vec<KeyValue>,
    status: Option<u16>,
    error_type: Option<Cow<'static, str>>,
    dns: Option<(Instant, String)>,
    connects: Vec<(Option<SocketAddr>, Instant)>,
    tls: Option<(Instant, Option<String>)>,
    got_conn: Option<Instant>,
    wrote_request: Option<Instant>,
    headers: Option<Instant>,
    span: Option<Context>,
    ended: bool,
}

/// The wall-clock time of `at` (spans take `SystemTime`s), by the request's anchor.
fn wall(anchor: Option<(Instant, SystemTime)>, at: Instant) -> SystemTime {
    let (instant, time) = anchor.unwrap_or_else(|| (crate::util::now(), SystemTime::now()));
    match at.checked_duration_since(instant) {
        Some(after) => time.checked_add(after),
        None => time.checked_sub(instant.saturating_duration_since(at)),
    }
    .unwrap_or(time)
}

fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

fn with_error(mut attrs: Vec<KeyValue>, error: Option<&'static str>) -> Vec<KeyValue> {
    if let Some(e) = error {
        attrs.push(KeyValue::new("error.type", e));
    }
    attrs
}

impl OtelHooks {
    fn phase(&self, st: &Req, name: &'static str, from: Option<Instant>, to: Instant) {
        let (true, Some(tracer), Some(cx), Some(from)) =
            (self.shared.phase_spans, &self.shared.tracer, &st.span, from)
        else {
            return;
        };
        let child = tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(wall(st.anchor, from))
            .start_with_context(tracer, cx);
        let cx = cx.with_span(child);
        cx.span().end_with_timestamp(wall(st.anchor, to));
    }

    fn start(&self, st: &mut Req, info: &crate::event::GetConnInfo) {
        let port = i64::from(crate::util::default_port(&info.uri));
        let host = info.uri.host().unwrap_or("").to_owned();
        st.start = Some(info.at);
        st.anchor = Some((crate::util::now(), SystemTime::now()));
        st.attrs = vec![
            KeyValue::new("http.request.method", info.method.to_string()),
            KeyValue::new("server.address", host),
            KeyValue::new("server.port", port),
            KeyValue::new(
                "url.scheme",
                info.uri.scheme_str().unwrap_or("http").to_owned(),
            ),
        ];
        self.shared.active_requests.add(1, &st.attrs);
        if let Some(tracer) = &self.shared.tracer {
            let mut attrs = st.attrs.clone();
            attrs.push(KeyValue::new(
                "url.full",
                url_full(&info.uri, self.shared.redact_query),
            ));
            let span = tracer
                .span_builder(info.method.to_string())
                .with_kind(SpanKind::Client)
                .with_start_time(wall(st.anchor, info.at))
                .with_attributes(attrs)
                .start_with_context(tracer, &Context::current());
            st.span = Some(Context::current().with_span(span));
        }
    }

    fn end(&self, st: &mut Req, at: Instant, error: Option<&'static str>) {
        if st.ended {
            return;
        }
        st.ended = true;
        let error: Option<Cow<'static, str>> = error.map(Cow::Borrowed).or(st.error_type.clone());
        let mut attrs = st.attrs.clone();
        if let Some(status) = st.status {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(version) = st.version {
            attrs.push(KeyValue::new("network.protocol.version", version));
        }
        if let Some(e) = &error {
            attrs.push(KeyValue::new("error.type", e.clone()));
        }
        if let Some(start) = st.start {
            self.shared.request_duration.record(secs(start, at), &attrs);
            self.shared.active_requests.add(-1, &st.attrs);
        }
        if let Some(cx) = &st.span {
            let span = cx.span();
            if let Some(status) = st.status {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
            }
            if let Some(version) = st.version {
                span.set_attribute(KeyValue::new("network.protocol.version", version));
            }
            if let Some(e) = error {
                span.set_attribute(KeyValue::new("error.type", e.clone()));
                span.set_status(Status::error(e));
            }
            span.end_with_timestamp(wall(st.anchor, at));
        }
    }
}

impl Hooks for OtelHooks {
    fn on_event(&self, event: &Event) {
        let mut st = lock(&self.state);
        if let Event::GetConn(info) = event {
            self.start(&mut st, info);
        }
        let at = event.at();
        if let (Some(cx), false) = (&st.span, st.ended) {
            let mut attrs = Vec::new();
            if let Some(e) = event.error() {
                let message = super::redacted_error(&e.to_string(), self.shared.redact_query);
                attrs.push(KeyValue::new("exception.message", message));
            }
            cx.span()
                .add_event_with_timestamp(event.name(), wall(st.anchor, at), attrs);
        }
        let error = error_type(event);
        let shared = &self.shared;
        match event {
            Event::DnsStart(i) => st.dns = Some((at, i.host.clone())),
            Event::DnsDone(_) => {
                if let Some((from, host)) = st.dns.take() {
                    let attrs = with_error(vec![KeyValue::new("dns.question.name", host)], error);
                    shared.dns_duration.record(secs(from, at), &attrs);
                    self.phase(&st, "dns", Some(from), at);
                }
            }
            Event::ConnectStart(i) => st.connects.push((i.addr, at)),
            Event::ConnectDone(i) => {
                if let Some((addr, from)) = connect_started(&mut st.connects, i.addr) {
                    let attrs = with_error(conn_attrs(i.addr.or(addr)).to_vec(), error);
                    shared.connect_duration.record(secs(from, at), &attrs);
                    self.phase(&st, "connect", Some(from), at);
                }
            }
            Event::TlsHandshakeStart(i) => st.tls = Some((at, i.server_name.clone())),
            Event::TlsHandshakeDone(_) => {
                if let Some((from, name)) = st.tls.take() {
                    let name = name.unwrap_or_default();
                    let attrs = with_error(vec![KeyValue::new("server.address", name)], error);
                    shared.tls_duration.record(secs(from, at), &attrs);
                    self.phase(&st, "tls", Some(from), at);
                }
            }
            Event::GotConn(i) => {
                st.got_conn = Some(at);
                shared.set_active(i.conn_id, true);
                if let (Some(cx), Some(peer)) = (&st.span, i.remote_addr) {
                    let span = cx.span();
                    span.set_attribute(KeyValue::new(
                        "network.peer.address",
                        peer.ip().to_string(),
                    ));
                    span.set_attribute(KeyValue::new("network.peer.port", i64::from(peer.port())));
                }
            }
            Event::PutIdleConn(i) => shared.set_active(i.conn_id, false),
            Event::WroteRequest(_) => st.wrote_request = Some(at),
            Event::GotFirstResponseByte(_) => {
                let from = st.wrote_request.or(st.got_conn);
                self.phase(&st, "wait", from, at);
            }
            Event::ResponseHeaders(i) => {
                st.headers = Some(at);
                st.status = Some(i.status.as_u16());
                st.version = match i.version {
                    http::Version::HTTP_09 => Some("0.9"),
                    http::Version::HTTP_10 => Some("1.0"),
                    http::Version::HTTP_11 => Some("1.1"),
                    http::Version::HTTP_2 => Some("2"),
                    http::Version::HTTP_3 => Some("3"),
                    _ => None,
                };
                if i.status.is_client_error() || i.status.is_server_error() {
                    st.error_type = Some(Cow::Owned(i.status.as_str().to_owned()));
                }
            }
            Event::ResponseBodyDone(_) => {
                self.phase(&st, "body", st.headers, at);
                self.end(&mut st, at, error);
            }
            Event::RequestFailed(_) | Event::RequestCanceled(_) => {
                let first = st.error_type.clone();
                let error = match first {
                    Some(Cow::Borrowed(e)) => Some(e),
                    _ => error,
                };
                self.end(&mut st, at, error);
            }
            _ => {}
        }
        // the first failure on the way names a failed request
        if let Some(e) = error {
            if e != "canceled" && st.error_type.is_none() {
                st.error_type = Some(Cow::Borrowed(e));
            }
        }
    }
}

impl Drop for OtelHooks {
    fn drop(&mut self) {
        // a request dropped without its last event (it can't happen through the layer) still
        // leaves the active count
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if !st.ended && st.start.is_some() {
            self.shared.active_requests.add(-1, &st.attrs);
        }
    }
}
