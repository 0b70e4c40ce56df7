//! HTTP/2 frame headers, read off the bytes of one direction of a connection (RFC 9113, 4.1):
//! 9 bytes each (length, type, flags, stream id), then the payload, skipped but for the first
//! bytes of the few frames whose payload tells something (`SETTINGS`, `RST_STREAM`, `GOAWAY`).

/// `DATA`
pub(crate) const DATA: u8 = 0x0;
/// `HEADERS`
pub(crate) const HEADERS: u8 = 0x1;
/// `RST_STREAM`
pub(crate) const RST_STREAM: u8 = 0x3;
/// `SETTINGS`
pub(crate) const SETTINGS: u8 = 0x4;
/// `GOAWAY`
pub(crate) const GOAWAY: u8 = 0x7;
/// `CONTINUATION`
pub(crate) const CONTINUATION: u8 = 0x9;

/// `END_STREAM` (on `DATA` and `HEADERS`); `ACK` on `SETTINGS`.
pub(crate) const END_STREAM: u8 = 0x1;
/// `ACK` (on `SETTINGS` and `PING`).
pub(crate) const ACK: u8 = 0x1;
/// `END_HEADERS` (on `HEADERS` and `CONTINUATION`).
pub(crate) const END_HEADERS: u8 = 0x4;

/// The client connection preface (RFC 9113, 3.4), which precedes the client's first frame.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Payload bytes kept: enough for 10 settings, `RST_STREAM`'s code, `GOAWAY`'s ids and code.
const KEPT: usize = 60;

/// One frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHead {
    pub(crate) len: u32,
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
}

impl FrameHead {
    fn parse(b: &[u8; 9]) -> Self {
        Self {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// What [`FrameReader::feed`] saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen<'a> {
    /// A frame's header is complete.
    Start(FrameHead),
    /// A frame is complete, with the first bytes of its payload (for the frames that matter).
    End(FrameHead, &'a [u8]),
}

/// Reads frame boundaries off a byte stream given in pieces of any size.
#[derive(Debug)]
pub(crate) struct FrameReader {
    /// Bytes still to skip before the first frame (the client's preface).
    skip: usize,
    head: [u8; 9],
    head_len: usize,
    frame: Option<FrameHead>,
    left: u32,
    kept: [u8; KEPT],
    kept_len: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self {
            skip: 0,
            head: [0; 9],
            head_len: 0,
            frame: None,
            left: 0,
            kept: [0; KEPT],
            kept_len: 0,
        }
    }
}

impl FrameReader {
    /// A reader of the client's side: frames follow the preface.
    pub(crate) fn after_preface() -> Self {
        Self {
            skip: PREFACE.len(),
            ..Self::default()
        }
    }

    /// Feeds the next bytes of the stream; `on` sees each frame start and end, in order.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], mut on: impl FnMut(Seen<'_>)) {
        if self.skip > 0 {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            bytes = &bytes[n..];
        }
        loop {
            if let Some(frame) = self.frame {
                // inside a payload that began in earlier bytes
                let (now, rest) = bytes.split_at((self.left as usize).min(bytes.len()));
                if keeps(frame.kind) {
                    self.keep(now);
                }
                self.left -= now.len() as u32;
                bytes = rest;
                if self.left > 0 {
                    return;
                }
                self.frame = None;
                on(Seen::End(frame, &self.kept[..self.kept_len]));
            }
            // at a frame's start
            let head = match bytes.split_first_chunk::<9>() {
                // the common case: the whole header is here
                Some((head, rest)) if self.head_len == 0 => {
                    bytes = rest;
                    FrameHead::parse(head)
                }
                _ => {
                    let n = (9 - self.head_len).min(bytes.len());
                    let (now, rest) = bytes.split_at(n);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(now);
                    self.head_len += n;
                    bytes = rest;
                    if self.head_len < 9 {
                        return;
                    }
                    self.head_len = 0;
                    FrameHead::parse(&self.head)
                }
            };
            on(Seen::Start(head));
            let len = head.len as usize;
            if len <= bytes.len() && !keeps(head.kind) {
                // the common case again: the whole payload is here, and nothing of it is kept
                bytes = &bytes[len..];
                on(Seen::End(head, &[]));
                continue;
            }
            self.frame = Some(head);
            self.left = head.len;
            self.kept_len = 0;
        }
    }

    /// Keeps what fits of a payload's next bytes.
    fn keep(&mut self, bytes: &[u8]) {
        let k = bytes.len().min(KEPT - self.kept_len);
        self.kept[self.kept_len..self.kept_len + k].copy_from_slice(&bytes[..k]);
        self.kept_len += k;
    }
}

/// The frames whose payload is read: the start of it, `KEPT` bytes at most.
fn keeps(kind: u8) -> bool {
    matches!(kind, SETTINGS | RST_STREAM | GOAWAY)
}

/// The settings of a `SETTINGS` payload: (identifier, value) pairs.
pub(crate) fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

/// The first big-endian `u32` at `at` (stream ids masked by the caller), if the payload has it.
pub(crate) fn u32_at(payload: &[u8], at: usize) -> Option<u32> {
    let b = payload.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = len.to_be_bytes()[1..].to_vec();
        v.push(kind);
        v.push(flags);
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn seen(reader: &mut FrameReader, bytes: &[u8], step: usize) -> Vec<String> {
        let mut out = Vec::new();
        for piece in bytes.chunks(step.max(1)) {
            reader.feed(piece, |s| {
                out.push(match s {
                    Seen::Start(h) => format!("start {} {} {}", h.kind, h.flags, h.stream),
                    Seen::End(h, p) => format!("end {} {} {:?}", h.kind, h.stream, p),
                })
            });
        }
        out
    }

    #[test]
    fn frames_split_anywhere_read_the_same() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
        bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"hpack"));
        bytes.extend(frame(DATA, END_STREAM, 3, b""));
        bytes.extend(frame(RST_STREAM, 0, 5, &8u32.to_be_bytes()));
        bytes.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 5, 0, 0, 0, 0, b'x']));
        // an empty frame whose payload is kept, and a long one that is skipped
        bytes.extend(frame(SETTINGS, ACK, 0, b""));
        bytes.extend(frame(DATA, 0, 7, &[b'd'; 100]));
        let expected = [
            "start 4 0 0",
            "end 4 0 [0, 3, 0, 0, 0, 100]",
            "start 1 5 1",
            "end 1 1 []",
            "start 0 1 3",
            "end 0 3 []",
            "start 3 0 5",
            "end 3 5 [0, 0, 0, 8]",
            "start 7 0 0",
            "end 7 0 [0, 0, 0, 5, 0, 0, 0, 0, 120]",
            "start 4 1 0",
            "end 4 0 []",
            "start 0 0 7",
            "end 0 7 []",
        ];
        for step in [1, 2, 5, 9, 10, 24, 25, 108, 109, 1000] {
            let mut r = FrameReader::after_preface();
            assert_eq!(seen(&mut r, &bytes, step), expected, "in pieces of {step}");
        }
        let (id, value) = settings(&[0, 3, 0, 0, 0, 100]).next().unwrap();
        assert_eq!((id, value), (3, 100));
        assert_eq!(u32_at(&[0, 0, 0, 5, 0, 0, 0, 2], 4), Some(2));
        assert_eq!(u32_at(&[0, 0, 0], 0), None);
    }
}
