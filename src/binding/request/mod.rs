//! One traced request's state, and the delivery of its events (invariants 1 and 2).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use hyper_util::client::legacy::connect::CaptureConnection;

use crate::error::{Canceled, SharedError};
use crate::event::*;
use crate::trace::ClientTrace;

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// A value that a request fills from its own events, after its hooks and with no hook call,
/// and that its response carries (the layer's `Timings`).
pub(crate) trait Recorded: Send + Sync {
    /// Notes one event of the request.
    fn record(&self, event: &Event);
    /// Puts the value in the response's extensions.
    fn insert_into(self: Arc<Self>, extensions: &mut http::Extensions);
}

/// A dial a request started, which may outlive it (an idle connection served the request
/// first): when the request ends, what the dial has open is reported ended, and the dial lets
/// the request go.
pub(crate) trait Detach: Send + Sync + std::fmt::Debug {
    /// The request ends at `at`: the Done events of what is open, and nothing more from now.
    fn detach(&self, at: Instant) -> Vec<Event>;
}

/// The state of one traced request.
pub(crate) struct RequestCtx {
    pub(super) id: RequestId,
    trace: ClientTrace,
    start: Instant,
    /// The request body has been fully handed to hyper.
    body_done: AtomicBool,
    /// The request body's bytes still to come when its length is known (`u64::MAX`: unknown):
    /// hyper stops polling a body once it has written that many. Kept here rather than in the
    /// body, so that an untraced request's body adds 16 bytes to the request, not 32.
    body_left: AtomicU64,
    /// The connection reported EOF or an error while serving this request.
    conn_broken: AtomicBool,
    /// What tells, on hyper's side, which connection the request got (invariant 6).
    pub(super) capture: Option<CaptureConnection>,
    /// The origin the request is for (`util::origin_key`; 0: unknown): a dial to another
    /// origin, made while its task runs, is not its own (a side request of a middleware).
    origin: u64,
    /// The port of that origin (0: unknown).
    port: u16,
    /// What the layer records for this request and puts in its response.
    recorded: Option<Arc<dyn Recorded>>,
    /// The request asked to close its connection (`Connection: close`, HTTP/1.0).
    req_close: bool,
    /// A `CONNECT`: a success hands its connection over as a tunnel.
    tunnel: bool,
    /// The response body: its bytes so far, and `RESP_*` flags. Only the response body writes
    /// them; they live here so that a response body (and a response future) adds one pointer.
    resp_bytes: AtomicU64,
    resp_flags: AtomicU8,
    state: Mutex<ReqState>,
}

/// The response's connection may go back to the pool once the body is read.
const RESP_KEEP_ALIVE: u8 = 1;
/// The response body reached its end.
const RESP_ENDED: u8 = 2;

/// What the layer tells a traced request's context about the request.
pub(crate) struct RequestFacts {
    /// When the request started: its `GetConn`.
    pub(crate) start: Instant,
    pub(crate) capture: Option<CaptureConnection>,
    /// The origin the request is for (`util::origin_key`; 0: unknown).
    pub(crate) origin: u64,
    /// The port of that origin (0: unknown).
    pub(crate) port: u16,
    /// What to record for the request and put in its response (the layer's `Timings`).
    pub(crate) recorded: Option<Arc<dyn Recorded>>,
    pub(crate) req_close: bool,
    /// The request is a `CONNECT`.
    pub(crate) tunnel: bool,
}

impl RequestFacts {
    /// The facts of a request starting now, with nothing else known.
    #[cfg(any(test, feature = "reqwest"))]
    pub(crate) fn starting_now() -> Self {
        Self {
            start: crate::util::now(),
            capture: None,
            origin: 0,
            port: 0,
            recorded: None,
            req_close: false,
            tunnel: false,
        }
    }
}

/// The connection that a request's own dial made (reqwest's derived `GotConn` reads it).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
pub(crate) struct OwnDial {
    pub(crate) conn_id: u64,
    pub(crate) local: Option<SocketAddr>,
}

#[derive(Default)]
struct ReqState {
    /// The connection bound to this request's current attempt.
    conn_id: Option<u64>,
    /// The last failure seen on the wire for this request: the cause of its error.
    cause: Option<SharedError>,
    /// A terminal event was emitted.
    finished: bool,
    /// The last connection this request's own dial made.
    dialled: Option<OwnDial>,
    /// The dials this request started.
    dials: Vec<Weak<dyn Detach>>,
    /// The request's bytes are followed on the wire (its `GotConn` was neither derived nor an
    /// HTTP/2 stream not known).
    on_the_wire: bool,
    /// `WroteRequest` was delivered.
    wrote_request: bool,
    /// The response ended while the request's body was still being written (the server
    /// answered early): its `WroteRequest` comes when the upload ends, after the request's
    /// last event, and then the connection's `PutIdleConn` if it goes back to the pool.
    upload_after_end: Option<Option<u64>>,
    /// Meanwhile the request keeps itself alive (hyper drops the request body once it has its
    /// last bytes, before they are all written): until the upload ends, or its connection.
    upload_keeper: Option<Arc<RequestCtx>>,
    /// The exchange's response bytes are read by this request's HTTP/1 connection, whose reads
    /// are followed: its response events are stamped at the read that brought them.
    reads_followed: bool,
    /// When the last response bytes of this request's exchange were read.
    last_read: Option<Instant>,
    /// The instant of the last event delivered.
    last_at: Option<Instant>,
    /// The connection closed once the response had begun: `ConnectionClosed` waits for the
    /// request's end, delivered before it if the response fails, dropped if it completes (a
    /// close that follows a complete response, `Connection: close`, closes no exchange).
    closed_after_response: Option<Event>,
}

impl std::fmt::Debug for RequestCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestCtx").field("id", &self.id).finish()
    }
}

impl RequestCtx {
    /// A request traced by `trace`, with nothing else known (unit tests).
    #[cfg(test)]
    pub(crate) fn new(trace: ClientTrace) -> Arc<Self> {
        Self::with_facts(trace, RequestFacts::starting_now())
    }

    pub(crate) fn with_facts(trace: ClientTrace, facts: RequestFacts) -> Arc<Self> {
        Arc::new(Self {
            id: RequestId::new(NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)),
            trace,
            start: facts.start,
            body_done: AtomicBool::new(false),
            body_left: AtomicU64::new(u64::MAX),
            conn_broken: AtomicBool::new(false),
            capture: facts.capture,
            origin: facts.origin,
            port: facts.port,
            recorded: facts.recorded,
            req_close: facts.req_close,
            tunnel: facts.tunnel,
            resp_bytes: AtomicU64::new(0),
            resp_flags: AtomicU8::new(0),
            state: Mutex::new(ReqState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ReqState> {
        // hooks run under this lock and are contained with catch_unwind, but never panic on poison
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The port of the request's origin, if `host` is its host (a lookup of `host` is then for
    /// the request's own connect, not for a proxy's).
    pub(crate) fn port_if_host(&self, host: &str) -> Option<u16> {
        let own = self.port != 0 && self.origin == crate::util::host_key(host, self.port);
        own.then_some(self.port)
    }

    /// Whether a dial to the origin `origin` (`util::origin_key`) can be this request's: the
    /// same origin, or either unknown.
    pub(crate) fn dials_to(&self, origin: u64) -> bool {
        self.origin == 0 || origin == 0 || self.origin == origin
    }

    /// The request's id, as its hooks are told it.
    pub(crate) fn id(&self) -> RequestId {
        self.id
    }

    /// Delivers one event to the request's hooks (invariant 2).
    // inlined, the event is built and dropped where its variant is known: most variants have
    // nothing to drop
    #[inline]
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn emit(&self, event: Event) {
        self.deliver(&event);
    }

    /// Delivers one event that the caller keeps.
    pub(crate) fn deliver(&self, event: &Event) {
        let mut st = self.lock();
        self.deliver_locked(&mut st, event);
    }

    /// Delivers an event with the request's lock held, never stamped before the request's
    /// previous event: one stamped earlier (seen on the connection's or a dial's task, or read
    /// before, while the request's own task delivered a later one: a race of microseconds
    /// between two threads) takes that event's instant, so the request's events stay in time
    /// order.
    #[inline]
    fn deliver_locked(&self, st: &mut ReqState, event: &Event) {
        match st.last_at {
            Some(last) if event.at() < last => {
                // rare: a copy, restamped
                let mut late = event.clone();
                late.set_at(last);
                self.deliver_in_order(st, &late);
            }
            _ => self.deliver_in_order(st, event),
        }
    }

    /// [`deliver_locked`](Self::deliver_locked) of an event in time order.
    #[inline]
    fn deliver_in_order(&self, st: &mut ReqState, event: &Event) {
        Self::note(st, event);
        self.trace.emit_for(self.id, event);
        if let Some(recorded) = &self.recorded {
            recorded.record(event);
        }
    }

    /// Delivers an event that only concerns a request still in progress: nothing once it ended.
    pub(crate) fn emit_in_progress(&self, event: Event) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        self.deliver_locked(&mut st, &event);
    }

    /// The request got its connection: `GotConn`, built by `make` with the instant it is
    /// stamped (under the lock), unless the request ended. The request waits for no dial of
    /// its own after this: what they have open is reported ended right before it (canceled:
    /// the connection, if made, goes to the pool), as when the request ends.
    pub(crate) fn got_conn(&self, make: impl FnOnce(Instant) -> GotConnInfo) {
        self.got_conn_at(|_| crate::util::now(), make);
    }

    /// [`got_conn`](Self::got_conn) derived when the response came (reqwest, whose pool is
    /// private): stamped at the request's last event so far, or its start.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn got_conn_derived(&self, make: impl FnOnce(Instant) -> GotConnInfo) {
        self.got_conn_at(|st| st.last_at.unwrap_or(self.start), make);
    }

    fn got_conn_at(
        &self,
        stamp: impl FnOnce(&ReqState) -> Instant,
        make: impl FnOnce(Instant) -> GotConnInfo,
    ) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        let at = stamp(&st);
        self.detach_dials(&mut st, at);
        let event = Event::GotConn(make(at));
        self.deliver_locked(&mut st, &event);
    }

    /// Delivers the event `make` builds with the instant of what the exchange just parsed
    /// (a `1xx`, the response head), unless the request ended: on HTTP/1, whose reads are
    /// followed, the exchange's last read (hyper parses what a read brings before it reads
    /// again), else now; never before an event delivered already (an upload that ended
    /// after an early answer was read): between the read that brought it and now.
    pub(crate) fn emit_parsed(&self, make: impl FnOnce(Instant) -> Event) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        let now = crate::util::now();
        let read = match st.last_read {
            Some(at) if st.reads_followed => at.min(now),
            _ => now,
        };
        // delivered at the request's previous event's instant if that is later
        let event = make(read);
        self.deliver_locked(&mut st, &event);
    }

    /// Runs `decide` under the request's lock, then delivers the events it returns unless the
    /// request ended: a dial's decision that something is done, and its report, in one step
    /// that the request's end (which reports ended what its dials have open) can't split.
    pub(crate) fn emit_decided(&self, decide: impl FnOnce() -> Vec<Event>) {
        let mut st = self.lock();
        let events = decide();
        if st.finished {
            return;
        }
        for event in &events {
            self.deliver_locked(&mut st, event);
        }
    }

    /// Emits a terminal event (a failure), built by `make` with the instant it is stamped (under
    /// the lock: never before an event delivered already), unless one was emitted already.
    pub(crate) fn finish(&self, make: impl FnOnce(Instant) -> Event) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        let event = make(crate::util::now());
        if let Some(closed) = st.closed_after_response.take() {
            self.deliver_locked(&mut st, &closed);
        }
        self.detach_dials(&mut st, event.at());
        st.finished = true;
        self.deliver_locked(&mut st, &event);
    }

    /// The request's connection closed (`event`, its `ConnectionClosed`) while the request was
    /// in progress: delivered now if no response byte was read yet, else when the request ends
    /// and only if its response fails (see `closed_after_response`).
    pub(crate) fn connection_closed(&self, event: Event) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        match st.last_read {
            Some(_) => st.closed_after_response = Some(event),
            None => self.deliver_locked(&mut st, &event),
        }
    }

    /// A dial this request started.
    pub(crate) fn add_dial(&self, dial: Weak<dyn Detach>) {
        let mut st = self.lock();
        st.dials.retain(|d| d.strong_count() > 0);
        st.dials.push(dial);
    }

    /// The request ends at `at`: the dials it started that go on report ended what they have
    /// open, before its terminal event, and let it go.
    fn detach_dials(&self, st: &mut ReqState, at: Instant) {
        for dial in std::mem::take(&mut st.dials) {
            let Some(dial) = dial.upgrade() else { continue };
            for event in dial.detach(at) {
                self.deliver_locked(st, &event);
            }
        }
    }

    /// What the request keeps of an event: the connection it got, the one it dialled, the cause
    /// of its failure.
    #[inline]
    fn note(st: &mut ReqState, event: &Event) {
        st.last_at = Some(event.at());
        let error = match event {
            Event::GotConn(info) => {
                // a new exchange: it read and wrote nothing yet
                st.conn_id = Some(info.conn_id);
                st.last_read = None;
                st.on_the_wire = info.derived.is_none()
                    && info.http2.as_ref().is_none_or(|h| h.stream_id.is_some());
                st.reads_followed = info.derived.is_none() && info.http2.is_none();
                st.wrote_request = false;
                return;
            }
            Event::ConnectDone(info) => match (&info.error, info.conn_id) {
                (None, Some(conn_id)) => {
                    st.dialled = Some(OwnDial {
                        conn_id,
                        local: info.local_addr,
                    });
                    return;
                }
                (error, _) => error,
            },
            Event::WroteRequest(WroteRequestInfo { error, .. }) => {
                st.wrote_request = true;
                error
            }
            Event::DnsDone(DnsDoneInfo { error, .. })
            | Event::TlsHandshakeDone(TlsHandshakeDoneInfo { error, .. })
            | Event::ConnectionClosed(ConnectionClosedInfo { error, .. }) => error,
            _ => return,
        };
        if let Some(e) = error {
            // the last failure is the cause; a cancellation (an attempt that lost the race, a
            // dropped lookup) only when nothing else failed
            let canceled = e.get_ref().downcast_ref::<Canceled>().is_some();
            if !canceled || st.cause.is_none() {
                st.cause = Some(e.clone());
            }
        }
    }

    /// The failure seen on the wire for this request, if any: the cause of its error.
    pub(crate) fn cause(&self) -> Option<SharedError> {
        self.lock().cause.clone()
    }

    /// A read on the request's connection failed with `error`: the cause of its error.
    pub(super) fn set_cause(&self, error: SharedError) {
        self.lock().cause = Some(error);
    }

    /// The connection this request's own dial made, if any.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn dialled(&self) -> Option<OwnDial> {
        self.lock().dialled
    }

    /// The `tracing` span a hook asks the request's future to run in.
    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> Option<tracing::Span> {
        self.trace.request_span(self.id)
    }

    /// When the request started: its `GetConn`.
    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    pub(crate) fn set_body_done(&self) {
        self.body_done.store(true, Ordering::Release);
    }

    /// The request body's length, when it is known before it is sent.
    pub(crate) fn set_body_length(&self, len: Option<u64>) {
        if let Some(len) = len.filter(|&n| n != u64::MAX) {
            self.body_left.store(len, Ordering::Relaxed);
        }
    }

    /// `n` bytes of the request body were handed to hyper: done when its known length is reached.
    /// Only the connection's task polls the body: no other writer.
    pub(crate) fn body_data(&self, n: u64) {
        let left = self.body_left.load(Ordering::Relaxed);
        if left == u64::MAX {
            return;
        }
        let left = left.saturating_sub(n);
        self.body_left.store(left, Ordering::Relaxed);
        if left == 0 {
            self.set_body_done();
        }
    }

    /// When the last response bytes of this request's exchange were read.
    #[cfg(test)]
    pub(crate) fn last_read(&self) -> Option<Instant> {
        self.lock().last_read
    }

    /// Response bytes were read at `at`: `GotFirstResponseByte` if they are the first.
    pub(super) fn read(&self, at: Instant, first: bool) {
        let mut st = self.lock();
        st.last_read = Some(at);
        if first && !st.finished {
            let event = Event::GotFirstResponseByte(GotFirstResponseByteInfo { at });
            self.deliver_locked(&mut st, &event);
        }
    }

    /// A flush completed: `WroteHeaders` unless `headers_reported`, then `WroteRequest` if the
    /// body is done (returned), one after the other under one lock.
    pub(super) fn flushed(&self, at: Instant, headers_reported: bool) -> bool {
        let done = self.body_done.load(Ordering::Acquire);
        self.wrote(at, !headers_reported, done);
        done
    }

    /// `WroteHeaders` (if `headers`) then `WroteRequest` (if `request`), one after the other
    /// under one lock; nothing once the request ended.
    pub(super) fn wrote(&self, at: Instant, headers: bool, request: bool) {
        let mut st = self.lock();
        if st.finished {
            if request {
                self.upload_ended(&mut st, at, None);
            }
            return;
        }
        if headers {
            let event = Event::WroteHeaders(WroteHeadersInfo { at });
            self.deliver_locked(&mut st, &event);
        }
        if request {
            let event = Event::WroteRequest(WroteRequestInfo { at, error: None });
            self.deliver_locked(&mut st, &event);
        }
    }

    /// The upload of a request whose response ended first ended at `at` (`error`: writing it
    /// failed): `WroteRequest`, then `PutIdleConn` if the connection goes back to the pool; the
    /// one exception to "nothing after the request's last event".
    fn upload_ended(&self, st: &mut ReqState, at: Instant, error: Option<SharedError>) {
        let Some(put) = st.upload_after_end.take() else {
            return;
        };
        // the caller holds the request too: this is not its last reference
        drop(st.upload_keeper.take());
        let failed = error.is_some();
        let event = Event::WroteRequest(WroteRequestInfo { at, error });
        self.deliver_locked(st, &event);
        if let (Some(conn_id), false) = (put, failed) {
            let event = Event::PutIdleConn(PutIdleConnInfo { at, conn_id });
            self.deliver_locked(st, &event);
        }
    }

    /// Writing the request failed at `at`: `WroteRequest` with the error (also after the
    /// request's last event, when the response ended while the upload went on).
    pub(super) fn write_failed(&self, at: Instant, error: SharedError) {
        self.mark_conn_broken();
        let mut st = self.lock();
        if st.finished {
            self.upload_ended(&mut st, at, Some(error));
            return;
        }
        let event = Event::WroteRequest(WroteRequestInfo {
            at,
            error: Some(error),
        });
        self.deliver_locked(&mut st, &event);
    }

    /// Puts what the layer recorded for this request (its `Timings`) in the response.
    pub(crate) fn insert_recorded(&self, extensions: &mut http::Extensions) {
        if let Some(recorded) = &self.recorded {
            recorded.clone().insert_into(extensions);
        }
    }

    /// The request asked to close its connection.
    pub(crate) fn req_close(&self) -> bool {
        self.req_close
    }

    /// The request is a `CONNECT`: a success hands its connection over as a tunnel.
    pub(crate) fn tunnel(&self) -> bool {
        self.tunnel
    }

    /// The response's body starts: whether its connection may be pooled after it, whether it is
    /// already at its end.
    pub(crate) fn response_body(&self, keep_alive: bool, ended: bool) {
        let flags = (keep_alive as u8 * RESP_KEEP_ALIVE) | (ended as u8 * RESP_ENDED);
        self.resp_flags.store(flags, Ordering::Relaxed);
    }

    /// `n` bytes of the response body were read (by the response body only: one writer).
    pub(crate) fn response_bytes(&self, n: u64) {
        let bytes = self.resp_bytes.load(Ordering::Relaxed);
        self.resp_bytes
            .store(bytes.saturating_add(n), Ordering::Relaxed);
    }

    /// The response body reached its end.
    pub(crate) fn response_ended(&self) {
        let flags = self.resp_flags.load(Ordering::Relaxed);
        self.resp_flags.store(flags | RESP_ENDED, Ordering::Relaxed);
    }

    /// The response body is done with: `error`, or canceled if it is dropped before its end.
    pub(crate) fn response_finished(self: &Arc<Self>, error: Option<SharedError>) {
        let flags = self.resp_flags.load(Ordering::Relaxed);
        let error = match error {
            None if flags & RESP_ENDED == 0 => {
                Some(SharedError::new(Canceled::new("response body")))
            }
            e => e,
        };
        let bytes = self.resp_bytes.load(Ordering::Relaxed);
        self.response_body_done(bytes, error, flags & RESP_KEEP_ALIVE != 0);
    }

    /// The response body ended (`error` is `None`), failed or was dropped: `PutIdleConn` if the
    /// connection goes back to the pool, then `ResponseBodyDone` (unless the request ended
    /// already), under one lock.
    fn response_body_done(
        self: &Arc<Self>,
        bytes: u64,
        error: Option<SharedError>,
        keep_alive: bool,
    ) {
        let ok = error.is_none();
        let mut st = self.lock();
        if st.finished {
            return;
        }
        let now = crate::util::now();
        let closed = st.closed_after_response.take();
        if let (Some(closed), false) = (closed, ok) {
            self.deliver_locked(&mut st, &closed);
        }
        // PutIdleConn first: it happened when the response's last byte was read (or the
        // exchange's last event, if later: the upload's end), before the body reached the
        // caller; then what the request's dials have open ends now, and ResponseBodyDone
        // stays the request's last event
        let put = st
            .conn_id
            .filter(|_| ok && keep_alive && !self.conn_broken());
        if st.on_the_wire && !st.wrote_request {
            // the server answered before reading the whole body, which is still being written:
            // the connection isn't idle before the upload ends
            st.upload_after_end = Some(put);
            st.upload_keeper = Some(self.clone());
        } else if let Some(conn_id) = put {
            let at = st.last_read.unwrap_or(now).min(now);
            let event = Event::PutIdleConn(PutIdleConnInfo { at, conn_id });
            self.deliver_locked(&mut st, &event);
        }
        self.detach_dials(&mut st, now);
        st.finished = true;
        let event = Event::ResponseBodyDone(ResponseBodyDoneInfo {
            at: now,
            bytes,
            error,
        });
        self.deliver_locked(&mut st, &event);
    }

    /// The request's connection is gone: an upload still going on after the response won't end
    /// (its `WroteRequest` never comes), and the request lets itself go.
    pub(super) fn connection_gone(&self) {
        let keeper = {
            let mut st = self.lock();
            st.upload_after_end = None;
            st.upload_keeper.take()
        };
        drop(keeper);
    }

    /// The connection reported EOF or an error while serving this request.
    pub(crate) fn conn_broken(&self) -> bool {
        self.conn_broken.load(Ordering::Acquire)
    }

    pub(super) fn mark_conn_broken(&self) {
        self.conn_broken.store(true, Ordering::Release);
    }
}

/// hyper's 1xx callback for a traced request.
pub(crate) fn informational(
    ctx: &Weak<RequestCtx>,
    status: http::StatusCode,
    headers: &http::HeaderMap,
) {
    let Some(ctx) = ctx.upgrade() else { return };
    // hyper parses it right after the read that brought it, in the connection's task
    if status == http::StatusCode::CONTINUE {
        ctx.emit_parsed(|at| Event::Got100Continue(Got100ContinueInfo { at }));
    }
    ctx.emit_parsed(|at| {
        Event::Got1xxResponse(Got1xxResponseInfo {
            at,
            status,
            headers: headers.clone(),
        })
    });
}

#[cfg(test)]
mod tests;
