//! Go's `net/http/httptrace` for hyper, hyper-util and tower: where the time of each request
//! went, and what happened to its connection.
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
//! # The pieces
//!
//! A [`ClientTrace`] holds the [`Hooks`] of a request; attach it to the request's extensions or
//! run the sending code in its [`scope`](ClientTrace::scope), and every [`Event`] of the
//! request reaches the hooks, in order, each with the instant it happened (the [`event`]
//! module has the events, one info struct each, and when each is called). Two wrappers observe
//! a client: [`TraceLayer`] around the client service (its [`layer`] module has the futures
//! and bodies it returns, and how HTTP/2 requests are bound), and [`TracingConnector`] around
//! its connector, with [`TracingResolver`] and the other connector wrappers of [`connect`].
//! Ready consumers turn the events into something to read: [`Recorder`] keeps them,
//! [`Timings`] makes curl's and httpstat's phases of them, and behind their features
//! `TracingHooks` (`tracing` spans) and `Otel` (OpenTelemetry metrics and spans). The
//! [`reqwest`](crate#cargo-features) module serves `reqwest::Client`; [`error`] has the errors
//! the events carry.
//!
//! # Cargo features
//!
//! None by default, as tower-http and hyper-util: each names what it plugs into.
//!
//! - `http2`: hyper's and hyper-util's HTTP/2 client, ALPN `h2` offered by
//!   `TracingConnector::https`, and reqwest's HTTP/2.
//! - `rustls`: TLS handshake details over hyper-rustls (`connect::Rustls`) and the one-line
//!   HTTPS stack (`connect::HttpsStack`, `TracingConnector::https`), with the process's default
//!   rustls crypto provider; no provider of its own.
//! - `aws-lc-rs`, `ring`: the provider the one-line HTTPS stack falls back to when the process
//!   has no default (each turns on `rustls`).
//! - `reqwest`: `reqwest::Client` through the same layer (module `reqwest`); no feature of
//!   reqwest is turned on.
//! - `tracing`: `TracingHooks`, spans and events for the `tracing` ecosystem; hook panics are
//!   reported through it.
//! - `opentelemetry`: `Otel`, metrics and spans under the OpenTelemetry HTTP conventions.
//! - `test-util`: the real client over in-memory connections, scripted per connection
//!   (module `test_util`), for unit-testing middleware; turns on tokio's `test-util` (a paused
//!   clock).

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod binding;
pub mod connect;
mod consumer;
pub mod error;
pub mod event;
pub mod layer;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "test-util")]
pub mod test_util;
mod trace;
mod util;

pub use crate::connect::{TracingConnector, TracingResolver};
#[cfg(feature = "opentelemetry")]
pub use crate::consumer::otel::Otel;
pub use crate::consumer::recorder::Recorder;
#[cfg(feature = "tracing")]
pub use crate::consumer::spans::TracingHooks;
pub use crate::consumer::timeline::Timeline;
pub use crate::consumer::timings::Timings;
pub use crate::event::{Event, Hooks};
pub use crate::layer::{on_informational, RequestBody, ResponseBody, Trace, TraceLayer};
pub use crate::trace::ClientTrace;

#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "reqwest"))]
pub struct ReadmeDoctests;
