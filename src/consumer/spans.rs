use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::{Level, Span};

use super::{error_type, redacted_error, url_full};
use crate::event::{Event, GetConnInfo, Hooks};
use crate::trace::ClientTrace;

/// Hooks that turn one request's events into [`tracing`] spans and events: a span per request,
/// named and with fields as the OpenTelemetry HTTP client conventions name them, an event per
/// httptrace event inside it, and a child span per phase.
///
/// The request span (`HTTP`, `otel.name` = the method) has the fields `http.request.method`,
/// `server.address`, `server.port`, `url.full`, and once known `network.peer.address`,
/// `network.peer.port`, `http.response.status_code`, `error.type`, `httptrace.reused`. Its
/// parent is the span current where the request was sent. Each event is a `tracing` event with
/// `httptrace.event` (its name) and `httptrace.offset_us` (when it happened, from the request's
/// start), and its details. Each phase — `dns`, `connect` (one per address attempt), `tls`,
/// `wait` (request written to first response byte), `body` (response head to body end) — is a
/// child span opened when its first event is delivered and closed when its last is, so that a
/// span viewer shows its length; its fields `httptrace.start_offset_us` and
/// `httptrace.duration_us` hold its true timing, from the events' instants, and
/// `httptrace.late_us` how long after its true start it was opened (`tracing` spans can't be
/// backdated): a few microseconds for phases whose start is delivered as it happens; the `body`
/// opens when the response head reaches the caller, stamped at the read that brought it.
///
/// Sensitive data stays out: no header is ever recorded (so neither `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie` nor any other); the URL's userinfo is dropped
/// and its query replaced by `REDACTED` unless [`TracingHooks::redact_query`] is turned off,
/// in `url.full` and in every URL an error's text holds (reqwest writes the request's).
///
/// A `TracingHooks` holds one request's span: make one per request, e.g. with
/// [`TraceLayer::trace_factory`](crate::TraceLayer::trace_factory).
///
/// ```
/// use httptrace::{TraceLayer, TracingHooks};
///
/// let layer = TraceLayer::new().trace_factory(|| TracingHooks::new().into_trace());
/// # drop(layer);
/// ```
pub struct TracingHooks {
    level: Level,
    event_level: Level,
    redact_query: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    span: Option<Span>,
    start: Option<Instant>,
    dns: Option<Phase>,
    /// One per address attempt (or one for the whole connect), by address.
    connects: Vec<(Option<std::net::SocketAddr>, Phase)>,
    tls: Option<Phase>,
    got_conn: Option<Instant>,
    wait: Option<Phase>,
    body: Option<Phase>,
    error_type: Option<&'static str>,
}

/// A phase in progress: its span, open since its start was delivered, and its true start.
struct Phase {
    span: Span,
    from: Instant,
}

impl Phase {
    /// The phase ends at `to`: its true length recorded, its span closed.
    fn close(self, to: Instant) {
        self.span.record(
            "httptrace.duration_us",
            micros(to.saturating_duration_since(self.from)),
        );
    }
}

impl Default for TracingHooks {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TracingHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingHooks")
            .field("level", &self.level)
            .field("event_level", &self.event_level)
            .field("redact_query", &self.redact_query)
            .finish()
    }
}

macro_rules! at_level {
    ($lvl:expr, $mac:ident!(parent: $p:expr, $($args:tt)*)) => {
        match $lvl {
            Level::ERROR => tracing::$mac!(parent: $p, Level::ERROR, $($args)*),
            Level::WARN => tracing::$mac!(parent: $p, Level::WARN, $($args)*),
            Level::INFO => tracing::$mac!(parent: $p, Level::INFO, $($args)*),
            Level::DEBUG => tracing::$mac!(parent: $p, Level::DEBUG, $($args)*),
            _ => tracing::$mac!(parent: $p, Level::TRACE, $($args)*),
        }
    };
    ($lvl:expr, $mac:ident!($($args:tt)*)) => {
        match $lvl {
            Level::ERROR => tracing::$mac!(Level::ERROR, $($args)*),
            Level::WARN => tracing::$mac!(Level::WARN, $($args)*),
            Level::INFO => tracing::$mac!(Level::INFO, $($args)*),
            Level::DEBUG => tracing::$mac!(Level::DEBUG, $($args)*),
            _ => tracing::$mac!(Level::TRACE, $($args)*),
        }
    };
}

impl TracingHooks {
    /// Hooks with the defaults: the request and phase spans at `INFO`, the events at `DEBUG`,
    /// the query redacted.
    pub fn new() -> Self {
        Self {
            level: Level::INFO,
            event_level: Level::DEBUG,
            redact_query: true,
            state: Mutex::new(State::default()),
        }
    }

    /// The level of the request span and its phase spans. Default: `INFO`.
    ///
    /// ```
    /// let hooks = httptrace::TracingHooks::new().level(tracing::Level::DEBUG);
    /// # drop(hooks);
    /// ```
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The level of the events. Default: `DEBUG`.
    ///
    /// ```
    /// let hooks = httptrace::TracingHooks::new().event_level(tracing::Level::TRACE);
    /// # drop(hooks);
    /// ```
    pub fn event_level(mut self, level: Level) -> Self {
        self.event_level = level;
        self
    }

    /// Replace the URL's query by `REDACTED` in `url.full`. Default: `true`.
    ///
    /// ```
    /// let hooks = httptrace::TracingHooks::new().redact_query(false);
    /// # drop(hooks);
    /// ```
    pub fn redact_query(mut self, yes: bool) -> Self {
        self.redact_query = yes;
        self
    }

    /// A trace calling these hooks.
    pub fn into_trace(self) -> ClientTrace {
        ClientTrace::new(self)
    }

    fn url_full(&self, uri: &http::Uri) -> String {
        url_full(uri, self.redact_query)
    }

    fn open(&self, st: &mut State, info: &GetConnInfo) {
        let port = crate::util::default_port(&info.uri);
        let span = at_level!(
            self.level,
            span!(
                "HTTP",
                otel.name = %info.method,
                otel.kind = "client",
                http.request.method = %info.method,
                server.address = info.uri.host().unwrap_or(""),
                server.port = port,
                url.full = %self.url_full(&info.uri),
                network.peer.address = Empty,
                network.peer.port = Empty,
                http.response.status_code = Empty,
                error.type = Empty,
                httptrace.reused = Empty,
            )
        );
        st.span = Some(span);
        st.start = Some(info.at);
    }

    /// A phase starts at `from`: its span opens now, under the request's.
    fn phase(&self, st: &State, name: &'static str, from: Instant) -> Option<Phase> {
        let (Some(span), Some(start)) = (&st.span, st.start) else {
            return None;
        };
        let offset = micros(from.saturating_duration_since(start));
        let late = micros(crate::util::now().saturating_duration_since(from));
        let span = at_level!(
            self.level,
            span!(
                parent: span,
                "phase",
                otel.name = name,
                httptrace.phase = name,
                httptrace.start_offset_us = offset,
                httptrace.duration_us = Empty,
                httptrace.late_us = late,
            )
        );
        Some(Phase { span, from })
    }

    fn record_event(&self, st: &State, event: &Event) {
        let (Some(span), Some(start)) = (&st.span, st.start) else {
            return;
        };
        let offset = micros(event.at().saturating_duration_since(start));
        let name = event.name();
        let error = event
            .error()
            .map(|e| redacted_error(&e.to_string(), self.redact_query));
        let detail = detail(event);
        at_level!(
            self.event_level,
            event!(
                parent: span,
                httptrace.event = name,
                httptrace.offset_us = offset,
                httptrace.detail = detail.as_deref(),
                error = error.as_deref(),
            )
        );
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A few words on an event, for its `httptrace.detail` field. Never a header.
fn detail(event: &Event) -> Option<String> {
    Some(match event {
        Event::DnsStart(i) => i.host.clone(),
        Event::DnsDone(i) => format!("{:?}", i.addrs),
        Event::ConnectStart(i) => i.addr?.to_string(),
        Event::ConnectDone(i) => match (i.addr, i.conn_id) {
            (Some(a), Some(id)) => format!("{a} conn #{id}"),
            (Some(a), None) => a.to_string(),
            _ => return None,
        },
        Event::TlsHandshakeDone(i) => {
            let s = i.state.as_ref()?;
            format!("{} {}", s.version, s.cipher_suite)
        }
        Event::GotConn(i) => match &i.http2 {
            None => format!(
                "conn #{} reused={} was_idle={} idle={:?}",
                i.conn_id, i.reused, i.was_idle, i.idle_time
            ),
            Some(h2) => format!(
                "conn #{} h2 stream={} in_flight={} waited={} reused={}",
                i.conn_id,
                h2.stream_id.map_or("?".into(), |id| id.to_string()),
                h2.streams_in_flight,
                h2.waited_for_connect,
                i.reused
            ),
        },
        Event::Http2Ready(i) => format!(
            "conn #{} max_concurrent_streams={:?}",
            i.conn_id, i.max_concurrent_streams
        ),
        Event::GoAway(i) => format!(
            "conn #{} last_stream={} code={}",
            i.conn_id, i.last_stream_id, i.error_code
        ),
        Event::StreamReset(i) => format!(
            "stream {} code={} by_server={}",
            i.stream_id, i.error_code, i.by_server
        ),
        Event::Got1xxResponse(i) => i.status.to_string(),
        Event::ResponseHeaders(i) => i.status.to_string(),
        Event::ResponseBodyDone(i) => format!("{} bytes", i.bytes),
        Event::Redirect(i) => format!("{} hop {}", i.status, i.hop),
        Event::ConnectionClosed(i) => format!("conn #{} after {} requests", i.conn_id, i.requests),
        _ => return None,
    })
}

impl Hooks for TracingHooks {
    fn request_span(&self, _request: crate::event::RequestId) -> Option<Span> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.span.clone()
    }

    fn on_event(&self, event: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Event::GetConn(info) = event {
            self.open(&mut st, info);
        }
        self.record_event(&st, event);
        let at = event.at();
        match event {
            Event::DnsStart(_) => st.dns = self.phase(&st, "dns", at),
            Event::DnsDone(_) => {
                if let Some(p) = st.dns.take() {
                    p.close(at);
                }
            }
            Event::ConnectStart(i) => {
                if let Some(p) = self.phase(&st, "connect", at) {
                    st.connects.push((i.addr, p));
                }
            }
            Event::ConnectDone(i) => {
                let open = st
                    .connects
                    .iter()
                    .position(|(a, _)| a.is_some() && *a == i.addr)
                    .or_else(|| st.connects.iter().position(|(a, _)| a.is_none()))
                    .or_else(|| (!st.connects.is_empty()).then_some(0));
                if let Some(k) = open {
                    st.connects.remove(k).1.close(at);
                }
            }
            Event::TlsHandshakeStart(_) => st.tls = self.phase(&st, "tls", at),
            Event::TlsHandshakeDone(_) => {
                if let Some(p) = st.tls.take() {
                    p.close(at);
                }
            }
            Event::GotConn(i) => {
                st.got_conn = Some(at);
                if let Some(span) = &st.span {
                    span.record("httptrace.reused", i.reused);
                    if let Some(peer) = i.remote_addr {
                        span.record("network.peer.address", tracing::field::display(peer.ip()));
                        span.record("network.peer.port", peer.port());
                    }
                }
            }
            Event::WroteRequest(_) if st.wait.is_none() => {
                st.wait = self.phase(&st, "wait", at);
            }
            Event::GotFirstResponseByte(_) => {
                if let Some(p) = st.wait.take() {
                    p.close(at);
                }
            }
            Event::ResponseHeaders(i) => {
                if let Some(p) = st.wait.take() {
                    // no first byte seen (reqwest): the wait ends with the head
                    p.close(at);
                }
                st.body = self.phase(&st, "body", at);
                if let Some(span) = &st.span {
                    span.record("http.response.status_code", i.status.as_u16());
                    if i.status.is_client_error() || i.status.is_server_error() {
                        // OpenTelemetry: the status code is the error type of a failed response
                        span.record("error.type", i.status.as_str());
                    }
                }
            }
            Event::ResponseBodyDone(_) => {
                if let Some(p) = st.body.take() {
                    p.close(at);
                }
            }
            _ => {}
        }
        let terminal = matches!(
            event,
            Event::RequestFailed(_) | Event::RequestCanceled(_) | Event::ResponseBodyDone(_)
        );
        match error_type(event) {
            // the request failed: name it by the first failure on its way, if any
            Some(kind) if terminal => {
                let kind = st.error_type.unwrap_or(kind);
                if let Some(span) = &st.span {
                    span.record("error.type", kind);
                }
            }
            // an attempt that lost the race, a lookup dropped with its connect: not a failure
            Some("canceled") | None => {}
            Some(kind) => {
                st.error_type.get_or_insert(kind);
            }
        }
        if terminal {
            // the request's last event closes what is open, then its span; a connect it started
            // that ends in the background afterwards is not recorded
            let open = [st.dns.take(), st.tls.take(), st.wait.take(), st.body.take()];
            let connects = std::mem::take(&mut st.connects)
                .into_iter()
                .map(|(_, p)| Some(p));
            for p in open.into_iter().chain(connects).flatten() {
                p.close(at);
            }
            st.span = None;
        }
    }
}
