//! Go's `net/http/httptrace` for hyper, hyper-util and tower: where the time of each request
//! went, and what happened to its connection.
//!
//! A [`ClientTrace`] holds the [`Hooks`] of one request. Two wrappers observe a client:
//! [`TraceLayer`] around the client service, and [`TracingConnector`] (with
//! [`TracingResolver`]) around its connector. Attach a trace to a request in its extensions or
//! with [`ClientTrace::scope`], and its hooks see every [`Event`], in Go's order, each with the
//! [`Instant`](std::time::Instant) it happened at.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty};
//! use httptrace::{Recorder, RequestBody, TraceLayer, TracingConnector, TracingResolver};
//! use hyper_util::client::legacy::{connect::{dns::GaiResolver, HttpConnector}, Client};
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let connector = TracingConnector::new(HttpConnector::new_with_resolver(
//!     TracingResolver::new(GaiResolver::new()),
//! ));
//! let client = Client::builder(TokioExecutor::new()).build::<_, RequestBody<Empty<Bytes>>>(connector);
//! let svc = ServiceBuilder::new().layer(TraceLayer::new()).service(client);
//!
//! let rec = Recorder::new();
//! let mut req = http::Request::get("http://localhost:8080/").body(Empty::new())?;
//! req.extensions_mut().insert(rec.trace());
//! let res = svc.oneshot(req).await?;
//! res.into_body().collect().await?;
//! for e in rec.events() {
//!     println!("{:<22} {:?}", e.name(), e.at());
//! }
//! # Ok(()) }
//! ```
//!
//! # Events
//!
//! Go's events (but `WroteHeaderField`, and `Wait100Continue`: hyper doesn't wait for
//! `100 Continue`), and nine of httptrace's own. Every Start has exactly one Done, also on error
//! and cancellation, and every traced request ends with exactly one of `ResponseBodyDone`,
//! `RequestFailed` or `RequestCanceled`. One exception to "ends": a connect the request started
//! that hyper-util finishes in the background (an idle connection served the request) reports
//! its end when it has one, after the request's.
//!
//! The HTTP/2 column: *exact* is the same as HTTP/1; *per stream* means exact when the stream is
//! known (see [HTTP/2](#http2)), not emitted otherwise; *not emitted* says why.
//!
//! | event | when (HTTP/1) | HTTP/2 | observed on |
//! |---|---|---|---|
//! | `GetConn` | the layer is called with the request, before a connection is taken or dialled | exact | request |
//! | `DNSStart` / `DNSDone` | around the lookup of a name, through [`TracingResolver`]; not for IP literals | exact, to the request that dialled | request (connect) |
//! | `ConnectStart` / `ConnectDone` | around the connector call (the start follows `DNSDone`), or once per address attempt with [`PerAddressConnector`] | exact, to the request that dialled | request (connect) |
//! | `TLSHandshakeStart` / `TLSHandshakeDone` | around the handshake of a TLS connector over a [`TracingTransport`]; the Done says what was negotiated ([`TlsState`]) or why it failed | exact (ALPN `h2` in the state) | request (connect) |
//! | `Http2Ready` | - | the server's first `SETTINGS` frame is read: to the request that dialled, and the connector's observer | connection |
//! | `GotConn` | the connection takes the request, before its first byte is written | exact: hyper opens the request's stream; names the connection, the stream (when known), the streams in flight, and whether it waited for another request's connect | connection (hyper's HTTP/2 task) |
//! | `WroteHeaders` | the request head is flushed to the socket | per stream: its `HEADERS` (and `CONTINUATION`) frames are written | connection |
//! | `WroteRequest` | the head and the whole body are flushed (or writing failed) | per stream: the frame that ends the stream is written | connection |
//! | `GotFirstResponseByte` | the first byte of the response is read from the socket | per stream: the first frame of the stream is read | connection |
//! | `Got100Continue`, `Got1xxResponse` | each informational response (`100` fires both) | not emitted: hyper's HTTP/2 client has no 1xx callback, and telling a 1xx `HEADERS` frame from the final one would take decoding HPACK | connection |
//! | `StreamReset` | - | per stream: `RST_STREAM` read or written | connection |
//! | `GoAway` | - | a `GOAWAY` frame is read: to the requests on the connection still in progress, its dialler, and the observer | connection |
//! | `ResponseHeaders` | the response head reaches the caller | exact | request |
//! | `ResponseBodyDone` | the response body ends, fails, or is dropped early | exact | request |
//! | `PutIdleConn` | at the body's end, right before `ResponseBodyDone`, when the connection can go back to the pool: keep-alive on both sides, and it didn't close (hyper-util may still drop it if its pool is full or disabled); `at` is when the response's last byte was read | not emitted: the connection is shared, never idle-pooled per request (as in Go) | request |
//! | `Redirect` | a redirect is followed (reqwest's `redirect_policy`) | exact | request |
//! | `RequestFailed` | the client returned an error | exact | request |
//! | `RequestCanceled` | the response future was dropped before it completed | exact | request |
//! | `ConnectionClosed` | the connection closed while its last request is still in progress | to every request on it still in progress; `requests` counts its streams | connection |
//!
//! # HTTP/2
//!
//! One HTTP/2 connection carries many requests at once, and one write can hold several
//! requests' frames, so a request is not bound by "whose bytes are these" as on HTTP/1
//! (`src/binding.rs`, invariant 6):
//! - **The connection** of each traced request is exact: hyper-util tells it (its
//!   `CaptureConnection`, which the layer puts in the request; see
//!   [`TraceLayer::http2_streams`]), and `GotConn` fires on hyper's HTTP/2 task at the instant
//!   it opens the request's stream.
//! - **The stream** is known when every stream of the connection belongs to a traced request:
//!   hyper opens streams one at a time with ids 1, 3, 5..., so the k-th request it opens is
//!   stream 2k-1. That holds when the layer traces every request (a
//!   [`default_trace`](TraceLayer::default_trace), a [`trace_factory`](TraceLayer::trace_factory)
//!   or [`record_timings`](TraceLayer::record_timings)) and every request of the client goes
//!   through it. Then the frames' 9-byte headers, read above TLS, give the request its
//!   `WroteHeaders`, `WroteRequest`, `GotFirstResponseByte` and `StreamReset`, at the instants
//!   they cross the wire. Otherwise (untraced requests cost nothing, so they can't be counted),
//!   `GotConn` has no stream id and is marked [`derived`](GotConnInfo::derived) for its counts,
//!   and the per-stream events are not emitted. The same once a traced request carries the
//!   caller's own hyper-util `CaptureConnection` (hyper-util keeps one per request, and the
//!   caller's stays). A stream that no request registered (one sent on the client around the
//!   layer) stops the mapping as soon as it shows on the wire, rather than risk a wrong one;
//!   but it can't be seen if hyper opened it right before a traced request's stream and hasn't
//!   written it yet: every request of the client must go through the layer.
//! - **The connection's life** needs no mapping: `Http2Ready` (the server's settings),
//!   `GoAway`, `ConnectionClosed` (with the number of streams), also to
//!   [`TracingConnector::observe_connections`].
//! - With ALPN, hyper-util can't know a connection will be shared before it is made, so
//!   concurrent first requests each dial (the extra connections go to the pool); with
//!   `http2_only`, one dials and the others wait: their `GotConn` says `waited_for_connect`.
//!
//! //! # When the hooks are called
//!
//! Hooks run on the task that observes the event: the request's task, or the connection's task
//! for the events on the wire. A request's hooks are called one at a time, in order. A hook
//! that panics is contained: the connection, the pool and the other requests go on.
//!
//! ## GetConn
//! From `Trace::call`, with the request's `host:port`.
//!
//! ## DNSStart, DNSDone, ConnectStart, ConnectDone, TLSHandshakeStart, TLSHandshakeDone
//! From the connector's future, which hyper-util polls in the request's task, or in a task of
//! its own if an idle connection became available first: the events still go to the request
//! that started the connect. That request's `GotConn` may then name another connection.
//!
//! Which events a stack reports depends on what it is made of:
//! - [`TracingConnector`] over any connector: one `ConnectStart`/`ConnectDone` for the whole
//!   connector call (a TLS connector's handshake included);
//! - a [`TracingResolver`] under `HttpConnector`: `DNSStart`/`DNSDone`, and the connect starts
//!   when the lookup ends;
//! - a [`PerAddressConnector`]: the lookup, then one `ConnectStart`/`ConnectDone` per address
//!   attempt (Happy Eyeballs; attempts dropped because another won say [`Canceled`]);
//! - a [`TracingTransport`] under a TLS connector: the TCP connect ends when the transport
//!   connects, and `TLSHandshakeStart`/`TLSHandshakeDone` surround the handshake; with the
//!   `rustls` feature, `Rustls` reads what was negotiated. [`TracingConnector::http`] and
//!   `TracingConnector::https` build these stacks in one line.
//!
//! ## GotConn
//! `reused` when the connection served requests before; `was_idle` when it came from the pool
//! (also a fresh connection that was dialled for another request); `idle_time` since it last read
//! a response (or was connected). On HTTP/2, `was_idle` when no stream was open on it, and
//! `idle_time` since its last stream closed; [`http2`](GotConnInfo::http2) has the stream.
//!
//! ## WroteHeaders, WroteRequest, GotFirstResponseByte
//! From the connection's IO. With a body that is empty or sent in one piece, hyper writes the
//! head and the body in one write: both events then share one instant.
//!
//! ## Got100Continue, Got1xxResponse
//! From hyper's `on_informational` callback. hyper keeps one per request: use
//! [`on_informational`] to set your own alongside httptrace's.
//!
//! ## PutIdleConn
//! Right before `ResponseBodyDone`, when neither the request nor the response asked to close
//! the connection and it didn't close.
//!
//! # Cargo features
//!
//! - `rustls` (default): TLS handshake details over hyper-rustls (`Rustls`) and the one-line
//!   HTTPS stack (`HttpsStack`, `TracingConnector::https`).
//! - `http2` (default): hyper's and hyper-util's HTTP/2 client, ALPN `h2` offered by
//!   `TracingConnector::https`, and reqwest's HTTP/2.
//! - `reqwest`: `reqwest::Client` through the same layer (module `reqwest`).
//! - `tracing`: `TracingHooks`, spans and events for the `tracing` ecosystem.
//! - `opentelemetry`: `Otel`, metrics and spans under the OpenTelemetry HTTP conventions.
//!
//! # Binding a request to its connection
//!
//! See `src/binding.rs`: the request body tells the connection which request it is about to
//! write, on the connection's own task, so every wire event goes to the request whose bytes they
//! are, under any concurrency. A request with no trace costs no allocation and no lock.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod binding;
mod connect;
mod consumer;
mod error;
mod event;
mod request;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod trace;

pub use crate::connect::{
    Addrs, ConnectFuture, HttpStack, InspectTls, NoTls, PerAddressConnector, ResolveFuture,
    TracedIo, TracingConnector, TracingResolver, TracingTransport, TransportFuture,
};
#[cfg(feature = "rustls")]
pub use crate::connect::{HttpsStack, Rustls};
#[cfg(feature = "opentelemetry")]
pub use crate::consumer::otel::Otel;
pub use crate::consumer::recorder::Recorder;
#[cfg(feature = "tracing")]
pub use crate::consumer::spans::TracingHooks;
pub use crate::consumer::timings::Timings;
pub use crate::error::{Canceled, RequestError, SharedError};
pub use crate::event::*;
pub use crate::request::{
    on_informational, RequestBody, ResponseBody, ResponseFuture, Trace, TraceLayer, TraceResponse,
};
pub use crate::trace::{hook_panics, ClientTrace, Scoped};

#[doc(hidden)]
pub use crate::request::RequestHandle;

#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "reqwest"))]
pub struct ReadmeDoctests;
