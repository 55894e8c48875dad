//! How often anyone may ask (docs/security.md, "Limits"): per person, per source address, per
//! destination and for the whole deployment's SMS. Every limit is checked with the reads a
//! step makes anyway and counted in the write it makes anyway, so it costs no round trip of
//! its own; a request over a limit changes nothing and is answered `429` with the time to wait.
//!
//! Two kinds of bookkeeping:
//! - **A person's limits** sit in one record per normalised name (known to the directory or
//!   not, so a limit tells nothing of who exists): the times of their recent sends, attempts
//!   and failed proofs, and a block. The windows slide, the record is written with the version
//!   it was read at, so concurrent requests cannot both slip under a limit, and a successful
//!   reset deletes it.
//! - **Everyone else's** (a source address, a phone number, the SMS budget) are counters in
//!   fixed windows (`UpdateItem ADD` on DynamoDB), each count carrying its limit as a
//!   condition, so no two concurrent requests pass the last place together.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::audit::{current_request, EventKind, Happened};
use crate::ports::{RecordKey, StoreError, Unavailable, Write};
use crate::records::{save_all, Record, Versioned};
use crate::secret::KeyedHasher;
use crate::types::{MethodKind, PhoneNumber, Timestamp, Username};
use crate::FlowError;

/// At most `limit` in any `secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub secs: i64,
}

impl Rate {
    pub const fn new(limit: u32, secs: i64) -> Self {
        Self { limit, secs }
    }
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The limits of a deployment; the defaults follow Microsoft Entra's where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Codes sent to one person by text or call, per channel.
    pub sends: Rate,
    /// Codes sent to one person by email.
    pub email_sends: Rate,
    /// Proofs of one method tried by one person, right or wrong.
    pub attempts: Rate,
    /// Wrong proofs by one person, all methods together, before the block...
    pub failed_proofs: Rate,
    /// ...which lasts this long.
    pub block_secs: i64,
    /// Confirmation codes sent to one signed-in person while registering.
    pub registration_codes: Rate,
    /// Confirmation codes sent to one destination, whoever registers it.
    pub registration_destination: Rate,
    /// Requests of one kind (`start`, `send-code`, `verify`) from one source address, per
    /// minute and per hour.
    pub per_address: [Rate; 2],
    /// Codes sent to one phone number, per hour and per day.
    pub per_phone: [Rate; 2],
    /// Texts and calls of the whole deployment in a (UTC) day.
    pub sms_per_day: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sends: Rate::new(5, HOUR),
            email_sends: Rate::new(10, 10 * MINUTE),
            attempts: Rate::new(5, HOUR),
            failed_proofs: Rate::new(5, DAY),
            block_secs: DAY,
            registration_codes: Rate::new(5, HOUR),
            registration_destination: Rate::new(3, DAY),
            per_address: [Rate::new(20, MINUTE), Rate::new(200, HOUR)],
            per_phone: [Rate::new(5, HOUR), Rate::new(10, DAY)],
            sms_per_day: 1000,
        }
    }
}

/// Which limit a request went over; each has its own words for the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many codes asked for one person.
    Sends,
    /// Too many tries of one method.
    Attempts,
    /// The block after too many wrong proofs.
    Blocked,
    /// Too many requests from one source address.
    Address,
    /// Too many codes to one destination.
    Destination,
    /// The deployment's texts and calls for the day are spent.
    SmsBudget,
}

impl Limit {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Limit::Blocked => "reset_blocked",
            Limit::SmsBudget => "sms_unavailable",
            Limit::Sends | Limit::Attempts | Limit::Address | Limit::Destination => "rate_limited",
        }
    }

    /// What the person is told.
    pub fn message(self) -> &'static str {
        match self {
            Limit::Sends => "Too many codes were asked for. Wait before asking for another.",
            Limit::Attempts => "Too many tries of this method. Wait before trying again.",
            Limit::Blocked => {
                "Too many wrong answers: password reset is blocked for this account for a day. \
                 Contact your helpdesk if you need help sooner."
            }
            Limit::Address => "Too many requests from your network. Wait a moment and try again.",
            Limit::Destination => "Too many codes were sent to this destination. Try another method or wait.",
            Limit::SmsBudget => {
                "Text messages and calls cannot be sent any more today. Use email or another method, \
                 or contact your helpdesk."
            }
        }
    }

    /// The name recorded in the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Sends => "limit_sends",
            Limit::Attempts => "limit_attempts",
            Limit::Blocked => "reset_blocked",
            Limit::Address => "limit_address",
            Limit::Destination => "limit_destination",
            Limit::SmsBudget => "sms_budget",
        }
    }
}

/// A request over a limit: which, and in how many seconds it may be asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: Limit,
    pub retry_after: i64,
}

/// What a person's limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A reset code sent (or asked for) by this channel.
    Send(MethodKind),
    /// A proof of this method tried.
    Attempt(MethodKind),
    /// A wrong proof, whatever the method.
    Failure,
    /// A confirmation code sent while registering.
    Registration,
}

impl Counted {
    fn name(self) -> String {
        match self {
            Counted::Send(kind) => format!("send:{kind}"),
            Counted::Attempt(kind) => format!("attempt:{kind}"),
            Counted::Failure => "failure".to_owned(),
            Counted::Registration => "registration".to_owned(),
        }
    }

    fn rate(self, limits: &Limits) -> Rate {
        match self {
            Counted::Send(MethodKind::Email) => limits.email_sends,
            Counted::Send(_) => limits.sends,
            Counted::Attempt(_) => limits.attempts,
            Counted::Failure => limits.failed_proofs,
            Counted::Registration => limits.registration_codes,
        }
    }

    fn limit(self) -> Limit {
        match self {
            Counted::Send(_) | Counted::Registration => Limit::Sends,
            Counted::Attempt(_) => Limit::Attempts,
            Counted::Failure => Limit::Blocked,
        }
    }
}

/// One person's recent requests: the times of each kind counted (only those still inside
/// their window), and until when reset is blocked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonLimits {
    #[serde(default)]
    pub events: BTreeMap<String, Vec<Timestamp>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_until: Option<Timestamp>,
}

impl Record for PersonLimits {
    fn expires_at(&self) -> Option<Timestamp> {
        // Kept while anything in it still counts: the latest event a day on, or the block's end.
        let latest = self.events.values().flatten().max().map(|t| t.plus_secs(DAY));
        latest.into_iter().chain(self.blocked_until).max()
    }
}

impl PersonLimits {
    /// Refused while blocked.
    pub fn check_block(&self, now: Timestamp) -> Result<(), OverLimit> {
        match self.blocked_until {
            Some(until) if until > now => Err(OverLimit { limit: Limit::Blocked, retry_after: until.0 - now.0 }),
            _ => Ok(()),
        }
    }

    /// Refused when `what` already happened as often as its rate allows within its window.
    pub fn check(&self, what: Counted, limits: &Limits, now: Timestamp) -> Result<(), OverLimit> {
        self.check_block(now)?;
        let rate = what.rate(limits);
        let inside: Vec<Timestamp> = self.recent(what, rate, now).collect();
        if inside.len() < rate.limit as usize {
            return Ok(());
        }
        // Room again when the oldest that counts leaves the window.
        let oldest = inside[inside.len() - rate.limit as usize];
        Err(OverLimit { limit: what.limit(), retry_after: (oldest.0 + rate.secs - now.0).max(1) })
    }

    /// Counts `what` now, forgetting what left its window. A failure that reaches its limit
    /// blocks reset for the block's length, and the failures start again from none.
    pub fn note(&mut self, what: Counted, limits: &Limits, now: Timestamp) {
        let rate = what.rate(limits);
        let mut kept: Vec<Timestamp> = self.recent(what, rate, now).collect();
        kept.push(now);
        let excess = kept.len().saturating_sub(rate.limit.max(1) as usize);
        kept.drain(..excess);
        if what == Counted::Failure && kept.len() >= rate.limit as usize {
            self.blocked_until = Some(now.plus_secs(limits.block_secs));
            kept.clear();
        }
        self.events.insert(what.name(), kept);
        self.events.retain(|_, times| !times.is_empty());
    }

    fn recent(&self, what: Counted, rate: Rate, now: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        let since = now.0 - rate.secs;
        self.events.get(&what.name()).into_iter().flatten().copied().filter(move |t| t.0 > since && t.0 <= now.0)
    }
}

/// The tag of a person's limits: 16 hex digits of a keyed hash of the name as typed, trimmed
/// and in lower case, so `Alice` and `alice` share them and the table holds no name. A reset
/// session's handle carries it (see [`crate::types::SessionId`]).
pub fn person_tag(hasher: &KeyedHasher, name: &Username) -> String {
    let normal = name.as_str().trim().to_lowercase();
    let mut tag = hasher.digest("limits-person", &[normal.as_bytes()]).to_hex();
    tag.truncate(16);
    tag
}

/// Where the limits tagged `tag` are kept.
pub fn person_key(tag: &str) -> RecordKey {
    RecordKey { pk: format!("LIMIT#person-{tag}"), sk: "PERSON".into() }
}

/// A fixed-window counter with its limit: one source address's requests of a kind, one phone
/// number's codes, or the deployment's texts of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub key: RecordKey,
    pub limit: Limit,
    most: i64,
    ends: Timestamp,
}

impl Meter {
    fn new(hasher: &KeyedHasher, of: &str, what: &str, rate: Rate, limit: Limit, now: Timestamp) -> Self {
        let secs = rate.secs.max(1);
        let window = now.0.div_euclid(secs);
        let who = hasher.digest("limits-meter", &[of.as_bytes()]).to_hex();
        Self {
            key: RecordKey { pk: format!("LIMIT#{who}"), sk: format!("{what}#{secs}#{window}") },
            limit,
            most: i64::from(rate.limit),
            ends: Timestamp((window + 1) * secs),
        }
    }

    /// Refused when the window's count is at the limit already.
    pub fn check(&self, value: i64, now: Timestamp) -> Result<(), OverLimit> {
        if value < self.most {
            return Ok(());
        }
        Err(self.over(now))
    }

    /// The refusal of one more in this window.
    pub fn over(&self, now: Timestamp) -> OverLimit {
        OverLimit { limit: self.limit, retry_after: (self.ends.0 - now.0).max(1) }
    }

    /// One more in the window, refused by the store if that would pass the limit.
    pub fn count(&self) -> Write {
        self.count_by(1)
    }

    /// `by` more in the window (0: the same write, counting nothing), refused by the store if
    /// that would pass the limit.
    pub fn count_by(&self, by: i64) -> Write {
        Write::Count {
            key: self.key.clone(),
            by,
            // Gone a while after its window: nothing reads a past window.
            expires_at: Some(self.ends.plus_secs(HOUR)),
            most: Some(self.most),
        }
    }
}

/// The kinds of request limited per source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    SendCode,
    Verify,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::SendCode => "send-code",
            Action::Verify => "verify",
        }
    }
}

/// The address a source is limited by: an IPv4 address as it is, an IPv6 one by its /64 (one
/// subscriber's whole network). `None` when the request has no source (outside HTTP).
pub fn address_of(source_ip: Option<&str>) -> Option<String> {
    let ip: IpAddr = source_ip?.parse().ok()?;
    Some(match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    })
}

/// The meters of `action` from `address`: per minute and per hour.
pub fn address_meters(
    hasher: &KeyedHasher,
    limits: &Limits,
    address: Option<&str>,
    action: Action,
    now: Timestamp,
) -> Vec<Meter> {
    let Some(address) = address else { return Vec::new() };
    limits
        .per_address
        .iter()
        .map(|rate| Meter::new(hasher, &format!("address:{address}"), action.name(), *rate, Limit::Address, now))
        .collect()
}

/// The meters of codes sent to one phone number (E.164), per hour and per day.
pub fn phone_meters(hasher: &KeyedHasher, limits: &Limits, phone: &str, now: Timestamp) -> Vec<Meter> {
    limits
        .per_phone
        .iter()
        .map(|rate| Meter::new(hasher, &format!("phone:{phone}"), "codes", *rate, Limit::Destination, now))
        .collect()
}

/// The meter of confirmation codes sent to one destination while registering.
pub fn registration_meter(hasher: &KeyedHasher, limits: &Limits, destination: &str, now: Timestamp) -> Meter {
    let rate = limits.registration_destination;
    Meter::new(hasher, &format!("destination:{destination}"), "registration", rate, Limit::Destination, now)
}

/// The meter of the deployment's texts and calls in the current UTC day.
pub fn sms_budget(hasher: &KeyedHasher, limits: &Limits, now: Timestamp) -> Meter {
    Meter::new(hasher, "sms-budget", "texts", Rate::new(limits.sms_per_day, DAY), Limit::SmsBudget, now)
}

/// The meter of how often one address went over a limit this hour: the proof of work it is
/// given grows with it.
pub fn pressure_meter(hasher: &KeyedHasher, address: &str, now: Timestamp) -> Meter {
    Meter::new(hasher, &format!("address:{address}"), "over-limit", Rate::new(u32::MAX, HOUR), Limit::Address, now)
}

/// The count of one more refusal on the pressure meter (no limit of its own).
pub fn pressure_count(meter: &Meter) -> Write {
    Write::Count { key: meter.key.clone(), by: 1, expires_at: Some(meter.ends.plus_secs(HOUR)), most: None }
}

/// Refused when any meter is at its limit (`values` read in the same order).
pub fn check_meters(meters: &[Meter], values: &[i64], now: Timestamp) -> Result<(), OverLimit> {
    meters.iter().zip(values).try_for_each(|(meter, value)| meter.check(*value, now))
}

/// The keys of the meters, to read.
pub fn meter_keys(meters: &[Meter]) -> Vec<RecordKey> {
    meters.iter().map(|m| m.key.clone()).collect()
}

impl crate::Sspr {
    /// The meters of `action` from the source address of the request being served (none
    /// outside a request: the HTTP layer always gives one, from the connection or API Gateway's
    /// `sourceIp`, never from a header).
    pub(crate) fn address_meters(&self, action: Action, now: Timestamp) -> Vec<Meter> {
        let address = address_of(current_request().source_ip.as_deref());
        address_meters(&self.hasher, &self.settings.limits, address.as_deref(), action, now)
    }

    /// The person's limits as read (none yet: empty), if `what` and every meter (`values` read
    /// in their order) still have room; otherwise the refusal, recorded (see [`Sspr::refuse`]).
    ///
    /// [`Sspr::refuse`]: crate::Sspr::refuse
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn within_limits(
        &self,
        person: Option<Versioned<PersonLimits>>,
        what: Counted,
        meters: &[Meter],
        values: &[i64],
        user: Option<&Username>,
        method: Option<MethodKind>,
        now: Timestamp,
    ) -> Result<Versioned<PersonLimits>, FlowError> {
        let person = person.unwrap_or_else(|| Versioned::new(PersonLimits::default()));
        let within =
            person.value.check(what, &self.settings.limits, now).and_then(|()| check_meters(meters, values, now));
        match within {
            Ok(()) => Ok(person),
            Err(over) => Err(self.refuse(over, user, method).await),
        }
    }

    /// Records a refusal over a limit (an audit event, and one more on the source address's
    /// pressure meter, which makes its proof of work harder) and answers it.
    pub(crate) async fn refuse(
        &self,
        over: OverLimit,
        user: Option<&Username>,
        method: Option<MethodKind>,
    ) -> FlowError {
        let mut happened = Happened::new(EventKind::Limited, user).failed(over.limit.reason());
        if let Some(method) = method {
            happened = happened.method(method);
        }
        let mut writes = self.audit(happened).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a refusal could not be audited");
            Vec::new()
        });
        if let Some(address) = address_of(current_request().source_ip.as_deref()) {
            writes.push(pressure_count(&pressure_meter(&self.hasher, &address, self.ports.clock.now())));
        }
        if let Err(e) = save_all(&*self.ports.store, &writes).await {
            tracing::warn!(error = %e, "a refusal could not be recorded");
        }
        tracing::info!(limit = over.limit.reason(), "over a limit");
        FlowError::OverLimit(over)
    }

    /// Sends a notice by text (a change of methods, a reminder) within the day's budget of
    /// texts and calls: counted first, and not sent once the budget is spent, the refusal
    /// recorded as any other (S5 in docs/security.md). Email notices are not counted.
    pub(crate) async fn notice_sms(
        &self,
        to: &PhoneNumber,
        text: &str,
        user: Option<&Username>,
    ) -> Result<(), Unavailable> {
        let now = self.ports.clock.now();
        let budget = sms_budget(&self.hasher, &self.settings.limits, now);
        match save_all(&*self.ports.store, &[budget.count()]).await {
            Ok(()) => self.ports.sms.send_sms(to, text).await,
            Err(StoreError::Conflict) => {
                self.refuse(budget.over(now), user, Some(MethodKind::Sms)).await;
                Err(Unavailable::new("the day's budget of texts and calls is spent"))
            }
            Err(e) => Err(Unavailable::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp(1_800_000_000 + secs)
    }

    #[test]
    fn a_rate_allows_its_number_and_the_next_when_the_oldest_leaves_the_window() {
        let limits = Limits::default();
        let mut person = PersonLimits::default();
        let send = Counted::Send(MethodKind::Sms);
        for n in 0..5 {
            assert_eq!(person.check(send, &limits, at(n * 60)), Ok(()), "send {n}");
            person.note(send, &limits, at(n * 60));
        }
        let over = person.check(send, &limits, at(300)).expect_err("the sixth in the hour");
        assert_eq!((over.limit, over.retry_after), (Limit::Sends, 3300));
        assert!(person.check(send, &limits, at(3599)).is_err());
        assert_eq!(person.check(send, &limits, at(3600)), Ok(()), "the first left the window");
        // Email has its own rate and its own count.
        assert_eq!(person.check(Counted::Send(MethodKind::Email), &limits, at(300)), Ok(()));
    }

    #[test]
    fn the_fifth_failure_in_a_day_blocks_for_a_day() {
        let limits = Limits::default();
        let mut person = PersonLimits::default();
        // Four failures spread over almost a day, then one that falls out of it.
        for n in 0..4 {
            person.note(Counted::Failure, &limits, at(n * 6 * 3600));
        }
        assert_eq!(person.check_block(at(86_000)), Ok(()));
        person.note(Counted::Failure, &limits, at(86_401));
        assert_eq!(person.check_block(at(86_402)), Ok(()), "the first failure is more than a day old");
        person.note(Counted::Failure, &limits, at(86_500));
        let blocked = person.check_block(at(86_500)).expect_err("five within a day");
        assert_eq!((blocked.limit, blocked.retry_after), (Limit::Blocked, 86_400));
        assert!(person.check(Counted::Attempt(MethodKind::Sms), &limits, at(86_500 + 86_399)).is_err());
        assert_eq!(person.check_block(at(86_500 + 86_400)), Ok(()), "a day later");
        assert_eq!(person.events.get("failure"), None, "the failures start again from none");
        assert_eq!(person.expires_at(), Some(at(86_500 + 86_400)));
    }

    #[test]
    fn a_meter_counts_in_fixed_windows_and_says_when_the_next_opens() {
        let hasher = KeyedHasher::new(crate::secret::Pepper::new(vec![7; 32]).expect("pepper"));
        let limits = Limits::default();
        let meter = address_meters(&hasher, &limits, Some("192.0.2.1"), Action::Start, Timestamp(1_800_000_030));
        assert_eq!(meter.len(), 2);
        assert_eq!(meter[0].check(19, Timestamp(1_800_000_030)), Ok(()));
        let over = meter[0].check(20, Timestamp(1_800_000_030)).expect_err("at the limit");
        assert_eq!(over.retry_after, 30, "the minute's window ends at :00");
        let Write::Count { most, .. } = meter[0].count() else { panic!("a count") };
        assert_eq!(most, Some(20));
        assert!(!meter[0].key.pk.contains("192.0.2.1"), "no address in the table: {}", meter[0].key.pk);
        let next = address_meters(&hasher, &limits, Some("192.0.2.1"), Action::Start, Timestamp(1_800_000_060));
        assert_ne!(next[0].key, meter[0].key, "a new window, a new counter");
        assert_eq!(next[1].key, meter[1].key, "the same hour");
        let other = address_meters(&hasher, &limits, Some("192.0.2.1"), Action::Verify, Timestamp(1_800_000_030));
        assert_ne!(other[0].key, meter[0].key, "each kind of request has its own");
    }

    #[test]
    fn an_ipv6_source_is_limited_by_its_64() {
        assert_eq!(address_of(Some("2001:db8:1:2:aaaa::1")), address_of(Some("2001:db8:1:2:bbbb::9")));
        assert_ne!(address_of(Some("2001:db8:1:2::1")), address_of(Some("2001:db8:1:3::1")));
        assert_eq!(address_of(Some("::ffff:192.0.2.7")).as_deref(), Some("192.0.2.7"));
        assert_eq!(address_of(Some("not an address")), None);
        assert_eq!(address_of(None), None);
    }
}
