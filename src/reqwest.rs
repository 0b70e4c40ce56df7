//! reqwest (feature `reqwest`): the same events and [`Timings`](crate::Timings) through
//! `reqwest::Client`.
//!
//! Three pieces, each optional:
//! - [`TraceLayer`](crate::TraceLayer) serves `reqwest::Client` as a tower
//!   `Service<reqwest::Request>`. reqwest requests have no extensions: attach the trace with
//!   [`ClientTrace::scope`](crate::ClientTrace::scope) or as the layer's per-client default.
//! - [`TracingResolve`] for `ClientBuilder::dns_resolver`: `DNSStart`/`DNSDone`, on hyper-util's
//!   `GaiResolver` (reqwest's own resolver is private) or around your own `Resolve`.
//! - [`connector_layer`] for `ClientBuilder::connector_layer`: `ConnectStart`/`ConnectDone`
//!   around reqwest's connector (DNS, TCP and TLS in one step there).
//! - [`redirect_policy`] for `ClientBuilder::redirect`: a `Redirect` event per hop.
//!
//! httptrace asks reqwest for rustls without a crypto provider (`rustls-no-provider`): your own
//! reqwest features choose the TLS backend, and if none brings a provider, install one before
//! building a `Client` (`rustls::crypto::ring::default_provider().install_default()`).
//!
//! ```no_run
//! use httptrace::{reqwest as traced, Recorder, TraceLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! # let _ = rustls::crypto::ring::default_provider().install_default();
//! let client = reqwest::Client::builder()
//!     .dns_resolver(traced::TracingResolve::gai())
//!     .connector_layer(traced::connector_layer())
//!     .redirect(traced::redirect_policy(10))
//!     .build()?;
//! let svc = ServiceBuilder::new().layer(TraceLayer::new().record_timings(true)).service(client.clone());
//!
//! let rec = Recorder::new();
//! let req = client.get("http://localhost:8080/").build()?;
//! // the scope must enclose the layer's `call`: `oneshot` calls it inside the future
//! let res = rec.trace().scope(svc.clone().oneshot(req)).await?;
//! let timings = res.extensions().get::<httptrace::Timings>().cloned();
//! res.bytes().await?;
//! println!("{:?}", timings);
//! # Ok(()) }
//! ```
//!
//! # What reqwest lets us see
//!
//! reqwest keeps its pool, its connection type and the request's extensions to itself, so some
//! events are exact, some derived from what the response reveals, and some unavailable:
//!
//! | event | through reqwest | why |
//! |---|---|---|
//! | `GetConn` | exact | the layer receives the request |
//! | `DNSStart` / `DNSDone` | exact, with [`TracingResolve`] | reqwest calls the resolver inside the connect |
//! | `ConnectStart` / `ConnectDone` | exact, with [`connector_layer`]; the Done includes the TLS handshake | reqwest's connector does DNS, TCP and TLS in one step; with [`TracingResolve`] the start follows `DNSDone` |
//! | `TLSHandshakeStart` / `TLSHandshakeDone` | unavailable | inside reqwest's connector; with `tls_info(true)` the response's extensions hold reqwest's `TlsInfo` (peer certificate, version) |
//! | `GotConn` | derived, when the response head arrives | the pool is private: `reused`/`was_idle` mean "not made by this request's own connect" (a connection dialled for another request and never used reports `reused`); `idle_time` is zero (unknown); the connection is named by its local and remote address (hyper-util's `HttpInfo`) and by the id its connect got, when a traced request made it through [`connector_layer`] (else 0); `at` is the connect's end for its own connection, else the request's start |
//! | `WroteHeaders`, `WroteRequest`, `GotFirstResponseByte` | unavailable | reqwest's connection type is sealed: the bytes on the wire can't be observed |
//! | `Got100Continue`, `Got1xxResponse` | unavailable | request extensions don't reach hyper |
//! | `ResponseHeaders`, `ResponseBodyDone` | exact | the layer sees the response and wraps its body |
//! | `PutIdleConn` | derived, as for hyper-util, at the body's end; `at` is then too | no wire events |
//! | `Redirect` | exact, with [`redirect_policy`] | the policy runs inside the request |
//! | retries (`ClientBuilder::retry`) | not told apart | reqwest's retry classifier returns a type only reqwest can name, so no policy can be wrapped; a retry that dials again shows its own `ConnectStart`/`ConnectDone`, one on a pooled connection shows nothing |
//! | `RequestFailed`, `RequestCanceled` | exact | |
//! | `ConnectionClosed` | unavailable | no wire events |
//!
//! [`Timings`](crate::Timings) through reqwest: `dns`, `connect` (TCP and TLS), `total`;
//! `server_processing` and `content_transfer` need the first response byte and are `None`.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name as HyperName};
use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::binding::{self, DialCtx, RequestCtx, RequestFacts};
use crate::error::SharedError;
use crate::event::{Event, GetConnInfo, GotConnInfo, Http2Stream, RedirectInfo};
use crate::request::{RequestHandle, ResponseBody, ResponseFuture, Trace, TraceResponse};

type BoxError = Box<dyn StdError + Send + Sync>;

// ---------------------------------------------------------------------------------------------
// The layer as a Service<reqwest::Request>

impl<S> Service<reqwest::Request> for Trace<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response>,
    S::Error: std::fmt::Display,
{
    type Response = reqwest::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: reqwest::Request) -> Self::Future {
        let (trace, record_timings) = self.layer.trace_for(None);
        let Some(trace) = trace else {
            return ResponseFuture::untraced(self.inner.call(req));
        };
        let ctx = RequestCtx::with_facts(
            trace,
            RequestFacts {
                record_timings,
                req_close: !crate::request::keeps_alive(req.version(), req.headers()),
                ..RequestFacts::default()
            },
        );
        let uri = req.url().as_str().parse::<http::Uri>().unwrap_or_default();
        ctx.emit(Event::GetConn(GetConnInfo {
            at: ctx.start(),
            method: req.method().clone(),
            uri,
        }));
        ResponseFuture::call_traced(ctx, || self.inner.call(req))
    }
}

impl TraceResponse for reqwest::Response {
    type Traced = reqwest::Response;

    fn untraced(self) -> Self {
        self
    }

    fn head(&self) -> (http::StatusCode, http::Version, &http::HeaderMap) {
        (self.status(), self.version(), self.headers())
    }

    fn extensions_mut(&mut self) -> &mut http::Extensions {
        reqwest::Response::extensions_mut(self)
    }

    /// The derived `GotConn`: which connection carried the response, and whether this
    /// request's own connect made it.
    fn before_head(&self, req: &RequestHandle) {
        let ctx = &req.0;
        let info = self.extensions().get::<HttpInfo>();
        let local_addr = info.map(HttpInfo::local_addr);
        let remote_addr = info.map(HttpInfo::remote_addr);
        let own = ctx
            .dialled()
            .filter(|(_, local, _)| local.is_some() && *local == local_addr);
        let (reused, conn_id, at) = match own {
            Some((id, _, at)) => (false, id, at),
            None => {
                let id = local_addr
                    .and_then(|local| registered((local, remote_addr)))
                    .unwrap_or(0);
                (true, id, ctx.start())
            }
        };
        let http2 = (self.version() == http::Version::HTTP_2).then_some(Http2Stream {
            stream_id: None,
            streams_in_flight: 0,
            waited_for_connect: false,
        });
        let derived = if http2.is_some() {
            "reqwest, HTTP/2: the connection from the response's HttpInfo; `reused` means \
             \"not made by this request's connect\"; `at` is the connect's end or the request's \
             start; the stream id, streams in flight and waiting are unknown (None, 0, false)"
        } else {
            "reqwest: the connection from the response's HttpInfo; `reused`/`was_idle` mean \
             \"not made by this request's connect\"; `idle_time` is unknown (zero); `at` is the \
             connect's end or the request's start"
        };
        ctx.emit(Event::GotConn(GotConnInfo {
            at,
            reused,
            was_idle: reused,
            idle_time: Duration::ZERO,
            conn_id,
            local_addr,
            remote_addr,
            http2,
            derived: Some(derived),
        }));
    }

    fn traced(self, req: RequestHandle, keep_alive: bool) -> Self {
        let url = self.url().clone();
        let res: http::Response<reqwest::Body> = self.into();
        let (mut parts, body) = res.into_parts();
        // reqwest keeps the final URL in an extension only its response builder sets
        use reqwest::ResponseBuilderExt as _;
        if let Ok(with_url) = http::Response::builder().url(url).body(()) {
            parts.extensions.extend(with_url.into_parts().0.extensions);
        }
        let body = reqwest::Body::wrap(ResponseBody::traced(body, req.0, keep_alive));
        reqwest::Response::from(http::Response::from_parts(parts, body))
    }
}

// ---------------------------------------------------------------------------------------------
// Connections made through the connector layer, by local address, to name them in `GotConn`.

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

fn registered(key: ConnKey) -> Option<u64> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied()
}

// ---------------------------------------------------------------------------------------------
// The connector layer

/// The layer for `reqwest::ClientBuilder::connector_layer`: reports `ConnectStart` and
/// `ConnectDone` of a traced request around reqwest's connector (its DNS, TCP and TLS), and
/// passes the connection through unchanged.
///
/// ```
/// # let _ = rustls::crypto::ring::default_provider().install_default();
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
                let (remote, local) = crate::connect::addrs(&conn);
                if let Some(local) = local {
                    register((local, remote), dial.conn_id);
                }
                dial.finish(Ok(None), Ok((remote, local)));
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

// ---------------------------------------------------------------------------------------------
// DNS

/// A `reqwest::dns::Resolve` that reports `DNSStart` and `DNSDone` to the request whose connect
/// is resolving: on hyper-util's `GaiResolver` ([`TracingResolve::gai`]), or around your own
/// resolver ([`TracingResolve::new`]).
///
/// ```
/// # let _ = rustls::crypto::ring::default_provider().install_default();
/// let client = reqwest::Client::builder()
///     .dns_resolver(httptrace::reqwest::TracingResolve::gai())
///     .connector_layer(httptrace::reqwest::connector_layer())
///     .build();
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct TracingResolve {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Gai(GaiResolver),
    User(Arc<dyn reqwest::dns::Resolve>),
}

impl std::fmt::Debug for TracingResolve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Gai(_) => "TracingResolve(GaiResolver)",
            Inner::User(_) => "TracingResolve(user)",
        })
    }
}

impl TracingResolve {
    /// Traces lookups made with the system's `getaddrinfo` (hyper-util's `GaiResolver`), as
    /// reqwest does by default.
    pub fn gai() -> Arc<Self> {
        Arc::new(Self {
            inner: Inner::Gai(GaiResolver::new()),
        })
    }

    /// Traces the lookups of `resolver`.
    pub fn new(resolver: impl reqwest::dns::Resolve + 'static) -> Arc<Self> {
        Arc::new(Self {
            inner: Inner::User(Arc::new(resolver)),
        })
    }
}

impl reqwest::dns::Resolve for TracingResolve {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dial = binding::current_dial();
        let host = name.as_str().to_owned();
        let lookup: reqwest::dns::Resolving = match &self.inner {
            Inner::User(r) => r.resolve(name),
            Inner::Gai(gai) => {
                let mut gai = gai.clone();
                Box::pin(async move {
                    let name: HyperName = host_name(name.as_str())?;
                    let addrs = gai.call(name).await?;
                    Ok(Box::new(addrs) as reqwest::dns::Addrs)
                })
            }
        };
        let Some(dial) = dial else { return lookup };
        dial.dns_start(&host);
        let mut guard = DnsGuard { dial, done: false };
        Box::pin(async move {
            let result = lookup.await;
            guard.done = true;
            match result {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    guard.dial.dns_done(Ok(addrs.clone()));
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(err) => {
                    let err = SharedError::new(err);
                    guard.dial.dns_done(Err(err.clone()));
                    Err(Box::new(err) as BoxError)
                }
            }
        })
    }
}

fn host_name(host: &str) -> Result<HyperName, BoxError> {
    host.parse::<HyperName>()
        .map_err(|e| Box::new(e) as BoxError)
}

struct DnsGuard {
    dial: Arc<DialCtx>,
    done: bool,
}

impl Drop for DnsGuard {
    fn drop(&mut self) {
        if !self.done {
            let canceled = crate::error::Canceled::new("DNS lookup");
            self.dial.dns_done(Err(SharedError::new(canceled)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Redirects

/// A redirect policy that follows up to `max` redirects, like `Policy::limited(max)`, and
/// reports each hop as a `Redirect` event: the events after it belong to the next hop.
///
/// ```
/// # let _ = rustls::crypto::ring::default_provider().install_default();
/// let client = reqwest::Client::builder()
///     .redirect(httptrace::reqwest::redirect_policy(10))
///     .build();
/// # drop(client);
/// ```
pub fn redirect_policy(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let hop = attempt.previous().len();
        if let Some(ctx) = binding::current_request() {
            ctx.emit(Event::Redirect(RedirectInfo {
                at: Instant::now(),
                status: attempt.status(),
                to: attempt.url().to_string(),
                hop,
            }));
        }
        if hop > max {
            attempt.error(TooManyRedirects(max))
        } else {
            attempt.follow()
        }
    })
}

/// More redirects than [`redirect_policy`] allows.
#[derive(Debug, Clone, Copy)]
pub struct TooManyRedirects(usize);

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} redirects", self.0)
    }
}

impl StdError for TooManyRedirects {}
