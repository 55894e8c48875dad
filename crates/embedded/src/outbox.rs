//! The outbox: where the local server "sends" SMS and email and "places" voice calls — kept in
//! memory, listed at `/dev/outbox` and printed to the console. Never part of a Lambda build.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use sspr_core::ports::{Clock, EmailMessage, Mailer, Sms, Unavailable, Voice};
use sspr_core::types::{Email, PhoneNumber};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutboxEntry {
    /// `sms`, `email` or `voice`.
    pub channel: &'static str,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
    pub at: String,
}

#[derive(Clone)]
pub struct Outbox {
    entries: Arc<Mutex<Vec<OutboxEntry>>>,
    clock: Arc<dyn Clock>,
    echo: bool,
}

impl Outbox {
    /// `echo` prints each message to standard output as well.
    pub fn new(clock: Arc<dyn Clock>, echo: bool) -> Self {
        Self { entries: Arc::default(), clock, echo }
    }

    /// Everything sent so far, oldest first.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn push(&self, entry: OutboxEntry) -> Result<(), Unavailable> {
        if self.echo {
            let subject = entry.subject.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
            println!("outbox: {} to {}{subject}: {}", entry.channel, entry.to, entry.body);
        }
        self.entries.lock().map_err(|_| Unavailable::new("outbox poisoned"))?.push(entry);
        Ok(())
    }
}

#[async_trait]
impl Sms for Outbox {
    async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        self.push(OutboxEntry {
            channel: "sms",
            to: to.to_string(),
            subject: None,
            body: text.to_owned(),
            at: self.clock.now().to_rfc3339(),
        })
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send_email(&self, to: &Email, message: &EmailMessage) -> Result<(), Unavailable> {
        self.push(OutboxEntry {
            channel: "email",
            to: to.to_string(),
            subject: Some(message.subject.clone()),
            body: message.text.clone(),
            at: self.clock.now().to_rfc3339(),
        })
    }
}

/// A call is kept as the text it would read out.
#[async_trait]
impl Voice for Outbox {
    async fn call(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        self.push(OutboxEntry {
            channel: "voice",
            to: to.to_string(),
            subject: None,
            body: text.to_owned(),
            at: self.clock.now().to_rfc3339(),
        })
    }
}
