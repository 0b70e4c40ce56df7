//! An HTTP/2 connection's IO side: the frames both ways, and the streams they open and close on
//! the wire, reported to the request each stream was registered for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::conn::{H2Conn, H2State};
use super::dispatch;
use super::frames::{self, FrameReader, Seen};
use super::hash::OwnHasher;
use super::registry;
use crate::binding::request::RequestCtx;
use crate::event::*;
use crate::trace::ClientTrace;
use crate::util::ConnAddrs;

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
    streams: HashMap<u32, WireStream, OwnHasher>,
    /// The server's first `SETTINGS` was read.
    ready: bool,
}

#[derive(Debug, Default)]
struct WireStream {
    /// The traced request the stream was registered for, if any (found once, as it opens).
    req: Option<Weak<RequestCtx>>,
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
    /// The HTTP/2 side of connection `conn_id`, dialled for `dialled_for`, whose client preface
    /// is being written now.
    pub(crate) fn new(conn_id: u64, dialled_for: Option<RequestId>, addrs: ConnAddrs) -> Self {
        let now = crate::util::now();
        let shared = Arc::new(H2Conn {
            conn_id,
            dialled_for,
            preface_at: now,
            addrs,
            live: AtomicBool::new(true),
            wire_open: Default::default(),
            wire_opened: AtomicU64::new(0),
            wire_max: Default::default(),
            wire_skipped: AtomicU64::new(0),
            first_stream: AtomicU64::new(0),
            task: AtomicU64::new(0),
            task_born: AtomicU64::new(0),
            mapped_now: AtomicUsize::new(0),
            state: Mutex::new(H2State {
                exact: true,
                opened: 0,
                mapped: Default::default(),
                attached: Vec::new(),
                idle_since: now,
            }),
        });
        registry::register(addrs.key(), &shared);
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

    /// The connection both tasks share.
    pub(crate) fn shared(&self) -> &Arc<H2Conn> {
        &self.wire.shared
    }

    /// How many streams the connection opened on the wire.
    pub(crate) fn streams_opened(&self) -> u64 {
        self.wire.shared.wire_opened.load(Ordering::Relaxed)
    }

    /// Bytes were written (accepted by the transport).
    pub(crate) fn wrote(&mut self, bytes: &[u8]) {
        let at = crate::util::now();
        let H2Side { out, wire, .. } = self;
        out.feed(bytes, |seen| {
            if let Seen::End(head, payload) = seen {
                wire.sent(head, payload, at);
            }
        });
    }

    /// Bytes were read; the connection's life is told to the request that dialled it and to
    /// the connector's observer.
    pub(crate) fn read(
        &mut self,
        bytes: &[u8],
        dialler: Option<&Weak<RequestCtx>>,
        observer: Option<&ClientTrace>,
    ) {
        let at = crate::util::now();
        let H2Side { inn, wire, .. } = self;
        inn.feed(bytes, |seen| match seen {
            Seen::Start(head) => wire.frame_started(head, at),
            Seen::End(head, payload) => wire.received(head, payload, at, dialler, observer),
        });
    }

    /// The connection closed: `event` (its `ConnectionClosed`) goes to the requests given it
    /// and to the observer, and its name is free.
    pub(crate) fn closed(&self, event: &Event, observer: Option<&ClientTrace>) {
        let shared = &self.wire.shared;
        shared.live.store(false, Ordering::Release);
        self.wire.tell(event, true, None, observer);
        let task = shared.task.load(Ordering::Acquire);
        if task != 0 {
            dispatch::release(task, shared.task_born.load(Ordering::Acquire));
        }
        registry::unregister(shared.addrs.key(), shared);
    }
}

impl WireState {
    /// A stream closed both ways (or was reset): it leaves the wire and the map.
    fn close_stream(&mut self, id: u32, at: Instant) {
        let Some(ws) = self.streams.remove(&id) else {
            return;
        };
        let shared = &self.shared;
        let left = shared.wire_open.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 || ws.req.is_some() {
            let mut st = shared.lock();
            if ws.req.is_some() && st.mapped.remove(&id).is_some() {
                shared.mapped_changed(&st);
            }
            if left == 0 {
                st.idle_since = at;
            }
        }
    }

    /// The traced request of open stream `id`, if any.
    fn request(&self, id: u32) -> Option<Arc<RequestCtx>> {
        self.streams.get(&id)?.req.as_ref()?.upgrade()
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
                    if let Some(ctx) = self.request(id) {
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
                if let Some(ctx) = self.request(id) {
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
        if let Some(ctx) = self.request(id) {
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
        if id > first {
            let never = u64::from((id - first) / 2);
            shared.wire_skipped.fetch_add(never, Ordering::AcqRel);
        }
        shared.wire_open.fetch_add(1, Ordering::AcqRel);
        shared.wire_opened.fetch_add(1, Ordering::AcqRel);
        shared.wire_max.store(id, Ordering::Release);
        if shared.first_stream.load(Ordering::Relaxed) == 0 {
            shared
                .first_stream
                .store(dispatch::next_seq(), Ordering::Release);
        }
        let task = shared.task.load(Ordering::Acquire);
        // a stream past every request counted on the dispatch task went around the count
        let uncounted = task != 0
            && dispatch::counted(task, shared.task_born.load(Ordering::Acquire))
                .is_some_and(|n| u64::from(id) > n.saturating_mul(2).saturating_sub(1));
        let mut req = None;
        if uncounted || shared.mapped_now.load(Ordering::Acquire) > 0 {
            let mut st = shared.lock();
            if uncounted && st.exact {
                // the counts no longer tell the stream ids: nothing is mapped any more
                st.exact = false;
                st.mapped.clear();
                for ws in self.streams.values_mut() {
                    ws.req = None;
                }
            }
            if !st.mapped.is_empty() {
                req = st.mapped.get(&id).cloned();
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
            shared.mapped_changed(&st);
        }
        self.streams.insert(
            id,
            WireStream {
                req,
                ..WireStream::default()
            },
        );
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
        if let Some(ctx) = self.request(head.stream) {
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
                if self.shared.mapped_now.load(Ordering::Acquire) > 0 {
                    let mut st = self.shared.lock();
                    st.mapped.retain(|k, _| *k <= last);
                    self.shared.mapped_changed(&st);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::exchange::ConnSide;
    use crate::binding::request::RequestFacts;
    use crate::Recorder;

    /// A client frame's 9-byte header, and no payload.
    fn frame(kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut f = vec![0, 0, 0, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f
    }

    /// An HTTP/2 connection past its preface, and `n` traced requests, not registered yet.
    fn h2_conn_and_requests(
        n: usize,
    ) -> (ConnSide, Arc<H2Conn>, Vec<Recorder>, Vec<Arc<RequestCtx>>) {
        let mut conn = ConnSide::new(1, None);
        conn.before_write(frames::PREFACE, ConnAddrs::default);
        conn.h2_wrote(frames::PREFACE);
        let shared = conn.h2_shared().unwrap();
        let recs: Vec<Recorder> = (0..n).map(|_| Recorder::new()).collect();
        let ctxs = recs
            .iter()
            .map(|rec| RequestCtx::with_facts(rec.trace(), RequestFacts::starting_now()))
            .collect();
        (conn, shared, recs, ctxs)
    }

    /// A dispatch task of its own for each test (the table is the process's).
    fn task(test: u64) -> u64 {
        (test << 56) | 0x00ab_cdef
    }

    /// The request's `GotConn`.
    fn got(rec: &Recorder) -> GotConnInfo {
        rec.events()
            .into_iter()
            .find_map(|e| match e {
                Event::GotConn(i) => Some(i),
                _ => None,
            })
            .expect("a GotConn")
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
            shared.open(ctx, dispatch::count_on(task(1)), true);
        }
        assert_eq!(mapped_ids(&shared), [1, 3, 5]);
        let whole = frames::END_HEADERS | frames::END_STREAM;
        conn.h2_wrote(&frame(frames::HEADERS, whole, 1));
        // hyper never sent stream 3 (its request failed): 5 opens next
        conn.h2_wrote(&frame(frames::HEADERS, whole, 5));
        assert_eq!(mapped_ids(&shared), [1, 5]);
        let written = ["GotConn", "WroteHeaders", "WroteRequest"];
        assert_eq!(recs[0].names(), written);
        assert_eq!(recs[1].names(), ["GotConn"]);
        assert_eq!(recs[2].names(), written);
        // and nothing for stream 3 reaches its request now
        conn.h2_read(&frame(frames::HEADERS, frames::END_HEADERS, 3));
        assert_eq!(recs[1].names(), ["GotConn"]);
        drop(ctxs);
    }

    #[test]
    fn the_first_stream_registered_but_never_opened_is_dropped_too() {
        let (mut conn, shared, recs, ctxs) = h2_conn_and_requests(3);
        shared.open(&ctxs[0], dispatch::count_on(task(2)), true); // predicted 1
        shared.open(&ctxs[1], dispatch::count_on(task(2)), true); // predicted 3
        let whole = frames::END_HEADERS | frames::END_STREAM;
        conn.h2_wrote(&frame(frames::HEADERS, whole, 3)); // 1 never sent
        assert_eq!(mapped_ids(&shared), [3]);
        conn.h2_read(&frame(frames::HEADERS, whole, 3)); // 3 closes
        shared.open(&ctxs[2], dispatch::count_on(task(2)), true);
        let got = got(&recs[2]);
        assert_eq!(got.http2.unwrap().streams_in_flight, 0);
        assert!(got.was_idle);
        drop(ctxs);
    }

    #[test]
    fn untraced_streams_between_traced_ones_are_counted_not_mapped() {
        let (mut conn, shared, recs, ctxs) = h2_conn_and_requests(2);
        let t = task(3);
        shared.open(&ctxs[0], dispatch::count_on(t), true); // 1
        dispatch::count_on(t).unwrap(); // 3, untraced
        dispatch::count_on(t).unwrap(); // 5, untraced
        shared.open(&ctxs[1], dispatch::count_on(t), true); // 7
        assert_eq!(mapped_ids(&shared), [1, 7]);
        let whole = frames::END_HEADERS | frames::END_STREAM;
        for id in [1, 3, 5, 7] {
            conn.h2_wrote(&frame(frames::HEADERS, whole, id));
        }
        conn.h2_read(&frame(frames::HEADERS, frames::END_HEADERS, 5));
        conn.h2_read(&frame(frames::HEADERS, frames::END_HEADERS, 7));
        assert_eq!(got(&recs[1]).http2.unwrap().stream_id, Some(7));
        assert_eq!(got(&recs[1]).http2.unwrap().streams_in_flight, 3);
        assert!(got(&recs[1]).derived.is_none());
        let all = [
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
        ];
        assert_eq!(recs[1].names(), all);
        assert_eq!(recs[0].names(), &all[..3]);
        dispatch::release(t, dispatch::count_on(t).unwrap().born);
        drop(ctxs);
    }

    #[test]
    fn a_stream_nobody_counted_ends_the_naming() {
        let (mut conn, shared, recs, ctxs) = h2_conn_and_requests(2);
        let t = task(4);
        shared.open(&ctxs[0], dispatch::count_on(t), true); // 1
        let whole = frames::END_HEADERS | frames::END_STREAM;
        conn.h2_wrote(&frame(frames::HEADERS, whole, 1));
        // stream 3 opens, but only one request was counted
        conn.h2_wrote(&frame(frames::HEADERS, whole, 3));
        assert!(mapped_ids(&shared).is_empty());
        shared.open(&ctxs[1], dispatch::count_on(t), true);
        let got = got(&recs[1]);
        assert_eq!(got.http2.unwrap().stream_id, None);
        assert_eq!(got.derived, Some(Derived::Http2StreamUnknown));
        dispatch::release(t, dispatch::count_on(t).unwrap().born);
        drop(ctxs);
    }
}
