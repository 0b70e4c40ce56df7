//! The attribution proof under load, as a program: COUNT requests, CONCURRENCY at a time, through
//! one traced hyper-util client to a loopback server, with random delays in the server (0..=3 ms)
//! and in the hooks, and one request in 20 asking the server to close its connection. Every
//! event of every request is checked against what the server saw (the checks of
//! `tests/stress.rs`, in `tests/support/src/load/`).
//!
//! With `--http2`, the same over HTTP/2 (h2c): the requests are streams of connections that the
//! server shuts down (GOAWAY) after 1,000 streams each, every request traced (or, with
//! `--sample N`, one in N, the others sent untraced through the same layer), and each traced
//! request checked as it ends: one terminal event, every Start paired, the stream the server saw
//! it on, its whole sequence, and its first response byte after the server answered it (the
//! checks of `tests/http2.rs`, in `tests/support/src/load/h2.rs`).
//!
//! ```text
//! cargo run --release --example stress -- [--http2 [--sample N]] [COUNT] [CONCURRENCY]
//! ```
//!
//! Defaults: 100000 requests, 256 at a time. Exit codes: 0 when every check passed, 1 on any
//! violation, 2 for a bad command line.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use httptrace_test_support::clients::client;
use httptrace_test_support::h2::{h2_server, h2c_client};
use httptrace_test_support::load::{run_h2_load, run_load, LoadConfig};
use httptrace_test_support::servers::Server;

const USAGE: &str = "usage: cargo run --release --example stress -- [--http2 [--sample N]] \
                     [COUNT] [CONCURRENCY]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let http2 = args.next_if(|a| a == "--http2").is_some();
    let sample = match http2 && args.next_if(|a| a == "--sample").is_some() {
        false => Ok(1),
        true => args
            .next()
            .and_then(|a| a.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or("--sample"),
    };
    let Ok(sample) = sample else {
        eprintln!("stress: --sample takes a positive number\n{USAGE}");
        return ExitCode::from(2);
    };
    let mut number = |default: u64| match args.next() {
        None => Ok(default),
        Some(a) => a.parse::<u64>().ok().filter(|n| *n > 0).ok_or(a),
    };
    let (count, concurrency) = match (number(100_000), number(256)) {
        (Ok(c), Ok(n)) => (c, n as usize),
        (Err(bad), _) | (_, Err(bad)) => {
            eprintln!("stress: not a positive number: {bad:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if http2 {
        return stress_http2(&rt, count, concurrency as u64, sample);
    }
    let report = rt.block_on(async {
        let server = Server::start().await;
        let client = client();
        let cfg = LoadConfig {
            requests: count,
            concurrency,
            max_delay_ms: 3,
            close_one_in: 20,
            time_limit: Duration::from_secs(3600),
            mix_logs_one_in: 0,
        };
        eprintln!(
            "stress: {count} requests, {concurrency} at a time, to {} ({} worker threads)",
            server.addr,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let mut bar = Progress::new(count);
        let report = run_load(&client, &server, &cfg, |done| bar.update(done)).await;
        bar.finish();
        report
    });
    println!("{report}");
    if report.violations.total() == 0 {
        println!("every event of every request checked: no violation");
        ExitCode::SUCCESS
    } else {
        println!("VIOLATIONS: {}", report.violations.total());
        ExitCode::FAILURE
    }
}

/// `--http2`: the load over h2c, checked request by request.
fn stress_http2(
    rt: &tokio::runtime::Runtime,
    count: u64,
    concurrency: u64,
    sample: u64,
) -> ExitCode {
    let report = rt.block_on(async {
        let (addr, answered) = h2_server(Some(1_000)).await;
        let client = h2c_client(httptrace::TraceLayer::new());
        eprintln!(
            "stress: {count} HTTP/2 requests, {concurrency} at a time, one in {sample} traced, \
             to {addr} ({} worker threads)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let mut bar = Progress::new(count);
        let report = run_h2_load(
            &client,
            addr,
            &answered,
            count,
            concurrency,
            sample,
            Duration::from_secs(3600),
            |done| bar.update(done),
        )
        .await;
        bar.finish();
        report
    });
    println!("{report}");
    if report.violations == 0 {
        println!("every event of every request checked: no violation");
        ExitCode::SUCCESS
    } else {
        println!("VIOLATIONS: {}", report.violations);
        ExitCode::FAILURE
    }
}

/// A progress bar on stderr, redrawn with `\r` at most 10 times a second.
struct Progress {
    total: u64,
    started: Instant,
    drawn: Option<Instant>,
    done: u64,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            started: Instant::now(),
            drawn: None,
            done: 0,
        }
    }

    fn update(&mut self, done: u64) {
        self.done = done;
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.drawn = Some(now);
        self.draw();
    }

    fn draw(&self) {
        const WIDTH: u64 = 40;
        let filled = (self.done * WIDTH / self.total.max(1)) as usize;
        let secs = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:>3}% {}/{} {:>7.0} req/s {:>6.1}s",
            "#".repeat(filled),
            ".".repeat(WIDTH as usize - filled),
            self.done * 100 / self.total.max(1),
            self.done,
            self.total,
            self.done as f64 / secs.max(1e-9),
            secs
        );
        let _ = err.flush();
    }

    fn finish(&mut self) {
        self.draw();
        eprintln!();
    }
}
