//! Ready-made consumers of the events: [`Recorder`] keeps them, [`Timings`] turns them into
//! phases.

#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
pub(crate) mod recorder;
#[cfg(feature = "tracing")]
pub(crate) mod spans;
pub(crate) mod timings;
