//! Adapters for tests: in memory, fault-injecting and counting. Compiled for the core's own
//! tests and, with the `test-support` feature, for the tests of the crates above it.

pub mod store;
