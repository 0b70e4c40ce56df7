//! The `httpstat` example as a user runs it: the built binary spawned against a loopback HTTPS
//! server with a certificate of its own (a private CA's, as most services people debug), its
//! output read. `cargo test --all-features` builds the example next to this test.
#![cfg(feature = "rustls")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use httptrace_test_support::events::{with_handshake, FRESH, REUSED};
use httptrace_test_support::tls::{alpn_server, Cert};
use rustls::pki_types::PrivatePkcs8KeyDer;

/// The example's binary, built by `cargo test` beside this test's.
fn httpstat() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = dir
        .join("examples")
        .join(format!("httpstat{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: `cargo test --all-features` builds it",
        bin.display()
    );
    bin
}

/// A loopback HTTPS server offering `h2` and `http/1.1`, whose certificate is written to a PEM
/// file; each response tells in `x-echo` the method, the body's size, its `content-type` and
/// the request's `x-a` header.
struct Https {
    addr: SocketAddr,
    pem: PathBuf,
}

impl Https {
    async fn start() -> Https {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let pem =
            std::env::temp_dir().join(format!("httptrace-httpstat-{}-{n}.pem", std::process::id()));
        std::fs::write(&pem, ck.cert.pem()).unwrap();
        let cert = Cert {
            der: ck.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
        };
        let addr = alpn_server(&cert, &[b"h2", b"http/1.1"], |req| Box::pin(echo(req))).await;
        Https { addr, pem }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.addr.port())
    }

    /// Runs httpstat with `args`, then this server's URL.
    async fn run(&self, args: &[&str]) -> Output {
        run(args.iter().copied().chain([self.url().as_str()])).await
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem);
    }
}

async fn echo(req: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    let (head, body) = req.into_parts();
    let len = body.collect().await.map_or(0, |b| b.to_bytes().len());
    let header = |name: &str| {
        head.headers.get(name).map_or("-".into(), |v| {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        })
    };
    let echo = format!(
        "{} {len} {} {}",
        head.method,
        header("content-type"),
        header("x-a")
    );
    let mut res = http::Response::new(Full::new(Bytes::from_static(b"hello")));
    res.headers_mut().insert("x-echo", echo.parse().unwrap());
    res
}

/// Runs httpstat with `args`, killed after 30 s.
async fn run<'a>(args: impl IntoIterator<Item = &'a str>) -> Output {
    let child = tokio::process::Command::new(httpstat())
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .expect("httpstat ends")
        .expect("httpstat runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a successful run, and gives its standard output.
fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_certificate_is_refused_unless_trusted() {
    let server = Https::start().await;
    let out = server.run(&[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("UnknownIssuer"), "{}", stderr(&out));

    let pem = server.pem.to_str().unwrap();
    let out = ok(&server.run(&["--cacert", pem]).await);
    assert!(out.contains("TLS Handshake"), "{out}");
    assert!(out.contains("Protocol: HTTP/2, stream 1"), "{out}");
    assert!(out.contains("x-echo: GET 0 - -"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");

    let out = ok(&server.run(&["-k"]).await);
    assert!(
        out.contains("WARNING: -k/--insecure: the server's certificate is not verified"),
        "{out}"
    );
    assert!(out.contains("TLS: "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_version_asked_for_is_the_one_spoken() {
    let server = Https::start().await;
    let pem = server.pem.to_str().unwrap();
    let out = ok(&server.run(&["--cacert", pem, "--http1.1"]).await);
    assert!(out.contains("Protocol: HTTP/1.1"), "{out}");
    assert!(!out.contains("ALPN h2"), "{out}");
    let out = ok(&server.run(&["--cacert", pem, "--http2"]).await);
    assert!(out.contains("Protocol: HTTP/2, stream 1"), "{out}");
    assert!(out.contains("ALPN h2"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_and_body_are_sent() {
    let server = Https::start().await;
    let pem = server.pem.to_str().unwrap();
    let form = [
        "--cacert", pem, "-X", "PUT", "-H", "x-a: 1", "-d", "a=1&b=2",
    ];
    let out = ok(&server.run(&form).await);
    assert!(
        out.contains("x-echo: PUT 7 application/x-www-form-urlencoded 1"),
        "{out}"
    );
    assert!(out.contains("=== PUT https://127.0.0.1:"), "{out}");

    let file = server.pem.with_extension("body");
    std::fs::write(&file, [7u8; 1000]).unwrap();
    let data = format!("@{}", file.display());
    let out = server.run(&["--cacert", pem, "--data-binary", &data]).await;
    let _ = std::fs::remove_file(&file);
    let out = ok(&out);
    assert!(out.contains("x-echo: POST 1000 - -"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_reuse_the_connection_and_sum_up() {
    let server = Https::start().await;
    let pem = server.pem.to_str().unwrap();
    let out = ok(&server.run(&["--cacert", pem, "--http1.1", "-n", "5"]).await);
    assert_eq!(
        out.matches("of 5 (fresh connection #1)").count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.matches("of 5 (reused connection #1)").count(),
        4,
        "{out}"
    );
    for i in 1..=5 {
        assert!(out.contains(&format!(", {i} of 5 (")), "{out}");
    }
    assert!(
        out.contains("=== 5 requests, 4 on a reused connection ==="),
        "{out}"
    );
    let summary = &out[out.find("=== 5 requests").unwrap()..];
    assert!(summary.contains("TLS Handshake"), "{summary}");
    assert!(summary.contains("(in 1 of 5)"), "{summary}");
    assert!(summary.lines().any(|l| l.starts_with("Total")), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_page_draws_the_requests() {
    let server = Https::start().await;
    let pem = server.pem.to_str().unwrap();
    let page = std::env::temp_dir().join(format!("httptrace-timeline-{}.html", std::process::id()));
    let path = page.to_str().unwrap();
    let out = ok(&server
        .run(&["--cacert", pem, "--http1.1", "-n", "3", "--timeline", path])
        .await);
    assert!(
        out.contains(&format!("Timeline of the 3 requests: {path}")),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let _ = std::fs::remove_file(&page);
    let rows: Vec<&str> = html.split("<g class=\"row").skip(1).collect();
    assert_eq!(rows.len(), 3, "{html}");
    // the first dials (its connect and handshake drawn), the others reuse its connection
    assert!(rows[0].contains("conn #1 fresh") && rows[0].contains("<rect class=\"tls\""));
    for row in &rows[1..] {
        assert!(row.contains("conn #1 reused") && !row.contains("<rect class=\"tls\""));
    }
    assert!(
        html.contains("<tr><th>reused</th><td>2 of 3 (67%)</td></tr>"),
        "{html}"
    );

    let out = server
        .run(&["--cacert", pem, "--timeline", "/nonexistent/dir/t.html"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot write /nonexistent/dir/t.html"),
        "{}",
        stderr(&out)
    );
}

/// The names of the events of one `--json` object, once checked that their offsets never run
/// backwards.
#[track_caller]
fn event_names(object: &serde_json::Value) -> Vec<&str> {
    let events = object["events"].as_array().expect("events");
    let offsets: Vec<f64> = events
        .iter()
        .map(|e| e["offset_ms"].as_f64().unwrap())
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1]),
        "offsets run backwards: {offsets:?} in {object}"
    );
    events.iter().map(|e| e["name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_one_object_per_request() {
    use serde_json::Value;
    let server = Https::start().await;
    let pem = server.pem.to_str().unwrap();
    let out = ok(&server
        .run(&["--cacert", pem, "--http1.1", "-n", "3", "--json"])
        .await);
    let objects: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 3, "{out}");
    let url = server.url();
    for (i, o) in objects.iter().enumerate() {
        let fresh = i == 0;
        assert_eq!(o["ok"], true, "{o}");
        assert_eq!(o["url"], url.as_str(), "{o}");
        assert_eq!(o["method"], "GET", "{o}");
        assert_eq!(o["status"], 200, "{o}");
        assert_eq!(o["version"], "HTTP/1.1", "{o}");
        assert_eq!(o["body_bytes"], 5, "{o}");
        assert_eq!(o["error"], Value::Null, "{o}");
        assert_eq!(o["connection"]["id"], 1, "{o}");
        assert_eq!(o["connection"]["reused"], !fresh, "{o}");
        assert_eq!(o["tls"].is_object(), fresh, "{o}");
        assert_eq!(o["phases_ms"]["tls"].is_number(), fresh, "{o}");
        assert!(o["phases_ms"]["total"].as_f64().unwrap() > 0.0, "{o}");
        let expected = match fresh {
            true => with_handshake(FRESH),
            false => REUSED.to_vec(),
        };
        assert_eq!(event_names(o), expected, "{o}");
        assert_eq!(o["events"][0]["offset_ms"], 0.0, "{o}");
    }
    assert_eq!(objects[0]["tls"]["peer_certificates"], 1);

    let out = server.run(&["--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let o: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(o["ok"], false, "{o}");
    assert!(
        o["error"].as_str().unwrap().contains("UnknownIssuer"),
        "{o}"
    );
    let expected = with_handshake(&["GetConn", "ConnectStart", "ConnectDone", "RequestFailed"]);
    assert_eq!(event_names(&o), expected, "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_lines_say_why_in_one_line() {
    for args in [
        &["-X"][..],
        &["--cacert"],
        &["-n", "0", "http://127.0.0.1:9/"],
        &["-H", "no colon", "http://127.0.0.1:9/"],
        &["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:9/"],
        &["-k"],
        &["--bogus"],
        &["ftp://127.0.0.1/"],
    ] {
        let out = run(args.iter().copied()).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("httpstat: "), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    let help = run(["-h"]).await;
    assert_eq!(help.status.code(), Some(0));
    for flag in [
        "--cacert",
        "--insecure",
        "--http1.1",
        "--http2",
        "-X",
        "-H",
        "-d",
        "-n",
    ] {
        assert!(stdout(&help).contains(flag), "{flag}");
    }
}
