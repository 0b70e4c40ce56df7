//! The Chrome / Perfetto trace: the Trace Event Format's JSON object form, complete (`X`)
//! slices only, so that every slice carries its duration.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::Instant;

use super::view::{Slice, View};

/// The process of the requests waiting for a connection; connection `c` is process `100 + c`.
const WAITING: u64 = 1;

pub(super) fn write(views: &[View], dropped: u64) -> String {
    let origin = views.iter().map(|v| v.start).min();
    let us =
        |at: Instant| origin.map_or(0.0, |o| at.saturating_duration_since(o).as_secs_f64() * 1e6);
    let mut out = Vec::new();
    let meta = |out: &mut Vec<String>, kind: &str, pid: u64, tid: u64, name: &str| {
        out.push(format!(
            r#"{{"ph":"M","name":"{kind}","pid":{pid},"tid":{tid},"args":{{"name":{}}}}}"#,
            json_str(name)
        ));
    };
    meta(
        &mut out,
        "process_name",
        WAITING,
        0,
        "requests, before a connection",
    );
    out.push(format!(
        r#"{{"ph":"M","name":"process_sort_index","pid":{WAITING},"tid":0,"args":{{"sort_index":0}}}}"#
    ));

    // connections: their requests in lanes that don't overlap (HTTP/2 streams share one)
    let mut lanes: BTreeMap<u64, Vec<Instant>> = BTreeMap::new();
    let mut first_user: HashMap<u64, (u64, u64, Instant)> = HashMap::new();
    for v in views {
        let req = v.id.get();
        meta(
            &mut out,
            "thread_name",
            WAITING,
            req,
            &format!("#{req} {}", v.label),
        );
        for s in &v.before {
            out.push(slice(WAITING, req, s, &us, ""));
        }
        let Some(c) = &v.conn else { continue };
        let pid = 100 + c.id;
        let ends = lanes.entry(c.id).or_default();
        let lane = match ends.iter().position(|end| *end <= c.at) {
            Some(i) => i,
            None => {
                ends.push(c.at);
                let lane = ends.len() - 1;
                let name = match lane {
                    0 => "requests".to_owned(),
                    n => format!("requests, lane {}", n + 1),
                };
                meta(&mut out, "thread_name", pid, lane as u64 + 1, &name);
                lane
            }
        };
        ends[lane] = v.end;
        let tid = lane as u64 + 1;
        if lane == 0 && !first_user.contains_key(&c.id) {
            let version = match v.version {
                Some(http::Version::HTTP_2) => "HTTP/2",
                Some(http::Version::HTTP_10) => "HTTP/1.0",
                Some(_) => "HTTP/1.1",
                None => "",
            };
            let addrs = match (c.local, c.remote) {
                (Some(l), Some(r)) => format!(" {l} -> {r}"),
                _ => String::new(),
            };
            meta(
                &mut out,
                "process_name",
                pid,
                0,
                &format!("connection #{}{addrs} {version}", c.id),
            );
            out.push(format!(
                r#"{{"ph":"M","name":"process_sort_index","pid":{pid},"tid":0,"args":{{"sort_index":{pid}}}}}"#
            ));
        }
        first_user.entry(c.id).or_insert((pid, tid, c.at));
        let status = v
            .status
            .map_or_else(|| "no response".to_owned(), |s| s.to_string());
        let stream = c
            .stream
            .map_or_else(String::new, |s| format!(", stream {s}"));
        let whole = Slice {
            name: "",
            start: c.at,
            end: v.end.max(c.at),
            detail: format!(
                "{} ({}{stream}): {status}{}",
                v.label,
                if c.reused { "reused" } else { "fresh" },
                v.ended.map_or_else(String::new, |e| format!(", {e}")),
            ),
        };
        out.push(slice(pid, tid, &whole, &us, &format!("#{}", v.id.get())));
        for s in &v.on_conn {
            out.push(slice(pid, tid, s, &us, ""));
        }
        out.push(instant(
            pid,
            tid,
            "GotConn",
            us(c.at),
            if c.reused { "reused" } else { "fresh" },
        ));
        for (at, name, detail) in &v.instants {
            out.push(instant(pid, tid, name, us(*at), detail));
        }
    }
    // a flow from each dial to the first request on its connection
    for v in views {
        let Some((conn, at)) = v.dialled else {
            continue;
        };
        let Some(&(pid, tid, got)) = first_user.get(&conn) else {
            continue;
        };
        let req = v.id.get();
        out.push(format!(
            r#"{{"ph":"s","id":{conn},"name":"dial","cat":"dial","pid":{WAITING},"tid":{req},"ts":{:.3}}}"#,
            us(at)
        ));
        out.push(format!(
            r#"{{"ph":"f","bp":"e","id":{conn},"name":"dial","cat":"dial","pid":{pid},"tid":{tid},"ts":{:.3}}}"#,
            us(got)
        ));
    }
    let mut json = String::from("{\"displayTimeUnit\":\"ms\",");
    let _ = write!(
        json,
        "\"otherData\":{{\"generator\":\"httptrace\",\"requests\":{},\"dropped\":{dropped}}},",
        views.len()
    );
    json.push_str("\"traceEvents\":[\n");
    json.push_str(&out.join(",\n"));
    json.push_str("\n]}\n");
    json
}

fn slice(pid: u64, tid: u64, s: &Slice, us: &impl Fn(Instant) -> f64, name: &str) -> String {
    let name = if name.is_empty() { s.name } else { name };
    let (ts, end) = (us(s.start), us(s.end));
    format!(
        r#"{{"ph":"X","name":{},"cat":"phase","pid":{pid},"tid":{tid},"ts":{ts:.3},"dur":{:.3},"args":{{"ms":{:.3},"detail":{}}}}}"#,
        json_str(name),
        (end - ts).max(0.0),
        (end - ts).max(0.0) / 1e3,
        json_str(&s.detail)
    )
}

fn instant(pid: u64, tid: u64, name: &str, ts: f64, detail: &str) -> String {
    format!(
        r#"{{"ph":"i","s":"t","name":{},"cat":"event","pid":{pid},"tid":{tid},"ts":{ts:.3},"args":{{"detail":{}}}}}"#,
        json_str(name),
        json_str(detail)
    )
}

/// `s` as a JSON string.
pub(super) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
