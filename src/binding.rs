//! The binding of a request to the connection that serves it: all of it is in this file.
//!
//! # Invariants
//!
//! 1. **One context per traced request.** A request with a trace has one [`RequestCtx`], owned
//!    by the request side only: the response future, the request body and the response body hold
//!    it strongly. The connection side (the IO wrapper, hyper's 1xx callback) holds only a
//!    [`Weak`], so a pooled idle connection never keeps a trace alive. A request without a trace
//!    has no context and allocates nothing.
//! 2. **Events of one request are delivered one at a time, in the order they are emitted.**
//!    [`RequestCtx::emit`] holds the request's lock while its hooks run, and then while the
//!    layer's `Timings` for the request (if it records them) note the event. Each event carries
//!    the [`Instant`] it happened at, which may precede its delivery.
//! 3. **Dial events go to the request whose task called the connector.** hyper-util calls the
//!    connector lazily, inside the task that polls the response future. The response future sets
//!    [`CURRENT_REQUEST`] around every poll; the connector reads it in `call()` and keeps it in a
//!    [`DialCtx`] for the whole connect, and sets [`CURRENT_DIAL`] around every poll of the
//!    connect future, where the layers under it read it (resolver, per-address dialer, transport
//!    under TLS): one `DialCtx` per connection, shared by the whole connector stack, which also
//!    fixes the connection's id. So a connect spawned to finish in the background (an idle
//!    connection won the race) still reports to the request that started it.
//! 4. **An exchange is bound on the connection's task, before its first byte is written.** hyper's
//!    HTTP/1 dispatcher takes the next request off its queue and calls `is_end_stream()` on its
//!    body (our [`RequestBody`](crate::RequestBody)) right before it writes the head, in the same
//!    poll of the connection task. The body deposits a [`Handoff`] in a thread-local; the IO
//!    wrapper takes it at its next write on that thread, so exchange *k* of a connection is bound
//!    to exactly the request whose bytes it writes, whatever the scheduling: no guessing by "who
//!    is current now". A request body hands off once (hyper takes a request off its queue once),
//!    and never from a traced request's own task (a layer between httptrace and the client that
//!    asks `is_end_stream()` there must not use up the handoff).
//!    A handoff is accepted only at an exchange boundary (the first exchange, or after the
//!    previous one read response bytes), and any read discards a pending one: hyper reads
//!    before it takes the next request, never between taking it and writing it, so what a read
//!    finds is stale (a request that was never written) and must bind nothing. On a
//!    connection whose first bytes are the HTTP/2 preface, no exchange is ever bound: it
//!    carries many requests at once, and no write belongs to one exchange (invariant 6).
//! 5. **Every Start has one Done.** DNS, connect (or per-address attempt) and TLS starts are
//!    closed by their futures' completion or, if dropped first, by a guard that reports
//!    [`Canceled`]; the dial's state makes each Done fire once whichever layer sees the end
//!    first. A request ends with exactly one of `ResponseBodyDone`, `RequestFailed` or
//!    `RequestCanceled`.
//! 6. **On HTTP/2, a request is bound to its connection by hyper-util, and to its stream by
//!    order.** A traced request carries hyper-util's `CaptureConnection`, which the client sets
//!    on the request's task right after checkout, before it queues the request to the
//!    connection. hyper's HTTP/2 dispatch task then calls `is_end_stream()` on the body and,
//!    in the same poll, opens the stream: the body reads the capture there (it is set by then),
//!    finds the connection's [`H2Conn`] by its (local, remote) addresses, and registers the
//!    stream: `GotConn` at that instant. hyper opens streams one at a time, on that one task,
//!    with ids 1, 3, 5...; so when every stream of a connection is registered (every request of
//!    the layer is traced: `all_traced`), the k-th registration is stream 2k-1, exactly, and the
//!    frames the IO wrapper reads off the wire (9-byte headers, above TLS) are reported to that
//!    request: `WroteHeaders`, `WroteRequest`, `GotFirstResponseByte`, `StreamReset`. Once a
//!    request of a layer that doesn't trace all is registered, the connection may carry streams
//!    nobody registered (untraced requests cost nothing, so they can't register), and no stream
//!    is mapped any more: those requests get `GotConn` without a stream id and no wire events.
//!    So does a request that carries the caller's own capture (hyper-util keeps one): its layer
//!    stops claiming `all_traced`, which a registration reads when its stream opens (a request
//!    made earlier may open later); and a traced request of a layer with
//!    `http2_streams(false)` ends it process-wide (it may dial the first HTTP/2 connection and
//!    open its first stream before a counted request registers). A stream that nobody
//!    registered (a request sent on the client around the layer) ends the mapping when it
//!    shows: at its `HEADERS`, or at the next registration if the wire is already past the
//!    predicted id. One case can't be seen: such a stream opened by hyper right before a traced
//!    request's, and not yet written when that request registers; hence the contract that
//!    every request of the client goes through the layer. Registered ids that never reach the
//!    wire (hyper failed to send them) are dropped when a higher one opens, and those above a
//!    `GOAWAY`'s last stream when it is read. The connection's own life (`Http2Ready`,
//!    `GoAway`, `ConnectionClosed`) needs no mapping.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::{CaptureConnection, HttpInfo};

use crate::connect::frames::{self, FrameReader, Seen};
use crate::consumer::timings::Timings;
use crate::error::{Canceled, SharedError};
use crate::event::*;
use crate::trace::ClientTrace;

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_conn_id() -> u64 {
    NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)
}

/// The state of one traced request.
pub(crate) struct RequestCtx {
    id: u64,
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
    capture: Option<CaptureConnection>,
    /// Every request of the layer that made this one is traced (invariant 6).
    all_traced: bool,
    /// Set when a request of the same layer went without hyper-util's capture: read when the
    /// stream opens, not when the request was made (it may open after that one).
    uncounted: Option<Arc<AtomicBool>>,
    /// hyper refuses this request before opening an HTTP/2 stream for it (a `CONNECT` with a
    /// body).
    opens_no_stream: bool,
    /// The layer's `Timings` for this request, put in its response.
    timings: Option<Timings>,
    /// The request asked to close its connection (`Connection: close`, HTTP/1.0).
    req_close: bool,
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
#[derive(Default)]
pub(crate) struct RequestFacts {
    pub(crate) capture: Option<CaptureConnection>,
    pub(crate) all_traced: bool,
    pub(crate) uncounted: Option<Arc<AtomicBool>>,
    pub(crate) opens_no_stream: bool,
    /// Record `Timings` for the request (from its start).
    pub(crate) record_timings: bool,
    pub(crate) req_close: bool,
}

#[derive(Default)]
struct ReqState {
    /// The connection bound to this request's current attempt.
    conn_id: Option<u64>,
    /// The last failure seen on the wire for this request: the cause of its error.
    cause: Option<SharedError>,
    /// A terminal event was emitted.
    finished: bool,
    /// The last connection this request's own dial made: (id, local address, when).
    dialled: Option<(u64, Option<SocketAddr>, Instant)>,
    /// When the last response bytes of this request's exchange were read.
    last_read: Option<Instant>,
}

impl std::fmt::Debug for RequestCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestCtx").field("id", &self.id).finish()
    }
}

impl RequestCtx {
    #[cfg(test)]
    pub(crate) fn new(trace: ClientTrace) -> Arc<Self> {
        Self::with_facts(trace, RequestFacts::default())
    }

    pub(crate) fn with_facts(trace: ClientTrace, facts: RequestFacts) -> Arc<Self> {
        let start = Instant::now();
        Arc::new(Self {
            id: NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed),
            trace,
            start,
            body_done: AtomicBool::new(false),
            body_left: AtomicU64::new(u64::MAX),
            conn_broken: AtomicBool::new(false),
            capture: facts.capture,
            all_traced: facts.all_traced,
            uncounted: facts.uncounted,
            opens_no_stream: facts.opens_no_stream,
            timings: facts.record_timings.then(|| Timings::starting_at(start)),
            req_close: facts.req_close,
            resp_bytes: AtomicU64::new(0),
            resp_flags: AtomicU8::new(0),
            state: Mutex::new(ReqState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ReqState> {
        // hooks run under this lock and are contained with catch_unwind, but never panic on poison
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers one event to the request's hooks (invariant 2).
    // inlined, the event is built and dropped where its variant is known: most variants have
    // nothing to drop
    #[inline]
    pub(crate) fn emit(&self, event: Event) {
        self.deliver(&event);
    }

    /// Delivers one event that the caller keeps.
    pub(crate) fn deliver(&self, event: &Event) {
        let mut st = self.lock();
        self.deliver_locked(&mut st, event);
    }

    /// Delivers an event with the request's lock held.
    #[inline]
    fn deliver_locked(&self, st: &mut ReqState, event: &Event) {
        Self::note(st, event);
        self.trace.emit(event);
        if let Some(timings) = &self.timings {
            timings.record(event);
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

    /// Emits a terminal event, unless one was emitted already.
    #[inline]
    pub(crate) fn finish(&self, event: Event) {
        self.deliver_final(&event);
    }

    fn deliver_final(&self, event: &Event) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        st.finished = true;
        self.deliver_locked(&mut st, event);
    }

    /// What the request keeps of an event: the connection it got, the one it dialled, the cause
    /// of its failure.
    #[inline]
    fn note(st: &mut ReqState, event: &Event) {
        let error = match event {
            Event::GotConn(info) => {
                // a new exchange: it read nothing yet
                st.conn_id = Some(info.conn_id);
                st.last_read = None;
                return;
            }
            Event::ConnectDone(info) => match (&info.error, info.conn_id) {
                (None, Some(id)) => {
                    st.dialled = Some((id, info.local_addr, info.at));
                    return;
                }
                (error, _) => error,
            },
            Event::DnsDone(DnsDoneInfo { error, .. })
            | Event::TlsHandshakeDone(TlsHandshakeDoneInfo { error, .. })
            | Event::WroteRequest(WroteRequestInfo { error, .. })
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

    pub(crate) fn cause(&self) -> Option<SharedError> {
        self.lock().cause.clone()
    }

    /// The connection this request's own dial made, if any: (id, local address, when).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn dialled(&self) -> Option<(u64, Option<SocketAddr>, Instant)> {
        self.lock().dialled
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
    fn read(&self, at: Instant, first: bool) {
        let mut st = self.lock();
        st.last_read = Some(at);
        if first && !st.finished {
            let event = Event::GotFirstResponseByte(GotFirstResponseByteInfo { at });
            self.deliver_locked(&mut st, &event);
        }
    }

    /// A flush completed: `WroteHeaders` unless `headers_reported`, then `WroteRequest` if the
    /// body is done (returned), one after the other under one lock.
    fn flushed(&self, at: Instant, headers_reported: bool) -> bool {
        let done = self.body_done.load(Ordering::Acquire);
        self.wrote(at, !headers_reported, done);
        done
    }

    /// `WroteHeaders` (if `headers`) then `WroteRequest` (if `request`), one after the other
    /// under one lock; nothing once the request ended.
    fn wrote(&self, at: Instant, headers: bool, request: bool) {
        let mut st = self.lock();
        if st.finished {
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

    /// The layer's `Timings` for this request, if it records them.
    pub(crate) fn timings(&self) -> Option<&Timings> {
        self.timings.as_ref()
    }

    /// The request asked to close its connection.
    pub(crate) fn req_close(&self) -> bool {
        self.req_close
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
    pub(crate) fn response_finished(&self, error: Option<SharedError>) {
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
    fn response_body_done(&self, bytes: u64, error: Option<SharedError>, keep_alive: bool) {
        let now = Instant::now();
        let ok = error.is_none();
        let mut st = self.lock();
        if st.finished {
            return;
        }
        // PutIdleConn first: it happened when the response's last byte was read, before the
        // body reached the caller, and ResponseBodyDone stays the request's last event
        if ok && keep_alive && !self.conn_broken() {
            if let Some(conn_id) = st.conn_id {
                let at = st.last_read.unwrap_or(now).min(now);
                let event = Event::PutIdleConn(PutIdleConnInfo { at, conn_id });
                self.deliver_locked(&mut st, &event);
            }
        }
        st.finished = true;
        let event = Event::ResponseBodyDone(ResponseBodyDoneInfo {
            at: now,
            bytes,
            error,
        });
        self.deliver_locked(&mut st, &event);
    }

    pub(crate) fn conn_broken(&self) -> bool {
        self.conn_broken.load(Ordering::Acquire)
    }
}

// ---------------------------------------------------------------------------------------------
// Invariant 3: the request whose task is polling, and the dial in progress.

thread_local! {
    static CURRENT_REQUEST: Cell<Option<Arc<RequestCtx>>> = const { Cell::new(None) };
    static CURRENT_DIAL: Cell<Option<Arc<DialCtx>>> = const { Cell::new(None) };
    static HANDOFF: Cell<Option<Handoff>> = const { Cell::new(None) };
    /// `HANDOFF` holds one: a flag with no destructor, the cheapest thread-local to read, so the
    /// reads and writes with nothing handed off (nearly all) don't touch `HANDOFF`.
    static HANDOFF_PENDING: Cell<bool> = const { Cell::new(false) };
}

type Slot<T> = std::thread::LocalKey<Cell<Option<T>>>;

#[inline]
fn scoped<T: Clone, R>(key: &'static Slot<T>, value: &T, f: impl FnOnce() -> R) -> R {
    struct Restore<T: 'static> {
        key: &'static Slot<T>,
        prev: Option<T>,
    }
    impl<T: 'static> Drop for Restore<T> {
        #[inline]
        fn drop(&mut self) {
            let prev = self.prev.take();
            let _ = self.key.try_with(|c| c.set(prev));
        }
    }
    let prev = key.with(|c| c.replace(Some(value.clone())));
    let _restore = Restore { key, prev };
    f()
}

/// A clone of what `key` holds.
fn current<T: Clone>(key: &'static Slot<T>) -> Option<T> {
    key.with(|c| {
        let value = c.take();
        let copy = value.clone();
        c.set(value);
        copy
    })
}

/// Runs `f` with the request in `slot` as the one whose task is polling. The request is moved
/// into the thread-local and back (no reference count touched on every poll); `slot` is empty
/// meanwhile, and still holds the request after `f`, even if `f` panics.
pub(crate) fn with_request<R>(slot: &mut Option<Arc<RequestCtx>>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        home: &'a mut Option<Arc<RequestCtx>>,
        prev: Option<Arc<RequestCtx>>,
    }
    impl Drop for Restore<'_> {
        #[inline]
        fn drop(&mut self) {
            let prev = self.prev.take();
            if let Ok(ours) = CURRENT_REQUEST.try_with(|c| c.replace(prev)) {
                *self.home = ours;
            }
        }
    }
    let Ok(prev) = CURRENT_REQUEST.try_with(|c| c.replace(slot.take())) else {
        // the thread is going away: nothing to tell
        return f();
    };
    let _restore = Restore { home: slot, prev };
    f()
}

pub(crate) fn current_request() -> Option<Arc<RequestCtx>> {
    current(&CURRENT_REQUEST)
}

/// A traced request's task is polling (or calling) its client right now, on this thread: what
/// runs here is the request side, not a connection's task.
pub(crate) fn in_request_task() -> bool {
    CURRENT_REQUEST
        .try_with(|c| {
            let value = c.take();
            let some = value.is_some();
            c.set(value);
            some
        })
        .unwrap_or(false)
}

/// Runs `f` with `dial` as the connect in progress.
pub(crate) fn with_dial<R>(dial: &Arc<DialCtx>, f: impl FnOnce() -> R) -> R {
    scoped(&CURRENT_DIAL, dial, f)
}

pub(crate) fn current_dial() -> Option<Arc<DialCtx>> {
    current(&CURRENT_DIAL)
}

/// One traced connector call: the dial of one connection, shared by the layers of a connector
/// stack (the outer [`TracingConnector`](crate::TracingConnector), a transport under TLS, a
/// per-address dialer, the resolver).
#[derive(Debug)]
pub(crate) struct DialCtx {
    pub(crate) req: Arc<RequestCtx>,
    /// The id the connection will have, if this dial makes one.
    pub(crate) conn_id: u64,
    call_at: Instant,
    /// The port dialled, when the connector's request tells it.
    port: Option<u16>,
    state: Mutex<DialState>,
}

#[derive(Debug, Default)]
struct DialState {
    connect_started: bool,
    connect_done: bool,
    dns_failed: bool,
    /// A per-address dialer reports each attempt: no connect-wide Start/Done.
    attempts: bool,
    /// The address the connect-wide ConnectStart named.
    addr: Option<SocketAddr>,
    /// The (remote, local) addresses of the connection made, once a layer read them.
    conn_addrs: Option<(Option<SocketAddr>, Option<SocketAddr>)>,
    server_name: Option<String>,
    tls_started: bool,
    tls_done: bool,
}

/// The result of a connect, as its Done reports it.
pub(crate) type Dialled = Result<(Option<SocketAddr>, Option<SocketAddr>), SharedError>;

impl DialCtx {
    pub(crate) fn new(req: Arc<RequestCtx>, port: Option<u16>) -> Arc<Self> {
        Arc::new(Self {
            req,
            conn_id: next_conn_id(),
            call_at: Instant::now(),
            port,
            state: Mutex::new(DialState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, DialState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn request_id(&self) -> u64 {
        self.req.id
    }

    /// A per-address dialer takes over the connect events (one Start/Done per attempt).
    pub(crate) fn use_attempts(&self) {
        self.lock().attempts = true;
    }

    /// A per-address dialer reports this dial (and its lookup).
    pub(crate) fn uses_attempts(&self) -> bool {
        self.lock().attempts
    }

    /// ConnectStart, right away: the address is known without a lookup.
    pub(crate) fn connect_start(&self, addr: Option<SocketAddr>) {
        let mut st = self.lock();
        if !st.connect_started && !st.attempts {
            st.connect_started = true;
            st.addr = addr;
            drop(st);
            self.req.emit(Event::ConnectStart(ConnectStartInfo {
                at: Instant::now(),
                network: "tcp",
                addr,
            }));
        }
    }

    pub(crate) fn dns_start(&self, host: &str) {
        self.req.emit(Event::DnsStart(DnsStartInfo {
            at: Instant::now(),
            host: host.to_owned(),
        }));
    }

    /// DNSDone; on success the connect starts right after it.
    pub(crate) fn dns_done(&self, result: Result<Vec<SocketAddr>, SharedError>) {
        let at = Instant::now();
        let mut st = self.lock();
        match result {
            Ok(addrs) => {
                let start = !st.connect_started && !st.attempts;
                st.connect_started |= start;
                let addr = match (addrs.as_slice(), self.port) {
                    ([only], Some(port)) => Some(SocketAddr::new(only.ip(), port)),
                    _ => None,
                };
                if start {
                    st.addr = addr;
                }
                drop(st);
                let addrs = addrs.iter().map(SocketAddr::ip).collect();
                self.req.emit(Event::DnsDone(DnsDoneInfo {
                    at,
                    addrs,
                    error: None,
                }));
                if start {
                    self.req.emit(Event::ConnectStart(ConnectStartInfo {
                        at,
                        network: "tcp",
                        addr,
                    }));
                }
            }
            Err(error) => {
                st.dns_failed = true;
                drop(st);
                self.req.emit(Event::DnsDone(DnsDoneInfo {
                    at,
                    addrs: Vec::new(),
                    error: Some(error),
                }));
            }
        }
    }

    /// ConnectStart of one address attempt.
    pub(crate) fn attempt_start(&self, addr: SocketAddr) {
        self.req.emit(Event::ConnectStart(ConnectStartInfo {
            at: Instant::now(),
            network: "tcp",
            addr: Some(addr),
        }));
    }

    /// The (remote, local) addresses of the connection made, if a layer already read them (each
    /// read costs two system calls).
    pub(crate) fn conn_addrs(&self) -> Option<(Option<SocketAddr>, Option<SocketAddr>)> {
        self.lock().conn_addrs
    }

    fn note_addrs(&self, result: &Dialled) {
        if let Ok(addrs) = result {
            self.lock().conn_addrs = Some(*addrs);
        }
    }

    /// ConnectDone of one address attempt; a success names the connection.
    pub(crate) fn attempt_done(&self, addr: SocketAddr, result: Dialled) {
        self.note_addrs(&result);
        self.req
            .emit(Event::ConnectDone(self.done_info(Some(addr), result)));
    }

    fn done_info(&self, dialled: Option<SocketAddr>, result: Dialled) -> ConnectDoneInfo {
        let at = Instant::now();
        match result {
            Ok((remote, local)) => ConnectDoneInfo {
                at,
                network: "tcp",
                addr: remote.or(dialled),
                local_addr: local,
                conn_id: Some(self.conn_id),
                error: None,
            },
            Err(error) => ConnectDoneInfo {
                at,
                network: "tcp",
                addr: dialled,
                local_addr: None,
                conn_id: None,
                error: Some(error),
            },
        }
    }

    /// The transport (TCP) connect finished: ConnectDone, preceded by ConnectStart if nothing
    /// started it. Nothing after a failed lookup (there was no connect, as in Go), nor when a
    /// per-address dialer reported the attempts. Only the first call counts.
    pub(crate) fn transport_done(&self, result: Dialled) {
        self.note_addrs(&result);
        let mut st = self.lock();
        if st.connect_done {
            return;
        }
        st.connect_done = true;
        if st.attempts || (st.dns_failed && result.is_err()) {
            return;
        }
        let start = !st.connect_started;
        st.connect_started = true;
        let dialled = st.addr;
        drop(st);
        if start {
            self.req.emit(Event::ConnectStart(ConnectStartInfo {
                at: self.call_at,
                network: "tcp",
                addr: None,
            }));
        }
        self.req
            .emit(Event::ConnectDone(self.done_info(dialled, result)));
    }

    /// The TLS handshake starts (a transport under a TLS connector connected).
    pub(crate) fn tls_start(&self, server_name: Option<String>) {
        let mut st = self.lock();
        if st.tls_started {
            return;
        }
        st.tls_started = true;
        st.server_name = server_name.clone();
        drop(st);
        self.req
            .emit(Event::TlsHandshakeStart(TlsHandshakeStartInfo {
                at: Instant::now(),
                server_name,
            }));
    }

    /// The whole connector finished: closes what is still open (the connect, if no transport
    /// reported it; the TLS handshake, if one started).
    pub(crate) fn finish(&self, result: Result<Option<TlsState>, SharedError>, addrs: Dialled) {
        let st = self.lock();
        let connect_done = st.connect_done;
        let tls_open = st.tls_started && !st.tls_done;
        let server_name = st.server_name.clone();
        drop(st);
        if !connect_done {
            self.transport_done(addrs);
            return;
        }
        if tls_open {
            self.lock().tls_done = true;
            let (state, error) = match result {
                Ok(state) => (
                    state.map(|mut s| {
                        s.server_name = s.server_name.or(server_name);
                        s
                    }),
                    None,
                ),
                Err(e) => (None, Some(e)),
            };
            self.req.emit(Event::TlsHandshakeDone(TlsHandshakeDoneInfo {
                at: Instant::now(),
                state,
                error,
            }));
        }
    }

    /// The connector's future was dropped before it finished.
    pub(crate) fn canceled(&self) {
        let st = self.lock();
        let open = (st.connect_started && !st.connect_done) || (st.tls_started && !st.tls_done);
        drop(st);
        if open {
            let canceled = SharedError::new(Canceled::new("connect"));
            self.finish(Err(canceled.clone()), Err(canceled));
        }
    }

    /// A transport's future was dropped before it finished.
    pub(crate) fn transport_canceled(&self) {
        let st = self.lock();
        let open = st.connect_started && !st.connect_done;
        drop(st);
        if open {
            self.transport_done(Err(SharedError::new(Canceled::new("connect"))));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invariant 4: the handoff of a request to its connection's next exchange.

/// What a request body leaves for the connection that is about to write it.
pub(crate) enum Handoff {
    Untraced,
    Traced(Weak<RequestCtx>),
}

/// Called by the request body when hyper's dispatcher first looks at it.
pub(crate) fn hand_off(ctx: Option<&Arc<RequestCtx>>) {
    if ctx.is_some_and(|ctx| ctx.open_on_http2()) {
        // an HTTP/2 connection's dispatch task: the stream is registered (invariant 6)
        return;
    }
    let h = match ctx {
        Some(ctx) => Handoff::Traced(Arc::downgrade(ctx)),
        None => Handoff::Untraced,
    };
    HANDOFF.with(|c| c.set(Some(h)));
    HANDOFF_PENDING.with(|p| p.set(true));
}

#[inline]
fn take_handoff() -> Option<Handoff> {
    if !HANDOFF_PENDING.with(|p| p.replace(false)) {
        return None;
    }
    HANDOFF.try_with(|c| c.take()).ok().flatten()
}

/// What one connection knows of itself and of the exchange in progress. Owned by the IO wrapper
/// (the connection task): no lock.
#[derive(Debug)]
pub(crate) struct ConnSide {
    conn_id: u64,
    created: Instant,
    /// The request that dialled it, if traced.
    dialled_for: Option<u64>,
    addrs: Option<(Option<SocketAddr>, Option<SocketAddr>)>,
    exchanges: u64,
    /// When it last read response bytes (or was created): the start of its idle time.
    idle_since: Instant,
    /// The exchange in progress read response bytes.
    read_in_exchange: bool,
    exchange: Option<Exchange>,
    error: Option<SharedError>,
    /// The connector's connection observer: the client's own, not a request's.
    observer: Option<ClientTrace>,
    /// The first bytes written were seen: `h2` tells the protocol.
    proto_known: bool,
    /// The request that dialled it, if traced: it hears of the connection's HTTP/2 life.
    dialler: Option<Weak<RequestCtx>>,
    /// The connection speaks HTTP/2 (its first bytes were the HTTP/2 preface).
    h2: Option<Box<H2Side>>,
}

/// The start of the HTTP/2 connection preface (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

#[derive(Debug)]
struct Exchange {
    req: Weak<RequestCtx>,
    wrote_headers: bool,
    wrote_request: bool,
    first_byte: bool,
}

impl ConnSide {
    pub(crate) fn new(conn_id: u64, dialled_for: Option<u64>) -> Self {
        let now = Instant::now();
        Self {
            conn_id,
            created: now,
            dialled_for,
            addrs: None,
            exchanges: 0,
            idle_since: now,
            read_in_exchange: false,
            exchange: None,
            error: None,
            observer: None,
            proto_known: false,
            dialler: None,
            h2: None,
        }
    }

    /// The traced request that dialled the connection.
    pub(crate) fn dialled_by(mut self, req: &Arc<RequestCtx>) -> Self {
        self.dialler = Some(Arc::downgrade(req));
        self
    }

    /// The connection speaks HTTP/2.
    #[inline]
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.is_some()
    }

    /// Reports the connection's end to `observer` too (see
    /// [`TracingConnector::observe_connections`](crate::TracingConnector::observe_connections)).
    pub(crate) fn with_observer(mut self, observer: Option<ClientTrace>) -> Self {
        self.observer = observer;
        self
    }

    pub(crate) fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// The connection's (remote, local) addresses, when the connect already read them.
    pub(crate) fn with_addrs(mut self, addrs: (Option<SocketAddr>, Option<SocketAddr>)) -> Self {
        self.addrs = Some(addrs);
        self
    }

    /// Before a write: bind the next exchange if a request was just handed off.
    /// `addrs` gives (remote, local) when a traced exchange first needs them.
    pub(crate) fn before_write(
        &mut self,
        first_bytes: &[u8],
        addrs: impl FnOnce() -> (Option<SocketAddr>, Option<SocketAddr>),
    ) {
        let mut addrs = Some(addrs);
        if !self.proto_known {
            // HTTP/2 starts with its connection preface: one connection then carries many
            // requests at once, and no exchange is bound to a write: its streams are followed
            // frame by frame instead (invariant 6).
            self.proto_known = !first_bytes.is_empty();
            if first_bytes.starts_with(H2_PREFACE) {
                let addrs = addrs.take().map_or((None, None), |f| f());
                let addrs = *self.addrs.get_or_insert(addrs);
                self.h2 = Some(Box::new(H2Side::new(self, addrs)));
            }
        }
        let Some(handoff) = take_handoff() else {
            return;
        };
        let at_boundary = self.h2.is_none() && (self.exchanges == 0 || self.read_in_exchange);
        if !at_boundary {
            return;
        }
        let index = self.exchanges;
        self.exchanges += 1;
        self.read_in_exchange = false;
        self.exchange = None;
        let Handoff::Traced(weak) = handoff else {
            return;
        };
        let Some(ctx) = weak.upgrade() else { return };
        let at = Instant::now();
        let (remote_addr, local_addr) = *self
            .addrs
            .get_or_insert_with(|| addrs.take().map_or((None, None), |f| f()));
        let reused = index > 0;
        let was_idle = reused || self.dialled_for != Some(ctx.id);
        let idle_time = if was_idle {
            at.saturating_duration_since(self.idle_since)
        } else {
            Duration::ZERO
        };
        ctx.emit_in_progress(Event::GotConn(GotConnInfo {
            at,
            reused,
            was_idle,
            idle_time,
            conn_id: self.conn_id,
            local_addr,
            remote_addr,
            http2: None,
            derived: None,
        }));
        self.exchange = Some(Exchange {
            req: weak,
            wrote_headers: false,
            wrote_request: false,
            first_byte: false,
        });
    }

    /// A flush completed: headers and, once the body is done, the request are on the wire.
    #[inline]
    pub(crate) fn flushed(&mut self) {
        // inlined: the check of a connection serving no traced request, or done writing one
        if let Some(ex) = self.exchange.as_mut().filter(|ex| !ex.wrote_request) {
            Self::report_flush(ex);
        }
    }

    fn report_flush(ex: &mut Exchange) {
        let Some(ctx) = ex.req.upgrade() else { return };
        let at = Instant::now();
        let headers_reported = std::mem::replace(&mut ex.wrote_headers, true);
        ex.wrote_request = ctx.flushed(at, headers_reported);
    }

    /// A write or flush failed.
    pub(crate) fn write_failed(&mut self, err: &std::io::Error) {
        let error = crate::error::copy_io_error(err);
        self.error = Some(error.clone());
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        if ex.wrote_request {
            return;
        }
        ex.wrote_request = true;
        if let Some(ctx) = ex.req.upgrade() {
            ctx.conn_broken.store(true, Ordering::Release);
            ctx.emit_in_progress(Event::WroteRequest(WroteRequestInfo {
                at: Instant::now(),
                error: Some(error),
            }));
        }
    }

    /// Before a read: hyper's dispatcher reads before it takes a request and writes it, so a
    /// handoff still pending on this thread is stale (left by a request that was never written)
    /// and must not bind another connection's exchange.
    pub(crate) fn before_read(&mut self) {
        let _ = take_handoff();
    }

    /// A traced request is being served, or the connection speaks HTTP/2: reads must be seen.
    pub(crate) fn traced_exchange(&self) -> bool {
        self.exchange.is_some() || self.h2.is_some()
    }

    /// A read completed, its length unknown (no traced request is served): the exchange read
    /// its response, and the idle time starts now at the latest.
    pub(crate) fn read_completed(&mut self) {
        self.idle_since = Instant::now();
        self.read_in_exchange = true;
    }

    /// A read completed with `n` bytes (0: end of stream).
    pub(crate) fn read(&mut self, n: usize) {
        if n == 0 {
            self.mark_broken();
            return;
        }
        let at = Instant::now();
        self.idle_since = at;
        self.read_in_exchange = true;
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        let Some(ctx) = ex.req.upgrade() else { return };
        let first = !std::mem::replace(&mut ex.first_byte, true);
        ctx.read(at, first);
    }

    /// A read failed.
    pub(crate) fn read_failed(&mut self, err: &std::io::Error) {
        let error = crate::error::copy_io_error(err);
        self.error = Some(error.clone());
        if let Some(ctx) = self.exchange.as_ref().and_then(|ex| ex.req.upgrade()) {
            ctx.lock().cause = Some(error);
        }
        self.mark_broken();
    }

    fn mark_broken(&mut self) {
        if let Some(ctx) = self.exchange.as_ref().and_then(|ex| ex.req.upgrade()) {
            ctx.conn_broken.store(true, Ordering::Release);
        }
    }

    /// The connection is gone (its IO is dropped).
    pub(crate) fn closed(&mut self) {
        if let Some(h2) = self.h2.take() {
            let at = Instant::now();
            let event = Event::ConnectionClosed(ConnectionClosedInfo {
                at,
                conn_id: self.conn_id,
                requests: h2.wire.shared.wire_opened.load(Ordering::Relaxed),
                lifetime: at.saturating_duration_since(self.created),
                error: self.error.take(),
            });
            h2.closed(&event, self.observer.as_ref());
            return;
        }
        let ctx = self.exchange.take().and_then(|ex| ex.req.upgrade());
        if ctx.is_none() && self.observer.is_none() {
            return;
        }
        let at = Instant::now();
        let event = Event::ConnectionClosed(ConnectionClosedInfo {
            at,
            conn_id: self.conn_id,
            requests: self.exchanges,
            lifetime: at.saturating_duration_since(self.created),
            error: self.error.take(),
        });
        if let Some(observer) = &self.observer {
            observer.emit(&event);
        }
        if let Some(ctx) = ctx {
            ctx.conn_broken.store(true, Ordering::Release);
            ctx.emit_in_progress(event);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invariant 6: HTTP/2 connections, their streams, and the requests bound to them.

/// (local, remote): a live TCP connection's name, as hyper-util's `HttpInfo` gives it.
type ConnKey = (SocketAddr, SocketAddr);

type H2Registry = std::collections::HashMap<ConnKey, Weak<H2Conn>, OwnHasher>;

/// The live HTTP/2 connections, by name: how a request finds the connection hyper-util gave it.
static H2_CONNS: std::sync::LazyLock<Mutex<H2Registry>> =
    std::sync::LazyLock::new(Default::default);
/// A traced request went without hyper-util's capture (its layer's `http2_streams(false)`):
/// it may open a stream nobody registers, on any client, so no stream is named from then on.
static UNCOUNTED: AtomicBool = AtomicBool::new(false);

/// A traced request goes without hyper-util's capture: if it may open an HTTP/2 stream, streams
/// can't all be counted any more.
pub(crate) fn uncaptured_request() {
    // whether or not HTTP/2 connections are live now: this request may be the one that makes
    // the first, and open its first stream before a counted request registers there
    if !UNCOUNTED.load(Ordering::Relaxed) {
        UNCOUNTED.store(true, Ordering::Release);
    }
}

/// How many HTTP/2 connections are live: none, and a request looks for none.
static H2_LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn h2_conns() -> MutexGuard<'static, H2Registry> {
    H2_CONNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A hasher for keys this process chooses itself, which need no defence against collisions
/// chosen by a peer: its connections' addresses, and its HTTP/2 streams' ids (a server's frames
/// only look streams up, never add one). A multiply-xor per word written.
#[derive(Default, Clone, Copy)]
struct OwnHasher;

impl std::hash::BuildHasher for OwnHasher {
    type Hasher = OwnHash;
    fn build_hasher(&self) -> OwnHash {
        OwnHash(0)
    }
}

struct OwnHash(u64);

impl std::hash::Hasher for OwnHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// An HTTP/2 connection, shared by its IO (the connection's task, which reads the frames) and
/// hyper's dispatch task (which opens the streams).
#[derive(Debug)]
pub(crate) struct H2Conn {
    conn_id: u64,
    /// In the registry: not closed yet.
    live: AtomicBool,
    /// The request whose connect made it.
    dialled_for: Option<u64>,
    /// When the client's preface was written: a request that started before could only wait
    /// for the connect.
    preface_at: Instant,
    addrs: (Option<SocketAddr>, Option<SocketAddr>),
    key: Option<ConnKey>,
    /// Streams open on the wire (HEADERS written, not closed both ways or reset).
    wire_open: std::sync::atomic::AtomicU32,
    /// Streams opened on the wire so far.
    wire_opened: AtomicU64,
    /// The highest stream id opened on the wire.
    wire_max: std::sync::atomic::AtomicU32,
    /// A request was registered: the wire is checked against the predictions.
    registered: AtomicBool,
    /// A stream is (or was) mapped to a request: frames look their stream up.
    mapped_any: AtomicBool,
    state: Mutex<H2State>,
}

#[derive(Debug)]
struct H2State {
    /// Every stream opened so far was registered: stream ids are known.
    exact: bool,
    /// The id hyper gives the next stream it opens.
    next_id: u32,
    /// Streams registered.
    opened: u64,
    /// The open streams of traced requests, by id (while `exact`).
    mapped: std::collections::HashMap<u32, Weak<RequestCtx>, OwnHasher>,
    /// The requests given this connection (pruned as they go): they hear of its end.
    attached: Vec<Weak<RequestCtx>>,
    /// When the last stream closed (or the connection started): idle since.
    idle_since: Instant,
}

impl H2Conn {
    fn lock(&self) -> MutexGuard<'_, H2State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// hyper opens a stream for `ctx`, right now (its dispatch task asked the body
    /// `is_end_stream()`): `GotConn`.
    fn open(&self, ctx: &Arc<RequestCtx>) {
        let at = Instant::now();
        self.registered.store(true, Ordering::Release);
        let mut st = self.lock();
        let unregistered = self.wire_max.load(Ordering::Acquire) >= st.next_id;
        let all_traced = ctx.all_traced
            && !ctx
                .uncounted
                .as_ref()
                .is_some_and(|u| u.load(Ordering::Acquire))
            && !UNCOUNTED.load(Ordering::Acquire);
        if (!all_traced || unregistered) && st.exact {
            // from now on, untraced requests may open streams nobody registers; or one did
            // already (the wire went past the streams registered)
            st.exact = false;
            st.mapped.clear();
        }
        // predicted also once a GOAWAY was read: hyper may not have seen it yet and still open
        // this stream (if it saw it, it opens none any more, and the id is never used)
        let stream_id = (st.exact && !ctx.opens_no_stream).then_some(st.next_id);
        if !ctx.opens_no_stream {
            st.next_id = st.next_id.saturating_add(2);
        }
        let wire_open = self.wire_open.load(Ordering::Acquire);
        let streams_in_flight = match st.exact {
            true => st.mapped.len() as u32,
            false => wire_open,
        };
        let reused = st.opened > 0 || self.wire_opened.load(Ordering::Acquire) > 0;
        let dialler = self.dialled_for == Some(ctx.id);
        let was_idle = streams_in_flight == 0 && (reused || !dialler);
        let idle_time = match was_idle {
            true => at.saturating_duration_since(st.idle_since),
            false => Duration::ZERO,
        };
        let derived = (!st.exact).then_some(
            "HTTP/2 with untraced requests: `reused` and `streams_in_flight` count the streams on \
             the wire and those of traced requests (an untraced stream not yet written is missed)",
        );
        st.opened += 1;
        let weak = Arc::downgrade(ctx);
        if let Some(id) = stream_id {
            st.mapped.insert(id, weak.clone());
            self.mapped_any.store(true, Ordering::Release);
        }
        if st.attached.len() >= 64 && st.attached.len().is_power_of_two() {
            st.attached.retain(|w| w.strong_count() > 0);
        }
        st.attached.push(weak);
        drop(st);
        ctx.emit_in_progress(Event::GotConn(GotConnInfo {
            at,
            reused,
            was_idle,
            idle_time,
            conn_id: self.conn_id,
            local_addr: self.addrs.1,
            remote_addr: self.addrs.0,
            http2: Some(Http2Stream {
                stream_id,
                streams_in_flight,
                waited_for_connect: !dialler && ctx.start() < self.preface_at,
            }),
            derived,
        }));
    }

    /// The request of an open stream.
    fn stream(&self, id: u32) -> Option<Arc<RequestCtx>> {
        if !self.mapped_any.load(Ordering::Acquire) {
            return None;
        }
        self.lock().mapped.get(&id).and_then(Weak::upgrade)
    }

    /// The requests still in progress that were given this connection.
    fn attached(&self) -> Vec<Arc<RequestCtx>> {
        let st = self.lock();
        st.attached.iter().filter_map(Weak::upgrade).collect()
    }
}

thread_local! {
    /// Where a connection's `Connected` metadata is read, reused from request to request.
    static EXTRAS: std::cell::RefCell<http::Extensions> = std::cell::RefCell::new(http::Extensions::new());
    /// The connection the last stream registered on this thread went to: hyper opens a
    /// connection's streams on its one dispatch task, so the next one most likely goes there too,
    /// and the registry's lock (shared by every thread) is not taken.
    static LAST_H2: std::cell::RefCell<Option<(ConnKey, Weak<H2Conn>)>> = const { std::cell::RefCell::new(None) };
}

/// The live HTTP/2 connection named `key`.
fn h2_conn(key: ConnKey) -> Option<Arc<H2Conn>> {
    let cached = LAST_H2.try_with(|last| {
        let last = last.try_borrow().ok()?;
        let (k, conn) = last.as_ref()?;
        // a connection closed since is gone from the registry: a new one may have its name
        (*k == key)
            .then(|| conn.upgrade())
            .flatten()
            .filter(|c| c.live.load(Ordering::Acquire))
    });
    if let Ok(Some(conn)) = cached {
        return Some(conn);
    }
    let conn = h2_conns().get(&key).and_then(Weak::upgrade)?;
    let _ = LAST_H2.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some((key, Arc::downgrade(&conn)));
        }
    });
    Some(conn)
}

impl RequestCtx {
    /// Called where hyper hands the request to a connection's task: if that is an HTTP/2
    /// connection's dispatch task, registers the request's stream there (invariant 6).
    fn open_on_http2(self: &Arc<Self>) -> bool {
        if H2_LIVE.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let Some(capture) = &self.capture else {
            return false;
        };
        let key = {
            let connected = capture.connection_metadata();
            let Some(connected) = connected.as_ref() else {
                return false;
            };
            let read = EXTRAS.try_with(|ext| {
                let mut ext = ext.try_borrow_mut().ok()?;
                connected.get_extras(&mut ext);
                let key = ext
                    .get::<HttpInfo>()
                    .map(|info| (info.local_addr(), info.remote_addr()));
                ext.clear();
                key
            });
            match read {
                Ok(Some(key)) => key,
                _ => return false,
            }
        };
        match h2_conn(key) {
            Some(conn) => {
                conn.open(self);
                true
            }
            None => false,
        }
    }
}

/// What the IO of an HTTP/2 connection tracks: the frames both ways, and the streams on the wire.
#[derive(Debug)]
pub(crate) struct H2Side {
    out: FrameReader,
    inn: FrameReader,
    wire: WireState,
}

/// The streams on the wire, as the frames tell them.
#[derive(Debug)]
struct WireState {
    shared: Arc<H2Conn>,
    /// The streams open on the wire (how many opened so far, and the highest id, are in
    /// `shared`: this IO is their one writer).
    streams: std::collections::HashMap<u32, WireStream, OwnHasher>,
    /// The server's first `SETTINGS` was read.
    ready: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct WireStream {
    /// The client ended its side (`END_STREAM` written).
    local_end: bool,
    /// The server ended its side (`END_STREAM` read).
    remote_end: bool,
    /// The header block being written ends the stream (its `END_HEADERS` comes in a
    /// `CONTINUATION`).
    ends_with_headers: bool,
    /// A frame of the response was read.
    first_byte: bool,
    /// The request's header block was written (a later block is its trailers).
    headers_written: bool,
}

impl H2Side {
    fn new(conn: &ConnSide, addrs: (Option<SocketAddr>, Option<SocketAddr>)) -> Self {
        let now = Instant::now();
        let key = match addrs {
            (Some(remote), Some(local)) => Some((local, remote)),
            _ => None,
        };
        let shared = Arc::new(H2Conn {
            conn_id: conn.conn_id,
            dialled_for: conn.dialled_for,
            preface_at: now,
            addrs,
            key,
            live: AtomicBool::new(true),
            wire_open: Default::default(),
            wire_opened: AtomicU64::new(0),
            wire_max: Default::default(),
            registered: AtomicBool::new(false),
            mapped_any: AtomicBool::new(false),
            state: Mutex::new(H2State {
                exact: true,
                next_id: 1,
                opened: 0,
                mapped: Default::default(),
                attached: Vec::new(),
                idle_since: now,
            }),
        });
        if let Some(key) = key {
            h2_conns().insert(key, Arc::downgrade(&shared));
            H2_LIVE.fetch_add(1, Ordering::Relaxed);
        }
        Self {
            out: FrameReader::after_preface(),
            inn: FrameReader::default(),
            wire: WireState {
                shared,
                streams: Default::default(),
                ready: false,
            },
        }
    }

    fn closed(&self, event: &Event, observer: Option<&ClientTrace>) {
        let shared = &self.wire.shared;
        shared.live.store(false, Ordering::Release);
        self.wire.tell(event, true, None, observer);
        if let Some(key) = shared.key {
            let mut conns = h2_conns();
            if conns
                .get(&key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(shared)))
            {
                conns.remove(&key);
            }
            drop(conns);
            H2_LIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl WireState {
    /// A stream closed both ways (or was reset): it leaves the wire and the map.
    fn close_stream(&mut self, id: u32, at: Instant) {
        if self.streams.remove(&id).is_none() {
            return;
        }
        let shared = &self.shared;
        let left = shared.wire_open.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 || shared.mapped_any.load(Ordering::Acquire) {
            let mut st = shared.lock();
            st.mapped.remove(&id);
            if left == 0 {
                st.idle_since = at;
            }
        }
    }

    /// Tells `event` to the dialler (if in progress), to the requests given the connection when
    /// `attached`, and to the connector's observer.
    fn tell(
        &self,
        event: &Event,
        attached: bool,
        dialler: Option<&Weak<RequestCtx>>,
        observer: Option<&ClientTrace>,
    ) {
        let mut told = match attached {
            true => self.shared.attached(),
            false => Vec::new(),
        };
        if let Some(d) = dialler.and_then(Weak::upgrade) {
            if !told.iter().any(|c| Arc::ptr_eq(c, &d)) {
                told.push(d);
            }
        }
        for ctx in told {
            ctx.emit_in_progress(event.clone());
        }
        if let Some(observer) = observer {
            observer.emit(event);
        }
    }

    /// A frame was written whole.
    fn sent(&mut self, head: frames::FrameHead, payload: &[u8], at: Instant) {
        let id = head.stream;
        if id == 0 {
            return;
        }
        match head.kind {
            frames::HEADERS | frames::CONTINUATION => {
                if head.kind == frames::HEADERS && id > self.shared.wire_max.load(Ordering::Relaxed)
                {
                    self.new_stream(id);
                }
                let Some(ws) = self.streams.get_mut(&id) else {
                    return;
                };
                if head.kind == frames::HEADERS && head.has(frames::END_STREAM) {
                    ws.ends_with_headers = true;
                }
                if !head.has(frames::END_HEADERS) {
                    return;
                }
                let ends = std::mem::take(&mut ws.ends_with_headers);
                let first_block = !std::mem::replace(&mut ws.headers_written, true);
                ws.local_end |= ends;
                let closed = ws.local_end && ws.remote_end;
                if first_block || ends {
                    if let Some(ctx) = self.shared.stream(id) {
                        ctx.wrote(at, first_block, ends);
                    }
                }
                if closed {
                    self.close_stream(id, at);
                }
            }
            frames::DATA if head.has(frames::END_STREAM) => {
                let Some(ws) = self.streams.get_mut(&id) else {
                    return;
                };
                ws.local_end = true;
                let closed = ws.remote_end;
                if let Some(ctx) = self.shared.stream(id) {
                    ctx.wrote(at, false, true);
                }
                if closed {
                    self.close_stream(id, at);
                }
            }
            frames::RST_STREAM => self.reset(id, payload, at, false),
            _ => {}
        }
    }

    /// `RST_STREAM` for an open stream, read or written: `StreamReset`, and the stream ends.
    fn reset(&mut self, id: u32, payload: &[u8], at: Instant, by_server: bool) {
        if !self.streams.contains_key(&id) {
            return;
        }
        if let Some(ctx) = self.shared.stream(id) {
            ctx.emit_in_progress(Event::StreamReset(StreamResetInfo {
                at,
                conn_id: self.shared.conn_id,
                stream_id: id,
                error_code: frames::u32_at(payload, 0).unwrap_or(0),
                by_server,
            }));
        }
        self.close_stream(id, at);
    }

    /// The client's `HEADERS` open stream `id` on the wire.
    fn new_stream(&mut self, id: u32) {
        // the ids between the last stream opened and this one never will be (ids open in order;
        // the client's are odd, from 1)
        let shared = &self.shared;
        let first = match shared.wire_max.load(Ordering::Relaxed) {
            0 => 1,
            last => last.saturating_add(2),
        };
        let skipped = first..id;
        self.streams.insert(id, WireStream::default());
        shared.wire_open.fetch_add(1, Ordering::AcqRel);
        shared.wire_opened.fetch_add(1, Ordering::AcqRel);
        shared.wire_max.store(id, Ordering::Release);
        if shared.registered.load(Ordering::Acquire) {
            let mut st = shared.lock();
            if st.exact && !st.mapped.contains_key(&id) {
                // a stream nobody registered (every registration precedes its stream): the
                // order no longer tells
                st.exact = false;
                st.mapped.clear();
            }
            if !st.mapped.is_empty() {
                // streams registered below this one that never opened (hyper failed to send
                // them) never will
                if skipped.len() / 2 <= st.mapped.len() {
                    for k in skipped.step_by(2) {
                        st.mapped.remove(&k);
                    }
                } else {
                    st.mapped.retain(|k, _| !skipped.contains(k));
                }
            }
        }
    }

    /// A frame's header was read: the response's first byte if it is the stream's first
    /// `HEADERS` or `DATA` (a `WINDOW_UPDATE` for the request's body is not the response).
    fn frame_started(&mut self, head: frames::FrameHead, at: Instant) {
        if head.stream == 0 || !matches!(head.kind, frames::HEADERS | frames::DATA) {
            return;
        }
        let Some(ws) = self.streams.get_mut(&head.stream) else {
            return;
        };
        if std::mem::replace(&mut ws.first_byte, true) {
            return;
        }
        if let Some(ctx) = self.shared.stream(head.stream) {
            ctx.read(at, true);
        }
    }

    /// A frame was read whole.
    fn received(
        &mut self,
        head: frames::FrameHead,
        payload: &[u8],
        at: Instant,
        dialler: Option<&Weak<RequestCtx>>,
        observer: Option<&ClientTrace>,
    ) {
        let id = head.stream;
        match head.kind {
            frames::SETTINGS if id == 0 && !head.has(frames::ACK) && !self.ready => {
                self.ready = true;
                let (mut max_streams, mut window, mut frame) = (None, None, None);
                for (setting, value) in frames::settings(payload) {
                    match setting {
                        0x3 => max_streams = Some(value),
                        0x4 => window = Some(value),
                        0x5 => frame = Some(value),
                        _ => {}
                    }
                }
                let event = Event::Http2Ready(Http2ReadyInfo {
                    at,
                    conn_id: self.shared.conn_id,
                    max_concurrent_streams: max_streams,
                    initial_window_size: window,
                    max_frame_size: frame,
                });
                self.tell(&event, false, dialler, observer);
            }
            frames::GOAWAY if id == 0 => {
                let last = frames::u32_at(payload, 0).unwrap_or(0) & 0x7fff_ffff;
                let event = Event::GoAway(GoAwayInfo {
                    at,
                    conn_id: self.shared.conn_id,
                    last_stream_id: last,
                    error_code: frames::u32_at(payload, 4).unwrap_or(0),
                });
                self.tell(&event, true, dialler, observer);
                // the streams above `last` were refused: they end here (RFC 9113, 6.8)
                let refused: Vec<u32> =
                    self.streams.keys().copied().filter(|k| *k > last).collect();
                for k in refused {
                    self.close_stream(k, at);
                }
                if self.shared.mapped_any.load(Ordering::Acquire) {
                    self.shared.lock().mapped.retain(|k, _| *k <= last);
                }
            }
            frames::HEADERS | frames::DATA if id != 0 && head.has(frames::END_STREAM) => {
                let Some(ws) = self.streams.get_mut(&id) else {
                    return;
                };
                ws.remote_end = true;
                if ws.local_end {
                    self.close_stream(id, at);
                }
            }
            frames::RST_STREAM if id != 0 => self.reset(id, payload, at, true),
            _ => {}
        }
    }
}

impl ConnSide {
    /// Bytes of an HTTP/2 connection were written (accepted by the transport).
    pub(crate) fn h2_wrote(&mut self, bytes: &[u8]) {
        let Some(h2) = self.h2.as_deref_mut() else {
            return;
        };
        let at = Instant::now();
        let H2Side { out, wire, .. } = h2;
        out.feed(bytes, |seen| {
            if let Seen::End(head, payload) = seen {
                wire.sent(head, payload, at);
            }
        });
    }

    /// Bytes of an HTTP/2 connection were read.
    pub(crate) fn h2_read(&mut self, bytes: &[u8]) {
        let ConnSide {
            h2,
            dialler,
            observer,
            ..
        } = self;
        let Some(h2) = h2.as_deref_mut() else {
            return;
        };
        let at = Instant::now();
        let H2Side { inn, wire, .. } = h2;
        inn.feed(bytes, |seen| match seen {
            Seen::Start(head) => wire.frame_started(head, at),
            Seen::End(head, payload) => {
                wire.received(head, payload, at, dialler.as_ref(), observer.as_ref())
            }
        });
    }
}

/// hyper's 1xx callback for a traced request.
pub(crate) fn informational(
    ctx: &Weak<RequestCtx>,
    status: http::StatusCode,
    headers: &http::HeaderMap,
) {
    let Some(ctx) = ctx.upgrade() else { return };
    let at = Instant::now();
    if status == http::StatusCode::CONTINUE {
        ctx.emit(Event::Got100Continue(Got100ContinueInfo { at }));
    }
    ctx.emit(Event::Got1xxResponse(Got1xxResponseInfo {
        at,
        status,
        headers: headers.clone(),
    }));
}

impl Drop for ConnSide {
    fn drop(&mut self) {
        self.closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recorder;

    fn names(rec: &Recorder) -> Vec<&'static str> {
        rec.names()
    }

    fn no_addrs() -> (Option<SocketAddr>, Option<SocketAddr>) {
        (None, None)
    }

    #[test]
    fn exchanges_bind_at_boundaries_only() {
        let rec = Recorder::new();
        let a = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(7, Some(a.id));

        // first exchange: untraced, counted
        hand_off(None);
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        // a handoff left on this thread mid-exchange (no response read yet) is ignored
        hand_off(Some(&a));
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        assert!(names(&rec).is_empty());
        conn.read(10);
        // a handoff that no write took is discarded by the next read
        hand_off(Some(&a));
        conn.before_read();
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        assert!(names(&rec).is_empty());

        // second exchange: traced, on a connection that served one request already
        hand_off(Some(&a));
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        a.set_body_done();
        conn.flushed();
        conn.read(3);
        conn.read(3);
        assert_eq!(
            names(&rec),
            [
                "GotConn",
                "WroteHeaders",
                "WroteRequest",
                "GotFirstResponseByte"
            ]
        );
        match &rec.events()[0] {
            Event::GotConn(g) => {
                assert!(g.reused && g.was_idle);
                assert_eq!(g.conn_id, 7);
            }
            other => panic!("{other:?}"),
        }
        assert!(a.last_read().is_some());
        drop(conn);
        assert_eq!(names(&rec).last(), Some(&"ConnectionClosed"));
        match rec.events().last() {
            Some(Event::ConnectionClosed(c)) => assert_eq!(c.requests, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dropped_request_gets_nothing_and_keeps_nothing() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, None);
        hand_off(Some(&ctx));
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        drop(ctx);
        conn.flushed();
        conn.read(1);
        drop(conn);
        assert_eq!(names(&rec), ["GotConn"]);
    }

    #[test]
    fn the_dialling_request_is_not_idle() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, Some(ctx.id));
        hand_off(Some(&ctx));
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        match &rec.events()[0] {
            Event::GotConn(g) => assert!(!g.reused && !g.was_idle && g.idle_time.is_zero()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn write_errors_end_the_request_write_once() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, None);
        hand_off(Some(&ctx));
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        let err = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        conn.write_failed(&err);
        conn.write_failed(&err);
        conn.flushed();
        assert_eq!(names(&rec), ["GotConn", "WroteRequest"]);
        let cause = ctx.cause().expect("the write error is the request's cause");
        let io = cause.get_ref().downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(ctx.conn_broken());
    }

    #[test]
    fn dial_events_pair_up() {
        let rec = Recorder::new();
        let req = RequestCtx::new(rec.trace());
        // a lookup, then a connect that is dropped
        let dial = DialCtx::new(req.clone(), Some(80));
        dial.dns_start("example.test");
        dial.dns_done(Ok(vec!["127.0.0.1:0".parse().unwrap()]));
        dial.canceled();
        dial.canceled();
        assert_eq!(
            names(&rec),
            ["DNSStart", "DNSDone", "ConnectStart", "ConnectDone"]
        );
        match &rec.events()[2] {
            Event::ConnectStart(s) => assert_eq!(s.addr, Some("127.0.0.1:80".parse().unwrap())),
            other => panic!("{other:?}"),
        }
        // a failed lookup: no connect at all, as in Go
        rec.clear();
        let dial = DialCtx::new(req, Some(80));
        dial.dns_start("example.test");
        dial.dns_done(Err(SharedError::new("nope")));
        dial.finish(
            Err(SharedError::new("dns error")),
            Err(SharedError::new("dns error")),
        );
        dial.canceled();
        assert_eq!(names(&rec), ["DNSStart", "DNSDone"]);
    }

    #[test]
    fn attempts_transport_and_tls() {
        let rec = Recorder::new();
        let req = RequestCtx::new(rec.trace());
        let dial = DialCtx::new(req, Some(443));
        dial.use_attempts();
        dial.connect_start(None); // ignored: the attempts tell
        dial.dns_start("example.test");
        dial.dns_done(Ok(vec![
            "127.0.0.2:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ]));
        let (dead, live) = (
            "127.0.0.2:443".parse().unwrap(),
            "127.0.0.1:443".parse().unwrap(),
        );
        dial.attempt_start(dead);
        dial.attempt_done(dead, Err(SharedError::new("refused")));
        dial.attempt_start(live);
        dial.attempt_done(live, Ok((Some(live), None)));
        dial.transport_done(Ok((Some(live), None)));
        dial.tls_start(Some("example.test".into()));
        dial.finish(Ok(None), Ok((Some(live), None)));
        dial.canceled();
        assert_eq!(
            names(&rec),
            [
                "DNSStart",
                "DNSDone",
                "ConnectStart",
                "ConnectDone",
                "ConnectStart",
                "ConnectDone",
                "TLSHandshakeStart",
                "TLSHandshakeDone"
            ]
        );
        match &rec.events()[5] {
            Event::ConnectDone(d) => {
                assert_eq!(d.conn_id, Some(dial.conn_id));
                assert_eq!(d.addr, Some(live));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_handshake_dropped_midway_is_done_once() {
        let rec = Recorder::new();
        let dial = DialCtx::new(RequestCtx::new(rec.trace()), Some(443));
        dial.connect_start(Some("127.0.0.1:443".parse().unwrap()));
        dial.transport_done(Ok((None, None)));
        dial.tls_start(None);
        dial.canceled();
        dial.canceled();
        assert_eq!(
            names(&rec),
            [
                "ConnectStart",
                "ConnectDone",
                "TLSHandshakeStart",
                "TLSHandshakeDone"
            ]
        );
        let done = rec.events().pop().unwrap();
        assert!(done.error().unwrap().downcast_ref::<Canceled>().is_some());
    }

    #[test]
    fn nothing_from_the_wire_after_the_request_ended() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, None);
        hand_off(Some(&ctx));
        conn.before_write(b"GET / HTTP/1.1\r\n", no_addrs);
        ctx.finish(Event::RequestCanceled(RequestCanceledInfo {
            at: Instant::now(),
            error: SharedError::new(Canceled::new("request")),
        }));
        ctx.set_body_done();
        conn.flushed();
        conn.read(5);
        conn.write_failed(&std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        ctx.wrote(Instant::now(), true, true);
        assert_eq!(names(&rec), ["GotConn", "RequestCanceled"]);
    }

    /// A client frame's 9-byte header, and no payload.
    fn frame(kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut f = vec![0, 0, 0, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f
    }

    /// An HTTP/2 connection past its preface, and `n` requests of a layer that traces all,
    /// not registered yet.
    fn h2_conn_and_requests(
        n: usize,
    ) -> (ConnSide, Arc<H2Conn>, Vec<Recorder>, Vec<Arc<RequestCtx>>) {
        let mut conn = ConnSide::new(1, None);
        conn.before_write(frames::PREFACE, no_addrs);
        conn.h2_wrote(frames::PREFACE);
        let shared = conn.h2.as_ref().unwrap().wire.shared.clone();
        let recs: Vec<Recorder> = (0..n).map(|_| Recorder::new()).collect();
        let ctxs = recs
            .iter()
            .map(|rec| {
                let facts = RequestFacts {
                    all_traced: true,
                    ..RequestFacts::default()
                };
                RequestCtx::with_facts(rec.trace(), facts)
            })
            .collect();
        (conn, shared, recs, ctxs)
    }

    /// The stream ids a connection maps to requests, in order.
    fn mapped_ids(conn: &H2Conn) -> Vec<u32> {
        let mut ids: Vec<u32> = conn.lock().mapped.keys().copied().collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_stream_registered_but_never_opened_is_dropped_when_a_later_one_opens() {
        let (mut conn, shared, recs, ctxs) = h2_conn_and_requests(3);
        for ctx in &ctxs {
            shared.open(ctx);
        }
        assert_eq!(mapped_ids(&shared), [1, 3, 5]);
        let whole = frames::END_HEADERS | frames::END_STREAM;
        conn.h2_wrote(&frame(frames::HEADERS, whole, 1));
        // hyper never sent stream 3 (its request failed): 5 opens next
        conn.h2_wrote(&frame(frames::HEADERS, whole, 5));
        assert_eq!(mapped_ids(&shared), [1, 5]);
        let written = ["GotConn", "WroteHeaders", "WroteRequest"];
        assert_eq!(names(&recs[0]), written);
        assert_eq!(names(&recs[1]), ["GotConn"]);
        assert_eq!(names(&recs[2]), written);
        // and nothing for stream 3 reaches its request now
        conn.h2_read(&frame(frames::HEADERS, frames::END_HEADERS, 3));
        assert_eq!(names(&recs[1]), ["GotConn"]);
        drop(ctxs);
    }

    #[test]
    fn the_first_stream_registered_but_never_opened_is_dropped_too() {
        let (mut conn, shared, recs, ctxs) = h2_conn_and_requests(3);
        shared.open(&ctxs[0]); // predicted 1
        shared.open(&ctxs[1]); // predicted 3
        let whole = frames::END_HEADERS | frames::END_STREAM;
        conn.h2_wrote(&frame(frames::HEADERS, whole, 3)); // 1 never sent
        assert_eq!(mapped_ids(&shared), [3]);
        conn.h2_read(&frame(frames::HEADERS, whole, 3)); // 3 closes
        shared.open(&ctxs[2]);
        let got = recs[2]
            .events()
            .into_iter()
            .find_map(|e| match e {
                Event::GotConn(i) => Some(i),
                _ => None,
            })
            .unwrap();
        assert_eq!(got.http2.unwrap().streams_in_flight, 0);
        assert!(got.was_idle);
        drop(ctxs);
    }

    /// A connection closed and a new one with the same addresses: a request finds the new one,
    /// whatever the thread remembers of the last.
    #[test]
    fn a_closed_connections_name_goes_to_the_next() {
        let remote: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:59999".parse().unwrap();
        let open = |id| {
            let mut conn = ConnSide::new(id, None).with_addrs((Some(remote), Some(local)));
            conn.before_write(frames::PREFACE, no_addrs);
            let shared = conn.h2.as_ref().unwrap().wire.shared.clone();
            (conn, shared)
        };
        let (mut first, first_shared) = open(1);
        let found = h2_conn((local, remote)).unwrap();
        assert!(Arc::ptr_eq(&found, &first_shared));
        drop(found);
        first.closed();
        let (_second, second_shared) = open(2);
        // the first is still alive (held here), and this thread found it last
        let found = h2_conn((local, remote)).unwrap();
        assert!(Arc::ptr_eq(&found, &second_shared));
        assert_eq!(found.conn_id, 2);
        drop(first_shared);
    }

    #[test]
    fn nothing_is_bound_on_http2() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, Some(ctx.id));
        conn.before_write(frames::PREFACE, no_addrs);
        hand_off(Some(&ctx));
        conn.before_write(b"\0\0\x04\x01", no_addrs);
        conn.flushed();
        conn.read(9);
        hand_off(Some(&ctx));
        conn.before_write(b"\0\0\x04\x01", no_addrs);
        conn.flushed();
        assert!(rec.names().is_empty(), "{:?}", rec.names());
    }
}
