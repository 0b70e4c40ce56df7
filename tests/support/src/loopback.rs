//! A loopback server on a thread and runtime of its own, answering `hello` on every connection,
//! and the bare and traced client stacks sent to it: shared by `tests/alloc.rs`,
//! `benches/overhead.rs`, `benches/http2.rs` and `benches/handshake.rs`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Empty, Full};
use httptrace::{RequestBody, Trace, TraceLayer, TracingConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tower::{Layer, Service, ServiceExt};

/// The server: stopped, and its thread joined, when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server answering `hello` on every connection.
    pub fn start() -> Server {
        Server::start_with(serve_hello)
    }

    /// A server that runs `connection` on every connection it accepts (Nagle off), on a task of
    /// its own.
    pub fn start_with<F, Fut>(mut connection: F) -> Server
    where
        F: FnMut(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            return;
                        };
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(connection(stream));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://` its address `/`.
    pub fn uri(&self) -> Uri {
        format!("http://{}/", self.addr).parse().expect("uri")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves HTTP/1 on `io`, answering `hello` to every request.
pub async fn serve_hello<I>(io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(|_req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// A current-thread runtime for the client.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

/// hyper-util's client, untraced.
pub type Bare = Client<HttpConnector, Empty<Bytes>>;
/// hyper-util's client on a traced connector, in a [`TraceLayer`].
pub type Traced = Trace<Client<TracingConnector<HttpConnector>, RequestBody<Empty<Bytes>>>>;

/// hyper-util's connector, without Nagle's delay.
pub fn nodelay_http() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

/// hyper-util's client on `http`, untraced.
pub fn bare(http: HttpConnector) -> Bare {
    Client::builder(TokioExecutor::new()).build(http)
}

/// hyper-util's client on `http`, traced by `layer`.
pub fn traced(http: HttpConnector, layer: TraceLayer) -> Traced {
    layer.layer(
        Client::builder(TokioExecutor::new())
            .build::<_, RequestBody<Empty<Bytes>>>(TracingConnector::new(http)),
    )
}

/// A GET of `uri` with an empty body.
#[inline]
pub fn request(uri: &Uri) -> Request<Empty<Bytes>> {
    Request::get(uri.clone())
        .body(Empty::new())
        .expect("request")
}

/// Waits until `svc` is ready, then sends `req` on it.
pub async fn call<S, B>(svc: &mut S, req: Request<Empty<Bytes>>) -> Response<B>
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    svc.ready()
        .await
        .expect("ready")
        .call(req)
        .await
        .expect("response")
}

/// Sends `req` on `svc` and reads the `hello` to the end.
pub async fn send<S, B>(svc: &mut S, req: Request<Empty<Bytes>>)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    read_hello(call(svc, req).await.into_body()).await;
}

/// Reads the server's `hello` to the end, frame by frame.
pub async fn read_hello<B>(body: B)
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut body = pin!(body);
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("body").into_data() {
            len += data.len();
        }
    }
    assert_eq!(len, 5);
}
