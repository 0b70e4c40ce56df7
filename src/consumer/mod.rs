//! Ready-made consumers of the events: [`Recorder`] keeps them, [`Timings`] turns them into
//! phases.

pub(crate) mod recorder;
#[cfg(feature = "tracing")]
pub(crate) mod spans;
pub(crate) mod timings;
