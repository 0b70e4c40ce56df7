//! Hooks for the tests and benches that need one but don't look at the events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use httptrace::Hooks;

/// Hooks that do nothing.
#[derive(Clone)]
pub struct Noop;

impl Hooks for Noop {}

/// Hooks that do nothing but count their drops: tells whether anything keeps a trace alive.
pub struct DropCounted(pub Arc<AtomicUsize>);

impl Hooks for DropCounted {}

impl Drop for DropCounted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
