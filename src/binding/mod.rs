//! The binding of each traced request to the dial, the connection and (on HTTP/2) the stream
//! that serve it. The wrappers (`layer`, `connect`, `reqwest`) call in here; nothing here calls
//! a wrapper or a consumer.
//!
//! # Invariants
//!
//! 1. **One context per traced request** ([`request`]). The response future, the request body
//!    and the response body hold it; the connection side (IO, hyper's 1xx callback) only a
//!    `Weak`, so a pooled connection never keeps a trace alive. An untraced request has none
//!    and allocates nothing.
//! 2. **A request's events are delivered one at a time, in emission order** ([`request`]): its
//!    lock is held while its hooks run. Each event carries the instant it happened, which may
//!    precede its delivery.
//! 3. **Dial events go to the request whose task called the connector** ([`ambient`],
//!    [`dial`]). hyper-util calls the connector inside the task polling the response future,
//!    which makes its request current on every poll; the connector keeps it in one dial
//!    context for the whole connect, current while the connect is polled, so a connect that
//!    hyper-util finishes in the background still reports to the request that started it,
//!    until that request ends: then what is open is reported ended and the dial lets go of
//!    the request (its trace is not kept alive by a dial that may never end).
//! 4. **An HTTP/1 exchange is bound on the connection's task, before its first byte is
//!    written** ([`ambient`], [`exchange`]). hyper asks the request body `is_end_stream()`
//!    right before it writes the head, in the same poll: the body hands its request off in a
//!    thread-local and the IO takes it at its next write. Accepted only at an exchange
//!    boundary; any read discards a pending one (it is stale: never written).
//! 5. **Every Start has one Done** ([`dial`], [`request`]). A dropped future closes what it
//!    opened with [`Canceled`](crate::error::Canceled); a request ends with exactly one of
//!    `ResponseBodyDone`, `RequestFailed` or `RequestCanceled`.
//! 6. **On HTTP/2, a request is bound to its connection by hyper-util, and to its stream by
//!    order** ([`h2`]). hyper's dispatch task opens a connection's streams one at a time, ids
//!    1, 3, 5..., asking each body `size_hint()` then `is_end_stream()` right before: every
//!    body, traced or not, counts itself there under that task's id, so the k-th is stream
//!    2k-1. A traced request's `CaptureConnection` names its connection by then: `GotConn`,
//!    and the frames of its stream are its wire events. A stream that went uncounted ends the
//!    mapping.

pub(crate) mod ambient;
pub(crate) mod dial;
pub(crate) mod exchange;
pub(crate) mod h2;
pub(crate) mod request;

pub(crate) use self::ambient::{
    current_dial, current_request, hand_off, in_request_task, with_dial, with_request,
};
pub(crate) use self::dial::{next_conn_id, DialCtx};
pub(crate) use self::exchange::ConnSide;
pub(crate) use self::request::{informational, Recorded, RequestCtx, RequestFacts};
