//! The request side: [`TraceLayer`], its service [`Trace`], and the bodies it wraps.

mod body;
mod future;
mod informational;
mod layer;
mod service;

pub(crate) use self::service::host_port;

pub use self::body::{RequestBody, ResponseBody};
pub use self::future::{RequestHandle, ResponseFuture, TraceResponse};
pub use self::informational::on_informational;
pub use self::layer::TraceLayer;
pub use self::service::Trace;

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
