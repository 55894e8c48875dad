//! Text messages to phones.

use async_trait::async_trait;

use super::Unavailable;
use crate::types::PhoneNumber;

/// Sends a text message to a phone.
#[async_trait]
pub trait Sms: Send + Sync {
    async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable>;
}
