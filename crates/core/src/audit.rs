//! The audit log and the activity report (docs/architecture.md, "Audit log"; docs/security.md,
//! "Audit"). Every event is a record written in the same transaction as the change it tells
//! of, with a per-day counter beside it, so the log never claims what did not happen and the
//! report is read from counters, not from events. Events never carry a secret: a destination
//! is kept masked, a refusal by its stable error code.

use std::future::Future;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::ports::{Cursor, Index, IndexKey, Query, RecordKey, SortKeys, Unavailable, Write};
use crate::records::{decode, put, Record, Versioned};
use crate::types::{MethodKind, Timestamp, Username};
use crate::{FlowError, Sspr};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    MethodRegistered,
    MethodRemoved,
    MethodsReconfirmed,
    CodeSent,
    VerificationPassed,
    VerificationFailed,
    /// A method refused for this session after too many wrong proofs.
    Blocked,
    ResetSucceeded,
    ResetFailed,
    Unlocked,
    PolicyChanged,
    RegistrationCleared,
    /// A password written on premises and not yet in the cloud directory (hybrid).
    WritebackIncomplete,
    /// A request refused for going over a limit (docs/security.md, "Limits").
    Limited,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::MethodRegistered,
        EventKind::MethodRemoved,
        EventKind::MethodsReconfirmed,
        EventKind::CodeSent,
        EventKind::VerificationPassed,
        EventKind::VerificationFailed,
        EventKind::Blocked,
        EventKind::ResetSucceeded,
        EventKind::ResetFailed,
        EventKind::Unlocked,
        EventKind::PolicyChanged,
        EventKind::RegistrationCleared,
        EventKind::WritebackIncomplete,
        EventKind::Limited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MethodRegistered => "method_registered",
            EventKind::MethodRemoved => "method_removed",
            EventKind::MethodsReconfirmed => "methods_reconfirmed",
            EventKind::CodeSent => "code_sent",
            EventKind::VerificationPassed => "verification_passed",
            EventKind::VerificationFailed => "verification_failed",
            EventKind::Blocked => "blocked",
            EventKind::ResetSucceeded => "reset_succeeded",
            EventKind::ResetFailed => "reset_failed",
            EventKind::Unlocked => "unlocked",
            EventKind::PolicyChanged => "policy_changed",
            EventKind::RegistrationCleared => "registration_cleared",
            EventKind::WritebackIncomplete => "writeback_incomplete",
            EventKind::Limited => "limited",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the event tells of something done (the others tell of a refusal).
    fn succeeded(self) -> bool {
        !matches!(
            self,
            EventKind::VerificationFailed
                | EventKind::Blocked
                | EventKind::ResetFailed
                | EventKind::WritebackIncomplete
                | EventKind::Limited
        )
    }
}

/// Where a request came from, as the HTTP layer saw it; set for the request's task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestInfo;
}

/// Runs `future` with `info` as the request every event it records came from.
pub async fn within_request<F: Future>(info: RequestInfo, future: F) -> F::Output {
    REQUEST.scope(info, future).await
}

/// A request id where the platform gives none (the local server): 16 random hex digits.
pub fn new_request_id(rng: &dyn crate::ports::Rng) -> String {
    let mut bytes = [0u8; 8];
    rng.fill(&mut bytes);
    hex::encode(bytes)
}

/// Where the request being served came from (empty outside a request).
pub fn current_request() -> RequestInfo {
    REQUEST.try_with(Clone::clone).unwrap_or_default()
}

/// One event of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(serialize_with = "rfc3339", deserialize_with = "from_rfc3339")]
    pub at: Timestamp,
    pub kind: EventKind,
    /// Whose account it concerns; `None` where nobody is known (a reset for a name that is
    /// not in scope).
    pub user: Option<Username>,
    /// Who acted, when not the person themselves (an administrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Username>,
    /// The methods concerned (a reset names every method proved).
    #[serde(default)]
    pub methods: Vec<MethodKind>,
    /// `success` or `failure`.
    pub result: String,
    /// The stable error code of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where a code went, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    /// What changed, for a policy change: `{old, new}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<serde_json::Value>,
}

fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

fn from_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time"))
}

/// An RFC 3339 time, or a day (`YYYY-MM-DD`, its first second in UTC).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(Timestamp(t.unix_timestamp()));
    }
    let day = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(Timestamp(day.midnight().assume_utc().unix_timestamp()))
}

/// The record an event is kept as: the event, and when the store may drop it.
#[derive(Serialize, Deserialize)]
struct EventRecord {
    #[serde(flatten)]
    event: Event,
    expires_at: Timestamp,
}

impl Record for EventRecord {
    fn expires_at(&self) -> Option<Timestamp> {
        Some(self.expires_at)
    }

    fn index_key(&self, key: &RecordKey) -> Option<IndexKey> {
        self.event.user.as_ref().map(|user| IndexKey { pk: user_partition(user), sk: key.sk.clone() })
    }
}

/// The partition of a month's events (`AUDIT#YYYY-MM`): a month's log is read with one query,
/// newest first, and the default 30 days touch two partitions at most.
fn month_partition(month: &str) -> String {
    format!("AUDIT#{month}")
}

/// The month (`YYYY-MM`) of a day (`YYYY-MM-DD`).
fn month_of(day: &str) -> String {
    day.get(..7).unwrap_or(day).to_owned()
}

/// The month before `month` (`YYYY-MM`).
fn previous_month(month: &str) -> Option<String> {
    let (year, month) = month.split_once('-')?;
    let (year, month): (i32, u8) = (year.parse().ok()?, month.parse().ok()?);
    Some(if month <= 1 { format!("{:04}-12", year - 1) } else { format!("{year:04}-{:02}", month - 1) })
}

/// The index partition of one person's events.
fn user_partition(user: &Username) -> String {
    format!("AUDIT-USER#{user}")
}

/// An event's sort key: its time (fixed width, so text order is time order) and a random
/// suffix, so events of one second never collide.
fn event_sort_key(at: Timestamp, suffix: &str) -> String {
    format!("{:012}#{suffix}", at.0.max(0))
}

/// The partition of a month's counters (`REPORT#YYYY-MM`): a 30-day report reads two at most.
fn report_partition(day: &str) -> String {
    format!("REPORT#{}", month_of(day))
}

/// A counter's sort key: day, event, method (`*`: every event of the kind, whatever its
/// methods) and result.
fn counter_sort_key(day: &str, kind: EventKind, method: Option<MethodKind>, result: &str) -> String {
    format!("{day}#{}#{}#{result}", kind.as_str(), method.map_or(ALL_METHODS, MethodKind::as_str))
}

/// The method part of the counter of every event of a kind.
const ALL_METHODS: &str = "*";

/// How long counters are kept: long enough for any report.
const COUNTER_DAYS: i64 = 400;

/// An event about to be recorded, described by the flow that makes it.
#[derive(Debug, Clone)]
pub struct Happened {
    pub kind: EventKind,
    pub user: Option<Username>,
    pub actor: Option<Username>,
    pub methods: Vec<MethodKind>,
    /// Why it failed: a stable error code.
    pub reason: Option<&'static str>,
    pub destination: Option<String>,
    pub changes: Option<serde_json::Value>,
}

impl Happened {
    pub fn new(kind: EventKind, user: Option<&Username>) -> Self {
        Self {
            kind,
            user: user.cloned(),
            actor: None,
            methods: Vec::new(),
            reason: None,
            destination: None,
            changes: None,
        }
    }

    pub fn method(mut self, method: MethodKind) -> Self {
        self.methods = vec![method];
        self
    }

    pub fn methods(mut self, methods: &[MethodKind]) -> Self {
        self.methods = methods.to_vec();
        self
    }

    /// It failed, for this reason.
    pub fn reason(mut self, error: &FlowError) -> Self {
        self.reason = Some(error.code());
        self
    }

    /// It failed, for a reason that is no error of the caller's.
    pub fn failed(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn actor(mut self, actor: &Username) -> Self {
        self.actor = Some(actor.clone());
        self
    }

    pub fn destination(mut self, masked: String) -> Self {
        self.destination = Some(masked);
        self
    }

    pub fn changes(mut self, changes: serde_json::Value) -> Self {
        self.changes = Some(changes);
        self
    }
}

/// One page of the audit log, newest first.
#[derive(Debug, Serialize)]
pub struct ActivityPage {
    pub events: Vec<Event>,
    /// Hand back as `cursor` for the next page; `None`: nothing older is left.
    pub next: Option<String>,
}

/// What to read of the audit log.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub user: Option<Username>,
    pub kind: Option<EventKind>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// Where a page of the log stopped: the month being read and the store's cursor within it.
#[derive(Serialize, Deserialize)]
struct ActivityCursor {
    month: Option<String>,
    after: String,
}

/// One figure of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub date: String,
    pub kind: EventKind,
    /// `None`: every event of the kind (the day's total).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<MethodKind>,
    pub result: String,
    pub count: i64,
}

/// Registrations and resets per day by method and result, over the last `days` days.
#[derive(Debug, Serialize)]
pub struct Report {
    pub days: u16,
    pub from: String,
    pub to: String,
    /// Methods registered, per day, method and result.
    pub registrations: Vec<ReportRow>,
    /// Resets and unlocks, per day, method proved and result; a reset with two methods counts
    /// once under each.
    pub resets: Vec<ReportRow>,
    /// Totals over the period, per event.
    pub totals: std::collections::BTreeMap<EventKind, i64>,
}

const DAY: i64 = 86_400;

impl Sspr {
    /// The writes that record `happened` now: the event, and its counters of the day (one per
    /// method). They go in the same transaction as the change the event tells of.
    pub fn audit(&self, happened: Happened) -> Result<Vec<Write>, Unavailable> {
        let at = self.ports.clock.now();
        let request = current_request();
        let mut suffix = [0u8; 8];
        self.ports.rng.fill(&mut suffix);
        let day = at.date();
        let key = RecordKey { pk: month_partition(&month_of(&day)), sk: event_sort_key(at, &hex::encode(suffix)) };
        let result = if happened.kind.succeeded() && happened.reason.is_none() { "success" } else { "failure" };
        let event = Event {
            at,
            kind: happened.kind,
            user: happened.user,
            actor: happened.actor,
            methods: happened.methods,
            result: result.to_owned(),
            reason: happened.reason.map(str::to_owned),
            destination: happened.destination,
            source_ip: request.source_ip,
            request_id: request.request_id,
            changes: happened.changes,
        };
        // One counter of the kind, and one per method concerned.
        let counter_expiry = Some(at.plus_secs(COUNTER_DAYS * DAY));
        let counters: Vec<Write> = std::iter::once(None)
            .chain(event.methods.iter().copied().map(Some))
            .map(|method| Write::Count {
                key: RecordKey { pk: report_partition(&day), sk: counter_sort_key(&day, event.kind, method, result) },
                by: 1,
                expires_at: counter_expiry,
                most: None,
            })
            .collect();
        let expires_at = at.plus_secs(self.settings.audit_days.max(1) * DAY);
        let mut writes = vec![put(&key, &Versioned::new(EventRecord { event, expires_at }))?];
        writes.extend(counters);
        Ok(writes)
    }

    /// The audit log, newest first, a page at a time: by day partitions, or through the index
    /// for one person; never a scan.
    pub async fn activity(&self, q: &ActivityQuery) -> Result<ActivityPage, FlowError> {
        let now = self.ports.clock.now();
        let to = q.to.unwrap_or(now).min(now);
        let from = q.from.unwrap_or(now.plus_secs(-self.settings.audit_days * DAY)).max(Timestamp(0));
        if from > to {
            return Ok(ActivityPage { events: Vec::new(), next: None });
        }
        let limit = q.limit.clamp(1, 100);
        let sort = SortKeys::Between { from: format!("{:012}", from.0), to: format!("{:012}~", to.0) };
        let cursor = match &q.cursor {
            Some(text) => Some(decode_cursor(text)?),
            None => None,
        };
        let mut events = Vec::new();
        if let Some(user) = &q.user {
            let after = cursor.map(|c| Cursor::new(c.after));
            let query = Query { partition: user_partition(user), sort, descending: true, limit, after };
            let page = self.ports.store.query_index(Index::ReconfirmDue, &query).await?;
            let keys: Vec<RecordKey> = page.items.into_iter().map(|(key, _)| key).collect();
            // One batch read whatever the number, so the function's role needs no single reads
            // of events.
            let stored = if keys.is_empty() { Vec::new() } else { self.ports.store.get_many(&keys).await? };
            for (key, stored) in keys.iter().zip(stored) {
                if let Some(record) = decode::<EventRecord>(key, stored)? {
                    events.push(record.value.event);
                }
            }
            events.retain(|e| q.kind.is_none_or(|k| e.kind == k));
            let next = page.next.map(|c| encode_cursor(&ActivityCursor { month: None, after: c.as_str().to_owned() }));
            return Ok(ActivityPage { events, next });
        }
        // Month by month, from the newest; a page ends where the limit is reached.
        let (mut month, mut after) = match cursor {
            Some(ActivityCursor { month: Some(month), after }) => {
                (month, Some(after).filter(|a| !a.is_empty()).map(Cursor::new))
            }
            _ => (month_of(&to.date()), None),
        };
        let first_month = month_of(&from.date());
        loop {
            let wanted = limit.saturating_sub(events.len()).max(1);
            let query = Query {
                partition: month_partition(&month),
                sort: sort.clone(),
                descending: true,
                limit: wanted,
                after: after.take(),
            };
            let page = self.ports.store.query(&query).await?;
            for (key, stored) in page.items {
                if let Some(record) = decode::<EventRecord>(&key, Some(stored))? {
                    if q.kind.is_none_or(|k| record.value.event.kind == k) {
                        events.push(record.value.event);
                    }
                }
            }
            // Where reading goes on: further in this month, else from the start of the one before.
            let resume = match page.next {
                Some(c) => (month.clone(), c.as_str().to_owned()),
                None if month > first_month => match previous_month(&month) {
                    Some(older) => (older, String::new()),
                    None => return Ok(ActivityPage { events, next: None }),
                },
                None => return Ok(ActivityPage { events, next: None }),
            };
            if events.len() >= limit {
                let next = ActivityCursor { month: Some(resume.0), after: resume.1 };
                return Ok(ActivityPage { events, next: Some(encode_cursor(&next)) });
            }
            (month, after) = (resume.0, Some(resume.1).filter(|a| !a.is_empty()).map(Cursor::new));
        }
    }

    /// Registrations and resets per day over the last `days` days (today included), read from
    /// the day counters: one query per month touched.
    pub async fn report(&self, days: u16) -> Result<Report, FlowError> {
        let days = days.clamp(1, 366);
        let now = self.ports.clock.now();
        let first = now.plus_secs(-(i64::from(days) - 1) * DAY).date();
        let last = now.date();
        // The months from the first day's to the last day's, oldest first.
        let mut months = vec![month_of(&last)];
        while months.last().is_some_and(|m| *m > month_of(&first)) {
            match months.last().and_then(|m| previous_month(m)) {
                Some(older) => months.push(older),
                None => break,
            }
        }
        months.reverse();
        let mut rows = Vec::new();
        for month in months {
            let mut after = None;
            loop {
                let query = Query {
                    partition: report_partition(&month),
                    sort: SortKeys::Between { from: first.clone(), to: format!("{last}~") },
                    descending: false,
                    limit: crate::ports::MAX_LIMIT,
                    after,
                };
                let page = self.ports.store.query_counters(&query).await?;
                rows.extend(page.items.into_iter().filter_map(|(key, count)| report_row(&key.sk, count)));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        let mut totals = std::collections::BTreeMap::new();
        let (mut registrations, mut resets) = (Vec::new(), Vec::new());
        for row in rows {
            match (row.method, row.kind) {
                (None, kind) => *totals.entry(kind).or_insert(0) += row.count,
                (Some(_), EventKind::MethodRegistered) => registrations.push(row),
                (Some(_), EventKind::ResetSucceeded | EventKind::ResetFailed | EventKind::Unlocked) => resets.push(row),
                (Some(_), _) => {}
            }
        }
        Ok(Report { days, from: first, to: last, registrations, resets, totals })
    }
}

fn report_row(sk: &str, count: i64) -> Option<ReportRow> {
    let mut parts = sk.split('#');
    let date = parts.next()?.to_owned();
    let kind = EventKind::parse(parts.next()?)?;
    let method = match parts.next()? {
        ALL_METHODS => None,
        m => Some(MethodKind::parse(m).ok()?),
    };
    let result = parts.next()?.to_owned();
    Some(ReportRow { date, kind, method, result, count })
}

fn encode_cursor(cursor: &ActivityCursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode_cursor(text: &str) -> Result<ActivityCursor, FlowError> {
    URL_SAFE_NO_PAD.decode(text).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).ok_or(
        FlowError::InvalidInput(crate::types::ParseError { field: "cursor", reason: "is not one this API gave" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::world::{username, World};
    use crate::records::save_all;

    async fn record(world: &World, kind: EventKind, user: &str) {
        let writes = world.sspr.audit(Happened::new(kind, Some(&username(user)))).expect("writes");
        save_all(&*world.sspr.ports.store, &writes).await.expect("recorded");
    }

    async fn read_all(world: &World, q: ActivityQuery) -> (Vec<(EventKind, String)>, usize) {
        let (mut all, mut pages, mut cursor) = (Vec::new(), 0, None);
        loop {
            let page = world.sspr.activity(&ActivityQuery { cursor: cursor.take(), ..q.clone() }).await.expect("page");
            assert!(page.events.len() <= q.limit.max(1));
            pages += 1;
            all.extend(page.events.into_iter().map(|e| (e.kind, e.user.map(|u| u.to_string()).unwrap_or_default())));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return (all, pages),
            }
        }
    }

    #[tokio::test]
    async fn the_log_pages_newest_first_across_months_and_keeps_to_its_range() {
        let world = World::new();
        let day = 86_400;
        // Day 1: three events; 20 days later, in the next month, two; each a second apart.
        for (i, kind) in
            [EventKind::CodeSent, EventKind::VerificationPassed, EventKind::ResetSucceeded].iter().enumerate()
        {
            record(&world, *kind, if i == 1 { "bob" } else { "alice" }).await;
            world.clock.advance(1);
        }
        let day_one = crate::ports::Clock::now(&world.clock);
        world.clock.advance(20 * day);
        record(&world, EventKind::MethodRegistered, "alice").await;
        world.clock.advance(1);
        record(&world, EventKind::MethodRemoved, "bob").await;

        let q = ActivityQuery { limit: 2, ..ActivityQuery::default() };
        let (all, pages) = read_all(&world, q.clone()).await;
        let kinds: Vec<EventKind> = all.iter().map(|(k, _)| *k).collect();
        use EventKind::*;
        assert_eq!(kinds, vec![MethodRemoved, MethodRegistered, ResetSucceeded, VerificationPassed, CodeSent]);
        assert!(pages >= 3, "{pages} pages of at most 2");

        let (bobs, _) = read_all(&world, ActivityQuery { user: Some(username("bob")), ..q.clone() }).await;
        assert_eq!(bobs, vec![(MethodRemoved, "bob".into()), (VerificationPassed, "bob".into())]);
        let (only, _) = read_all(&world, ActivityQuery { kind: Some(CodeSent), ..q.clone() }).await;
        assert_eq!(only, vec![(CodeSent, "alice".into())]);
        let (first_day, _) = read_all(&world, ActivityQuery { to: Some(day_one), ..q.clone() }).await;
        assert_eq!(first_day.len(), 3);
        let (last_day, _) = read_all(&world, ActivityQuery { from: Some(day_one.plus_secs(day)), ..q.clone() }).await;
        assert_eq!(last_day.len(), 2);
        let bad = world.sspr.activity(&ActivityQuery { cursor: Some("nonsense".into()), ..q }).await;
        assert!(matches!(bad, Err(FlowError::InvalidInput(_))));
    }

    #[test]
    fn months_step_back_across_years() {
        assert_eq!(previous_month("2026-11").as_deref(), Some("2026-10"));
        assert_eq!(previous_month("2026-01").as_deref(), Some("2025-12"));
        assert_eq!(month_of("2026-11-25"), "2026-11");
    }

    #[test]
    fn times_parse_as_rfc3339_or_days() {
        assert_eq!(parse_time("2026-11-25"), Some(Timestamp(1_795_564_800)));
        assert_eq!(parse_time("2026-11-25T00:00:10Z"), Some(Timestamp(1_795_564_810)));
        assert_eq!(parse_time("25/11/2026"), None);
    }
}
