//! One HTTP/2 connection as both its tasks share it: hyper's dispatch task opens the streams
//! (a traced request registers its own, and gets `GotConn`), the connection's IO follows them
//! on the wire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::dispatch::Dispatch;
use super::hash::OwnHasher;
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
    /// Stream ids skipped on the wire: hyper gave them to requests it then failed to send.
    pub(super) wire_skipped: AtomicU64,
    /// When the first stream was written, in [`dispatch::next_seq`]'s order (0: not yet).
    pub(super) first_stream: AtomicU64,
    /// The key of hyper's dispatch task for this connection, once a traced request told it (0:
    /// not yet), and the birth of its slot in the dispatch table.
    pub(super) task: AtomicU64,
    pub(super) task_born: AtomicU64,
    /// How many streams are mapped to a request now (kept under the lock; read without it,
    /// so that a connection with none takes no lock per stream).
    pub(super) mapped_now: AtomicUsize,
    pub(super) state: Mutex<H2State>,
}

#[derive(Debug)]
pub(super) struct H2State {
    /// No stream that went uncounted was seen: the counts tell the stream ids.
    pub(super) exact: bool,
    /// Streams registered by traced requests.
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
    /// `is_end_stream()`), counted as `dispatch` on that task (`None`: not counted): `GotConn`.
    /// `opens_stream` is false for a request hyper refuses before it opens one.
    pub(crate) fn open(
        &self,
        ctx: &Arc<RequestCtx>,
        dispatch: Option<Dispatch>,
        opens_stream: bool,
    ) {
        let mut st = self.lock();
        let first_stream = self.first_stream.load(Ordering::Acquire);
        let task = self.task.load(Ordering::Acquire);
        let counted = dispatch.filter(|d| {
            opens_stream
                && st.exact
                // one connection, one dispatch task, one count
                && (task == 0
                    || (task == d.task && self.task_born.load(Ordering::Acquire) == d.born))
                // a count restarted after the connection's first stream misses the first
                && (first_stream == 0 || d.born < first_stream)
        });
        // the stream opens after this: the wire can't be past it yet (else a stream that went
        // uncounted took an id)
        let stream_id = counted
            .and_then(|d| d.stream_id())
            .filter(|id| *id > self.wire_max.load(Ordering::Acquire));
        if let (Some(d), Some(_), 0) = (counted, stream_id, task) {
            self.task_born.store(d.born, Ordering::Release);
            self.task.store(d.task, Ordering::Release);
        }
        let wire_open = self.wire_open.load(Ordering::Acquire);
        let wire_opened = self.wire_opened.load(Ordering::Acquire);
        let exact = counted.filter(|_| stream_id.is_some());
        let (reused, streams_in_flight) = match exact {
            // every request counted before this one opened its stream; those that closed on
            // the wire, or never reached it, are done
            Some(d) => {
                let before = d.ordinal - 1;
                let closed = wire_opened.saturating_sub(u64::from(wire_open))
                    + self.wire_skipped.load(Ordering::Acquire);
                let in_flight = before.saturating_sub(closed);
                (before > 0, u32::try_from(in_flight).unwrap_or(u32::MAX))
            }
            None => (st.opened > 0 || wire_opened > 0, wire_open),
        };
        let dialler = self.dialled_for == Some(ctx.id());
        let was_idle = streams_in_flight == 0 && (reused || !dialler);
        let idle_since = st.idle_since;
        // a request refused before its stream opens names none, and that is exact
        let derived = (opens_stream && exact.is_none()).then_some(Derived::Http2StreamUnknown);
        st.opened += 1;
        let weak = Arc::downgrade(ctx);
        if let Some(id) = stream_id {
            st.mapped.insert(id, weak.clone());
            self.mapped_now.store(st.mapped.len(), Ordering::Release);
        }
        if st.attached.len() >= 64 && st.attached.len().is_power_of_two() {
            st.attached.retain(|w| w.strong_count() > 0);
        }
        st.attached.push(weak);
        drop(st);
        ctx.got_conn(|at| GotConnInfo {
            at,
            reused,
            was_idle,
            idle_time: match was_idle {
                true => at.saturating_duration_since(idle_since),
                false => Duration::ZERO,
            },
            conn_id: self.conn_id,
            local_addr: self.addrs.local,
            remote_addr: self.addrs.remote,
            http2: Some(Http2Stream {
                stream_id,
                streams_in_flight,
                waited_for_connect: !dialler && ctx.start() < self.preface_at,
            }),
            derived,
        });
    }

    /// The streams mapped changed (under the lock): how many now.
    pub(super) fn mapped_changed(&self, st: &H2State) {
        self.mapped_now.store(st.mapped.len(), Ordering::Release);
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
