//! HTTP/2 (invariant 6): a connection shared by many requests at once, the streams each opens,
//! and the frames that tell them apart on the wire.
//!
//! - [`conn`]: the connection as hyper's dispatch task and the connection's IO share it; a
//!   traced request registers its stream there when hyper opens it.
//! - [`wire`]: the IO's side, following the streams frame by frame.
//! - [`frames`]: the frame reader, 9-byte headers off a byte stream given in pieces.
//! - [`registry`]: how a request finds its connection by name.

pub(crate) mod conn;
pub(crate) mod frames;
mod hash;
pub(crate) mod registry;
pub(crate) mod wire;

pub(crate) use self::conn::H2Conn;
pub(crate) use self::registry::{any_live, registered, uncaptured_request};
pub(crate) use self::wire::H2Side;
