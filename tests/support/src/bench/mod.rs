//! What the benches share beyond the loopback stacks: the interleaved measurement
//! ([`ratios`]) and the floor under any tracer ([`floor`]).

pub mod floor;
pub mod ratios;
