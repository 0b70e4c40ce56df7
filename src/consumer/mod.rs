//! Ready-made consumers of the events: [`Recorder`] keeps them, [`Timings`] turns them into
//! phases.

pub(crate) mod recorder;
pub(crate) mod timings;
