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
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trace that records into this recorder.
    pub fn trace(&self) -> ClientTrace {
        ClientTrace::new(self.clone())
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The names of the events recorded so far.
    ///
    /// ```
    /// let rec = httptrace::Recorder::new();
    /// assert!(rec.names().is_empty());
    /// ```
    pub fn names(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(Event::name)
            .collect()
    }

    /// Forgets the events recorded so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Hooks for Recorder {
    fn on_event(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}
