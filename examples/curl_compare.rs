//! httptrace's `Timings` next to curl's `-w` timings, against the same scripted loopback server.
//!
//! ```text
//! cargo run --example curl_compare
//! ```
//!
//! The server (`scripted_server` of `tests/support/src/servers.rs`, as in `tests/fidelity.rs`)
//! answers 40 ms after reading the request and sends the end of the body 30 ms after the head.
//! The traced request looks `fidelity.test` up through a resolver that takes 20 ms; curl is given
//! the address with `--resolve`, so its lookup takes no time. Without curl on the `PATH`, only
//! httptrace's side is printed.
//!
//! Then the same over HTTPS, HTTP/1.1 and HTTP/2 (ALPN), against a hyper server with a
//! certificate of its own for 127.0.0.1 (curl gets it with `--cacert`, httptrace with
//! `HttpsStack::builder().root_certificates`): the head 40 ms after the request, the body 30 ms
//! after the head, on a fresh connection each, so the TLS handshake is in both. (A debug build's
//! first handshake is slow: its crypto is unoptimized; `--release` for handshake figures.)

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use httptrace::connect::HttpsStack;
use httptrace::{RequestBody, Timings, TraceLayer};
use httptrace_test_support::clients::{
    client_with, get, traced, Body, StaticResolver, TimedResolver,
};
use httptrace_test_support::servers::{precise_sleep, scripted_server, Script};
use httptrace_test_support::tls::{server_config, Cert};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::PrivatePkcs8KeyDer;
use tower::{Layer, ServiceExt};

const WARM_UP: Duration = Duration::from_millis(1);
const DNS: Duration = Duration::from_millis(20);
const SCRIPT: Script = Script {
    first_byte: Duration::from_millis(40),
    body: Duration::from_millis(30),
};

/// curl's `-w` variables, in the order of the marks below.
const CURL_VARS: [&str; 6] = [
    "time_namelookup",
    "time_connect",
    "time_appconnect",
    "time_pretransfer",
    "time_starttransfer",
    "time_total",
];

#[tokio::main]
async fn main() -> ExitCode {
    // the script waits on tokio's blocking pool: start its threads before measuring
    tokio::join!(precise_sleep(WARM_UP), precise_sleep(WARM_UP));
    let server = scripted_server(SCRIPT).await;
    let port = server.addr.port();
    let url = format!("http://fidelity.test:{port}/");
    println!(
        "scripted server on {}: first byte {} ms after the request, body end {} ms after the head",
        server.addr,
        SCRIPT.first_byte.as_millis(),
        SCRIPT.body.as_millis()
    );
    println!(
        "GET {url}: httptrace looks the name up in {} ms; curl gets it with --resolve (no lookup)\n",
        DNS.as_millis()
    );

    // httptrace: a fresh client, so the request looks up and connects
    let resolver = TimedResolver {
        inner: StaticResolver::answering(server.addr, Duration::ZERO),
        delay: DNS,
        lookups: Default::default(),
    };
    let client = client_with(resolver, TraceLayer::new());
    let timings = Timings::new();
    get(&client, &url, timings.trace()).await;
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let ours = [
        ms(timings.namelookup()),
        ms(timings.connected()),
        ms(timings.appconnect()),
        ms(timings.pretransfer()),
        ms(timings.starttransfer()),
        ms(timings.total()),
    ];

    // curl, if there is one
    let curl = match Command::new("curl").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let version = version.lines().next().unwrap_or("curl").to_owned();
            let url = url.clone();
            let run = tokio::task::spawn_blocking(move || run_curl(&url, port)).await;
            match run.expect("curl thread") {
                Ok(marks) => Some((version, marks)),
                Err(e) => {
                    eprintln!("curl_compare: curl failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };

    let script = [Some(ms(Some(DNS)).unwrap()), None, None, None, None, None];
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    let theirs = |i: usize| curl.as_ref().map(|(_, m)| m[i]);
    println!(
        "{:<22} {:>9} {:>11} {:>11}",
        "ms from the start",
        "script",
        "httptrace",
        if curl.is_some() { "curl" } else { "" }
    );
    let names = [
        "namelookup",
        "connect",
        "appconnect",
        "pretransfer",
        "starttransfer",
        "total",
    ];
    for (i, name) in names.iter().enumerate() {
        println!(
            "{:<22} {:>9} {:>11} {:>11}",
            format!("time_{name}"),
            cell(script[i]),
            cell(ours[i]),
            curl.as_ref().map_or(String::new(), |_| cell(theirs(i)))
        );
    }

    // httpstat's phases, from the marks (curl has no lookup here: its phases start at 0)
    let phase = |m: &[Option<f64>; 6], from: usize, to: usize| match (m[from], m[to]) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let curl_marks = curl.as_ref().map(|(_, m)| m.map(Some));
    let phases = [
        ("DNS lookup", Some(ms(Some(DNS)).unwrap()), None, 0),
        ("TCP connection", None, Some(0), 1),
        ("Server processing", ms(Some(SCRIPT.first_byte)), Some(3), 4),
        ("Content transfer", ms(Some(SCRIPT.body)), Some(4), 5),
    ];
    println!(
        "\n{:<22} {:>9} {:>11} {:>11}",
        "phase, ms",
        "script",
        "httptrace",
        if curl.is_some() { "curl" } else { "" }
    );
    for (name, script, from, to) in phases {
        let of = |m: &[Option<f64>; 6]| match from {
            None => m[to],
            Some(from) => phase(m, from, to),
        };
        println!(
            "{:<22} {:>9} {:>11} {:>11}",
            name,
            cell(script),
            cell(of(&ours)),
            curl_marks.as_ref().map_or(String::new(), |m| cell(of(m)))
        );
    }
    println!("\nhttptrace: {timings:?}");
    match &curl {
        Some((version, _)) => println!("curl: {version}"),
        None => println!("curl is not installed: httptrace's side only"),
    }
    match https().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("curl_compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// HTTPS, HTTP/1.1 then HTTP/2: the phases of httptrace and curl side by side.
async fn https() -> Result<(), String> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).map_err(|e| e.to_string())?;
    let pem = std::env::temp_dir().join(format!("curl-compare-{}.pem", std::process::id()));
    std::fs::write(&pem, ck.cert.pem()).map_err(|e| e.to_string())?;
    let cert = Cert {
        der: ck.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
    };
    let addr = https_server(&cert).await;
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let result = async {
        for h2 in [false, true] {
            compare_https(&url, &cert, &pem, h2).await?;
        }
        Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&pem);
    result
}

/// One HTTPS request each, on a fresh connection, offering only HTTP/2 (`h2`) or HTTP/1.1.
async fn compare_https(url: &str, cert: &Cert, pem: &Path, h2: bool) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).map_err(|e| e.to_string())?;
    let stack = HttpsStack::builder().root_certificates(roots);
    let stack = match h2 {
        true => stack.http2_only(),
        false => stack.http1_only(),
    };
    let stack = stack.build().map_err(|e| e.to_string())?;
    let client = Client::builder(TokioExecutor::new()).build::<_, RequestBody<Body>>(stack);
    let client = TraceLayer::new().layer(client);
    let timings = Timings::new();
    let res = client
        .oneshot(traced(url, timings.trace()))
        .await
        .map_err(|e| e.to_string())?;
    let version = res.version();
    res.into_body().collect().await.map_err(|e| e.to_string())?;
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let ours = [
        ms(timings.connect()),
        ms(timings.tls()),
        ms(timings.server_processing()),
        ms(timings.content_transfer()),
        ms(timings.total()),
    ];
    let flag = if h2 { "--http2" } else { "--http1.1" };
    let (url_, pem_) = (url.to_owned(), pem.to_owned());
    let curl = tokio::task::spawn_blocking(move || run_curl_https(&url_, &pem_, flag))
        .await
        .map_err(|e| e.to_string())?;
    let theirs: Option<[Option<f64>; 5]> = match curl {
        Ok(m) => Some([
            Some(m[1] - m[0]),
            Some(m[2] - m[1]),
            Some(m[4] - m[3]),
            Some(m[5] - m[4]),
            Some(m[5]),
        ]),
        Err(e) if e.starts_with("not installed") => None,
        Err(e) => return Err(format!("curl failed: {e}")),
    };
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    println!("\nGET {url} ({version:?}; curl {flag} --cacert)");
    println!(
        "{:<22} {:>9} {:>11} {:>11}",
        "phase, ms", "script", "httptrace", "curl"
    );
    let script = [
        None,
        None,
        ms(Some(SCRIPT.first_byte)),
        ms(Some(SCRIPT.body)),
        None,
    ];
    let names = [
        "TCP connection",
        "TLS handshake",
        "Server processing",
        "Content transfer",
        "Total",
    ];
    for (i, name) in names.iter().enumerate() {
        println!(
            "{:<22} {:>9} {:>11} {:>11}",
            name,
            cell(script[i]),
            cell(ours[i]),
            theirs.map_or("-".to_owned(), |t| cell(t[i]))
        );
    }
    Ok(())
}

/// A hyper server on 127.0.0.1 presenting `cert`, offering `h2` and `http/1.1`: each response's
/// head [`SCRIPT`]`.first_byte` after the request, its body `SCRIPT.body` after the head.
async fn https_server(cert: &Cert) -> SocketAddr {
    let mut config = server_config(cert, rustls::DEFAULT_VERSIONS);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    precise_sleep(SCRIPT.first_byte).await;
                    let body = Delayed {
                        sleep: Box::pin(tokio::time::sleep(SCRIPT.body)),
                        body: Some(Bytes::from_static(b"the scripted body\n")),
                    };
                    Ok::<_, Infallible>(http::Response::new(body))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

/// A body of one frame, sent once `sleep` ends.
struct Delayed {
    sleep: Pin<Box<tokio::time::Sleep>>,
    body: Option<Bytes>,
}

impl hyper::body::Body for Delayed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(self.body.take().map(|b| Ok(Frame::data(b))))
    }
}

/// Runs curl once over HTTPS, trusting `pem`, with `flag` (`--http1.1`, `--http2`); its `-w`
/// marks in ms, or why not ("not installed" first).
fn run_curl_https(url: &str, pem: &Path, flag: &str) -> Result<[f64; 6], String> {
    let pem = pem.to_string_lossy();
    run_curl_with(url, &[flag, "--cacert", &pem])
}

/// Runs curl once against the server; its `-w` marks in ms.
fn run_curl(url: &str, port: u16) -> Result<[f64; 6], String> {
    run_curl_with(
        url,
        &["--resolve", &format!("fidelity.test:{port}:127.0.0.1")],
    )
}

/// Runs `curl -w <marks> <args> <url>` once; its marks in ms, or why not ("not installed"
/// first when curl can't be run).
fn run_curl_with(url: &str, args: &[&str]) -> Result<[f64; 6], String> {
    let format: String = CURL_VARS.iter().map(|v| format!("%{{{v}}}\\n")).collect();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", "-w"])
        .arg(&format)
        .args(args)
        .arg(url)
        .output()
        .map_err(|e| format!("not installed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    marks(&String::from_utf8_lossy(&out.stdout))
}

/// curl's `-w` output: six marks in seconds, one a line; in ms.
fn marks(text: &str) -> Result<[f64; 6], String> {
    let secs: Vec<f64> = text
        .lines()
        .map(|l| l.trim().replace(',', ".").parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{e}: {text:?}"))?;
    secs.try_into()
        .map(|s: [f64; 6]| s.map(|s| s * 1000.0))
        .map_err(|s| format!("expected 6 values, got {s:?}"))
}
