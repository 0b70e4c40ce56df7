//! Loopback servers and traced clients for the end-to-end tests.
#![allow(dead_code, unreachable_pub)]

pub mod h2;
#[cfg(feature = "rustls")]
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use httptrace::{
    event::GotConnInfo, ClientTrace, Event, RequestBody, ResponseBody, Trace, TraceLayer,
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

/// What the test resolvers here return: a boxed lookup.
pub type Lookup<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

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
/// `close=1` answers `Connection: close`, `len=N` the body length (default 5: `hello`),
/// `status=N` the status (default 200).
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
    let status = param(&req, "status").and_then(|s| u16::try_from(s).ok());
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
    if let Some(status) = status.and_then(|s| http::StatusCode::from_u16(s).ok()) {
        *res.status_mut() = status;
    }
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
    "PutIdleConn",
    "ResponseBodyDone",
];

/// A request on a connection dialled for it, which is not pooled afterwards (closed, or its
/// response body dropped before the end): `FRESH` but `PutIdleConn`.
pub const FRESH_UNPOOLED: &[&str] = &[
    "GetConn",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
];

/// A request on an idle pooled connection, which is pooled again afterwards.
pub const REUSED: &[&str] = &[
    "GetConn",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "PutIdleConn",
    "ResponseBodyDone",
];

/// Checks that every Start has exactly one Done after it, and that the request ends once.
#[track_caller]
pub fn assert_paired(events: &[Event]) {
    if let Some(problem) = unpaired(events) {
        panic!("{problem}");
    }
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
            .downcast_ref::<httptrace::error::SharedError>()
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

// ---------------------------------------------------------------------------------------------
// Attribution under load: many concurrent requests through one client, every event checked
// against the server's view. Shared by tests/attribution.rs, tests/stress.rs and
// examples/stress.rs.

/// A small xorshift generator: the same seed gives the same numbers.
pub fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The events one request's hooks received, in delivery order.
pub type EventLog = Arc<std::sync::Mutex<Vec<Event>>>;

/// Records into `log`, after sleeping a little now and then: a slow hook delays the task it runs
/// on (the request's, or the connection's).
pub struct Jittery {
    pub log: EventLog,
    pub seed: u64,
}

impl httptrace::Hooks for Jittery {
    fn on_event(&self, event: &Event) {
        let mut r = rng(self.seed ^ event.at().elapsed().subsec_nanos() as u64);
        if r() % 4 == 0 {
            std::thread::sleep(Duration::from_micros(r() % 80));
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

/// The shape of a load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub requests: u64,
    pub concurrency: usize,
    /// The server waits 0..=`max_delay_ms` before each response.
    pub max_delay_ms: u64,
    /// One request in `close_one_in` asks the server to close its connection after it.
    pub close_one_in: u64,
    /// The run stops (and reports a violation) past this.
    pub time_limit: Duration,
    /// Sabotage, to show the checks catch it: one request in `mix_logs_one_in` (0: none) records
    /// its events into the previous request's log instead of its own.
    pub mix_logs_one_in: u64,
}

impl LoadConfig {
    /// `requests` GETs, `concurrency` at a time, within `time_limit`: server delays of 0..=3 ms,
    /// one request in 20 asking the server to close its connection, no sabotage.
    pub fn jittered(requests: u64, concurrency: usize, time_limit: Duration) -> LoadConfig {
        LoadConfig {
            requests,
            concurrency,
            max_delay_ms: 3,
            close_one_in: 20,
            time_limit,
            mix_logs_one_in: 0,
        }
    }
}

/// What went wrong, by kind; `first` keeps the first messages.
#[derive(Debug, Default, Clone)]
pub struct Violations {
    /// An event of another request or connection: GotConn's local address is not the socket the
    /// server read the request on, a connection mapped to two server connections, a
    /// ConnectionClosed/PutIdleConn naming another connection.
    pub wrong_request: u64,
    /// An event that should have come and didn't.
    pub lost: u64,
    /// An event that came more than once.
    pub duplicated: u64,
    /// A Start without its Done (or the other way round), or a request that didn't end once.
    pub unpaired: u64,
    /// Events out of order in a request, or exchanges overlapping on a connection, or a
    /// connection's first exchange marked reused (or a later one not).
    pub misordered: u64,
    /// An event that has no business in this run (an error on loopback, a request failing...).
    pub unexpected: u64,
    /// Events delivered after the request ended and was checked.
    pub late: u64,
    pub first: Vec<String>,
}

impl Violations {
    pub fn total(&self) -> u64 {
        self.wrong_request
            + self.lost
            + self.duplicated
            + self.unpaired
            + self.misordered
            + self.unexpected
            + self.late
    }

    fn add(&mut self, kind: fn(&mut Violations) -> &mut u64, msg: String) {
        *kind(self) += 1;
        if self.first.len() < 20 {
            self.first.push(msg);
        }
    }
}

/// The outcome of a load run.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub requests: u64,
    pub events: u64,
    /// Connections the server accepted.
    pub server_conns: u64,
    /// Connections that served at least one request.
    pub serving_conns: u64,
    /// Requests on a connection dialled for them.
    pub fresh: u64,
    /// Requests on a connection that served others before.
    pub reused: u64,
    /// Requests served by a connection another request dialled, its first exchange.
    pub served_by_other_dial: u64,
    /// Requests whose own dial went on in the background while another connection served them.
    pub dialled_for_others: u64,
    /// Requests that asked the server to close the connection.
    pub closes: u64,
    pub connection_closed_events: u64,
    pub elapsed: Duration,
    pub violations: Violations,
}

impl LoadReport {
    /// Checks a run of `requests` that nothing sabotaged: no violation, every request done, and
    /// each on a fresh connection, a reused one, or one another request dialled.
    #[track_caller]
    pub fn assert_clean(&self, requests: u64) {
        assert_eq!(self.violations.total(), 0, "{self}");
        assert_eq!(self.requests, requests);
        assert_eq!(
            self.fresh + self.reused + self.served_by_other_dial,
            requests
        );
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.violations;
        writeln!(
            f,
            "{} requests, {} events, {} connections accepted by the server ({} of them served requests), in {:.2?} ({:.0} req/s)",
            self.requests,
            self.events,
            self.server_conns,
            self.serving_conns,
            self.elapsed,
            self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
        )?;
        writeln!(
            f,
            "  fresh {}, reused {}, served by another request's dial {}, dialled for others {}, close=1 {}, ConnectionClosed {}",
            self.fresh,
            self.reused,
            self.served_by_other_dial,
            self.dialled_for_others,
            self.closes,
            self.connection_closed_events
        )?;
        write!(
            f,
            "  violations: wrong request {}, lost {}, duplicated {}, unpaired {}, misordered {}, unexpected {}, late {} (total {})",
            v.wrong_request, v.lost, v.duplicated, v.unpaired, v.misordered, v.unexpected, v.late, v.total()
        )?;
        for m in &v.first {
            write!(f, "\n    {m}")?;
        }
        Ok(())
    }
}

/// A request of the run, done.
struct Done {
    id: u64,
    close: bool,
    peer: SocketAddr,
    server_conn: u64,
    log: EventLog,
}

/// One exchange as its connection saw it.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    got_at: std::time::Instant,
    reused: bool,
    was_idle: bool,
    id: u64,
    first_byte: Option<std::time::Instant>,
    put_at: Option<std::time::Instant>,
}

/// The core of every request of a load run, in order: what remains without its own dial, the
/// connection's close and its return to the pool.
pub const LOAD_CORE: &[&str] = &[
    "GetConn",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
];

/// Checks every request of a load run as it completes, and the connections across requests.
struct Checker {
    server_addr: SocketAddr,
    report: LoadReport,
    /// Requests whose own dial hasn't finished yet (it goes on in the background).
    pending: Vec<Done>,
    /// Every request's log, to catch events delivered after the check.
    logs: Vec<EventLog>,
    by_conn: HashMap<u64, Vec<Exchange>>,
    conn_to_server: HashMap<u64, u64>,
    server_to_conn: HashMap<u64, u64>,
    dialled: std::collections::HashSet<u64>,
}

use std::collections::HashMap;

fn dials_done(events: &[Event]) -> bool {
    let count = |n: &str| events.iter().filter(|e| e.name() == n).count();
    count("ConnectStart") == count("ConnectDone")
}

impl Checker {
    fn new(server_addr: SocketAddr) -> Self {
        Checker {
            server_addr,
            report: LoadReport::default(),
            pending: Vec::new(),
            logs: Vec::new(),
            by_conn: HashMap::new(),
            conn_to_server: HashMap::new(),
            server_to_conn: HashMap::new(),
            dialled: Default::default(),
        }
    }

    fn add(&mut self, done: Done) {
        self.logs.push(done.log.clone());
        let ready = dials_done(&done.log.lock().unwrap_or_else(|e| e.into_inner()));
        if ready {
            self.check(done);
        } else {
            self.pending.push(done);
        }
    }

    fn check(&mut self, o: Done) {
        let ev = std::mem::take(&mut *o.log.lock().unwrap_or_else(|e| e.into_inner()));
        let v = &mut self.report.violations;
        let id = o.id;
        self.report.requests += 1;
        self.report.events += ev.len() as u64;
        if o.close {
            self.report.closes += 1;
        }
        let all = names(&ev);
        if let Some(msg) = unpaired(&ev) {
            v.add(|v| &mut v.unpaired, format!("request {id}: {msg}"));
        }
        let count = |n: &str| all.iter().filter(|m| **m == n).count();
        let core: Vec<&str> = all
            .iter()
            .copied()
            .filter(|n| {
                !matches!(
                    *n,
                    "ConnectStart" | "ConnectDone" | "ConnectionClosed" | "PutIdleConn"
                )
            })
            .collect();
        if core != LOAD_CORE {
            let mut explained = false;
            for n in LOAD_CORE {
                match count(n) {
                    0 => v.add(|v| &mut v.lost, format!("request {id}: no {n} in {all:?}")),
                    1 => continue,
                    _ => v.add(
                        |v| &mut v.duplicated,
                        format!("request {id}: {n} twice in {all:?}"),
                    ),
                }
                explained = true;
            }
            for n in core.iter().filter(|n| !LOAD_CORE.contains(n)) {
                v.add(
                    |v| &mut v.unexpected,
                    format!("request {id}: {n} in {all:?}"),
                );
                explained = true;
            }
            if !explained {
                v.add(|v| &mut v.misordered, format!("request {id}: {all:?}"));
            }
        }
        for n in ["ConnectStart", "ConnectDone", "ConnectionClosed"] {
            if count(n) > 1 {
                v.add(
                    |v| &mut v.duplicated,
                    format!("request {id}: {n} twice in {all:?}"),
                );
            }
        }
        match (o.close, count("PutIdleConn")) {
            (true, 0) | (false, 1) => {}
            (true, _) => v.add(
                |v| &mut v.unexpected,
                format!("request {id} asked to close, its connection was pooled: {all:?}"),
            ),
            (false, 0) => v.add(
                |v| &mut v.lost,
                format!("request {id}: no PutIdleConn in {all:?}"),
            ),
            (false, _) => v.add(
                |v| &mut v.duplicated,
                format!("request {id}: PutIdleConn twice in {all:?}"),
            ),
        }
        // the core events in time order
        let core_at: Vec<std::time::Instant> = ev
            .iter()
            .filter(|e| LOAD_CORE.contains(&e.name()))
            .map(Event::at)
            .collect();
        if !core_at.windows(2).all(|w| w[0] <= w[1]) {
            v.add(
                |v| &mut v.misordered,
                format!("request {id}: core events out of time order"),
            );
        }

        let Some(got) = ev.iter().find_map(|e| match e {
            Event::GotConn(i) => Some(i.clone()),
            _ => None,
        }) else {
            return; // counted as lost above
        };
        if got.reused {
            self.report.reused += 1;
        } else if got.was_idle {
            self.report.served_by_other_dial += 1;
        } else {
            self.report.fresh += 1;
        }
        // the proof: the connection GotConn names is the socket the server read this request on
        if got.local_addr != Some(o.peer) {
            v.add(
                |v| &mut v.wrong_request,
                format!(
                    "request {id}: GotConn names local {:?}, the server read it from {}",
                    got.local_addr, o.peer
                ),
            );
        }
        if got.remote_addr != Some(self.server_addr) {
            v.add(
                |v| &mut v.wrong_request,
                format!("request {id}: GotConn names remote {:?}", got.remote_addr),
            );
        }
        if *self
            .conn_to_server
            .entry(got.conn_id)
            .or_insert(o.server_conn)
            != o.server_conn
            || *self
                .server_to_conn
                .entry(o.server_conn)
                .or_insert(got.conn_id)
                != got.conn_id
        {
            v.add(
                |v| &mut v.wrong_request,
                format!(
                    "request {id}: connection {} vs the server's connection {}",
                    got.conn_id, o.server_conn
                ),
            );
        }
        let mut put_at = None;
        let mut first_byte = None;
        for e in &ev {
            match e {
                Event::PutIdleConn(p) => {
                    put_at = Some(p.at);
                    if p.conn_id != got.conn_id {
                        v.add(
                            |v| &mut v.wrong_request,
                            format!(
                                "request {id}: PutIdleConn of {} on {}",
                                p.conn_id, got.conn_id
                            ),
                        );
                    }
                }
                Event::ConnectionClosed(c) => {
                    self.report.connection_closed_events += 1;
                    if c.conn_id != got.conn_id || !o.close {
                        v.add(
                            |v| &mut v.wrong_request,
                            format!(
                                "request {id} (close={}): ConnectionClosed of {} on {}",
                                o.close, c.conn_id, got.conn_id
                            ),
                        );
                    }
                }
                Event::GotFirstResponseByte(f) => first_byte = Some(f.at),
                Event::ConnectDone(d) if d.error.is_some() => v.add(
                    |v| &mut v.unexpected,
                    format!("request {id}: a loopback connect failed: {:?}", d.error),
                ),
                _ => {}
            }
        }

        let own_dial = ev.iter().find_map(|e| match e {
            Event::ConnectDone(i) => i.conn_id,
            _ => None,
        });
        if let Some(conn) = own_dial {
            if !self.dialled.insert(conn) {
                v.add(
                    |v| &mut v.duplicated,
                    format!("request {id}: connection {conn} dialled twice"),
                );
            }
        }
        let pos = |n: &str| ev.iter().position(|e| e.name() == n);
        if own_dial == Some(got.conn_id) {
            // served by its own dial: the connect comes before GotConn, and it wasn't idle
            if pos("ConnectDone") > pos("GotConn") || got.was_idle || got.reused {
                v.add(
                    |v| &mut v.misordered,
                    format!("request {id} on its own dial: {all:?} {got:?}"),
                );
            }
        } else {
            if own_dial.is_some() {
                self.report.dialled_for_others += 1;
            }
            if !got.was_idle {
                v.add(
                    |v| &mut v.wrong_request,
                    format!("request {id} didn't dial its connection: {got:?}"),
                );
            }
        }
        self.by_conn.entry(got.conn_id).or_default().push(Exchange {
            got_at: got.at,
            reused: got.reused,
            was_idle: got.was_idle,
            id,
            first_byte,
            put_at,
        });
    }

    async fn finish(mut self, server_conns: u64, started: std::time::Instant) -> LoadReport {
        // background connects (an idle connection won the race) report when they finish
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self
            .pending
            .iter()
            .all(|d| dials_done(&d.log.lock().unwrap_or_else(|e| e.into_inner())))
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for done in std::mem::take(&mut self.pending) {
            self.check(done);
        }
        let v = &mut self.report.violations;
        for log in &self.logs {
            let late = log.lock().unwrap_or_else(|e| e.into_inner()).len();
            if late > 0 {
                v.add(|v| &mut v.late, format!("{late} events after the end"));
            }
        }
        // per connection: one exchange at a time; the first fresh, every later one reused
        for (conn, mut xs) in std::mem::take(&mut self.by_conn) {
            xs.sort_by_key(|x| x.got_at);
            if xs[0].reused {
                v.add(
                    |v| &mut v.misordered,
                    format!(
                        "conn {conn}: first exchange (request {}) marked reused",
                        xs[0].id
                    ),
                );
            }
            for w in xs.windows(2) {
                let (prev, next) = (w[0], w[1]);
                if !(next.reused && next.was_idle) {
                    v.add(
                        |v| &mut v.misordered,
                        format!(
                            "conn {conn}: request {} after {} not reused",
                            next.id, prev.id
                        ),
                    );
                }
                if prev.first_byte.is_some_and(|t| next.got_at < t)
                    || prev.put_at.is_some_and(|t| next.got_at < t)
                {
                    v.add(
                        |v| &mut v.misordered,
                        format!(
                            "conn {conn}: request {} overlaps request {}",
                            next.id, prev.id
                        ),
                    );
                }
            }
            self.report.serving_conns += 1;
            if !self.dialled.contains(&conn) {
                v.add(
                    |v| &mut v.lost,
                    format!("conn {conn}: served, its dial not reported"),
                );
            }
        }
        self.report.server_conns = server_conns;
        if self.dialled.len() as u64 != server_conns {
            v.add(
                |v| &mut v.lost,
                format!(
                    "{} dials reported, the server accepted {server_conns} connections",
                    self.dialled.len()
                ),
            );
        }
        self.report.elapsed = started.elapsed();
        self.report
    }
}

/// Sends `cfg.requests` GETs through `client` to `server`, `cfg.concurrency` at a time, with
/// random server delays, hook jitter and some `close=1`, and checks every event of every request
/// against the server's view. `progress` is told the number of requests done so far.
pub async fn run_load<S>(
    client: &S,
    server: &Server,
    cfg: &LoadConfig,
    mut progress: impl FnMut(u64),
) -> LoadReport
where
    S: SendTraced + Send + Sync + 'static,
{
    let started = std::time::Instant::now();
    let mut checker = Checker::new(server.addr);
    let mut ids = 0..cfg.requests;
    let mut running = tokio::task::JoinSet::new();
    let mut done = 0;
    let mut prev_log: Option<EventLog> = None;
    loop {
        while running.len() < cfg.concurrency {
            let Some(id) = ids.next() else { break };
            let log = EventLog::default();
            let sabotage = cfg.mix_logs_one_in > 0 && id % cfg.mix_logs_one_in == 1;
            let hook_log = match (&prev_log, sabotage) {
                (Some(prev), true) => prev.clone(),
                _ => log.clone(),
            };
            prev_log = Some(log.clone());
            let client = client.clone();
            let (max_delay, close_one_in) = (cfg.max_delay_ms + 1, cfg.close_one_in.max(1));
            let url = server.url("/");
            running.spawn(async move {
                let mut r = rng(id + 1);
                let delay = r() % max_delay;
                let close = r() % close_one_in == 0;
                let url = format!("{url}?delay_ms={delay}&close={}", close as u8);
                let trace = ClientTrace::new(Jittery {
                    log: hook_log,
                    seed: id,
                });
                let mut req = Request::get(url).body(Body::default()).unwrap();
                req.headers_mut().insert("x-req", id.into());
                req.extensions_mut().insert(trace);
                let res = client
                    .oneshot(req)
                    .await
                    .map_err(|e| format!("request {id} failed: {e:?}"))?;
                let header = |k: &str| res.headers().get(k).and_then(|v| v.to_str().ok());
                if header("x-req") != Some(id.to_string().as_str()) {
                    return Err(format!(
                        "request {id}: the server echoed {:?}",
                        header("x-req")
                    ));
                }
                let peer = header("x-peer").and_then(|p| p.parse().ok()).unwrap();
                let server_conn = header("x-conn").and_then(|c| c.parse().ok()).unwrap();
                res.into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("request {id}: body failed: {e:?}"))?;
                Ok(Done {
                    id,
                    close,
                    peer,
                    server_conn,
                    log,
                })
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        done += 1;
        progress(done);
        match joined.expect("request task") {
            Ok(d) => checker.add(d),
            Err(msg) => checker.report.violations.add(|v| &mut v.unexpected, msg),
        }
        if started.elapsed() > cfg.time_limit {
            checker.report.violations.add(
                |v| &mut v.unexpected,
                format!(
                    "time limit {:?} reached after {done} requests",
                    cfg.time_limit
                ),
            );
            running.abort_all();
            break;
        }
    }
    let server_conns = server.conns.load(Ordering::SeqCst);
    checker.finish(server_conns, started).await
}

/// What [`assert_paired`] checks: the first problem, if any.
pub fn unpaired(events: &[Event]) -> Option<String> {
    let all = || names(events);
    for (start, done) in [
        ("DNSStart", "DNSDone"),
        ("TLSHandshakeStart", "TLSHandshakeDone"),
    ] {
        let mut open = 0i32;
        for e in events {
            if e.name() == start {
                open += 1;
                if open != 1 {
                    return Some(format!("nested {start} in {:?}", all()));
                }
            } else if e.name() == done {
                open -= 1;
                if open != 0 {
                    return Some(format!("{done} without {start} in {:?}", all()));
                }
            }
        }
        if open != 0 {
            return Some(format!("{start} without {done} in {:?}", all()));
        }
    }
    let mut open: Vec<Option<SocketAddr>> = Vec::new();
    for e in events {
        match e {
            Event::ConnectStart(s) => open.push(s.addr),
            Event::ConnectDone(d) => {
                let at = open
                    .iter()
                    .position(|a| a.is_some() && *a == d.addr)
                    .or_else(|| open.iter().position(Option::is_none));
                match at {
                    Some(at) => {
                        open.remove(at);
                    }
                    None => return Some(format!("ConnectDone without its Start in {:?}", all())),
                }
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return Some(format!("ConnectStart without Done in {:?}", all()));
    }
    let count = |n: &str| events.iter().filter(|e| e.name() == n).count();
    let ends = count("ResponseBodyDone") + count("RequestFailed") + count("RequestCanceled");
    (ends != 1).then(|| format!("request must end once: {:?}", all()))
}

// ---------------------------------------------------------------------------------------------
// A scripted server with known delays: shared by tests/fidelity.rs and examples/curl_compare.rs.

/// Waits `d`, to the microsecond: see [`precise_sleep_until`].
pub async fn precise_sleep(d: Duration) {
    precise_sleep_until(std::time::Instant::now() + d).await
}

/// Waits until `deadline`, to about 0.1 ms: tokio's timer sleeps whole milliseconds and wakes
/// late (+0.3 to +2 ms, more under load); the OS's sleep, on tokio's blocking pool, doesn't.
pub async fn precise_sleep_until(deadline: std::time::Instant) {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    if !left.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
    }
}

/// The delays of [`scripted_server`].
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// From reading the request head to writing the response head.
    pub first_byte: Duration,
    /// From writing the response head to writing the body (its end: one write).
    pub body: Duration,
}

/// The body [`scripted_server`] answers.
pub const SCRIPTED_BODY: &[u8] = b"hello from the scripted server\n";

/// What the scripted server did for one request, by its own clock.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub head_read: std::time::Instant,
    pub head_written: std::time::Instant,
    pub body_written: std::time::Instant,
}

/// A running [`scripted_server`].
pub struct Scripted {
    pub addr: SocketAddr,
    pub served: Arc<std::sync::Mutex<Vec<Served>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw HTTP/1 keep-alive server on `127.0.0.1` (Nagle off) that answers every GET by the
/// script: read the request head, wait `first_byte`, write the head (with `content-length`),
/// wait `body`, write the body (waits by [`precise_sleep`]). It logs when it did each.
pub async fn scripted_server(script: Script) -> Scripted {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = served.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // one request head (GETs: no body)
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if buf.len() > 64 * 1024 {
                            return;
                        }
                    }
                    let head_read = std::time::Instant::now();
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    precise_sleep(script.first_byte).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
                        SCRIPTED_BODY.len()
                    );
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let head_written = std::time::Instant::now();
                    precise_sleep(script.body).await;
                    if s.write_all(SCRIPTED_BODY).await.is_err() {
                        return;
                    }
                    let body_written = std::time::Instant::now();
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(Served {
                        head_read,
                        head_written,
                        body_written,
                    });
                }
            });
        }
    });
    Scripted { addr, served, task }
}

/// A resolver that answers what the inner one answers, `delay` after it was called (by
/// [`precise_sleep_until`]; the inner one's own time included), and logs when each lookup
/// started and ended.
#[derive(Clone)]
pub struct TimedResolver<R> {
    pub inner: R,
    pub delay: Duration,
    pub lookups: Arc<std::sync::Mutex<Vec<(std::time::Instant, std::time::Instant)>>>,
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
        let started = std::time::Instant::now();
        let inner = self.inner.clone();
        let (delay, lookups) = (self.delay, self.lookups.clone());
        Box::pin(async move {
            let res = tower::ServiceExt::oneshot(inner, name).await;
            precise_sleep_until(started + delay).await;
            lookups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((started, std::time::Instant::now()));
            res
        })
    }
}
