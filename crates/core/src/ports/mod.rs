//! The ports: what the core needs from the world, one file a port. Adapters (DynamoDB, SNS,
//! SES, End User Messaging voice, Cognito, embedded) implement them; the core never sees an AWS type.

mod clock;
mod directory;
mod email;
mod rng;
mod sms;
mod store;
mod voice;

pub use clock::{Clock, ManualClock, SystemClock};
pub use directory::{Authenticate, Directory, DirectoryError, DirectoryUser, Lockout};
pub use email::{EmailMessage, Mailer};
pub use rng::{Rng, SystemRng};
pub use sms::Sms;
pub use store::{
    validate_keys, validate_writes, Cursor, Index, IndexKey, Page, PageEnd, Query, RecordKey, RecordStore, SortKeys,
    StoreError, StoredRecord, Write, MAX_BATCH, MAX_LIMIT,
};
pub use voice::Voice;

/// A failure of infrastructure (network, throttling, a corrupt record): never the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    pub fn new(what: impl std::fmt::Display) -> Self {
        Self(what.to_string())
    }
}
