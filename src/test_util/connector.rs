use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use hyper::body::{Body, Incoming};
use hyper::service::Service as HyperService;
use hyper_util::rt::TokioIo;
use tower_service::Service;

use super::plan::Plan;
use super::stream::{BreakAfter, MemoryAddrs, MemoryStream, MemoryTls};
use crate::binding;
use crate::event::TlsState;
use crate::util::default_port;
use crate::TracingConnector;

type BoxError = Box<dyn StdError + Send + Sync>;
type Serve = dyn Fn(BreakAfter, Plan) + Send + Sync;

/// A connector (`Service<Uri>`) whose connections are in memory, served by a hyper service
/// the test supplies: hyper-util's real client, pool and dispatch run over it, and under a
/// [`TracingConnector`] every event fires as on a socket, on HTTP/1 and HTTP/2.
///
/// Each connection follows the [`Plan`] that [`plan`](Self::plan) returns for its number
/// (from 1): its connect delay or failure, a TLS handshake to report, HTTP/2, a close after a
/// number of requests, a break mid-response, its addresses. The service runs on a task of its
/// own per connection, as a server would (`tokio::time::sleep` in it is the server's delay).
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use httptrace::test_util::{MemoryConnector, Plan};
/// use httptrace::RequestBody;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// let server = hyper::service::service_fn(|_req| async {
///     tokio::time::sleep(Duration::from_millis(40)).await; // the server's time
///     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
/// });
/// let connector = MemoryConnector::new(server)
///     .plan(|_n| Plan::new().connect(Duration::from_millis(5)))
///     .traced();
/// let client = Client::builder(TokioExecutor::new())
///     .build::<_, RequestBody<Full<Bytes>>>(connector);
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct MemoryConnector {
    serve: Arc<Serve>,
    plan: Arc<dyn Fn(u64) -> Plan + Send + Sync>,
    made: Arc<AtomicU64>,
}

impl fmt::Debug for MemoryConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConnector")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl MemoryConnector {
    /// Connections served by `service` (`hyper::service::service_fn`, or any hyper service),
    /// each with the default [`Plan`].
    pub fn new<S, B>(service: S) -> Self
    where
        S: HyperService<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let serve = move |io: BreakAfter, plan: Plan| {
            let service = CloseAfter {
                inner: service.clone(),
                left: plan.close_after.map(|n| Arc::new(AtomicU64::new(n))),
            };
            let io = TokioIo::new(io);
            if plan.http2 {
                serve_h2(io, service);
            } else {
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        };
        Self {
            serve: Arc::new(serve),
            plan: Arc::new(|_| Plan::new()),
            made: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The plan of each connection, by its number (from 1).
    pub fn plan(mut self, plan: impl Fn(u64) -> Plan + Send + Sync + 'static) -> Self {
        self.plan = Arc::new(plan);
        self
    }

    /// How many connections were asked for so far (refused ones included).
    pub fn connections(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }

    /// This connector under a [`TracingConnector`] that reads the TLS state each
    /// [`Plan::tls`] reports: the connector to give the client.
    pub fn traced(self) -> TracingConnector<Self, MemoryTls> {
        TracingConnector::with_inspector(self, MemoryTls)
    }
}

#[cfg(feature = "http2")]
fn serve_h2<S, B>(io: TokioIo<BreakAfter>, service: CloseAfter<S>)
where
    S: HyperService<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    tokio::spawn(async move {
        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(io, service)
            .await;
    });
}

#[cfg(not(feature = "http2"))]
fn serve_h2<S>(io: TokioIo<BreakAfter>, service: CloseAfter<S>) {
    // no HTTP/2 server without the feature: the connection is dropped, and its request fails
    drop((io, service));
}

impl Service<Uri> for MemoryConnector {
    type Response = MemoryStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<MemoryStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let n = self.made.fetch_add(1, Ordering::SeqCst) + 1;
        let plan = (self.plan)(n);
        let serve = self.serve.clone();
        Box::pin(async move {
            tokio::time::sleep(plan.connect).await;
            if plan.refuse {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("connection {n} refused by its plan"),
                ));
            }
            let port = u16::try_from(49_151 + n).unwrap_or(u16::MAX);
            let addrs = MemoryAddrs {
                local: plan
                    .local
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port))),
                remote: plan
                    .remote
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port(&dst)))),
            };
            let tls = match plan.tls {
                Some(handshake) => {
                    let server_name = dst.host().map(str::to_owned);
                    // the connect is done and the handshake starts, as a transport under TLS
                    // tells it
                    if let Some(dial) = binding::current_dial() {
                        dial.transport_done(Ok(crate::util::ConnAddrs {
                            local: Some(addrs.local),
                            remote: Some(addrs.remote),
                        }));
                        dial.tls_start(server_name.clone());
                    }
                    tokio::time::sleep(handshake).await;
                    Some(tls_state(server_name, plan.http2))
                }
                None => None,
            };
            let (client, server) = tokio::io::duplex(64 * 1024);
            let http2 = plan.http2;
            let server = BreakAfter::new(server, plan.break_after);
            serve(server, plan);
            Ok(MemoryStream::new(client, addrs, http2, tls))
        })
    }
}

/// What a planned handshake negotiated.
fn tls_state(server_name: Option<String>, http2: bool) -> TlsState {
    TlsState {
        version: "TLSv1.3".to_owned(),
        alpn: Some(match http2 {
            true => b"h2".to_vec(),
            false => b"http/1.1".to_vec(),
        }),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".to_owned(),
        peer_certificates: Vec::new(),
        server_name,
        resumed: false,
    }
}

/// The test's service, answering the last request of a connection that closes after a number
/// of them with `Connection: close`.
#[derive(Clone)]
struct CloseAfter<S> {
    inner: S,
    left: Option<Arc<AtomicU64>>,
}

impl<S, B> HyperService<Request<Incoming>> for CloseAfter<S>
where
    S: HyperService<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let last = self
            .left
            .as_ref()
            .is_some_and(|left| left.fetch_sub(1, Ordering::SeqCst) == 1);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            if last {
                res.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(res)
        })
    }
}
