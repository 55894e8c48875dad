//! The domain core of sspr: recovery-method registration and self-service password reset,
//! written against ports so it runs the same on AWS, on-premises and embedded.

pub mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fakes;
pub mod notify;
pub mod password;
pub mod policy;
pub mod ports;
pub mod records;
pub mod registration;
pub mod reset;
pub mod secret;
pub mod types;

use std::sync::Arc;

pub use error::FlowError;
use notify::Branding;
use policy::Policy;
use ports::{Clock, Directory, EmailMessage, Mailer, RecordStore, Rng, Sms, Unavailable};
use records::{load, policy_key};
use secret::KeyedHasher;
use types::{Destination, Email};

/// Limits and texts that deployments may tune; the defaults are those of docs/security.md.
#[derive(Debug, Clone)]
pub struct Settings {
    pub branding: Branding,
    /// Digits in a one-time code (S2: 8, within 6–10).
    pub code_digits: usize,
    /// How long a code is valid (S2: 5 minutes).
    pub code_ttl_secs: i64,
    /// How long a reset session lives (S2: 15 minutes).
    pub session_ttl_secs: i64,
    /// Wrong codes before a code — and the method, for this session — is dead (S3: 5).
    pub max_code_failures: u32,
    /// How recent a sign-in must be to change or remove a method.
    pub recent_signin_secs: i64,
    /// The policy in force until an administrator stores one.
    pub default_policy: Policy,
    /// Proof-of-work difficulty at reset start: the largest number a page may have to try.
    pub challenge_max_number: u64,
}

impl Settings {
    pub fn new(branding: Branding, default_policy: Policy) -> Self {
        Self {
            branding,
            code_digits: types::Code::DEFAULT_DIGITS,
            code_ttl_secs: 300,
            session_ttl_secs: 900,
            max_code_failures: 5,
            recent_signin_secs: 900,
            default_policy,
            challenge_max_number: 50_000,
        }
    }
}

/// The product: every flow, with the adapters it was given.
pub struct Sspr {
    pub store: Arc<dyn RecordStore>,
    pub directory: Arc<dyn Directory>,
    pub sms: Arc<dyn Sms>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub hasher: KeyedHasher,
    pub settings: Settings,
}

impl Sspr {
    /// The policy stored by administrators, or the configured default.
    pub async fn policy(&self) -> Result<Policy, Unavailable> {
        Ok(load::<Policy>(&*self.store, &policy_key())
            .await?
            .map_or_else(|| self.settings.default_policy.clone(), |v| v.value))
    }

    fn code_minutes(&self) -> i64 {
        (self.settings.code_ttl_secs + 59) / 60
    }

    /// Sends a code to a destination, in the words of `purpose`.
    async fn deliver_code(
        &self,
        destination: &Destination,
        code: &types::Code,
        purpose: CodePurpose,
    ) -> Result<(), Unavailable> {
        let b = &self.settings.branding;
        let minutes = self.code_minutes();
        match (destination, purpose) {
            (Destination::Phone(p), CodePurpose::Reset) => self.sms.send_sms(p, &b.reset_code_sms(code, minutes)).await,
            (Destination::Phone(p), CodePurpose::Confirm) => {
                self.sms.send_sms(p, &b.confirmation_code_sms(code, minutes)).await
            }
            (Destination::Email(e), CodePurpose::Reset) => {
                self.mailer.send_email(e, &b.reset_code_email(code, minutes)).await
            }
            (Destination::Email(e), CodePurpose::Confirm) => {
                self.mailer.send_email(e, &b.confirmation_code_email(code, minutes)).await
            }
        }
    }

    /// Sends a notice to each address; a failed notice is logged, not fatal to the flow it follows.
    async fn notify_all<'a>(&self, to: impl IntoIterator<Item = &'a Email>, message: &EmailMessage) {
        for email in to {
            if let Err(e) = self.mailer.send_email(email, message).await {
                tracing::warn!(error = %e, "a notification could not be sent");
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum CodePurpose {
    Reset,
    Confirm,
}

/// How many times a flow re-reads and retries after losing a race on a conditional write.
const CONFLICT_RETRIES: usize = 8;
