use std::net::SocketAddr;
use std::time::Duration;

/// What one in-memory connection of a [`MemoryConnector`](super::MemoryConnector) does: how
/// long its connect takes (or that it fails), the TLS handshake it reports, the protocol it
/// speaks, when the server closes or breaks it, and the addresses it reports.
///
/// Every delay is a `tokio::time::sleep`: under a paused clock it takes exactly that long on
/// the test's clock, and no time at all on the wall's.
///
/// ```
/// use std::time::Duration;
/// use httptrace::test_util::Plan;
///
/// let ms = Duration::from_millis;
/// let plan = Plan::new().connect(ms(5)).tls(ms(10)).close_after(2);
/// # drop(plan);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub(super) connect: Duration,
    pub(super) refuse: bool,
    pub(super) tls: Option<Duration>,
    pub(super) http2: bool,
    pub(super) close_after: Option<u64>,
    pub(super) break_after: Option<usize>,
    pub(super) local: Option<SocketAddr>,
    pub(super) remote: Option<SocketAddr>,
}

impl Plan {
    /// A connection made at once, plain HTTP/1.1, kept open by the server.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connect takes `delay` (`ConnectStart` to `ConnectDone`).
    pub fn connect(mut self, delay: Duration) -> Self {
        self.connect = delay;
        self
    }

    /// The connect fails after its delay: connection refused.
    pub fn refuse(mut self) -> Self {
        self.refuse = true;
        self
    }

    /// A TLS handshake of `delay` follows the connect: `TLSHandshakeStart` and
    /// `TLSHandshakeDone`, the latter with a TLS 1.3 state (ALPN `h2` or `http/1.1`, the URI's
    /// host as the server name, no certificate) when the connector is
    /// [`traced`](super::MemoryConnector::traced). No bytes are encrypted.
    pub fn tls(mut self, delay: Duration) -> Self {
        self.tls = Some(delay);
        self
    }

    /// The connection speaks HTTP/2, as if ALPN had agreed on `h2`. Needs the `http2` feature:
    /// without it no server answers the connection, and its request fails.
    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    /// On HTTP/1, the server answers the `n`-th request on the connection (`n` at least 1: 0
    /// counts as 1) with `Connection: close`, then closes it.
    pub fn close_after(mut self, n: u64) -> Self {
        self.close_after = Some(n.max(1));
        self
    }

    /// The server's side of the connection breaks once it has written `bytes` bytes in all:
    /// the client reads the first `bytes` bytes of its responses, then the end of the stream
    /// (a reset mid-response).
    pub fn break_after(mut self, bytes: usize) -> Self {
        self.break_after = Some(bytes);
        self
    }

    /// The addresses the connection reports (`ConnectDone`, `GotConn`): by default
    /// `127.0.0.1:<49151 + its number>` and `127.0.0.1:<the URI's port>`.
    pub fn addrs(mut self, local: SocketAddr, remote: SocketAddr) -> Self {
        self.local = Some(local);
        self.remote = Some(remote);
        self
    }
}
