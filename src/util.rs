//! Small facts about URIs, messages and connections that every layer of the crate reads: the
//! port a URI dials, its `host:port`, whether a message keeps its connection open, and a
//! connection's addresses. They import nothing of the crate.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};

/// A connection's addresses, as far as it reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnAddrs {
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) local: Option<SocketAddr>,
}

impl ConnAddrs {
    /// The addresses `io` reports through hyper-util's [`HttpInfo`] (two system calls each
    /// time: read them once per connection).
    pub(crate) fn of<T: Connection + ?Sized>(io: &T) -> Self {
        let mut ext = http::Extensions::new();
        io.connected().get_extras(&mut ext);
        #[cfg(feature = "test-util")]
        if let Some(mem) = ext.get::<crate::test_util::MemoryAddrs>() {
            return Self {
                local: Some(mem.local),
                remote: Some(mem.remote),
            };
        }
        Self::from_info(ext.get::<HttpInfo>())
    }

    /// The addresses an [`HttpInfo`] tells, if there is one.
    pub(crate) fn from_info(info: Option<&HttpInfo>) -> Self {
        Self {
            remote: info.map(HttpInfo::remote_addr),
            local: info.map(HttpInfo::local_addr),
        }
    }

    /// The name of a live TCP connection, (local, remote), when both are known.
    pub(crate) fn key(&self) -> Option<(SocketAddr, SocketAddr)> {
        Some((self.local?, self.remote?))
    }
}

/// Now, on tokio's clock: the system's monotonic clock in production (the same call as
/// `std::time::Instant::now()`), and the test's clock when a test paused it
/// (`tokio::time::pause`, `start_paused`), so that scripted delays are reported exactly. Every
/// event is stamped with it.
#[inline]
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// The URI's port, or its scheme's default.
pub(crate) fn default_port(uri: &http::Uri) -> u16 {
    uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") | Some("wss") => 443,
        _ => 80,
    })
}

/// The address in `host` when it is an IP literal (with or without brackets).
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse::<IpAddr>().ok()
}

/// The `host:port` a URI is for, as Go's `GetConn` names it.
pub(crate) fn host_port(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("");
    let port = default_port(uri);
    let mut s = String::with_capacity(host.len() + 8);
    let _ = if host.contains(':') && !host.starts_with('[') {
        write!(s, "[{host}]:{port}")
    } else {
        write!(s, "{host}:{port}")
    };
    s
}

/// A key of the origin a URI is for (its host, case aside, and its port): what a dial to it and
/// a request for it have in common. 0 when the URI has no host.
pub(crate) fn origin_key(uri: &http::Uri) -> u64 {
    match uri.host() {
        Some(host) => host_key(host, default_port(uri)),
        None => 0,
    }
}

/// [`origin_key`] of `host` and `port`.
pub(crate) fn host_key(host: &str, port: u16) -> u64 {
    // FNV-1a over the host's bytes, lowercased, then the port
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = host.bytes().map(|b| b.to_ascii_lowercase());
    for b in bytes.chain(port.to_be_bytes()) {
        key = (key ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    key.max(1)
}

/// Whether a message with these headers leaves the HTTP/1 connection open, as hyper decides;
/// never on HTTP/2, whose shared connection goes back to no idle pool (no `PutIdleConn`).
pub(crate) fn keeps_alive(version: http::Version, headers: &http::HeaderMap) -> bool {
    if headers.is_empty() {
        return version == http::Version::HTTP_11;
    }
    let has = |token: &str| {
        headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match version {
        http::Version::HTTP_11 => !has("close"),
        http::Version::HTTP_10 => has("keep-alive") && !has("close"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_defaults_and_literals() {
        let hp = |s: &str| host_port(&s.parse().unwrap());
        assert_eq!(hp("http://example.test/"), "example.test:80");
        assert_eq!(hp("https://example.test/"), "example.test:443");
        assert_eq!(hp("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(hp("http://[::1]:81/"), "[::1]:81");
        assert_eq!(hp("/relative"), ":80");
    }

    #[test]
    fn ip_literals_with_and_without_brackets() {
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(ip_literal("localhost"), None);
    }

    #[test]
    fn keep_alive_as_hyper_reads_it() {
        let headers = |v: &'static str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONNECTION, http::HeaderValue::from_static(v));
            h
        };
        let none = http::HeaderMap::new();
        assert!(keeps_alive(http::Version::HTTP_11, &none));
        assert!(!keeps_alive(http::Version::HTTP_10, &none));
        assert!(!keeps_alive(http::Version::HTTP_11, &headers("Close")));
        assert!(keeps_alive(http::Version::HTTP_10, &headers("keep-alive")));
        assert!(!keeps_alive(http::Version::HTTP_2, &none));
    }

    #[test]
    fn origins_are_host_and_port() {
        let key = |s: &str| origin_key(&s.parse().unwrap());
        assert_eq!(key("http://A.test/x"), key("http://a.test:80/y?z"));
        assert_ne!(key("http://a.test/"), key("http://a.test:81/"));
        assert_ne!(key("http://a.test/"), key("https://a.test/"));
        assert_ne!(key("http://a.test/"), key("http://b.test/"));
        assert_eq!(key("/relative"), 0);
    }

    #[test]
    fn a_connection_key_needs_both_addresses() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let both = ConnAddrs {
            remote: Some(a),
            local: Some(b),
        };
        assert_eq!(both.key(), Some((b, a)));
        assert_eq!(ConnAddrs::default().key(), None);
    }
}
