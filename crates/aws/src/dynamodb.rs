//! The store on DynamoDB: one table, `pk`/`sk` keys, a numeric `version` for conditional
//! writes, `expires_at` as the TTL attribute and the record itself under `body`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use sspr_core::ports::{RecordKey, RecordStore, StoreError, StoredRecord, Unavailable};
use sspr_core::types::Timestamp;

use crate::describe;

#[derive(Clone, Debug)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(Unavailable::new(format!("dynamodb: {e}")))
}

fn key_attributes(key: &RecordKey) -> [(String, AttributeValue); 2] {
    [("pk".to_owned(), AttributeValue::S(key.pk.clone())), ("sk".to_owned(), AttributeValue::S(key.sk.clone()))]
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
}

#[async_trait]
impl RecordStore for DynamoDbStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key).into_iter().collect()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(describe(e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let number = |name: &str| -> Result<Option<i64>, StoreError> {
            match item.get(name) {
                None => Ok(None),
                Some(AttributeValue::N(n)) => n.parse().map(Some).map_err(unavailable),
                Some(_) => Err(unavailable(format!("attribute {name} is not a number"))),
            }
        };
        let version = number("version")?.ok_or_else(|| unavailable("a record has no version"))?;
        let expires_at = number("expires_at")?.map(Timestamp);
        let body = item.get("body").cloned().ok_or_else(|| unavailable("a record has no body"))?;
        let body: serde_json::Value = serde_dynamo::from_attribute_value(body).map_err(unavailable)?;
        let serde_json::Value::Object(body) = body else {
            return Err(unavailable("a record body is not a map"));
        };
        Ok(Some(StoredRecord { version: u64::try_from(version).map_err(unavailable)?, expires_at, body }))
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        let body: AttributeValue =
            serde_dynamo::to_attribute_value(serde_json::Value::Object(record.body.clone())).map_err(unavailable)?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_attributes(key).into_iter().collect()))
            .item("version", AttributeValue::N(record.version.to_string()))
            .item("body", body);
        if let Some(at) = record.expires_at {
            request = request.item("expires_at", AttributeValue::N(at.0.to_string()));
        }
        request = if record.version <= 1 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N((record.version - 1).to_string()))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::Conflict),
                e => Err(unavailable(describe(e))),
            },
        }
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key).into_iter().collect()))
            .condition_expression("attribute_not_exists(pk) OR version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::Conflict),
                e => Err(unavailable(describe(e))),
            },
        }
    }
}
