//! The persistence port: versioned records of the single table.

use async_trait::async_trait;

use super::Unavailable;
use crate::types::Timestamp;

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
