//! Record stores for tests: [`MemoryStore`] (the whole port in memory, with the semantics of the
//! real adapters), [`FaultyStore`] (loses races or is down on demand) and [`CountingStore`]
//! (counts round trips).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::{
    validate_keys, validate_writes, Index, IndexKey, Page, PageEnd, Query, RecordKey, RecordStore, StoreError,
    StoredRecord, Unavailable, Write,
};
use crate::types::Timestamp;

fn unavailable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(Unavailable::new(format!("memory store: {what}")))
}

type Key = (String, String);

#[derive(Default)]
struct Data {
    records: BTreeMap<Key, StoredRecord>,
    /// Counters live apart from records, as in the embedded store.
    counters: BTreeMap<Key, (i64, Option<Timestamp>)>,
}

/// The whole [`RecordStore`] port in memory, with exactly the semantics of the SQLite and
/// DynamoDB adapters. Cheap to clone; clones share the data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
}

fn key_of(key: &RecordKey) -> Key {
    (key.pk.clone(), key.sk.clone())
}

fn may_put(current: Option<&StoredRecord>, version: u64) -> bool {
    match current {
        None => version == 1,
        Some(current) => current.version.checked_add(1) == Some(version),
    }
}

fn may_delete(current: Option<&StoredRecord>, version: u64) -> bool {
    current.is_none_or(|c| c.version == version)
}

/// One page of a query of the table, read from `rows` (the records, or the counters).
fn table_page<T: Clone>(rows: &BTreeMap<Key, T>, query: &Query) -> Result<Page<(RecordKey, T)>, StoreError> {
    let after = match &query.after {
        None => None,
        Some(cursor) => match cursor.end()? {
            PageEnd::Table { pk, sk } if pk == query.partition => Some(sk),
            _ => return Err(unavailable("a cursor of another query")),
        },
    };
    let mut rows: Vec<(RecordKey, T)> = rows
        .range((query.partition.clone(), String::new())..)
        .take_while(|((pk, _), _)| *pk == query.partition)
        .filter(|((_, sk), _)| query.sort.matches(sk))
        .filter(|((_, sk), _)| match &after {
            None => true,
            Some(after) if query.descending => sk < after,
            Some(after) => sk > after,
        })
        .map(|((pk, sk), r)| (RecordKey { pk: pk.clone(), sk: sk.clone() }, r.clone()))
        .collect();
    if query.descending {
        rows.reverse();
    }
    let more = rows.len() > query.limit;
    rows.truncate(query.limit);
    let next = match rows.last() {
        Some((key, _)) if more => Some(PageEnd::Table { pk: key.pk.clone(), sk: key.sk.clone() }.cursor()),
        _ => None,
    };
    Ok(Page { items: rows, next })
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Data>, StoreError> {
        self.data.lock().map_err(|_| unavailable("a writer panicked"))
    }

    /// Every record, in key order (for tests that inspect what was kept).
    pub fn records(&self) -> Vec<(RecordKey, StoredRecord)> {
        self.lock()
            .map(|data| {
                data.records
                    .iter()
                    .map(|((pk, sk), r)| (RecordKey { pk: pk.clone(), sk: sk.clone() }, r.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value and expiry of the counter at `key` (counters are not records: the port only
    /// adds to them).
    pub fn counter(&self, key: &RecordKey) -> Option<(i64, Option<Timestamp>)> {
        self.lock().ok().and_then(|data| data.counters.get(&key_of(key)).copied())
    }
}

#[async_trait]
impl RecordStore for MemoryStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self.lock()?.records.get(&key_of(key)).cloned())
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        let mut data = self.lock()?;
        if !may_put(data.records.get(&key_of(key)), record.version) {
            return Err(StoreError::Conflict);
        }
        data.records.insert(key_of(key), record.clone());
        Ok(())
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        let mut data = self.lock()?;
        if !may_delete(data.records.get(&key_of(key)), version) {
            return Err(StoreError::Conflict);
        }
        data.records.remove(&key_of(key));
        Ok(())
    }

    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        validate_keys(&[keys, counters].concat())?;
        let data = self.lock()?;
        let records = keys.iter().map(|k| data.records.get(&key_of(k)).cloned()).collect();
        let values = counters.iter().map(|k| data.counters.get(&key_of(k)).map_or(0, |c| c.0)).collect();
        Ok((records, values))
    }

    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        validate_writes(writes)?;
        let mut data = self.lock()?;
        let allowed = writes.iter().all(|w| match w {
            Write::Put { key, record } => may_put(data.records.get(&key_of(key)), record.version),
            Write::Delete { key, version } => may_delete(data.records.get(&key_of(key)), *version),
            Write::Check { key, version } => data.records.get(&key_of(key)).map_or(0, |r| r.version) == *version,
            Write::Count { key, by, most, .. } => most.is_none_or(|most| {
                let value = data.counters.get(&key_of(key)).map_or(0, |c| c.0);
                value.checked_add(*by).is_some_and(|new| new <= most)
            }),
        });
        if !allowed {
            return Err(StoreError::Conflict);
        }
        // A counter that would overflow fails the batch before anything is written.
        let mut counted = Vec::new();
        for w in writes {
            if let Write::Count { key, by, expires_at, .. } = w {
                let (value, expiry) = data.counters.get(&key_of(key)).copied().unwrap_or((0, *expires_at));
                let value = value.checked_add(*by).ok_or_else(|| unavailable("a counter overflowed"))?;
                counted.push((key_of(key), (value, expiry.or(*expires_at))));
            }
        }
        for w in writes {
            match w {
                Write::Put { key, record } => {
                    data.records.insert(key_of(key), record.clone());
                }
                Write::Delete { key, .. } => {
                    data.records.remove(&key_of(key));
                }
                Write::Check { .. } | Write::Count { .. } => {}
            }
        }
        data.counters.extend(counted);
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        query.validate()?;
        let data = self.lock()?;
        table_page(&data.records, query)
    }

    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        let Index::ReconfirmDue = index;
        query.validate()?;
        let after = match &query.after {
            None => None,
            Some(cursor) => match cursor.end()? {
                PageEnd::Index { ipk, isk, pk, sk } if ipk == query.partition => Some((isk, pk, sk)),
                _ => return Err(unavailable("a cursor of another query")),
            },
        };
        let data = self.lock()?;
        let mut rows: Vec<(String, String, String)> = data
            .records
            .iter()
            .filter_map(|((pk, sk), r)| match &r.index {
                Some(i) if i.pk == query.partition && query.sort.matches(&i.sk) => {
                    Some((i.sk.clone(), pk.clone(), sk.clone()))
                }
                _ => None,
            })
            .filter(|row| match &after {
                None => true,
                Some(after) if query.descending => row < after,
                Some(after) => row > after,
            })
            .collect();
        rows.sort();
        if query.descending {
            rows.reverse();
        }
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let next = match rows.last() {
            Some((isk, pk, sk)) if more => Some(
                PageEnd::Index { ipk: query.partition.clone(), isk: isk.clone(), pk: pk.clone(), sk: sk.clone() }
                    .cursor(),
            ),
            _ => None,
        };
        let items = rows
            .into_iter()
            .map(|(isk, pk, sk)| (RecordKey { pk, sk }, IndexKey { pk: query.partition.clone(), sk: isk }))
            .collect();
        Ok(Page { items, next })
    }

    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        query.validate()?;
        let data = self.lock()?;
        let page = table_page(&data.counters, query)?;
        Ok(Page { items: page.items.into_iter().map(|(key, (value, _))| (key, value)).collect(), next: page.next })
    }

    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        let mut data = self.lock()?;
        let counter = data.counters.entry(key_of(key)).or_insert((0, expires_at));
        counter.0 = counter.0.checked_add(by).ok_or_else(|| unavailable("a counter overflowed"))?;
        if counter.1.is_none() {
            counter.1 = expires_at;
        }
        Ok(counter.0)
    }
}

#[derive(Default)]
struct Faults {
    failing_writes: AtomicUsize,
    down: AtomicBool,
}

/// Wraps a store to lose races or be down on demand. Clones share the faults.
#[derive(Clone)]
pub struct FaultyStore<S> {
    inner: S,
    faults: Arc<Faults>,
}

impl<S: RecordStore> FaultyStore<S> {
    /// `inner`, without faults until asked.
    pub fn new(inner: S) -> Self {
        Self { inner, faults: Arc::default() }
    }

    /// The store underneath, without faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The next `n` calls of `put`, `delete` or `write_all` answer [`StoreError::Conflict`]
    /// without writing, as if someone else had written first.
    pub fn fail_next_writes(&self, n: usize) {
        self.faults.failing_writes.store(n, Ordering::SeqCst);
    }

    /// While `down`, every call answers [`StoreError::Unavailable`].
    pub fn unavailable(&self, down: bool) {
        self.faults.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.faults.down.load(Ordering::SeqCst) {
            return Err(unavailable("the store is down (as the test asked)"));
        }
        Ok(())
    }

    fn check_write(&self) -> Result<(), StoreError> {
        self.check()?;
        let failing = &self.faults.failing_writes;
        if failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }
}

#[async_trait]
impl<S: RecordStore> RecordStore for FaultyStore<S> {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        self.check()?;
        self.inner.get(key).await
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        self.check_write()?;
        self.inner.put(key, record).await
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        self.check_write()?;
        self.inner.delete(key, version).await
    }

    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<StoredRecord>>, StoreError> {
        self.check()?;
        self.inner.get_many(keys).await
    }

    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        self.check()?;
        self.inner.get_with_counters(keys, counters).await
    }

    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.check_write()?;
        self.inner.write_all(writes).await
    }

    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        self.check()?;
        self.inner.query(query).await
    }

    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        self.check()?;
        self.inner.query_index(index, query).await
    }

    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        self.check()?;
        self.inner.query_counters(query).await
    }

    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        self.check()?;
        self.inner.add_to_counter(key, by, expires_at).await
    }
}

/// How many times each operation of a [`CountingStore`] was called; every call is one round trip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// Calls of [`RecordStore::get`].
    pub get: usize,
    /// Calls of [`RecordStore::get_many`] and of [`RecordStore::get_with_counters`].
    pub get_many: usize,
    /// Calls of [`RecordStore::put`].
    pub put: usize,
    /// Calls of [`RecordStore::delete`].
    pub delete: usize,
    /// Calls of [`RecordStore::write_all`].
    pub write_all: usize,
    /// Calls of [`RecordStore::query`].
    pub query: usize,
    /// Calls of [`RecordStore::query_index`].
    pub query_index: usize,
    /// Calls of [`RecordStore::query_counters`].
    pub query_counters: usize,
    /// Calls of [`RecordStore::add_to_counter`].
    pub add_to_counter: usize,
    /// Records returned by `get`, `get_many` and `query` (not a round trip: what was read).
    pub records_read: usize,
    /// Entries returned by `query_index`.
    pub index_entries_read: usize,
}

impl StoreCalls {
    /// Every call, whatever the operation: the round trips made.
    pub fn total(&self) -> usize {
        self.get
            + self.get_many
            + self.put
            + self.delete
            + self.write_all
            + self.query
            + self.query_index
            + self.query_counters
            + self.add_to_counter
    }
}

/// Wraps a store to count its calls per operation. Clones share the counts.
#[derive(Clone)]
pub struct CountingStore<S> {
    inner: S,
    calls: Arc<Mutex<StoreCalls>>,
}

impl<S: RecordStore> CountingStore<S> {
    /// `inner`, with every count at zero.
    pub fn new(inner: S) -> Self {
        Self { inner, calls: Arc::default() }
    }

    /// The store underneath, whose calls are not counted.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The calls so far (since the last [`CountingStore::reset`]).
    pub fn calls(&self) -> StoreCalls {
        self.calls.lock().map(|c| *c).unwrap_or_else(|poisoned| *poisoned.into_inner())
    }

    /// Starts counting again from zero.
    pub fn reset(&self) {
        *self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = StoreCalls::default();
    }

    fn count(&self, which: impl FnOnce(&mut StoreCalls) -> &mut usize) {
        self.add(which, 1);
    }

    fn add(&self, which: impl FnOnce(&mut StoreCalls) -> &mut usize, n: usize) {
        *which(&mut self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())) += n;
    }
}

#[async_trait]
impl<S: RecordStore> RecordStore for CountingStore<S> {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        self.count(|c| &mut c.get);
        let got = self.inner.get(key).await?;
        self.add(|c| &mut c.records_read, usize::from(got.is_some()));
        Ok(got)
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        self.count(|c| &mut c.put);
        self.inner.put(key, record).await
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        self.count(|c| &mut c.delete);
        self.inner.delete(key, version).await
    }

    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<StoredRecord>>, StoreError> {
        self.count(|c| &mut c.get_many);
        let got = self.inner.get_many(keys).await?;
        self.add(|c| &mut c.records_read, got.iter().flatten().count());
        Ok(got)
    }

    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        self.count(|c| &mut c.get_many);
        let got = self.inner.get_with_counters(keys, counters).await?;
        self.add(|c| &mut c.records_read, got.0.iter().flatten().count());
        Ok(got)
    }

    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.count(|c| &mut c.write_all);
        self.inner.write_all(writes).await
    }

    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        self.count(|c| &mut c.query);
        let page = self.inner.query(query).await?;
        self.add(|c| &mut c.records_read, page.items.len());
        Ok(page)
    }

    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        self.count(|c| &mut c.query_index);
        let page = self.inner.query_index(index, query).await?;
        self.add(|c| &mut c.index_entries_read, page.items.len());
        Ok(page)
    }

    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        self.count(|c| &mut c.query_counters);
        self.inner.query_counters(query).await
    }

    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        self.count(|c| &mut c.add_to_counter);
        self.inner.add_to_counter(key, by, expires_at).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ports::SortKeys;

    fn key(pk: &str, sk: &str) -> RecordKey {
        RecordKey { pk: pk.into(), sk: sk.into() }
    }

    fn record(version: u64, n: i64) -> StoredRecord {
        let serde_json::Value::Object(body) = json!({ "n": n }) else { unreachable!() };
        StoredRecord { version, expires_at: None, index: None, body }
    }

    #[tokio::test]
    async fn memory_store_clones_share_the_data() {
        let store = MemoryStore::new();
        store.clone().put(&key("A", "1"), &record(1, 1)).await.expect("put");
        assert_eq!(store.get(&key("A", "1")).await.expect("get"), Some(record(1, 1)));
        assert_eq!(store.records().len(), 1);
    }

    #[tokio::test]
    async fn faulty_store_loses_the_next_writes_without_writing() {
        let store = FaultyStore::new(MemoryStore::new());
        store.fail_next_writes(2);
        assert!(matches!(store.put(&key("A", "1"), &record(1, 1)).await, Err(StoreError::Conflict)));
        let write = Write::Put { key: key("A", "2"), record: record(1, 2) };
        assert!(matches!(store.write_all(std::slice::from_ref(&write)).await, Err(StoreError::Conflict)));
        assert!(store.inner().records().is_empty(), "a failed write writes nothing");
        // Reads and counters are not writes: they pass while writes fail.
        store.fail_next_writes(1);
        assert_eq!(store.get(&key("A", "1")).await.expect("get"), None);
        assert_eq!(store.add_to_counter(&key("C", "1"), 2, None).await.expect("counter"), 2);
        assert!(matches!(store.delete(&key("A", "1"), 1).await, Err(StoreError::Conflict)));
        // Then writes go through again.
        store.put(&key("A", "1"), &record(1, 1)).await.expect("put");
        store.write_all(&[write]).await.expect("write_all");
        assert_eq!(store.inner().records().len(), 2);
    }

    #[tokio::test]
    async fn faulty_store_down_answers_unavailable_to_every_call() {
        let store = FaultyStore::new(MemoryStore::new());
        store.put(&key("A", "1"), &record(1, 1)).await.expect("put");
        store.unavailable(true);
        let query = Query { partition: "A".into(), sort: SortKeys::All, descending: false, limit: 10, after: None };
        let down = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Unavailable(_)));
        assert!(down(store.get(&key("A", "1")).await.map(drop)));
        assert!(down(store.get_many(&[key("A", "1")]).await.map(drop)));
        assert!(down(store.put(&key("A", "1"), &record(2, 2)).await));
        assert!(down(store.delete(&key("A", "1"), 1).await));
        assert!(down(store.write_all(&[]).await));
        assert!(down(store.query(&query).await.map(drop)));
        assert!(down(store.query_index(Index::ReconfirmDue, &query).await.map(drop)));
        assert!(down(store.query_counters(&query).await.map(drop)));
        assert!(down(store.add_to_counter(&key("C", "1"), 1, None).await.map(drop)));
        store.unavailable(false);
        assert_eq!(store.get(&key("A", "1")).await.expect("get"), Some(record(1, 1)), "nothing changed");
    }

    #[tokio::test]
    async fn counting_store_counts_each_call_once() {
        let store = CountingStore::new(MemoryStore::new());
        let query = Query { partition: "A".into(), sort: SortKeys::All, descending: false, limit: 10, after: None };
        store.put(&key("A", "1"), &record(1, 1)).await.expect("put");
        store.get(&key("A", "1")).await.expect("get");
        store.get_many(&[key("A", "1"), key("A", "2")]).await.expect("get_many");
        store.write_all(&[Write::Put { key: key("A", "2"), record: record(1, 2) }]).await.expect("write_all");
        store.query(&query).await.expect("query");
        store.query_index(Index::ReconfirmDue, &query).await.expect("query_index");
        store.query_counters(&query).await.expect("query_counters");
        store.add_to_counter(&key("C", "1"), 1, None).await.expect("counter");
        store.delete(&key("A", "1"), 1).await.expect("delete");
        // A refused call is still a call.
        assert!(store.put(&key("A", "2"), &record(1, 2)).await.is_err());
        let calls = store.calls();
        assert_eq!(
            calls,
            StoreCalls {
                get: 1,
                get_many: 1,
                put: 2,
                delete: 1,
                write_all: 1,
                query: 1,
                query_index: 1,
                query_counters: 1,
                add_to_counter: 1,
                records_read: calls.records_read,
                index_entries_read: calls.index_entries_read,
            }
        );
        assert_eq!(calls.total(), 10);
        store.reset();
        assert_eq!(store.calls().total(), 0);
        store.clone().get(&key("A", "2")).await.expect("get");
        assert_eq!(store.calls().get, 1, "clones share the counts");
    }
}
