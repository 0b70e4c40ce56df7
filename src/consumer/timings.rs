use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::binding::Recorded;
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
/// dial that hyper-util started for this request when an idle connection then served it. Where
/// the first response byte can't be seen (through reqwest, or an HTTP/2 stream that can't be
/// told, see [HTTP/2](crate::TraceLayer#http2)), `server_processing`, `content_transfer` and
/// `starttransfer` split at `ResponseHeaders` instead, and
/// [`first_byte_derived`](Timings::first_byte_derived) says so.
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

/// What a `Timings` records, without a lock: each mark is its offset in nanoseconds from
/// `base`, before or after it (`UNSET`: not yet), so a `Timings` fed events that happened
/// before it was made (replayed, or made in a hook) keeps their instants. The layer's own
/// `Timings` are written under their request's lock, one event at a time; a `Timings` attached
/// by hand to several requests at once gets their marks mixed, as it would with a lock.
struct Recording {
    base: Instant,
    at: [AtomicI64; MARKS],
    /// 0: no connection yet; 1: a new one; 2: a reused one (then `conn_id` is its id).
    reused: AtomicU8,
    conn_id: AtomicU64,
    /// This request's own dial made a connection (then `dialled` is its id).
    has_dialled: AtomicBool,
    dialled: AtomicU64,
    failed: AtomicBool,
}

/// A mark not set yet (no offset is 292 years).
const UNSET: i64 = i64::MIN;

/// The instants a `Timings` keeps, as indices into `Recording::at`.
#[derive(Clone, Copy)]
enum Mark {
    Start,
    DnsStart,
    DnsDone,
    ConnectStart,
    ConnectDone,
    TlsStart,
    TlsDone,
    GotConn,
    WroteRequest,
    FirstByte,
    Headers,
    End,
}

const MARKS: usize = Mark::End as usize + 1;

impl Default for Recording {
    fn default() -> Self {
        Self::starting_at(crate::util::now())
    }
}

impl Recording {
    fn starting_at(base: Instant) -> Self {
        Self {
            base,
            at: std::array::from_fn(|_| AtomicI64::new(UNSET)),
            reused: AtomicU8::new(0),
            conn_id: AtomicU64::new(0),
            has_dialled: AtomicBool::new(false),
            dialled: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    fn set(&self, mark: Mark, at: Instant) {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let offset = match at.checked_duration_since(self.base) {
            Some(after) => nanos(after),
            None => -nanos(self.base.duration_since(at)),
        };
        self.at[mark as usize].store(offset, Ordering::Release);
    }

    /// Sets `mark` unless it is set.
    fn set_first(&self, mark: Mark, at: Instant) {
        if self.at[mark as usize].load(Ordering::Acquire) == UNSET {
            self.set(mark, at);
        }
    }

    fn get(&self, mark: Mark) -> Option<Instant> {
        match self.at[mark as usize].load(Ordering::Acquire) {
            UNSET => None,
            v if v >= 0 => self
                .base
                .checked_add(Duration::from_nanos(v.unsigned_abs())),
            v => self
                .base
                .checked_sub(Duration::from_nanos(v.unsigned_abs())),
        }
    }

    /// Notes what the phases need of `event`.
    pub(crate) fn record(&self, event: &Event) {
        let at = event.at();
        match event {
            Event::GetConn(_) => self.set_first(Mark::Start, at),
            Event::DnsStart(_) => self.set(Mark::DnsStart, at),
            Event::DnsDone(_) => self.set(Mark::DnsDone, at),
            Event::ConnectStart(_) => self.set_first(Mark::ConnectStart, at),
            // a failed or canceled address attempt doesn't end the connect
            Event::ConnectDone(i) => {
                if let Some(conn) = i.conn_id {
                    self.set(Mark::ConnectDone, at);
                    self.dialled.store(conn, Ordering::Release);
                    self.has_dialled.store(true, Ordering::Release);
                }
            }
            Event::TlsHandshakeStart(_) => self.set(Mark::TlsStart, at),
            Event::TlsHandshakeDone(_) => self.set(Mark::TlsDone, at),
            Event::GotConn(i) => {
                self.set(Mark::GotConn, at);
                self.conn_id.store(i.conn_id, Ordering::Release);
                self.reused.store(1 + u8::from(i.reused), Ordering::Release);
            }
            Event::WroteRequest(_) => self.set(Mark::WroteRequest, at),
            Event::GotFirstResponseByte(_) => self.set(Mark::FirstByte, at),
            Event::ResponseHeaders(_) => self.set(Mark::Headers, at),
            Event::ResponseBodyDone(i) => {
                if i.error.is_some() {
                    self.failed.store(true, Ordering::Release);
                }
                self.set(Mark::End, at);
            }
            Event::RequestFailed(_) | Event::RequestCanceled(_) => {
                self.failed.store(true, Ordering::Release);
                self.set(Mark::End, at);
            }
            _ => {}
        }
    }

    /// The marks as they are now.
    fn snapshot(&self) -> Marks {
        let reused = self.reused.load(Ordering::Acquire);
        Marks {
            start: self.get(Mark::Start),
            dns_start: self.get(Mark::DnsStart),
            dns_done: self.get(Mark::DnsDone),
            connect_start: self.get(Mark::ConnectStart),
            connect_done: self.get(Mark::ConnectDone),
            tls_start: self.get(Mark::TlsStart),
            tls_done: self.get(Mark::TlsDone),
            got_conn: self.get(Mark::GotConn),
            wrote_request: self.get(Mark::WroteRequest),
            first_byte: self.get(Mark::FirstByte),
            headers: self.get(Mark::Headers),
            end: self.get(Mark::End),
            reused: (reused != 0).then_some(reused == 2),
            conn_id: (reused != 0).then(|| self.conn_id.load(Ordering::Acquire)),
            dialled: self
                .has_dialled
                .load(Ordering::Acquire)
                .then(|| self.dialled.load(Ordering::Acquire)),
            failed: self.failed.load(Ordering::Acquire),
        }
    }
}

#[derive(Debug, Clone)]
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
    /// `ResponseHeaders`: where the phases split when the first byte is unseen.
    headers: Option<Instant>,
    end: Option<Instant>,
    reused: Option<bool>,
    conn_id: Option<u64>,
    /// The connection this request's own dial made.
    dialled: Option<u64>,
    failed: bool,
}

impl Marks {
    /// The first response byte, or, when the wire is hidden (reqwest, an HTTP/2 stream that
    /// can't be told), the response head reaching the caller.
    fn first_byte(&self) -> Option<Instant> {
        self.first_byte.or(self.headers)
    }

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

    fn marks(&self) -> Marks {
        self.marks.snapshot()
    }

    /// Empty timings for a request that starts at `start` (none of its events is earlier).
    #[cfg(test)]
    pub(crate) fn starting_at(start: Instant) -> Self {
        Self {
            marks: Arc::new(Recording::starting_at(start)),
        }
    }

    /// What the layer records for a request that starts at `start`, filled by the request
    /// itself and put in its response as `Timings`.
    pub(crate) fn recorded_from(start: Instant) -> Arc<dyn Recorded> {
        Arc::new(Recording::starting_at(start))
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

    /// Server processing: `GotConn` to `GotFirstResponseByte` (or `ResponseHeaders`, see
    /// [`first_byte_derived`](Timings::first_byte_derived)).
    pub fn server_processing(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.got_conn, m.first_byte())
    }

    /// Content transfer: `GotFirstResponseByte` (or `ResponseHeaders`, see
    /// [`first_byte_derived`](Timings::first_byte_derived)) to the end of the body.
    pub fn content_transfer(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.first_byte(), m.end)
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

    /// curl's `time_starttransfer`: start to `GotFirstResponseByte` (or `ResponseHeaders`, see
    /// [`first_byte_derived`](Timings::first_byte_derived)).
    pub fn starttransfer(&self) -> Option<Duration> {
        let m = self.marks();
        span(m.start, m.first_byte())
    }

    /// The split between [`server_processing`](Timings::server_processing) and
    /// [`content_transfer`](Timings::content_transfer) (and [`starttransfer`](Timings::starttransfer))
    /// is derived: the first response byte wasn't seen on the wire (reqwest hides it, or an
    /// HTTP/2 stream couldn't be told), so the phases split where the response head reached the
    /// caller (`ResponseHeaders`), a little after the first byte. `false` before the head.
    ///
    /// ```
    /// let timings = httptrace::Timings::new();
    /// assert!(!timings.first_byte_derived());
    /// ```
    pub fn first_byte_derived(&self) -> bool {
        let m = self.marks();
        m.first_byte.is_none() && m.headers.is_some()
    }
}

impl Hooks for Timings {
    fn on_event(&self, event: &Event) {
        self.marks.record(event)
    }
}

impl Hooks for Recording {
    fn on_event(&self, event: &Event) {
        self.record(event)
    }
}

impl Recorded for Recording {
    fn record(&self, event: &Event) {
        Recording::record(self, event)
    }

    fn insert_into(self: Arc<Self>, extensions: &mut http::Extensions) {
        extensions.insert(Timings { marks: self });
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Timings;
    use crate::event::*;

    fn get_conn(at: Instant) -> Event {
        Event::GetConn(GetConnInfo {
            at,
            method: http::Method::GET,
            uri: http::Uri::from_static("http://a.test/"),
        })
    }

    fn got_conn(at: Instant, conn_id: u64, reused: bool) -> Event {
        Event::GotConn(GotConnInfo {
            at,
            reused,
            was_idle: reused,
            idle_time: Duration::ZERO,
            conn_id,
            local_addr: None,
            remote_addr: None,
            http2: None,
            derived: None,
        })
    }

    fn connect(at: Instant, done: bool, conn_id: Option<u64>) -> Event {
        match done {
            false => Event::ConnectStart(ConnectStartInfo {
                at,
                network: "tcp",
                addr: None,
            }),
            true => Event::ConnectDone(ConnectDoneInfo {
                at,
                network: "tcp",
                addr: None,
                local_addr: None,
                conn_id,
                error: None,
            }),
        }
    }

    fn body_done(at: Instant) -> Event {
        Event::ResponseBodyDone(ResponseBodyDoneInfo {
            at,
            bytes: 5,
            error: None,
        })
    }

    /// A `Timings` made after the events it is fed (replayed from a recorder, or made in a
    /// hook) keeps their instants.
    #[test]
    fn events_from_before_the_timings_keep_their_instants() {
        let t0 = crate::util::now();
        let ms = Duration::from_millis;
        let events = [
            get_conn(t0),
            got_conn(t0 + ms(2), 1, true),
            Event::GotFirstResponseByte(GotFirstResponseByteInfo { at: t0 + ms(52) }),
            body_done(t0 + ms(60)),
        ];
        let timings = Timings::starting_at(t0 + ms(1000));
        for event in &events {
            crate::Hooks::on_event(&timings, event);
        }
        assert_eq!(timings.start(), Some(t0));
        assert_eq!(timings.total(), Some(ms(60)));
        assert_eq!(timings.server_processing(), Some(ms(50)));
        assert_eq!(timings.content_transfer(), Some(ms(8)));
        assert!(timings.is_complete() && !timings.failed());
    }

    /// Without a first response byte (reqwest), the phases split at `ResponseHeaders`, and say
    /// so; with one, `ResponseHeaders` changes nothing.
    #[test]
    fn no_first_byte_splits_at_the_head() {
        let t0 = crate::util::now();
        let ms = Duration::from_millis;
        let head = |at| {
            Event::ResponseHeaders(ResponseHeadersInfo {
                at,
                status: http::StatusCode::OK,
                version: http::Version::HTTP_11,
            })
        };
        let replay = |first_byte: bool| {
            let timings = Timings::starting_at(t0);
            let mut events = vec![get_conn(t0), got_conn(t0 + ms(2), 1, true)];
            if first_byte {
                events.push(Event::GotFirstResponseByte(GotFirstResponseByteInfo {
                    at: t0 + ms(40),
                }));
            }
            events.extend([head(t0 + ms(42)), body_done(t0 + ms(60))]);
            for event in &events {
                crate::Hooks::on_event(&timings, event);
            }
            timings
        };
        let derived = replay(false);
        assert!(derived.first_byte_derived());
        assert_eq!(derived.server_processing(), Some(ms(40)));
        assert_eq!(derived.content_transfer(), Some(ms(18)));
        assert_eq!(derived.starttransfer(), Some(ms(42)));
        let seen = replay(true);
        assert!(!seen.first_byte_derived());
        assert_eq!(seen.server_processing(), Some(ms(38)));
        assert_eq!(seen.content_transfer(), Some(ms(20)));
        assert_eq!(seen.starttransfer(), Some(ms(40)));
    }

    /// reqwest names a connection it can't tell 0: still a connection, and not this request's
    /// own dial, whose phases then don't count.
    #[test]
    fn connection_zero_is_a_connection() {
        let t0 = crate::util::now();
        let ms = Duration::from_millis;
        // a dial from 1 to 5 ms that made connection 5, then `served_by` at 6 ms
        let dial_then = |served_by: u64, reused: bool| {
            let timings = Timings::starting_at(t0);
            for event in [
                get_conn(t0),
                connect(t0 + ms(1), false, None),
                connect(t0 + ms(5), true, Some(5)),
                got_conn(t0 + ms(6), served_by, reused),
            ] {
                crate::Hooks::on_event(&timings, &event);
            }
            timings
        };
        let timings = dial_then(0, true);
        assert_eq!(timings.conn_id(), Some(0));
        assert_eq!(timings.reused(), Some(true));
        assert_eq!(timings.connect(), None);
        assert_eq!(timings.connected(), None);
        // and the dial that did serve it counts
        let timings = dial_then(5, false);
        assert_eq!(timings.connect(), Some(ms(4)));
        assert_eq!(timings.pretransfer(), Some(ms(6)));
    }
}
