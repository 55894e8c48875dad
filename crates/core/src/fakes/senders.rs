//! Senders that keep what they were asked to send, for tests of the flows.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::ports::{EmailMessage, Mailer, Sms, Unavailable, Voice};
use crate::types::{Email, PhoneNumber};

/// One message as it would have reached a phone or a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub channel: &'static str,
    pub to: String,
    pub text: String,
}

/// An SMS sender, voice caller and mailer in one; clones share what was sent.
#[derive(Clone, Default)]
pub struct RecordingSender {
    sent: Arc<Mutex<Vec<Sent>>>,
    failing: Arc<Mutex<usize>>,
}

impl RecordingSender {
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What reached `to`, oldest first.
    pub fn sent_to(&self, to: &str) -> Vec<Sent> {
        self.sent().into_iter().filter(|s| s.to == to).collect()
    }

    /// The next `n` sends fail, as a provider that is down would.
    pub fn fail_next_sends(&self, n: usize) {
        if let Ok(mut failing) = self.failing.lock() {
            *failing = n;
        }
    }

    fn push(&self, sent: Sent) -> Result<(), Unavailable> {
        let mut failing = self.failing.lock().map_err(|_| Unavailable::new("sender poisoned"))?;
        if *failing > 0 {
            *failing -= 1;
            return Err(Unavailable::new("the provider is down"));
        }
        self.sent.lock().map_err(|_| Unavailable::new("sender poisoned"))?.push(sent);
        Ok(())
    }
}

#[async_trait]
impl Sms for RecordingSender {
    async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        self.push(Sent { channel: "sms", to: to.to_string(), text: text.to_owned() })
    }
}

#[async_trait]
impl Voice for RecordingSender {
    async fn call(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        self.push(Sent { channel: "voice", to: to.to_string(), text: text.to_owned() })
    }
}

#[async_trait]
impl Mailer for RecordingSender {
    async fn send_email(&self, to: &Email, message: &EmailMessage) -> Result<(), Unavailable> {
        self.push(Sent { channel: "email", to: to.to_string(), text: format!("{}\n{}", message.subject, message.text) })
    }
}
