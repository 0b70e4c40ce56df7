use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::service::Trace;
use crate::trace::ClientTrace;

/// A tower [`Layer`] that traces the requests of a client service: hyper-util's legacy
/// `Client`, or any `Service<http::Request<B>>` (and `reqwest::Client` with the `reqwest`
/// feature).
///
/// The inner service receives requests whose body is a [`RequestBody<B>`](crate::RequestBody):
/// build hyper-util's client for that body type. Responses come back with a
/// [`ResponseBody`](crate::ResponseBody).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use httptrace::{RequestBody, TraceLayer, TracingConnector};
/// use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// use hyper_util::rt::TokioExecutor;
/// use tower::ServiceBuilder;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = Client::builder(TokioExecutor::new())
///     .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::new(HttpConnector::new()));
/// let svc = ServiceBuilder::new()
///     .layer(TraceLayer::new().record_timings(true))
///     .service(client);
/// # drop(svc);
/// # }
/// ```
///
/// # HTTP/2
///
/// One HTTP/2 connection carries many requests at once, and one write can hold several
/// requests' frames, so a request is not bound by "whose bytes are these" as on HTTP/1. Every
/// traced request is bound all the same, whatever share of the client's requests is traced:
///
/// - **The connection** comes from hyper-util: its `CaptureConnection`, which the layer puts
///   in each traced request (see [`http2_streams`](TraceLayer::http2_streams)), names it.
/// - **The stream**: hyper opens a connection's streams on one task, one request at a time,
///   with ids 1, 3, 5... Every [`RequestBody`](crate::RequestBody), traced or not, counts
///   itself on that task as hyper opens its stream (a few atomic operations), so the k-th is
///   stream 2k-1. `GotConn` fires there, with the stream id, the streams in flight and whether
///   the request waited for another's connect; the frames' 9-byte headers, read above TLS,
///   give the request its `WroteHeaders`, `WroteRequest`, `GotFirstResponseByte` and
///   `StreamReset`, at the instants they cross the wire.
/// - **A request sent on the client some other way** counts too if its body is a
///   `RequestBody` (the client is built for that type). If a stream that went uncounted shows
///   on the wire, the connection's streams are named no more, rather than risk a wrong one:
///   `GotConn` then has no stream id and says
///   [`Derived::Http2StreamUnknown`](crate::event::Derived::Http2StreamUnknown).
/// - **The connection's life** needs no mapping: `Http2Ready` (the server's settings),
///   `GoAway`, `ConnectionClosed` (with the number of streams), also to
///   [`TracingConnector::observe_connections`](crate::TracingConnector::observe_connections).
/// - With ALPN, hyper-util can't know a connection will be shared before it is made, so
///   concurrent first requests each dial (the extra connections go to the pool); with
///   `http2_only`, one dials and the others wait: their `GotConn` says `waited_for_connect`.
/// - No `PutIdleConn` (the connection is shared, as in Go), and no 1xx events (hyper's HTTP/2
///   client has no 1xx callback).
#[derive(Clone)]
pub struct TraceLayer {
    pub(crate) default_trace: Option<ClientTrace>,
    pub(crate) factory: Option<Arc<dyn Fn() -> ClientTrace + Send + Sync>>,
    pub(crate) record_timings: bool,
    pub(crate) http2_streams: bool,
}

impl Default for TraceLayer {
    fn default() -> Self {
        Self {
            default_trace: None,
            factory: None,
            record_timings: false,
            http2_streams: true,
        }
    }
}

impl TraceLayer {
    /// A layer that traces the requests that carry a [`ClientTrace`] (in their extensions or
    /// in a [`scope`](ClientTrace::scope)), and no others.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trace for every request of this client, run after the request's own (like OkHttp's
    /// client-wide `EventListener`); its hooks tell the requests apart with
    /// [`on_request_event`](crate::Hooks::on_request_event). Default: none.
    ///
    /// ```
    /// use httptrace::{Recorder, TraceLayer};
    /// let all = Recorder::new();
    /// let layer = TraceLayer::new().default_trace(all.trace());
    /// # drop(layer);
    /// ```
    pub fn default_trace(mut self, trace: ClientTrace) -> Self {
        self.default_trace = Some(trace);
        self
    }

    /// A fresh trace for every request, made by `factory` (like OkHttp's
    /// `EventListener.Factory`), run after the request's own and before the
    /// [`default_trace`](TraceLayer::default_trace). Default: none.
    ///
    /// ```
    /// use httptrace::{ClientTrace, Event, TraceLayer};
    /// let layer = TraceLayer::new().trace_factory(|| {
    ///     let started = std::time::Instant::now();
    ///     ClientTrace::from_fn(move |e: &Event| println!("+{:?} {}", e.at() - started, e.name()))
    /// });
    /// # drop(layer);
    /// ```
    pub fn trace_factory<F>(mut self, factory: F) -> Self
    where
        F: Fn() -> ClientTrace + Send + Sync + 'static,
    {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// Record a [`Timings`](crate::Timings) for every request and put it in the response's
    /// extensions. This traces every request. A request traced only for its `Timings` has no
    /// 1xx callback installed in hyper (the phases don't need the 1xx responses; another trace
    /// of the request, or [`on_informational`](crate::on_informational), still gets them).
    /// Default: `false`.
    ///
    /// ```
    /// use httptrace::TraceLayer;
    /// let layer = TraceLayer::new().record_timings(true);
    /// # drop(layer);
    /// ```
    pub fn record_timings(mut self, yes: bool) -> Self {
        self.record_timings = yes;
        self
    }

    /// Ask hyper-util which connection each traced request gets (its `CaptureConnection`), so
    /// that a request on an HTTP/2 connection is bound to it and to its stream (see
    /// [HTTP/2](TraceLayer#http2)). It costs 4 heap allocations per traced request (hyper-util's
    /// channel, the request extension and the copy of the connection's metadata it keeps);
    /// `false` saves them in a client that never speaks HTTP/2, whose requests are bound
    /// without it. A traced request on an HTTP/2 connection then reports neither `GotConn` nor
    /// wire events (the other requests' streams are still named). Default: `true`.
    ///
    /// ```
    /// use httptrace::TraceLayer;
    /// let http1_only = TraceLayer::new().http2_streams(false);
    /// # drop(http1_only);
    /// ```
    pub fn http2_streams(mut self, yes: bool) -> Self {
        self.http2_streams = yes;
        self
    }
}

impl fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceLayer")
            .field("default_trace", &self.default_trace)
            .field("trace_factory", &self.factory.is_some())
            .field("record_timings", &self.record_timings)
            .field("http2_streams", &self.http2_streams)
            .finish()
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            layer: self.clone(),
        }
    }
}
