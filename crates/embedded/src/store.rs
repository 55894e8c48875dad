//! The embedded store: the single table as one SQLite file, with the same conditional-write
//! semantics as the DynamoDB adapter.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use sspr_core::ports::{RecordKey, RecordStore, StoreError, StoredRecord, Unavailable};
use sspr_core::types::Timestamp;

#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Mutex<Connection>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(Unavailable::new(format!("embedded store: {e}")))
}

impl SqliteStore {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Self, Unavailable> {
        let conn = Connection::open(path).map_err(|e| Unavailable::new(format!("{}: {e}", path.display())))?;
        Self::init(conn)
    }

    /// A store that lives only as long as the value (for tests).
    pub fn in_memory() -> Result<Self, Unavailable> {
        Self::init(Connection::open_in_memory().map_err(Unavailable::new)?)
    }

    fn init(conn: Connection) -> Result<Self, Unavailable> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS records (
                 pk TEXT NOT NULL,
                 sk TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 expires_at INTEGER,
                 body TEXT NOT NULL,
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;",
        )
        .map_err(Unavailable::new)?;
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
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        let key = key.clone();
        self.with_db(move |conn| {
            let row: Option<(i64, Option<i64>, String)> = conn
                .query_row(
                    "SELECT version, expires_at, body FROM records WHERE pk = ?1 AND sk = ?2",
                    params![key.pk, key.sk],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(unavailable)?;
            let Some((version, expires_at, body)) = row else {
                return Ok(None);
            };
            let body = match serde_json::from_str(&body).map_err(unavailable)? {
                serde_json::Value::Object(map) => map,
                _ => return Err(unavailable("a record body is not an object")),
            };
            Ok(Some(StoredRecord {
                version: u64::try_from(version).map_err(unavailable)?,
                expires_at: expires_at.map(Timestamp),
                body,
            }))
        })
        .await
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        let key = key.clone();
        let version = i64::try_from(record.version).map_err(unavailable)?;
        let expires_at = record.expires_at.map(|t| t.0);
        let body = serde_json::Value::Object(record.body.clone()).to_string();
        self.with_db(move |conn| {
            let changed = if version == 1 {
                conn.execute(
                    "INSERT INTO records (pk, sk, version, expires_at, body) VALUES (?1, ?2, 1, ?3, ?4)
                     ON CONFLICT (pk, sk) DO NOTHING",
                    params![key.pk, key.sk, expires_at, body],
                )
            } else {
                conn.execute(
                    "UPDATE records SET version = ?3, expires_at = ?4, body = ?5
                     WHERE pk = ?1 AND sk = ?2 AND version = ?6",
                    params![key.pk, key.sk, version, expires_at, body, version - 1],
                )
            }
            .map_err(unavailable)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        })
        .await
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        let key = key.clone();
        let version = i64::try_from(version).map_err(unavailable)?;
        self.with_db(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            let current: Option<i64> = tx
                .query_row("SELECT version FROM records WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            match current {
                None => Ok(()),
                Some(v) if v == version => {
                    tx.execute("DELETE FROM records WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk])
                        .map_err(unavailable)?;
                    tx.commit().map_err(unavailable)
                }
                Some(_) => Err(StoreError::Conflict),
            }
        })
        .await
    }
}
