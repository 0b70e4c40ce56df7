//! The events of a request's life: [`Event`], one info struct per event, and the [`Hooks`]
//! that receive them.
//!
//! Every info carries `at`, the [`Instant`] the event happened at on the wire or in the client,
//! which can be earlier than the moment a hook receives it.

mod info;

use std::error::Error as StdError;
use std::fmt;
use std::time::Instant;

pub use self::info::*;

/// The identity of one traced request, unique in the process: what hooks shared by many
/// requests key on ([`Hooks::on_request_event`]).
///
/// ```
/// use httptrace::event::RequestId;
///
/// fn label(id: RequestId) -> String {
///     format!("request {id}")
/// }
/// # let _ = label;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    pub(crate) const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id as a number (requests are numbered from 1 in the order they are traced).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($info:ident) => $method:ident, $name:literal, $err:ident; )*) => {
        /// One event of a request's life, owned, with the instant it happened.
        ///
        /// Go's events (but `WroteHeaderField`, and `Wait100Continue`: hyper doesn't wait for
        /// `100 Continue`), and httptrace's own (`is_go()` tells them apart). Every Start has
        /// exactly one Done, also on error and cancellation, and every traced request ends with
        /// exactly one of `ResponseBodyDone`, `RequestFailed` or `RequestCanceled`, after which
        /// nothing of it is delivered but the end of an upload the server answered before
        /// reading it all: its `WroteRequest` when it ends, then `PutIdleConn` if the
        /// connection goes back to the pool (it is not idle before). A dial the request started
        /// that goes on when another connection takes the request (hyper-util finishes it for
        /// the pool) reports what it has open ended right before `GotConn`, with
        /// [`Canceled`](crate::error::Canceled) ("the request's wait for this dial"), and lets
        /// the request's trace go; so does one still going on when the request ends, right
        /// before that last event.
        ///
        /// A request's events are delivered in the order of their instants. Each is stamped
        /// when it happened as httptrace saw it, in the column below; an event seen on the
        /// connection's or a dial's task while the request's own task delivered a later one (a
        /// race of microseconds between two threads) takes that one's instant. The HTTP/2
        /// column: *exact* as on HTTP/1; *per stream* when the request's stream is known (see
        /// [`TraceLayer`](crate::TraceLayer#http2)).
        ///
        /// | event | when (HTTP/1) | HTTP/2 |
        /// |---|---|---|
        /// | `GetConn` | the layer is called with the request | exact |
        /// | `DNSStart` / `DNSDone` | around the lookup of a name (not an IP literal) | exact |
        /// | `ConnectStart` / `ConnectDone` | around the connect, or each address attempt | exact |
        /// | `TLSHandshakeStart` / `TLSHandshakeDone` | around the TLS handshake | exact |
        /// | `Http2Ready` | - | the server's first `SETTINGS` is read |
        /// | `GotConn` | the connection takes the request, before it writes it | exact: the stream opens |
        /// | `WroteHeaders` | the request head is flushed | per stream |
        /// | `WroteRequest` | the head and the whole body are flushed, or writing failed | per stream |
        /// | `GotFirstResponseByte` | the response's first byte is read | per stream |
        /// | `Got100Continue`, `Got1xxResponse` | each informational response: the read that brought it | not emitted |
        /// | `StreamReset` | - | per stream: `RST_STREAM` read or written |
        /// | `GoAway` | - | a `GOAWAY` frame is read |
        /// | `ResponseHeaders` | the response head reaches the caller, stamped at the read that brought it (see [`ResponseHeadersInfo`]) | exact: when it reaches the caller |
        /// | `ResponseBodyDone` | the response body ends, fails or is dropped | exact |
        /// | `PutIdleConn` | the connection can go back to the pool: delivered right before `ResponseBodyDone`, stamped at the response's last read; not after `Connection: close`, an upgrade (`101`) or a tunnel (`CONNECT`); see [`PutIdleConnInfo`] for a race | not emitted (as in Go) |
        /// | `Redirect` | a redirect is followed (reqwest) | exact |
        /// | `RequestFailed` | the client returned an error | exact |
        /// | `RequestCanceled` | the response future was dropped before it completed | exact |
        /// | `ConnectionClosed` | the connection closed while its last request was in progress; once the response began, only if it then fails, right before the last event | to every request on it in progress |
        ///
        /// [`Hooks`] says on which task each is delivered, and the info structs what each
        /// carries.
        ///
        /// ```
        /// use httptrace::{ClientTrace, Event};
        ///
        /// let trace = ClientTrace::from_fn(|event: &Event| match event {
        ///     Event::GotConn(info) => println!("connection {}, reused: {}", info.conn_id, info.reused),
        ///     other => println!("{} at {:?}", other.name(), other.at()),
        /// });
        /// # drop(trace);
        /// ```
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum Event {
            $( $(#[$doc])* $variant($info), )*
        }

        impl Event {
            /// Go's hook name for Go's events (`"GetConn"`, `"DNSStart"`...), and httptrace's name
            /// for the others (`"ResponseHeaders"`, `"ResponseBodyDone"`, `"RequestFailed"`,
            /// `"RequestCanceled"`, `"ConnectionClosed"`, `"Redirect"`, `"Http2Ready"`, `"GoAway"`,
            /// `"StreamReset"`).
            ///
            /// ```
            /// use httptrace::Recorder;
            /// let rec = Recorder::new();
            /// let names: Vec<&str> = rec.events().iter().map(|e| e.name()).collect();
            /// assert!(names.is_empty());
            /// ```
            pub fn name(&self) -> &'static str {
                match self { $( Event::$variant(_) => $name, )* }
            }

            /// When it happened (not when it was delivered).
            pub fn at(&self) -> Instant {
                match self { $( Event::$variant(i) => i.at, )* }
            }

            /// Stamps it `at` instead.
            pub(crate) fn set_at(&mut self, at: Instant) {
                match self { $( Event::$variant(i) => i.at = at, )* }
            }

            /// The failure this event reports: `Some` exactly for the events that report one.
            pub fn error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
                match self { $( Event::$variant(i) => events!(@err i $err), )* }
            }
        }

        /// The hooks of a [`ClientTrace`](crate::ClientTrace): one method per event, each a no-op
        /// by default, as Go's `httptrace.ClientTrace` has one func per event.
        ///
        /// # When the hooks are called
        ///
        /// Hooks run on the task that observes the event, one at a time and in order for a
        /// given request; they must not block for long (a slow hook slows the connection it is
        /// called from). A hook that panics is contained: the request, its connection, the
        /// pool and the other hooks go on ([`ClientTrace::hook_panics`](crate::ClientTrace::hook_panics)
        /// counts them). Each event carries the instant it happened, also when it is delivered
        /// later.
        ///
        /// **`get_conn`**: from the layer's `call`, with the request's method and URI.
        ///
        /// **`dns_*`, `connect_*`, `tls_handshake_*`**: from the connector's future, which
        /// hyper-util polls in the request's task, or in a task of its own when an idle
        /// connection became available first (the events still go to the request that started
        /// the connect, whose `GotConn` then names the other connection). What a stack reports
        /// depends on its parts (see [`connect`](crate::connect)).
        ///
        /// **`got_conn`**: on HTTP/1 from the connection's IO, right before it writes the
        /// request; on HTTP/2 from hyper's dispatch task as it opens the request's stream.
        ///
        /// **`wrote_headers`, `wrote_request`, `got_first_response_byte`**: from the
        /// connection's IO, as the bytes cross it. A body that is empty or sent in one piece
        /// is written with the head: both events then share one instant.
        ///
        /// **`got_100_continue`, `got_1xx_response`**: from hyper's 1xx callback (HTTP/1 only);
        /// set your own with [`on_informational`](crate::on_informational) to keep both.
        ///
        /// **`response_headers`, `response_body_done`, `put_idle_conn`**: on the caller's task,
        /// as the response and its body reach it; `put_idle_conn` right before
        /// `response_body_done`, stamped when the response's last byte was read.
        ///
        /// **`request_failed`, `request_canceled`**: when the response future returns an error
        /// or is dropped.
        ///
        /// **`connection_closed`, `http2_ready`, `go_away`, `stream_reset`**: from the
        /// connection's IO.
        ///
        /// A trace shared by many requests (a [`default_trace`](crate::TraceLayer::default_trace))
        /// tells them apart with [`on_request_event`](Hooks::on_request_event), which is given
        /// the request's [`RequestId`], as OkHttp's `EventListener` is given the `Call`.
        ///
        /// ```
        /// use httptrace::{ClientTrace, Hooks};
        /// use httptrace::event::GotConnInfo;
        ///
        /// struct Reuse;
        /// impl Hooks for Reuse {
        ///     fn got_conn(&self, info: &GotConnInfo) {
        ///         println!("connection {} reused: {}", info.conn_id, info.reused);
        ///     }
        /// }
        /// let trace = ClientTrace::new(Reuse);
        /// # drop(trace);
        /// ```
        pub trait Hooks: Send + Sync + 'static {
            /// Called for every event of a traced request, with the request it belongs to; by
            /// default it calls [`on_event`](Hooks::on_event). Override it in hooks shared by
            /// many requests to tell them apart.
            ///
            /// ```
            /// use std::collections::HashMap;
            /// use std::sync::Mutex;
            /// use httptrace::{event::RequestId, Event, Hooks};
            ///
            /// #[derive(Default)]
            /// struct PerRequest(Mutex<HashMap<RequestId, Vec<&'static str>>>);
            /// impl Hooks for PerRequest {
            ///     fn on_request_event(&self, request: RequestId, event: &Event) {
            ///         self.0.lock().unwrap().entry(request).or_default().push(event.name());
            ///     }
            /// }
            /// ```
            fn on_request_event(&self, request: RequestId, event: &Event) {
                let _ = request;
                self.on_event(event)
            }

            /// Called for every event; by default it calls the event's own method. Override it
            /// to handle all events in one place (as [`Recorder`](crate::Recorder) does). Events
            /// of no request (a connection observer's) come here directly.
            fn on_event(&self, event: &Event) {
                match event { $( Event::$variant(i) => self.$method(i), )* }
            }

            /// The `tracing` span the request's future runs in (feature `tracing`): the layer
            /// enters it around each poll of the client's future, so that what is logged
            /// meanwhile on the request's task (by a middleware below the layer, by hyper-util)
            /// nests under it. Asked once, right after `GetConn`. Default: none;
            /// [`TracingHooks`](crate::TracingHooks) gives its request span.
            #[cfg(feature = "tracing")]
            fn request_span(&self, request: RequestId) -> Option<tracing::Span> {
                let _ = request;
                None
            }
            $(
                $(#[$doc])*
                fn $method(&self, info: &$info) { let _ = info; }
            )*
        }
    };
    (@err $i:ident some) => { Some($i.error.get_ref()) };
    (@err $i:ident opt) => { $i.error.as_ref().map(|e| e.get_ref()) };
    (@err $i:ident none) => { { let _ = $i; None } };
}

events! {
    /// `GetConn`: before a connection is taken from the pool or dialled.
    GetConn(GetConnInfo) => get_conn, "GetConn", none;
    /// `DNSStart`: a lookup starts (not for IP literals).
    DnsStart(DnsStartInfo) => dns_start, "DNSStart", none;
    /// `DNSDone`: the lookup ended.
    DnsDone(DnsDoneInfo) => dns_done, "DNSDone", opt;
    /// `ConnectStart`: a connect starts.
    ConnectStart(ConnectStartInfo) => connect_start, "ConnectStart", none;
    /// `ConnectDone`: the connect ended.
    ConnectDone(ConnectDoneInfo) => connect_done, "ConnectDone", opt;
    /// `TLSHandshakeStart`: a TLS handshake starts.
    TlsHandshakeStart(TlsHandshakeStartInfo) => tls_handshake_start, "TLSHandshakeStart", none;
    /// `TLSHandshakeDone`: the TLS handshake ended.
    TlsHandshakeDone(TlsHandshakeDoneInfo) => tls_handshake_done, "TLSHandshakeDone", opt;
    /// `GotConn`: the request got its connection.
    GotConn(GotConnInfo) => got_conn, "GotConn", none;
    /// `WroteHeaders`: the request headers are written.
    WroteHeaders(WroteHeadersInfo) => wrote_headers, "WroteHeaders", none;
    /// `WroteRequest`: the whole request is written (or writing failed).
    WroteRequest(WroteRequestInfo) => wrote_request, "WroteRequest", opt;
    /// `Got100Continue`: the server said `100 Continue`.
    Got100Continue(Got100ContinueInfo) => got_100_continue, "Got100Continue", none;
    /// `Got1xxResponse`: an informational response.
    Got1xxResponse(Got1xxResponseInfo) => got_1xx_response, "Got1xxResponse", none;
    /// `GotFirstResponseByte`: the first response byte was read.
    GotFirstResponseByte(GotFirstResponseByteInfo) => got_first_response_byte, "GotFirstResponseByte", none;
    /// `ResponseHeaders`: the response head reached the caller (stamped at the read that brought
    /// it).
    ResponseHeaders(ResponseHeadersInfo) => response_headers, "ResponseHeaders", none;
    /// `ResponseBodyDone`: the response body ended, failed or was dropped.
    ResponseBodyDone(ResponseBodyDoneInfo) => response_body_done, "ResponseBodyDone", opt;
    /// `Redirect`: a redirect is followed.
    Redirect(RedirectInfo) => redirect, "Redirect", none;
    /// `PutIdleConn`: the connection went back to the idle pool.
    PutIdleConn(PutIdleConnInfo) => put_idle_conn, "PutIdleConn", none;
    /// `RequestFailed`: the client returned an error.
    RequestFailed(RequestFailedInfo) => request_failed, "RequestFailed", some;
    /// `RequestCanceled`: the response future was dropped before it completed.
    RequestCanceled(RequestCanceledInfo) => request_canceled, "RequestCanceled", some;
    /// `ConnectionClosed`: the connection that served the request closed.
    ConnectionClosed(ConnectionClosedInfo) => connection_closed, "ConnectionClosed", opt;
    /// `Http2Ready`: an HTTP/2 connection exchanged its preface and settings.
    Http2Ready(Http2ReadyInfo) => http2_ready, "Http2Ready", none;
    /// `GoAway`: the server sent `GOAWAY` on the request's HTTP/2 connection.
    GoAway(GoAwayInfo) => go_away, "GoAway", none;
    /// `StreamReset`: the request's HTTP/2 stream was reset.
    StreamReset(StreamResetInfo) => stream_reset, "StreamReset", none;
}

impl Event {
    /// Whether Go's `httptrace.ClientTrace` has this event.
    ///
    /// ```
    /// # use httptrace::Recorder;
    /// # let rec = Recorder::new();
    /// let go_names: Vec<&str> = rec.events().iter().filter(|e| e.is_go()).map(|e| e.name()).collect();
    /// # assert!(go_names.is_empty());
    /// ```
    pub fn is_go(&self) -> bool {
        !matches!(
            self,
            Event::ResponseHeaders(_)
                | Event::ResponseBodyDone(_)
                | Event::Redirect(_)
                | Event::RequestFailed(_)
                | Event::RequestCanceled(_)
                | Event::ConnectionClosed(_)
                | Event::Http2Ready(_)
                | Event::GoAway(_)
                | Event::StreamReset(_)
        )
    }
}
