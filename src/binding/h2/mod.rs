//! HTTP/2 (invariant 6): a connection shared by many requests at once, the streams each opens,
//! and the frames that tell them apart on the wire.
//!
//! - [`conn`]: the connection as hyper's dispatch task and the connection's IO share it; a
//!   traced request registers its stream there when hyper opens it.
//! - [`dispatch`]: every request counted on the task that opens its stream: the stream ids.
//! - [`wire`]: the IO's side, following the streams frame by frame.
//! - [`frames`]: the frame reader, 9-byte headers off a byte stream given in pieces.
//! - [`registry`]: how a request finds its connection by name (TCP connections), and
//!   [`H2Link`], how it finds one that has none (any other connector).

pub(crate) mod conn;
pub(crate) mod dispatch;
pub(crate) mod frames;
mod hash;
pub(crate) mod registry;
pub(crate) mod wire;

pub(crate) use self::conn::H2Conn;
pub(crate) use self::registry::{any_live, registered};
pub(crate) use self::wire::H2Side;

/// What tells a request which HTTP/2 connection it got when the connection has no name (no
/// hyper-util `HttpInfo`: an in-memory or Unix connector): carried from the connector to the
/// request by hyper-util, as `Connected::extra`, filled when the connection turns out to speak
/// HTTP/2.
#[derive(Debug, Clone, Default)]
pub(crate) struct H2Link(std::sync::Arc<std::sync::OnceLock<std::sync::Weak<H2Conn>>>);

impl H2Link {
    /// The connection speaks HTTP/2.
    pub(crate) fn set(&self, conn: &std::sync::Arc<H2Conn>) {
        let _ = self.0.set(std::sync::Arc::downgrade(conn));
    }

    /// The connection, if it speaks HTTP/2 and is still open.
    pub(crate) fn get(&self) -> Option<std::sync::Arc<H2Conn>> {
        self.0.get()?.upgrade().filter(|c| c.is_live())
    }
}
