//! Adapters for tests: in memory, fault-injecting, counting and recording, and the product
//! built on them. Compiled for the core's own tests and, with the `test-support` feature, for
//! the tests of the crates above it.

pub mod directory;
pub mod senders;
pub mod store;
pub mod world;
