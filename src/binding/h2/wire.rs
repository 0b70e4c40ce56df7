//! An HTTP/2 connection's IO side: the frames both ways, and the streams they open and close on
//! the wire, reported to the request each stream was registered for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::conn::{H2Conn, H2State};
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
    /// The HTTP/2 side of connection `conn_id`, dialled for `dialled_for`, whose client preface
    /// is being written now.
    pub(crate) fn new(conn_id: u64, dialled_for: Option<RequestId>, addrs: ConnAddrs) -> Self {
        let now = Instant::now();
        let shared = Arc::new(H2Conn {
            conn_id,
            dialled_for,
            preface_at: now,
            addrs,
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
        if let Some(key) = addrs.key() {
            registry::register(key, &shared);
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

    /// The connection both tasks share.
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<H2Conn> {
        &self.wire.shared
    }

    /// How many streams the connection opened on the wire.
    pub(crate) fn streams_opened(&self) -> u64 {
        self.wire.shared.wire_opened.load(Ordering::Relaxed)
    }

    /// Bytes were written (accepted by the transport).
    pub(crate) fn wrote(&mut self, bytes: &[u8]) {
        let at = Instant::now();
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
        let at = Instant::now();
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
        if let Some(key) = shared.addrs.key() {
            registry::unregister(key, shared);
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

    /// An HTTP/2 connection past its preface, and `n` requests of a layer that traces all,
    /// not registered yet.
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
            .map(|rec| {
                let facts = RequestFacts {
                    all_traced: true,
                    ..RequestFacts::starting_now()
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
}
