//! Hooks for the tests and benches that need one but don't look at the events.

use httptrace::Hooks;

/// Hooks that do nothing.
#[derive(Clone)]
pub struct Noop;

impl Hooks for Noop {}
