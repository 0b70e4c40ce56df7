//! Loopback servers: an HTTP/1 server steered by the query string, a scripted server with known
//! delays, and raw TCP servers that do exactly what a test tells them (answer bytes as given,
//! reset, or never accept).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::clients::Body;

/// A loopback HTTP/1 server. Query parameters steer it: `delay_ms=N` before the response,
/// `close=1` answers `Connection: close`, `len=N` the body length (default 5: `hello`),
/// `status=N` the status (default 200).
/// Responses carry `x-conn` (the server's connection number), `x-peer` (the client's address)
/// and echo `x-req`; `x-got-len`, `x-got-cl` and `x-got-te` tell the length of the request body
/// it read, and the request's `content-length` and `transfer-encoding`.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The connections it accepted so far.
    pub conns: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// A server on `127.0.0.1`, on a port of its own.
    pub async fn start() -> Server {
        Self::start_on("127.0.0.1:0").await
    }

    /// A server listening on `bind`.
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

    /// `http://` its address, then `path_and_query`.
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

// ---------------------------------------------------------------------------------------------
// A scripted server with known delays: shared by tests/fidelity.rs and examples/curl_compare.rs.

/// Waits `d`, to the microsecond: see [`precise_sleep_until`].
pub async fn precise_sleep(d: Duration) {
    precise_sleep_until(Instant::now() + d).await
}

/// Waits until `deadline`, to about 0.1 ms: tokio's timer sleeps whole milliseconds and wakes
/// late (+0.3 to +2 ms, more under load); the OS's sleep, on tokio's blocking pool, doesn't.
pub async fn precise_sleep_until(deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
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
    /// When it had read the request head.
    pub head_read: Instant,
    /// When it had written the response head.
    pub head_written: Instant,
    /// When it had written the body.
    pub body_written: Instant,
}

/// A running [`scripted_server`].
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it did for each request, in order.
    pub served: Arc<Mutex<Vec<Served>>>,
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
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
                    let head_read = Instant::now();
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
                    let head_written = Instant::now();
                    precise_sleep(script.body).await;
                    if s.write_all(SCRIPTED_BODY).await.is_err() {
                        return;
                    }
                    let body_written = Instant::now();
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

// ---------------------------------------------------------------------------------------------
// Raw TCP servers.

/// A raw TCP server on loopback: runs `script` on every connection (numbered from 1); returns
/// its address and the number of connections accepted.
pub async fn raw_server<F, Fut>(script: F) -> (SocketAddr, Arc<AtomicU64>)
where
    F: Fn(u64, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicU64::new(0));
    let counter = conns.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(script(n, s));
        }
    });
    (addr, conns)
}

/// Reads one request: its head, then `body_len` bytes of body; false at the end of the stream
/// (or past 64 KiB without a whole head).
pub async fn read_request(s: &mut TcpStream, body_len: usize) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
        match buf.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) if buf.len() >= end + 4 + body_len => return true,
            Some(_) => {}
            None if buf.len() >= 64 * 1024 => return false,
            None => {}
        }
    }
}

/// Reads one request head (GETs: no body); false at the end of the stream.
pub async fn read_head(s: &mut TcpStream) -> bool {
    read_request(s, 0).await
}

/// A raw HTTP/1 server that answers every request with the given bytes, after reading the
/// request head and `body_len` body bytes, then shuts the connection down.
pub async fn answering_server(answer: &'static [u8], body_len: usize) -> SocketAddr {
    let (addr, _) = raw_server(move |_, mut s| async move {
        if read_request(&mut s, body_len).await {
            let _ = s.write_all(answer).await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    addr
}

/// A listener on a port of its own on `127.0.0.1` whose accept queue is full: see
/// [`unanswering_on`].
pub async fn unanswering() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    unanswering_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// A listener on `addr` whose accept queue is full: new connects get no answer. Its address,
/// the listener and the connections that fill its queue (keep both to keep it so).
pub async fn unanswering_on(addr: SocketAddr) -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(addr).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(1).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => return (addr, listener, fillers),
        }
    }
    panic!("the accept queue of {addr} never filled");
}
