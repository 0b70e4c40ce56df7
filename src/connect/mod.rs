//! The connection side: [`TracingConnector`] wraps a connector, [`TracingResolver`] wraps its
//! resolver, and [`TracedIo`] wraps every connection to see its bytes on the wire.
//!
//! A connector, in hyper-util, is a `Service<Uri>` whose response is the connection's IO. The
//! traced connector reports `ConnectStart`/`ConnectDone` to the request that asked for the
//! connection, and the traced resolver `DNSStart`/`DNSDone`; the IO wrapper reports, per request
//! it serves, `GotConn`, `WroteHeaders`, `WroteRequest` and `GotFirstResponseByte`.
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

mod connector;
mod io;
mod resolver;

pub use self::connector::{ConnectFuture, TracingConnector};
pub use self::io::TracedIo;
pub use self::resolver::{Addrs, ResolveFuture, TracingResolver};
