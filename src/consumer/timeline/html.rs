//! The HTML page: one file, inline CSS and SVG, no script, nothing fetched.

use std::collections::HashSet;
use std::fmt::Write;
use std::time::{Duration, Instant};

use super::view::{ms, View, PHASES};

const LABEL_W: f64 = 380.0;
const CHART_W: f64 = 820.0;
const ROW_H: f64 = 18.0;
const TOP: f64 = 28.0;

pub(super) fn write(views: &[View], dropped: u64) -> String {
    let origin = views.iter().map(|v| v.start).min();
    let last = views.iter().map(|v| v.end).max();
    let span = match (origin, last) {
        (Some(o), Some(l)) => l.saturating_duration_since(o).max(Duration::from_micros(1)),
        _ => Duration::from_millis(1),
    };
    let x = |at: Instant| {
        let from = origin.map_or(Duration::ZERO, |o| at.saturating_duration_since(o));
        LABEL_W + from.as_secs_f64() / span.as_secs_f64() * CHART_W
    };
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    h.push_str("<title>httptrace timeline</title>\n<style>\n");
    h.push_str(
        "body{font:13px system-ui,sans-serif;margin:16px;color:#222}\
         table{border-collapse:collapse;margin:8px 0 16px}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
         th:first-child,td:first-child{text-align:left}\
         .legend span{display:inline-block;margin-right:14px}\
         .legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}\
         svg text{font:11px ui-monospace,monospace;white-space:pre}\
         .axis line{stroke:#ddd}.axis text{fill:#777}\
         .failed text{fill:#c62828}\n",
    );
    h.push_str("</style>\n</head>\n<body>\n<h1>httptrace timeline</h1>\n");
    summary(&mut h, views, dropped);
    h.push_str("<p class=\"legend\">");
    for (name, colour) in PHASES {
        let _ = write!(
            h,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            legend(name)
        );
    }
    h.push_str("</p>\n");

    let height = TOP + ROW_H * views.len() as f64 + 8.0;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\">",
        LABEL_W + CHART_W + 20.0
    );
    // the time axis
    h.push_str("<g class=\"axis\">");
    let step = tick(span);
    let mut t = Duration::ZERO;
    while t <= span {
        let tx = LABEL_W + t.as_secs_f64() / span.as_secs_f64() * CHART_W;
        let _ = write!(
            h,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{height}\"/><text x=\"{tx:.1}\" y=\"14\" text-anchor=\"middle\">{} ms</text>",
            TOP - 6.0,
            trim(&ms(t))
        );
        t += step;
    }
    h.push_str("</g>\n");
    for (i, v) in views.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let conn = match &v.conn {
            Some(c) => {
                let kind = match (c.stream, c.reused) {
                    (Some(s), _) => format!("h2 stream {s}"),
                    (None, true) => "reused".to_owned(),
                    (None, false) => "fresh".to_owned(),
                };
                format!("conn #{} {kind}", c.id)
            }
            None => "no connection".to_owned(),
        };
        let class = if v.failed { "row failed" } else { "row" };
        let _ = write!(
            h,
            "<g class=\"{class}\" data-request=\"{}\"><text x=\"4\" y=\"{:.1}\">{}</text>",
            v.id.get(),
            y + 12.0,
            esc(&label(v, &conn))
        );
        for s in v.slices() {
            let colour = PHASES
                .iter()
                .find(|(n, _)| *n == s.name)
                .map_or("#999", |(_, c)| c);
            let (x0, x1) = (x(s.start), x(s.end));
            let (bar_y, bar_h) = match s.name {
                "wait" => (y + 7.0, 4.0),
                _ => (y + 3.0, ROW_H - 6.0),
            };
            let from = origin.map_or(Duration::ZERO, |o| s.start.saturating_duration_since(o));
            let _ = write!(
                h,
                "<rect class=\"{}\" x=\"{x0:.2}\" y=\"{bar_y:.1}\" width=\"{:.2}\" height=\"{bar_h:.1}\" fill=\"{colour}\"><title>{}</title></rect>",
                s.name,
                (x1 - x0).max(1.0),
                esc(&format!(
                    "#{} {}: {} ms, from +{} ms; {}",
                    v.id.get(),
                    s.name,
                    ms(s.len()),
                    ms(from),
                    s.detail
                ))
            );
        }
        h.push_str("</g>\n");
    }
    h.push_str("</svg>\n</body>\n</html>\n");
    h
}

fn label(v: &View, conn: &str) -> String {
    let mut text = format!("#{} {}", v.id.get(), v.label);
    if text.len() > 40 {
        let cut = (0..=37)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    format!("{text:<41} {conn}")
}

fn legend(name: &str) -> &'static str {
    match name {
        "wait" => "wait for a connection",
        "dns" => "DNS",
        "connect" => "connect",
        "tls" => "TLS",
        "write" => "request written",
        "server" => "waiting for the first byte",
        _ => "body",
    }
}

/// The summary table: counts, then p50/p90/p99 of each phase over the requests that had it.
fn summary(h: &mut String, views: &[View], dropped: u64) {
    let got: Vec<_> = views.iter().filter_map(|v| v.conn.as_ref()).collect();
    let reused = got.iter().filter(|c| c.reused).count();
    let dialled: HashSet<u64> = views
        .iter()
        .filter_map(|v| v.dialled.map(|d| d.0))
        .collect();
    let conns: HashSet<u64> = got.iter().map(|c| c.id).collect();
    let failed = views.iter().filter(|v| v.failed).count();
    let ratio = match got.len() {
        0 => "-".to_owned(),
        n => format!("{:.0}%", reused as f64 * 100.0 / n as f64),
    };
    let _ = writeln!(
        h,
        "<table class=\"counts\"><tr><th>requests</th><td>{}</td></tr>\
         <tr><th>dropped (past capacity)</th><td>{dropped}</td></tr>\
         <tr><th>failed</th><td>{failed}</td></tr>\
         <tr><th>connections used</th><td>{}</td></tr>\
         <tr><th>connections dialled</th><td>{}</td></tr>\
         <tr><th>reused</th><td>{reused} of {} ({ratio})</td></tr></table>",
        views.len(),
        conns.len(),
        dialled.len(),
        got.len(),
    );
    h.push_str("<table class=\"phases\"><tr><th>phase (ms)</th><th>requests</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
    let mut rows: Vec<(&str, Vec<Duration>)> = PHASES
        .iter()
        .map(|(name, _)| {
            let mut d: Vec<Duration> = views
                .iter()
                .filter_map(|v| {
                    let total: Duration = v
                        .slices()
                        .filter(|s| s.name == *name)
                        .map(|s| s.len())
                        .sum();
                    v.slices().any(|s| s.name == *name).then_some(total)
                })
                .collect();
            d.sort();
            (legend(name), d)
        })
        .collect();
    let mut totals: Vec<Duration> = views
        .iter()
        .map(|v| v.end.saturating_duration_since(v.start))
        .collect();
    totals.sort();
    rows.push(("total", totals));
    for (name, d) in rows {
        let q = |p: f64| match d.len() {
            0 => "-".to_owned(),
            n => ms(d[((n as f64 * p).ceil() as usize).clamp(1, n) - 1]),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            d.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        );
    }
    h.push_str("</table>\n");
}

/// A step of 1, 2 or 5 times a power of ten giving 4 to 10 ticks over `span`.
fn tick(span: Duration) -> Duration {
    let total = span.as_secs_f64() * 1e3;
    let mut step = 1e-3;
    while total / step > 10.0 {
        for m in [2.0, 2.5, 2.0] {
            step *= m;
            if total / step <= 10.0 {
                break;
            }
        }
    }
    Duration::from_secs_f64(step / 1e3)
}

fn trim(ms: &str) -> String {
    ms.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `s` escaped for XML text and attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
