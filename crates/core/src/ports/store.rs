//! The persistence port: versioned records of the single table, read one by one, in batches,
//! by sort-key range or through the secondary index; written alone or all-or-nothing; and
//! atomic counters beside them.

use std::collections::HashSet;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::Unavailable;
use crate::types::Timestamp;

/// The most keys one [`RecordStore::get_many`] reads and the most writes one
/// [`RecordStore::write_all`] makes (DynamoDB's limit for both).
pub const MAX_BATCH: usize = 100;

/// The largest [`Query::limit`].
pub const MAX_LIMIT: usize = 1000;

/// Where a record lives: partition and sort key of the single table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// The partition key (`pk`).
    pub pk: String,
    /// The sort key within the partition (`sk`).
    pub sk: String,
}

/// Its key in the `reconfirm-due` secondary index (attributes gsi1pk / gsi1sk).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexKey {
    /// The index partition the record is listed under.
    pub pk: String,
    /// Its place in that partition; index sort keys need not be unique.
    pub sk: String,
}

/// A record as stored: its body (a JSON object), version, optional expiry and optional place
/// in the secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Starts at 1 and grows by one on every write.
    pub version: u64,
    /// When the store may drop the record (DynamoDB TTL); readers still check expiry themselves.
    pub expires_at: Option<Timestamp>,
    /// Where the record is listed in the secondary index; `None`: not listed.
    pub index: Option<IndexKey>,
    /// The record itself.
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// One write of an all-or-nothing batch; each carries the same condition as the single call.
#[derive(Debug, Clone)]
pub enum Write {
    /// As [`RecordStore::put`]: only if the stored version is `record.version - 1`.
    Put {
        /// Where.
        key: RecordKey,
        /// What, at its new version.
        record: StoredRecord,
    },
    /// As [`RecordStore::delete`]: only if the record is still at `version` (or already gone).
    Delete {
        /// Where.
        key: RecordKey,
        /// The version the record was read at.
        version: u64,
    },
    /// Writes nothing: the batch happens only if the record is still at `version` (0: only if
    /// there is no record), so a batch can rest on a record it does not change.
    Check {
        /// Where.
        key: RecordKey,
        /// The version the record was read at; 0 for a record that did not exist.
        version: u64,
    },
    /// As [`RecordStore::add_to_counter`], inside the batch: adds `by` to the counter at `key`
    /// (creating it at 0 first; `expires_at` set when created and kept after). Without `most`
    /// it has no condition of its own: it never makes a batch fail, but happens only if the
    /// batch does. With `most`, the batch happens only if the counter's new value is at most
    /// that (a limit no two concurrent batches can both slip under).
    Count {
        /// The counter's key.
        key: RecordKey,
        /// What is added (may be 0 or negative).
        by: i64,
        /// The counter's expiry, if it has none yet.
        expires_at: Option<Timestamp>,
        /// The largest value the counter may reach; `None`: no limit.
        most: Option<i64>,
    },
}

impl Write {
    /// The key the write is about.
    pub fn key(&self) -> &RecordKey {
        match self {
            Write::Put { key, .. }
            | Write::Delete { key, .. }
            | Write::Check { key, .. }
            | Write::Count { key, .. } => key,
        }
    }
}

/// Which sort keys of the partition a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeys {
    /// Every sort key of the partition.
    All,
    /// The sort keys that start with this text.
    Prefix(String),
    /// The sort keys from `from` to `to`, both inclusive (`from` must not be after `to`).
    Between {
        /// The first sort key read.
        from: String,
        /// The last sort key read.
        to: String,
    },
}

impl SortKeys {
    /// Whether `sk` is one of the sort keys meant.
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            SortKeys::All => true,
            SortKeys::Prefix(prefix) => sk.starts_with(prefix.as_str()),
            SortKeys::Between { from, to } => from.as_str() <= sk && sk <= to.as_str(),
        }
    }
}

/// Where the next page starts; opaque to callers, made and read only by the adapter that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor from its text (adapters only, or a caller handing back one it was given).
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// Its text, to hand to a caller (e.g. as a page token) or to decode in the adapter.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a page ended: the last key it read. Every store writes it into its [`Cursor`] the same
/// way, so a cursor names its query's partition and a store can refuse one of another query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "of", rename_all = "lowercase")]
pub enum PageEnd {
    /// The last record of a query of the table.
    Table { pk: String, sk: String },
    /// The last entry of a query of an index: its index key and its record's key.
    Index { ipk: String, isk: String, pk: String, sk: String },
}

impl PageEnd {
    /// The cursor that continues after this end.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default()))
    }
}

impl Cursor {
    /// Where the page this cursor continues ended; an error for a cursor no store issued.
    pub fn end(&self) -> Result<PageEnd, StoreError> {
        URL_SAFE_NO_PAD
            .decode(self.as_str())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| StoreError::Unavailable(Unavailable::new("a cursor no store issued")))
    }
}

/// A read of one partition (of the table or of an index), a page at a time.
#[derive(Debug, Clone)]
pub struct Query {
    /// The partition key read.
    pub partition: String,
    /// Which of its sort keys.
    pub sort: SortKeys,
    /// Largest sort key first (keys that embed a time read newest first).
    pub descending: bool,
    /// At most this many items (1..=1000).
    pub limit: usize,
    /// Continue after the page that gave this cursor; `None`: from the start.
    pub after: Option<Cursor>,
}

impl Query {
    /// Refuses limits outside 1..=1000 and ranges that end before they start: programming
    /// errors, reported as [`StoreError::Unavailable`].
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(bad_argument(format!("a query limit must be within 1..={MAX_LIMIT}, not {}", self.limit)));
        }
        if let SortKeys::Between { from, to } = &self.sort {
            if from > to {
                return Err(bad_argument(format!("a sort key range ends ({to:?}) before it starts ({from:?})")));
            }
        }
        Ok(())
    }
}

/// One page of a query; `next` is `None` when nothing is left.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the order asked for.
    pub items: Vec<T>,
    /// Where the next page starts; `None`: this was the last page.
    pub next: Option<Cursor>,
}

/// The secondary indexes of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Registrations by when their re-confirmation falls due (`gsi1pk` / `gsi1sk`).
    ReconfirmDue,
}

impl Index {
    /// Its name in the table definition (`infra/template.yaml`).
    pub fn name(self) -> &'static str {
        match self {
            Index::ReconfirmDue => "reconfirm-due",
        }
    }
}

/// Why a call of the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record was changed (or created) by someone else since it was read.
    #[error("the record changed concurrently")]
    Conflict,
    /// The store could not answer (or was misused: a programming error, never the caller's).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

fn bad_argument(what: String) -> StoreError {
    StoreError::Unavailable(Unavailable::new(format!("store misused: {what}")))
}

/// Refuses more than [`MAX_BATCH`] keys or a key asked twice (programming errors).
pub fn validate_keys(keys: &[RecordKey]) -> Result<(), StoreError> {
    if keys.len() > MAX_BATCH {
        return Err(bad_argument(format!("at most {MAX_BATCH} keys are read at once, not {}", keys.len())));
    }
    let mut seen = HashSet::with_capacity(keys.len());
    match keys.iter().find(|k| !seen.insert(*k)) {
        Some(k) => Err(bad_argument(format!("key {}/{} is read twice in one batch", k.pk, k.sk))),
        None => Ok(()),
    }
}

/// Refuses more than [`MAX_BATCH`] writes or two writes on one key (programming errors).
pub fn validate_writes(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_BATCH {
        return Err(bad_argument(format!("at most {MAX_BATCH} writes are made at once, not {}", writes.len())));
    }
    let mut seen = HashSet::with_capacity(writes.len());
    match writes.iter().map(Write::key).find(|k| !seen.insert(*k)) {
        Some(k) => Err(bad_argument(format!("key {}/{} is written twice in one batch", k.pk, k.sk))),
        None => Ok(()),
    }
}

/// The persistence port: versioned records under a key, written only if nobody wrote first.
/// Every typed store of the core (sessions, registrations, pending codes) is built on it.
///
/// Expired records are still returned: readers check `expires_at` themselves (DynamoDB's TTL
/// deletes late). Arguments out of bounds (see [`MAX_BATCH`], [`MAX_LIMIT`]) are programming
/// errors and answer [`StoreError::Unavailable`].
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// The record at `key`, if there is one (a strongly consistent read).
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError>;

    /// Writes `record` if the stored version is `record.version - 1` (absent when that is 0);
    /// otherwise fails with [`StoreError::Conflict`] and changes nothing. The record is listed
    /// in the secondary index exactly as `record.index` says (a record written without one
    /// leaves the index).
    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError>;

    /// Removes the record if it is still at `version`; a missing record is not an error.
    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError>;

    /// Several records in one round trip (strongly consistent reads), in the order of `keys`;
    /// at most 100 keys, no duplicates.
    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<StoredRecord>>, StoreError> {
        Ok(self.get_with_counters(keys, &[]).await?.0)
    }

    /// As [`RecordStore::get_many`], and in the same round trip the values of the counters at
    /// `counters` (0 for a counter never written), in their order; at most 100 keys in all,
    /// no key twice. Counters are read as they stand, whatever their expiry: keys that name
    /// their time window are never read once it has passed.
    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError>;

    /// Every write or none: when any condition fails the result is `Conflict` and nothing
    /// changed. At most 100 writes, no two on one key.
    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError>;

    /// The records of one partition whose sort keys match, ordered by sort key, at most
    /// `limit`, continuing after `after`. A page may hold fewer than `limit` items and still
    /// have a next one; the last page may be empty.
    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError>;

    /// The keys of the records listed in `index` under `query.partition` (an index partition
    /// key) whose index sort keys match, ordered by index sort key; reads only matching index
    /// entries (a DynamoDB Query on the GSI, never a Scan). Records sharing an index sort key
    /// come in an order of the store's choosing, each exactly once across pages. DynamoDB's
    /// index is eventually consistent: a write may show there a moment late.
    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError>;

    /// The counters of one partition whose sort keys match, ordered by sort key, a page at a time
    /// (as [`RecordStore::query`] reads records); records sharing the partition are not returned.
    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError>;

    /// Adds `by` (may be 0 or negative) to the counter at `key`, creating it at 0 first, and
    /// returns the new value in one round trip; `expires_at` is set when the counter is created
    /// and kept after (a counter created without one takes the first one given). Counter keys
    /// hold only counters: get/put/delete are not used on them, and reads of records never
    /// return them.
    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError>;
}
