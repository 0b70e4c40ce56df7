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
use httptrace::{
    ClientTrace, Event, GotConnInfo, RequestBody, ResponseBody, Trace, TraceLayer,
    TracingConnector, TracingResolver,
};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

pub type Body = Full<Bytes>;

/// A resolver for tests: answers every name with fixed addresses (or an error), never asking
/// the system.
#[derive(Clone)]
pub struct StaticResolver {
    pub addrs: Result<Vec<SocketAddr>, &'static str>,
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

/// A traced client on the system resolver, with `layer`.
pub fn client_with_layer(
    layer: TraceLayer,
) -> TracedClient<hyper_util::client::legacy::connect::dns::GaiResolver> {
    client_with(
        hyper_util::client::legacy::connect::dns::GaiResolver::new(),
        layer,
    )
}

pub fn client() -> TracedClient<hyper_util::client::legacy::connect::dns::GaiResolver> {
    client_with_layer(TraceLayer::new())
}

/// A loopback server, and a traced client on the system resolver.
pub async fn server_and_client() -> (
    Server,
    TracedClient<hyper_util::client::legacy::connect::dns::GaiResolver>,
) {
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

/// The names of `events` but `ConnectionClosed`, which may come or not depending on when the
/// connection's task notices the close.
pub fn names_but_closed(events: &[Event]) -> Vec<&'static str> {
    names(events)
        .into_iter()
        .filter(|n| *n != "ConnectionClosed")
        .collect()
}

/// The first `GotConn`'s details.
pub fn got_conn(events: &[Event]) -> GotConnInfo {
    events
        .iter()
        .find_map(|e| match e {
            Event::GotConn(i) => Some(i.clone()),
            _ => None,
        })
        .expect("GotConn")
}

/// A request on a connection dialled for it, which is pooled afterwards.
pub const FRESH: &[&str] = &[
    "GetConn",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
    "PutIdleConn",
];

/// A request on a connection dialled for it, which is not pooled afterwards (closed, or its
/// response body dropped before the end): `FRESH` but `PutIdleConn`.
pub const FRESH_UNPOOLED: &[&str] = FRESH.split_last().unwrap().1;

/// A request on an idle pooled connection, which is pooled again afterwards.
pub const REUSED: &[&str] = &[
    "GetConn",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
    "PutIdleConn",
];

/// Checks that every Start has exactly one Done after it, and that the request ends once.
pub fn assert_paired(events: &[Event]) {
    let count = |n: &str| events.iter().filter(|e| e.name() == n).count();
    for (start, done) in [
        ("DNSStart", "DNSDone"),
        ("TLSHandshakeStart", "TLSHandshakeDone"),
    ] {
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
        assert_eq!(open, 0, "{start} without {done} in {:?}", names(events));
    }
    // connects pair by address (attempts may overlap); a Start that didn't know its address
    // pairs with the next Done
    let mut open: Vec<Option<SocketAddr>> = Vec::new();
    for e in events {
        match e {
            Event::ConnectStart(s) => open.push(s.addr),
            Event::ConnectDone(d) => {
                let at = open
                    .iter()
                    .position(|a| a.is_some() && *a == d.addr)
                    .or_else(|| open.iter().position(Option::is_none))
                    .unwrap_or_else(|| {
                        panic!("ConnectDone without its Start in {:?}", names(events))
                    });
                open.remove(at);
            }
            _ => {}
        }
    }
    assert!(
        open.is_empty(),
        "ConnectStart without Done in {:?}",
        names(events)
    );
    let ends = count("ResponseBodyDone") + count("RequestFailed") + count("RequestCanceled");
    assert_eq!(ends, 1, "request must end once: {:?}", names(events));
}

/// An error and its causes, descending into `io::Error`s and httptrace's `SharedError`s (whose
/// `source()` skips the error they wrap).
pub fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        out.push(e);
        let io = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        let shared = e
            .downcast_ref::<httptrace::SharedError>()
            .map(|s| s.get_ref());
        cur = match io.or(shared) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
        if out.len() > 32 {
            break;
        }
    }
    out
}
