//! What administrators do (docs/architecture.md, "Administration"): read and replace the
//! policy with optimistic concurrency, and clear a person's registration. Each change is
//! written in one transaction with its audit event.

use crate::audit::{EventKind, Happened};
use crate::policy::{Policy, PolicyDocument, POLICY_FIELDS};
use crate::ports::{StoreError, Write};
use crate::records::{decode, policy_key, put, registration_key, save_all, Registration, Versioned};
use crate::registration::SignedIn;
use crate::types::Username;
use crate::{FlowError, Sspr, CONFLICT_RETRIES};

/// A signed-in person whose identity token names an administrators' group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administrator {
    pub username: Username,
}

impl Sspr {
    /// The administrator behind a sign-in, or `Forbidden`: the check of the group claim that
    /// every admin route makes.
    pub fn administrator(&self, who: &SignedIn) -> Result<Administrator, FlowError> {
        if who.groups.iter().any(|g| self.settings.admin_groups.contains(g)) {
            Ok(Administrator { username: who.username.clone() })
        } else {
            Err(FlowError::Forbidden)
        }
    }

    /// The policy in force with its stored version (0: never saved, the deployment's default).
    async fn stored_policy(&self) -> Result<(Policy, u64), FlowError> {
        let key = policy_key();
        let stored = decode::<Policy>(&key, self.ports.store.get(&key).await?)?;
        Ok(stored.map_or_else(|| (self.settings.default_policy.clone(), 0), |v| (v.value, v.version)))
    }

    /// The whole policy document, with the version to hand back when replacing it.
    #[tracing::instrument(skip_all)]
    pub async fn policy_document(&self, _admin: &Administrator) -> Result<PolicyDocument, FlowError> {
        let (policy, version) = self.stored_policy().await?;
        Ok(PolicyDocument { policy, version })
    }

    /// Replaces the policy if it is still at the version `document` was read at; the change
    /// and its audit event (who, the old and new values of each field changed) are written
    /// together.
    #[tracing::instrument(skip_all)]
    pub async fn replace_policy(
        &self,
        admin: &Administrator,
        document: PolicyDocument,
    ) -> Result<PolicyDocument, FlowError> {
        document.policy.check().map_err(FlowError::InvalidPolicy)?;
        let (current, version) = self.stored_policy().await?;
        if version != document.version {
            return Err(FlowError::StaleVersion);
        }
        let changes = changed_fields(&current, &document.policy)?;
        let mut writes = vec![put(&policy_key(), &Versioned { value: document.policy.clone(), version })?];
        writes
            .extend(self.audit(Happened::new(EventKind::PolicyChanged, None).actor(&admin.username).changes(changes))?);
        match save_all(&*self.ports.store, &writes).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(FlowError::StaleVersion),
            Err(e) => return Err(e.into()),
        }
        self.cache_policy(&document.policy);
        tracing::info!(version = version + 1, "policy changed");
        Ok(PolicyDocument { policy: document.policy, version: version + 1 })
    }

    /// Deletes a person's registration: they must register again. The deletion and its audit
    /// event are written together.
    #[tracing::instrument(skip_all)]
    pub async fn clear_registration(&self, admin: &Administrator, user: &Username) -> Result<(), FlowError> {
        let key = registration_key(user);
        for _ in 0..CONFLICT_RETRIES {
            let Some(registration) = decode::<Registration>(&key, self.ports.store.get(&key).await?)? else {
                return Err(FlowError::NotRegistered);
            };
            let kinds: Vec<_> = registration.value.methods.iter().map(|m| m.kind).collect();
            let mut writes = vec![Write::Delete { key: key.clone(), version: registration.version }];
            writes.extend(self.audit(
                Happened::new(EventKind::RegistrationCleared, Some(user)).actor(&admin.username).methods(&kinds),
            )?);
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {
                    tracing::info!("registration cleared by an administrator");
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Conflict)
    }
}

/// `{old: {field: value}, new: {field: value}}` for each field whose value changed.
fn changed_fields(old: &Policy, new: &Policy) -> Result<serde_json::Value, FlowError> {
    let as_json = |p: &Policy| serde_json::to_value(p).map_err(|e| FlowError::Unavailable(e.to_string()));
    let (old, new) = (as_json(old)?, as_json(new)?);
    let (mut before, mut after) = (serde_json::Map::new(), serde_json::Map::new());
    for field in POLICY_FIELDS {
        if old.get(field) != new.get(field) {
            before.insert(field.to_owned(), old.get(field).cloned().unwrap_or_default());
            after.insert(field.to_owned(), new.get(field).cloned().unwrap_or_default());
        }
    }
    Ok(serde_json::json!({ "old": before, "new": after }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::SecretString;

    use super::*;
    use crate::audit::{ActivityQuery, EventKind};
    use crate::fakes::world::{username, World, ALICE, ALICE_EMAIL, ALICE_PHONE};
    use crate::policy::Enablement;
    use crate::reset::Completion;
    use crate::types::{Code, MethodKind};

    fn admin() -> Administrator {
        Administrator { username: username("admin") }
    }

    #[test]
    fn only_a_sign_in_with_an_admin_group_claim_is_an_administrator() {
        let world = World::new();
        let mut who = world.alice();
        assert!(matches!(world.sspr.administrator(&who), Err(FlowError::Forbidden)));
        who.groups.push("sspr-admins".into());
        assert!(matches!(world.sspr.administrator(&who), Err(FlowError::Forbidden)), "group names are exact");
        who.groups.push("SSPR-Admins".into());
        assert_eq!(world.sspr.administrator(&who).expect("admin").username.as_str(), ALICE);
    }

    #[tokio::test]
    async fn the_policy_is_replaced_only_at_the_version_it_was_read_at_and_each_change_is_audited() {
        let world = World::new();
        let read = world.sspr.policy_document(&admin()).await.expect("read");
        assert_eq!((read.version, &read.policy), (0, &world.sspr.settings.default_policy), "the default seeds it");
        let mut change = read.clone();
        change.policy.enablement = Enablement::Selected;
        change.policy.target_group = Some("SSPR-Users".into());
        let saved = world.sspr.replace_policy(&admin(), change.clone()).await.expect("saved");
        assert_eq!(saved.version, 1);
        assert_eq!(world.sspr.policy().await.expect("policy"), change.policy, "in force at once");
        // Someone else's write came first: the stale document is refused and changes nothing.
        let mut stale = read.clone();
        stale.policy.methods_required = 2;
        assert!(matches!(world.sspr.replace_policy(&admin(), stale).await, Err(FlowError::StaleVersion)));
        assert_eq!(world.sspr.policy_document(&admin()).await.expect("read").policy, change.policy);
        // An out-of-range value is refused even when built in code.
        let mut bad = saved.clone();
        bad.policy.reconfirm_days = 999;
        assert!(
            matches!(world.sspr.replace_policy(&admin(), bad).await, Err(FlowError::InvalidPolicy(e)) if e.field == "reconfirm_days")
        );

        let log = world.sspr.activity(&ActivityQuery { limit: 10, ..ActivityQuery::default() }).await.expect("log");
        assert_eq!(log.events.len(), 1, "{:?}", log.events);
        let event = &log.events[0];
        assert_eq!((event.kind, event.actor.as_ref().map(|a| a.as_str())), (EventKind::PolicyChanged, Some("admin")));
        let changes = event.changes.as_ref().expect("changes");
        assert_eq!(changes["old"], serde_json::json!({"enablement": "everyone", "target_group": null}));
        assert_eq!(changes["new"], serde_json::json!({"enablement": "selected", "target_group": "SSPR-Users"}));
    }

    #[tokio::test]
    async fn a_cleared_registration_must_be_made_again() {
        let world = World::new();
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        assert!(world.sspr.registration_status(&world.alice()).await.expect("status").registered);
        world.sspr.clear_registration(&admin(), &username(ALICE)).await.expect("cleared");
        let status = world.sspr.registration_status(&world.alice()).await.expect("status");
        assert!(!status.registered && status.must_register);
        let again = world.sspr.clear_registration(&admin(), &username(ALICE)).await;
        assert!(matches!(again, Err(FlowError::NotRegistered)));
        let log = world
            .sspr
            .activity(&ActivityQuery { kind: Some(EventKind::RegistrationCleared), limit: 10, ..Default::default() })
            .await
            .expect("log");
        assert_eq!(log.events.len(), 1);
        assert_eq!(log.events[0].user.as_ref().map(|u| u.as_str()), Some(ALICE));
        assert_eq!(log.events[0].methods, vec![MethodKind::Email]);
    }

    /// A scripted run: the activity log and the report tell exactly what happened.
    #[tokio::test]
    async fn activity_and_report_figures_equal_the_events_of_a_scripted_run() {
        let world = World::new();
        // Events of one second have no order among them: the clock moves a second a step.
        let tick = || world.clock.advance(1);
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        tick();
        world.register(MethodKind::Sms, ALICE_PHONE).await;
        tick();
        // One reset with a wrong code first, then a right one, then a refused password, then done.
        let start = world.sspr.start_reset(&username(ALICE), &world.challenge()).await.expect("start");
        world
            .sspr
            .send_code(&start.session, MethodKind::Sms, ALICE_PHONE, Some(&world.challenge()))
            .await
            .expect("sent");
        tick();
        let code = world.last_code_to(ALICE_PHONE);
        let wrong = Code::parse(if code.expose() == "11111111" { "22222222" } else { "11111111" }).expect("code");
        assert!(world.sspr.verify_method(&start.session, MethodKind::Sms, &wrong).await.is_err());
        tick();
        let token = world
            .sspr
            .verify_method(&start.session, MethodKind::Sms, &code)
            .await
            .expect("verified")
            .reset_token
            .expect("token");
        tick();
        let short = Completion::NewPassword(SecretString::from("short".to_owned()));
        assert!(world.sspr.complete_reset(&start.session, &token, short).await.is_err());
        tick();
        let good = Completion::NewPassword(SecretString::from("a-new-Passw0rd-for-alice".to_owned()));
        world.sspr.complete_reset(&start.session, &token, good).await.expect("done");
        tick();
        // A code asked for a number that is not registered.
        let other = world.sspr.start_reset(&username(ALICE), &world.challenge()).await.expect("start");
        world
            .sspr
            .send_code(&other.session, MethodKind::Sms, "+15555550199", Some(&world.challenge()))
            .await
            .expect("same answer");

        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let q = ActivityQuery { limit: 3, cursor: cursor.take(), ..ActivityQuery::default() };
            let page = world.sspr.activity(&q).await.expect("page");
            assert!(page.events.len() <= 3);
            all.extend(page.events);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let kinds: Vec<EventKind> = all.iter().map(|e| e.kind).collect();
        use EventKind::*;
        assert_eq!(
            kinds,
            vec![
                CodeSent,
                ResetSucceeded,
                ResetFailed,
                VerificationPassed,
                VerificationFailed,
                CodeSent,
                MethodRegistered,
                MethodRegistered
            ],
            "newest first"
        );
        let refused = &all[0];
        assert_eq!(
            (refused.result.as_str(), refused.reason.as_deref()),
            ("failure", Some("destination_not_registered"))
        );
        assert_eq!(refused.destination.as_deref(), Some("+1********99"), "masked");
        assert_eq!(all[2].reason.as_deref(), Some("password_rejected"));
        assert_eq!(all[1].methods, vec![MethodKind::Sms]);
        // Nothing secret in any event.
        let text = serde_json::to_string(&all).expect("json");
        for secret in [code.expose(), token.expose(), "a-new-Passw0rd-for-alice", ALICE_PHONE] {
            assert!(!text.contains(secret), "an event holds a secret");
        }
        // The same run, per person through the index.
        let alices = world
            .sspr
            .activity(&ActivityQuery { user: Some(username(ALICE)), limit: 100, ..ActivityQuery::default() })
            .await
            .expect("alice's");
        assert_eq!(alices.events, all);

        let report = world.sspr.report(7).await.expect("report");
        let mut expected = BTreeMap::new();
        for e in &all {
            *expected.entry(e.kind).or_insert(0) += 1;
        }
        assert_eq!(report.totals, expected);
        let registrations: Vec<(Option<MethodKind>, &str, i64)> =
            report.registrations.iter().map(|r| (r.method, r.result.as_str(), r.count)).collect();
        assert_eq!(registrations, vec![(Some(MethodKind::Email), "success", 1), (Some(MethodKind::Sms), "success", 1)]);
        let resets: Vec<(EventKind, Option<MethodKind>, &str, i64)> =
            report.resets.iter().map(|r| (r.kind, r.method, r.result.as_str(), r.count)).collect();
        assert_eq!(
            resets,
            vec![
                (ResetFailed, Some(MethodKind::Sms), "failure", 1),
                (ResetSucceeded, Some(MethodKind::Sms), "success", 1)
            ]
        );
    }

    #[tokio::test]
    async fn writeback_off_sends_people_to_the_helpdesk_and_unlock_follows_the_policy() {
        let world = World::with_directory(crate::fakes::directory::MemoryDirectory::with_lockout());
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        let mut doc = world.sspr.policy_document(&admin()).await.expect("read");
        doc.policy.writeback = false;
        doc.policy.unlock_without_reset = false;
        world.sspr.replace_policy(&admin(), doc).await.expect("saved");
        let start = world.sspr.start_reset(&username(ALICE), &world.challenge()).await.expect("start");
        world
            .sspr
            .send_code(&start.session, MethodKind::Email, ALICE_EMAIL, Some(&world.challenge()))
            .await
            .expect("sent");
        let code = world.last_code_to(ALICE_EMAIL);
        let token = world.sspr.verify_method(&start.session, MethodKind::Email, &code).await.expect("ok").reset_token;
        let token = token.expect("token");
        let password = Completion::NewPassword(SecretString::from("a-new-Passw0rd-for-alice".to_owned()));
        assert!(matches!(
            world.sspr.complete_reset(&start.session, &token, password).await,
            Err(FlowError::WritebackOff)
        ));
        assert!(matches!(
            world.sspr.complete_reset(&start.session, &token, Completion::UnlockOnly).await,
            Err(FlowError::UnlockNotAvailable)
        ));
        assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("alice-old-Passw0rd"));
    }
}

#[cfg(test)]
mod more_events {
    use crate::audit::{ActivityQuery, EventKind};
    use crate::fakes::directory::MemoryDirectory;
    use crate::fakes::world::{username, World, ALICE, ALICE_EMAIL, ALICE_PHONE};
    use crate::reset::Completion;
    use crate::types::{Code, MethodKind};

    async fn kinds(world: &World) -> Vec<(EventKind, String, Option<String>)> {
        let q = ActivityQuery { limit: 100, ..ActivityQuery::default() };
        let mut events = world.sspr.activity(&q).await.expect("log").events;
        events.reverse();
        events.into_iter().map(|e| (e.kind, e.result, e.reason)).collect()
    }

    #[tokio::test]
    async fn a_method_blocked_an_unlock_a_removal_and_a_reconfirmation_are_recorded() {
        let world = World::with_directory(MemoryDirectory::with_lockout());
        let tick = || world.clock.advance(1);
        world.register(MethodKind::Email, ALICE_EMAIL).await;
        tick();
        world.register(MethodKind::Sms, ALICE_PHONE).await;
        tick();
        let session = world.sspr.start_reset(&username(ALICE), &world.challenge()).await.expect("start").session;
        world.sspr.send_code(&session, MethodKind::Sms, ALICE_PHONE, Some(&world.challenge())).await.expect("sent");
        tick();
        let code = world.last_code_to(ALICE_PHONE);
        let wrong = Code::parse(if code.expose() == "11111111" { "22222222" } else { "11111111" }).expect("code");
        for _ in 0..5 {
            assert!(world.sspr.verify_method(&session, MethodKind::Sms, &wrong).await.is_err());
            tick();
        }
        // Five wrong proofs block the name from reset for a day.
        let r = world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&world.challenge())).await;
        assert!(matches!(r, Err(crate::FlowError::OverLimit(over)) if over.retry_after == 86_399), "{r:?}");
        world.clock.advance(86_400);
        let session = world.sspr.start_reset(&username(ALICE), &world.challenge()).await.expect("start").session;
        world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&world.challenge())).await.expect("sent");
        tick();
        let token = world
            .sspr
            .verify_method(&session, MethodKind::Email, &world.last_code_to(ALICE_EMAIL))
            .await
            .expect("verified")
            .reset_token
            .expect("token");
        tick();
        world.directory.lock(ALICE);
        world.sspr.complete_reset(&session, &token, Completion::UnlockOnly).await.expect("unlocked");
        tick();
        world.sspr.confirm_registration(&world.alice()).await.expect("reconfirmed");
        tick();
        let sms = world.sspr.registration_status(&world.alice()).await.expect("status").methods[1].id.clone();
        let id = crate::types::MethodId::parse(&sms).expect("id");
        world.sspr.remove_method(&world.alice(), &id).await.expect("removed");

        use EventKind::*;
        let failed = |kind| (kind, "failure".to_owned(), Some("invalid_code".to_owned()));
        let ok = |kind| (kind, "success".to_owned(), None);
        assert_eq!(
            kinds(&world).await,
            vec![
                ok(MethodRegistered),
                ok(MethodRegistered),
                ok(CodeSent),
                failed(VerificationFailed),
                failed(VerificationFailed),
                failed(VerificationFailed),
                failed(VerificationFailed),
                (Blocked, "failure".to_owned(), Some("too_many_attempts".to_owned())),
                (Limited, "failure".to_owned(), Some("reset_blocked".to_owned())),
                ok(CodeSent),
                ok(VerificationPassed),
                ok(Unlocked),
                ok(MethodsReconfirmed),
                ok(MethodRemoved),
            ]
        );
    }
}
