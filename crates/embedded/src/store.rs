//! The embedded store: the single table as one SQLite file, with the same conditional-write
//! semantics as the DynamoDB adapter. The secondary index is a pair of nullable columns with an
//! SQLite index on them; counters have a table of their own.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use sspr_core::ports::{
    validate_keys, validate_writes, Index, IndexKey, Page, PageEnd, Query, RecordKey, RecordStore, SortKeys,
    StoreError, StoredRecord, Unavailable, Write,
};
use sspr_core::types::Timestamp;

#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Mutex<Connection>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(Unavailable::new(format!("embedded store: {e}")))
}

/// The columns a record is read from, in the order [`read_record`] expects them.
const RECORD_COLUMNS: &str = "version, expires_at, body, gsi1pk, gsi1sk";

/// A record from the columns of [`RECORD_COLUMNS`], starting at column `at`.
fn read_record(row: &rusqlite::Row<'_>, at: usize) -> Result<StoredRecord, StoreError> {
    let version: i64 = row.get(at).map_err(unavailable)?;
    let expires_at: Option<i64> = row.get(at + 1).map_err(unavailable)?;
    let body: String = row.get(at + 2).map_err(unavailable)?;
    let index_pk: Option<String> = row.get(at + 3).map_err(unavailable)?;
    let index_sk: Option<String> = row.get(at + 4).map_err(unavailable)?;
    let body = match serde_json::from_str(&body).map_err(unavailable)? {
        serde_json::Value::Object(map) => map,
        _ => return Err(unavailable("a record body is not an object")),
    };
    let index = match (index_pk, index_sk) {
        (Some(pk), Some(sk)) => Some(IndexKey { pk, sk }),
        (None, None) => None,
        _ => return Err(unavailable("a record has half an index key")),
    };
    Ok(StoredRecord {
        version: u64::try_from(version).map_err(unavailable)?,
        expires_at: expires_at.map(Timestamp),
        index,
        body,
    })
}

/// Writes `record` if its version follows the stored one; `false` (nothing written) otherwise.
fn put_record(conn: &Connection, key: &RecordKey, record: &StoredRecord) -> Result<bool, StoreError> {
    let version = i64::try_from(record.version).map_err(unavailable)?;
    let expires_at = record.expires_at.map(|t| t.0);
    let body = serde_json::Value::Object(record.body.clone()).to_string();
    let (index_pk, index_sk) = match &record.index {
        Some(i) => (Some(&i.pk), Some(&i.sk)),
        None => (None, None),
    };
    let changed = if version == 1 {
        conn.execute(
            "INSERT INTO records (pk, sk, version, expires_at, body, gsi1pk, gsi1sk) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6)
             ON CONFLICT (pk, sk) DO NOTHING",
            params![key.pk, key.sk, expires_at, body, index_pk, index_sk],
        )
    } else {
        conn.execute(
            "UPDATE records SET version = ?3, expires_at = ?4, body = ?5, gsi1pk = ?6, gsi1sk = ?7
             WHERE pk = ?1 AND sk = ?2 AND version = ?8",
            params![key.pk, key.sk, version, expires_at, body, index_pk, index_sk, version - 1],
        )
    }
    .map_err(unavailable)?;
    Ok(changed == 1)
}

/// Removes the record if it is at `version` or already gone; `false` (nothing removed) otherwise.
/// The version of the record at `key`; 0 when there is none.
fn record_version(conn: &Connection, key: &RecordKey) -> Result<u64, StoreError> {
    let version: Option<i64> = conn
        .query_row("SELECT version FROM records WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk], |r| r.get(0))
        .optional()
        .map_err(unavailable)?;
    version.map_or(Ok(0), |v| u64::try_from(v).map_err(unavailable))
}

fn delete_record(conn: &Connection, key: &RecordKey, version: u64) -> Result<bool, StoreError> {
    let version = i64::try_from(version).map_err(unavailable)?;
    let removed = conn
        .execute("DELETE FROM records WHERE pk = ?1 AND sk = ?2 AND version = ?3", params![key.pk, key.sk, version])
        .map_err(unavailable)?;
    if removed == 1 {
        return Ok(true);
    }
    let present = conn
        .query_row("SELECT 1 FROM records WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk], |_| Ok(()))
        .optional()
        .map_err(unavailable)?;
    Ok(present.is_none())
}

/// Adds `by` to the counter at `key`, creating it at 0 (with `expires_at`) first, and keeps the
/// first expiry given; the new value.
fn count(conn: &Connection, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
    let value: rusqlite::types::Value = conn
        .query_row(
            "INSERT INTO counters (pk, sk, value, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (pk, sk) DO UPDATE SET
                 value = value + excluded.value,
                 expires_at = COALESCE(expires_at, excluded.expires_at)
             RETURNING value",
            params![key.pk, key.sk, by, expires_at.map(|t| t.0)],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    match value {
        rusqlite::types::Value::Integer(n) => Ok(n),
        _ => Err(unavailable("a counter overflowed")),
    }
}

/// The `WHERE … ORDER BY … LIMIT …` of a query of records or of counters (by `pk`/`sk`), with
/// its values: the rows after its cursor, in its order, one more than its limit.
fn table_conditions(query: &Query) -> Result<(String, Vec<String>), StoreError> {
    let mut values = vec![query.partition.clone()];
    let mut conditions = vec!["pk = ?1".to_owned()];
    conditions.extend(sort_conditions("sk", &query.sort, &mut values));
    if let Some(cursor) = &query.after {
        let PageEnd::Table { pk, sk } = cursor.end()? else {
            return Err(unavailable("a cursor of another query"));
        };
        if pk != query.partition {
            return Err(unavailable("a cursor of another query"));
        }
        values.push(sk);
        conditions.push(format!("sk {} ?{}", if query.descending { "<" } else { ">" }, values.len()));
    }
    let tail = format!(
        "WHERE {} ORDER BY sk {} LIMIT {}",
        conditions.join(" AND "),
        if query.descending { "DESC" } else { "ASC" },
        query.limit + 1
    );
    Ok((tail, values))
}

/// The page of `items` read for `query` (at most one more than its limit): the extra one only
/// says there is a next page.
fn table_page<T>(query: &Query, mut items: Vec<(RecordKey, T)>) -> Page<(RecordKey, T)> {
    let more = items.len() > query.limit;
    items.truncate(query.limit);
    let next = match items.last() {
        Some((key, _)) if more => Some(PageEnd::Table { pk: key.pk.clone(), sk: key.sk.clone() }.cursor()),
        _ => None,
    };
    Page { items, next }
}

/// The smallest text after every text that starts with `prefix` (`None`: there is none), so a
/// prefix is read as a range of the SQLite index. Texts compare as their UTF-8 bytes, that is
/// as their code points.
fn after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The SQL conditions on `column` for `sort`, appending their values to `values`.
fn sort_conditions(column: &str, sort: &SortKeys, values: &mut Vec<String>) -> Vec<String> {
    let mut bound = |op: &str, value: &str| {
        values.push(value.to_owned());
        format!("{column} {op} ?{}", values.len())
    };
    match sort {
        SortKeys::All => vec![],
        SortKeys::Prefix(prefix) => {
            let mut conditions = vec![bound(">=", prefix)];
            if let Some(end) = after_prefix(prefix) {
                conditions.push(bound("<", &end));
            }
            conditions
        }
        SortKeys::Between { from, to } => vec![bound(">=", from), bound("<=", to)],
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Self, Unavailable> {
        let failed = |e: &dyn std::fmt::Display| Unavailable::new(format!("{}: {e}", path.display()));
        // Made readable by its owner only, whatever the umask; SQLite gives its WAL and shared
        // memory files the database file's permissions.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(|e| failed(&e))?;
        let conn = Connection::open(path).map_err(|e| failed(&e))?;
        Self::init(conn)
    }

    /// A store that lives only as long as the value (for tests).
    pub fn in_memory() -> Result<Self, Unavailable> {
        Self::init(Connection::open_in_memory().map_err(Unavailable::new)?)
    }

    /// Creates the tables, or brings those of an earlier version up to date, keeping their rows.
    fn init(mut conn: Connection) -> Result<Self, Unavailable> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;",
        )
        .map_err(Unavailable::new)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(Unavailable::new)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                 pk TEXT NOT NULL,
                 sk TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 expires_at INTEGER,
                 body TEXT NOT NULL,
                 gsi1pk TEXT,
                 gsi1sk TEXT,
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;",
        )
        .map_err(Unavailable::new)?;
        // Files written before the secondary index lack its columns.
        let columns: Vec<String> = tx
            .prepare("SELECT name FROM pragma_table_info('records')")
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
            .map_err(Unavailable::new)?;
        for column in ["gsi1pk", "gsi1sk"] {
            if !columns.iter().any(|c| c == column) {
                tx.execute_batch(&format!("ALTER TABLE records ADD COLUMN {column} TEXT;"))
                    .map_err(Unavailable::new)?;
            }
        }
        tx.execute_batch(
            "CREATE INDEX IF NOT EXISTS records_reconfirm_due ON records (gsi1pk, gsi1sk);
             CREATE TABLE IF NOT EXISTS counters (
                 pk TEXT NOT NULL,
                 sk TEXT NOT NULL,
                 value INTEGER NOT NULL,
                 expires_at INTEGER,
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;",
        )
        .map_err(Unavailable::new)?;
        tx.commit().map_err(Unavailable::new)?;
        Ok(Self { db: Arc::new(Mutex::new(conn)) })
    }

    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut conn = db.lock().map_err(|_| unavailable("a writer panicked"))?;
            f(&mut conn)
        })
        .await
        .map_err(unavailable)?
    }

    /// Every stored row as `(pk, sk, body)`, for tests that check nothing secret is kept in clear.
    pub async fn dump(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with_db(|conn| {
            let mut stmt = conn.prepare("SELECT pk, sk, body FROM records").map_err(unavailable)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }

    /// The value and expiry of the counter at `key`, for tests and inspection (counters are not
    /// records: the port only adds to them).
    pub async fn counter(&self, key: &RecordKey) -> Result<Option<(i64, Option<Timestamp>)>, StoreError> {
        let key = key.clone();
        self.with_db(move |conn| {
            conn.query_row(
                "SELECT value, expires_at FROM counters WHERE pk = ?1 AND sk = ?2",
                params![key.pk, key.sk],
                |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.map(Timestamp))),
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        let key = key.clone();
        self.with_db(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE pk = ?1 AND sk = ?2"))
                .map_err(unavailable)?;
            let mut rows = stmt.query(params![key.pk, key.sk]).map_err(unavailable)?;
            match rows.next().map_err(unavailable)? {
                Some(row) => read_record(row, 0).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        let (key, record) = (key.clone(), record.clone());
        self.with_db(move |conn| if put_record(conn, &key, &record)? { Ok(()) } else { Err(StoreError::Conflict) })
            .await
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        let key = key.clone();
        self.with_db(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            if !delete_record(&tx, &key, version)? {
                return Err(StoreError::Conflict);
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        validate_keys(&[keys, counters].concat())?;
        let (keys, counters) = (keys.to_vec(), counters.to_vec());
        self.with_db(move |conn| {
            // One read transaction: the records and counters as they stood at one moment.
            let tx = conn.transaction().map_err(unavailable)?;
            let mut found = Vec::with_capacity(keys.len());
            let mut values = Vec::with_capacity(counters.len());
            {
                let mut stmt = tx
                    .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE pk = ?1 AND sk = ?2"))
                    .map_err(unavailable)?;
                for key in &keys {
                    let mut rows = stmt.query(params![key.pk, key.sk]).map_err(unavailable)?;
                    found.push(match rows.next().map_err(unavailable)? {
                        Some(row) => Some(read_record(row, 0)?),
                        None => None,
                    });
                }
                let mut stmt =
                    tx.prepare_cached("SELECT value FROM counters WHERE pk = ?1 AND sk = ?2").map_err(unavailable)?;
                for key in &counters {
                    let value = stmt.query_row(params![key.pk, key.sk], |r| r.get::<_, i64>(0)).optional();
                    values.push(value.map_err(unavailable)?.unwrap_or(0));
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok((found, values))
        })
        .await
    }

    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        validate_writes(writes)?;
        let writes = writes.to_vec();
        self.with_db(move |conn| {
            // Dropping the transaction on the first failed condition rolls every write back.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            for write in &writes {
                let done = match write {
                    Write::Put { key, record } => put_record(&tx, key, record)?,
                    Write::Delete { key, version } => delete_record(&tx, key, *version)?,
                    Write::Check { key, version } => record_version(&tx, key)? == *version,
                    // Without a limit, a counter only fails the batch when the store does.
                    Write::Count { key, by, expires_at, most } => {
                        let value = count(&tx, key, *by, *expires_at)?;
                        most.is_none_or(|most| value <= most)
                    }
                };
                if !done {
                    return Err(StoreError::Conflict);
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        query.validate()?;
        let query = query.clone();
        self.with_db(move |conn| {
            let (tail, values) = table_conditions(&query)?;
            let mut stmt = conn
                .prepare_cached(&format!("SELECT sk, {RECORD_COLUMNS} FROM records {tail}"))
                .map_err(unavailable)?;
            let mut rows = stmt.query(params_from_iter(&values)).map_err(unavailable)?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let sk: String = row.get(0).map_err(unavailable)?;
                items.push((RecordKey { pk: query.partition.clone(), sk }, read_record(row, 1)?));
            }
            Ok(table_page(&query, items))
        })
        .await
    }

    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        let Index::ReconfirmDue = index;
        query.validate()?;
        let query = query.clone();
        self.with_db(move |conn| {
            let mut values = vec![query.partition.clone()];
            let mut conditions = vec!["gsi1pk = ?1".to_owned()];
            conditions.extend(sort_conditions("gsi1sk", &query.sort, &mut values));
            if let Some(cursor) = &query.after {
                let PageEnd::Index { ipk, isk, pk, sk } = cursor.end()? else {
                    return Err(unavailable("a cursor of another query"));
                };
                if ipk != query.partition {
                    return Err(unavailable("a cursor of another query"));
                }
                let n = values.len();
                values.extend([isk, pk, sk]);
                let op = if query.descending { "<" } else { ">" };
                conditions.push(format!("(gsi1sk, pk, sk) {op} (?{}, ?{}, ?{})", n + 1, n + 2, n + 3));
            }
            let order = if query.descending { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT pk, sk, gsi1sk FROM records WHERE {} ORDER BY gsi1sk {order}, pk {order}, sk {order} LIMIT {}",
                conditions.join(" AND "),
                query.limit + 1
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            let mut rows = stmt
                .query_map(params_from_iter(&values), |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<(String, String, String)>, _>>()
                .map_err(unavailable)?;
            let more = rows.len() > query.limit;
            rows.truncate(query.limit);
            let next = match rows.last() {
                Some((pk, sk, isk)) if more => Some(
                    PageEnd::Index { ipk: query.partition.clone(), isk: isk.clone(), pk: pk.clone(), sk: sk.clone() }
                        .cursor(),
                ),
                _ => None,
            };
            let items = rows
                .into_iter()
                .map(|(pk, sk, isk)| (RecordKey { pk, sk }, IndexKey { pk: query.partition.clone(), sk: isk }))
                .collect();
            Ok(Page { items, next })
        })
        .await
    }

    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        query.validate()?;
        let query = query.clone();
        self.with_db(move |conn| {
            let (tail, values) = table_conditions(&query)?;
            let mut stmt =
                conn.prepare_cached(&format!("SELECT sk, value FROM counters {tail}")).map_err(unavailable)?;
            let items = stmt
                .query_map(params_from_iter(&values), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(unavailable)?
                .map(|row| row.map(|(sk, value)| (RecordKey { pk: query.partition.clone(), sk }, value)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(table_page(&query, items))
        })
        .await
    }

    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        let key = key.clone();
        self.with_db(move |conn| count(conn, &key, by, expires_at)).await
    }
}

#[cfg(test)]
mod tests {
    use sspr_core::ports::SortKeys;

    use super::*;

    /// A store file as versions before the secondary index and counters wrote it.
    fn old_file(path: &Path) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE records (
                 pk TEXT NOT NULL,
                 sk TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 expires_at INTEGER,
                 body TEXT NOT NULL,
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;
             INSERT INTO records VALUES ('USER#alice', 'REGISTRATION', 3, NULL, '{\"methods\":[]}');
             INSERT INTO records VALUES ('SESSION#ab', 'SESSION', 1, 1900000000, '{\"state\":\"started\"}');",
        )
        .expect("old schema");
    }

    #[tokio::test]
    async fn files_of_earlier_versions_open_and_keep_their_records() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sspr.db");
        old_file(&path);
        let store = SqliteStore::open(&path).expect("an old file opens");
        let alice = RecordKey { pk: "USER#alice".into(), sk: "REGISTRATION".into() };
        let read = store.get(&alice).await.expect("get").expect("kept");
        assert_eq!((read.version, read.index, read.body["methods"].clone()), (3, None, serde_json::json!([])));
        let session = RecordKey { pk: "SESSION#ab".into(), sk: "SESSION".into() };
        assert_eq!(store.get(&session).await.expect("get").and_then(|r| r.expires_at), Some(Timestamp(1_900_000_000)));

        // The new columns and tables work on the migrated file, and it opens again unchanged.
        let listed = StoredRecord {
            version: 4,
            index: Some(IndexKey { pk: "RECONFIRM".into(), sk: "2027-01-01".into() }),
            ..read
        };
        store.put(&alice, &listed).await.expect("update with an index key");
        assert_eq!(store.add_to_counter(&alice, 2, None).await.expect("counter"), 2);
        drop(store);
        let store = SqliteStore::open(&path).expect("a migrated file opens again");
        assert_eq!(store.get(&alice).await.expect("get"), Some(listed));
        let query =
            Query { partition: "RECONFIRM".into(), sort: SortKeys::All, descending: false, limit: 10, after: None };
        let page = store.query_index(Index::ReconfirmDue, &query).await.expect("query_index");
        assert_eq!(page.items, vec![(alice.clone(), IndexKey { pk: "RECONFIRM".into(), sk: "2027-01-01".into() })]);
        assert_eq!(store.add_to_counter(&alice, 0, None).await.expect("counter"), 2);
        assert_eq!(store.dump().await.expect("dump").len(), 2);
    }

    #[test]
    fn prefixes_end_before_the_next_text() {
        assert_eq!(after_prefix("AUDIT#"), Some("AUDIT$".into()));
        assert_eq!(after_prefix("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(after_prefix("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(after_prefix("\u{10FFFF}"), None);
        assert_eq!(after_prefix(""), None);
    }
}
