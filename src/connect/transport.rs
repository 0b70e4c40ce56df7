use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use hyper_util::client::legacy::connect::Connection;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::binding::{self, DialCtx};
use crate::util::ConnAddrs;

/// Wraps the transport connector under a TLS connector (e.g. the `HttpConnector` or
/// [`PerAddressConnector`](crate::connect::PerAddressConnector) inside hyper-rustls' `HttpsConnector`),
/// so that a [`TracingConnector`](crate::TracingConnector) above the TLS connector can tell the
/// TCP connect from the TLS handshake: when the transport connects, it reports `ConnectDone`
/// and, for an `https` destination, `TLSHandshakeStart`.
///
/// It returns the transport's connection unchanged, and does nothing outside a traced
/// `TracingConnector`.
///
/// ```
/// use httptrace::connect::{PerAddressConnector, TracingTransport};
/// use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
///
/// let transport = TracingTransport::new(PerAddressConnector::new(HttpConnector::new(), GaiResolver::new()));
/// // then: HttpsConnectorBuilder::new()...wrap_connector(transport), in a TracingConnector
/// # drop(transport);
/// ```
#[derive(Debug, Clone)]
pub struct TracingTransport<C> {
    inner: C,
}

impl<C> TracingTransport<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        Self { inner }
    }

    /// The inner connector.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The inner connector, mutably.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

impl<C> Service<http::Uri> for TracingTransport<C>
where
    C: Service<http::Uri>,
    C::Response: Connection,
    C::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = C::Response;
    type Error = C::Error;
    type Future = TransportFuture<C::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let tls_name = (dst.scheme() == Some(&http::uri::Scheme::HTTPS)).then(|| {
            dst.host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        });
        let dial = binding::current_dial();
        let inner = match &dial {
            Some(dial) => binding::with_dial(dial, || self.inner.call(dst)),
            None => self.inner.call(dst),
        };
        TransportFuture {
            inner,
            dial: dial.map(|dial| TransportGuard {
                dial,
                tls_name,
                finished: false,
            }),
        }
    }
}

#[derive(Debug)]
struct TransportGuard {
    dial: Arc<DialCtx>,
    /// `Some` for an `https` destination: the server name, if any.
    tls_name: Option<Option<String>>,
    finished: bool,
}

impl Drop for TransportGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.dial.transport_canceled();
        }
    }
}

pin_project! {
    /// The future of [`TracingTransport`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct TransportFuture<F> {
        #[pin]
        inner: F,
        dial: Option<TransportGuard>,
    }
}

impl<F, T, E> Future for TransportFuture<F>
where
    F: Future<Output = Result<T, E>>,
    T: Connection,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(guard) = this.dial.as_mut() else {
            return this.inner.poll(cx);
        };
        let inner = this.inner;
        let result = ready!(binding::with_dial(&guard.dial, || inner.poll(cx)));
        guard.finished = true;
        // a failure goes up unchanged: the outer connector reports it as the client sees it
        if let Ok(io) = &result {
            let addrs = guard.dial.conn_addrs().unwrap_or_else(|| ConnAddrs::of(io));
            guard.dial.transport_done(Ok(addrs));
            if let Some(name) = guard.tls_name.take() {
                guard.dial.tls_start(name);
            }
        }
        Poll::Ready(result)
    }
}
