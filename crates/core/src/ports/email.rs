//! Email to a person's mailbox.

use async_trait::async_trait;

use super::Unavailable;
use crate::types::Email;

/// A message for a person's mailbox, text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send_email(&self, to: &Email, message: &EmailMessage) -> Result<(), Unavailable>;
}
