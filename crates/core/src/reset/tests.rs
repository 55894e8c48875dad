//! The reset flow's branches on fakes, without HTTP: decoys, failure counts across new codes,
//! retries after a lost race, the token given back after a directory refusal, and the store
//! round trips each step costs.

use std::collections::BTreeSet;

use secrecy::SecretString;

use super::{Completion, ResetStarted};
use crate::fakes::directory::MemoryDirectory;
use crate::fakes::world::{username, World, ALICE, ALICE_EMAIL, ALICE_PHONE};
use crate::methods::questions::{Answer, ShownQuestion};
use crate::methods::Proof;
use crate::policy::Policy;
use crate::registration::RegistrationStatus;
use crate::types::{Code, MethodKind, ResetToken, SessionId};
use crate::FlowError;

async fn start(world: &World, name: &str) -> ResetStarted {
    world.sspr.start_reset(&username(name), &world.challenge()).await.expect("a session")
}

fn wrong(code: &Code) -> Code {
    Code::parse(if code.expose() == "11111111" { "22222222" } else { "11111111" }).expect("code")
}

async fn send(world: &World, session: &SessionId, method: MethodKind, to: &str) {
    world.sspr.send_code(session, method, to, Some(&world.challenge())).await.expect("accepted");
}

/// A session of alice's whose email is proved; returns the session and its reset token.
async fn verified(world: &World) -> (SessionId, ResetToken) {
    let session = start(world, ALICE).await.session;
    send(world, &session, MethodKind::Email, ALICE_EMAIL).await;
    let code = world.last_code_to(ALICE_EMAIL);
    let verified = world.sspr.verify_method(&session, MethodKind::Email, &code).await.expect("verified");
    (session, verified.reset_token.expect("a reset token"))
}

fn new_password(s: &str) -> Completion {
    Completion::NewPassword(SecretString::from(s.to_owned()))
}

#[tokio::test]
async fn nothing_is_sent_where_nothing_is_registered_and_the_answers_are_the_same() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let before = world.sent.sent().len();
    for (name, to) in [("nobody-here", ALICE_EMAIL), (ALICE, "someone.else@example.com")] {
        let session = start(&world, name).await.session;
        let sent = world
            .sspr
            .send_code(&session, MethodKind::Email, to, Some(&world.challenge()))
            .await
            .expect("the same answer");
        assert_eq!(sent.expires_in, 300);
        // A decoy stands in: any code is wrong, and the failure counts.
        let r = world.sspr.verify_method(&session, MethodKind::Email, &Code::parse("12345678").expect("code")).await;
        assert!(matches!(r, Err(FlowError::InvalidCode)), "{r:?}");
    }
    assert_eq!(world.sent.sent().len(), before, "nothing was sent");
}

#[tokio::test]
async fn a_new_code_does_not_reset_the_failures() {
    let world = World::new();
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    let session = start(&world, ALICE).await.session;
    send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
    let first = world.last_code_to(ALICE_PHONE);
    for _ in 0..3 {
        let r = world.sspr.verify_method(&session, MethodKind::Sms, &wrong(&first)).await;
        assert!(matches!(r, Err(FlowError::InvalidCode)), "{r:?}");
    }
    send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
    let second = world.last_code_to(ALICE_PHONE);
    let r = world.sspr.verify_method(&session, MethodKind::Sms, &wrong(&second)).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "the fourth failure: {r:?}");
    let r = world.sspr.verify_method(&session, MethodKind::Sms, &wrong(&second)).await;
    assert!(matches!(r, Err(FlowError::TooManyAttempts)), "the fifth failure: {r:?}");
    let r = world.sspr.verify_method(&session, MethodKind::Sms, &second).await;
    assert!(matches!(r, Err(FlowError::TooManyAttempts)), "the right code is dead too: {r:?}");
    let r = world.sspr.send_code(&session, MethodKind::Sms, ALICE_PHONE, Some(&world.challenge())).await;
    assert!(matches!(r, Err(FlowError::TooManyAttempts)), "and no new code is sent: {r:?}");
}

#[tokio::test]
async fn a_lost_race_is_retried_and_the_code_sent_once() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let session = start(&world, ALICE).await.session;
    let before = world.sent.sent_to(ALICE_EMAIL).len();
    world.store.inner().fail_next_writes(2);
    send(&world, &session, MethodKind::Email, ALICE_EMAIL).await;
    assert_eq!(world.sent.sent_to(ALICE_EMAIL).len(), before + 1, "one code, after two lost races");
    let code = world.last_code_to(ALICE_EMAIL);
    world.store.inner().fail_next_writes(1);
    let verified = world.sspr.verify_method(&session, MethodKind::Email, &code).await.expect("verified on retry");
    assert!(verified.reset_token.is_some());
}

#[tokio::test]
async fn a_race_lost_every_time_is_a_conflict_not_a_success() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let session = start(&world, ALICE).await.session;
    world.store.inner().fail_next_writes(1_000);
    let r = world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&world.challenge())).await;
    assert!(matches!(r, Err(FlowError::Conflict)), "{r:?}");
    world.store.inner().fail_next_writes(0);
}

#[tokio::test]
async fn the_token_is_given_back_when_the_directory_refuses_the_password() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let (session, token) = verified(&world).await;
    world.directory.refuse_next_password(&["The password was used before."]);
    let r = world.sspr.complete_reset(&session, &token, new_password("Refused-Passw0rd-1")).await;
    match r {
        Err(FlowError::PasswordRejected(reasons)) => assert_eq!(reasons, vec!["The password was used before."]),
        other => panic!("{other:?}"),
    }
    assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("alice-old-Passw0rd"), "nothing changed");
    world
        .sspr
        .complete_reset(&session, &token, new_password("Accepted-Passw0rd-2"))
        .await
        .expect("the token works again");
    assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("Accepted-Passw0rd-2"));
    assert_eq!(world.directory.sign_outs(ALICE), 1, "signed out elsewhere once");
    let r = world.sspr.complete_reset(&session, &token, new_password("Third-Passw0rd-3")).await;
    assert!(matches!(r, Err(FlowError::TokenUsed)), "{r:?}");
}

#[tokio::test]
async fn a_method_removed_after_it_was_proved_no_longer_counts() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    let (session, token) = verified(&world).await;
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    let email = status.methods.iter().find(|m| m.kind == MethodKind::Email).expect("email");
    let id = crate::types::MethodId::parse(&email.id).expect("id");
    world.sspr.remove_method(&world.alice(), &id).await.expect("removed");
    let r = world.sspr.complete_reset(&session, &token, new_password("Too-late-Passw0rd-1")).await;
    assert!(matches!(r, Err(FlowError::MethodNotAvailable)), "{r:?}");
    assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("alice-old-Passw0rd"));
}

#[tokio::test]
async fn another_change_to_the_registration_does_not_spoil_the_token() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let (session, token) = verified(&world).await;
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    world.sspr.complete_reset(&session, &token, new_password("Still-fine-Passw0rd-1")).await.expect("completed");
    let told: Vec<_> = world.sent.sent_to(ALICE_EMAIL);
    assert!(told.last().is_some_and(|m| m.text.contains("password was changed")), "{told:?}");
}

#[tokio::test]
async fn unlocking_needs_a_directory_with_a_lockout() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let (session, token) = verified(&world).await;
    let r = world.sspr.complete_reset(&session, &token, Completion::UnlockOnly).await;
    assert!(matches!(r, Err(FlowError::UnlockNotAvailable)), "{r:?}");

    let world = World::with_directory(MemoryDirectory::with_lockout());
    world.directory.lock(ALICE);
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let (session, token) = verified(&world).await;
    world.sspr.complete_reset(&session, &token, Completion::UnlockOnly).await.expect("unlocked");
    assert!(!world.directory.is_locked(ALICE));
    assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("alice-old-Passw0rd"), "the password stays");
    assert_eq!(world.directory.sign_outs(ALICE), 0, "an unlock ends no sessions");
    assert!(world.sent.sent_to(ALICE_EMAIL).last().is_some_and(|m| m.text.contains("unlocked")));
}

/// Hybrid: the cloud directory fails every attempt of the first completion. The on-premises
/// password stands, the person is told (an error naming the state, and the reset notice, since
/// a password did change), the event is recorded, and the same token finishes the cloud half.
#[tokio::test]
async fn a_cloud_write_that_fails_is_recorded_told_and_finished_with_the_same_token() {
    let cloud = MemoryDirectory::new();
    let world = World::hybrid(cloud.clone());
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let (session, token) = verified(&world).await;
    cloud.fail_next(3);
    let r = world.sspr.complete_reset(&session, &token, new_password("Alice-hybrid-Passw0rd-1")).await;
    assert!(matches!(r, Err(FlowError::WritebackIncomplete)), "{r:?}");
    assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("Alice-hybrid-Passw0rd-1"), "on premises");
    assert_eq!(cloud.password_of(ALICE).as_deref(), Some("alice-old-Passw0rd"), "not in the cloud yet");
    let told = world.sent.sent_to(ALICE_EMAIL);
    assert!(told.last().is_some_and(|m| m.text.contains("password was changed")), "{told:?}");
    let query = crate::audit::ActivityQuery {
        kind: Some(crate::audit::EventKind::WritebackIncomplete),
        limit: 10,
        ..Default::default()
    };
    let events = world.sspr.activity(&query).await.expect("the log").events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].user.as_ref().map(|u| u.as_str()), events[0].result.as_str()), (Some(ALICE), "failure"));

    // Not an unlock instead, nor another password: the same one finishes.
    let r = world.sspr.complete_reset(&session, &token, Completion::UnlockOnly).await;
    assert!(matches!(r, Err(FlowError::WritebackIncomplete | FlowError::UnlockNotAvailable)), "{r:?}");
    let r = world.sspr.complete_reset(&session, &token, new_password("Something-else-Passw0rd-2")).await;
    assert!(matches!(r, Err(FlowError::PasswordRejected(_))), "{r:?}");
    assert_eq!(cloud.password_of(ALICE).as_deref(), Some("alice-old-Passw0rd"));
    world.sspr.complete_reset(&session, &token, new_password("Alice-hybrid-Passw0rd-1")).await.expect("finished");
    assert_eq!(cloud.password_of(ALICE).as_deref(), Some("Alice-hybrid-Passw0rd-1"));
    assert_eq!(world.sent.sent_to(ALICE_EMAIL).len(), told.len(), "told once, not again");
    let r = world.sspr.complete_reset(&session, &token, new_password("Alice-hybrid-Passw0rd-1")).await;
    assert!(matches!(r, Err(FlowError::TokenUsed | FlowError::InvalidToken)), "spent: {r:?}");
}

#[tokio::test]
async fn a_challenge_opens_one_session() {
    let world = World::new();
    let challenge = world.challenge();
    world.sspr.start_reset(&username(ALICE), &challenge).await.expect("first use");
    let sessions = world.store.inner().inner().records().len();
    let r = world.sspr.start_reset(&username(ALICE), &challenge).await;
    assert!(matches!(r, Err(FlowError::ChallengeFailed)), "{r:?}");
    assert_eq!(world.store.inner().inner().records().len(), sessions, "no session was opened by the second use");
}

/// The round-trip budget of docs/architecture.md: one for a challenge, at most two store calls
/// per step, four to complete (the last clears the name's limits), eleven for a whole SMS reset — with the policy
/// cached or not, the limits read and counted on the way.
#[tokio::test]
async fn each_step_stays_within_its_round_trips() {
    let world = World::new();
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    // A cold process: the policy is not cached yet.
    world.clock.advance(61);
    let mut total = 0;
    let mut step = |name: &str, budget: usize| {
        let calls = world.store.calls();
        assert!(calls.total() <= budget, "{name}: {calls:?}");
        total += calls.total();
        world.store.reset();
    };
    world.store.reset();
    let _ = from("192.0.2.1", world.sspr.challenge_for_request()).await;
    let challenge = world.challenge();
    step("challenge", 1);
    let session = world.sspr.start_reset(&username(ALICE), &challenge).await.expect("started").session;
    step("start", 2);
    send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
    step("send-code", 2);
    let code = world.last_code_to(ALICE_PHONE);
    let token = world.sspr.verify_method(&session, MethodKind::Sms, &code).await.expect("verified").reset_token;
    step("verify", 2);
    world.sspr.complete_reset(&session, &token.expect("token"), new_password("Budget-Passw0rd-9")).await.expect("done");
    step("complete", 4);
    assert!(total <= 11, "a whole SMS reset: {total}");
}

#[tokio::test]
async fn the_policy_is_read_once_a_minute_and_a_change_applies_at_once_here() {
    let world = World::new();
    world.clock.advance(61);
    world.store.reset();
    world.sspr.policy().await.expect("policy");
    world.sspr.policy().await.expect("policy");
    assert_eq!(world.store.calls().total(), 1, "read once, then cached");
    let strict = Policy { methods_enabled: vec![MethodKind::Sms], ..Policy::default() };
    world.sspr.save_policy(strict.clone()).await.expect("saved");
    assert_eq!(world.sspr.policy().await.expect("policy"), strict, "this process applies it at once");
    world.clock.advance(61);
    world.store.reset();
    assert_eq!(world.sspr.policy().await.expect("policy"), strict);
    assert_eq!(world.store.calls().total(), 1, "read again after a minute");
    let session = start(&world, ALICE).await.session;
    let r = world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&world.challenge())).await;
    assert!(matches!(r, Err(FlowError::MethodNotAvailable)), "{r:?}");
}

// ---------------------------------------------------------------- the authenticator app

fn wrong_app_code(right: &Code) -> Code {
    Code::parse(if right.expose() == "111111" { "222222" } else { "111111" }).expect("code")
}

#[tokio::test]
async fn an_app_is_registered_by_its_first_right_code_and_proves_a_reset() {
    let world = World::new();
    let alice = world.alice();
    let enrolment = world.sspr.begin_totp(&alice).await.expect("enrolment");
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/Example:alice?"), "{}", enrolment.otpauth_uri);
    assert!(enrolment.qr_svg.starts_with("<?xml") || enrolment.qr_svg.starts_with("<svg"));
    let seed = crate::fakes::world::seed_of(&enrolment.manual_key);
    let right = world.app_code(&seed);
    let r = world.sspr.confirm_method(&alice, MethodKind::Totp, &wrong_app_code(&right)).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "{r:?}");
    let status = world.sspr.confirm_method(&alice, MethodKind::Totp, &right).await.expect("confirmed");
    assert_eq!(status.methods.len(), 1);
    assert_eq!((status.methods[0].kind, status.methods[0].hint.as_str()), (MethodKind::Totp, "added 2027-01-15"));
    let raw: String = world
        .store
        .inner()
        .inner()
        .records()
        .into_iter()
        .map(|(key, record)| format!("{} {} {}\n", key.pk, key.sk, serde_json::Value::Object(record.body)))
        .collect();
    assert!(raw.contains("\"seed\""), "{raw}");
    let base32 = enrolment.manual_key.replace(' ', "");
    assert!(!raw.contains(&base32) && !raw.contains(&hex::encode(seed.expose())), "the seed is sealed at rest");

    let session = start(&world, ALICE).await;
    assert!(session.methods.contains(&MethodKind::Totp));
    let r = world.sspr.verify_method(&session.session, MethodKind::Totp, &right).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "the code that confirmed the app is spent: {r:?}");
    world.clock.advance(30);
    let verified =
        world.sspr.verify_method(&session.session, MethodKind::Totp, &world.app_code(&seed)).await.expect("proved");
    let token = verified.reset_token.expect("one method is enough");
    world.sspr.complete_reset(&session.session, &token, new_password("App-proved-Passw0rd-1")).await.expect("done");
    assert_eq!(world.directory.password_of(ALICE).as_deref(), Some("App-proved-Passw0rd-1"));
}

#[tokio::test]
async fn an_app_code_is_accepted_once_across_sessions() {
    let world = World::new();
    let seed = world.register_totp().await;
    world.clock.advance(30);
    let code = world.app_code(&seed);
    let first = start(&world, ALICE).await.session;
    world.sspr.verify_method(&first, MethodKind::Totp, &code).await.expect("the first use");
    let second = start(&world, ALICE).await.session;
    let r = world.sspr.verify_method(&second, MethodKind::Totp, &code).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "replayed in a new session: {r:?}");
    world.clock.advance(30);
    world.sspr.verify_method(&second, MethodKind::Totp, &world.app_code(&seed)).await.expect("the next step's code");
}

#[tokio::test]
async fn five_wrong_app_codes_kill_the_app_for_the_session() {
    let world = World::new();
    let seed = world.register_totp().await;
    world.clock.advance(30);
    let session = start(&world, ALICE).await.session;
    let right = world.app_code(&seed);
    for n in 1..=5 {
        let r = world.sspr.verify_method(&session, MethodKind::Totp, &wrong_app_code(&right)).await;
        let expected = if n == 5 { "too_many_attempts" } else { "invalid_code" };
        assert_eq!(r.as_ref().map_err(FlowError::code).err(), Some(expected), "failure {n}: {r:?}");
    }
    let r = world.sspr.verify_method(&session, MethodKind::Totp, &right).await;
    assert!(matches!(r, Err(FlowError::TooManyAttempts)), "the right code is refused too: {r:?}");
}

#[tokio::test]
async fn app_codes_for_unknown_or_appless_users_are_wrong_like_any_other() {
    let world = World::new();
    let seed = world.register_totp().await;
    world.clock.advance(30);
    for name in ["nobody-here", "bob"] {
        let session = start(&world, name).await.session;
        let r = world.sspr.verify_method(&session, MethodKind::Totp, &world.app_code(&seed)).await;
        assert!(matches!(r, Err(FlowError::InvalidCode)), "{name}: {r:?}");
    }
}

#[tokio::test]
async fn a_replay_found_after_a_lost_race_counts_as_a_wrong_code() {
    let mut world = World::new();
    // The session's five, not the hour's tries across sessions (which count the first use).
    world.sspr.settings.limits.attempts = crate::limits::Rate::new(10, 3600);
    let seed = world.register_totp().await;
    world.clock.advance(30);
    let code = world.app_code(&seed);
    let first = start(&world, ALICE).await.session;
    world.sspr.verify_method(&first, MethodKind::Totp, &code).await.expect("the first use");
    let second = start(&world, ALICE).await.session;
    // The replay's write loses; the retry reads the spent step and refuses.
    world.store.inner().fail_next_writes(1);
    let r = world.sspr.verify_method(&second, MethodKind::Totp, &code).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "{r:?}");
    for _ in 0..4 {
        let _ = world.sspr.verify_method(&second, MethodKind::Totp, &code).await;
    }
    let r = world.sspr.verify_method(&second, MethodKind::Totp, &code).await;
    assert!(matches!(r, Err(FlowError::TooManyAttempts)), "replays count toward the five: {r:?}");
}

#[tokio::test]
async fn an_app_reset_stays_within_its_round_trips() {
    let world = World::new();
    let seed = world.register_totp().await;
    world.clock.advance(61);
    world.store.reset();
    let session = start(&world, ALICE).await.session;
    assert!(world.store.calls().total() <= 2, "start: {:?}", world.store.calls());
    world.store.reset();
    world.sspr.verify_method(&session, MethodKind::Totp, &world.app_code(&seed)).await.expect("proved");
    assert!(world.store.calls().total() <= 2, "verify: {:?}", world.store.calls());
}

// ---------------------------------------------------------------- security questions

const ANSWERS: [(&str, &str); 5] =
    [("q01", "Lisbon"), ("q03", "Rex the dog"), ("q07", "Fiat Panda"), ("q09", "Sunny"), ("q13", "Mrs Okafor")];

/// A world whose policy enables security questions, `to_register` and `to_reset` of them.
async fn world_with_questions(to_register: u8, to_reset: u8) -> World {
    let world = World::new();
    let policy = Policy {
        methods_enabled: vec![MethodKind::Email, MethodKind::Sms, MethodKind::Totp, MethodKind::Questions],
        questions_to_register: to_register,
        questions_to_reset: to_reset,
        ..Policy::default()
    };
    world.sspr.save_policy(policy).await.expect("policy");
    world
}

async fn register_questions(world: &World, pairs: &[(&str, &str)]) -> Result<RegistrationStatus, FlowError> {
    let chosen: Vec<_> = pairs.iter().map(|(q, a)| ((*q).to_owned(), SecretString::from((*a).to_owned()))).collect();
    world.sspr.register_questions(&world.alice(), &chosen).await
}

/// Answers to the drawn `questions`, right or (for `wrong`) not.
fn answers_to(questions: &[ShownQuestion], wrong: Option<&str>) -> Vec<(String, Answer)> {
    questions
        .iter()
        .map(|q| {
            let right = ANSWERS.iter().find(|(id, _)| *id == q.id).map_or("no idea at all", |(_, a)| a);
            let given = if wrong == Some(q.id.as_str()) { "certainly not" } else { right };
            (q.id.clone(), Answer::normalise(given).expect("answer"))
        })
        .collect()
}

async fn draw(world: &World, session: &SessionId) -> Vec<ShownQuestion> {
    world.sspr.reset_questions(session).await.expect("questions").questions
}

#[tokio::test]
async fn questions_are_registered_hashed_and_prove_a_reset() {
    let world = world_with_questions(3, 3).await;
    let status = register_questions(&world, &ANSWERS[..3]).await.expect("registered");
    assert_eq!((status.methods[0].kind, status.methods[0].hint.as_str()), (MethodKind::Questions, "3 questions"));
    let raw = format!("{:?}", world.store.inner().inner().records()).to_lowercase();
    assert!(raw.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "answers are Argon2id hashes");
    for (_, answer) in &ANSWERS[..3] {
        assert!(!raw.contains(&answer.to_lowercase()), "{answer} is stored in clear");
    }

    let session = start(&world, ALICE).await.session;
    let r = world.sspr.verify_method(&session, MethodKind::Questions, Proof::Answers(&[])).await;
    assert!(matches!(r, Err(FlowError::NoQuestionsDrawn)), "{r:?}");
    let drawn = draw(&world, &session).await;
    let ids: BTreeSet<&str> = drawn.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["q01", "q03", "q07"].into_iter().collect(), "3 of 3");
    assert_eq!(drawn[0].text, crate::methods::questions::bank_text(&drawn[0].id).expect("bank").to_owned());
    assert_eq!(draw(&world, &session).await, drawn, "the same until answered");
    let verified = world
        .sspr
        .verify_method(&session, MethodKind::Questions, Proof::Answers(&answers_to(&drawn, None)))
        .await
        .expect("proved");
    assert!(verified.reset_token.is_some());
}

#[tokio::test]
async fn a_wrong_answer_counts_and_redraws_the_subset() {
    let world = world_with_questions(5, 3).await;
    register_questions(&world, &ANSWERS).await.expect("registered");
    let session = start(&world, ALICE).await.session;
    let mut seen = BTreeSet::new();
    for n in 1..=5 {
        let drawn = draw(&world, &session).await;
        assert_eq!(drawn.len(), 3);
        seen.insert(drawn.iter().map(|q| q.id.clone()).collect::<Vec<_>>());
        let proof = answers_to(&drawn, Some(&drawn[n % 3].id));
        let r = world.sspr.verify_method(&session, MethodKind::Questions, Proof::Answers(&proof)).await;
        let expected = if n == 5 { "too_many_attempts" } else { "wrong_answers" };
        assert_eq!(r.as_ref().map_err(FlowError::code).err(), Some(expected), "attempt {n}: {r:?}");
        if n < 5 {
            let r = world.sspr.verify_method(&session, MethodKind::Questions, Proof::Answers(&proof)).await;
            assert!(matches!(r, Err(FlowError::NoQuestionsDrawn)), "answered questions are gone: {r:?}");
        }
    }
    assert!(seen.len() > 1, "five draws of 3 of 5 were all the same: {seen:?}");
    let r = world.sspr.reset_questions(&session).await;
    assert!(matches!(r, Err(FlowError::TooManyAttempts)), "{r:?}");
}

#[tokio::test]
async fn unknown_names_get_a_stable_plausible_set_that_nothing_answers() {
    let world = world_with_questions(3, 3).await;
    let sets: Vec<BTreeSet<String>> = futures::future::join_all((0..2).map(|_| async {
        let session = start(&world, "nobody-here").await.session;
        draw(&world, &session).await.into_iter().map(|q| q.id).collect()
    }))
    .await;
    assert_eq!(sets[0], sets[1], "the same questions each time");
    assert_eq!(sets[0].len(), 3);
    let session = start(&world, "nobody-here").await.session;
    let drawn = draw(&world, &session).await;
    assert!(drawn.iter().all(|q| !q.text.is_empty()));
    let r = world.sspr.verify_method(&session, MethodKind::Questions, Proof::Answers(&answers_to(&drawn, None))).await;
    assert!(matches!(r, Err(FlowError::WrongAnswers)), "{r:?}");
}

#[tokio::test]
async fn administrators_never_register_nor_use_questions() {
    let world = world_with_questions(3, 3).await;
    register_questions(&world, &ANSWERS[..3]).await.expect("registered while not an administrator");
    world.directory.add_user(ALICE, "alice-old-Passw0rd", &["SSPR-Users", "SSPR-Admins"]);
    let r = register_questions(&world, &ANSWERS[..3]).await;
    assert!(matches!(r, Err(FlowError::MethodNotAvailable)), "{r:?}");
    let r = world.sspr.question_bank(&world.alice()).await;
    assert!(matches!(r, Err(FlowError::MethodNotAvailable)), "{r:?}");
    // The questions registered before are not accepted: the administrator gets decoys.
    let session = start(&world, ALICE).await.session;
    let drawn = draw(&world, &session).await;
    assert_eq!(drawn.len(), 3, "a plausible set, like anyone's");
    let r = world.sspr.verify_method(&session, MethodKind::Questions, Proof::Answers(&answers_to(&drawn, None))).await;
    assert!(matches!(r, Err(FlowError::WrongAnswers)), "even the right answers: {r:?}");
}

#[tokio::test]
async fn registering_questions_follows_the_rules_and_needs_them_enabled() {
    let world = World::new();
    let r = register_questions(&world, &ANSWERS[..3]).await;
    assert!(matches!(r, Err(FlowError::MethodNotAvailable)), "off by default: {r:?}");
    let world = world_with_questions(4, 3).await;
    let r = register_questions(&world, &ANSWERS[..3]).await;
    assert!(matches!(r, Err(FlowError::InvalidInput(_))), "the policy asks for 4: {r:?}");
    let r = register_questions(&world, &[("q01", "Lisbon"), ("q03", "my pet"), ("q07", "Fiat"), ("q09", "Sun")]).await;
    assert!(matches!(r, Err(FlowError::InvalidInput(_))), "an answer with its question's word: {r:?}");
    let r = register_questions(
        &world,
        &[("q01", "Lisbon"), ("Your own question?", "x1y2z3"), ("q07", "Fiat"), ("q09", "Sun")],
    )
    .await;
    assert!(matches!(r, Err(FlowError::InvalidInput(_))), "no custom questions by default: {r:?}");
    let bank = world.sspr.question_bank(&world.alice()).await.expect("bank");
    assert_eq!((bank.bank.len(), bank.to_register, bank.custom_allowed), (24, 4, false));
    register_questions(&world, &ANSWERS[..4]).await.expect("four");
}

// ---------------------------------------------------------------- voice calls

#[tokio::test]
async fn a_voice_call_reads_the_code_twice_digit_by_digit_and_proves_a_reset() {
    let world = World::new();
    world
        .sspr
        .save_policy(Policy { methods_enabled: vec![MethodKind::Sms, MethodKind::Voice], ..Policy::default() })
        .await
        .expect("policy");
    world.register(MethodKind::Voice, ALICE_PHONE).await;
    let session = start(&world, ALICE).await;
    assert_eq!(session.methods, vec![MethodKind::Sms, MethodKind::Voice]);
    send(&world, &session.session, MethodKind::Voice, ALICE_PHONE).await;
    let call = world.sent.sent_to(ALICE_PHONE).pop().expect("a call");
    assert_eq!(call.channel, "voice");
    let code = world.last_spoken_code_to(ALICE_PHONE);
    let spoken: String = code.expose().chars().map(String::from).collect::<Vec<_>>().join(", ");
    assert_eq!(call.text.matches(&spoken).count(), 2, "read out twice, digit by digit: {}", call.text);
    assert!(!call.text.contains(code.expose()), "never as one number");
    // A voice code is not an SMS code: SMS was never registered.
    let r = world.sspr.verify_method(&session.session, MethodKind::Sms, &code).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "{r:?}");
    let verified = world.sspr.verify_method(&session.session, MethodKind::Voice, &code).await.expect("proved");
    assert!(verified.reset_token.is_some());
}

// ---------------------------------------------------------------- administrators

fn make_alice_administrator(world: &World) {
    world.directory.add_user(ALICE, "alice-old-Passw0rd", &["SSPR-Users", "SSPR-Admins"]);
}

#[tokio::test]
async fn an_administrator_proves_two_different_methods_and_start_does_not_tell() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    make_alice_administrator(&world);
    let started = start(&world, ALICE).await;
    let user = start(&world, "nobody-here").await;
    assert_eq!((started.required, started.methods.clone()), (user.required, user.methods), "the same answer");
    assert_eq!(started.required, 1, "as the policy says");
    let session = started.session;
    send(&world, &session, MethodKind::Email, ALICE_EMAIL).await;
    let first =
        world.sspr.verify_method(&session, MethodKind::Email, &world.last_code_to(ALICE_EMAIL)).await.expect("first");
    assert_eq!((first.remaining, first.reset_token.is_none()), (1, true), "an administrator needs a second method");
    send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
    let second =
        world.sspr.verify_method(&session, MethodKind::Sms, &world.last_code_to(ALICE_PHONE)).await.expect("second");
    let token = second.reset_token.expect("two methods: the token");
    world.sspr.complete_reset(&session, &token, new_password("Admin-two-gates-Passw0rd-1")).await.expect("done");
}

#[tokio::test]
async fn an_administrator_may_reset_whatever_the_enablement_but_not_with_one_method() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    make_alice_administrator(&world);
    let none = Policy { enablement: crate::policy::Enablement::None, ..Policy::default() };
    world.sspr.save_policy(none).await.expect("policy");
    let status = world.sspr.registration_status(&world.alice()).await.expect("status");
    assert!(status.must_register, "an administrator with one method must register a second");
    let session = start(&world, ALICE).await.session;
    send(&world, &session, MethodKind::Email, ALICE_EMAIL).await;
    assert_eq!(world.sent.sent_to(ALICE_EMAIL).len(), 2, "the code went: administrators are always enabled");
    let first =
        world.sspr.verify_method(&session, MethodKind::Email, &world.last_code_to(ALICE_EMAIL)).await.expect("first");
    assert_eq!(first.remaining, 1);
    let r = world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&world.challenge())).await;
    assert!(matches!(r, Err(FlowError::AlreadyVerified)), "the same method twice does not count: {r:?}");
    let r = world
        .sspr
        .complete_reset(&session, &ResetToken::generate(&crate::ports::SystemRng), new_password("x-Passw0rd-123"))
        .await;
    assert!(matches!(r, Err(FlowError::NotVerified)), "{r:?}");
    // A user who is not an administrator is out of scope under `none`.
    world.directory.add_user("bob", "bob-old-Passw0rd", &["SSPR-Users"]);
    let session = start(&world, "bob").await.session;
    let r = world.sspr.verify_method(&session, MethodKind::Email, &Code::parse("12345678").expect("code")).await;
    assert!(matches!(r, Err(FlowError::InvalidCode)), "{r:?}");
}

/// Who can get a reset token, over enablement × membership × administrator × methods
/// required. Nested membership is the directory's to expand: it reports the target group among
/// the person's groups, as the LDAP and AD adapters do for groups within groups.
#[tokio::test]
async fn who_can_get_a_reset_token_across_enablement_membership_role_and_methods_required() {
    use crate::policy::Enablement;
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Membership {
        Direct,
        Nested,
        None,
    }
    let mut cases = 0;
    for enablement in [Enablement::None, Enablement::Selected, Enablement::Everyone] {
        for membership in [Membership::Direct, Membership::Nested, Membership::None] {
            for administrator in [false, true] {
                for required in [1u8, 2] {
                    let world = World::new();
                    let mut groups = match membership {
                        Membership::Direct => vec!["SSPR-Users"],
                        // alice is in Team-A, which is in SSPR-Users.
                        Membership::Nested => vec!["Team-A", "SSPR-Users"],
                        Membership::None => vec!["Team-B"],
                    };
                    if administrator {
                        groups.push("SSPR-Admins");
                    }
                    world.directory.add_user(ALICE, "alice-old-Passw0rd", &groups);
                    world.register(MethodKind::Email, ALICE_EMAIL).await;
                    world.register(MethodKind::Sms, ALICE_PHONE).await;
                    let mut policy = Policy::selected("SSPR-Users");
                    policy.enablement = enablement;
                    policy.methods_required = required;
                    world.sspr.save_policy(policy).await.expect("policy");

                    let covered = match enablement {
                        Enablement::None => false,
                        Enablement::Everyone => true,
                        Enablement::Selected => membership != Membership::None,
                    };
                    let in_scope = administrator || covered;
                    let to_prove = if administrator { 2 } else { usize::from(required) };
                    let case = format!("{enablement:?} {membership:?} admin={administrator} required={required}");

                    let started = start(&world, ALICE).await;
                    assert_eq!(started.required, usize::from(required), "{case}: start says what the policy says");
                    let session = started.session;
                    let sent_before = world.sent.sent().len();
                    send(&world, &session, MethodKind::Email, ALICE_EMAIL).await;
                    assert_eq!(world.sent.sent().len() > sent_before, in_scope, "{case}: a code is sent");
                    let code =
                        if in_scope { world.last_code_to(ALICE_EMAIL) } else { Code::parse("12345678").expect("code") };
                    let first = world.sspr.verify_method(&session, MethodKind::Email, &code).await;
                    if !in_scope {
                        assert!(matches!(first, Err(FlowError::InvalidCode)), "{case}: {first:?}");
                        cases += 1;
                        continue;
                    }
                    let first = first.expect("verified");
                    assert_eq!(first.reset_token.is_some(), to_prove == 1, "{case}");
                    assert_eq!(first.remaining, to_prove - 1, "{case}");
                    if to_prove == 2 {
                        send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
                        let second = world
                            .sspr
                            .verify_method(&session, MethodKind::Sms, &world.last_code_to(ALICE_PHONE))
                            .await
                            .expect("second");
                        assert!(second.reset_token.is_some(), "{case}: two methods give the token");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 36);
}

/// ASVS 6.4.3, where the deployment turns it on: a registered authenticator app must be one of
/// the methods proved; the start answer does not tell.
#[tokio::test]
async fn a_registered_app_must_be_used_where_the_deployment_asks() {
    let mut world = World::new();
    world.sspr.settings.authenticator_required = true;
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let (session, token) = verified(&world).await;
    assert!(!session.expose().is_empty() && !token.expose().is_empty(), "without an app, email alone resets");

    let seed = world.register_totp().await;
    world.clock.advance(30);
    let started = start(&world, ALICE).await;
    assert_eq!(started.required, 1, "start does not tell");
    send(&world, &started.session, MethodKind::Email, ALICE_EMAIL).await;
    let email = world
        .sspr
        .verify_method(&started.session, MethodKind::Email, &world.last_code_to(ALICE_EMAIL))
        .await
        .expect("ok");
    assert_eq!((email.reset_token.is_none(), email.remaining), (true, 1), "the app is still to prove");
    let app = world.sspr.verify_method(&started.session, MethodKind::Totp, &world.app_code(&seed)).await.expect("ok");
    assert!(app.reset_token.is_some() && app.remaining == 0);
}

// ---------------------------------------------------------------- limits (docs/security.md)

use crate::audit::{within_request, RequestInfo};
use crate::limits::{Limit, OverLimit};

/// `future`, as a request from `ip`.
async fn from<F: std::future::Future>(ip: &str, future: F) -> F::Output {
    within_request(RequestInfo { source_ip: Some(ip.to_owned()), request_id: None }, future).await
}

fn over(r: Result<impl std::fmt::Debug, FlowError>) -> OverLimit {
    match r {
        Err(FlowError::OverLimit(over)) => over,
        other => panic!("not over a limit: {other:?}"),
    }
}

#[tokio::test]
async fn five_codes_an_hour_for_a_name_known_or_not_whatever_the_address() {
    let world = World::new();
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    for name in [ALICE, "nobody-here"] {
        // Ten addresses, a new session for each code: the name's limit still holds.
        for n in 0..5 {
            let session = from(&format!("192.0.2.{n}"), start(&world, name)).await.session;
            from(&format!("198.51.100.{n}"), send(&world, &session, MethodKind::Sms, ALICE_PHONE)).await;
            world.clock.advance(60);
        }
        let session = from("203.0.113.9", start(&world, name)).await.session;
        let r = from(
            "203.0.113.10",
            world.sspr.send_code(&session, MethodKind::Sms, ALICE_PHONE, Some(&world.challenge())),
        )
        .await;
        let refused = over(r);
        assert_eq!((refused.limit, refused.retry_after), (Limit::Sends, 3600 - 300), "{name}");
        // Email keeps its own count; an hour after the first, a text may go again.
        from("203.0.113.10", send(&world, &session, MethodKind::Email, ALICE_EMAIL)).await;
        world.clock.advance(3600 - 300);
        let session = from("203.0.113.9", start(&world, name)).await.session;
        from("203.0.113.10", send(&world, &session, MethodKind::Sms, ALICE_PHONE)).await;
        // A day on: the number's own limit (ten a day) starts again too.
        world.clock.advance(86_400);
    }
    let texts = world.sent.sent_to(ALICE_PHONE).len();
    assert_eq!(texts, 1 + 5 + 1, "the registration's, five, and one an hour later; none for the unknown name");
}

#[tokio::test]
async fn the_fifth_wrong_proof_in_a_day_blocks_reset_for_a_day_and_a_reset_clears_the_count() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    for name in [ALICE, "nobody-here"] {
        for n in 0..5 {
            let session = start(&world, name).await.session;
            send(&world, &session, MethodKind::Email, ALICE_EMAIL).await;
            let r = world.sspr.verify_method(&session, MethodKind::Email, &Code::parse("12345678").expect("c")).await;
            assert!(matches!(r, Err(FlowError::InvalidCode)), "{name} failure {n}: {r:?}");
            world.clock.advance(3600);
        }
        // Blocked from the fifth: a new session is refused, with the day to wait.
        let blocked = over(world.sspr.start_reset(&username(name), &world.challenge()).await);
        let left = 86_400 - 3600;
        assert_eq!((blocked.limit, blocked.retry_after, blocked.limit.code()), (Limit::Blocked, left, "reset_blocked"));
        world.clock.advance(left - 1);
        assert!(world.sspr.start_reset(&username(name), &world.challenge()).await.is_err(), "{name}: a second early");
        world.clock.advance(1);
        start(&world, name).await;
    }
    // Four wrong, then a reset: the count starts again, so four more do not block.
    for _ in 0..4 {
        wrong_once(&world).await;
    }
    let (session, token) = verified(&world).await;
    world.sspr.complete_reset(&session, &token, new_password("Cleared-Passw0rd-1")).await.expect("reset");
    for _ in 0..4 {
        wrong_once(&world).await;
    }
    start(&world, ALICE).await;
}

/// One wrong proof of alice's email, in a session of its own.
async fn wrong_once(world: &World) {
    let session = start(world, ALICE).await.session;
    let r = world.sspr.verify_method(&session, MethodKind::Email, &Code::parse("12345678").expect("c")).await;
    assert!(matches!(r, Err(FlowError::InvalidCode | FlowError::NoPendingCode)), "{r:?}");
}

#[tokio::test]
async fn five_tries_of_a_method_an_hour_across_sessions() {
    let world = World::new();
    let seed = world.register_totp().await;
    world.clock.advance(30);
    // Five right codes, one a step: no failure, so no block, but five tries.
    for n in 0..5 {
        let session = start(&world, ALICE).await.session;
        let r = world.sspr.verify_method(&session, MethodKind::Totp, &world.app_code(&seed)).await;
        assert!(r.is_ok(), "try {n}: {r:?}");
        world.clock.advance(30);
    }
    let session = start(&world, ALICE).await.session;
    let refused = over(world.sspr.verify_method(&session, MethodKind::Totp, &world.app_code(&seed)).await);
    assert_eq!((refused.limit, refused.retry_after), (Limit::Attempts, 3600 - 150), "the sixth try in the hour");
    // The limit is the method's: the email may still be tried.
    let r = world.sspr.verify_method(&session, MethodKind::Email, &Code::parse("12345678").expect("c")).await;
    assert!(!matches!(r, Err(FlowError::OverLimit(_))), "{r:?}");
}

#[tokio::test]
async fn an_address_may_start_twenty_resets_a_minute_and_another_is_not_hindered() {
    let world = World::new();
    for n in 0..20 {
        from("192.0.2.1", start(&world, &format!("user-{n}"))).await;
    }
    let refused = over(from("192.0.2.1", world.sspr.start_reset(&username("user-20"), &world.challenge())).await);
    assert_eq!(refused.limit, Limit::Address);
    assert!(refused.retry_after <= 60);
    from("192.0.2.2", start(&world, "user-20")).await;
    // An IPv6 network is one source, whatever address of its /64 it uses.
    for n in 0..20 {
        from(&format!("2001:db8:0:1::{n:x}"), start(&world, &format!("v6-{n}"))).await;
    }
    let r = from("2001:db8:0:1::ffff", world.sspr.start_reset(&username("v6-20"), &world.challenge())).await;
    assert_eq!(over(r).limit, Limit::Address);
    world.clock.advance(refused.retry_after);
    from("192.0.2.1", start(&world, "user-20")).await;
    let q = crate::audit::ActivityQuery { limit: 100, ..Default::default() };
    let events = world.sspr.activity(&q).await.expect("log").events;
    let limited = events.iter().filter(|e| e.kind == crate::audit::EventKind::Limited);
    let from_address: BTreeSet<_> = limited.map(|e| (e.reason.as_deref(), e.source_ip.as_deref())).collect();
    let want = [(Some("limit_address"), Some("192.0.2.1")), (Some("limit_address"), Some("2001:db8:0:1::ffff"))];
    assert_eq!(from_address, want.into_iter().collect());
}

#[tokio::test]
async fn a_phone_number_gets_five_codes_an_hour_whoever_asks() {
    let world = World::new();
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    for n in 0..5 {
        let session = start(&world, &format!("someone-{n}")).await.session;
        send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
    }
    // alice's own first code this hour is refused: the number had its five.
    let session = start(&world, ALICE).await.session;
    let refused = over(world.sspr.send_code(&session, MethodKind::Sms, ALICE_PHONE, Some(&world.challenge())).await);
    assert_eq!((refused.limit, refused.limit.code()), (Limit::Destination, "rate_limited"));
    send(&world, &session, MethodKind::Sms, "+15555550188").await;
}

#[tokio::test]
async fn the_days_texts_run_out_and_email_still_works() {
    let mut world = World::new();
    world.sspr.settings.limits.sms_per_day = 4;
    let methods_enabled = vec![MethodKind::Email, MethodKind::Sms, MethodKind::Voice];
    world.sspr.save_policy(Policy { methods_enabled, ..Policy::default() }).await.expect("calls too");
    world.register(MethodKind::Sms, ALICE_PHONE).await;
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    // Decoys spend nothing: only texts sent count.
    let session = start(&world, "nobody-here").await.session;
    send(&world, &session, MethodKind::Sms, "+15555550177").await;
    for _ in 0..2 {
        let session = start(&world, ALICE).await.session;
        send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
    }
    let texts = world.sent.sent_to(ALICE_PHONE).len();
    assert_eq!(texts, 4, "the registration's code, the notice of the email added (counted too), and two codes");
    for name in [ALICE, "nobody-here"] {
        let session = start(&world, name).await.session;
        let refused =
            over(world.sspr.send_code(&session, MethodKind::Sms, ALICE_PHONE, Some(&world.challenge())).await);
        assert_eq!((refused.limit.code(), name), ("sms_unavailable", name));
        let refused =
            over(world.sspr.send_code(&session, MethodKind::Voice, ALICE_PHONE, Some(&world.challenge())).await);
        assert_eq!(refused.limit, Limit::SmsBudget, "calls too");
        send(&world, &session, MethodKind::Email, ALICE_EMAIL).await;
    }
    assert_eq!(world.sent.sent_to(ALICE_PHONE).len(), texts, "no text over the budget");
    // Registering a number is refused too; the next UTC day has a new budget.
    let r = world.sspr.begin_method(&world.alice(), MethodKind::Sms, "+15555550166").await;
    assert_eq!(over(r).limit, Limit::SmsBudget);
    // A notice by text is not sent either, and the refusal is on record; by email it goes.
    let emails = world.sent.sent_to(ALICE_EMAIL).len();
    world.register(MethodKind::Email, "alice.other@example.com").await;
    assert_eq!(world.sent.sent_to(ALICE_PHONE).len(), texts, "no notice by text over the budget");
    assert_eq!(world.sent.sent_to(ALICE_EMAIL).len(), emails + 1, "the notice by email");
    let q = crate::audit::ActivityQuery { limit: 100, ..Default::default() };
    let events = world.sspr.activity(&q).await.expect("log").events;
    let notice_refused = events.iter().any(|e| {
        e.kind == crate::audit::EventKind::Limited
            && e.reason.as_deref() == Some("sms_budget")
            && e.user.as_ref().map(crate::types::Username::as_str) == Some(ALICE)
    });
    assert!(notice_refused, "{events:?}");
    world.clock.advance(86_400);
    let session = start(&world, ALICE).await.session;
    send(&world, &session, MethodKind::Sms, ALICE_PHONE).await;
}

#[tokio::test]
async fn texts_go_only_to_the_countries_the_policy_names() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    let uk_mobile = "+447400123456";
    let r = world.sspr.begin_method(&world.alice(), MethodKind::Sms, uk_mobile).await;
    assert!(matches!(r, Err(FlowError::CountryNotAllowed)), "{r:?}");
    let session = start(&world, ALICE).await.session;
    let r = world.sspr.send_code(&session, MethodKind::Sms, uk_mobile, Some(&world.challenge())).await;
    assert!(matches!(r, Err(FlowError::CountryNotAllowed)), "{r:?}");
    assert!(world.sent.sent_to(uk_mobile).is_empty());
    let policy = Policy { sms_countries: vec!["US".into(), "GB".into()], ..Policy::default() };
    world.sspr.save_policy(policy).await.expect("saved");
    world.register(MethodKind::Sms, uk_mobile).await;
    assert_eq!(world.sent.sent_to(uk_mobile).len(), 1);
}

#[tokio::test]
async fn registration_sends_five_codes_an_hour_and_three_a_day_to_one_destination() {
    let world = World::new();
    let alice = world.alice();
    for n in 0..3 {
        world.sspr.begin_method(&alice, MethodKind::Email, "same@example.com").await.expect("sent");
        world.clock.advance(60 * (n + 1));
    }
    let r = world.sspr.begin_method(&alice, MethodKind::Email, "same@example.com").await;
    assert_eq!(over(r).limit, Limit::Destination);
    world.sspr.begin_method(&alice, MethodKind::Email, "other@example.com").await.expect("sent");
    world.sspr.begin_method(&alice, MethodKind::Sms, ALICE_PHONE).await.expect("sent");
    let r = world.sspr.begin_method(&alice, MethodKind::Email, "third@example.com").await;
    assert_eq!(over(r).limit, Limit::Sends, "five an hour for the person");
}

#[tokio::test]
async fn every_code_after_the_first_of_a_session_needs_a_fresh_proof_of_work() {
    let world = World::new();
    world.register(MethodKind::Email, ALICE_EMAIL).await;
    for name in [ALICE, "nobody-here"] {
        let session = start(&world, name).await.session;
        world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, None).await.expect("the first needs none");
        let r = world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, None).await;
        assert!(matches!(r, Err(FlowError::ChallengeFailed)), "{name}, the second without: {r:?}");
        let fresh = world.challenge();
        world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&fresh)).await.expect("with a fresh one");
        let r = world.sspr.send_code(&session, MethodKind::Email, ALICE_EMAIL, Some(&fresh)).await;
        assert!(matches!(r, Err(FlowError::ChallengeFailed)), "{name}, a solution used twice: {r:?}");
    }
    // Two codes to alice (one each send that went); the refused ones sent nothing.
    let sent = world.sent.sent_to(ALICE_EMAIL).len();
    assert_eq!(sent, 1 + 2, "the registration's and two");
}

#[tokio::test]
async fn the_proof_of_work_doubles_for_an_address_over_its_limits() {
    let world = World::new();
    let difficulty = |ip: &'static str| {
        let world = &world;
        async move { from(ip, world.sspr.challenge_for_request()).await.maxnumber }
    };
    assert_eq!(difficulty("192.0.2.1").await, 20, "the base");
    for n in 0..20 {
        from("192.0.2.1", start(&world, &format!("user-{n}"))).await;
    }
    for (refused, max) in [(1, 40), (2, 80), (3, 80)] {
        let r = from("192.0.2.1", world.sspr.start_reset(&username("one-more"), &world.challenge())).await;
        assert_eq!(over(r).limit, Limit::Address);
        assert_eq!(difficulty("192.0.2.1").await, max, "after {refused} refusals: doubled, up to the ceiling");
    }
    assert_eq!(difficulty("192.0.2.2").await, 20, "another address is not hindered");
    world.clock.advance(3600);
    assert_eq!(difficulty("192.0.2.1").await, 20, "an hour on");
}
