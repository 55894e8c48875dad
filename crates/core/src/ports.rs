//! The ports: what the core needs from the world. Adapters (DynamoDB, SNS, SES, Cognito,
//! embedded) implement them; the core never sees an AWS type.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rand::RngCore;
use secrecy::SecretString;

use crate::password::NewPassword;
use crate::types::{Email, PhoneNumber, Timestamp, Username};

/// A failure of infrastructure (network, throttling, a corrupt record): never the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    pub fn new(what: impl std::fmt::Display) -> Self {
        Self(what.to_string())
    }
}

/// Time, injectable so expiry is tested without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told; shared by clones.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Randomness for codes, tokens and ids. Production uses the operating system's CSPRNG.
pub trait Rng: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// Where a record lives: partition and sort key of the single table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    pub pk: String,
    pub sk: String,
}

/// A record as stored: its body (a JSON object), version and optional expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Starts at 1 and grows by one on every write.
    pub version: u64,
    /// When the store may drop the record (DynamoDB TTL); readers still check expiry themselves.
    pub expires_at: Option<Timestamp>,
    pub body: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record was changed (or created) by someone else since it was read.
    #[error("the record changed concurrently")]
    Conflict,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The persistence port: versioned records under a key, written only if nobody wrote first.
/// Every typed store of the core (sessions, registrations, pending codes) is built on it.
#[async_trait]
pub trait RecordStore: Send + Sync {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError>;

    /// Writes `record` if the stored version is `record.version - 1` (absent when that is 0);
    /// otherwise fails with [`StoreError::Conflict`] and changes nothing.
    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError>;

    /// Removes the record if it is still at `version`; a missing record is not an error.
    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError>;
}

/// Sends a text message to a phone.
#[async_trait]
pub trait Sms: Send + Sync {
    async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable>;
}

/// A message for a person's mailbox, text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send_email(&self, to: &Email, message: &EmailMessage) -> Result<(), Unavailable>;
}

/// A person as the organisation's directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The directory's own spelling of the name; records are keyed by it.
    pub username: Username,
    /// Group names, nested membership already expanded.
    pub groups: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The directory refused the password; the reasons are fit to show the person.
    #[error("the directory refused the password")]
    PasswordRejected(Vec<String>),
    #[error("the user is not in the directory")]
    UnknownUser,
    #[error("this directory cannot unlock accounts")]
    UnlockNotSupported,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The organisation's directory: where accounts and passwords live.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn find_user(&self, username: &Username) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// Checks a password (for local sign-in); `None` when the name or password is wrong.
    async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// Sets a permanent password as an administrator would.
    async fn set_password(&self, username: &Username, password: &NewPassword) -> Result<(), DirectoryError>;

    /// Ends the user's sessions elsewhere where the directory can; a no-op where it cannot.
    async fn sign_out_everywhere(&self, username: &Username) -> Result<(), DirectoryError>;

    /// Clears a lockout; [`DirectoryError::UnlockNotSupported`] where the directory has none.
    async fn unlock(&self, username: &Username) -> Result<(), DirectoryError>;
}
