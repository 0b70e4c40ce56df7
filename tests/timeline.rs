//! `Timeline`: many requests of a client, over HTTP/1 (fresh, reused, waiting) and HTTP/2, as
//! a Chrome / Perfetto trace and an HTML page; both checked for their format, and the HTML,
//! when a headless Chromium is on the PATH, as a browser renders it.
#![cfg(feature = "test-util")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httptrace::test_util::{MemoryConnector, Plan};
use httptrace::{Event, RequestBody, Timeline, TraceLayer};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};

const MS: fn(u64) -> Duration = Duration::from_millis;

type Svc = httptrace::Trace<
    Client<
        httptrace::TracingConnector<MemoryConnector, httptrace::test_util::MemoryTls>,
        RequestBody<Empty<Bytes>>,
    >,
>;

/// A client over memory connections whose server sleeps the milliseconds of the path.
fn client(timeline: &Timeline, plan: Plan) -> Svc {
    let server =
        hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let ms = req.uri().path()[1..].parse().unwrap_or(0);
            tokio::time::sleep(MS(ms)).await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
    let connector = MemoryConnector::new(server)
        .plan(move |_| plan.clone())
        .traced();
    let client = Client::builder(TokioExecutor::new()).build(connector);
    TraceLayer::new()
        .default_trace(timeline.trace())
        .layer(client)
}

async fn get(svc: &Svc, url: String) {
    let req = http::Request::get(url).body(Empty::new()).unwrap();
    let res = svc.clone().ready().await.unwrap().call(req).await.unwrap();
    res.into_body().collect().await.unwrap();
}

/// HTTP/1: 6 at once (6 connections), 9 at once (6 reused, 3 dialled), one slow; HTTP/2: 5
/// streams at once on one connection. 21 requests.
async fn scenario(timeline: &Timeline) {
    let h1 = client(timeline, Plan::new().connect(MS(4)).tls(MS(6)));
    let h2 = client(timeline, Plan::new().connect(MS(4)).http2());
    let wave = |n: u64, base: u64| {
        let h1 = h1.clone();
        async move {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..n {
                let (svc, url) = (h1.clone(), format!("https://h1.test/{}", base + i * 5));
                set.spawn(async move { get(&svc, url).await });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        }
    };
    wave(6, 10).await;
    wave(9, 5).await;
    get(&h1, "https://h1.test/150".to_owned()).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..5u64 {
        let (svc, url) = (h2.clone(), format!("http://h2.test/{}", 10 + i * 7));
        set.spawn(async move { get(&svc, url).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// The connections the requests got, from their own events.
fn conns(timeline: &Timeline) -> HashSet<u64> {
    timeline
        .requests()
        .iter()
        .flat_map(|(_, events)| events.iter())
        .filter_map(|e| match e {
            Event::GotConn(g) => Some(g.conn_id),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_chrome_trace_follows_the_format() {
    let timeline = Timeline::new(100);
    scenario(&timeline).await;
    assert_eq!((timeline.len(), timeline.dropped()), (21, 0));
    let json: Value = serde_json::from_str(&timeline.chrome_json()).expect("JSON");
    let events = json["traceEvents"].as_array().unwrap();

    // one process per connection, named by its id, addresses and protocol
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"].as_u64() >= Some(100))
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), conns(&timeline).len(), "{names:?}");
    assert!(names
        .iter()
        .all(|n| n.starts_with("connection #") && n.contains(" -> ")));
    assert_eq!(
        names.iter().filter(|n| n.ends_with("HTTP/2")).count(),
        1,
        "{names:?}"
    );

    // complete slices only, in microseconds, properly nested on each thread
    // (pid, tid) -> its slices: start, end, name
    type Slices = Vec<(f64, f64, String)>;
    let mut threads: BTreeMap<(u64, u64), Slices> = BTreeMap::new();
    for e in events {
        match e["ph"].as_str().unwrap() {
            "X" => {
                let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
                assert!(ts >= 0.0 && dur >= 0.0, "{e}");
                let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
                let name = e["name"].as_str().unwrap().to_owned();
                threads.entry(key).or_default().push((ts, ts + dur, name));
            }
            "M" | "i" | "s" | "f" => {}
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
    for (thread, slices) in &mut threads {
        slices.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for (start, end, name) in slices.iter() {
            while open.last().is_some_and(|e| *e <= *start + 1e-6) {
                open.pop();
            }
            if let Some(parent_end) = open.last() {
                assert!(
                    *end <= parent_end + 1e-6,
                    "{name} overlaps its parent on {thread:?}"
                );
            }
            open.push(*end);
        }
    }
    // each request on its connection: its slice, with write, server and body inside, in order
    let on_conns: Vec<&(f64, f64, String)> = threads
        .iter()
        .filter(|((pid, _), _)| *pid >= 100)
        .flat_map(|(_, s)| s)
        .collect();
    let requests = on_conns.iter().filter(|s| s.2.starts_with('#')).count();
    assert_eq!(requests, 21);
    for name in ["write", "server", "body"] {
        assert_eq!(
            on_conns.iter().filter(|s| s.2 == name).count(),
            21,
            "{name}"
        );
    }
    // the HTTP/2 streams overlap: lanes of one connection
    let h2_lanes = threads
        .keys()
        .filter(|(pid, _)| {
            events.iter().any(|e| {
                e["name"] == "process_name"
                    && e["pid"].as_u64() == Some(*pid)
                    && e["args"]["name"].as_str().unwrap().ends_with("HTTP/2")
            })
        })
        .count();
    assert_eq!(h2_lanes, 5);
    // a flow from each dial to the request that first used its connection
    let flows = |ph: &str| -> HashMap<u64, u64> {
        events
            .iter()
            .filter(|e| e["ph"] == ph)
            .map(|e| (e["id"].as_u64().unwrap(), e["pid"].as_u64().unwrap()))
            .collect()
    };
    let (starts, finishes) = (flows("s"), flows("f"));
    assert_eq!(starts.len(), conns(&timeline).len());
    for (id, pid) in &starts {
        assert_eq!(*pid, 1);
        assert_eq!(finishes.get(id), Some(&(100 + id)), "flow {id}");
    }
}

/// Checks that `html` is well formed: every element closed, in order (the page is written as
/// XML-compatible HTML).
fn assert_well_formed(html: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let close = rest.find('>').expect("a tag ends");
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "</{name}> closes another element");
        } else {
            stack.push(tag.split_whitespace().next().unwrap());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

/// The rows of the page: per row, its request number and the classes of its bars in order.
fn rows(html: &str) -> Vec<(u64, Vec<String>)> {
    html.split("<g class=\"row")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</g>").unwrap()];
            let id = row.split("data-request=\"").nth(1).unwrap();
            let id = id[..id.find('"').unwrap()].parse().unwrap();
            let bars = row
                .split("<rect class=\"")
                .skip(1)
                .map(|r| r[..r.find('"').unwrap()].to_owned())
                .collect();
            (id, bars)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_page_has_a_row_per_request_with_its_phases_in_order() {
    let timeline = Timeline::new(100);
    scenario(&timeline).await;
    let html = timeline.html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_well_formed(&html);
    // self-contained: no script, nothing to fetch
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    let rows = rows(&html);
    assert_eq!(rows.len(), 21);
    // in start order, the requests numbered as they were traced
    let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let order = ["wait", "dns", "connect", "tls", "write", "server", "body"];
    for (id, bars) in &rows {
        let at: Vec<usize> = bars
            .iter()
            .map(|b| order.iter().position(|o| o == b).expect("a known phase"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "#{id}: {bars:?}");
        assert!(
            bars.ends_with(&["write".into(), "server".into(), "body".into()]),
            "#{id}: {bars:?}"
        );
    }
    // dialled: 6, then 3 of the second wave, and 1 on HTTP/2; but two of the second wave's
    // dials (10 ms) are outrun by connections coming back (after 5 and 10 ms): 8 used, and the
    // request that dialled the one used waits for its own dial
    let counts = [
        ("requests", "21"),
        ("dropped (past capacity)", "0"),
        ("connections used", "8"),
        ("connections dialled", "10"),
        ("reused", "13 of 21 (62%)"),
    ];
    for (name, n) in counts {
        let row = format!("<tr><th>{name}</th><td>{n}</td></tr>");
        assert!(html.contains(&row), "{row} in {html}");
    }
    for phase in ["wait for a connection", "DNS", "connect", "TLS", "total"] {
        assert!(html.contains(&format!("<tr><td>{phase}</td>")), "{phase}");
    }
}

#[tokio::test(start_paused = true)]
async fn memory_stays_bounded_past_capacity() {
    let timeline = Timeline::new(5);
    let svc = client(&timeline, Plan::new());
    for i in 0..20 {
        get(&svc, format!("http://h1.test/{i}")).await;
    }
    assert_eq!((timeline.len(), timeline.dropped()), (5, 15));
    // the last five kept, oldest first
    let kept: Vec<String> = timeline
        .requests()
        .iter()
        .map(|(_, events)| match &events[0] {
            Event::GetConn(g) => g.uri.path().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kept, ["/15", "/16", "/17", "/18", "/19"]);
    assert_eq!(rows(&timeline.html()).len(), 5);
    assert!(timeline
        .html()
        .contains("<tr><th>dropped (past capacity)</th><td>15</td></tr>"));
}

/// Renders the page in a headless Chromium, when one is on the PATH (Debian's `chromium`):
/// the browser's DOM has a row per request, and a screenshot is taken. Skipped otherwise.
#[tokio::test(start_paused = true)]
async fn a_headless_browser_renders_the_rows() {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("no headless Chromium on the PATH: skipped");
        return;
    };
    let timeline = Timeline::new(100);
    scenario(&timeline).await;
    let dir = std::env::temp_dir().join(format!("httptrace-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("timeline.html");
    std::fs::write(&page, timeline.html()).unwrap();
    let url = format!("file://{}", page.display());
    let run = |args: &[&str]| {
        // bounded in time: a browser that hangs fails the test after a minute
        let out = std::process::Command::new("timeout")
            .args(["60", browser])
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                // the page is a file: the browser's own traffic (updates, safe browsing,
                // metrics) is off, and anything it still tries goes to a dead local proxy
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--proxy-server=127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>",
            ])
            .args(args)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    assert_eq!(rows(&dom).len(), 21, "{dom}");
    let shot = dir.join("timeline.png");
    run(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,760",
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
