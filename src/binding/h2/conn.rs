//! One HTTP/2 connection as both its tasks share it: hyper's dispatch task opens the streams
//! (a traced request registers its own, and gets `GotConn`), the connection's IO follows them
//! on the wire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::hash::OwnHasher;
use super::registry;
use crate::binding::request::RequestCtx;
use crate::event::*;
use crate::util::ConnAddrs;

/// An HTTP/2 connection, shared by its IO (the connection's task, which reads the frames) and
/// hyper's dispatch task (which opens the streams).
#[derive(Debug)]
pub(crate) struct H2Conn {
    pub(super) conn_id: u64,
    /// In the registry: not closed yet.
    pub(super) live: AtomicBool,
    /// The request whose connect made it.
    pub(super) dialled_for: Option<RequestId>,
    /// When the client's preface was written: a request that started before could only wait
    /// for the connect.
    pub(super) preface_at: Instant,
    pub(super) addrs: ConnAddrs,
    /// Streams open on the wire (HEADERS written, not closed both ways or reset).
    pub(super) wire_open: AtomicU32,
    /// Streams opened on the wire so far.
    pub(super) wire_opened: AtomicU64,
    /// The highest stream id opened on the wire.
    pub(super) wire_max: AtomicU32,
    /// A request was registered: the wire is checked against the predictions.
    pub(super) registered: AtomicBool,
    /// A stream is (or was) mapped to a request: frames look their stream up.
    pub(super) mapped_any: AtomicBool,
    pub(super) state: Mutex<H2State>,
}

#[derive(Debug)]
pub(super) struct H2State {
    /// Every stream opened so far was registered: stream ids are known.
    pub(super) exact: bool,
    /// The id hyper gives the next stream it opens.
    pub(super) next_id: u32,
    /// Streams registered.
    pub(super) opened: u64,
    /// The open streams of traced requests, by id (while `exact`).
    pub(super) mapped: HashMap<u32, Weak<RequestCtx>, OwnHasher>,
    /// The requests given this connection (pruned as they go): they hear of its end.
    pub(super) attached: Vec<Weak<RequestCtx>>,
    /// When the last stream closed (or the connection started): idle since.
    pub(super) idle_since: Instant,
}

impl H2Conn {
    pub(super) fn lock(&self) -> MutexGuard<'_, H2State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// hyper opens a stream for `ctx`, right now (its dispatch task asked the body
    /// `is_end_stream()`): `GotConn`.
    pub(crate) fn open(&self, ctx: &Arc<RequestCtx>) {
        let at = Instant::now();
        self.registered.store(true, Ordering::Release);
        let mut st = self.lock();
        let unregistered = self.wire_max.load(Ordering::Acquire) >= st.next_id;
        let all_traced = ctx.all_traced
            && !ctx
                .uncounted
                .as_ref()
                .is_some_and(|u| u.load(Ordering::Acquire))
            && !registry::uncounted();
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
        let dialler = self.dialled_for == Some(ctx.id());
        let was_idle = streams_in_flight == 0 && (reused || !dialler);
        let idle_time = match was_idle {
            true => at.saturating_duration_since(st.idle_since),
            false => Duration::ZERO,
        };
        let derived = (!st.exact).then_some(Derived::Http2Untraced);
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
            local_addr: self.addrs.local,
            remote_addr: self.addrs.remote,
            http2: Some(Http2Stream {
                stream_id,
                streams_in_flight,
                waited_for_connect: !dialler && ctx.start() < self.preface_at,
            }),
            derived,
        }));
    }

    /// The request of an open stream.
    pub(super) fn stream(&self, id: u32) -> Option<Arc<RequestCtx>> {
        if !self.mapped_any.load(Ordering::Acquire) {
            return None;
        }
        self.lock().mapped.get(&id).and_then(Weak::upgrade)
    }

    /// The requests still in progress that were given this connection.
    pub(super) fn attached(&self) -> Vec<Arc<RequestCtx>> {
        let st = self.lock();
        st.attached.iter().filter_map(Weak::upgrade).collect()
    }

    /// Not closed yet: still the connection its name finds.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}
