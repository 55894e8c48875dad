//! The store on DynamoDB: one table, `pk`/`sk` keys, a numeric `version` for conditional
//! writes, `expires_at` as the TTL attribute, the record itself under `body`, and `gsi1pk` /
//! `gsi1sk` for the records listed in the `reconfirm-due` index. Counters are items of their
//! own with a numeric `count` and no body.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use sspr_core::ports::{
    validate_keys, validate_writes, Cursor, Index, IndexKey, Page, PageEnd, Query, RecordKey, RecordStore, SortKeys,
    StoreError, StoredRecord, Unavailable, Write,
};
use sspr_core::types::Timestamp;

use crate::describe;

/// The attribute a counter keeps its value in (a reserved word: always through `#count`).
const COUNT: &str = "count";

/// How many times a batch read asks again for the keys DynamoDB left unprocessed.
const BATCH_RETRIES: u32 = 6;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(Unavailable::new(format!("dynamodb: {e}")))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn key_item(key: &RecordKey) -> Item {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

fn string(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(unavailable(format!("attribute {name} is not a string"))),
    }
}

fn required_string(item: &Item, name: &str) -> Result<String, StoreError> {
    string(item, name)?.ok_or_else(|| unavailable(format!("an item has no {name}")))
}

fn number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n.parse().map(Some).map_err(unavailable),
        Some(_) => Err(unavailable(format!("attribute {name} is not a number"))),
    }
}

fn item_key(item: &Item) -> Result<RecordKey, StoreError> {
    Ok(RecordKey { pk: required_string(item, "pk")?, sk: required_string(item, "sk")? })
}

/// The record an item holds; `None` for a counter, which is not a record.
fn read_record(item: &Item) -> Result<Option<StoredRecord>, StoreError> {
    let Some(body) = item.get("body") else {
        return if item.contains_key(COUNT) { Ok(None) } else { Err(unavailable("a record has no body")) };
    };
    let version = number(item, "version")?.ok_or_else(|| unavailable("a record has no version"))?;
    let expires_at = number(item, "expires_at")?.map(Timestamp);
    let index = match (string(item, "gsi1pk")?, string(item, "gsi1sk")?) {
        (Some(pk), Some(sk)) => Some(IndexKey { pk, sk }),
        (None, None) => None,
        _ => return Err(unavailable("a record has half an index key")),
    };
    let body: serde_json::Value = serde_dynamo::from_attribute_value(body.clone()).map_err(unavailable)?;
    let serde_json::Value::Object(body) = body else {
        return Err(unavailable("a record body is not a map"));
    };
    Ok(Some(StoredRecord { version: u64::try_from(version).map_err(unavailable)?, expires_at, index, body }))
}

/// The value of the counter an item holds; `None` for a record, which is not a counter.
fn read_counter(item: &Item) -> Result<Option<i64>, StoreError> {
    match number(item, COUNT)? {
        Some(value) => Ok(Some(value)),
        None if item.contains_key("body") => Ok(None),
        None => Err(unavailable("an item is neither a record nor a counter")),
    }
}

/// The update expression and values that add `by` to a counter, creating it at 0 first, and
/// give it `expires_at` unless it has an expiry (its names: `#count` for [`COUNT`]).
fn count_update(by: i64, expires_at: Option<Timestamp>) -> (&'static str, Item) {
    let mut values = HashMap::from([(":by".to_owned(), AttributeValue::N(by.to_string()))]);
    match expires_at {
        None => ("ADD #count :by", values),
        Some(at) => {
            values.insert(":exp".to_owned(), AttributeValue::N(at.0.to_string()));
            ("ADD #count :by SET expires_at = if_not_exists(expires_at, :exp)", values)
        }
    }
}

/// The whole item for a record: a put replaces every attribute, so a record written without
/// an index key leaves the index.
fn record_item(key: &RecordKey, record: &StoredRecord) -> Result<Item, StoreError> {
    let body: AttributeValue =
        serde_dynamo::to_attribute_value(serde_json::Value::Object(record.body.clone())).map_err(unavailable)?;
    let mut item = key_item(key);
    item.insert("version".to_owned(), AttributeValue::N(record.version.to_string()));
    item.insert("body".to_owned(), body);
    if let Some(at) = record.expires_at {
        item.insert("expires_at".to_owned(), AttributeValue::N(at.0.to_string()));
    }
    if let Some(index) = &record.index {
        item.insert("gsi1pk".to_owned(), s(&index.pk));
        item.insert("gsi1sk".to_owned(), s(&index.sk));
    }
    Ok(item)
}

/// The condition of a put, with its values: the record is new, or still at the version before.
fn put_condition(version: u64) -> (&'static str, Option<Item>) {
    if version <= 1 {
        ("attribute_not_exists(pk)", None)
    } else {
        (
            "version = :expected",
            Some(HashMap::from([(":expected".to_owned(), AttributeValue::N((version - 1).to_string()))])),
        )
    }
}

const DELETE_CONDITION: &str = "attribute_not_exists(pk) OR version = :expected";

fn delete_values(version: u64) -> Item {
    HashMap::from([(":expected".to_owned(), AttributeValue::N(version.to_string()))])
}

/// The `ExclusiveStartKey` to continue from, if the cursor's page end belongs to this query.
fn start_key(end: PageEnd, index: Option<Index>, partition: &str) -> Result<Item, StoreError> {
    match (end, index) {
        (PageEnd::Table { pk, sk }, None) if pk == partition => {
            Ok(HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(&sk))]))
        }
        (PageEnd::Index { ipk, isk, pk, sk }, Some(_)) if ipk == partition => Ok(HashMap::from([
            ("gsi1pk".to_owned(), s(&ipk)),
            ("gsi1sk".to_owned(), s(&isk)),
            ("pk".to_owned(), s(&pk)),
            ("sk".to_owned(), s(&sk)),
        ])),
        _ => Err(unavailable("a cursor of another query")),
    }
}

/// The page end DynamoDB reported as its last evaluated key.
fn page_end(key: &Item, index: Option<Index>) -> Result<PageEnd, StoreError> {
    let (pk, sk) = (required_string(key, "pk")?, required_string(key, "sk")?);
    Ok(match index {
        None => PageEnd::Table { pk, sk },
        Some(_) => {
            PageEnd::Index { ipk: required_string(key, "gsi1pk")?, isk: required_string(key, "gsi1sk")?, pk, sk }
        }
    })
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One page of a Query on the table (`index` `None`) or on an index, with key conditions
    /// only, so `Limit` counts exactly the items asked for.
    /// The items at `keys` (strongly consistent), read in one batch; keys the table left
    /// unprocessed are asked again, a little later each time.
    async fn batch_get(&self, keys: &[RecordKey]) -> Result<HashMap<RecordKey, Item>, StoreError> {
        let mut found: HashMap<RecordKey, Item> = HashMap::with_capacity(keys.len());
        let mut pending: Vec<Item> = keys.iter().map(key_item).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt > 0 {
                if attempt > BATCH_RETRIES {
                    return Err(unavailable(format!(
                        "{} keys still unread after {attempt} batch reads",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            attempt += 1;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| unavailable(describe(e)))?;
            for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                found.insert(item_key(&item)?, item);
            }
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        }
        Ok(found)
    }

    async fn query_page(&self, index: Option<Index>, query: &Query) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
        query.validate()?;
        let (pk, sk) = match index {
            None => ("pk", "sk"),
            Some(Index::ReconfirmDue) => ("gsi1pk", "gsi1sk"),
        };
        let mut condition = format!("{pk} = :p");
        let mut values = HashMap::from([(":p".to_owned(), s(&query.partition))]);
        // DynamoDB keys are never empty, and refuses empty texts in key conditions.
        match &query.sort {
            SortKeys::All => {}
            SortKeys::Prefix(prefix) if prefix.is_empty() => {}
            SortKeys::Prefix(prefix) => {
                condition.push_str(&format!(" AND begins_with({sk}, :s)"));
                values.insert(":s".to_owned(), s(prefix));
            }
            SortKeys::Between { to, .. } if to.is_empty() => return Ok((vec![], None)),
            SortKeys::Between { from, to } if from.is_empty() => {
                condition.push_str(&format!(" AND {sk} <= :to"));
                values.insert(":to".to_owned(), s(to));
            }
            SortKeys::Between { from, to } => {
                condition.push_str(&format!(" AND {sk} BETWEEN :from AND :to"));
                values.insert(":from".to_owned(), s(from));
                values.insert(":to".to_owned(), s(to));
            }
        }
        let start = match &query.after {
            None => None,
            Some(cursor) => Some(start_key(cursor.end()?, index, &query.partition)?),
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!query.descending)
            .limit(i32::try_from(query.limit).map_err(unavailable)?)
            .set_exclusive_start_key(start);
        request = match index {
            // Index reads are eventually consistent in DynamoDB; table reads need not be.
            None => request.consistent_read(true),
            Some(index) => request.index_name(index.name()),
        };
        let out = request.send().await.map_err(|e| unavailable(describe(e)))?;
        let next = match &out.last_evaluated_key {
            Some(key) => Some(page_end(key, index)?.cursor()),
            None => None,
        };
        Ok((out.items.unwrap_or_default(), next))
    }
}

#[async_trait]
impl RecordStore for DynamoDbStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(describe(e)))?;
        match out.item {
            Some(item) => read_record(&item),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        let (condition, values) = put_condition(record.version);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(key, record)?))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() || e.is_transaction_conflict_exception() => {
                    Err(StoreError::Conflict)
                }
                e => Err(unavailable(describe(e))),
            },
        }
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .condition_expression(DELETE_CONDITION)
            .set_expression_attribute_values(Some(delete_values(version)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() || e.is_transaction_conflict_exception() => {
                    Err(StoreError::Conflict)
                }
                e => Err(unavailable(describe(e))),
            },
        }
    }

    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        let all = [keys, counters].concat();
        validate_keys(&all)?;
        let found = self.batch_get(&all).await?;
        let records = keys
            .iter()
            .map(|key| match found.get(key) {
                Some(item) => read_record(item),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let values = counters
            .iter()
            .map(|key| match found.get(key) {
                Some(item) => Ok(read_counter(item)?.unwrap_or(0)),
                None => Ok(0),
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((records, values))
    }

    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        validate_writes(writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        let items = writes
            .iter()
            .map(|write| {
                Ok(match write {
                    Write::Put { key, record } => {
                        let (condition, values) = put_condition(record.version);
                        let put = Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(record_item(key, record)?))
                            .condition_expression(condition)
                            .set_expression_attribute_values(values)
                            .build()
                            .map_err(unavailable)?;
                        TransactWriteItem::builder().put(put).build()
                    }
                    Write::Delete { key, version } => {
                        let delete = Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_item(key)))
                            .condition_expression(DELETE_CONDITION)
                            .set_expression_attribute_values(Some(delete_values(*version)))
                            .build()
                            .map_err(unavailable)?;
                        TransactWriteItem::builder().delete(delete).build()
                    }
                    Write::Check { key, version } => {
                        let check = if *version == 0 {
                            ConditionCheck::builder().condition_expression("attribute_not_exists(pk)")
                        } else {
                            ConditionCheck::builder()
                                .condition_expression("version = :expected")
                                .set_expression_attribute_values(Some(delete_values(*version)))
                        };
                        let check =
                            check.table_name(&self.table).set_key(Some(key_item(key))).build().map_err(unavailable)?;
                        TransactWriteItem::builder().condition_check(check).build()
                    }
                    // Without a limit, a counter only fails the batch when the store does.
                    Write::Count { key, by, expires_at, most } => {
                        let (expression, mut values) = count_update(*by, *expires_at);
                        let mut update = Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_item(key)))
                            .update_expression(expression)
                            .expression_attribute_names("#count", COUNT);
                        if let Some(most) = most {
                            // A new counter starts at 0: its first count must fit by itself.
                            if *by > *most {
                                return Err(StoreError::Conflict);
                            }
                            values.insert(":room".to_owned(), AttributeValue::N(most.saturating_sub(*by).to_string()));
                            update = update.condition_expression("attribute_not_exists(#count) OR #count <= :room");
                        }
                        let update =
                            update.set_expression_attribute_values(Some(values)).build().map_err(unavailable)?;
                        TransactWriteItem::builder().update(update).build()
                    }
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    // Each write has a reason; a lost race shows as a failed condition, or as a
                    // conflict with another transaction on one of the items.
                    let lost = cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict")));
                    if lost {
                        Err(StoreError::Conflict)
                    } else {
                        Err(unavailable(describe(cancelled)))
                    }
                }
                e => Err(unavailable(describe(e))),
            },
        }
    }

    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        let (items, next) = self.query_page(None, query).await?;
        let mut records = Vec::with_capacity(items.len());
        for item in &items {
            // Counters sharing the partition are not records: the page is shorter, not wrong.
            if let Some(record) = read_record(item)? {
                records.push((item_key(item)?, record));
            }
        }
        Ok(Page { items: records, next })
    }

    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        let (items, next) = self.query_page(Some(index), query).await?;
        let keys = items
            .iter()
            .map(|item| {
                let index_key = IndexKey { pk: required_string(item, "gsi1pk")?, sk: required_string(item, "gsi1sk")? };
                Ok((item_key(item)?, index_key))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page { items: keys, next })
    }

    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        let (items, next) = self.query_page(None, query).await?;
        let mut counters = Vec::with_capacity(items.len());
        for item in &items {
            // Records sharing the partition are not counters: the page is shorter, not wrong.
            if let Some(value) = read_counter(item)? {
                counters.push((item_key(item)?, value));
            }
        }
        Ok(Page { items: counters, next })
    }

    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        let (expression, values) = count_update(by, expires_at);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .update_expression(expression)
            .expression_attribute_names("#count", COUNT)
            .set_expression_attribute_values(Some(values))
            // The whole (small) item: UPDATED_NEW leaves out a count that adding 0 did not change
            // (moto does so).
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| unavailable(describe(e)))?;
        let attributes = out.attributes.unwrap_or_default();
        number(&attributes, COUNT)?.ok_or_else(|| unavailable("a counter update returned no count"))
    }
}
