use std::any::Any;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use hyper_util::client::legacy::connect::Connection;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::io::TracedIo;
use crate::binding::{self, ConnSide, DialCtx};
use crate::error::SharedError;
use crate::event::{ConnectDoneInfo, Event, TlsState};
use crate::trace::ClientTrace;
use crate::util::{default_port, ip_literal, origin_key, ConnAddrs};

/// Wraps a connector (`Service<Uri>`: hyper-util's `HttpConnector`, hyper-rustls'
/// `HttpsConnector`, a mock) to report the connect of a traced request, and to wrap every
/// connection in a [`TracedIo`].
///
/// The request type stays generic, so one wrapper serves any connector whose request is
/// `'static`. A request with no trace pays nothing per request.
///
/// A dial belongs to the traced request whose task calls the connector, if it is for that
/// request's origin (host and port): a side request that a middleware between the layer and
/// the client makes on the same client, to another origin, dials for itself. So the traced
/// connector must see the request's own URI: put it outside any proxy connector (a side request
/// to the same origin can't be told from the request's own).
///
/// Under it, a [`TracingResolver`](crate::TracingResolver) reports the lookup, a
/// [`PerAddressConnector`](crate::connect::PerAddressConnector) each address attempt, and a
/// [`TracingTransport`](crate::connect::TracingTransport) the TCP connect under a TLS connector. `I`
/// reads what a TLS handshake negotiated from the connection (see [`InspectTls`]); `NoTls` by
/// default.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use httptrace::{RequestBody, TracingConnector};
/// use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// use hyper_util::rt::TokioExecutor;
///
/// let client = Client::builder(TokioExecutor::new())
///     .build::<_, RequestBody<Full<Bytes>>>(TracingConnector::new(HttpConnector::new()));
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct TracingConnector<C, I = NoTls> {
    inner: C,
    inspect: I,
    observer: Option<ClientTrace>,
}

impl<C> TracingConnector<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            inspect: NoTls,
            observer: None,
        }
    }
}

impl<C, I> TracingConnector<C, I> {
    /// Wraps `inner`, reading TLS details from its connections with `inspect`.
    pub fn with_inspector(inner: C, inspect: I) -> Self {
        Self {
            inner,
            inspect,
            observer: None,
        }
    }

    /// Reports the life of every connection this connector makes to `observer`, whatever
    /// request (traced or not) made it: a `ConnectDone` when it is made (named by its id, with
    /// its addresses) and a `ConnectionClosed` when it ends; on HTTP/2 also `Http2Ready` and
    /// `GoAway`. The requests' own traces still get
    /// theirs. The observer belongs to the client: its pooled connections keep it alive, and it
    /// goes with them. Default: none.
    ///
    /// ```
    /// use httptrace::{ClientTrace, Event, TracingConnector};
    ///
    /// let connector = TracingConnector::http().observe_connections(ClientTrace::from_fn(|e: &Event| {
    ///     if let Event::ConnectionClosed(c) = e {
    ///         println!("connection {} closed after {} requests", c.conn_id, c.requests);
    ///     }
    /// }));
    /// # drop(connector);
    /// ```
    pub fn observe_connections(mut self, observer: ClientTrace) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The inner connector.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The inner connector, mutably (to change its settings).
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// Unwraps the inner connector.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

/// Reads what the TLS handshake of a connection negotiated, for `TLSHandshakeDone`.
///
/// [`NoTls`] reads nothing; with the `rustls` feature, `Rustls` reads
/// hyper-rustls' `MaybeHttpsStream`.
pub trait InspectTls<T>: Clone + Send + Sync + 'static {
    /// The negotiated state, if `io` is a TLS connection this inspector understands.
    fn tls_state(&self, io: &T) -> Option<TlsState>;
}

/// An [`InspectTls`] that reads nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTls;

impl<T> InspectTls<T> for NoTls {
    fn tls_state(&self, _io: &T) -> Option<TlsState> {
        None
    }
}

impl<C, I, R> Service<R> for TracingConnector<C, I>
where
    C: Service<R>,
    C::Response: Connection,
    C::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: InspectTls<C::Response>,
    R: 'static,
{
    type Response = TracedIo<C::Response>;
    type Error = SharedError;
    type Future = ConnectFuture<C::Future, I>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(SharedError::new)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        // the dial of the request whose task is calling, unless it is for another origin (a
        // middleware's side request on the same client, within that task)
        let origin = (&dst as &dyn Any)
            .downcast_ref::<http::Uri>()
            .map_or(0, origin_key);
        let Some(req) = binding::current_request().filter(|req| req.dials_to(origin)) else {
            return ConnectFuture {
                inner: self.inner.call(dst),
                dial: None,
                inspect: self.inspect.clone(),
                observer: self.observer.clone(),
            };
        };
        let (port, literal) = target(&dst);
        let dial = DialCtx::new(req, port);
        // the layers below see the dial from their own `call` on (a per-address dialer takes
        // over the connect events there)
        let inner = binding::with_dial(&dial, || self.inner.call(dst));
        if literal.is_some() {
            dial.connect_start(literal);
        }
        ConnectFuture {
            inner,
            dial: Some(DialGuard(dial)),
            inspect: self.inspect.clone(),
            observer: self.observer.clone(),
        }
    }
}

/// The port a connector's request dials, and the address when its host is an IP literal (no
/// lookup will happen). Known for a `Uri`; other request types tell nothing.
fn target(dst: &dyn Any) -> (Option<u16>, Option<SocketAddr>) {
    let Some(uri) = dst.downcast_ref::<http::Uri>() else {
        return (None, None);
    };
    let port = default_port(uri);
    let literal = uri.host().and_then(ip_literal);
    (Some(port), literal.map(|ip| SocketAddr::new(ip, port)))
}

/// Reports the connect (or handshake) as canceled if its future is dropped before it finished.
#[derive(Debug)]
struct DialGuard(Arc<DialCtx>);

impl Drop for DialGuard {
    fn drop(&mut self) {
        self.0.canceled();
    }
}

pin_project! {
    /// The future of [`TracingConnector`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct ConnectFuture<F, I = NoTls> {
        #[pin]
        inner: F,
        dial: Option<DialGuard>,
        inspect: I,
        observer: Option<ClientTrace>,
    }
}

impl<F, T, E, I> Future for ConnectFuture<F, I>
where
    F: Future<Output = Result<T, E>>,
    T: Connection,
    E: Into<Box<dyn StdError + Send + Sync>>,
    I: InspectTls<T>,
{
    type Output = Result<TracedIo<T>, SharedError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(DialGuard(dial)) = this.dial.as_ref() else {
            let io = ready!(this.inner.poll(cx)).map_err(SharedError::new)?;
            let mut conn = ConnSide::new(binding::next_conn_id(), None);
            if let Some(observer) = this.observer.take() {
                let addrs = ConnAddrs::of(&io);
                opened(&observer, conn.conn_id(), addrs);
                conn = conn.with_addrs(addrs).with_observer(Some(observer));
            }
            return Poll::Ready(Ok(TracedIo::new(io, conn)));
        };
        let inner = this.inner;
        let result = ready!(binding::with_dial(dial, || inner.poll(cx)));
        Poll::Ready(match result {
            Ok(io) => {
                let addrs = dial.conn_addrs().unwrap_or_else(|| ConnAddrs::of(&io));
                dial.finish(Ok(this.inspect.tls_state(&io)), Ok(addrs));
                let observer = this.observer.take();
                if let Some(observer) = &observer {
                    opened(observer, dial.conn_id, addrs);
                }
                let mut conn = ConnSide::new(dial.conn_id, Some(dial.request_id()));
                if let Some(req) = dial.request() {
                    conn = conn.dialled_by(&req);
                }
                let conn = conn.with_addrs(addrs).with_observer(observer);
                Ok(TracedIo::new(io, conn))
            }
            Err(err) => {
                let err = SharedError::new(err);
                dial.finish(Err(err.clone()), Err(err.clone()));
                Err(err)
            }
        })
    }
}

/// Tells a connection observer that a connection was made.
fn opened(observer: &ClientTrace, conn_id: u64, addrs: ConnAddrs) {
    observer.emit(&Event::ConnectDone(ConnectDoneInfo {
        at: crate::util::now(),
        network: "tcp",
        addr: addrs.remote,
        local_addr: addrs.local,
        conn_id: Some(conn_id),
        error: None,
    }));
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn ports_and_ip_literals() {
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        let lit = |s: &str| Some(s.parse().unwrap());
        assert_eq!(
            target(&uri("http://127.0.0.1:8080/")),
            (Some(8080), lit("127.0.0.1:8080"))
        );
        assert_eq!(target(&uri("http://[::1]/")), (Some(80), lit("[::1]:80")));
        assert_eq!(
            target(&uri("https://10.0.0.1/")),
            (Some(443), lit("10.0.0.1:443"))
        );
        assert_eq!(target(&uri("http://localhost:1/")), (Some(1), None));
        assert_eq!(target(&"not a uri"), (None, None));
    }
}
