//! A small [httpstat](https://github.com/reorx/httpstat): where the time of an HTTP(S) request
//! went.
//!
//! ```text
//! cargo run --example httpstat -- [OPTIONS] [URL]
//! cargo run --example httpstat --features reqwest -- --reqwest [-v] [URL]
//! ```
//!
//! With a URL, it sends one GET through a traced hyper-util client, reads the whole body, and
//! prints the response head and a waterfall of the request's phases: DNS lookup, TCP connection,
//! server processing, content transfer, and for `https://` the TLS handshake between the
//! connection and the server processing, with one line on what the handshake negotiated.
//! `http://` goes through `TracingConnector::http()` (one connect per address attempt),
//! `https://` through `HttpsStack::builder()` (the Mozilla roots unless told otherwise).
//!
//! The options, in curl's spelling (with a URL only, not with `--reqwest`):
//! - `--cacert FILE`: trust the certificates of this PEM file instead of the Mozilla roots (a
//!   private CA, a self-signed certificate).
//! - `-k`, `--insecure`: don't verify the server's certificate at all; every report says so.
//! - `--http1.1`, `--http2`: offer only this version by ALPN (a server that doesn't take `h2`
//!   answers in HTTP/1.1, as with curl); `--http2` on `http://` speaks HTTP/2 with prior
//!   knowledge (curl's `--http2-prior-knowledge`).
//! - `-X METHOD`; `-H "Name: value"` (repeatable); `-d DATA` (a form, `POST` unless `-X` says
//!   otherwise), `--data-binary DATA` (sent as is); `@FILE` reads DATA from a file.
//! - `-n COUNT`: the same request COUNT times on one client, one after the other (the first on a
//!   fresh connection, the others reused when the server keeps it), then the minimum, median and
//!   maximum of each phase.
//! - `--json`: instead of the report, one JSON object per request on a line of its own: the
//!   request, `ok`, the status and version, the connection, the TLS state, the phases and curl's
//!   marks in milliseconds (`null` for a phase the request didn't go through), every event with
//!   its offset, and the error of a failed request.
//!
//! rustls refuses a CA certificate as a server's own (`CaUsedAsEndEntity`): a self-signed
//! certificate made by `openssl req -x509` is one unless it says `basicConstraints=CA:FALSE`.
//!
//! `--reqwest` (feature `reqwest`) sends the same requests through a `reqwest::Client` instead:
//! its DNS through `httptrace::reqwest::TracingResolve::gai()`, its connects through
//! `connector_layer()`, redirects (up to 10) through `redirect_policy(10)`, the client served by
//! `TraceLayer` as a tower `Service<reqwest::Request>` with the trace attached by
//! `ClientTrace::scope`. reqwest hides the wire, so the waterfall has fewer columns: the TLS
//! handshake is inside the connect, and server processing and content transfer split where the
//! response head reached the layer (no first response byte: derived, and said so); `GotConn`
//! is derived from the response (see the `httptrace::reqwest` docs). The client doesn't use proxies, as the hyper-util one doesn't.
//!
//! Exit codes: 0 on success, 1 when a request fails (the error with its causes and the events
//! recorded so far are printed), 2 for a bad command line, URL or `--cacert` file, or for
//! `--reqwest` without the `reqwest` feature.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::uri::Scheme;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use httptrace::{
    connect::HttpsStack, error::SharedError, event::TlsState, ClientTrace, Event, Recorder,
    RequestBody, Timeline, Timings, Trace, TraceLayer, TracingConnector,
};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::{Layer, ServiceExt};

const USAGE: &str = "\
usage: cargo run --example httpstat -- [OPTIONS] [http(s)://URL]
       cargo run --example httpstat --features reqwest -- --reqwest [-v] [http(s)://URL]
  -v, --verbose           list every event with its offset
  --cacert FILE           trust the certificates of this PEM file
  -k, --insecure          don't verify the server's certificate
  --http1.1, --http2      offer only this HTTP version
  -X METHOD               the request method
  -H \"Name: value\"        a request header (repeatable)
  -d DATA                 a form body (POST); @FILE reads it from FILE
  --data-binary DATA      a body sent as is; @FILE reads it from FILE
  -n COUNT                the same request COUNT times on one client, then a summary
  --json                  one JSON object per request, on a line of its own
  --timeline FILE.html    draw the requests (with -n) on one page: httptrace::Timeline
  -h, --help              this text
Without a URL: four requests to built-in loopback servers (HTTP and HTTPS, fresh and reused).";
const SERVER_DELAY: Duration = Duration::from_millis(20);
/// The most `-n` allows.
const MAX_COUNT: usize = 1000;

/// A hyper-util client over the connector `C`, traced, with [`Timings`] in every response.
type Traced<C> = Trace<Client<C, RequestBody<Full<Bytes>>>>;

fn traced<C>(connector: C) -> Traced<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    traced_with(connector, false)
}

/// [`traced`], speaking HTTP/2 only when `http2_only`.
fn traced_with<C>(connector: C, http2_only: bool) -> Traced<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2_only)
        .build(connector);
    TraceLayer::new().record_timings(true).layer(client)
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(opts)) => opts,
        Err(msg) => {
            eprintln!("httpstat: {msg} (httpstat -h for help)");
            return ExitCode::from(2);
        }
    };
    let ok = match (opts.reqwest, opts.url.clone()) {
        (false, Some(uri)) => match Setup::new(&opts) {
            Ok(setup) => stat_url(uri, &opts, &setup).await,
            Err(msg) => {
                eprintln!("httpstat: {msg}");
                return ExitCode::from(2);
            }
        },
        (false, None) => demo(opts.verbose).await,
        #[cfg(feature = "reqwest")]
        (true, Some(uri)) => via_reqwest::stat_url(uri, opts.verbose).await,
        #[cfg(feature = "reqwest")]
        (true, None) => via_reqwest::demo(opts.verbose).await,
        #[cfg(not(feature = "reqwest"))]
        (true, _) => {
            eprintln!("httpstat: --reqwest: rebuild with --features reqwest");
            return ExitCode::from(2);
        }
    };
    ExitCode::from(u8::from(!ok))
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// What the command line asks for.
struct Options {
    verbose: bool,
    /// Through `reqwest::Client` rather than hyper-util's client.
    reqwest: bool,
    url: Option<Uri>,
    cacert: Option<PathBuf>,
    insecure: bool,
    version: Option<Wire>,
    method: Option<Method>,
    headers: HeaderMap,
    /// The body, and whether it is a form (`-d`).
    data: Option<(Bytes, bool)>,
    count: usize,
    json: bool,
    /// Where to write the timeline page of the requests (`--timeline`).
    timeline: Option<PathBuf>,
}

/// The HTTP version asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Http1,
    Http2,
}

/// The options, or `None` for `-h`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        verbose: false,
        reqwest: false,
        url: None,
        cacert: None,
        insecure: false,
        version: None,
        method: None,
        headers: HeaderMap::new(),
        data: None,
        count: 1,
        json: false,
        timeline: None,
    };
    let mut needs_url = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-v" | "--verbose" => opts.verbose = true,
            "--reqwest" => opts.reqwest = true,
            "-h" | "--help" => return Ok(None),
            "--cacert" => opts.cacert = Some(PathBuf::from(value("--cacert")?)),
            "-k" | "--insecure" => opts.insecure = true,
            "--http1.1" => opts.version = Some(Wire::Http1),
            "--http2" => opts.version = Some(Wire::Http2),
            "--json" => opts.json = true,
            "--timeline" => opts.timeline = Some(PathBuf::from(value("--timeline")?)),
            "-X" | "--request" => {
                let m = value("-X")?;
                opts.method = Some(m.parse().map_err(|_| format!("invalid method {m:?}"))?);
            }
            "-H" | "--header" => {
                let (name, val) = parse_header(&value("-H")?)?;
                opts.headers.append(name, val);
            }
            "-d" | "--data" => opts.data = Some((data(&value("-d")?)?, true)),
            "--data-binary" => opts.data = Some((data(&value("--data-binary")?)?, false)),
            "-n" => {
                let n = value("-n")?;
                opts.count = match n.parse::<usize>() {
                    Ok(n @ 1..=MAX_COUNT) => n,
                    _ => return Err(format!("-n {n}: a count from 1 to {MAX_COUNT}")),
                };
            }
            _ if opts.url.is_none() && !arg.starts_with('-') => {
                opts.url = Some(parse_url(&arg)?);
                continue;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
        if !matches!(arg.as_str(), "-v" | "--verbose" | "--reqwest") {
            needs_url = Some(arg);
        }
    }
    match (needs_url, &opts.url, opts.reqwest) {
        (Some(flag), None, _) => Err(format!("{flag}: only with a URL")),
        (Some(flag), Some(_), true) => Err(format!("{flag}: not with --reqwest")),
        _ => Ok(Some(opts)),
    }
}

/// `Name: value`.
fn parse_header(arg: &str) -> Result<(HeaderName, HeaderValue), String> {
    let invalid = || format!("invalid header {arg:?}: use \"Name: value\"");
    let (name, value) = arg.split_once(':').ok_or_else(invalid)?;
    let name = HeaderName::try_from(name.trim()).map_err(|_| invalid())?;
    let value = HeaderValue::try_from(value.trim()).map_err(|_| invalid())?;
    Ok((name, value))
}

/// `DATA`, or the contents of `FILE` for `@FILE`.
fn data(arg: &str) -> Result<Bytes, String> {
    match arg.strip_prefix('@') {
        Some(file) => std::fs::read(file)
            .map(Bytes::from)
            .map_err(|e| format!("cannot read {file}: {e}")),
        None => Ok(Bytes::copy_from_slice(arg.as_bytes())),
    }
}

/// An `http://` or `https://` URL with a host; `http://` when no scheme is given.
fn parse_url(arg: &str) -> Result<Uri, String> {
    let full = match arg.contains("://") {
        true => arg.to_owned(),
        false => format!("http://{arg}"),
    };
    let uri: Uri = full
        .parse()
        .map_err(|e| format!("invalid URL {arg:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        Some("http" | "https") => Err(format!("invalid URL {arg:?}: no host")),
        _ => Err(format!(
            "{arg}: unsupported scheme, use http:// or https://"
        )),
    }
}

/// What the options make of the TLS stack, read before any request.
struct Setup {
    /// The roots of `--cacert`.
    roots: Option<rustls::RootCertStore>,
}

impl Setup {
    fn new(opts: &Options) -> Result<Setup, String> {
        let Some(path) = &opts.cacert else {
            return Ok(Setup { roots: None });
        };
        let shown = path.display();
        let mut roots = rustls::RootCertStore::empty();
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("--cacert {shown}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("--cacert {shown}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("--cacert {shown}: {e}"))?;
        }
        match roots.is_empty() {
            true => Err(format!("--cacert {shown}: no certificate in it")),
            false => Ok(Setup { roots: Some(roots) }),
        }
    }
}

/// `-k`: accepts any certificate, still checking the handshake's signatures.
#[derive(Debug)]
struct Insecure(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Insecure {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// The requests.

/// The request the options ask for, `count` times on one client: `https://` over the Mozilla
/// roots (or `--cacert`'s, or none with `-k`), `http://` dialling address by address.
async fn stat_url(uri: Uri, opts: &Options, setup: &Setup) -> bool {
    let http2 = opts.version == Some(Wire::Http2);
    if uri.scheme() != Some(&Scheme::HTTPS) {
        let client = traced_with(TracingConnector::http(), http2);
        return stat_count(&client, uri, opts).await;
    }
    let mut https = HttpsStack::builder();
    if let Some(roots) = &setup.roots {
        https = https.root_certificates(roots.clone());
    }
    if opts.insecure {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(ring);
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(Insecure(provider)))
                    .with_no_client_auth()
            });
        match config {
            Ok(config) => https = https.tls_config(config),
            Err(e) => {
                eprintln!("httpstat: cannot set up TLS: {e}");
                return false;
            }
        }
    }
    https = match opts.version {
        Some(Wire::Http1) => https.http1_only(),
        Some(Wire::Http2) => https.http2_only(),
        None => https,
    };
    match https.build() {
        // ALPN decides: a server that doesn't take `h2` answers in HTTP/1.1, as with curl
        Ok(https) => stat_count(&traced(https), uri, opts).await,
        Err(e) => {
            eprintln!("httpstat: cannot set up TLS: {e}");
            false
        }
    }
}

/// The request of the options, `opts.count` times on `svc`, and a summary after more than one.
async fn stat_count<C>(svc: &Traced<C>, uri: Uri, opts: &Options) -> bool
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let method = match (&opts.method, &opts.data) {
        (Some(m), _) => m.clone(),
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut all = Vec::with_capacity(opts.count);
    let timeline = opts.timeline.as_ref().map(|_| Timeline::new(opts.count));
    for i in 1..=opts.count {
        let mut req = Request::new(Full::new(
            opts.data
                .as_ref()
                .map_or_else(Bytes::new, |(d, _)| d.clone()),
        ));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = opts.headers.clone();
        if let Some(timeline) = &timeline {
            req.extensions_mut().insert(timeline.trace());
        }
        if let Some((_, true)) = opts.data {
            req.headers_mut()
                .entry(CONTENT_TYPE)
                .or_insert(HeaderValue::from_static(
                    "application/x-www-form-urlencoded",
                ));
        }
        let report = Report {
            verbose: opts.verbose,
            json: opts.json,
            insecure: opts.insecure,
        };
        let title = match opts.count {
            1 => format!("{method} {uri}"),
            n => format!("{method} {uri}, {i} of {n}"),
        };
        match stat(svc, req, &title, report).await {
            Some(timings) => all.push(timings),
            None => return false,
        }
        if i < opts.count {
            // the client puts the connection back in its pool from the connection's task
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    if all.len() > 1 && !opts.json {
        print_summary(&all);
    }
    if let (Some(timeline), Some(path)) = (timeline, &opts.timeline) {
        if let Err(e) = std::fs::write(path, timeline.html()) {
            eprintln!("httpstat: cannot write {}: {e}", path.display());
            return false;
        }
        if !opts.json {
            println!(
                "\nTimeline of the {} requests: {}",
                timeline.len(),
                path.display()
            );
        }
    }
    true
}

/// One phase's duration in a request's timings.
type Phase = fn(&Timings) -> Option<Duration>;

/// Each phase's minimum, median and maximum over the requests of `-n`.
fn print_summary(all: &[Timings]) {
    let reused = all.iter().filter(|t| t.reused() == Some(true)).count();
    println!(
        "\n=== {} requests, {reused} on a reused connection ===\n",
        all.len()
    );
    println!(
        "{:<18} {:>12} {:>12} {:>12}",
        "phase", "min", "median", "max"
    );
    let phases: [(&str, Phase); 6] = [
        ("DNS Lookup", Timings::dns),
        ("TCP Connection", Timings::connect),
        ("TLS Handshake", Timings::tls),
        ("Server Processing", Timings::server_processing),
        ("Content Transfer", Timings::content_transfer),
        ("Total", Timings::total),
    ];
    for (name, phase) in phases {
        let mut seen: Vec<Duration> = all.iter().filter_map(phase).collect();
        seen.sort();
        let (Some(min), Some(max)) = (seen.first(), seen.last()) else {
            println!(
                "{name:<18} {:>12} {:>12} {:>12}  (in no request)",
                "-", "-", "-"
            );
            continue;
        };
        let median = seen[seen.len() / 2];
        let of = match seen.len() == all.len() {
            true => String::new(),
            false => format!("  (in {} of {})", seen.len(), all.len()),
        };
        println!(
            "{name:<18} {:>12} {:>12} {:>12}{of}",
            ms(Some(*min)),
            ms(Some(median)),
            ms(Some(*max))
        );
    }
}

/// Traces four requests to the loopback servers: HTTP fresh and reused, HTTPS fresh and reused.
async fn demo(verbose: bool) -> bool {
    let Some(servers) = Servers::start_or_report().await else {
        return false;
    };
    let http = traced(TracingConnector::http());
    let https = traced(HttpsStack::https(servers.client_config.clone()));
    let (http_uri, https_uri) = (servers.uri("http"), servers.uri("https"));
    fresh_then_reused(["request 1", "request 2"], |title| async {
        stat(&http, get(&http_uri), title, Report::text(verbose))
            .await
            .is_some()
    })
    .await
        && fresh_then_reused(["request 3", "request 4"], |title| async {
            stat(&https, get(&https_uri), title, Report::text(verbose))
                .await
                .is_some()
        })
        .await
}

/// A GET of `uri` with no body.
fn get(uri: &Uri) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = uri.clone();
    req
}

/// A GET on a fresh connection, then another on the same connection, back from the pool: `stat`
/// sends one and reports it under the title it is given.
async fn fresh_then_reused<F, Fut>(titles: [&'static str; 2], stat: F) -> bool
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = bool>,
{
    if !stat(titles[0]).await {
        return false;
    }
    // the client puts the connection back in its pool from the connection's task: let it
    tokio::time::sleep(Duration::from_millis(10)).await;
    stat(titles[1]).await
}

/// Sends `req` traced and prints what happened: its timings, or `None` if it failed.
async fn stat<C>(
    svc: &Traced<C>,
    mut req: Request<Full<Bytes>>,
    title: &str,
    report: Report,
) -> Option<Timings>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let tls = req.uri().scheme() == Some(&Scheme::HTTPS);
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let rec = Recorder::new();
    // with what the caller attached (a timeline)
    let trace = match req.extensions_mut().remove::<ClientTrace>() {
        Some(theirs) => rec.trace().compose(theirs),
        None => rec.trace(),
    };
    req.extensions_mut().insert(trace);
    let failed = |e: &(dyn StdError + 'static)| match report.json {
        true => println!(
            "{}",
            json_failed(&method, &uri, report.insecure, e, &rec.events())
        ),
        false => _ = failed(e, &rec),
    };
    if report.insecure && !report.json {
        println!("\nWARNING: -k/--insecure: the server's certificate is not verified");
    }
    let res = match svc.clone().oneshot(req).await {
        Ok(res) => res,
        Err(e) => {
            failed(&e);
            return None;
        }
    };
    let (head, mut body) = res.into_parts();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes += frame.data_ref().map_or(0, Bytes::len),
            Err(e) => {
                failed(&e);
                return None;
            }
        }
    }

    let timings = head
        .extensions
        .get::<Timings>()
        .cloned()
        .unwrap_or_default();
    let got = Got {
        version: head.version,
        status: head.status,
        headers: &head.headers,
        bytes,
        derived_conn: false,
    };
    if report.json {
        let json = json_done(
            &method,
            &uri,
            report.insecure,
            &got,
            &timings,
            &rec.events(),
        );
        println!("{json}");
    } else {
        print_response(title, &timings, &rec.events(), &got, report.verbose);
        print_waterfall(&timings, tls);
    }
    Some(timings)
}

/// How [`stat`] reports a request.
#[derive(Clone, Copy)]
struct Report {
    /// With every event (text).
    verbose: bool,
    /// One JSON object instead of the text.
    json: bool,
    /// The certificate isn't verified (`-k`): said in the report.
    insecure: bool,
}

impl Report {
    fn text(verbose: bool) -> Report {
        Report {
            verbose,
            json: false,
            insecure: false,
        }
    }
}

/// What a request got, for [`print_response`].
struct Got<'a> {
    version: Version,
    status: StatusCode,
    headers: &'a HeaderMap,
    /// The body's size.
    bytes: usize,
    /// `GotConn` was derived from the response (reqwest), not reported by the pool.
    derived_conn: bool,
}

/// Prints the request's connection, the response head, the body's size and, with `-v`, the
/// events.
fn print_response(title: &str, timings: &Timings, events: &[Event], got: &Got, verbose: bool) {
    let how = match timings.reused() {
        Some(true) => "reused",
        _ => "fresh",
    };
    let id = timings.conn_id().unwrap_or_default();
    println!("\n=== {title} ({how} connection #{id}) ===\n");
    if let Some(c) = events.iter().find_map(|e| match e {
        Event::GotConn(c) => Some(c),
        _ => None,
    }) {
        let (to, from) = (addr(c.remote_addr), addr(c.local_addr));
        let derived = match got.derived_conn {
            true => format!(" (derived GotConn: reused={})", c.reused),
            false => String::new(),
        };
        println!(
            "Connected to {to} from {from}, connection #{}{derived}",
            c.conn_id
        );
        if let Some(h2) = &c.http2 {
            let stream = h2.stream_id.map_or("?".into(), |id| id.to_string());
            let waited = match h2.waited_for_connect {
                true => ", waited for another request's connect",
                false => "",
            };
            println!(
                "Protocol: HTTP/2, stream {stream}, {} other stream(s) in flight{waited}",
                h2.streams_in_flight
            );
        } else if !got.derived_conn {
            println!("Protocol: {:?}", got.version);
        }
    }
    if let Some(state) = events.iter().find_map(|e| match e {
        Event::TlsHandshakeDone(i) => i.state.as_ref(),
        _ => None,
    }) {
        println!("TLS: {}", negotiated(state));
    }
    let redirects: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Redirect(r) => Some(r),
            _ => None,
        })
        .collect();
    if let Some(last) = redirects.last() {
        println!("Followed {} redirect(s) to {}", redirects.len(), last.to);
    }
    println!("\n{:?} {}", got.version, got.status);
    for (name, value) in got.headers {
        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    println!("\nBody: {} bytes", got.bytes);
    if verbose {
        print!("{}", events_report(events));
    }
}

fn failed(err: &(dyn StdError + 'static), rec: &Recorder) -> bool {
    let mut causes = causes(err).into_iter();
    if let Some(first) = causes.next() {
        eprintln!("httpstat: request failed: {first}");
    }
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
    eprint!("{}", events_report(&rec.events()));
    false
}

// ---------------------------------------------------------------------------------------------
// The loopback servers.

/// The demo's servers, HTTP and HTTPS, each on 127.0.0.1 and, when it can, on [::1] with the
/// same port, so that `localhost` reaches them whichever address it resolves to first. Stopped
/// when dropped.
struct Servers {
    http_port: u16,
    https_port: u16,
    /// Trusts the HTTPS server's self-signed certificate, and nothing else.
    client_config: rustls::ClientConfig,
    tasks: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Starts the servers, or says why it can't.
    async fn start_or_report() -> Option<Servers> {
        match Servers::start().await {
            Ok(servers) => Some(servers),
            Err(e) => {
                let e = chain(&*e);
                eprintln!("httpstat: cannot start the loopback servers: {e}");
                None
            }
        }
    }

    async fn start() -> Result<Servers, Box<dyn StdError>> {
        let (cert, key) = self_signed("localhost")?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone())?;
        let client_config = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut server_config = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(server_config));

        let (http_port, http) = listen().await?;
        let (https_port, https) = listen().await?;
        let mut tasks: Vec<_> = http.into_iter().map(|l| spawn_server(l, None)).collect();
        tasks.extend(
            https
                .into_iter()
                .map(|l| spawn_server(l, Some(acceptor.clone()))),
        );
        Ok(Servers {
            http_port,
            https_port,
            client_config,
            tasks,
        })
    }

    /// `http://localhost:PORT/` or `https://localhost:PORT/`.
    fn uri(&self, scheme: &str) -> Uri {
        let port = match scheme {
            "https" => self.https_port,
            _ => self.http_port,
        };
        let uri = format!("{scheme}://localhost:{port}/");
        uri.parse().expect("a valid URL")
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// The example's own rustls provider, for its loopback servers and its reqwest client: ring.
/// (rustls 0.23.48 deprecates it for its lack of post-quantum key exchange; an application
/// picks its own, and httptrace uses the process's.)
#[allow(deprecated)]
fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `name`, and its key.
fn self_signed(
    name: &str,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()])?;
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    Ok((certified.cert.der().clone(), key.into()))
}

/// Listeners on 127.0.0.1 (any free port) and, when it can, on [::1] with the same port.
async fn listen() -> std::io::Result<(u16, Vec<TcpListener>)> {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = v4.local_addr()?.port();
    let mut listeners = vec![v4];
    listeners.extend(TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await.ok());
    Ok((port, listeners))
}

/// Serves every connection `listener` accepts, over TLS when given an acceptor.
fn spawn_server(listener: TcpListener, tls: Option<TlsAcceptor>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // no Nagle: HTTP/2 writes a response in more than one piece
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(TokioIo::new(tcp)).await,
                    // a failed handshake is the client's to report
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(tcp).await {
                            match stream.get_ref().1.alpn_protocol() {
                                Some(b"h2") => serve_h2(TokioIo::new(stream)).await,
                                _ => serve_connection(TokioIo::new(stream)).await,
                            }
                        }
                    }
                }
            });
        }
    })
}

/// Every request is answered after [`SERVER_DELAY`].
async fn answer(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(SERVER_DELAY).await;
    let body = Full::new(Bytes::from_static(b"hello from the loopback server\n"));
    Ok(Response::new(body))
}

/// HTTP/1 on one connection.
async fn serve_connection<IO>(io: IO)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, hyper::service::service_fn(answer))
        .await;
}

/// HTTP/2 on one connection.
async fn serve_h2<IO>(io: IO)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(io, hyper::service::service_fn(answer))
        .await;
}

// ---------------------------------------------------------------------------------------------
// --json: one object per request, written by hand (the example needs no JSON crate).

/// A JSON string.
fn jstr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object of already written members.
fn jobj(members: &[(&str, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", jstr(k)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Milliseconds, or `null`.
fn jms(d: Option<Duration>) -> String {
    d.map_or("null".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

/// A string, or `null`.
fn jopt(s: Option<String>) -> String {
    s.map_or("null".into(), |s| jstr(&s))
}

/// The members every request's object starts with.
fn jrequest(method: &Method, uri: &Uri, insecure: bool, ok: bool) -> Vec<(&'static str, String)> {
    vec![
        ("method", jstr(method.as_str())),
        ("url", jstr(&uri.to_string())),
        ("insecure", insecure.to_string()),
        ("ok", ok.to_string()),
    ]
}

/// Every event: its name, its offset from the request's start, what it says and its error.
fn jevents(events: &[Event]) -> String {
    let start = events
        .iter()
        .find(|e| e.name() == "GetConn")
        .or(events.first())
        .map(Event::at);
    let all: Vec<String> = events
        .iter()
        .map(|e| {
            let offset = start.map(|s| e.at().saturating_duration_since(s));
            jobj(&[
                ("name", jstr(e.name())),
                ("offset_ms", jms(offset)),
                ("detail", jstr(event_detail(e).trim())),
                ("error", jopt(e.error().map(|e| chain(e)))),
            ])
        })
        .collect();
    format!("[{}]", all.join(","))
}

/// A request that got its response, read to its end.
fn json_done(
    method: &Method,
    uri: &Uri,
    insecure: bool,
    got: &Got,
    t: &Timings,
    events: &[Event],
) -> String {
    let conn = events.iter().find_map(|e| match e {
        Event::GotConn(c) => Some(jobj(&[
            ("id", c.conn_id.to_string()),
            ("reused", c.reused.to_string()),
            ("was_idle", c.was_idle.to_string()),
            ("idle_ms", jms(Some(c.idle_time))),
            ("local", jopt(c.local_addr.map(|a| a.to_string()))),
            ("remote", jopt(c.remote_addr.map(|a| a.to_string()))),
            (
                "http2_stream",
                c.http2
                    .as_ref()
                    .and_then(|h2| h2.stream_id)
                    .map_or("null".into(), |id| id.to_string()),
            ),
        ])),
        _ => None,
    });
    let tls = events.iter().find_map(|e| match e {
        Event::TlsHandshakeDone(i) => i.state.as_ref().map(|s| {
            jobj(&[
                ("version", jstr(&s.version.to_string())),
                ("cipher_suite", jstr(&s.cipher_suite.to_string())),
                (
                    "alpn",
                    jopt(
                        s.alpn
                            .as_deref()
                            .map(|p| String::from_utf8_lossy(p).into_owned()),
                    ),
                ),
                ("resumed", s.resumed.to_string()),
                ("server_name", jopt(s.server_name.clone())),
                ("peer_certificates", s.peer_certificates.len().to_string()),
            ])
        }),
        _ => None,
    });
    let mut members = jrequest(method, uri, insecure, true);
    members.extend([
        ("status", got.status.as_u16().to_string()),
        ("version", jstr(&format!("{:?}", got.version))),
        ("body_bytes", got.bytes.to_string()),
        ("connection", conn.unwrap_or_else(|| "null".into())),
        ("tls", tls.unwrap_or_else(|| "null".into())),
        (
            "phases_ms",
            jobj(&[
                ("dns", jms(t.dns())),
                ("connect", jms(t.connect())),
                ("tls", jms(t.tls())),
                ("server_processing", jms(t.server_processing())),
                ("content_transfer", jms(t.content_transfer())),
                ("total", jms(t.total())),
            ]),
        ),
        (
            "marks_ms",
            jobj(&[
                ("namelookup", jms(t.namelookup())),
                ("connect", jms(t.connected())),
                ("appconnect", jms(t.appconnect())),
                ("pretransfer", jms(t.pretransfer())),
                ("starttransfer", jms(t.starttransfer())),
                ("total", jms(t.total())),
            ]),
        ),
        ("events", jevents(events)),
        ("error", "null".into()),
    ]);
    jobj(&members)
}

/// A request that failed.
fn json_failed(
    method: &Method,
    uri: &Uri,
    insecure: bool,
    err: &(dyn StdError + 'static),
    events: &[Event],
) -> String {
    let mut members = jrequest(method, uri, insecure, false);
    members.extend([("events", jevents(events)), ("error", jstr(&chain(err)))]);
    jobj(&members)
}

// ---------------------------------------------------------------------------------------------
// The report.

fn addr(a: Option<SocketAddr>) -> String {
    a.map_or("?".into(), |a| a.to_string())
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}ms", d.as_secs_f64() * 1e3))
}

/// What a TLS handshake negotiated, on one line.
fn negotiated(s: &TlsState) -> String {
    let alpn = s
        .alpn
        .as_deref()
        .map_or("none".into(), String::from_utf8_lossy);
    let resumed = if s.resumed { "yes" } else { "no" };
    let sni = s.server_name.as_deref().unwrap_or("-");
    let certs = s.peer_certificates.len();
    format!(
        "{}, {}, ALPN {alpn}, resumed: {resumed}, server name {sni}, {certs} peer certificate(s)",
        s.version, s.cipher_suite
    )
}

/// httpstat's waterfall (its templates for http:// and https://), with sub-millisecond
/// precision: the phases in columns, and below, each column's end as a mark from the start.
fn print_waterfall(t: &Timings, tls: bool) {
    let mut phases = vec![("DNS Lookup", t.dns()), ("TCP Connection", t.connect())];
    let mut marks = vec![("namelookup", t.namelookup()), ("connect", t.connected())];
    if tls {
        phases.push(("TLS Handshake", t.tls()));
        marks.push(("appconnect", t.appconnect()));
    }
    phases.extend([
        ("Server Processing", t.server_processing()),
        ("Content Transfer", t.content_transfer()),
    ]);
    marks.extend([("starttransfer", t.starttransfer()), ("total", t.total())]);
    print_chart(t, &phases, &marks);
}

/// The waterfall through reqwest: only the phases it lets us see.
#[cfg(feature = "reqwest")]
fn print_reqwest_waterfall(t: &Timings, tls: bool) {
    let (connect, connected) = match tls {
        true => ("TCP + TLS Connect", "appconnect"),
        false => ("TCP Connection", "connect"),
    };
    let phases = [
        ("DNS Lookup", t.dns()),
        (connect, t.connect()),
        ("Server Processing", t.server_processing()),
        ("Content Transfer", t.content_transfer()),
    ];
    let marks = [
        ("namelookup", t.namelookup()),
        (connected, t.connected()),
        ("starttransfer", t.starttransfer()),
        ("total", t.total()),
    ];
    print_chart(t, &phases, &marks);
    let tls_note = match tls {
        true => "TLS is in the connect; ",
        false => "",
    };
    let split = match t.first_byte_derived() {
        true => "processing and transfer split at the response head (derived)",
        false => "processing and transfer split at the first byte",
    };
    println!("{tls_note}{split}: reqwest hides the wire (see the httptrace::reqwest docs).");
}

/// Prints the waterfall of `phases` and `marks`, and the time between the phases.
fn print_chart(
    t: &Timings,
    phases: &[(&str, Option<Duration>)],
    marks: &[(&str, Option<Duration>)],
) {
    let (chart, width) = waterfall(phases, marks);
    print!("\n{chart}");
    if t.reused() == Some(true) {
        let note = format!("(reused connection #{})", t.conn_id().unwrap_or_default());
        println!("{note:>width$}");
    }
    if let Some(total) = t.total() {
        let sum = phases.iter().filter_map(|(_, d)| *d).sum();
        let (gap, sum) = (ms(Some(total.saturating_sub(sum))), ms(Some(sum)));
        let total = ms(Some(total));
        println!("\n{sum} in phases + {gap} between them (pool, task hand-offs) = {total}");
    }
}

/// Draws the columns and the marks (one per column, at its right edge); returns the chart and
/// its width.
fn waterfall(
    phases: &[(&str, Option<Duration>)],
    marks: &[(&str, Option<Duration>)],
) -> (String, usize) {
    let widths: Vec<usize> = phases.iter().map(|(title, _)| title.len() + 2).collect();
    // where each column ends: its `|` (or the final `]`)
    let edges: Vec<usize> = widths
        .iter()
        .scan(0, |x, w| {
            *x += w + 1;
            Some(*x)
        })
        .collect();
    let mut titles = String::from(" ");
    let mut bar = String::from("[");
    for (&(title, d), &w) in phases.iter().zip(&widths) {
        titles += &format!("{title:^w$} ");
        bar += &format!("{:^w$}|", ms(d));
    }
    bar.pop();
    bar.push(']');
    let ticks_from = |line: &mut String, from: usize| {
        for &edge in &edges[from..] {
            if line.len() < edge {
                *line += &format!("{:>w$}", "|", w = edge + 1 - line.len());
            }
        }
    };
    let mut ticks = String::new();
    ticks_from(&mut ticks, 0);
    let mut out = format!("{}\n{bar}\n{ticks}\n", titles.trim_end());
    for (i, &(name, d)) in marks.iter().enumerate() {
        let mut line = format!("{:>w$}{}", format!("{name}:"), ms(d), w = edges[i] + 2);
        ticks_from(&mut line, i + 1);
        out = out + &line + "\n";
    }
    (out, edges[edges.len() - 1] + 2)
}

/// The causes of `err`, outermost first. `SharedError` and `io::Error` are transparent (their
/// `Display` and `source()` are the wrapped error's), so the chain is read through them: that is
/// where a TLS error (e.g. rustls' `UnknownIssuer`) sits.
fn causes<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    fn unwrap<'a>(mut e: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
        loop {
            let inner = match e.downcast_ref::<SharedError>() {
                Some(shared) => Some(shared.get_ref()),
                None => e
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref()),
            };
            match inner {
                Some(inner) => e = inner,
                None => return e,
            }
        }
    }
    let mut out: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next.map(unwrap) {
        if out
            .last()
            .is_none_or(|last| last.to_string() != e.to_string())
        {
            out.push(e);
        }
        next = e.source();
    }
    out
}

/// An error with its causes, on one line.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let causes: Vec<String> = causes(err).iter().map(ToString::to_string).collect();
    causes.join(": ")
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
        let mut detail = event_detail(e);
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

/// What an event says, on one line (its error aside).
fn event_detail(e: &Event) -> String {
    match e {
        Event::GetConn(i) => i.host_port(),
        Event::DnsStart(i) => i.host.clone(),
        Event::DnsDone(i) => format!("{:?}", i.addrs),
        Event::ConnectStart(i) => i.addr.map_or(String::new(), |a| a.to_string()),
        Event::ConnectDone(i) if i.error.is_none() => format!(
            "#{} {} -> {}",
            i.conn_id.unwrap_or_default(),
            addr(i.local_addr),
            addr(i.addr)
        ),
        Event::ConnectDone(i) => i.addr.map_or(String::new(), |a| a.to_string()),
        Event::TlsHandshakeStart(i) => i.server_name.clone().unwrap_or_default(),
        Event::TlsHandshakeDone(i) => i.state.as_ref().map_or(String::new(), negotiated),
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
        Event::Redirect(i) => format!("{} -> {} (hop {})", i.status, i.to, i.hop),
        Event::PutIdleConn(i) => format!("#{}", i.conn_id),
        Event::ConnectionClosed(i) => format!("#{} after {} requests", i.conn_id, i.requests),
        Event::Http2Ready(i) => format!(
            "#{} max concurrent streams {}",
            i.conn_id,
            i.max_concurrent_streams
                .map_or("unlimited".into(), |n| n.to_string())
        ),
        Event::GoAway(i) => format!(
            "#{} last stream {} code {}",
            i.conn_id, i.last_stream_id, i.error_code
        ),
        Event::StreamReset(i) => format!(
            "stream {} code {} by {}",
            i.stream_id,
            i.error_code,
            if i.by_server { "server" } else { "client" }
        ),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Through reqwest.

/// `--reqwest`: the same requests through `reqwest::Client`, traced by `httptrace::reqwest`.
#[cfg(feature = "reqwest")]
mod via_reqwest {
    use http::uri::Scheme;
    use http::Uri;
    use httptrace::reqwest::{connector_layer, redirect_policy, TracingResolve};
    use httptrace::{Recorder, Timings, Trace, TraceLayer};
    use tower::{Layer, ServiceExt};

    use super::{chain, failed, fresh_then_reused, print_reqwest_waterfall, print_response};
    use super::{Got, Servers};

    /// A reqwest client, and the same client traced, with [`Timings`] in every response.
    struct Traced {
        client: reqwest::Client,
        svc: Trace<reqwest::Client>,
    }

    impl Traced {
        /// Trusts `tls`'s roots when given one, else the platform's (reqwest's default).
        fn new(tls: Option<rustls::ClientConfig>) -> Result<Traced, reqwest::Error> {
            // this example builds reqwest with rustls and no provider: bring one
            let _ = std::sync::Arc::unwrap_or_clone(super::ring()).install_default();
            let mut builder = reqwest::Client::builder()
                .dns_resolver(TracingResolve::gai())
                .connector_layer(connector_layer())
                .redirect(redirect_policy(10))
                .no_proxy();
            if let Some(config) = tls {
                builder = builder.tls_backend_preconfigured(config);
            }
            let client = builder.build()?;
            let svc = TraceLayer::new().record_timings(true).layer(client.clone());
            Ok(Traced { client, svc })
        }

        /// [`Traced::new`], or says why it can't.
        fn new_or_report(tls: Option<rustls::ClientConfig>) -> Option<Traced> {
            Traced::new(tls)
                .map_err(|e| eprintln!("httpstat: cannot build the reqwest client: {}", chain(&e)))
                .ok()
        }
    }

    /// One GET of `uri`, `https://` over the platform's roots.
    pub(super) async fn stat_url(uri: Uri, verbose: bool) -> bool {
        match Traced::new_or_report(None) {
            Some(traced) => stat(&traced, &uri, &format!("GET {uri}"), verbose).await,
            None => false,
        }
    }

    /// The four requests of the demo, through reqwest.
    pub(super) async fn demo(verbose: bool) -> bool {
        let Some(servers) = Servers::start_or_report().await else {
            return false;
        };
        let Some((http, https)) = Traced::new_or_report(None)
            .zip(Traced::new_or_report(Some(servers.client_config.clone())))
        else {
            return false;
        };
        let (http_uri, https_uri) = (servers.uri("http"), servers.uri("https"));
        fresh_then_reused(["request 1", "request 2"], |title| {
            stat(&http, &http_uri, title, verbose)
        })
        .await
            && fresh_then_reused(["request 3", "request 4"], |title| {
                stat(&https, &https_uri, title, verbose)
            })
            .await
    }

    /// Sends one traced GET and prints what happened; `false` if it failed.
    async fn stat(traced: &Traced, uri: &Uri, title: &str, verbose: bool) -> bool {
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let rec = Recorder::new();
        let req = match traced.client.get(uri.to_string()).build() {
            Ok(req) => req,
            Err(e) => return failed(&e, &rec),
        };
        // reqwest requests have no extensions: the trace is the scope's, current when the
        // layer is called (inside `oneshot`)
        let res = match rec.trace().scope(traced.svc.clone().oneshot(req)).await {
            Ok(res) => res,
            Err(e) => return failed(&e, &rec),
        };
        let timings = res
            .extensions()
            .get::<Timings>()
            .cloned()
            .unwrap_or_default();
        let (version, status, headers) = (res.version(), res.status(), res.headers().clone());
        let bytes = match res.bytes().await {
            Ok(body) => body.len(),
            Err(e) => return failed(&e, &rec),
        };
        let got = Got {
            version,
            status,
            headers: &headers,
            bytes,
            derived_conn: true,
        };
        print_response(title, &timings, &rec.events(), &got, verbose);
        print_reqwest_waterfall(&timings, tls);
        true
    }
}
