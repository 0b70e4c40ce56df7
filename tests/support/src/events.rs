//! What the tests check of the events a trace saw: their names, the usual sequences, every Start
//! paired with its Done, the causes of an error, and waiting for an event to come.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use httptrace::{event::GotConnInfo, Event, Recorder};

/// The names of `events`, in order.
pub fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

/// The names of `events`, in order, once checked that they are in the order of their instants
/// (see [`out_of_time_order`]): what every scenario test compares with the sequence it expects.
#[track_caller]
pub fn sequence(events: &[Event]) -> Vec<&'static str> {
    if let Some(problem) = out_of_time_order(events) {
        panic!("{problem}");
    }
    names(events)
}

/// [`sequence`] without a dial the request started but didn't use, because a pooled
/// connection came back first (`ConnectStart`, then `ConnectDone`, canceled or naming another
/// connection, right before `GotConn`): hyper-util puts a connection back a moment after its
/// response ends, from a task of its own, and a request that comes in between starts a dial.
#[track_caller]
pub fn sequence_but_lost_dial(events: &[Event]) -> Vec<&'static str> {
    let mut all = sequence(events);
    let Some(got) = all.iter().position(|n| *n == "GotConn") else {
        return all;
    };
    if got >= 3 && all[got - 2..got] == ["ConnectStart", "ConnectDone"] {
        let unused = match (&events[got - 1], &events[got]) {
            (Event::ConnectDone(done), Event::GotConn(g)) => {
                done.conn_id != Some(g.conn_id)
                    || done.error.as_ref().is_some_and(|e| {
                        e.get_ref()
                            .downcast_ref::<httptrace::error::Canceled>()
                            .is_some()
                    })
            }
            _ => false,
        };
        if unused && !all[..got - 2].contains(&"ConnectStart") {
            all.drain(got - 2..got);
        }
    }
    all
}

/// The first event delivered before one stamped earlier, if any: a request's events are
/// delivered in the order of their instants, as Go's hooks are called when things happen.
pub fn out_of_time_order(events: &[Event]) -> Option<String> {
    events.windows(2).find_map(|pair| {
        let (a, b) = (&pair[0], &pair[1]);
        (b.at() < a.at()).then(|| {
            format!(
                "{} delivered after {} but stamped {:?} before it, in {:?}",
                b.name(),
                a.name(),
                a.at() - b.at(),
                names(events)
            )
        })
    })
}

/// The names of `events` but `ConnectionClosed`, which may come or not depending on when the
/// connection's task notices the close.
#[track_caller]
pub fn names_but_closed(events: &[Event]) -> Vec<&'static str> {
    sequence(events)
        .into_iter()
        .filter(|n| *n != "ConnectionClosed")
        .collect()
}

/// The first `GotConn`'s details.
pub fn got_conn(events: &[Event]) -> GotConnInfo {
    events
        .iter()
        .find_map(|e| match e {
            Event::GotConn(i) => Some(i.clone()),
            _ => None,
        })
        .expect("GotConn")
}

/// A request on a connection dialled for it, which is pooled afterwards.
pub const FRESH: &[&str] = &[
    "GetConn",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "PutIdleConn",
    "ResponseBodyDone",
];

/// A request on a connection dialled for it, which is not pooled afterwards (closed, or its
/// response body dropped before the end): `FRESH` but `PutIdleConn`.
pub const FRESH_UNPOOLED: &[&str] = &[
    "GetConn",
    "ConnectStart",
    "ConnectDone",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "ResponseBodyDone",
];

/// A request on an idle pooled connection, which is pooled again afterwards.
pub const REUSED: &[&str] = &[
    "GetConn",
    "GotConn",
    "WroteHeaders",
    "WroteRequest",
    "GotFirstResponseByte",
    "ResponseHeaders",
    "PutIdleConn",
    "ResponseBodyDone",
];

/// `sequence` over TLS: the handshake right after the connect.
pub fn with_handshake(sequence: &[&'static str]) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(sequence.len() + 2);
    for name in sequence {
        out.push(*name);
        if *name == "ConnectDone" {
            out.extend(["TLSHandshakeStart", "TLSHandshakeDone"]);
        }
    }
    out
}

/// Checks that every Start has exactly one Done after it, and that the request ends once.
#[track_caller]
pub fn assert_paired(events: &[Event]) {
    if let Some(problem) = unpaired(events) {
        panic!("{problem}");
    }
}

/// What [`assert_paired`] checks: the first problem, if any.
pub fn unpaired(events: &[Event]) -> Option<String> {
    let all = || names(events);
    for (start, done) in [
        ("DNSStart", "DNSDone"),
        ("TLSHandshakeStart", "TLSHandshakeDone"),
    ] {
        let mut open = 0i32;
        for e in events {
            if e.name() == start {
                open += 1;
                if open != 1 {
                    return Some(format!("nested {start} in {:?}", all()));
                }
            } else if e.name() == done {
                open -= 1;
                if open != 0 {
                    return Some(format!("{done} without {start} in {:?}", all()));
                }
            }
        }
        if open != 0 {
            return Some(format!("{start} without {done} in {:?}", all()));
        }
    }
    let mut open: Vec<Option<SocketAddr>> = Vec::new();
    for e in events {
        match e {
            Event::ConnectStart(s) => open.push(s.addr),
            Event::ConnectDone(d) => {
                let at = open
                    .iter()
                    .position(|a| a.is_some() && *a == d.addr)
                    .or_else(|| open.iter().position(Option::is_none));
                match at {
                    Some(at) => {
                        open.remove(at);
                    }
                    None => return Some(format!("ConnectDone without its Start in {:?}", all())),
                }
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return Some(format!("ConnectStart without Done in {:?}", all()));
    }
    let count = |n: &str| events.iter().filter(|e| e.name() == n).count();
    let ends = count("ResponseBodyDone") + count("RequestFailed") + count("RequestCanceled");
    (ends != 1).then(|| format!("request must end once: {:?}", all()))
}

/// An error and its causes, descending into `io::Error`s and httptrace's `SharedError`s (whose
/// `source()` skips the error they wrap).
pub fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        out.push(e);
        let io = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        let shared = e
            .downcast_ref::<httptrace::error::SharedError>()
            .map(|s| s.get_ref());
        cur = match io.or(shared) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// Waits (5 s at most, then panics) until `rec` has an event named `name`.
pub async fn wait_for(rec: &Recorder, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rec.names().contains(&name) {
        assert!(Instant::now() < deadline, "no {name} in {:?}", rec.names());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
