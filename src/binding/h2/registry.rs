//! The live HTTP/2 connections by name, (local, remote) as hyper-util's `HttpInfo` gives it:
//! how a request finds the connection that hyper-util's capture says it got.
//!
//! A process-wide map, because an untraced request carries nothing that could lead it to its
//! connection; and a process-wide switch, set when a traced request goes without the capture
//! and so may open a stream nobody counts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::conn::H2Conn;
use super::hash::OwnHasher;

type ConnKey = (SocketAddr, SocketAddr);

type Registry = HashMap<ConnKey, Weak<H2Conn>, OwnHasher>;

/// The live HTTP/2 connections, by name.
static CONNS: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

/// How many HTTP/2 connections are live: none, and a request looks for none.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A traced request went without hyper-util's capture (its layer's `http2_streams(false)`):
/// it may open a stream nobody registers, on any client, so no stream is named from then on.
static UNCOUNTED: AtomicBool = AtomicBool::new(false);

fn conns() -> MutexGuard<'static, Registry> {
    CONNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Some HTTP/2 connection is live.
pub(crate) fn any_live() -> bool {
    LIVE.load(Ordering::Relaxed) != 0
}

/// The live connection named `key`.
pub(crate) fn registered(key: ConnKey) -> Option<Arc<H2Conn>> {
    conns().get(&key).and_then(Weak::upgrade)
}

/// `conn` is live under its name.
pub(super) fn register(key: ConnKey, conn: &Arc<H2Conn>) {
    conns().insert(key, Arc::downgrade(conn));
    LIVE.fetch_add(1, Ordering::Relaxed);
}

/// `conn` closed: its name is free (unless a newer connection took it already).
pub(super) fn unregister(key: ConnKey, conn: &Arc<H2Conn>) {
    let mut conns = conns();
    if conns
        .get(&key)
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(conn)))
    {
        conns.remove(&key);
    }
    drop(conns);
    LIVE.fetch_sub(1, Ordering::Relaxed);
}

/// A traced request goes without hyper-util's capture: if it may open an HTTP/2 stream, streams
/// can't all be counted any more.
pub(crate) fn uncaptured_request() {
    // whether or not HTTP/2 connections are live now: this request may be the one that makes
    // the first, and open its first stream before a counted request registers there
    if !UNCOUNTED.load(Ordering::Relaxed) {
        UNCOUNTED.store(true, Ordering::Release);
    }
}

/// Some traced request went without hyper-util's capture.
pub(super) fn uncounted() -> bool {
    UNCOUNTED.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use crate::binding::ambient;
    use crate::binding::exchange::ConnSide;
    use crate::binding::h2::frames;
    use crate::util::ConnAddrs;

    /// A connection closed and a new one with the same addresses: a request finds the new one,
    /// whatever the thread remembers of the last.
    #[test]
    fn a_closed_connections_name_goes_to_the_next() {
        let remote: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:59999".parse().unwrap();
        let open = |id| {
            let mut conn = ConnSide::new(id, None).with_addrs(ConnAddrs {
                remote: Some(remote),
                local: Some(local),
            });
            conn.before_write(frames::PREFACE, ConnAddrs::default);
            let shared = conn.h2_shared().unwrap();
            (conn, shared)
        };
        let (mut first, first_shared) = open(1);
        let found = ambient::h2_conn((local, remote)).unwrap();
        assert!(Arc::ptr_eq(&found, &first_shared));
        drop(found);
        first.closed();
        let (_second, second_shared) = open(2);
        // the first is still alive (held here), and this thread found it last
        let found = ambient::h2_conn((local, remote)).unwrap();
        assert!(Arc::ptr_eq(&found, &second_shared));
        assert_eq!(found.conn_id, 2);
        drop(first_shared);
    }
}
