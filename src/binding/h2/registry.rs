//! The live HTTP/2 TCP connections by name, (local, remote) as hyper-util's `HttpInfo` gives
//! it: how a request finds the connection that hyper-util's capture says it got.
//!
//! A process-wide map, because the other way hyper-util offers, a `Connected::extra` of our
//! own ([`H2Link`](super::H2Link)), is copied into every response of the connection: one more
//! allocation for every request, traced or not, on every connection that might speak HTTP/2
//! (whether a plain TCP connection will, h2c, is not known when it is made). Connections
//! without a name use the link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::conn::H2Conn;
use super::hash::OwnHasher;

type ConnKey = (SocketAddr, SocketAddr);

type Registry = HashMap<ConnKey, Weak<H2Conn>, OwnHasher>;

/// The live HTTP/2 connections, by name.
static CONNS: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

/// How many HTTP/2 connections are live, named or not: none, and a request looks for none.
static LIVE: AtomicUsize = AtomicUsize::new(0);

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

/// `conn` is live, under its name if it has one.
pub(super) fn register(key: Option<ConnKey>, conn: &Arc<H2Conn>) {
    if let Some(key) = key {
        conns().insert(key, Arc::downgrade(conn));
    }
    LIVE.fetch_add(1, Ordering::Relaxed);
}

/// `conn` closed: its name is free (unless a newer connection took it already).
pub(super) fn unregister(key: Option<ConnKey>, conn: &Arc<H2Conn>) {
    if let Some(key) = key {
        let mut conns = conns();
        if conns
            .get(&key)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(conn)))
        {
            conns.remove(&key);
        }
    }
    LIVE.fetch_sub(1, Ordering::Relaxed);
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
