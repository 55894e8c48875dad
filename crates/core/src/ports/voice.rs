//! Voice calls to phones.

use async_trait::async_trait;

use super::Unavailable;
use crate::types::PhoneNumber;

/// Calls a phone and reads `text` out.
#[async_trait]
pub trait Voice: Send + Sync {
    async fn call(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable>;
}
