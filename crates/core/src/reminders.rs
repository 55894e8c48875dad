//! Re-confirmation reminders (docs/architecture.md, "Reminders"): once a day, everyone whose
//! re-confirmation falls due within the next days (or fell due lately) gets one reminder per
//! due day, by email if they registered one, else by SMS. Only due registrations are read:
//! the `reconfirm-due` index lists registrations by the day they were last confirmed, and the
//! run reads one index partition per due day, never a scan.

use serde::Serialize;

use crate::policy::Policy;
use crate::ports::{Index, Query, RecordKey, SortKeys, StoreError, MAX_BATCH, MAX_LIMIT};
use crate::records::{
    confirmed_partition, decode, load, reminder_key, save, spend, Registration, LEGACY_CONFIRMED_PARTITION,
};
use crate::types::{Destination, MethodKind, Timestamp, Username};
use crate::{FlowError, Sspr};

const DAY: i64 = 86_400;

/// What a run did. `due` counts the registrations it found due; each is then `sent`,
/// `already_sent` (a reminder for that due day went before, or by an overlapping run),
/// `failed` (tried again by the next run) or `unreachable` (no email nor SMS registered).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReminderRun {
    pub due: usize,
    pub sent: usize,
    pub already_sent: usize,
    pub failed: usize,
    pub unreachable: usize,
    /// Who was reminded, how and for which day; destinations masked.
    #[serde(skip)]
    pub reminded: Vec<String>,
}

enum Outcome {
    Sent(String),
    AlreadySent,
    Failed,
    Unreachable,
}

impl Sspr {
    /// Reminds everyone whose re-confirmation falls due within `within_days` from today, or
    /// fell due in the last `Settings::reminder_overdue_days`.
    #[tracing::instrument(skip_all, fields(within_days))]
    pub async fn send_reminders(&self, within_days: u16) -> Result<ReminderRun, FlowError> {
        let policy = self.policy().await?;
        let mut run = ReminderRun::default();
        if policy.reconfirm_days == 0 {
            return Ok(run);
        }
        let now = self.ports.clock.now();
        self.move_legacy_entries(&policy, now, within_days).await?;
        let today = now.0.div_euclid(DAY);
        let days = i64::from(policy.reconfirm_days);
        for due_day in (today - self.settings.reminder_overdue_days)..=(today + i64::from(within_days)) {
            let due = Timestamp(due_day * DAY);
            let confirmed = Timestamp((due_day - days) * DAY).date();
            let keys = self.index_partition(&confirmed_partition(&confirmed)).await?;
            for chunk in keys.chunks(MAX_BATCH) {
                let records = crate::records::load_many(&*self.ports.store, chunk).await?;
                for (key, record) in chunk.iter().zip(records) {
                    let Some(registration) = decode::<Registration>(key, record)? else { continue };
                    // The index may lag a write: count only what is due on this day now.
                    let still_due = registration.value.reconfirm_due(policy.reconfirm_days).map(Timestamp::date);
                    if still_due.as_deref() != Some(due.date().as_str()) {
                        continue;
                    }
                    let Some(username) = key.pk.strip_prefix("USER#").and_then(|n| Username::parse(n).ok()) else {
                        continue;
                    };
                    run.due += 1;
                    match self.remind(&username, &registration.value, due).await {
                        Outcome::Sent(line) => {
                            run.sent += 1;
                            run.reminded.push(line);
                        }
                        Outcome::AlreadySent => run.already_sent += 1,
                        Outcome::Failed => run.failed += 1,
                        Outcome::Unreachable => run.unreachable += 1,
                    }
                }
            }
        }
        Ok(run)
    }

    /// Every key listed in one partition of the index.
    async fn index_partition(&self, partition: &str) -> Result<Vec<RecordKey>, FlowError> {
        let mut keys = Vec::new();
        let mut after = None;
        loop {
            let query = Query {
                partition: partition.to_owned(),
                sort: SortKeys::All,
                descending: false,
                limit: MAX_LIMIT,
                after,
            };
            let page = self.ports.store.query_index(Index::ReconfirmDue, &query).await?;
            keys.extend(page.items.into_iter().map(|(key, _)| key));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Registrations indexed before confirmation days are saved again, which lists them under
    /// their day; only those that could be due now are read.
    async fn move_legacy_entries(&self, policy: &Policy, now: Timestamp, within_days: u16) -> Result<(), FlowError> {
        let latest = now.0 + i64::from(within_days) * DAY - i64::from(policy.reconfirm_days) * DAY;
        let query = Query {
            partition: LEGACY_CONFIRMED_PARTITION.to_owned(),
            sort: SortKeys::Between { from: format!("{:012}", 0), to: format!("{:012}~", latest.max(0)) },
            descending: false,
            limit: MAX_LIMIT,
            after: None,
        };
        let page = self.ports.store.query_index(Index::ReconfirmDue, &query).await?;
        for (key, _) in page.items {
            if let Some(registration) = load::<Registration>(&*self.ports.store, &key).await? {
                match save(&*self.ports.store, &key, &registration).await {
                    Ok(_) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// One reminder for `due`: the marker is written first, on the condition that none exists,
    /// so retried or overlapping runs send once; a failed send removes it for the next run.
    async fn remind(&self, username: &Username, registration: &Registration, due: Timestamp) -> Outcome {
        // By email if one is registered, else by SMS.
        let channel = registration
            .methods
            .iter()
            .filter(|m| matches!(m.kind, MethodKind::Email | MethodKind::Sms))
            .filter_map(|m| m.destination())
            .min_by_key(|d| matches!(d, Destination::Phone(_)));
        let Some(channel) = channel else {
            return Outcome::Unreachable;
        };
        let day = due.date();
        let marker = reminder_key(username, &day);
        let write = match spend(&marker, due.plus_secs(60 * DAY)) {
            Ok(write) => write,
            Err(e) => {
                tracing::error!(error = %e, "a reminder marker could not be made");
                return Outcome::Failed;
            }
        };
        match crate::records::save_all(&*self.ports.store, std::slice::from_ref(&write)).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Outcome::AlreadySent,
            Err(e) => {
                tracing::warn!(error = %e, "a reminder marker could not be written");
                return Outcome::Failed;
            }
        }
        let branding = &self.settings.branding;
        let sent = match channel {
            Destination::Email(email) => self.ports.mailer.send_email(email, &branding.reconfirm_reminder(&day)).await,
            Destination::Phone(phone) => {
                self.notice_sms(phone, &branding.reconfirm_reminder_sms(&day), Some(username)).await
            }
        };
        let how = channel.hint();
        match sent {
            Ok(()) => Outcome::Sent(format!("{username}: {how}, due {day}")),
            Err(e) => {
                tracing::warn!(error = %e, "a reminder could not be sent; the next run tries again");
                if let Err(e) = self.ports.store.delete(&marker, 1).await {
                    tracing::error!(error = %e, "a reminder marker could not be removed: that reminder is lost");
                }
                Outcome::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::world::{World, ALICE_EMAIL, ALICE_PHONE};
    use crate::records::{put, registration_key, Held, RegisteredMethod, Versioned};
    use crate::types::MethodId;

    fn reminders_to(world: &World, to: &str) -> usize {
        world
            .sent
            .sent_to(to)
            .iter()
            .filter(|m| m.text.contains("please confirm") || m.text.contains("Please check"))
            .count()
    }

    #[tokio::test]
    async fn one_reminder_per_due_day_whatever_runs_again_or_at_once() {
        let world = World::new();
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        // Confirmed today: due in 180 days, nothing to send for 173 days.
        assert_eq!(world.sspr.send_reminders(7).await.expect("run"), ReminderRun::default());
        world.clock.advance(174 * DAY);
        let run = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((run.due, run.sent, run.already_sent, run.failed), (1, 1, 0, 0), "{run:?}");
        assert_eq!(reminders_to(&world, ALICE_EMAIL), 1);
        let text = world.sent.sent_to(ALICE_EMAIL).last().expect("a reminder").text.clone();
        assert!(text.contains("2027-07-14") && text.contains("https://reset.example.com/register"), "{text}");
        assert!(run.reminded[0].starts_with("alice: a***@example.com, due 2027-07-14"), "{:?}", run.reminded);
        let again = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((again.due, again.sent, again.already_sent), (1, 0, 1), "the same day again");
        let (a, b) = futures::join!(world.sspr.send_reminders(7), world.sspr.send_reminders(7));
        assert_eq!(a.expect("run").sent + b.expect("run").sent, 0);
        assert_eq!(reminders_to(&world, ALICE_EMAIL), 1, "one reminder in all");
        // Overdue (181 days) and never re-confirmed: still that one reminder for that due day.
        world.clock.advance(7 * DAY);
        assert_eq!(world.sspr.send_reminders(7).await.expect("run").sent, 0);
        world.sspr.confirm_registration(&world.alice()).await.expect("confirmed");
        assert_eq!(world.sspr.send_reminders(7).await.expect("run").due, 0, "confirmed again: not due");
    }

    #[tokio::test]
    async fn overlapping_runs_send_one_reminder_each() {
        let world = World::new();
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        world.clock.advance(181 * DAY);
        let runs = futures::future::join_all((0..4).map(|_| world.sspr.send_reminders(7))).await;
        let sent: usize = runs.into_iter().map(|r| r.expect("run").sent).sum();
        assert_eq!(sent, 1);
        assert_eq!(reminders_to(&world, ALICE_EMAIL), 1);
    }

    #[tokio::test]
    async fn sms_when_no_email_and_a_failed_send_is_tried_by_the_next_run() {
        let world = World::new();
        world.register(MethodKind::Sms, ALICE_PHONE).await;
        world.clock.advance(175 * DAY);
        world.sent.fail_next_sends(1);
        let run = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((run.due, run.sent, run.failed), (1, 0, 1), "{run:?}");
        let run = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((run.due, run.sent, run.failed), (1, 1, 0), "the next run sends it: {run:?}");
        assert!(world.sent.sent_to(ALICE_PHONE).last().is_some_and(|m| m.text.contains("please confirm")));
    }

    #[tokio::test]
    async fn a_reminder_by_text_waits_for_the_next_days_budget() {
        let mut world = World::new();
        world.sspr.settings.limits.sms_per_day = 1;
        world.register(MethodKind::Sms, ALICE_PHONE).await;
        world.clock.advance(175 * DAY);
        // Another text spends today's budget of one.
        world
            .sspr
            .notice_sms(&crate::types::PhoneNumber::parse("+15555550111").expect("number"), "hi", None)
            .await
            .expect("within the budget");
        let run = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((run.due, run.sent, run.failed), (1, 0, 1), "over the budget: {run:?}");
        assert_eq!(reminders_to(&world, ALICE_PHONE), 0);
        world.clock.advance(DAY);
        let run = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((run.due, run.sent, run.failed), (1, 1, 0), "the next day's run sends it: {run:?}");
        assert_eq!(reminders_to(&world, ALICE_PHONE), 1);
    }

    #[tokio::test]
    async fn only_due_registrations_are_read() {
        let world = World::new();
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        // 10,000 registrations: 50 confirmed 180 days ago (due today), the rest over the last
        // 100 days.
        let store = &world.store;
        let start = crate::ports::Clock::now(&world.clock).0;
        let mut writes = Vec::new();
        for i in 0..10_000i64 {
            let name = Username::parse(&format!("user{i}")).expect("name");
            let days_ago = if i < 50 { 180 } else { i % 100 };
            let at = Timestamp(start - days_ago * DAY);
            let registration = Versioned::new(Registration {
                methods: vec![RegisteredMethod {
                    id: MethodId::parse(&format!("{i:016x}")).expect("id"),
                    kind: MethodKind::Email,
                    held: Held::Destination {
                        destination: Destination::parse(MethodKind::Email, &format!("user{i}@example.com"))
                            .expect("email"),
                    },
                    added_at: at,
                }],
                confirmed_at: Some(at),
            });
            writes.push(put(&registration_key(&name), &registration).expect("write"));
        }
        for chunk in writes.chunks(100) {
            crate::ports::RecordStore::write_all(store.inner(), chunk).await.expect("written");
        }
        store.reset();
        let run = world.sspr.send_reminders(7).await.expect("run");
        assert_eq!((run.due, run.sent, run.failed), (50, 50, 0), "due {} sent {}", run.due, run.sent);
        let calls = store.calls();
        assert!(calls.records_read <= 51, "read {} records for 50 due of 10,001", calls.records_read);
        println!(
            "reminders: 50 due of 10,001 registered: {} records read, {} index entries, {} round trips",
            calls.records_read,
            calls.index_entries_read,
            calls.total()
        );
    }
}
