//! `ClientTrace`: the hooks for one request, and how they compose. Its scope (`scope`,
//! `current`) lives with the crate's other thread-locals, in `binding/ambient.rs`.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::event::{Event, Hooks, RequestId};

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
    /// use httptrace::{event::WroteRequestInfo, ClientTrace, Hooks};
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

    /// Delivers `event`, which belongs to no request (a connection observer's), to every hook,
    /// in order. A hook that panics is contained: the panic doesn't reach the connection, the
    /// pool or the other hooks.
    pub(crate) fn emit(&self, event: &Event) {
        for hooks in self.hooks.as_slice() {
            contain(event, || hooks.on_event(event));
        }
    }

    /// The first span a hook asks request `request`'s future to run in.
    #[cfg(feature = "tracing")]
    pub(crate) fn request_span(&self, request: RequestId) -> Option<tracing::Span> {
        self.hooks.as_slice().iter().find_map(|hooks| {
            match catch_unwind(AssertUnwindSafe(|| hooks.request_span(request))) {
                Ok(span) => span,
                Err(payload) => {
                    hook_panicked("request_span");
                    drop_contained(payload);
                    None
                }
            }
        })
    }

    /// Delivers `event` of request `request` to every hook, in order, each contained.
    #[inline]
    pub(crate) fn emit_for(&self, request: RequestId, event: &Event) {
        for hooks in self.hooks.as_slice() {
            contain(event, || hooks.on_request_event(request, event));
        }
    }

    /// How many times a hook panicked in this process. Each panic is contained: the request,
    /// its connection, the pool and the other hooks go on. With the `tracing` feature, the
    /// first is also reported as a `tracing` warning, the others at debug level.
    ///
    /// ```
    /// let before = httptrace::ClientTrace::hook_panics();
    /// # assert!(httptrace::ClientTrace::hook_panics() >= before);
    /// ```
    pub fn hook_panics() -> u64 {
        HOOK_PANICS.load(Ordering::Relaxed)
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

/// Runs one hook, containing its panic.
#[inline]
fn contain(event: &Event, hook: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(hook)) {
        hook_panicked(event.name());
        drop_contained(payload);
    }
}

/// Drops a panic's payload, containing a panic of its own drop too (its payload is leaked:
/// dropping it might panic again).
#[cold]
fn drop_contained(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

#[cold]
fn hook_panicked(event: &'static str) {
    let first = HOOK_PANICS.fetch_add(1, Ordering::Relaxed) == 0;
    #[cfg(feature = "tracing")]
    match first {
        true => tracing::warn!(
            event,
            "httptrace: a hook panicked; the panic was contained (the request, its connection \
             and the pool go on). Later hook panics are reported at debug level: see \
             ClientTrace::hook_panics()"
        ),
        false => tracing::debug!(event, "httptrace: a hook panicked"),
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (first, event);
}
