//! A connection's side (invariant 4): what its IO knows of itself, and on HTTP/1 the binding
//! of each exchange to the request whose bytes it writes; an HTTP/2 connection hands its bytes
//! to [`H2Side`] instead.

use std::sync::{Arc, OnceLock, Weak};

use hyper_util::client::legacy::connect::{Connected, HttpInfo};
use std::time::{Duration, Instant};

use super::ambient::{take_handoff, Handoff};
use super::h2::{H2Link, H2Side};
use super::request::RequestCtx;
use crate::error::{copy_io_error, SharedError};
use crate::event::*;
use crate::trace::ClientTrace;
use crate::util::ConnAddrs;

/// What one connection knows of itself and of the exchange in progress. Owned by the IO wrapper
/// (the connection task): no lock.
#[derive(Debug)]
pub(crate) struct ConnSide {
    conn_id: u64,
    created: Instant,
    /// The request that dialled it, if traced.
    dialled_for: Option<RequestId>,
    addrs: Option<ConnAddrs>,
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
    /// How its requests find it on HTTP/2 when it has no name (no `HttpInfo`).
    link: OnceLock<H2Link>,
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
    pub(crate) fn new(conn_id: u64, dialled_for: Option<RequestId>) -> Self {
        let now = crate::util::now();
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
            link: OnceLock::new(),
        }
    }

    /// What hyper-util should carry to this connection's requests, with `connected`, so they
    /// find it if it speaks HTTP/2: nothing when `connected` names it (its `HttpInfo`; that
    /// costs no request anything), else an [`H2Link`] (which hyper-util copies into every
    /// response of the connection).
    pub(crate) fn link(&self, connected: &Connected) -> Option<H2Link> {
        let mut ext = http::Extensions::new();
        connected.get_extras(&mut ext);
        if ext.get::<HttpInfo>().is_some() {
            return None;
        }
        Some(self.link.get_or_init(H2Link::default).clone())
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

    /// The connection's addresses, when the connect already read them.
    pub(crate) fn with_addrs(mut self, addrs: ConnAddrs) -> Self {
        self.addrs = Some(addrs);
        self
    }

    /// Before a write: bind the next exchange if a request was just handed off.
    /// `addrs` reads the connection's addresses when a traced exchange first needs them.
    pub(crate) fn before_write(&mut self, first_bytes: &[u8], addrs: impl FnOnce() -> ConnAddrs) {
        let mut addrs = Some(addrs);
        if !self.proto_known {
            // HTTP/2 starts with its connection preface: one connection then carries many
            // requests at once, and no exchange is bound to a write: its streams are followed
            // frame by frame instead (invariant 6).
            self.proto_known = !first_bytes.is_empty();
            if first_bytes.starts_with(H2_PREFACE) {
                let addrs = addrs.take().map_or_else(ConnAddrs::default, |f| f());
                let addrs = *self.addrs.get_or_insert(addrs);
                let h2 = H2Side::new(self.conn_id, self.dialled_for, addrs);
                if let Some(link) = self.link.get() {
                    link.set(h2.shared());
                }
                self.h2 = Some(Box::new(h2));
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
        let addrs = *self
            .addrs
            .get_or_insert_with(|| addrs.take().map_or_else(ConnAddrs::default, |f| f()));
        let reused = index > 0;
        let was_idle = reused || self.dialled_for != Some(ctx.id);
        let (conn_id, idle_since) = (self.conn_id, self.idle_since);
        ctx.got_conn(|at| GotConnInfo {
            at,
            reused,
            was_idle,
            idle_time: match was_idle {
                true => at.saturating_duration_since(idle_since),
                false => Duration::ZERO,
            },
            conn_id,
            local_addr: addrs.local,
            remote_addr: addrs.remote,
            http2: None,
            derived: None,
        });
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
        let at = crate::util::now();
        let headers_reported = std::mem::replace(&mut ex.wrote_headers, true);
        ex.wrote_request = ctx.flushed(at, headers_reported);
    }

    /// A write or flush failed.
    pub(crate) fn write_failed(&mut self, err: &std::io::Error) {
        let error = copy_io_error(err);
        self.error = Some(error.clone());
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        if ex.wrote_request {
            return;
        }
        ex.wrote_request = true;
        if let Some(ctx) = ex.req.upgrade() {
            ctx.write_failed(crate::util::now(), error);
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
        self.idle_since = crate::util::now();
        self.read_in_exchange = true;
    }

    /// A read completed with `n` bytes (0: end of stream).
    pub(crate) fn read(&mut self, n: usize) {
        if n == 0 {
            self.mark_broken();
            return;
        }
        let at = crate::util::now();
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
        let error = copy_io_error(err);
        self.error = Some(error.clone());
        if let Some(ctx) = self.exchange.as_ref().and_then(|ex| ex.req.upgrade()) {
            ctx.set_cause(error);
        }
        self.mark_broken();
    }

    fn mark_broken(&mut self) {
        if let Some(ctx) = self.exchange.as_ref().and_then(|ex| ex.req.upgrade()) {
            ctx.mark_conn_broken();
        }
    }

    /// The connection is gone (its IO is dropped).
    pub(crate) fn closed(&mut self) {
        if let Some(h2) = self.h2.take() {
            let at = crate::util::now();
            let event = Event::ConnectionClosed(ConnectionClosedInfo {
                at,
                conn_id: self.conn_id,
                requests: h2.streams_opened(),
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
        let at = crate::util::now();
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
            ctx.mark_conn_broken();
            ctx.connection_closed(event);
            ctx.connection_gone();
        }
    }
}

impl ConnSide {
    /// The HTTP/2 connection this IO follows, if it speaks HTTP/2.
    #[cfg(test)]
    pub(super) fn h2_shared(&self) -> Option<Arc<super::h2::H2Conn>> {
        self.h2.as_ref().map(|h2| h2.shared().clone())
    }

    /// Bytes of an HTTP/2 connection were written (accepted by the transport).
    pub(crate) fn h2_wrote(&mut self, bytes: &[u8]) {
        if let Some(h2) = self.h2.as_deref_mut() {
            h2.wrote(bytes);
        }
    }

    /// Bytes of an HTTP/2 connection were read.
    pub(crate) fn h2_read(&mut self, bytes: &[u8]) {
        if let Some(h2) = self.h2.as_deref_mut() {
            h2.read(bytes, self.dialler.as_ref(), self.observer.as_ref());
        }
    }
}

impl Drop for ConnSide {
    fn drop(&mut self) {
        self.closed();
    }
}

#[cfg(test)]
mod tests {
    use super::super::ambient::hand_off;
    use super::super::h2::frames;
    use super::*;
    use crate::error::Canceled;
    use crate::Recorder;

    #[test]
    fn exchanges_bind_at_boundaries_only() {
        let rec = Recorder::new();
        let a = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(7, Some(a.id));

        // first exchange: untraced, counted
        hand_off(None, false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        // a handoff left on this thread mid-exchange (no response read yet) is ignored
        hand_off(Some(&a), false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        assert!(rec.names().is_empty());
        conn.read(10);
        // a handoff that no write took is discarded by the next read
        hand_off(Some(&a), false, true);
        conn.before_read();
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        assert!(rec.names().is_empty());

        // second exchange: traced, on a connection that served one request already
        hand_off(Some(&a), false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        a.set_body_done();
        conn.flushed();
        conn.read(3);
        conn.read(3);
        assert_eq!(
            rec.names(),
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
        // the response had begun: the close waits for the request's end, and comes before it
        // since the request fails
        drop(conn);
        assert_eq!(rec.names().last(), Some(&"GotFirstResponseByte"));
        a.finish(|at| {
            Event::RequestFailed(crate::event::RequestFailedInfo {
                at,
                error: crate::error::SharedError::new("failed"),
            })
        });
        let events = rec.events();
        let closed = &events[events.len() - 2];
        match closed {
            Event::ConnectionClosed(c) => assert_eq!(c.requests, 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(rec.names().last(), Some(&"RequestFailed"));
    }

    #[test]
    fn a_dropped_request_gets_nothing_and_keeps_nothing() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, None);
        hand_off(Some(&ctx), false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        drop(ctx);
        conn.flushed();
        conn.read(1);
        drop(conn);
        assert_eq!(rec.names(), ["GotConn"]);
    }

    #[test]
    fn the_dialling_request_is_not_idle() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, Some(ctx.id));
        hand_off(Some(&ctx), false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
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
        hand_off(Some(&ctx), false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        let err = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        conn.write_failed(&err);
        conn.write_failed(&err);
        conn.flushed();
        assert_eq!(rec.names(), ["GotConn", "WroteRequest"]);
        let cause = ctx.cause().expect("the write error is the request's cause");
        let io = cause.get_ref().downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(ctx.conn_broken());
    }

    #[test]
    fn nothing_from_the_wire_after_the_request_ended() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, None);
        hand_off(Some(&ctx), false, true);
        conn.before_write(b"GET / HTTP/1.1\r\n", ConnAddrs::default);
        ctx.finish(|at| {
            Event::RequestCanceled(RequestCanceledInfo {
                at,
                error: SharedError::new(Canceled::new("request")),
            })
        });
        ctx.set_body_done();
        conn.flushed();
        conn.read(5);
        conn.write_failed(&std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        ctx.wrote(crate::util::now(), true, true);
        assert_eq!(rec.names(), ["GotConn", "RequestCanceled"]);
    }

    #[test]
    fn nothing_is_bound_on_http2() {
        let rec = Recorder::new();
        let ctx = RequestCtx::new(rec.trace());
        let mut conn = ConnSide::new(1, Some(ctx.id));
        conn.before_write(frames::PREFACE, ConnAddrs::default);
        hand_off(Some(&ctx), false, true);
        conn.before_write(b"\0\0\x04\x01", ConnAddrs::default);
        conn.flushed();
        conn.read(9);
        hand_off(Some(&ctx), false, true);
        conn.before_write(b"\0\0\x04\x01", ConnAddrs::default);
        conn.flushed();
        assert!(rec.names().is_empty(), "{:?}", rec.names());
    }
}
