//! The connector layer for `reqwest::ClientBuilder::connector_layer`, and the connections it
//! made, by address, to name them in a derived `GotConn`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};

use hyper_util::client::legacy::connect::Connection;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use crate::binding::{self, DialCtx};
use crate::error::SharedError;
use crate::util::ConnAddrs;

/// The layer for `reqwest::ClientBuilder::connector_layer`: reports `ConnectStart` and
/// `ConnectDone` of a traced request around reqwest's connector (its DNS, TCP and TLS), and
/// passes the connection through unchanged.
///
/// ```
/// # httptrace_test_support::tls::install_provider();
/// let client = reqwest::Client::builder()
///     .connector_layer(httptrace::reqwest::connector_layer())
///     .build();
/// # drop(client);
/// ```
pub fn connector_layer() -> ConnectorLayer {
    ConnectorLayer { _p: () }
}

/// See [`connector_layer`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectorLayer {
    _p: (),
}

impl<S> Layer<S> for ConnectorLayer {
    type Service = TracingConnect<S>;

    fn layer(&self, inner: S) -> TracingConnect<S> {
        TracingConnect { inner }
    }
}

/// The service of [`ConnectorLayer`]: generic over reqwest's private request type, its
/// connection passed through.
#[derive(Debug, Clone)]
pub struct TracingConnect<S> {
    inner: S,
}

impl<S, R> Service<R> for TracingConnect<S>
where
    S: Service<R>,
    S::Response: Connection,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TracingConnectFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        let dial = binding::current_request().map(|req| DialCtx::new(req, None));
        let inner = match &dial {
            Some(dial) => binding::with_dial(dial, || self.inner.call(dst)),
            None => self.inner.call(dst),
        };
        TracingConnectFuture {
            inner,
            dial: dial.map(CancelGuard),
        }
    }
}

#[derive(Debug)]
struct CancelGuard(Arc<DialCtx>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.canceled();
    }
}

pin_project! {
    /// The future of [`TracingConnect`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct TracingConnectFuture<F> {
        #[pin]
        inner: F,
        dial: Option<CancelGuard>,
    }
}

impl<F, T, E> Future for TracingConnectFuture<F>
where
    F: Future<Output = Result<T, E>>,
    T: Connection,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(CancelGuard(dial)) = this.dial.as_ref() else {
            // a request with no trace pays nothing here: its connection isn't registered
            return Poll::Ready(ready!(this.inner.poll(cx)).map_err(Into::into));
        };
        let inner = this.inner;
        let result = ready!(binding::with_dial(dial, || inner.poll(cx)));
        Poll::Ready(match result {
            Ok(conn) => {
                let addrs = ConnAddrs::of(&conn);
                if let Some(local) = addrs.local {
                    register((local, addrs.remote), dial.conn_id);
                }
                dial.finish(Ok(None), Ok(addrs));
                Ok(conn)
            }
            Err(err) => {
                let err = SharedError::new(err);
                dial.finish(Err(err.clone()), Err(err.clone()));
                Err(Box::new(err))
            }
        })
    }
}

// Connections made through the connector layer, by local address, to name them in `GotConn`:
// reqwest's connection type is sealed, so none can carry its id to the response.

type ConnKey = (SocketAddr, Option<SocketAddr>);

fn registry() -> &'static Mutex<HashMap<ConnKey, u64>> {
    static CONNS: OnceLock<Mutex<HashMap<ConnKey, u64>>> = OnceLock::new();
    CONNS.get_or_init(Default::default)
}

/// How many connections the registry remembers; past that it starts afresh (a connection it
/// forgot is named 0 in a derived `GotConn`).
const REGISTRY_CAP: usize = 4096;

fn register(key: ConnKey, conn_id: u64) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= REGISTRY_CAP {
        map.clear();
    }
    // a (local, remote) pair names one live connection at a time: a new one replaces the old
    map.insert(key, conn_id);
}

pub(super) fn registered(key: ConnKey) -> Option<u64> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied()
}
