//! What the pictures draw of each request, computed from its events.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::event::{Event, RequestId};

/// One phase of a request: a named span of time, and what to say of it.
#[derive(Debug, Clone)]
pub(super) struct Slice {
    pub(super) name: &'static str,
    pub(super) start: Instant,
    pub(super) end: Instant,
    pub(super) detail: String,
}

impl Slice {
    pub(super) fn len(&self) -> Duration {
        self.end.saturating_duration_since(self.start)
    }
}

/// The connection a request got.
#[derive(Debug, Clone)]
pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) reused: bool,
    pub(super) stream: Option<u32>,
    pub(super) local: Option<SocketAddr>,
    pub(super) remote: Option<SocketAddr>,
    pub(super) at: Instant,
}

/// One request, as the pictures draw it.
#[derive(Debug, Clone)]
pub(super) struct View {
    pub(super) id: RequestId,
    /// `GET http://...`
    pub(super) label: String,
    pub(super) start: Instant,
    pub(super) end: Instant,
    /// How it ended: `ResponseBodyDone`, `RequestFailed`, ... or `None` while in progress.
    pub(super) ended: Option<&'static str>,
    pub(super) failed: bool,
    pub(super) status: Option<u16>,
    pub(super) version: Option<http::Version>,
    pub(super) conn: Option<Conn>,
    /// Before it had a connection: `wait`, and its own dial's `dns`, `connect`, `tls`.
    pub(super) before: Vec<Slice>,
    /// On its connection: `write`, `server`, `body`.
    pub(super) on_conn: Vec<Slice>,
    /// `GoAway`, `StreamReset`: instant, name, detail.
    pub(super) instants: Vec<(Instant, &'static str, String)>,
    /// The connection its own dial made, and when.
    pub(super) dialled: Option<(u64, Instant)>,
}

impl View {
    /// Every slice of the request, before its connection first.
    pub(super) fn slices(&self) -> impl Iterator<Item = &Slice> {
        self.before.iter().chain(&self.on_conn)
    }
}

/// The views of `requests`, in start order.
pub(super) fn views(requests: &[(RequestId, Vec<Event>)]) -> Vec<View> {
    let mut out: Vec<View> = requests
        .iter()
        .filter_map(|(id, events)| view(*id, events))
        .collect();
    out.sort_by_key(|v| v.start);
    out
}

fn view(id: RequestId, events: &[Event]) -> Option<View> {
    let Some(Event::GetConn(get)) = events.first() else {
        return None;
    };
    let start = get.at;
    let last = events.iter().map(Event::at).max().unwrap_or(start);
    let mut v = View {
        id,
        label: format!("{} {}", get.method, get.uri),
        start,
        end: last,
        ended: None,
        failed: false,
        status: None,
        version: None,
        conn: None,
        before: Vec::new(),
        on_conn: Vec::new(),
        instants: Vec::new(),
        dialled: None,
    };
    // open starts, by kind, until their Done
    let (mut dns, mut tls) = (None, None);
    let mut connects: Vec<(Option<SocketAddr>, Instant)> = Vec::new();
    let (mut wrote, mut first_byte, mut headers) = (None, None, None);
    for e in events {
        match e {
            Event::DnsStart(s) => dns = Some((s.at, s.host.clone())),
            Event::DnsDone(d) => {
                if let Some((at, host)) = dns.take() {
                    let ips: Vec<String> = d.addrs.iter().map(ToString::to_string).collect();
                    let detail = match &d.error {
                        Some(err) => format!("{host}: {err}"),
                        None => format!("{host} -> {}", ips.join(", ")),
                    };
                    v.before.push(slice("dns", at, d.at, detail));
                }
            }
            Event::ConnectStart(s) => connects.push((s.addr, s.at)),
            Event::ConnectDone(d) => {
                let open = connects
                    .iter()
                    .position(|(a, _)| a.is_some() && *a == d.addr)
                    .or_else(|| connects.iter().position(|(a, _)| a.is_none()))
                    .or(if connects.is_empty() { None } else { Some(0) });
                if let Some(i) = open {
                    let (_, at) = connects.remove(i);
                    let to = d.addr.map_or_else(|| "?".to_owned(), |a| a.to_string());
                    let detail = match (&d.error, d.conn_id) {
                        (Some(err), _) => format!("{to}: {err}"),
                        (None, Some(c)) => format!("{to}: connection #{c}"),
                        (None, None) => to,
                    };
                    v.before.push(slice("connect", at, d.at, detail));
                }
                if let (None, Some(c)) = (&d.error, d.conn_id) {
                    v.dialled = Some((c, d.at));
                }
            }
            Event::TlsHandshakeStart(s) => tls = Some(s.at),
            Event::TlsHandshakeDone(d) => {
                if let Some(at) = tls.take() {
                    let detail = match (&d.error, &d.state) {
                        (Some(err), _) => err.to_string(),
                        (None, Some(s)) => format!("{} {}", s.version, s.cipher_suite),
                        (None, None) => String::new(),
                    };
                    v.before.push(slice("tls", at, d.at, detail));
                }
            }
            Event::GotConn(g) => {
                v.conn = Some(Conn {
                    id: g.conn_id,
                    reused: g.reused,
                    stream: g.http2.as_ref().and_then(|h| h.stream_id),
                    local: g.local_addr,
                    remote: g.remote_addr,
                    at: g.at,
                });
            }
            Event::WroteRequest(w) => wrote = wrote.or(Some(w.at)),
            Event::GotFirstResponseByte(f) => first_byte = first_byte.or(Some(f.at)),
            Event::ResponseHeaders(h) => {
                headers = headers.or(Some(h.at));
                v.status = Some(h.status.as_u16());
                v.version = Some(h.version);
            }
            Event::GoAway(g) => v.instants.push((
                g.at,
                "GoAway",
                format!("last stream {} code {}", g.last_stream_id, g.error_code),
            )),
            Event::StreamReset(r) => v.instants.push((
                r.at,
                "StreamReset",
                format!("stream {} code {}", r.stream_id, r.error_code),
            )),
            Event::ResponseBodyDone(_) | Event::RequestFailed(_) | Event::RequestCanceled(_) => {
                v.ended = Some(e.name());
                v.failed = e.error().is_some();
                v.end = e.at();
            }
            _ => {}
        }
    }
    let got = v.conn.as_ref().map(|c| c.at);
    let wait_end = got.unwrap_or(v.end);
    v.before.insert(
        0,
        slice("wait", start, wait_end, "before a connection".to_owned()),
    );
    if let Some(got) = got {
        let mut at = got;
        let first = first_byte.or(headers);
        for (name, to, detail) in [
            ("write", wrote, "the request written"),
            ("server", first, "waiting for the first response byte"),
            ("body", Some(v.end), "the response read"),
        ] {
            let Some(to) = to.filter(|to| *to >= at) else {
                continue;
            };
            v.on_conn.push(slice(name, at, to, detail.to_owned()));
            at = to;
        }
    }
    Some(v)
}

fn slice(name: &'static str, start: Instant, end: Instant, detail: String) -> Slice {
    Slice {
        name,
        start,
        end: end.max(start),
        detail,
    }
}

/// The phases drawn, in order, with their colour.
pub(super) const PHASES: [(&str, &str); 7] = [
    ("wait", "#b0bec5"),
    ("dns", "#26a69a"),
    ("connect", "#ffa726"),
    ("tls", "#ab47bc"),
    ("write", "#42a5f5"),
    ("server", "#66bb6a"),
    ("body", "#ef5350"),
];

/// Milliseconds, three decimals.
pub(super) fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}
