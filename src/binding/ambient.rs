//! What is current on this thread: every thread-local of the crate, and the one guard that
//! moves a value into its thread-local slot for the length of a call and back out, even on
//! panic (as tokio's `task_local!` does in `scope_inner`).
//!
//! | slot | holds | set by | read by |
//! |---|---|---|---|
//! | `CURRENT_TRACE` | the trace of the enclosing [`ClientTrace::scope`] | [`Scoped`], each poll | the layer, when called |
//! | `CURRENT_REQUEST` | the traced request whose task is polling (invariant 3) | the response future, each poll | connectors, the request body |
//! | `CURRENT_DIAL` | the dial in progress (invariant 3) | the connect futures, each poll | the layers under a connector |
//! | `HANDOFF` | the request hyper is about to write (invariant 4) | the request body | the connection's IO |
//! | `EXTRAS`, `LAST_H2` | HTTP/2: a reused extensions map, the connection found last (invariant 6) | the request body | the request body |

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::thread::{AccessError, LocalKey};

use hyper_util::client::legacy::connect::HttpInfo;
use pin_project_lite::pin_project;

use super::dial::DialCtx;
use super::h2::dispatch::Dispatch;
use super::h2::{self, H2Conn, H2Link};
use super::request::RequestCtx;
use crate::trace::ClientTrace;

thread_local! {
    static CURRENT_TRACE: Cell<Option<ClientTrace>> = const { Cell::new(None) };
    static CURRENT_REQUEST: Cell<Option<Arc<RequestCtx>>> = const { Cell::new(None) };
    static CURRENT_DIAL: Cell<Option<Arc<DialCtx>>> = const { Cell::new(None) };
    static HANDOFF: Cell<Option<Handoff>> = const { Cell::new(None) };
    /// `HANDOFF` holds one: a flag with no destructor, the cheapest thread-local to read, so the
    /// reads and writes with nothing handed off (nearly all) don't touch `HANDOFF`.
    static HANDOFF_PENDING: Cell<bool> = const { Cell::new(false) };
    /// Where a connection's `Connected` metadata is read, reused from request to request.
    static EXTRAS: RefCell<http::Extensions> = RefCell::new(http::Extensions::new());
    /// The connection the last stream registered on this thread went to: hyper opens a
    /// connection's streams on its one dispatch task, so the next one most likely goes there
    /// too, and the registry's lock (shared by every thread) is not taken.
    static LAST_H2: RefCell<Option<(ConnKey, Weak<H2Conn>)>> = const { RefCell::new(None) };
}

type Slot<T> = LocalKey<Cell<Option<T>>>;

/// A live TCP connection's name: (local, remote).
type ConnKey = (SocketAddr, SocketAddr);

/// Runs `f` with `value` moved into `key`'s slot, and moves it back out afterwards, even if `f`
/// panics; the slot's previous value is restored. No reference count is touched. If the
/// thread is going away, `f` runs without it.
pub(crate) fn scope_inner<T: 'static, R>(
    key: &'static Slot<T>,
    value: &mut Option<T>,
    f: impl FnOnce() -> R,
) -> R {
    struct Guard<'a, T: 'static> {
        key: &'static Slot<T>,
        value: &'a mut Option<T>,
    }
    impl<T: 'static> Drop for Guard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            let _ = swap(self.key, self.value);
        }
    }
    if swap(key, value).is_err() {
        return f();
    }
    let _guard = Guard { key, value };
    f()
}

/// Swaps `value` with what `key`'s slot holds.
#[inline]
fn swap<T: 'static>(key: &'static Slot<T>, value: &mut Option<T>) -> Result<(), AccessError> {
    key.try_with(|slot| *value = slot.replace(value.take()))
}

/// A clone of what `key`'s slot holds.
fn current<T: Clone + 'static>(key: &'static Slot<T>) -> Option<T> {
    key.try_with(|slot| {
        let value = slot.take();
        let copy = value.clone();
        slot.set(value);
        copy
    })
    .ok()
    .flatten()
}

// ---------------------------------------------------------------------------------------------
// The trace scope

impl ClientTrace {
    /// Runs `future` with this trace as the current one (composed with the trace already current
    /// when the future is first polled, this one first). Requests sent from inside the future
    /// through a [`TraceLayer`](crate::TraceLayer) are traced.
    ///
    /// The scope belongs to the future, like a `tokio::task_local!`: tasks it spawns don't
    /// inherit it. The [`TraceLayer`](crate::TraceLayer) reads it when it is called, so the
    /// scope must enclose the service's `call`: `trace.scope(svc.oneshot(req))` or
    /// `trace.scope(async { svc.call(req).await })`, not `trace.scope(svc.call(req))`. Dial events
    /// are found the same way, on the task that polls the client: a layer that moves the
    /// client's work to another task (tower's `Buffer`) between httptrace and the client loses
    /// them.
    ///
    /// ```
    /// use httptrace::{ClientTrace, Recorder};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let outer = Recorder::new();
    /// let inner = Recorder::new();
    /// let seen = outer
    ///     .trace()
    ///     .scope(inner.trace().scope(async { ClientTrace::current().is_some() }))
    ///     .await;
    /// assert!(seen);
    /// assert!(ClientTrace::current().is_none());
    /// # }
    /// ```
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            trace: self,
            composed: None,
            future,
        }
    }

    /// The trace of the enclosing [`scope`](ClientTrace::scope), if any.
    ///
    /// ```
    /// assert!(httptrace::ClientTrace::current().is_none());
    /// ```
    pub fn current() -> Option<ClientTrace> {
        current(&CURRENT_TRACE)
    }
}

pin_project! {
    /// The future of [`ClientTrace::scope`]: the inner future, with the trace current while it
    /// is polled.
    ///
    /// ```
    /// use httptrace::{layer::Scoped, Recorder};
    ///
    /// let scoped: Scoped<_> = Recorder::new().trace().scope(async { 1 });
    /// # drop(scoped);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        trace: ClientTrace,
        // composed with the outer scope's at the first poll; in the thread-local while polled
        composed: Option<ClientTrace>,
        #[pin]
        future: F,
    }
}

impl<F> Scoped<F> {
    /// The wrapped future.
    pub fn inner(&self) -> &F {
        &self.future
    }

    /// The trace this scope sets.
    pub fn trace(&self) -> &ClientTrace {
        &self.trace
    }
}

impl<F: fmt::Debug> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("trace", &self.trace)
            .field("future", &self.future)
            .finish()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.composed.is_none() {
            *this.composed = Some(match ClientTrace::current() {
                Some(outer) => this.trace.clone().compose(outer),
                None => this.trace.clone(),
            });
        }
        let future = this.future;
        scope_inner(&CURRENT_TRACE, this.composed, || future.poll(cx))
    }
}

// ---------------------------------------------------------------------------------------------
// Invariant 3: the request whose task is polling, and the dial in progress

/// Runs `f` with the request in `slot` as the one whose task is polling; `slot` is empty
/// meanwhile, and holds the request again after `f`.
pub(crate) fn with_request<R>(slot: &mut Option<Arc<RequestCtx>>, f: impl FnOnce() -> R) -> R {
    scope_inner(&CURRENT_REQUEST, slot, f)
}

/// The traced request whose task is polling on this thread, if any.
pub(crate) fn current_request() -> Option<Arc<RequestCtx>> {
    current(&CURRENT_REQUEST)
}

/// A traced request's task is polling (or calling) its client right now, on this thread: what
/// runs here is the request side, not a connection's task.
pub(crate) fn in_request_task() -> bool {
    CURRENT_REQUEST
        .try_with(|slot| {
            let value = slot.take();
            let some = value.is_some();
            slot.set(value);
            some
        })
        .unwrap_or(false)
}

/// Runs `f` with `dial` as the connect in progress.
pub(crate) fn with_dial<R>(dial: &Arc<DialCtx>, f: impl FnOnce() -> R) -> R {
    scope_inner(&CURRENT_DIAL, &mut Some(dial.clone()), f)
}

/// The connect in progress on this thread, if any.
pub(crate) fn current_dial() -> Option<Arc<DialCtx>> {
    current(&CURRENT_DIAL)
}

// ---------------------------------------------------------------------------------------------
// Invariant 4: the handoff of a request to its connection's next exchange

/// What a request body leaves for the connection that is about to write it.
pub(crate) enum Handoff {
    Untraced,
    Traced(Weak<RequestCtx>),
}

/// Called by the request body when hyper's dispatcher first looks at it (its first
/// `is_end_stream()` off its request's task). `http2`: hyper asked its `size_hint()` first, as
/// only its HTTP/2 dispatch task does, right before it opens the request's stream;
/// `opens_stream`: hyper won't refuse it before (a `CONNECT` with a body).
///
/// On HTTP/2 the request is counted on that task and its stream registered (invariant 6); on
/// HTTP/1 it is left for the IO's next write (invariant 4), also when `http2` was a false alarm
/// (a layer between httptrace and the client that asked first).
pub(crate) fn hand_off(ctx: Option<&Arc<RequestCtx>>, http2: bool, opens_stream: bool) {
    let dispatch = http2.then(h2::dispatch::count).flatten();
    if let (Some(d), false) = (&dispatch, opens_stream) {
        h2::dispatch::uncount(d);
    }
    let dispatch = dispatch.filter(|_| opens_stream);
    if ctx.is_some_and(|ctx| {
        // a traced request on HTTP/1 looks no further while no HTTP/2 connection is live
        (http2 || h2::any_live()) && open_on_http2(ctx, dispatch, opens_stream)
    }) {
        return;
    }
    let handoff = match ctx {
        Some(ctx) => Handoff::Traced(Arc::downgrade(ctx)),
        None => Handoff::Untraced,
    };
    let _ = HANDOFF.try_with(|slot| slot.set(Some(handoff)));
    let _ = HANDOFF_PENDING.try_with(|pending| pending.set(true));
}

/// The request handed off on this thread, if one is pending; it is taken.
#[inline]
pub(crate) fn take_handoff() -> Option<Handoff> {
    if !HANDOFF_PENDING
        .try_with(|pending| pending.replace(false))
        .unwrap_or(false)
    {
        return None;
    }
    HANDOFF.try_with(Cell::take).ok().flatten()
}

// ---------------------------------------------------------------------------------------------
// Invariant 6: a request finds its HTTP/2 connection

/// If the connection hyper-util gave `ctx` speaks HTTP/2, registers the request's stream there
/// (hyper is opening it now, on this task), as the request `dispatch` counted.
fn open_on_http2(ctx: &Arc<RequestCtx>, dispatch: Option<Dispatch>, opens_stream: bool) -> bool {
    let Some(capture) = &ctx.capture else {
        return false;
    };
    let conn = {
        let connected = capture.connection_metadata();
        let Some(connected) = connected.as_ref() else {
            return false;
        };
        let read = EXTRAS.try_with(|ext| {
            let mut ext = ext.try_borrow_mut().ok()?;
            connected.get_extras(&mut ext);
            let found = match ext.get::<H2Link>() {
                Some(link) => Found::Conn(link.get()),
                None => Found::Name(
                    ext.get::<HttpInfo>()
                        .map(|info| (info.local_addr(), info.remote_addr())),
                ),
            };
            ext.clear();
            Some(found)
        });
        match read {
            Ok(Some(Found::Conn(conn))) => conn,
            Ok(Some(Found::Name(Some(key)))) => h2_conn(key),
            _ => None,
        }
    };
    match conn {
        Some(conn) => {
            conn.open(ctx, dispatch, opens_stream);
            true
        }
        None => false,
    }
}

/// How a connection tells itself.
enum Found {
    Conn(Option<Arc<H2Conn>>),
    Name(Option<ConnKey>),
}

/// The live HTTP/2 connection named `key` ((local, remote)).
pub(super) fn h2_conn(key: ConnKey) -> Option<Arc<H2Conn>> {
    let cached = LAST_H2.try_with(|last| {
        let last = last.try_borrow().ok()?;
        let (k, conn) = last.as_ref()?;
        // a connection closed since is gone from the registry: a new one may have its name
        (*k == key)
            .then(|| conn.upgrade())
            .flatten()
            .filter(|c| c.is_live())
    });
    if let Ok(Some(conn)) = cached {
        return Some(conn);
    }
    let conn = h2::registered(key)?;
    let _ = LAST_H2.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some((key, Arc::downgrade(&conn)));
        }
    });
    Some(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static TEST_SLOT: Cell<Option<u32>> = const { Cell::new(None) };
    }

    #[test]
    fn a_scope_moves_its_value_in_and_back_out_even_on_panic() {
        let mut outer = Some(1);
        let mut inner = Some(2);
        scope_inner(&TEST_SLOT, &mut outer, || {
            assert_eq!(current(&TEST_SLOT), Some(1));
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                scope_inner(&TEST_SLOT, &mut inner, || {
                    assert_eq!(current(&TEST_SLOT), Some(2));
                    panic!("in the scope");
                })
            }));
            assert!(caught.is_err());
            assert_eq!(current(&TEST_SLOT), Some(1));
        });
        assert_eq!((outer, inner), (Some(1), Some(2)));
        assert_eq!(current(&TEST_SLOT), None);
    }

    #[test]
    fn a_handoff_is_taken_once() {
        assert!(take_handoff().is_none());
        hand_off(None, false, true);
        assert!(matches!(take_handoff(), Some(Handoff::Untraced)));
        assert!(take_handoff().is_none());
    }
}
