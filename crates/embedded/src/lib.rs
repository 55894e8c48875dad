//! Embedded adapters: everything sspr needs on one machine without AWS — a SQLite store in
//! one file, a directory seeded from a file (or demo users), and an outbox instead of SMS
//! and email. Only the local server links this crate.

pub mod directory;
pub mod outbox;
pub mod store;

pub use directory::{DirectorySeed, EmbeddedDirectory};
pub use outbox::{Outbox, OutboxEntry};
pub use store::SqliteStore;
