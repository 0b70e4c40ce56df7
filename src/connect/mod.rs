//! The connection side: [`TracingConnector`] wraps a connector, [`TracingResolver`] wraps its
//! resolver, [`PerAddressConnector`] dials address by address, [`TracingTransport`] marks the
//! transport under a TLS connector, and [`TracedIo`] wraps every connection to see its bytes.
//!
//! A connector, in hyper-util, is a `Service<Uri>` whose response is the connection's IO. The
//! traced connector reports `ConnectStart`/`ConnectDone` (and the TLS handshake) to the request
//! that asked for the connection, and the resolver `DNSStart`/`DNSDone`; the IO wrapper reports,
//! per request it serves, `GotConn`, `WroteHeaders`, `WroteRequest` and `GotFirstResponseByte`
//! (on HTTP/2, per stream, from the frames it sees; see [HTTP/2](crate::TraceLayer#http2)).
//!
//! ```
//! use httptrace::{TracingConnector, TracingResolver};
//! use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
//!
//! let connector = TracingConnector::new(HttpConnector::new_with_resolver(
//!     TracingResolver::new(GaiResolver::new()),
//! ));
//! # drop(connector);
//! ```
//!
//! # What each stack reports
//!
//! - [`TracingConnector`] over any connector: one `ConnectStart`/`ConnectDone` for the whole
//!   connector call (a TLS connector's handshake included).
//! - A [`TracingResolver`] under `HttpConnector`: `DNSStart`/`DNSDone`, and the connect starts
//!   when the lookup ends.
//! - A [`PerAddressConnector`]: the lookup, then one `ConnectStart`/`ConnectDone` per address
//!   attempt (Happy Eyeballs; an attempt dropped because another won says
//!   [`Canceled`](crate::error::Canceled)).
//! - A [`TracingTransport`] under a TLS connector: the TCP connect ends when the transport
//!   connects, and `TLSHandshakeStart`/`TLSHandshakeDone` surround the handshake; with the
//!   `rustls` feature, `Rustls` reads what was negotiated.
//!
//! [`TracingConnector::http`] (and, with `rustls`, `TracingConnector::https`) build these
//! stacks in one line.

mod connector;
mod io;
mod per_address;
mod resolver;
#[cfg(feature = "rustls")]
mod tls;
mod transport;

pub use self::connector::{ConnectFuture, InspectTls, NoTls, TracingConnector};
pub use self::io::TracedIo;
pub use self::per_address::PerAddressConnector;
#[cfg(feature = "reqwest")]
pub(crate) use self::resolver::DnsGuard;
pub use self::resolver::{Addrs, ResolveFuture, TracingResolver};
#[cfg(feature = "rustls")]
pub use self::tls::{HttpsStack, HttpsStackBuilder, Rustls};
pub use self::transport::{TracingTransport, TransportFuture};

use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::client::legacy::connect::HttpConnector;

/// The traced plain-HTTP connector: DNS through `GaiResolver`, one connect per address attempt.
/// See [`TracingConnector::http`].
pub type HttpStack = TracingConnector<PerAddressConnector<GaiResolver>>;

impl HttpStack {
    /// The traced connector for `http://` URLs: `DNSStart/Done`, one `ConnectStart/Done` per
    /// address attempt (Happy Eyeballs), and the wire events. `nodelay` is on.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Empty;
    /// use httptrace::{RequestBody, TracingConnector};
    /// use hyper_util::client::legacy::Client;
    ///
    /// let client = Client::builder(hyper_util::rt::TokioExecutor::new())
    ///     .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::http());
    /// # drop(client);
    /// ```
    pub fn http() -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        TracingConnector::new(PerAddressConnector::new(http, GaiResolver::new()))
    }
}
