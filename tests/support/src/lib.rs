//! Test support for httptrace, shared by its tests, examples and benches (not published):
//!
//! - [`servers`]: loopback servers (HTTP/1 steered by the query, scripted delays, raw TCP);
//! - [`clients`]: traced hyper-util clients, requests, test resolvers;
//! - [`events`]: event names, the usual sequences, pairing checks, waiting for an event;
//! - [`hooks`]: hooks that do nothing, or count their drops;
//! - [`h2`]: an h2c server and traced h2c clients;
//! - [`tls`]: a self-signed TLS server and the client config that trusts it;
//! - [`load`]: load runs over HTTP/1 and HTTP/2, every request's events checked;
//! - [`loopback`]: a server on a thread of its own and the bare and traced stacks of the
//!   allocation test and the benches;
//! - [`bench`](mod@bench): the benches' interleaved ratios and the floor under any tracer.
//!
//! It uses no feature of httptrace, so that `cargo test --no-default-features` tests the crate
//! without them: whatever needs a feature-gated API stays in the test, example or bench that
//! uses it.

#![warn(missing_docs, rust_2018_idioms)]

pub mod bench;
pub mod clients;
pub mod events;
pub mod h2;
pub mod hooks;
pub mod load;
pub mod loopback;
pub mod servers;
pub mod tls;
