//! Traced hyper-util clients on loopback, the requests sent on them, and test resolvers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use httptrace::{
    ClientTrace, RequestBody, ResponseBody, Trace, TraceLayer, TracingConnector, TracingResolver,
};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

use crate::servers::{precise_sleep_until, Server};

/// The request body of the clients here.
pub type Body = Full<Bytes>;

/// What the test resolvers here return: a boxed lookup.
pub type Lookup<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

/// A resolver for tests: answers every name with fixed addresses (or an error), never asking
/// the system.
#[derive(Clone)]
pub struct StaticResolver {
    /// The addresses every lookup answers, or the message of the error it fails with.
    pub addrs: Result<Vec<SocketAddr>, &'static str>,
    /// How long every lookup takes.
    pub delay: Duration,
}

impl StaticResolver {
    /// Answers every name with `addr` alone, after `delay`.
    pub fn answering(addr: SocketAddr, delay: Duration) -> StaticResolver {
        StaticResolver {
            addrs: Ok(vec![addr]),
            delay,
        }
    }
}

impl tower::Service<Name> for StaticResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Lookup<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        let addrs = self.addrs.clone();
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            addrs
                .map(|a| a.into_iter())
                .map_err(|msg| std::io::Error::new(std::io::ErrorKind::NotFound, msg))
        })
    }
}

/// A resolver that answers what the inner one answers, `delay` after it was called (by
/// [`precise_sleep_until`]; the inner one's own time included), and logs when each lookup
/// started and ended.
#[derive(Clone)]
pub struct TimedResolver<R> {
    /// The resolver that answers.
    pub inner: R,
    /// How long after it was called each lookup answers.
    pub delay: Duration,
    /// When each lookup started and when it answered.
    pub lookups: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

impl<R> tower::Service<Name> for TimedResolver<R>
where
    R: tower::Service<Name> + Clone + Send + 'static,
    R::Response: Send,
    R::Error: Send,
    R::Future: Send,
{
    type Response = R::Response;
    type Error = R::Error;
    type Future = Lookup<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // the inner resolver is made ready on its clone, in the future
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let started = Instant::now();
        let inner = self.inner.clone();
        let (delay, lookups) = (self.delay, self.lookups.clone());
        Box::pin(async move {
            let res = inner.oneshot(name).await;
            precise_sleep_until(started + delay).await;
            lookups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((started, Instant::now()));
            res
        })
    }
}

/// The connector of the clients here: hyper-util's, on a traced resolver, traced.
pub type Connector<R> = TracingConnector<HttpConnector<TracingResolver<R>>>;
/// A traced hyper-util client looking names up with `R`.
pub type TracedClient<R> = Trace<Client<Connector<R>, RequestBody<Body>>>;

/// A traced client (Nagle off, idle connections kept 30 s) looking names up with `resolver`,
/// in `layer`.
pub fn client_with<R>(resolver: R, layer: TraceLayer) -> TracedClient<R>
where
    R: tower::Service<Name> + Clone + Send + Sync + 'static,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R::Future: Send,
{
    let mut http = HttpConnector::new_with_resolver(TracingResolver::new(resolver));
    http.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(TracingConnector::new(http));
    layer.layer(client)
}

/// A traced client on the system resolver, with `layer`.
pub fn client_with_layer(layer: TraceLayer) -> TracedClient<GaiResolver> {
    client_with(GaiResolver::new(), layer)
}

/// A traced client on the system resolver, in a default [`TraceLayer`].
pub fn client() -> TracedClient<GaiResolver> {
    client_with_layer(TraceLayer::new())
}

/// A loopback server, and a traced client on the system resolver.
pub async fn server_and_client() -> (Server, TracedClient<GaiResolver>) {
    let server = Server::start().await;
    (server, client())
}

/// A GET of `url` with an empty body and no trace of its own.
pub fn request(url: &str) -> Request<Body> {
    Request::get(url).body(Body::default()).unwrap()
}

/// A GET of `url` with `trace` in its extensions.
pub fn traced(url: &str, trace: ClientTrace) -> Request<Body> {
    let mut req = request(url);
    req.extensions_mut().insert(trace);
    req
}

/// Any of the traced clients here, as the helpers that send on them need it.
pub trait SendTraced:
    Clone
    + tower::Service<
        Request<Body>,
        Response = Response<ResponseBody<Incoming>>,
        Error = hyper_util::client::legacy::Error,
        Future: Send,
    >
{
}

impl<S> SendTraced for S where
    S: Clone
        + tower::Service<
            Request<Body>,
            Response = Response<ResponseBody<Incoming>>,
            Error = hyper_util::client::legacy::Error,
            Future: Send,
        >
{
}

/// Sends one GET with `trace` in its extensions, reads the body, returns the response head.
pub async fn get(client: &impl SendTraced, url: &str, trace: ClientTrace) -> http::response::Parts {
    let res = client
        .clone()
        .oneshot(traced(url, trace))
        .await
        .expect("response");
    let (parts, body) = res.into_parts();
    body.collect().await.expect("body");
    parts
}
