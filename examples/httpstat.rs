//! A small [httpstat](https://github.com/reorx/httpstat): where the time of an HTTP GET went.
//!
//! ```text
//! cargo run --example httpstat [-v] [URL]
//! ```
//!
//! With a URL (`http://` only: this example has no TLS connector), it sends one GET through a
//! traced hyper-util client, reads the whole body, and prints the response head and a waterfall
//! of the request's phases (DNS lookup, TCP connection, server processing, content transfer).
//!
//! Without a URL, it starts a loopback HTTP/1 server that answers after 20ms and traces two
//! requests to `http://localhost:PORT/` with one client: the first on a fresh connection (DNS
//! lookup and connect), the second on the same connection, taken back from the pool.
//!
//! `-v` also lists every event of each request with its offset from the request's start.
//!
//! Exit codes: 0 on success, 1 when the request fails (the error and the events recorded so far
//! are printed), 2 for a bad command line or URL.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::iter::successors;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Empty, Full};
use httptrace::{
    Event, Recorder, RequestBody, Timings, Trace, TraceLayer, TracingConnector, TracingResolver,
};
use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::{ServiceBuilder, ServiceExt};

const USAGE: &str = "usage: cargo run --example httpstat -- [-v] [http://URL]";
const SERVER_DELAY: Duration = Duration::from_millis(20);

type Connector = TracingConnector<HttpConnector<TracingResolver<GaiResolver>>>;
type Svc = Trace<Client<Connector, RequestBody<Empty<Bytes>>>>;

#[tokio::main]
async fn main() -> ExitCode {
    let (mut verbose, mut url) = (false, None);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => {
                eprintln!("httpstat: unexpected argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let connector = TracingConnector::new(HttpConnector::new_with_resolver(TracingResolver::new(
        GaiResolver::new(),
    )));
    let client =
        Client::builder(TokioExecutor::new()).build::<_, RequestBody<Empty<Bytes>>>(connector);
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::new().record_timings(true))
        .service(client);

    let ok = match url {
        None => demo(&svc, verbose).await,
        Some(url) => match parse_url(&url) {
            Ok(uri) => stat(&svc, uri.clone(), &format!("GET {uri}"), verbose).await,
            Err(msg) => {
                eprintln!("httpstat: {msg}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
    };
    ExitCode::from(u8::from(!ok))
}

fn parse_url(arg: &str) -> Result<Uri, String> {
    let full = match arg.contains("://") {
        true => arg.to_owned(),
        false => format!("http://{arg}"),
    };
    let uri: Uri = full
        .parse()
        .map_err(|e| format!("invalid URL {arg:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        Some("http") => Err(format!("invalid URL {arg:?}: no host")),
        Some("https") => Err(format!("{arg}: https is not supported (no TLS here)")),
        _ => Err(format!("{arg}: unsupported scheme, use http://")),
    }
}

/// Traces two requests to a loopback server: one on a fresh connection, one reusing it.
async fn demo(svc: &Svc, verbose: bool) -> bool {
    let (port, server) = match start_server().await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("httpstat: cannot start the loopback server: {e}");
            return false;
        }
    };
    let uri: Uri = format!("http://localhost:{port}/")
        .parse()
        .expect("a valid URL");
    let mut ok = stat(svc, uri.clone(), "request 1", verbose).await;
    if ok {
        // the client puts the connection back in its pool from the connection's task: let it
        tokio::time::sleep(Duration::from_millis(10)).await;
        ok = stat(svc, uri, "request 2", verbose).await;
    }
    server.iter().for_each(JoinHandle::abort);
    ok
}

/// Listens on 127.0.0.1 and, when it can, on [::1] with the same port, in case `localhost`
/// resolves to ::1 first (HttpConnector would fall back to 127.0.0.1 anyway).
async fn start_server() -> std::io::Result<(u16, Vec<JoinHandle<()>>)> {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = v4.local_addr()?.port();
    let mut listeners = vec![v4];
    listeners.extend(TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await.ok());
    Ok((
        port,
        listeners
            .into_iter()
            .map(|l| tokio::spawn(serve(l)))
            .collect(),
    ))
}

async fn serve(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        let svc = hyper::service::service_fn(|_req| async {
            tokio::time::sleep(SERVER_DELAY).await;
            let body = Full::new(Bytes::from_static(b"hello from the loopback server\n"));
            Ok::<_, Infallible>(Response::new(body))
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc),
        );
    }
}

/// Sends one traced GET and prints what happened; `false` if it failed.
async fn stat(svc: &Svc, uri: Uri, title: &str, verbose: bool) -> bool {
    let rec = Recorder::new();
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = uri;
    req.extensions_mut().insert(rec.trace());
    let res = match svc.clone().oneshot(req).await {
        Ok(res) => res,
        Err(e) => return failed(&e, &rec),
    };
    let (head, mut body) = res.into_parts();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes += frame.data_ref().map_or(0, Bytes::len),
            Err(e) => return failed(&e, &rec),
        }
    }

    let events = rec.events();
    let timings = head
        .extensions
        .get::<Timings>()
        .cloned()
        .unwrap_or_default();
    let how = match timings.reused() {
        Some(true) => "reused",
        _ => "fresh",
    };
    let id = timings.conn_id().unwrap_or_default();
    println!("\n=== {title} ({how} connection #{id}) ===\n");
    for e in &events {
        if let Event::GotConn(c) = e {
            let (to, from) = (addr(c.remote_addr), addr(c.local_addr));
            println!("Connected to {to} from {from}, connection #{}\n", c.conn_id);
        }
    }
    println!("{:?} {}", head.version, head.status);
    for (name, value) in &head.headers {
        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    println!("\nBody: {bytes} bytes");
    if verbose {
        print!("{}", events_report(&events));
    }
    print_waterfall(&timings);
    true
}

fn failed(err: &(dyn StdError + 'static), rec: &Recorder) -> bool {
    eprintln!("httpstat: request failed: {err}");
    for cause in successors(err.source(), |&e| e.source()) {
        eprintln!("  caused by: {cause}");
    }
    eprint!("{}", events_report(&rec.events()));
    false
}

fn addr(a: Option<SocketAddr>) -> String {
    a.map_or("?".into(), |a| a.to_string())
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}ms", d.as_secs_f64() * 1e3))
}

/// httpstat's waterfall (its template for http://), with sub-millisecond precision.
fn print_waterfall(t: &Timings) {
    let phases = [
        t.dns(),
        t.connect(),
        t.server_processing(),
        t.content_transfer(),
    ];
    let [a, b, c, d] = phases.map(ms);
    let (n, k, s) = (ms(t.namelookup()), ms(t.connected()), ms(t.starttransfer()));
    let total = ms(t.total());
    println!(
        "
  DNS Lookup   TCP Connection   Server Processing   Content Transfer
[{a:^12}|{b:^16}|{c:^19}|{d:^18}]
             |                |                   |                  |
    namelookup:{n:<15}|                   |                  |
                        connect:{k:<18}|                  |
                                      starttransfer:{s:<17}|
                                                                 total:{total}"
    );
    if t.reused() == Some(true) {
        let note = format!("(reused connection #{})", t.conn_id().unwrap_or_default());
        println!("{note:>71}");
    }
    if let Some(all) = t.total() {
        let sum = phases.iter().flatten().sum();
        let (sum, gap) = (ms(Some(sum)), ms(Some(all.saturating_sub(sum))));
        println!("\n{sum} in phases + {gap} between them (pool, task hand-offs) = {total}");
    }
}

/// An error with its causes, on one line.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let causes = successors(Some(err), |&e| e.source()).map(|e| e.to_string());
    causes.collect::<Vec<_>>().join(": ")
}

/// Every event with its offset from `GetConn`, and the details that matter.
fn events_report(events: &[Event]) -> String {
    let start = events
        .iter()
        .find(|e| e.name() == "GetConn")
        .or(events.first());
    let Some(start) = start.map(Event::at) else {
        return "\n(no events recorded)\n".into();
    };
    let mut out = String::from("\nEvents:\n");
    for e in events {
        let mut detail = match e {
            Event::GetConn(i) => i.host_port.clone(),
            Event::DnsStart(i) => i.host.clone(),
            Event::DnsDone(i) => format!("{:?}", i.addrs),
            Event::ConnectStart(i) => i.addr.map_or(String::new(), |a| a.to_string()),
            Event::ConnectDone(i) if i.error.is_none() => format!(
                "#{} {} -> {}",
                i.conn_id.unwrap_or_default(),
                addr(i.local_addr),
                addr(i.addr)
            ),
            Event::GotConn(i) => format!(
                "#{} reused={} was_idle={} idle_time={:?} {} -> {}",
                i.conn_id,
                i.reused,
                i.was_idle,
                i.idle_time,
                addr(i.local_addr),
                addr(i.remote_addr),
            ),
            Event::Got1xxResponse(i) => i.status.to_string(),
            Event::ResponseHeaders(i) => format!("{:?} {}", i.version, i.status),
            Event::ResponseBodyDone(i) => format!("{} bytes", i.bytes),
            Event::PutIdleConn(i) => format!("#{}", i.conn_id),
            Event::ConnectionClosed(i) => format!("#{} after {} requests", i.conn_id, i.requests),
            _ => String::new(),
        };
        if let Some(err) = e.error() {
            detail = format!("{detail} error: {}", chain(err));
        }
        let offset = e.at().saturating_duration_since(start).as_secs_f64() * 1e3;
        let line = format!(
            "{:>12}  {:<22} {}",
            format!("+{offset:.3}ms"),
            e.name(),
            detail.trim()
        );
        out = out + line.trim_end() + "\n";
    }
    out
}
