//! The request side: [`TraceLayer`] and its service [`Trace`], the request and response bodies
//! it wraps, and the futures it returns.
//!
//! The layer is where a request becomes traced: it resolves the request's
//! [`ClientTrace`](crate::ClientTrace)
//! (its extension, the enclosing [`scope`](crate::ClientTrace::scope), the layer's factory and
//! default), reports `GetConn`, makes the request current while the client's future is
//! polled, and reports the response's head, its body's end, or the failure.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use httptrace::{RequestBody, TraceLayer, TracingConnector};
//! use hyper_util::client::legacy::Client;
//! use tower::ServiceBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = Client::builder(hyper_util::rt::TokioExecutor::new())
//!     .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::http());
//! let svc = ServiceBuilder::new().layer(TraceLayer::new()).service(client);
//! # drop(svc);
//! # }
//! ```

mod body;
mod future;
mod informational;
mod service;
mod trace_layer;

#[cfg(feature = "reqwest")]
pub(crate) use self::future::{response_head, Pending};

pub use self::body::{RequestBody, ResponseBody};
pub use self::future::ResponseFuture;
pub use self::informational::on_informational;
pub use self::service::Trace;
pub use self::trace_layer::TraceLayer;
pub use crate::binding::ambient::Scoped;
