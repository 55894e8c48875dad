//! The domain core of sspr: recovery-method registration and self-service password reset,
//! written against ports so it runs the same on AWS, on-premises and embedded.

pub mod admin;
pub mod audit;
pub mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fakes;
pub mod hybrid;
pub mod limits;
pub mod methods;
pub mod notify;
pub mod password;
pub mod policy;
pub mod ports;
pub mod records;
pub mod registration;
pub mod reminders;
pub mod reset;
pub mod secret;
pub mod types;

use std::sync::{Arc, Mutex};

pub use error::FlowError;
use notify::Branding;
use policy::Policy;
use ports::{
    Clock, Directory, EmailMessage, Mailer, RecordKey, RecordStore, Rng, Sms, StoredRecord, Unavailable, Voice,
};
use records::{decode, load_many, policy_key, save, Versioned};
use secret::{KeyedHasher, Pepper, Sealer};
use types::{Email, Timestamp};

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
    /// The most the difficulty grows to for a source over its limits: what a phone still
    /// solves in under 5 seconds (docs/security.md, "Also enforced").
    pub challenge_ceiling: u64,
    /// How long a warm process keeps the stored policy before reading it again.
    pub policy_cache_secs: i64,
    /// The directory groups whose members are administrators.
    pub admin_groups: Vec<String>,
    /// Whether people may write security questions of their own besides the bank's.
    pub questions_custom_allowed: bool,
    /// How many days audit events are kept.
    pub audit_days: i64,
    /// Whether a person who registered an authenticator app must use it as one of the methods
    /// of a reset (ASVS 6.4.3; off unless the deployment asks).
    pub authenticator_required: bool,
    /// How many days after re-confirmation fell due a reminder still goes, when no run could
    /// send it on time.
    pub reminder_overdue_days: i64,
    /// How often anyone may ask (docs/security.md, S4 and S5).
    pub limits: limits::Limits,
    /// The least time `start` takes to answer, whatever the directory answered: an unknown
    /// name and a known one take the same time even where the directory itself answers one
    /// faster (S1 in docs/security.md). 0 with the embedded directory.
    pub start_floor_ms: u64,
    /// The least time `send-code`, the questions step and `verify` take to answer: the items
    /// a registered person's step reads and writes are larger than a decoy's, which a store
    /// reached over the network may answer a few milliseconds slower (S1 in
    /// docs/security.md). 0 with the embedded store.
    pub step_floor_ms: u64,
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
            challenge_ceiling: 200_000,
            policy_cache_secs: 60,
            admin_groups: vec![DEFAULT_ADMIN_GROUP.to_owned()],
            questions_custom_allowed: false,
            audit_days: 30,
            authenticator_required: false,
            reminder_overdue_days: 30,
            limits: limits::Limits::default(),
            start_floor_ms: 0,
            step_floor_ms: 0,
        }
    }
}

/// The group of administrators unless configured otherwise (`SSPR_ADMIN_GROUPS`).
pub const DEFAULT_ADMIN_GROUP: &str = "SSPR-Admins";

/// The adapters behind the ports.
pub struct Ports {
    pub store: Arc<dyn RecordStore>,
    pub directory: Arc<dyn Directory>,
    pub sms: Arc<dyn Sms>,
    pub voice: Arc<dyn Voice>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
}

/// The product: every flow, with the adapters it was given.
pub struct Sspr {
    pub ports: Ports,
    pub hasher: KeyedHasher,
    /// Seals what must be read back (authenticator seeds), under a key of its own derived from
    /// the same secret as the hasher's.
    pub sealer: Sealer,
    pub settings: Settings,
    /// The stored policy as last read, and when.
    policy_cache: Mutex<Option<(Policy, Timestamp)>>,
}

impl Sspr {
    pub fn new(ports: Ports, pepper: Pepper, settings: Settings) -> Self {
        let sealer = Sealer::new(&pepper);
        Self { ports, hasher: KeyedHasher::new(pepper), sealer, settings, policy_cache: Mutex::new(None) }
    }

    /// The cached policy while it is fresh.
    fn cached_policy(&self) -> Option<Policy> {
        let now = self.ports.clock.now();
        let cache = self.policy_cache.lock().ok()?;
        match &*cache {
            Some((policy, at)) if now.0 >= at.0 && now.0 - at.0 < self.settings.policy_cache_secs => {
                Some(policy.clone())
            }
            _ => None,
        }
    }

    fn cache_policy(&self, policy: &Policy) {
        if let Ok(mut cache) = self.policy_cache.lock() {
            *cache = Some((policy.clone(), self.ports.clock.now()));
        }
    }

    /// The policy stored by administrators, or the configured default; read at most once a
    /// minute by a warm process.
    pub async fn policy(&self) -> Result<Policy, Unavailable> {
        Ok(self.read_with_policy(&[]).await?.0)
    }

    /// Reads `keys` in one round trip, together with the policy when the cached one is stale,
    /// so a flow's reads cost one round trip whatever the cache holds.
    async fn read_with_policy(&self, keys: &[RecordKey]) -> Result<(Policy, Vec<Option<StoredRecord>>), Unavailable> {
        let (policy, records, _) = self.read_with_counters(keys, &[]).await?;
        Ok((policy, records))
    }

    /// As [`Sspr::read_with_policy`], with the values of the `counters` read in the same round
    /// trip (the limits' meters).
    async fn read_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Policy, Vec<Option<StoredRecord>>, Vec<i64>), Unavailable> {
        let cached = self.cached_policy();
        let policy_key = policy_key();
        let mut all = keys.to_vec();
        if cached.is_none() {
            all.push(policy_key.clone());
        }
        let (mut records, values) = if counters.is_empty() {
            (load_many(&*self.ports.store, &all).await?, Vec::new())
        } else {
            records::load_with_counters(&*self.ports.store, &all, counters).await?
        };
        let policy = match cached {
            Some(policy) => policy,
            None => {
                let stored = records.pop().flatten();
                let policy = decode::<Policy>(&policy_key, stored)?
                    .map_or_else(|| self.settings.default_policy.clone(), |v| v.value);
                self.cache_policy(&policy);
                policy
            }
        };
        Ok((policy, records, values))
    }

    /// Stores the policy; this process applies it at once, others within the cache's minute.
    pub async fn save_policy(&self, policy: Policy) -> Result<(), FlowError> {
        let key = policy_key();
        for _ in 0..CONFLICT_RETRIES {
            let version = self.ports.store.get(&key).await?.map_or(0, |stored| stored.version);
            match save(&*self.ports.store, &key, &Versioned { value: policy.clone(), version }).await {
                Ok(_) => {
                    self.cache_policy(&policy);
                    return Ok(());
                }
                Err(ports::StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Conflict)
    }

    /// Whether the directory's groups make this person an administrator.
    pub fn is_administrator(&self, user: &ports::DirectoryUser) -> bool {
        self.settings.admin_groups.iter().any(|group| user.is_member_of(group))
    }

    /// Sends a notice to each address; a failed notice is logged, not fatal to the flow it follows.
    async fn notify_all<'a>(&self, to: impl IntoIterator<Item = &'a Email>, message: &EmailMessage) {
        for email in to {
            if let Err(e) = self.ports.mailer.send_email(email, message).await {
                tracing::warn!(error = %e, "a notification could not be sent");
            }
        }
    }
}

/// How many times a flow re-reads and retries after losing a race on a conditional write.
const CONFLICT_RETRIES: usize = 8;

#[cfg(test)]
mod tests {
    use crate::fakes::world::{username, World};
    use crate::ports::DirectoryUser;

    #[test]
    fn administrators_are_the_members_of_the_admin_group_the_directory_reports() {
        let world = World::new();
        let user = |groups: &[&str]| DirectoryUser {
            username: username("someone"),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            enabled: true,
            locked: false,
            email: None,
        };
        assert!(world.sspr.is_administrator(&user(&["SSPR-Users", "SSPR-Admins"])));
        assert!(!world.sspr.is_administrator(&user(&["SSPR-Users"])));
        assert!(!world.sspr.is_administrator(&user(&["sspr-admins"])), "group names are exact");
    }
}
