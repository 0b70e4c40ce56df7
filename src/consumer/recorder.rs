use std::sync::{Arc, Mutex};

use crate::event::{Event, Hooks};
use crate::trace::ClientTrace;

/// Hooks that keep every event, in the order delivered. Clones share one log.
///
/// ```
/// use httptrace::Recorder;
///
/// let rec = Recorder::new();
/// let trace = rec.trace(); // attach it to a request
/// # drop(trace);
/// for event in rec.events() {
///     println!("{:<22} {:?}", event.name(), event.at());
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    events: Arc<Log>,
}

/// The events recorded, and the hooks recording them.
#[derive(Debug, Default)]
struct Log(Mutex<Vec<Event>>);

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hooks for Log {
    fn on_event(&self, event: &Event) {
        self.lock().push(event.clone());
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trace that records into this recorder.
    pub fn trace(&self) -> ClientTrace {
        // the log is shared already: no allocation
        ClientTrace::shared(self.events.clone(), true)
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// The names of the events recorded so far.
    ///
    /// ```
    /// let rec = httptrace::Recorder::new();
    /// assert!(rec.names().is_empty());
    /// ```
    pub fn names(&self) -> Vec<&'static str> {
        self.events.lock().iter().map(Event::name).collect()
    }

    /// Forgets the events recorded so far.
    pub fn clear(&self) {
        self.events.lock().clear();
    }
}

impl Hooks for Recorder {
    fn on_event(&self, event: &Event) {
        self.events.on_event(event)
    }
}
