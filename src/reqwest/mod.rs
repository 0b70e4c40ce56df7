//! reqwest (feature `reqwest`): the same events and [`Timings`](crate::Timings) through
//! `reqwest::Client`.
//!
//! Three pieces, each optional:
//! - [`TraceLayer`](crate::TraceLayer) serves `reqwest::Client` as a tower
//!   `Service<reqwest::Request>`. reqwest requests have no extensions: attach the trace with
//!   [`ClientTrace::scope`](crate::ClientTrace::scope) or as the layer's per-client default.
//! - [`TracingResolve`] for `ClientBuilder::dns_resolver`: `DNSStart`/`DNSDone`, on hyper-util's
//!   `GaiResolver` (reqwest's own resolver is private) or around your own `Resolve`.
//! - [`connector_layer`] for `ClientBuilder::connector_layer`: `ConnectStart`/`ConnectDone`
//!   around reqwest's connector (DNS, TCP and TLS in one step there).
//! - [`redirect_policy`] for `ClientBuilder::redirect`: a `Redirect` event per hop.
//!
//! httptrace turns on no feature of reqwest: your reqwest features choose its TLS backend. With
//! reqwest's defaults there is nothing to do. Built with `default-features = false` and
//! `rustls-no-provider`, reqwest needs a rustls crypto provider installed for the process
//! before a `Client` is built (`CryptoProvider::install_default`), or its builder panics.
//!
//! ```no_run
//! use httptrace::{reqwest as traced, Recorder, TraceLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! # httptrace_test_support::tls::install_provider();
//! let client = reqwest::Client::builder()
//!     .dns_resolver(traced::TracingResolve::gai())
//!     .connector_layer(traced::connector_layer())
//!     .redirect(traced::redirect_policy(10))
//!     .build()?;
//! let svc = ServiceBuilder::new().layer(TraceLayer::new().record_timings(true)).service(client.clone());
//!
//! let rec = Recorder::new();
//! let req = client.get("http://localhost:8080/").build()?;
//! // the scope must enclose the layer's `call`: `oneshot` calls it inside the future
//! let res = rec.trace().scope(svc.clone().oneshot(req)).await?;
//! let timings = res.extensions().get::<httptrace::Timings>().cloned();
//! res.bytes().await?;
//! println!("{:?}", timings);
//! # Ok(()) }
//! ```
//!
//! # What reqwest lets us see
//!
//! reqwest keeps its pool, its connection type and the request's extensions to itself, so some
//! events are exact, some derived from what the response reveals, and some unavailable:
//!
//! | event | through reqwest | why |
//! |---|---|---|
//! | `GetConn` | exact | the layer receives the request |
//! | `DNSStart` / `DNSDone` | exact, with [`TracingResolve`] | reqwest calls the resolver inside the connect |
//! | `ConnectStart` / `ConnectDone` | exact, with [`connector_layer`]; the Done includes the TLS handshake and names the address connected; the Start names it when [`TracingResolve`] looked up the request's own host and got one address (with the URL's port) | reqwest's connector does DNS, TCP and TLS in one step and hides where it connects: with [`TracingResolve`] the start follows `DNSDone`; a lookup of another name is a proxy's, whose port only reqwest knows, so the Start then names none |
//! | `TLSHandshakeStart` / `TLSHandshakeDone` | unavailable | inside reqwest's connector; with `tls_info(true)` the response's extensions hold reqwest's `TlsInfo` (peer certificate, version) |
//! | `GotConn` | derived, when the response head arrives | the pool is private: `reused`/`was_idle` mean "not made by this request's own connect" (a connection dialled for another request and never used reports `reused`); `idle_time` is zero (unknown); the connection is named by its local and remote address (hyper-util's `HttpInfo`) and by the id its connect got, when a traced request made it through [`connector_layer`] (else 0); `at` is the request's last event before it (its own connect's end, or else its start) |
//! | `WroteHeaders`, `WroteRequest`, `GotFirstResponseByte` | unavailable | reqwest's connection type is sealed: the bytes on the wire can't be observed |
//! | `Got100Continue`, `Got1xxResponse` | unavailable | request extensions don't reach hyper |
//! | `ResponseHeaders`, `ResponseBodyDone` | exact | the layer sees the response and wraps its body |
//! | `PutIdleConn` | derived, as for hyper-util, at the body's end; `at` is then too | no wire events |
//! | `Redirect` | exact, with [`redirect_policy`] | the policy runs inside the request |
//! | retries (`ClientBuilder::retry`) | not told apart | reqwest's retry classifier returns a type only reqwest can name, so no policy can be wrapped; a retry that dials again shows its own `ConnectStart`/`ConnectDone`, one on a pooled connection shows nothing |
//! | `RequestFailed`, `RequestCanceled` | exact | |
//! | `ConnectionClosed` | unavailable | no wire events |
//!
//! [`Timings`](crate::Timings) through reqwest: `dns`, `connect` (TCP and TLS), `total`, and
//! `server_processing` / `content_transfer` split where the response head reaches the layer
//! (`ResponseHeaders`: derived, a little after the first byte;
//! [`Timings::first_byte_derived`](crate::Timings::first_byte_derived) is `true`).

mod connector;
mod redirect;
mod resolve;
mod service;

pub use self::connector::{connector_layer, ConnectorLayer, TracingConnect, TracingConnectFuture};
pub use self::redirect::{redirect_policy, TooManyRedirects};
pub use self::resolve::TracingResolve;
pub use self::service::ResponseFuture;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
