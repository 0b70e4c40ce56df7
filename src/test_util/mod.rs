//! Unit-testing with the real stack over memory (feature `test-util`): a
//! [`MemoryConnector`] hands hyper-util in-memory connections served by a hyper service the
//! test supplies, each following a [`Plan`] (connect delay or refusal, a TLS handshake to
//! report, HTTP/2, a close after some requests, a break mid-response, its addresses). The
//! client, its pool and httptrace's binding run as they do on sockets, so a middleware under
//! test sees every event it reacts to in production: `ConnectStart` to `PutIdleConn`, on
//! HTTP/1 and HTTP/2.
//!
//! Every instant comes from tokio's clock, so under a paused clock
//! (`#[tokio::test(start_paused = true)]`, which needs tokio's `test-util` feature, turned on by
//! this one) a server that sleeps 40 ms is reported as exactly 40 ms, in every event and in
//! [`Timings`](crate::Timings), and the test takes no real time. In production tokio's clock is
//! the system's (the same call as `std::time::Instant::now()`).
//!
//! `tests/recipe.rs` is the recipe, written as a user's test: a small retry-on-slow-first-byte
//! middleware, tested with `tower::ServiceBuilder` under a paused clock against a scripted slow
//! server, asserting the exact events and `Timings` of each attempt:
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty, Full};
//! use httptrace::test_util::{MemoryConnector, Plan};
//! use httptrace::{RequestBody, Timings, TraceLayer};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let ms = Duration::from_millis;
//! let server = hyper::service::service_fn(|_req| async {
//!     tokio::time::sleep(Duration::from_millis(40)).await;
//!     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
//! });
//! let connector = MemoryConnector::new(server)
//!     .plan(|_n| Plan::new().connect(Duration::from_millis(5)).tls(Duration::from_millis(10)))
//!     .traced();
//! let client = Client::builder(TokioExecutor::new())
//!     .build::<_, RequestBody<Empty<Bytes>>>(connector);
//! let svc = ServiceBuilder::new()
//!     .layer(TraceLayer::new().record_timings(true))
//!     .service(client);
//!
//! let req = http::Request::get("https://api.test/").body(Empty::new()).unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! let timings = res.extensions().get::<Timings>().cloned().unwrap();
//! res.into_body().collect().await.unwrap();
//! assert_eq!(timings.connect(), Some(ms(5)));
//! assert_eq!(timings.tls(), Some(ms(10)));
//! assert_eq!(timings.server_processing(), Some(ms(40)));
//! # }
//! ```

mod connector;
mod plan;
mod stream;

pub use self::connector::MemoryConnector;
pub use self::plan::Plan;
pub(crate) use self::stream::MemoryAddrs;
pub use self::stream::{MemoryStream, MemoryTls};
