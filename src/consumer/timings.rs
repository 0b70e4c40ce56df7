use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::event::{Event, Hooks};
use crate::trace::ClientTrace;

/// The phases of one request, computed from its events, as curl `-w` and httpstat show them.
///
/// [`TraceLayer::record_timings`](crate::TraceLayer::record_timings) puts one in every
/// response's extensions; it is complete once the response body has been read to its end. It
/// can also be attached by hand with [`Timings::trace`].
///
/// Phases (httpstat's): [`dns`](Timings::dns), [`connect`](Timings::connect),
/// [`tls`](Timings::tls), [`server_processing`](Timings::server_processing) (connection obtained
/// to first response byte), [`content_transfer`](Timings::content_transfer) (first byte to body
/// end), [`total`](Timings::total). Marks from the start (curl's `time_*`):
/// [`namelookup`](Timings::namelookup), [`connected`](Timings::connected),
/// [`appconnect`](Timings::appconnect), [`pretransfer`](Timings::pretransfer),
/// [`starttransfer`](Timings::starttransfer). A phase that didn't happen (no lookup for an IP
/// literal, no connect on a reused connection) is `None`; so are the lookup and connect of a
/// dial that hyper-util started for this request when an idle connection then served it. On
/// HTTP/2 the phases that need the wire (`server_processing`, `content_transfer`,
/// `starttransfer`) are there when the request's stream is known (a layer that traces every
/// request, as `record_timings` does; see the crate docs, "HTTP/2"), and `None` otherwise.
///
/// ```no_run
/// # async fn doc(svc: impl tower::Service<http::Request<http_body_util::Empty<bytes::Bytes>>, Response = http::Response<httptrace::ResponseBody<hyper::body::Incoming>>, Error = hyper_util::client::legacy::Error>) {
/// use http_body_util::BodyExt;
/// use httptrace::Timings;
/// use tower::ServiceExt;
///
/// let res = svc.oneshot(http::Request::new(Default::default())).await.unwrap();
/// let timings = res.extensions().get::<Timings>().cloned().unwrap();
/// res.into_body().collect().await.unwrap();
/// println!("reused: {:?}, server: {:?}, total: {:?}",
///     timings.reused(), timings.server_processing(), timings.total());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Timings {
    marks: Arc<Recording>,
}

/// What a `Timings` records, and the hooks recording it.
#[derive(Default)]
struct Recording(Mutex<Marks>);

#[derive(Debug, Default, Clone)]
struct Marks {
    start: Option<Instant>,
    dns_start: Option<Instant>,
    dns_done: Option<Instant>,
    connect_start: Option<Instant>,
    connect_done: Option<Instant>,
    tls_start: Option<Instant>,
    tls_done: Option<Instant>,
    got_conn: Option<Instant>,
    wrote_request: Option<Instant>,
    first_byte: Option<Instant>,
    end: Option<Instant>,
    reused: Option<bool>,
    conn_id: Option<u64>,
    /// The connection this request's own dial made.
    dialled: Option<u64>,
    failed: bool,
}

impl Marks {
    /// The lookup and connect marks count when this request's dial made the connection that
    /// served it (or none served it yet): hyper-util may dial for a request that an idle
    /// connection then serves.
    fn dial(&self) -> Option<&Self> {
        match self.conn_id {
            Some(conn) if self.dialled != Some(conn) => None,
            _ => Some(self),
        }
    }
}

fn span(from: Option<Instant>, to: Option<Instant>) -> Option<Duration> {
    Some(to?.saturating_duration_since(from?))
}

impl Timings {
    /// Empty timings, to fill with [`Timings::trace`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A trace that fills these timings.
    ///
    /// ```
    /// let timings = httptrace::Timings::new();
    /// let trace = timings.trace(); // attach it to one request
    /// # drop(trace);
    /// assert!(!timings.is_complete());
    /// ```
    pub fn trace(&self) -> ClientTrace {
        // no allocation; and no 1xx callback for hyper to keep: the phases don't need 1xx
        ClientTrace::shared(self.marks.clone(), false)
    }

    fn marks(&self) -> MutexGuard<'_, Marks> {
        self.marks.lock()
    }

    /// The request ended: the body was read to its end, or the request failed.
    pub fn is_complete(&self) -> bool {
        self.marks().end.is_some()
    }

    /// The request failed (or its body did, or it was dropped).
    pub fn failed(&self) -> bool {
        self.marks().failed
    }

    /// Whether the connection had served requests before (`None` before one was obtained).
    pub fn reused(&self) -> Option<bool> {
        self.marks().reused
    }

    /// The id of the connection that served the request.
    pub fn conn_id(&self) -> Option<u64> {
        self.marks().conn_id
    }

    /// When the request started (`GetConn`).
    pub fn start(&self) -> Option<Instant> {
        self.marks().start
    }

    /// DNS lookup: `DNSStart` to `DNSDone`.
    pub fn dns(&self) -> Option<Duration> {
        let m = self.marks();
        let m = m.dial()?;
        span(m.dns_start, m.dns_done)
    }

    /// TCP connect: `ConnectStart` to `ConnectDone`.
    pub fn connect(&self) -> Option<Duration> {
        let m = self.marks();
        let m = m.dial()?;
        span(m.connect_start, m.connect_done)
    }

    /// TLS handshake: `TLSHandshakeStart` to `TLSHandshakeDone`.
    pub fn tls(&self) -> Option<Duration> {
        let m = self.marks();
        let m = m.dial()?;
        span(m.tls_start, m.tls_done)
    }

    /// Server processing: `GotConn` to `GotFirstResponseByte`.
    pub fn server_processing(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.got_conn, m.first_byte)
    }

    /// Content transfer: `GotFirstResponseByte` to the end of the body.
    pub fn content_transfer(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.first_byte, m.end)
    }

    /// Total: `GetConn` to the end of the body.
    pub fn total(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.end)
    }

    /// curl's `time_namelookup`: start to `DNSDone`.
    pub fn namelookup(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.dial()?.dns_done)
    }

    /// curl's `time_connect`: start to `ConnectDone`.
    pub fn connected(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.dial()?.connect_done)
    }

    /// curl's `time_appconnect`: start to `TLSHandshakeDone`.
    pub fn appconnect(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.dial()?.tls_done)
    }

    /// curl's `time_pretransfer`: start to `GotConn`.
    pub fn pretransfer(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.got_conn)
    }

    /// start to `WroteRequest`.
    pub fn wrote_request(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.wrote_request)
    }

    /// curl's `time_starttransfer`: start to `GotFirstResponseByte`.
    pub fn starttransfer(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.first_byte)
    }
}

impl Hooks for Timings {
    fn on_event(&self, event: &Event) {
        self.marks.on_event(event)
    }
}

impl Recording {
    fn lock(&self) -> MutexGuard<'_, Marks> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hooks for Recording {
    fn on_event(&self, event: &Event) {
        let at = Some(event.at());
        match event {
            // what the phases don't need: no lock
            Event::ConnectDone(i) if i.conn_id.is_none() => {}
            Event::GetConn(_)
            | Event::DnsStart(_)
            | Event::DnsDone(_)
            | Event::ConnectStart(_)
            | Event::ConnectDone(_)
            | Event::TlsHandshakeStart(_)
            | Event::TlsHandshakeDone(_)
            | Event::GotConn(_)
            | Event::WroteRequest(_)
            | Event::GotFirstResponseByte(_)
            | Event::ResponseBodyDone(_)
            | Event::RequestFailed(_)
            | Event::RequestCanceled(_) => {
                let mut m = self.lock();
                match event {
                    Event::GetConn(_) => m.start = m.start.or(at),
                    Event::DnsStart(_) => m.dns_start = at,
                    Event::DnsDone(_) => m.dns_done = at,
                    Event::ConnectStart(_) => m.connect_start = m.connect_start.or(at),
                    // a failed or canceled address attempt doesn't end the connect
                    Event::ConnectDone(i) => {
                        m.connect_done = at;
                        m.dialled = i.conn_id;
                    }
                    Event::TlsHandshakeStart(_) => m.tls_start = at,
                    Event::TlsHandshakeDone(_) => m.tls_done = at,
                    Event::GotConn(i) => {
                        m.got_conn = at;
                        m.reused = Some(i.reused);
                        m.conn_id = Some(i.conn_id);
                    }
                    Event::WroteRequest(_) => m.wrote_request = at,
                    Event::GotFirstResponseByte(_) => m.first_byte = at,
                    Event::ResponseBodyDone(i) => {
                        m.end = at;
                        m.failed |= i.error.is_some();
                    }
                    _ => {
                        // RequestFailed, RequestCanceled
                        m.end = at;
                        m.failed = true;
                    }
                }
            }
            _ => {}
        }
    }
}

impl fmt::Debug for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timings")
            .field("dns", &self.dns())
            .field("connect", &self.connect())
            .field("tls", &self.tls())
            .field("server_processing", &self.server_processing())
            .field("content_transfer", &self.content_transfer())
            .field("total", &self.total())
            .field("reused", &self.reused())
            .finish()
    }
}
