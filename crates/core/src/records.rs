//! Typed records over the [`RecordStore`] port: where each lives in the single table and how
//! it is read and written with optimistic concurrency.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::ports::{RecordKey, RecordStore, StoreError, StoredRecord, Unavailable};
use crate::reset::session::ResetSession;
use crate::secret::Digest;
use crate::types::{Destination, MethodId, MethodKind, Timestamp, Username};

/// A record with the version it was read at; writing it succeeds only if nobody wrote since.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

impl<T> Versioned<T> {
    pub fn new(value: T) -> Self {
        Self { value, version: 0 }
    }
}

/// A kind of record: its type and whether (and when) the store may drop it.
pub trait Record: Serialize + DeserializeOwned {
    fn expires_at(&self) -> Option<Timestamp> {
        None
    }
}

pub async fn load<T: Record>(store: &dyn RecordStore, key: &RecordKey) -> Result<Option<Versioned<T>>, Unavailable> {
    let stored = match store.get(key).await {
        Ok(stored) => stored,
        Err(StoreError::Unavailable(e)) => return Err(e),
        Err(StoreError::Conflict) => return Err(Unavailable::new("conflict on read")),
    };
    let Some(stored) = stored else {
        return Ok(None);
    };
    let value = serde_json::from_value(serde_json::Value::Object(stored.body))
        .map_err(|e| Unavailable::new(format!("unreadable record {}/{}: {e}", key.pk, key.sk)))?;
    Ok(Some(Versioned { value, version: stored.version }))
}

/// Writes the record as the next version of what was read; [`StoreError::Conflict`] if it changed.
pub async fn save<T: Record>(
    store: &dyn RecordStore,
    key: &RecordKey,
    record: &Versioned<T>,
) -> Result<u64, StoreError> {
    let body = match serde_json::to_value(&record.value) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(Unavailable::new("a record must serialise to an object").into()),
        Err(e) => return Err(Unavailable::new(format!("unserialisable record: {e}")).into()),
    };
    let version = record.version + 1;
    store.put(key, &StoredRecord { version, expires_at: record.value.expires_at(), body }).await?;
    Ok(version)
}

pub fn session_key(id_hash: &Digest) -> RecordKey {
    RecordKey { pk: format!("SESSION#{}", id_hash.to_hex()), sk: "SESSION".into() }
}

pub fn registration_key(username: &Username) -> RecordKey {
    RecordKey { pk: format!("USER#{username}"), sk: "REGISTRATION".into() }
}

pub fn pending_key(username: &Username, kind: MethodKind) -> RecordKey {
    RecordKey { pk: format!("USER#{username}"), sk: format!("PENDING#{kind}") }
}

pub fn policy_key() -> RecordKey {
    RecordKey { pk: "POLICY".into(), sk: "POLICY".into() }
}

impl Record for ResetSession {
    fn expires_at(&self) -> Option<Timestamp> {
        Some(self.expires_at)
    }
}

impl Record for Policy {}

/// One recovery method a person registered and confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredMethod {
    pub id: MethodId,
    pub kind: MethodKind,
    pub destination: Destination,
    pub added_at: Timestamp,
}

/// Everything a person registered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub methods: Vec<RegisteredMethod>,
    /// When the person last registered or re-confirmed their methods.
    pub confirmed_at: Option<Timestamp>,
}

impl Record for Registration {}

impl Registration {
    pub fn find(&self, kind: MethodKind, destination: &Destination) -> Option<&RegisteredMethod> {
        self.methods.iter().find(|m| m.kind == kind && &m.destination == destination)
    }

    pub fn emails(&self) -> impl Iterator<Item = &crate::types::Email> {
        self.methods.iter().filter_map(|m| match &m.destination {
            Destination::Email(e) => Some(e),
            Destination::Phone(_) => None,
        })
    }
}

/// A destination waiting for its confirmation code before it is registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMethod {
    pub kind: MethodKind,
    pub destination: Destination,
    pub code_hash: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub failures: u32,
}

impl Record for PendingMethod {
    /// Kept a day past the code's expiry so a new code cannot wipe the failures counted.
    fn expires_at(&self) -> Option<Timestamp> {
        Some(self.expires_at.plus_secs(24 * 3600))
    }
}
