//! `ClientTrace`: the hooks for one request, how they compose, and the task-local scope.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::event::{Event, Hooks};

/// The hooks for one request: cheap to clone, `Send + Sync`.
///
/// Attach it to a request in one of two ways:
/// - in the request's extensions: `req.extensions_mut().insert(trace)`;
/// - around the code that sends the request: `trace.scope(future)`, like Go's
///   `httptrace.WithClientTrace`. [`ClientTrace::current`] reads it.
///
/// Traces compose: [`ClientTrace::compose`] runs both, `self` first; nested scopes and an
/// extension run the innermost first (extension, then inner scope, then outer scope, then the
/// [`TraceLayer`](crate::TraceLayer)'s per-client default), as Go does.
///
/// ```
/// use httptrace::{ClientTrace, Event};
///
/// let trace = ClientTrace::from_fn(|event: &Event| println!("{} at {:?}", event.name(), event.at()));
/// # async fn send() {}
/// # async fn doc(trace: ClientTrace) {
/// // any request sent inside the scope is traced:
/// trace.scope(async { send().await }).await;
/// # }
/// ```
#[derive(Clone)]
pub struct ClientTrace {
    hooks: HookSet,
    /// Some hook may want the 1xx responses: hyper's 1xx callback is installed for them.
    informational: bool,
}

/// The hooks of a trace: most traces have one (no slice to allocate).
#[derive(Clone)]
enum HookSet {
    /// A request traced only for the layer's `Timings`, which it fills itself.
    None,
    One(Arc<dyn Hooks>),
    Many(Arc<[Arc<dyn Hooks>]>),
}

impl HookSet {
    fn as_slice(&self) -> &[Arc<dyn Hooks>] {
        match self {
            HookSet::None => &[],
            HookSet::One(hooks) => std::slice::from_ref(hooks),
            HookSet::Many(hooks) => hooks,
        }
    }
}

impl ClientTrace {
    /// A trace calling `hooks`.
    ///
    /// ```
    /// use httptrace::{ClientTrace, Hooks, WroteRequestInfo};
    ///
    /// struct Written;
    /// impl Hooks for Written {
    ///     fn wrote_request(&self, info: &WroteRequestInfo) {
    ///         println!("request written, error: {:?}", info.error);
    ///     }
    /// }
    /// let trace = ClientTrace::new(Written);
    /// # drop(trace);
    /// ```
    pub fn new(hooks: impl Hooks) -> Self {
        Self::shared(Arc::new(hooks), true)
    }

    /// A trace calling hooks that are already shared; `informational`: whether they want the
    /// 1xx responses (httptrace's own consumers that ignore them say no, and hyper's 1xx
    /// callback is then not installed for their requests: two allocations less).
    pub(crate) fn shared(hooks: Arc<dyn Hooks>, informational: bool) -> Self {
        Self {
            hooks: HookSet::One(hooks),
            informational,
        }
    }

    /// A trace with no hooks: a request traced only for the layer's `Timings`.
    pub(crate) fn empty() -> Self {
        Self {
            hooks: HookSet::None,
            informational: false,
        }
    }

    /// Some hook of this trace may want the 1xx responses.
    pub(crate) fn wants_informational(&self) -> bool {
        self.informational
    }

    /// A trace calling `f` for every event: the quick way.
    ///
    /// ```
    /// use httptrace::{ClientTrace, Event};
    ///
    /// let trace = ClientTrace::from_fn(|event: &Event| {
    ///     if let Event::GotConn(info) = event {
    ///         println!("conn {} reused={}", info.conn_id, info.reused);
    ///     }
    /// });
    /// # drop(trace);
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        struct FnHooks<F>(F);
        impl<F: Fn(&Event) + Send + Sync + 'static> Hooks for FnHooks<F> {
            fn on_event(&self, event: &Event) {
                (self.0)(event)
            }
        }
        Self::new(FnHooks(f))
    }

    /// A trace that runs `self`'s hooks, then `other`'s.
    ///
    /// ```
    /// use httptrace::{ClientTrace, Recorder};
    ///
    /// let (a, b) = (Recorder::new(), Recorder::new());
    /// let both = a.trace().compose(b.trace());
    /// # drop(both);
    /// ```
    pub fn compose(self, other: ClientTrace) -> ClientTrace {
        match (&self.hooks, &other.hooks) {
            (HookSet::None, _) => return other,
            (_, HookSet::None) => return self,
            _ => {}
        }
        let hooks: Vec<Arc<dyn Hooks>> = self
            .hooks
            .as_slice()
            .iter()
            .chain(other.hooks.as_slice())
            .cloned()
            .collect();
        ClientTrace {
            hooks: HookSet::Many(Arc::from(hooks)),
            informational: self.informational || other.informational,
        }
    }

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
    pub fn current() -> Option<ClientTrace> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Delivers `event` to every hook, in order. A hook that panics is contained: the panic
    /// doesn't reach the connection, the pool or the other hooks.
    pub(crate) fn emit(&self, event: &Event) {
        for hooks in self.hooks.as_slice() {
            if catch_unwind(AssertUnwindSafe(|| hooks.on_event(event))).is_err() {
                hook_panicked(event);
            }
        }
    }
}

impl fmt::Debug for ClientTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTrace")
            .field("hooks", &self.hooks.as_slice().len())
            .finish()
    }
}

static HOOK_PANICS: AtomicU64 = AtomicU64::new(0);

fn hook_panicked(event: &Event) {
    if HOOK_PANICS.fetch_add(1, Ordering::Relaxed) == 0 {
        eprintln!(
            "httptrace: a hook panicked on {}; the panic was contained (the request, its \
             connection and the pool go on). Later hook panics are contained silently: see \
             httptrace::hook_panics().",
            event.name()
        );
    }
}

/// How many times a hook panicked in this process. Each panic is contained: the request, its
/// connection, the pool and the other hooks go on; the first one is also reported on stderr.
///
/// ```
/// let before = httptrace::hook_panics();
/// # assert!(httptrace::hook_panics() >= before);
/// ```
pub fn hook_panics() -> u64 {
    HOOK_PANICS.load(Ordering::Relaxed)
}

thread_local! {
    static CURRENT: RefCell<Option<ClientTrace>> = const { RefCell::new(None) };
}

/// Sets the current trace for the duration of `f`.
fn with_current<R>(trace: &ClientTrace, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ClientTrace>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace(trace.clone()));
    let _restore = Restore(prev);
    f()
}

pin_project! {
    /// The future of [`ClientTrace::scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        trace: ClientTrace,
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
        let composed = this
            .composed
            .get_or_insert_with(|| match ClientTrace::current() {
                Some(outer) => this.trace.clone().compose(outer),
                None => this.trace.clone(),
            });
        let future = this.future;
        with_current(composed, || future.poll(cx))
    }
}
