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

use std::process::{Command, ExitCode};
use std::time::Duration;

use httptrace::{Timings, TraceLayer};
use httptrace_test_support::clients::{client_with, get, StaticResolver, TimedResolver};
use httptrace_test_support::servers::{precise_sleep, scripted_server, Script};

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
    ExitCode::SUCCESS
}

/// Runs curl once against the server; its `-w` marks in ms.
fn run_curl(url: &str, port: u16) -> Result<[f64; 6], String> {
    let format: String = CURL_VARS.iter().map(|v| format!("%{{{v}}}\\n")).collect();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", "-w"])
        .arg(&format)
        .arg("--resolve")
        .arg(format!("fidelity.test:{port}:127.0.0.1"))
        .arg(url)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: Vec<f64> = text
        .lines()
        .map(|l| l.trim().replace(',', ".").parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{e}: {text:?}"))?;
    secs.try_into()
        .map(|s: [f64; 6]| s.map(|s| s * 1000.0))
        .map_err(|s| format!("expected 6 values, got {s:?}"))
}
