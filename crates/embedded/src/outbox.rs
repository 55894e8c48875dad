//! The outbox: where the local server "sends" SMS and email and "places" voice calls — kept in
//! memory or, with a data directory, in `outbox.jsonl` there (so what `sspr remind` sends shows
//! at the server's `/dev/outbox` too), listed at `/dev/outbox` and printed to the console. Never
//! part of a Lambda build.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sspr_core::ports::{Clock, EmailMessage, Mailer, Sms, Unavailable, Voice};
use sspr_core::types::{Email, PhoneNumber};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboxEntry {
    /// `sms`, `email` or `voice`.
    pub channel: String,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
    pub at: String,
}

#[derive(Clone)]
pub struct Outbox {
    entries: Arc<Mutex<Vec<OutboxEntry>>>,
    /// Where entries are kept, one JSON line each, when not only in memory.
    file: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    echo: bool,
}

impl Outbox {
    /// An outbox in memory; `echo` prints each message to standard output as well.
    pub fn new(clock: Arc<dyn Clock>, echo: bool) -> Self {
        Self { entries: Arc::default(), file: None, clock, echo }
    }

    /// An outbox kept in `file` (created private to its owner), shared by every process that
    /// opens it.
    pub fn open(file: &Path, clock: Arc<dyn Clock>, echo: bool) -> std::io::Result<Self> {
        Self::append_to(file)?;
        Ok(Self { entries: Arc::default(), file: Some(file.to_owned()), clock, echo })
    }

    fn append_to(file: &Path) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(file)
    }

    /// Everything sent so far, oldest first.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        match &self.file {
            Some(file) => std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
            None => self.entries.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }

    fn push(&self, entry: OutboxEntry) -> Result<(), Unavailable> {
        if self.echo {
            let subject = entry.subject.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
            println!("outbox: {} to {}{subject}: {}", entry.channel, entry.to, entry.body);
        }
        match &self.file {
            Some(file) => {
                let mut line = serde_json::to_string(&entry).map_err(|e| Unavailable::new(format!("outbox: {e}")))?;
                line.push('\n');
                // One write of a whole line in append mode: processes sharing the file do not interleave.
                Self::append_to(file)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(|e| Unavailable::new(format!("outbox {}: {e}", file.display())))
            }
            None => {
                self.entries.lock().map_err(|_| Unavailable::new("outbox poisoned"))?.push(entry);
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Sms for Outbox {
    async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), Unavailable> {
        self.push(OutboxEntry {
            channel: "sms".to_owned(),
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
            channel: "email".to_owned(),
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
            channel: "voice".to_owned(),
            to: to.to_string(),
            subject: None,
            body: text.to_owned(),
            at: self.clock.now().to_rfc3339(),
        })
    }
}

#[cfg(test)]
mod tests {
    use sspr_core::ports::SystemClock;

    use super::*;

    #[tokio::test]
    async fn an_outbox_in_a_file_is_shared_by_whoever_opens_it() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("outbox.jsonl");
        let server = Outbox::open(&file, Arc::new(SystemClock), false).expect("opened");
        let other = Outbox::open(&file, Arc::new(SystemClock), false).expect("opened");
        let phone = PhoneNumber::parse("+15555550101").expect("phone");
        server.send_sms(&phone, "first").await.expect("sent");
        other.call(&phone, "second").await.expect("called");
        let entries = server.entries();
        assert_eq!(
            entries.iter().map(|e| (e.channel.as_str(), e.body.as_str())).collect::<Vec<_>>(),
            [("sms", "first"), ("voice", "second")]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o077, 0, "codes in the outbox are for its owner only");
        }
    }
}
