//! HTTP/2 for the tests and the stress example: an h2c server that tells when it got and
//! answered each request, a traced h2c client, and a request's own events. The load runner that
//! checks every request's events as it goes is [`crate::load::run_h2_load`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use httptrace::{Event, Recorder, RequestBody, TraceLayer, TracingConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, ServiceExt};

use crate::clients::{traced, Body, SendTraced};
use crate::events::{names, sequence};

/// What the server saw of each request, by path.
pub type Answered = Arc<Mutex<HashMap<String, Served>>>;

/// What the server saw of one request.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// When the server got it.
    pub got: Instant,
    /// When the server answered it.
    pub answered: Instant,
    /// The client's port on the connection that carried it.
    pub peer_port: u16,
    /// Its stream: the server's service is called for each stream in the order the streams
    /// open (ids 1, 3, 5...).
    pub stream_id: u32,
}

/// An h2c server: `/<n>` answers `/<n>` after `n` ms; `/reset` resets its stream (the service
/// fails); after `goaway_after` requests on a connection it shuts that connection down
/// gracefully (GOAWAY), finishing the streams in flight.
pub async fn h2_server(goaway_after: Option<usize>) -> (SocketAddr, Answered) {
    h2_server_over(goaway_after, |tcp| async move { Some(TokioIo::new(tcp)) }).await
}

/// The same server over what `accept` makes of each TCP connection (e.g. its TLS session;
/// `None`: the connection is dropped).
pub async fn h2_server_over<A, F, I>(
    goaway_after: Option<usize>,
    accept: A,
) -> (SocketAddr, Answered)
where
    A: Fn(tokio::net::TcpStream) -> F + Send + 'static,
    F: std::future::Future<Output = Option<I>> + Send + 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Answered = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).unwrap();
            let peer_port = tcp.peer_addr().map_or(0, |a| a.port());
            let (io, seen) = (accept(tcp), seen2.clone());
            tokio::spawn(async move {
                if let Some(io) = io.await {
                    serve_h2(io, seen, goaway_after, peer_port).await;
                }
            });
        }
    });
    (addr, seen)
}

async fn serve_h2<I>(io: I, seen: Answered, goaway_after: Option<usize>, peer_port: u16)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (count_tx, mut count_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let streams = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        let count_tx = count_tx.clone();
        // called as each stream opens, in order
        let n = streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let stream_id = 2 * n - 1;
        async move {
            let got = Instant::now();
            let _ = count_tx.send(());
            let path = req.uri().path().to_owned();
            if req.method() == http::Method::POST {
                // the whole body first
                let _ = req.into_body().collect().await;
            }
            if path == "/reset" {
                tokio::time::sleep(Duration::from_millis(5)).await;
                return Err("reset this stream");
            }
            // `/<ms>` or `/<ms>/<anything>`
            let ms: u64 = path[1..]
                .split('/')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let served = Served {
                got,
                answered: Instant::now(),
                peer_port,
                stream_id,
            };
            seen.lock().unwrap().insert(path.clone(), served);
            Ok::<_, &'static str>(http::Response::new(Full::new(Bytes::from(path))))
        }
    });
    let conn =
        hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    let Some(limit) = goaway_after else {
        let _ = conn.await;
        return;
    };
    let mut n = 0;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            Some(()) = count_rx.recv() => {
                n += 1;
                if n == limit {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                    return;
                }
            }
        }
    }
}

/// An in-memory connection to the h2c test server: one end of a tokio duplex pipe, which has
/// no addresses to tell (no hyper-util `HttpInfo`), as a Unix socket or a mock wouldn't.
#[derive(Debug)]
pub struct MemIo(TokioIo<tokio::io::DuplexStream>);

impl hyper::rt::Read for MemIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for MemIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl hyper_util::client::legacy::connect::Connection for MemIo {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

/// What [`in_memory_connector`] returns for each connect.
pub type MemConnecting =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<MemIo, std::io::Error>> + Send>>;

/// A connector (`Service<Uri>`) whose every connection is an in-memory pipe to a new h2c test
/// server (as [`h2_server`] serves), and what that server saw (peer port 0: no addresses).
pub fn in_memory_connector() -> (
    tower::util::ServiceFn<impl Fn(http::Uri) -> MemConnecting + Clone + Send + Sync + 'static>,
    Answered,
) {
    let seen: Answered = Arc::default();
    let served = seen.clone();
    let connect = tower::service_fn(move |_uri: http::Uri| {
        let seen = served.clone();
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(1 << 16);
            tokio::spawn(serve_h2(TokioIo::new(server), seen, None, 0));
            Ok(MemIo(TokioIo::new(client)))
        }) as MemConnecting
    });
    (connect, seen)
}

/// hyper-util's client, `http2_only`, on a traced `HttpConnector`, not layered.
pub fn h2c_inner() -> Client<TracingConnector<HttpConnector>, RequestBody<Body>> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(TracingConnector::new(http))
}

/// A GET of `url` sent on `inner` around any layer (so that its stream is nobody's), read to
/// its end.
pub async fn get_around_the_layer(
    inner: &Client<TracingConnector<HttpConnector>, RequestBody<Body>>,
    url: String,
) {
    let req = http::Request::get(url)
        .body(RequestBody::new(Body::default()))
        .unwrap();
    let res = inner.request(req).await.unwrap();
    res.into_body().collect().await.unwrap();
}

/// [`h2c_inner`] in `layer`.
pub fn h2c_client(layer: TraceLayer) -> impl SendTraced + Send + 'static {
    layer.layer(h2c_inner())
}

/// One request's events: its own recorder, and the response body it read.
pub async fn fetch(
    client: impl SendTraced + Send + 'static,
    url: String,
) -> (Vec<Event>, Result<String, String>) {
    let rec = Recorder::new();
    let res = client.oneshot(traced(&url, rec.trace())).await;
    let body = match res {
        Ok(res) => {
            assert_eq!(res.version(), http::Version::HTTP_2);
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            Ok(String::from_utf8(bytes.to_vec()).unwrap())
        }
        Err(e) => Err(e.to_string()),
    };
    (rec.events(), body)
}

/// A request's own events on HTTP/2, in order, when its stream is known: those of an HTTP/1
/// load request on a pooled connection (no `PutIdleConn` either).
pub const STREAM: &[&str] = crate::load::LOAD_CORE;

/// The names of a request's events but those of connects (its own may end in the background,
/// after it) and of the connection's life, which come when they come; once checked that they
/// are all in time order ([`sequence`]).
#[track_caller]
pub fn own(events: &[Event]) -> Vec<&'static str> {
    own_of(sequence(events))
}

/// The names of `all` that [`own`] keeps.
pub(crate) fn own_of(all: Vec<&'static str>) -> Vec<&'static str> {
    all.into_iter()
        .filter(|n| {
            !matches!(
                *n,
                "DNSStart"
                    | "DNSDone"
                    | "ConnectStart"
                    | "ConnectDone"
                    | "TLSHandshakeStart"
                    | "TLSHandshakeDone"
                    | "Http2Ready"
                    | "GoAway"
                    | "ConnectionClosed"
            )
        })
        .collect()
}

/// When the first event named `name` came (panics if none did).
pub fn at(events: &[Event], name: &str) -> Instant {
    events
        .iter()
        .find(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", names(events)))
        .at()
}
