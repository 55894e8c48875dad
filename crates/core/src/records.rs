//! Typed records over the [`RecordStore`] port, and the single list of every key of the table
//! and its index (docs/architecture.md, "Records"): where each record lives, and how it is
//! read and written with optimistic concurrency.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::methods::questions::HeldAnswer;
use crate::policy::Policy;
use crate::ports::{IndexKey, RecordKey, RecordStore, StoreError, StoredRecord, Unavailable, Write};
use crate::reset::session::ResetSession;
use crate::secret::{Digest, Sealed};
use crate::types::{Destination, Email, MethodId, MethodKind, Timestamp, Username};

// ---------------------------------------------------------------- every key of the table

/// A reset session, under the keyed hash of its handle.
pub fn session_key(id_hash: &Digest) -> RecordKey {
    RecordKey { pk: format!("SESSION#{}", id_hash.to_hex()), sk: "SESSION".into() }
}

/// What a person registered.
pub fn registration_key(username: &Username) -> RecordKey {
    RecordKey { pk: format!("USER#{username}"), sk: "REGISTRATION".into() }
}

/// A destination waiting for its confirmation code.
pub fn pending_key(username: &Username, kind: MethodKind) -> RecordKey {
    RecordKey { pk: format!("USER#{username}"), sk: format!("PENDING#{kind}") }
}

/// An authenticator code's step once accepted for a person: each step is accepted once (S8).
pub fn totp_step_key(username: &Username, step: u64) -> RecordKey {
    RecordKey { pk: format!("USER#{username}"), sk: format!("TOTP-STEP#{step}") }
}

/// The policy administrators store.
pub fn policy_key() -> RecordKey {
    RecordKey { pk: "POLICY".into(), sk: "POLICY".into() }
}

/// A proof-of-work solution already used.
pub fn challenge_key(challenge: &str) -> RecordKey {
    RecordKey { pk: format!("CHALLENGE#{challenge}"), sk: "CHALLENGE".into() }
}

/// A reminder of re-confirmation sent (or being sent) for the due day `due` (`YYYY-MM-DD`): at
/// most one per person and due day.
pub fn reminder_key(username: &Username, due: &str) -> RecordKey {
    RecordKey { pk: format!("USER#{username}"), sk: format!("REMINDER#{due}") }
}

/// The partition of the `reconfirm-due` index that lists the registrations last confirmed on
/// `day` (`YYYY-MM-DD`, UTC). Bucketed by confirmation day, not due day, so a change of the
/// policy's number of days strands nobody: the reminder run reads the days whose
/// registrations are due now, one partition a day.
pub fn confirmed_partition(day: &str) -> String {
    format!("CONFIRMED#{day}")
}

/// The index entry of a registration confirmed at `confirmed_at`: its day's partition, sorted
/// by the table key.
pub fn confirmed_index_key(key: &RecordKey, confirmed_at: Timestamp) -> IndexKey {
    IndexKey { pk: confirmed_partition(&confirmed_at.date()), sk: key.pk.clone() }
}

/// Where registrations written before confirmation days were indexed: one partition sorted by
/// confirmation time. The reminder run moves what it finds there to the day partitions.
pub const LEGACY_CONFIRMED_PARTITION: &str = "REGISTRATIONS";

// ---------------------------------------------------------------- typed records

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

/// A kind of record: its type, whether (and when) the store may drop it, and where the index
/// lists it.
pub trait Record: Serialize + DeserializeOwned {
    fn expires_at(&self) -> Option<Timestamp> {
        None
    }

    fn index_key(&self, _key: &RecordKey) -> Option<IndexKey> {
        None
    }

    /// Brings a body stored by an earlier version to this one's shape before it is read.
    fn upgrade(_body: &mut serde_json::Map<String, serde_json::Value>) {}
}

fn read_error(e: StoreError) -> Unavailable {
    match e {
        StoreError::Unavailable(e) => e,
        StoreError::Conflict => Unavailable::new("conflict on read"),
    }
}

/// The typed value of a stored record.
pub fn decode<T: Record>(key: &RecordKey, stored: Option<StoredRecord>) -> Result<Option<Versioned<T>>, Unavailable> {
    let Some(mut stored) = stored else {
        return Ok(None);
    };
    T::upgrade(&mut stored.body);
    let value = serde_json::from_value(serde_json::Value::Object(stored.body))
        .map_err(|e| Unavailable::new(format!("unreadable record {}/{}: {e}", key.pk, key.sk)))?;
    Ok(Some(Versioned { value, version: stored.version }))
}

pub async fn load<T: Record>(store: &dyn RecordStore, key: &RecordKey) -> Result<Option<Versioned<T>>, Unavailable> {
    decode(key, store.get(key).await.map_err(read_error)?)
}

/// Reads several records in one round trip, in the order of `keys`.
pub async fn load_many(store: &dyn RecordStore, keys: &[RecordKey]) -> Result<Vec<Option<StoredRecord>>, Unavailable> {
    match keys {
        [] => Ok(Vec::new()),
        [key] => Ok(vec![store.get(key).await.map_err(read_error)?]),
        keys => store.get_many(keys).await.map_err(read_error),
    }
}

/// Reads records and counters in one round trip (a counter never written reads 0).
pub async fn load_with_counters(
    store: &dyn RecordStore,
    keys: &[RecordKey],
    counters: &[RecordKey],
) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), Unavailable> {
    store.get_with_counters(keys, counters).await.map_err(read_error)
}

/// `record` as stored at its next version.
fn stored<T: Record>(key: &RecordKey, record: &Versioned<T>) -> Result<StoredRecord, Unavailable> {
    let body = match serde_json::to_value(&record.value) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(Unavailable::new("a record must serialise to an object")),
        Err(e) => return Err(Unavailable::new(format!("unserialisable record: {e}"))),
    };
    Ok(StoredRecord {
        version: record.version + 1,
        expires_at: record.value.expires_at(),
        index: record.value.index_key(key),
        body,
    })
}

/// The write that stores `record` as the next version of what was read.
pub fn put<T: Record>(key: &RecordKey, record: &Versioned<T>) -> Result<Write, Unavailable> {
    Ok(Write::Put { key: key.clone(), record: stored(key, record)? })
}

/// Writes the record as the next version of what was read; [`StoreError::Conflict`] if it changed.
pub async fn save<T: Record>(
    store: &dyn RecordStore,
    key: &RecordKey,
    record: &Versioned<T>,
) -> Result<u64, StoreError> {
    let stored = stored(key, record)?;
    store.put(key, &stored).await?;
    Ok(stored.version)
}

/// Applies several writes all together or not at all.
pub async fn save_all(store: &dyn RecordStore, writes: &[Write]) -> Result<(), StoreError> {
    match writes {
        [] => Ok(()),
        [Write::Put { key, record }] => store.put(key, record).await,
        [Write::Delete { key, version }] => store.delete(key, *version).await,
        [Write::Count { key, by, expires_at, most: None }] => {
            store.add_to_counter(key, *by, *expires_at).await.map(drop)
        }
        writes => store.write_all(writes).await,
    }
}

impl Record for ResetSession {
    fn expires_at(&self) -> Option<Timestamp> {
        Some(self.expires_at)
    }
}

impl Record for Policy {
    fn upgrade(body: &mut serde_json::Map<String, serde_json::Value>) {
        Policy::upgrade(body);
    }
}

/// One recovery method a person registered and confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredMethod {
    pub id: MethodId,
    pub kind: MethodKind,
    /// What a proof of the method is checked against.
    #[serde(flatten)]
    pub held: Held,
    pub added_at: Timestamp,
}

/// What the product holds to check a proof of a registered method: where its codes go, or the
/// authenticator's sealed seed (S6 and S8 in docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Held {
    /// Email, SMS and voice: codes are delivered here.
    Destination { destination: Destination },
    /// The authenticator app: its seed, sealed for the person.
    Seed { seed: Sealed },
    /// Security questions: each question with its answer's Argon2id hash.
    Answers { answers: Vec<HeldAnswer> },
}

impl RegisteredMethod {
    /// Where codes of this method go, for delivered-code methods.
    pub fn destination(&self) -> Option<&Destination> {
        match &self.held {
            Held::Destination { destination } => Some(destination),
            Held::Seed { .. } | Held::Answers { .. } => None,
        }
    }

    /// The sealed seed of an authenticator app.
    pub fn seed(&self) -> Option<&Sealed> {
        match &self.held {
            Held::Seed { seed } => Some(seed),
            Held::Destination { .. } | Held::Answers { .. } => None,
        }
    }

    /// The questions and answer hashes of security questions.
    pub fn answers(&self) -> Option<&[HeldAnswer]> {
        match &self.held {
            Held::Answers { answers } => Some(answers),
            Held::Destination { .. } | Held::Seed { .. } => None,
        }
    }

    /// The method as a notice names it: its kind and what the person sees of it.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            MethodKind::Email => "email",
            MethodKind::Sms => "text messages",
            MethodKind::Voice => "voice calls",
            MethodKind::Totp => "authenticator app",
            MethodKind::Questions => "security questions",
        };
        format!("{kind} ({})", self.hint())
    }

    /// What the person sees of the method: a masked destination, or the method's name.
    pub fn hint(&self) -> String {
        match &self.held {
            Held::Destination { destination } => destination.hint(),
            Held::Seed { .. } => format!("added {}", self.added_at.date()),
            Held::Answers { answers } => format!("{} questions", answers.len()),
        }
    }
}

/// Everything a person registered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub methods: Vec<RegisteredMethod>,
    /// When the person last registered or re-confirmed their methods.
    pub confirmed_at: Option<Timestamp>,
}

impl Registration {
    /// When re-confirmation falls due: the last confirmation (or, for a registration from before
    /// confirmations were recorded, its newest method) plus `days`; `None` with nothing
    /// registered or when `days` is 0 (never).
    pub fn reconfirm_due(&self, days: u16) -> Option<Timestamp> {
        if days == 0 || self.methods.is_empty() {
            return None;
        }
        let since = self.confirmed_at.or_else(|| self.methods.iter().map(|m| m.added_at).max())?;
        Some(since.plus_secs(i64::from(days) * 86_400))
    }
}

impl Record for Registration {
    /// Listed by when it was last confirmed, while there is anything to re-confirm.
    fn index_key(&self, key: &RecordKey) -> Option<IndexKey> {
        match self.confirmed_at {
            Some(at) if !self.methods.is_empty() => Some(confirmed_index_key(key, at)),
            _ => None,
        }
    }
}

impl Registration {
    pub fn find(&self, kind: MethodKind, destination: &Destination) -> Option<&RegisteredMethod> {
        self.methods.iter().find(|m| m.kind == kind && m.destination() == Some(destination))
    }

    /// Whether the method `id` is still registered, holding the same destination (if it has one).
    pub fn still_has(&self, id: &MethodId, destination: Option<&Destination>) -> bool {
        self.methods.iter().any(|m| &m.id == id && (destination.is_none() || m.destination() == destination))
    }
}

/// The email addresses among registered methods.
pub fn emails_of(methods: &[RegisteredMethod]) -> impl Iterator<Item = &Email> {
    methods.iter().filter_map(|m| match m.destination() {
        Some(Destination::Email(e)) => Some(e),
        _ => None,
    })
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

/// An authenticator app waiting for its first code before it is registered: the seed, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTotp {
    pub seed: Sealed,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub failures: u32,
}

impl Record for PendingTotp {
    /// Kept a day past its expiry, as a pending destination is, so the failures stay counted.
    fn expires_at(&self) -> Option<Timestamp> {
        Some(self.expires_at.plus_secs(24 * 3600))
    }
}

/// A record whose existence is the fact: a proof-of-work solution or an authenticator step
/// already used. It outlives the time in which what it spends is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    pub expires_at: Timestamp,
}

impl Record for Spent {
    fn expires_at(&self) -> Option<Timestamp> {
        Some(self.expires_at)
    }
}

/// The write that creates `key` as spent until `expires_at`; it conflicts if `key` exists.
pub fn spend(key: &RecordKey, expires_at: Timestamp) -> Result<Write, Unavailable> {
    put(key, &Versioned::new(Spent { expires_at }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_indexed_by_the_day_they_were_confirmed() {
        let key = registration_key(&Username::parse("alice").expect("name"));
        let registration = |at: Option<i64>, methods: usize| Registration {
            methods: (0..methods)
                .map(|i| RegisteredMethod {
                    id: MethodId::parse(&format!("{i:016x}")).expect("id"),
                    kind: MethodKind::Email,
                    held: Held::Destination {
                        destination: Destination::parse(MethodKind::Email, "alice@example.com").expect("email"),
                    },
                    added_at: Timestamp(1),
                })
                .collect(),
            confirmed_at: at.map(Timestamp),
        };
        assert_eq!(registration(None, 1).index_key(&key), None, "never confirmed");
        assert_eq!(registration(Some(5), 0).index_key(&key), None, "nothing to re-confirm");
        let morning = registration(Some(1_800_000_000), 1).index_key(&key).expect("listed");
        let evening = registration(Some(1_800_000_000 + 3_600 * 8), 1).index_key(&key).expect("listed");
        assert_eq!(morning, IndexKey { pk: "CONFIRMED#2027-01-15".into(), sk: "USER#alice".into() });
        assert_eq!(morning, evening, "one partition a day");
        let next_day = registration(Some(1_800_000_000 + 86_400), 1).index_key(&key).expect("listed");
        assert_eq!(next_day.pk, "CONFIRMED#2027-01-16");
    }

    #[test]
    fn methods_keep_their_stored_shape_and_read_back_by_what_they_hold() {
        // A delivered-code method as stored since the first release: the destination at the top.
        let stored = serde_json::json!({
            "id": "00112233445566ff", "kind": "sms", "added_at": 5,
            "destination": {"type": "phone", "value": "+14155550100"},
        });
        let sms: RegisteredMethod = serde_json::from_value(stored.clone()).expect("readable");
        assert_eq!(sms.destination().map(Destination::as_str), Some("+14155550100"));
        assert_eq!(serde_json::to_value(&sms).expect("json"), stored, "written back the same");
        let sealed = Sealed { key_id: "k".into(), nonce: "00".into(), ciphertext: "ff".into() };
        let app = RegisteredMethod {
            id: MethodId::parse("00112233445566ee").expect("id"),
            kind: MethodKind::Totp,
            held: Held::Seed { seed: sealed.clone() },
            added_at: Timestamp(6),
        };
        let back: RegisteredMethod = serde_json::from_value(serde_json::to_value(&app).expect("json")).expect("back");
        assert_eq!(back.seed(), Some(&sealed));
        assert_eq!((back.destination(), back.hint().as_str()), (None, "added 1970-01-01"));
    }
}
