//! Loopback servers and traced clients for the end-to-end tests.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use httptrace::{Event, RequestBody, Trace, TraceLayer, TracingConnector, TracingResolver};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::Layer;

pub type Body = Full<Bytes>;

/// A resolver for tests: answers every name with fixed addresses (or an error), never asking
/// the system.
#[derive(Clone)]
pub struct StaticResolver {
    pub addrs: Result<Vec<SocketAddr>, &'static str>,
    pub delay: Duration,
}

impl tower::Service<Name> for StaticResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

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

pub type Connector<R> = TracingConnector<HttpConnector<TracingResolver<R>>>;
pub type TracedClient<R> = Trace<Client<Connector<R>, RequestBody<Body>>>;

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

pub fn client() -> TracedClient<hyper_util::client::legacy::connect::dns::GaiResolver> {
    client_with(
        hyper_util::client::legacy::connect::dns::GaiResolver::new(),
        TraceLayer::new(),
    )
}

/// What the loopback server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub conn: u64,
    pub peer: SocketAddr,
}

/// A loopback HTTP/1 server. Query parameters steer it: `delay_ms=N` before the response,
/// `close=1` answers `Connection: close`, `len=N` the body length (default 5: `hello`).
/// Responses carry `x-conn` (the server's connection number), `x-peer` (the client's address)
/// and echo `x-req`.
pub struct Server {
    pub addr: SocketAddr,
    pub conns: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start() -> Server {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(bind: &str) -> Server {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicU64::new(0));
        let counter = conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let conn = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, conn, peer));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server { addr, conns, task }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }
}

fn param(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

async fn handle(
    req: Request<Incoming>,
    conn: u64,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let delay = param(&req, "delay_ms").unwrap_or(0);
    let close = param(&req, "close") == Some(1);
    let len = param(&req, "len").unwrap_or(5) as usize;
    let echo = req.headers().get("x-req").cloned();
    let got_cl = req.headers().get(http::header::CONTENT_LENGTH).cloned();
    let got_te = req.headers().get(http::header::TRANSFER_ENCODING).cloned();
    let got = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let body = if len == 5 {
        Bytes::from_static(b"hello")
    } else {
        Bytes::from(vec![b'x'; len])
    };
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert("x-conn", conn.into());
    res.headers_mut()
        .insert("x-peer", peer.to_string().parse().unwrap());
    res.headers_mut().insert("x-got-len", got.into());
    if let Some(v) = got_cl {
        res.headers_mut().insert("x-got-cl", v);
    }
    if let Some(v) = got_te {
        res.headers_mut().insert("x-got-te", v);
    }
    if let Some(echo) = echo {
        res.headers_mut().insert("x-req", echo);
    }
    if close {
        res.headers_mut()
            .insert(http::header::CONNECTION, "close".parse().unwrap());
    }
    Ok(res)
}

pub fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

/// Checks that every Start has exactly one Done after it, and that the request ends once.
pub fn assert_paired(events: &[Event]) {
    let count = |n: &str| events.iter().filter(|e| e.name() == n).count();
    for (start, done) in [("DNSStart", "DNSDone"), ("ConnectStart", "ConnectDone")] {
        assert_eq!(
            count(start),
            count(done),
            "{start}/{done} unpaired in {:?}",
            names(events)
        );
        let mut open = 0i32;
        for e in events {
            if e.name() == start {
                open += 1;
                assert_eq!(open, 1, "nested {start} in {:?}", names(events));
            } else if e.name() == done {
                open -= 1;
                assert_eq!(open, 0, "{done} without {start} in {:?}", names(events));
            }
        }
    }
    let ends = count("ResponseBodyDone") + count("RequestFailed") + count("RequestCanceled");
    assert_eq!(ends, 1, "request must end once: {:?}", names(events));
}
