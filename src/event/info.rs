//! What each event tells: one info struct per event, and the values they carry.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode, Version};

use crate::error::SharedError;

/// `GetConn`: the request is about to get a connection, from the pool or by dialling.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GetConnInfo {
    /// When it happened.
    pub at: Instant,
    /// The request's method.
    pub method: http::Method,
    /// The request's URI, as the caller gave it.
    pub uri: http::Uri,
}

impl GetConnInfo {
    /// The `host:port` the request is for (the scheme's default port when the URI has none), as
    /// Go's `GetConn` reports it.
    ///
    /// ```
    /// # use httptrace::{Event, Recorder};
    /// # let rec = Recorder::new();
    /// for e in rec.events() {
    ///     if let Event::GetConn(i) = e {
    ///         println!("{} {}", i.method, i.host_port());
    ///     }
    /// }
    /// ```
    pub fn host_port(&self) -> String {
        crate::util::host_port(&self.uri)
    }
}

/// `DNSStart`: a name lookup starts (not for IP literals).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DnsStartInfo {
    /// When it happened.
    pub at: Instant,
    /// The name looked up.
    pub host: String,
}

/// `DNSDone`: the name lookup ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DnsDoneInfo {
    /// When it happened.
    pub at: Instant,
    /// The addresses found, in the resolver's order (empty on error).
    pub addrs: Vec<IpAddr>,
    /// The resolver's error, or [`Canceled`](crate::error::Canceled) if the lookup was dropped.
    pub error: Option<SharedError>,
}

/// `ConnectStart`: the connector starts connecting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectStartInfo {
    /// When it happened.
    pub at: Instant,
    /// `"tcp"`.
    pub network: &'static str,
    /// The address dialled, when it is known before dialling: an IP literal, the only address
    /// the lookup returned, or the address of this attempt (per-address connects).
    pub addr: Option<SocketAddr>,
}

/// `ConnectDone`: the connector finished, with a connection or an error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectDoneInfo {
    /// When it happened.
    pub at: Instant,
    /// `"tcp"`.
    pub network: &'static str,
    /// The remote address connected to (when the connection reports it).
    pub addr: Option<SocketAddr>,
    /// The local address of the new connection (when the connection reports it).
    pub local_addr: Option<SocketAddr>,
    /// The id of the new connection, as [`GotConnInfo::conn_id`] will name it.
    pub conn_id: Option<u64>,
    /// The connector's error, or [`Canceled`](crate::error::Canceled) if the connect was dropped.
    pub error: Option<SharedError>,
}

/// `TLSHandshakeStart`: the TLS handshake starts, right after the transport connected.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsHandshakeStartInfo {
    /// When it happened.
    pub at: Instant,
    /// The server name the client is about to send (SNI), when known.
    pub server_name: Option<String>,
}

/// What a TLS handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsState {
    /// The protocol version, e.g. `"TLSv1.3"`.
    pub version: String,
    /// The ALPN protocol agreed, e.g. `b"h2"`, if any.
    pub alpn: Option<Vec<u8>>,
    /// The cipher suite, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher_suite: String,
    /// The server's certificate chain, DER, leaf first.
    pub peer_certificates: Vec<Vec<u8>>,
    /// The server name sent (SNI), when known.
    pub server_name: Option<String>,
    /// The session was resumed (no full handshake).
    pub resumed: bool,
}

/// `TLSHandshakeDone`: the TLS handshake ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsHandshakeDoneInfo {
    /// When it happened.
    pub at: Instant,
    /// What was negotiated, when the handshake succeeded and the TLS stack tells it.
    pub state: Option<TlsState>,
    /// The handshake's error (untrusted certificate, name mismatch...), or
    /// [`Canceled`](crate::error::Canceled) if it was dropped.
    pub error: Option<SharedError>,
}

/// `GotConn`: the request got its connection; nothing is written yet.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GotConnInfo {
    /// When it happened.
    pub at: Instant,
    /// The connection carried requests before this one.
    pub reused: bool,
    /// The connection came from the idle pool (it was not dialled for this request, or it served
    /// others before).
    pub was_idle: bool,
    /// How long it sat idle (zero when not idle).
    pub idle_time: Duration,
    /// The connection's id, unique in the process.
    pub conn_id: u64,
    /// The local address, when the connection reports it.
    pub local_addr: Option<SocketAddr>,
    /// The remote address, when the connection reports it.
    pub remote_addr: Option<SocketAddr>,
    /// On an HTTP/2 connection: the stream that carries the request, and the connection's state
    /// when it was opened. `None` on HTTP/1.
    pub http2: Option<Http2Stream>,
    /// `None` when every field is exact; else what the event was derived from, and so which
    /// fields are approximate (e.g. through reqwest, whose pool is private).
    pub derived: Option<Derived>,
}

/// What a [`GotConnInfo`] was derived from, where httptrace could not observe the connection
/// being taken: which of its fields are approximate. Its `Display` says it in a sentence.
///
/// ```
/// use httptrace::event::Derived;
///
/// assert!(Derived::Reqwest.to_string().starts_with("reqwest"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Derived {
    /// An HTTP/2 request whose stream can't be told: a request sent on the client around the
    /// layer took a stream id nobody counted (or, rarely, the count of the connection's streams
    /// was lost). The stream id is unknown, `reused` and `streams_in_flight` count the streams
    /// seen on the wire and those of traced requests (a stream not yet written is missed), and
    /// the request gets no wire events.
    Http2StreamUnknown,
    /// reqwest, whose pool is private: the connection is the one the response's `HttpInfo`
    /// names; `reused`/`was_idle` mean "not made by this request's own connect"; `idle_time`
    /// is unknown (zero); `at` is the request's last event before it: the end of its own
    /// connect (its TLS handshake included), or else its start, or a step of its own connect
    /// that another connection outran.
    Reqwest,
    /// reqwest over HTTP/2: as [`Derived::Reqwest`], and the stream id, the streams in flight
    /// and whether it waited for a connect are unknown (`None`, 0, `false`).
    ReqwestHttp2,
}

impl fmt::Display for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Derived::Http2StreamUnknown => {
                "HTTP/2, the stream unknown (a request around the layer took an id): `reused` \
                 and `streams_in_flight` count the streams on the wire and those of traced \
                 requests (a stream not yet written is missed)"
            }
            Derived::Reqwest => {
                "reqwest: the connection from the response's HttpInfo; `reused`/`was_idle` mean \
                 \"not made by this request's connect\"; `idle_time` is unknown (zero); `at` is \
                 the connect's end or the request's start"
            }
            Derived::ReqwestHttp2 => {
                "reqwest, HTTP/2: the connection from the response's HttpInfo; `reused` means \
                 \"not made by this request's connect\"; `at` is the connect's end or the \
                 request's start; the stream id, streams in flight and waiting are unknown \
                 (None, 0, false)"
            }
        })
    }
}

/// The HTTP/2 side of [`GotConnInfo`]: the request's stream and its connection at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Http2Stream {
    /// The stream's id: known when every request on the connection went through a
    /// [`TraceLayer`](crate::TraceLayer), traced or not (see [HTTP/2](crate::TraceLayer#http2)).
    /// Otherwise `None`, and the request gets no wire events of its own (`WroteHeaders`,
    /// `WroteRequest`, `GotFirstResponseByte`). If a stream that went around the layer shows on
    /// the wire later, the mapping stops: a request named before then gets no more wire events,
    /// rather than risk wrong ones.
    pub stream_id: Option<u32>,
    /// The streams open on the connection when this one was opened, not counting it: opened by
    /// hyper and not yet closed on the wire.
    pub streams_in_flight: u32,
    /// The request waited for a connection another request was dialling (it neither dialled it
    /// nor found it ready).
    pub waited_for_connect: bool,
}

/// `Http2Ready` (beyond Go): an HTTP/2 connection is up: the client's preface and settings are
/// written and the server's first `SETTINGS` frame was read.
///
/// Reported to the request that dialled the connection (if still in progress) and to the
/// connector's [`observe_connections`](crate::TracingConnector::observe_connections) trace.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Http2ReadyInfo {
    /// When it happened: the server's `SETTINGS` frame was read.
    pub at: Instant,
    /// The connection's id.
    pub conn_id: u64,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, if it sent one.
    pub max_concurrent_streams: Option<u32>,
    /// The server's `SETTINGS_INITIAL_WINDOW_SIZE`, if it sent one.
    pub initial_window_size: Option<u32>,
    /// The server's `SETTINGS_MAX_FRAME_SIZE`, if it sent one.
    pub max_frame_size: Option<u32>,
}

/// `GoAway` (beyond Go): the server sent `GOAWAY` on an HTTP/2 connection: streams above
/// `last_stream_id` will not be processed, and no new stream opens on it.
///
/// Reported to the requests with a stream open on the connection, to the one that dialled it (if
/// in progress), and to the connector's
/// [`observe_connections`](crate::TracingConnector::observe_connections) trace.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GoAwayInfo {
    /// When the frame was read.
    pub at: Instant,
    /// The connection's id.
    pub conn_id: u64,
    /// The last stream the server processed or may process.
    pub last_stream_id: u32,
    /// The HTTP/2 error code (`0`: `NO_ERROR`, a graceful shutdown).
    pub error_code: u32,
}

/// `StreamReset` (beyond Go): the request's HTTP/2 stream was reset (`RST_STREAM`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamResetInfo {
    /// When the frame was read or written.
    pub at: Instant,
    /// The connection's id.
    pub conn_id: u64,
    /// The stream's id.
    pub stream_id: u32,
    /// The HTTP/2 error code (e.g. `8`: `CANCEL`, `7`: `REFUSED_STREAM`).
    pub error_code: u32,
    /// The server reset it (else the client did, e.g. because the request was dropped).
    pub by_server: bool,
}

/// `WroteHeaders`: the request line and headers are written to the connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WroteHeadersInfo {
    /// When it happened.
    pub at: Instant,
}

/// `WroteRequest`: the whole request (headers and body) is written, or writing it failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WroteRequestInfo {
    /// When it happened.
    pub at: Instant,
    /// The write error, if writing failed.
    pub error: Option<SharedError>,
}

/// `Got100Continue`: the server answered `100 Continue`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Got100ContinueInfo {
    /// When it happened.
    pub at: Instant,
}

/// `Got1xxResponse`: an informational response (`100 Continue` included, `103 Early Hints`...).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Got1xxResponseInfo {
    /// When the read that brought it completed (hyper parses what a read brings before it reads
    /// again).
    pub at: Instant,
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
}

/// `GotFirstResponseByte`: the first byte of the response was read from the connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GotFirstResponseByteInfo {
    /// When it happened.
    pub at: Instant,
}

/// `ResponseHeaders` (beyond Go): the response head reached the caller.
///
/// On HTTP/1, whose reads are followed, it is stamped at the read that brought the head: the
/// exchange's last read before the head reached the caller (a read of the body too, if hyper
/// read on first), or the request's previous event if that came later (an upload that ended
/// after an early answer was read); always between the head's read and its arrival. Without
/// the wire (reqwest, an HTTP/2 stream), when it reached the caller. Stamped at its arrival,
/// it would come after `PutIdleConn` (the last read) for a response read in one go, whose
/// connection hyper-util puts back, and may hand to the next request, before the head
/// reaches the caller.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResponseHeadersInfo {
    /// When the head was read (see above).
    pub at: Instant,
    /// The response status.
    pub status: StatusCode,
    /// The response version.
    pub version: Version,
}

/// `ResponseBodyDone` (beyond Go): the response body ended, failed, or was dropped before its end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResponseBodyDoneInfo {
    /// When it happened.
    pub at: Instant,
    /// The body bytes the caller received.
    pub bytes: u64,
    /// The body's error, or [`Canceled`](crate::error::Canceled) if it was dropped before its end.
    pub error: Option<SharedError>,
}

/// `Redirect` (beyond Go): the client follows a redirect; the events after it belong to the next
/// hop. Reported by the redirect policy of `httptrace::reqwest` (feature `reqwest`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedirectInfo {
    /// When it happened.
    pub at: Instant,
    /// The redirect's status.
    pub status: StatusCode,
    /// The URL redirected to.
    pub to: String,
    /// The hop that follows: 1 for the first redirect.
    pub hop: usize,
}

/// `PutIdleConn`: the connection can go back to the idle pool after this request (keep-alive on
/// both sides, and it didn't close). Not for a connection the response hands over: an upgrade
/// (`101 Switching Protocols`) or a tunnel (a `CONNECT` answered with success).
///
/// It is decided when the end of the response is read; hyper-util decides a moment later, once
/// hyper has read what follows. A connection not reported put back never is, but one that is
/// may still be dropped if the server closes it, or sends bytes nobody asked for (a stray
/// `103`), right after the response: measured 0 to 2 times in 30 for a close at once, 7 to 9
/// in 30 for a stray `103` (the README's "Reliability").
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PutIdleConnInfo {
    /// When the end of the response was read from the connection (or the request's previous
    /// event, if later: an upload that ended after it). It is delivered when the body reaches
    /// its end, right before `ResponseBodyDone`, but stamped at the read: hyper-util may hand
    /// the connection to the next request before the body reaches the caller.
    pub at: Instant,
    /// The connection's id.
    pub conn_id: u64,
}

/// `RequestFailed` (beyond Go): the client returned an error instead of a response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestFailedInfo {
    /// When it happened.
    pub at: Instant,
    /// The error (a [`RequestError`](crate::error::RequestError)).
    pub error: SharedError,
}

/// `RequestCanceled` (beyond Go): the response future was dropped before it completed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestCanceledInfo {
    /// When it happened.
    pub at: Instant,
    /// A [`Canceled`](crate::error::Canceled).
    pub error: SharedError,
}

/// `ConnectionClosed` (beyond Go): the connection that served this request closed.
///
/// Reported to the last request the connection served, if that request is still in progress; on
/// HTTP/2 to every request given the connection that is still in progress. On HTTP/1, once the
/// response has begun, a close is told only if the response then fails, right before the
/// request's last event (its `at` stays the close's instant); a close that follows a complete
/// response (`Connection: close`) closes no exchange and isn't reported, over TLS and TCP alike.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionClosedInfo {
    /// When it happened.
    pub at: Instant,
    /// The connection's id.
    pub conn_id: u64,
    /// How many requests it served (on HTTP/2: how many streams it opened).
    pub requests: u64,
    /// How long it lived.
    pub lifetime: Duration,
    /// The I/O error that ended it, if any.
    pub error: Option<SharedError>,
}
