//! The product's flows over HTTP against the local server, each run twice: on the embedded
//! adapters and on the AWS adapters against the moto server (DynamoDB, Cognito, SNS, SES).

use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use serde_json::{json, Value};

use crate::support::{
    app_code, assert_not_logged, destinations, record_secret, start_embedded, start_moto, start_moto_with, start_with,
    Backend, CognitoPool, Reply, TestServer, ADMIN, ADMIN_PASSWORD, ALICE, ALICE_PASSWORD,
};

on_both_backends!(
    register_then_reset_by_email_and_by_sms,
    five_wrong_codes_kill_the_method_even_across_new_codes,
    a_code_lives_300_seconds_and_a_session_900,
    a_code_works_only_in_its_session_for_its_method_and_once,
    a_reset_tells_every_registered_address_and_ends_other_sign_ins,
    a_reset_token_is_used_once,
    of_fifty_parallel_completions_exactly_one_succeeds,
    callers_cannot_tell_unknown_users_from_registered_ones,
    changing_methods_needs_a_recent_sign_in,
    each_route_stays_within_its_store_round_trips,
    an_app_registered_with_an_independent_phone_resets_once_per_code,
    questions_registered_from_the_bank_prove_a_reset_and_a_wrong_answer_redraws,
    registration_falls_due_for_reconfirmation_and_is_confirmed_again,
    a_due_registration_gets_exactly_one_reminder,
    of_many_registrations_a_reminder_run_reads_the_fifty_due,
    no_code_goes_to_a_number_no_person_has,
    limits_answer_429_with_retry_after_over_http,
);

/// Over a limit the API answers 429 with `Retry-After`, a stable code, the time to wait in the
/// body, and sends nothing; a number of a country the policy does not name is refused before
/// anything is sent (S4, S5 in docs/security.md).
async fn limits_answer_429_with_retry_after_over_http(server: TestServer) {
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let phone = "+15555550131";
    let before = server.messages_to(phone).await.len();
    register(&server, &token, "sms", phone).await;
    let uk_mobile = "+447400123456";
    let r = server.call("POST", "/v1/me/methods/sms", Some(&token), Some(json!({ "destination": uk_mobile }))).await;
    assert_eq!((r.status, r.error()), (400, "country_not_allowed"), "{r:?}");
    for n in 0..5 {
        let session = server.start_reset(ALICE).await.body["session"].as_str().expect("session").to_owned();
        let r = server
            .post("/v1/reset/send-code", json!({ "session": session, "method": "sms", "destination": phone }))
            .await;
        assert_eq!(r.status, 202, "code {n}: {r:?}");
    }
    // The registration's code and five reset codes, delivered after their answers.
    let mut sent = 0;
    for _ in 0..50 {
        sent = server.messages_to(phone).await.len();
        if sent >= before + 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sent, before + 6, "the registration's code and five");
    let session = server.start_reset(ALICE).await.body["session"].as_str().expect("session").to_owned();
    let r =
        server.post("/v1/reset/send-code", json!({ "session": session, "method": "sms", "destination": phone })).await;
    assert_eq!((r.status, r.error()), (429, "rate_limited"), "{r:?}");
    let wait: i64 = r.retry_after.as_deref().expect("Retry-After").parse().expect("seconds");
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert_eq!(r.body["retry_after"].as_i64(), Some(wait));
    assert!(r.body["message"].as_str().is_some_and(|m| m.contains("Wait")), "{r:?}");
    let r = server
        .post("/v1/reset/send-code", json!({ "session": session, "method": "sms", "destination": uk_mobile }))
        .await;
    assert_eq!((r.status, r.error()), (400, "country_not_allowed"), "{r:?}");
    assert_eq!(server.messages_to(phone).await.len(), sent, "nothing sent after the refusal");
    assert!(server.messages_to(uk_mobile).await.is_empty());

    // A second code in a session needs a fresh proof of work, and a solution serves once.
    let session = server.start_reset(ALICE).await.body["session"].as_str().expect("session").to_owned();
    let email = |challenge: Option<&str>| {
        let mut body = json!({ "session": session, "method": "email", "destination": "alice@example.com" });
        if let Some(challenge) = challenge {
            body["challenge"] = json!(challenge);
        }
        body
    };
    assert_eq!(server.call("POST", "/v1/reset/send-code", None, Some(email(None))).await.status, 202, "the first");
    let r = server.call("POST", "/v1/reset/send-code", None, Some(email(None))).await;
    assert_eq!((r.status, r.error()), (400, "challenge_failed"), "the second without: {r:?}");
    let challenge = server.challenge().await;
    let r = server.call("POST", "/v1/reset/send-code", None, Some(email(Some(&challenge)))).await;
    assert_eq!(r.status, 202, "with a fresh one: {r:?}");
    let r = server.call("POST", "/v1/reset/send-code", None, Some(email(Some(&challenge)))).await;
    assert_eq!((r.status, r.error()), (400, "challenge_failed"), "a solution used twice: {r:?}");
}

/// The deployment's texts and calls for the day, a budget of four here: once spent, texts and
/// calls are refused (`429 sms_unavailable` until midnight UTC) for a reset and a registration
/// alike, nothing more reaches the phone, and email still works (S5 in docs/security.md).
async fn the_days_texts_run_out_and_email_still_works(server: TestServer) {
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let (phone, email) = destinations();
    let before = server.messages_to(&phone).await.len();
    register(&server, &token, "sms", &phone).await;
    register(&server, &token, "email", &email).await;
    let mut refused = None;
    for n in 0..SMS_BUDGET {
        let session = start_reset(&server, ALICE).await;
        let r = server
            .post("/v1/reset/send-code", json!({ "session": session, "method": "sms", "destination": phone }))
            .await;
        if r.status == 429 {
            refused = Some((n, r));
            break;
        }
        assert_eq!(r.status, 202, "code {n}: {r:?}");
    }
    let (codes, r) = refused.expect("the budget runs out");
    assert!(codes >= 1, "at least one reset code within the budget");
    assert_eq!((r.status, r.error()), (429, "sms_unavailable"), "{r:?}");
    let wait: i64 = r.retry_after.as_deref().expect("Retry-After").parse().expect("seconds");
    let midnight = 86_400 - sspr_core::ports::Clock::now(&server.clock).0.rem_euclid(86_400);
    assert!((1..=midnight).contains(&wait) && midnight - wait <= 5, "until midnight UTC: {wait} of {midnight}");
    // Every text the budget allowed reached the phone: the registration's code, the notice of
    // the email added, and the reset codes; and nothing after.
    server.message_after(&phone, before + SMS_BUDGET as usize - 1).await;
    let session = start_reset(&server, ALICE).await;
    let r = server
        .post("/v1/reset/send-code", json!({ "session": session, "method": "voice", "destination": phone }))
        .await;
    assert_eq!((r.status, r.error()), (429, "sms_unavailable"), "calls too: {r:?}");
    let (other_phone, _) = destinations();
    let r = server.call("POST", "/v1/me/methods/sms", Some(&token), Some(json!({ "destination": other_phone }))).await;
    assert_eq!((r.status, r.error()), (429, "sms_unavailable"), "registering a number too: {r:?}");
    let code = server
        .code_sent_by(
            &email,
            server.post("/v1/reset/send-code", json!({ "session": session, "method": "email", "destination": email })),
        )
        .await;
    let r = server.post("/v1/reset/verify", json!({ "session": session, "method": "email", "code": code })).await;
    assert_eq!(r.status, 200, "email still proves a reset: {r:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.messages_to(&phone).await.len(), before + SMS_BUDGET as usize, "the budget, and no text more");
    assert!(server.messages_to(&other_phone).await.is_empty());
}

const SMS_BUDGET: u32 = 4;

fn budget_settings() -> Vec<(String, String)> {
    // Only the day's budget binds here: the person's and the number's hourly limits are wide.
    [("SSPR_SMS_DAILY_BUDGET", "4"), ("SSPR_LIMIT_SENDS", "100/3600"), ("SSPR_LIMIT_PHONE", "100/3600,100/86400")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_texts_run_out_and_email_still_works_embedded() {
    the_days_texts_run_out_and_email_still_works(start_with(Backend::Embedded, budget_settings(), None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_texts_run_out_and_email_still_works_moto() {
    the_days_texts_run_out_and_email_still_works(start_moto_with(budget_settings()).await).await;
}

/// Premium-rate, shared-cost and toll-free numbers are refused for texts and calls, and a fixed
/// line for texts, at registration and when a reset asks for a code: before anything is sent
/// (SMS pumping, S5 in docs/security.md).
async fn no_code_goes_to_a_number_no_person_has(server: TestServer) {
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let refused = [
        ("sms", "+449098790000"),
        ("voice", "+449098790000"),
        ("sms", "+448454640000"),
        ("sms", "+19002001234"),
        ("voice", "+18002345678"),
        ("sms", "+442079460000"),
        // Fictional lines (555-01XX) in premium-rate and toll-free area codes.
        ("sms", "+19005550100"),
        ("voice", "+18005550199"),
    ];
    for (kind, number) in refused {
        let r = server
            .call("POST", &format!("/v1/me/methods/{kind}"), Some(&token), Some(json!({ "destination": number })))
            .await;
        assert_eq!(
            (r.status, r.error(), r.body["field"].as_str()),
            (400, "invalid_input", Some("destination")),
            "{kind} {number}: {r:?}"
        );
    }
    let r = server.start_reset(ALICE).await;
    let session = r.body["session"].as_str().expect("session").to_owned();
    for (kind, number) in refused {
        let r = server
            .post("/v1/reset/send-code", json!({ "session": session, "method": kind, "destination": number }))
            .await;
        assert_eq!((r.status, r.error()), (400, "invalid_input"), "{kind} {number}: {r:?}");
    }
    for (_, number) in refused {
        assert!(server.messages_to(number).await.is_empty(), "nothing reached {number}");
    }
}

/// The body registering three questions of the bank with their answers.
pub(crate) fn three_answers() -> Value {
    json!({ "answers": [
        {"question": "q01", "answer": "Lisbon"},
        {"question": "q03", "answer": "Rex the dog"},
        {"question": "q07", "answer": "Fiat Panda"},
    ]})
}

/// Registers `destination` for `kind` as the signed-in person; returns the code used.
pub(crate) async fn register(server: &TestServer, token: &str, kind: &str, destination: &str) -> (String, Reply) {
    let code = server
        .code_sent_by(
            destination,
            server.call(
                "POST",
                &format!("/v1/me/methods/{kind}"),
                Some(token),
                Some(json!({ "destination": destination })),
            ),
        )
        .await;
    let reply = server
        .call("POST", &format!("/v1/me/methods/{kind}/confirm"), Some(token), Some(json!({ "code": code })))
        .await;
    assert_eq!(reply.status, 200, "confirming {kind}: {reply:?}");
    (code, reply)
}

/// Completes a verified reset with `password`, and checks alice signs in with it.
async fn complete_with(server: &TestServer, session: &str, reset_token: &str, password: &str) {
    let done = server
        .post("/v1/reset/complete", json!({"session": session, "reset_token": reset_token, "new_password": password}))
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(server.password_works(ALICE, password).await, "the new password signs in");
}

async fn start_reset(server: &TestServer, username: &str) -> String {
    let r = server.start_reset(username).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["session"].as_str().expect("session").to_owned()
}

/// Asks for a reset code for `kind` at `destination` in `session` and reads it from the message.
async fn send_code(server: &TestServer, session: &str, kind: &str, destination: &str) -> String {
    server
        .code_sent_by(
            destination,
            server
                .post("/v1/reset/send-code", json!({ "session": session, "method": kind, "destination": destination })),
        )
        .await
}

pub(crate) async fn verify(server: &TestServer, session: &str, kind: &str, code: &str) -> Reply {
    server.post("/v1/reset/verify", json!({ "session": session, "method": kind, "code": code })).await
}

/// Proves `kind` at `destination` in a new session of alice's; returns (session, code, reset
/// token).
async fn verified_session(server: &TestServer, kind: &str, destination: &str) -> (String, String, String) {
    verified_session_of(server, ALICE, kind, destination).await
}

/// The same for `username`.
pub(crate) async fn verified_session_of(
    server: &TestServer,
    username: &str,
    kind: &str,
    destination: &str,
) -> (String, String, String) {
    let session = start_reset(server, username).await;
    let code = server
        .code_sent_by(
            destination,
            server
                .post("/v1/reset/send-code", json!({ "session": session, "method": kind, "destination": destination })),
        )
        .await;
    let r = server.post("/v1/reset/verify", json!({ "session": session, "method": kind, "code": code })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["remaining"], 0);
    assert_eq!(r.body["verified"], json!([kind]));
    let token = r.body["reset_token"].as_str().expect("reset token").to_owned();
    (session, code, token)
}

/// Signs alice in and registers a fresh email address; returns (sign-in token, email, code).
async fn alice_with_email(server: &TestServer) -> (String, String, String) {
    let (_, email) = destinations();
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let (code, _) = register(server, &token, "email", &email).await;
    (token, email, code)
}

async fn register_then_reset_by_email_and_by_sms(server: TestServer) {
    let (phone, email) = destinations();
    let mut secrets: Vec<String> = vec![ALICE_PASSWORD.to_owned()];

    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let status = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body, json!({"registered": false, "must_register": true, "reconfirm_due": null, "methods": []}));
    assert_eq!(server.call("GET", "/v1/me/registration", None, None).await.status, 401);

    // A destination is saved only once its code is confirmed.
    let wrong =
        server.call("POST", "/v1/me/methods/email/confirm", Some(&token), Some(json!({"code": "00000000"}))).await;
    assert_eq!(wrong.error(), "no_pending_code");
    let (code, reply) = register(&server, &token, "email", &email).await;
    secrets.push(code);
    assert_eq!(reply.body["registered"], true);
    assert_eq!(reply.body["must_register"], false);
    assert_eq!(reply.body["methods"][0]["kind"], "email");
    let hint = reply.body["methods"][0]["hint"].as_str().expect("hint");
    assert!(hint.starts_with("a***@"), "{hint}");
    assert!(!reply.body.to_string().contains(&email), "the response shows only a hint");
    let (code, reply) = register(&server, &token, "sms", &phone).await;
    secrets.push(code);
    assert_eq!(reply.body["methods"].as_array().map(Vec::len), Some(2));
    assert!(!reply.body.to_string().contains(&phone));

    // Reset by email.
    let first = "Brand-new-Passw0rd-1";
    let (session, code, reset_token) = verified_session(&server, "email", &email).await;
    secrets.extend([code, reset_token.clone(), first.to_owned()]);
    let done = server
        .post("/v1/reset/complete", json!({"session": session, "reset_token": reset_token, "new_password": first}))
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body, json!({"done": true}));
    assert!(server.password_works(ALICE, first).await, "the new password signs in");
    assert!(!server.password_works(ALICE, ALICE_PASSWORD).await, "the old password does not");
    let notices = server.messages_to(&email).await;
    assert!(notices.last().is_some_and(|m| m.contains("password was changed")), "the user is told");
    assert!(!notices.iter().any(|m| m.contains(first)), "no password in any message");

    // Reset by SMS.
    let second = "Another-new-Passw0rd-2";
    let (session, code, reset_token) = verified_session(&server, "sms", &phone).await;
    secrets.extend([code, reset_token.clone(), second.to_owned()]);
    let done = server
        .post("/v1/reset/complete", json!({"session": session, "reset_token": reset_token, "new_password": second}))
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(server.password_works(ALICE, second).await);
    assert!(!server.password_works(ALICE, first).await);

    // S6, S9: nothing secret at rest or in the logs.
    let raw = server.raw_store().await;
    assert!(raw.contains("SESSION#") && raw.contains("USER#alice"), "the scan sees the records");
    for secret in &secrets {
        assert!(!raw.contains(secret.as_str()), "a secret is stored in clear");
    }
    assert_not_logged(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

/// S3 in docs/security.md: five wrong codes end the method for the session; asking for a new
/// code does not start the count again.
async fn five_wrong_codes_kill_the_method_even_across_new_codes(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    let session = start_reset(&server, ALICE).await;
    let wrong_for = |code: &str| if code == "11111111" { "22222222" } else { "11111111" }.to_owned();
    let first = send_code(&server, &session, "email", &email).await;
    for attempt in 1..=3 {
        let r = verify(&server, &session, "email", &wrong_for(&first)).await;
        assert_eq!((r.status, r.error()), (400, "invalid_code"), "attempt {attempt}: {r:?}");
    }
    // A new code after three failures: two more wrong ones make five.
    let code = send_code(&server, &session, "email", &email).await;
    let r = verify(&server, &session, "email", &wrong_for(&code)).await;
    assert_eq!((r.status, r.error()), (400, "invalid_code"), "attempt 4: {r:?}");
    let r = verify(&server, &session, "email", &wrong_for(&code)).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "attempt 5 counts the failures before the new code");
    let r = verify(&server, &session, "email", &code).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "the right code is dead too");
    let r =
        server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email})).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "no new code either");
}

/// S2 in docs/security.md: a code is good for 300 seconds from when it was sent, a session
/// (and the reset token it holds) for 900 seconds from when it started.
async fn a_code_lives_300_seconds_and_a_session_900(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;

    let session = start_reset(&server, ALICE).await;
    let code = send_code(&server, &session, "email", &email).await;
    server.clock.advance(299);
    let r = verify(&server, &session, "email", &code).await;
    assert_eq!(r.status, 200, "a code 299 s old: {r:?}");

    let session = start_reset(&server, ALICE).await;
    let code = send_code(&server, &session, "email", &email).await;
    server.clock.advance(300);
    let r = verify(&server, &session, "email", &code).await;
    assert_eq!((r.status, r.error()), (400, "code_expired"), "a code 300 s old: {r:?}");
    // A fresh code works within the session.
    let code = send_code(&server, &session, "email", &email).await;
    let r = verify(&server, &session, "email", &code).await;
    assert_eq!(r.status, 200, "a fresh code in the same session: {r:?}");

    // At 899 s a session still sends, verifies and hands out a reset token...
    let session = start_reset(&server, ALICE).await;
    server.clock.advance(899);
    let code = send_code(&server, &session, "email", &email).await;
    let r = verify(&server, &session, "email", &code).await;
    assert_eq!(r.status, 200, "a session 899 s old: {r:?}");
    let token = r.body["reset_token"].as_str().expect("reset token").to_owned();
    // ...at 900 s it is over, and so is its token.
    server.clock.advance(1);
    let r = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": token, "new_password": "Too-late-Passw0rd-9"}),
        )
        .await;
    assert_eq!((r.status, r.error()), (410, "session_expired"), "a session 900 s old: {r:?}");
    let r =
        server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email})).await;
    assert_eq!((r.status, r.error()), (410, "session_expired"), "{r:?}");
    assert!(server.password_works(ALICE, ALICE_PASSWORD).await, "nothing changed");
}

/// S2 in docs/security.md: a code proves one method in one session, once.
async fn a_code_works_only_in_its_session_for_its_method_and_once(server: TestServer) {
    let (token, email, _) = alice_with_email(&server).await;
    let (phone, _) = destinations();
    register(&server, &token, "sms", &phone).await;
    let a = start_reset(&server, ALICE).await;
    let b = start_reset(&server, ALICE).await;
    let code_a = send_code(&server, &a, "email", &email).await;
    let code_b = send_code(&server, &b, "email", &email).await;
    let sms_a = send_code(&server, &a, "sms", &phone).await;
    assert!(code_a != code_b && code_a != sms_a, "three codes drawn alike");

    let r = verify(&server, &b, "email", &code_a).await;
    assert_eq!((r.status, r.error()), (400, "invalid_code"), "session A's code in session B: {r:?}");
    let r = verify(&server, &a, "sms", &code_a).await;
    assert_eq!((r.status, r.error()), (400, "invalid_code"), "an email code presented as sms: {r:?}");

    // Where they belong, both codes work.
    let r = verify(&server, &b, "email", &code_b).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = verify(&server, &a, "email", &code_a).await;
    assert_eq!(r.status, 200, "{r:?}");
    let reset_token = r.body["reset_token"].as_str().expect("reset token").to_owned();

    // Used once, a code proves nothing more: not again, and not after the reset.
    let r = verify(&server, &a, "email", &code_a).await;
    assert_eq!((r.status, r.error()), (409, "already_verified"), "{r:?}");
    assert!(r.body.get("reset_token").is_none(), "{r:?}");
    let done = server
        .post(
            "/v1/reset/complete",
            json!({"session": a, "reset_token": reset_token, "new_password": "Brand-new-Passw0rd-1"}),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    let r = verify(&server, &a, "email", &code_a).await;
    assert!(r.status >= 400 && r.body.get("reset_token").is_none(), "a used code after the reset: {r:?}");
    let r = verify(&server, &a, "sms", &sms_a).await;
    assert!(r.status >= 400 && r.body.get("reset_token").is_none(), "a completed session proves nothing: {r:?}");
}

/// S10 in docs/security.md: after a reset every registered address is told, and sessions
/// elsewhere end (on Cognito, a refresh token from before the reset stops working).
async fn a_reset_tells_every_registered_address_and_ends_other_sign_ins(server: TestServer) {
    let (token, first, _) = alice_with_email(&server).await;
    let (_, second) = destinations();
    register(&server, &token, "email", &second).await;
    let refresh_token = match &server.backend {
        Backend::Moto { sdk, pool, .. } => {
            let refresh = cognito_refresh_token(sdk, pool, ALICE_PASSWORD).await;
            assert!(cognito_refresh_works(sdk, pool, &refresh).await, "the refresh token works before the reset");
            Some(refresh)
        }
        Backend::Embedded => None,
    };
    let before = (server.messages_to(&first).await.len(), server.messages_to(&second).await.len());

    let (session, _, reset_token) = verified_session(&server, "email", &second).await;
    let new_password = "Brand-new-Passw0rd-1";
    let done = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": reset_token, "new_password": new_password}),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");

    let told = |messages: Vec<String>, before: usize| {
        messages.iter().skip(before).filter(|m| m.contains("password was changed")).count()
    };
    // The second address also received the reset code; each gets exactly one notice.
    assert_eq!(told(server.messages_to(&first).await, before.0), 1, "the first address is told");
    assert_eq!(told(server.messages_to(&second).await, before.1), 1, "the second address is told");
    if let (Backend::Moto { sdk, pool, .. }, Some(refresh)) = (&server.backend, refresh_token) {
        assert!(!cognito_refresh_works(sdk, pool, &refresh).await, "a refresh token from before the reset");
        assert!(server.password_works(ALICE, new_password).await);
    }
}

/// Signs alice in to Cognito with `password` and returns the refresh token an application
/// would keep.
async fn cognito_refresh_token(sdk: &aws_config::SdkConfig, pool: &CognitoPool, password: &str) -> String {
    let out = aws_sdk_cognitoidentityprovider::Client::new(sdk)
        .admin_initiate_auth()
        .user_pool_id(&pool.pool_id)
        .client_id(&pool.client_id)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", ALICE)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .expect("sign in to Cognito");
    let refresh = out.authentication_result().and_then(|r| r.refresh_token()).expect("a refresh token").to_owned();
    record_secret(&refresh);
    refresh
}

/// Whether Cognito still gives new tokens for `refresh`.
async fn cognito_refresh_works(sdk: &aws_config::SdkConfig, pool: &CognitoPool, refresh: &str) -> bool {
    let out = aws_sdk_cognitoidentityprovider::Client::new(sdk)
        .admin_initiate_auth()
        .user_pool_id(&pool.pool_id)
        .client_id(&pool.client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", refresh)
        .send()
        .await;
    match out {
        Ok(out) => out.authentication_result().and_then(|r| r.access_token()).is_some(),
        Err(e) => {
            let e = e.into_service_error();
            assert!(e.is_not_authorized_exception(), "refreshing failed otherwise than as not authorized: {e}");
            false
        }
    }
}

async fn a_reset_token_is_used_once(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    let (session, _, token) = verified_session(&server, "email", &email).await;
    let body = json!({"session": session, "reset_token": token, "new_password": "Brand-new-Passw0rd-1"});
    assert_eq!(server.post("/v1/reset/complete", body.clone()).await.status, 200);
    let again = server.post("/v1/reset/complete", body).await;
    assert_eq!((again.status, again.error()), (409, "token_used"), "{again:?}");
    let other = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": token, "new_password": "Third-Passw0rd-3"}),
        )
        .await;
    assert_eq!(other.error(), "token_used");
    assert!(server.password_works(ALICE, "Brand-new-Passw0rd-1").await);
    // A forged token never works, even on a fresh verified session.
    let (session, _, _) = verified_session(&server, "email", &email).await;
    let forged = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": "AAAAAAAAAAAAAAAAAAAAAA", "new_password": "Forged-Passw0rd-4"}),
        )
        .await;
    assert_eq!((forged.status, forged.error()), (403, "invalid_token"));
}

async fn of_fifty_parallel_completions_exactly_one_succeeds(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    let (session, _, token) = verified_session(&server, "email", &email).await;
    let server = std::sync::Arc::new(server);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let server = std::sync::Arc::clone(&server);
        let body =
            json!({"session": session, "reset_token": token, "new_password": format!("Parallel-Passw0rd-{i:02}")});
        tasks.spawn(async move { server.post("/v1/reset/complete", body).await });
    }
    let mut statuses = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task");
        assert!(reply.status == 200 || reply.error() == "token_used", "{reply:?}");
        statuses.push(reply.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
}

async fn callers_cannot_tell_unknown_users_from_registered_ones(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    let known = server.start_reset(ALICE).await;
    let unknown = server.start_reset("nobody-by-this-name").await;
    assert_eq!(known.status, unknown.status);
    let shape = |v: &Value| {
        let mut v = v.clone();
        v["session"] = json!("…");
        v
    };
    assert_eq!(shape(&known.body), shape(&unknown.body));
    let session = unknown.body["session"].as_str().expect("session");
    let r =
        server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email})).await;
    assert_eq!((r.status, r.body.clone()), (202, json!({"expires_in": 300})));
    let r = server.post("/v1/reset/verify", json!({"session": session, "method": "email", "code": "12345678"})).await;
    assert_eq!(r.error(), "invalid_code");

    // A destination that is not registered gets nothing, but the answer is the same.
    let before = server.messages_to("someone.else@example.com").await.len();
    let session = known.body["session"].as_str().expect("session");
    let r = server
        .post(
            "/v1/reset/send-code",
            json!({"session": session, "method": "email", "destination": "someone.else@example.com"}),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (202, json!({"expires_in": 300})));
    let r = server.post("/v1/reset/verify", json!({"session": session, "method": "email", "code": "12345678"})).await;
    assert_eq!(r.error(), "invalid_code");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.messages_to("someone.else@example.com").await.len(), before);
}

async fn changing_methods_needs_a_recent_sign_in(server: TestServer) {
    let (token, email, _) = alice_with_email(&server).await;
    let (phone, _) = destinations();
    let (_, reply) = register(&server, &token, "sms", &phone).await;
    let id = reply.body["methods"][0]["id"].as_str().expect("id").to_owned();
    server.clock.advance(16 * 60);
    let r = server.call("DELETE", &format!("/v1/me/methods/{id}"), Some(&token), None).await;
    assert_eq!((r.status, r.error()), (403, "recent_signin_required"), "{r:?}");
    // Adding one needs it too: an old session cannot slip in another destination.
    let r = server.call("POST", "/v1/me/methods/email", Some(&token), Some(json!({"destination": email}))).await;
    assert_eq!((r.status, r.error()), (403, "recent_signin_required"), "{r:?}");
    let fresh = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("sign in again");
    let r = server.call("DELETE", &format!("/v1/me/methods/{id}"), Some(&fresh), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["methods"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["methods"][0]["kind"], "sms");
    let r = server.call("DELETE", &format!("/v1/me/methods/{id}"), Some(&fresh), None).await;
    assert_eq!((r.status, r.error()), (404, "method_not_found"));
    assert!(
        server.messages_to(&email).await.last().is_some_and(|m| m.contains("removed")),
        "the removed address hears of it"
    );
    // The removed email can no longer receive reset codes.
    let session = start_reset(&server, ALICE).await;
    let before = server.messages_to(&email).await.len();
    let r =
        server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email})).await;
    assert_eq!(r.status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.messages_to(&email).await.len(), before);
}

/// Cognito refuses a password its policy does not allow: the reason is shown and the token
/// stays usable, since nothing was changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_refusal_is_readable_and_leaves_the_token_usable() {
    let server = start_moto().await;
    assert!(matches!(server.backend, Backend::Moto { .. }));
    let (_, email, _) = alice_with_email(&server).await;
    let (session, _, token) = verified_session(&server, "email", &email).await;
    // Long enough for the local rules, but the pool requires a number.
    let refused = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": token, "new_password": "no-digits-in-here"}),
        )
        .await;
    assert_eq!((refused.status, refused.error()), (422, "password_rejected"), "{refused:?}");
    assert!(refused.body["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(server.password_works(ALICE, ALICE_PASSWORD).await, "nothing changed");
    let ok = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": token, "new_password": "now-with-digits-42"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(server.password_works(ALICE, "now-with-digits-42").await);
}

/// Local password rules answer before anything is claimed or changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_password_rules_give_reasons() {
    let server = start_embedded().await;
    let (_, email, _) = alice_with_email(&server).await;
    let (session, _, token) = verified_session(&server, "email", &email).await;
    let r = server
        .post("/v1/reset/complete", json!({"session": session, "reset_token": token, "new_password": "short"}))
        .await;
    assert_eq!((r.status, r.error()), (422, "password_rejected"));
    assert_eq!(r.body["reasons"], json!(["Use at least 8 characters."]));
    let r =
        server.post("/v1/reset/complete", json!({"session": session, "reset_token": token, "unlock_only": true})).await;
    assert_eq!((r.status, r.error()), (400, "unlock_not_available"));
    let r = server
        .post(
            "/v1/reset/complete",
            json!({"session": session, "reset_token": token, "new_password": "long-enough-now"}),
        )
        .await;
    assert_eq!(r.status, 200, "the token survived both refusals: {r:?}");
}

/// The round-trip budget (docs/architecture.md, "Round-trip budget"): every route makes at
/// most two store round trips, `complete` four, a whole SMS reset eleven (its challenge
/// included) — counted as calls of
/// the embedded store, or as requests the DynamoDB client sends.
async fn each_route_stays_within_its_store_round_trips(server: TestServer) {
    let (phone, _) = destinations();
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let admin = server.sign_in(ADMIN, ADMIN_PASSWORD).await.expect("the administrator signs in");
    let mut measured: Vec<(&str, usize)> = Vec::new();
    let mut last = server.round_trips.count();
    let mut took = |route: &'static str, budget: usize, measured: &mut Vec<(&str, usize)>| {
        let now = server.round_trips.count();
        let used = now - last;
        last = now;
        assert!(used <= budget, "{route}: {used} store round trips, the budget is {budget}");
        measured.push((route, used));
    };

    let r = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    assert_eq!(r.status, 200);
    took("GET /v1/me/registration", 2, &mut measured);
    let code = server
        .code_sent_by(
            &phone,
            server.call("POST", "/v1/me/methods/sms", Some(&token), Some(json!({ "destination": phone }))),
        )
        .await;
    took("POST /v1/me/methods/{method}", 2, &mut measured);
    let r = server.call("POST", "/v1/me/methods/sms/confirm", Some(&token), Some(json!({ "code": code }))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["methods"][0]["id"].as_str().expect("id").to_owned();
    took("POST /v1/me/methods/{method}/confirm", 2, &mut measured);

    let challenge = server.challenge().await;
    took("GET /v1/reset/challenge", 1, &mut measured);
    let r = server.post("/v1/reset/start", json!({ "username": ALICE, "challenge": challenge })).await;
    assert_eq!(r.status, 200, "{r:?}");
    let session = r.body["session"].as_str().expect("session").to_owned();
    took("POST /v1/reset/start", 2, &mut measured);
    let code = server
        .code_sent_by(
            &phone,
            server.post("/v1/reset/send-code", json!({ "session": session, "method": "sms", "destination": phone })),
        )
        .await;
    took("POST /v1/reset/send-code", 2, &mut measured);
    let r = server.post("/v1/reset/verify", json!({ "session": session, "method": "sms", "code": code })).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/reset/verify", 2, &mut measured);
    let reset_token = r.body["reset_token"].as_str().expect("reset token").to_owned();
    let r = server
        .post(
            "/v1/reset/complete",
            json!({ "session": session, "reset_token": reset_token, "new_password": "Budget-Passw0rd-42" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/reset/complete", 4, &mut measured);
    // A new sign-in: the reset ended the old one (the local server's own, with the embedded
    // directory). It reads no record, so the next route's count holds it.
    let token = server.sign_in(ALICE, "Budget-Passw0rd-42").await.expect("the new password signs in");
    let r = server.call("POST", "/v1/me/registration/confirm", Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/me/registration/confirm", 2, &mut measured);
    let r = server.call("DELETE", &format!("/v1/me/methods/{id}"), Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Two, and one for the notice by text to the number still registered (counted in the day's
    // budget of texts before it goes).
    took("DELETE /v1/me/methods/{method}", 3, &mut measured);
    let reset: usize = measured.iter().filter(|(route, _)| route.contains("/v1/reset/")).map(|(_, n)| n).sum();

    // The authenticator app's routes: added, then proved with nothing sent.
    let now = || sspr_core::ports::Clock::now(&server.clock).0;
    let r = server.call("POST", "/v1/me/methods/totp", Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/me/methods/totp", 2, &mut measured);
    let uri = r.body["otpauth_uri"].as_str().expect("uri").to_owned();
    let code = app_code(&uri, now());
    let r = server.call("POST", "/v1/me/methods/totp/confirm", Some(&token), Some(json!({ "code": code }))).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/me/methods/{method}/confirm (totp)", 2, &mut measured);
    server.clock.advance(30);
    let session = start_reset(&server, ALICE).await;
    took("POST /v1/reset/start (an app registered, with its challenge)", 3, &mut measured);
    let r = verify(&server, &session, "totp", &app_code(&uri, now())).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/reset/verify (totp)", 2, &mut measured);

    // Security questions: the bank, registration, a draw and the answers.
    let r = server.call("GET", "/v1/me/methods/questions", Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("GET /v1/me/methods/questions", 1, &mut measured);
    let answers = three_answers();
    let r = server.call("PUT", "/v1/me/methods/questions", Some(&token), Some(answers)).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("PUT /v1/me/methods/questions", 2, &mut measured);
    let session = start_reset(&server, ALICE).await;
    took("POST /v1/reset/start (questions registered, with its challenge)", 3, &mut measured);
    let r = server.post("/v1/reset/questions", json!({ "session": session })).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/reset/questions", 2, &mut measured);
    let given: Vec<Value> = r.body["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| {
            let answer = match q["id"].as_str() {
                Some("q01") => "Lisbon",
                Some("q03") => "Rex the dog",
                _ => "Fiat Panda",
            };
            json!({ "id": q["id"], "answer": answer })
        })
        .collect();
    let r =
        server.post("/v1/reset/verify", json!({ "session": session, "method": "questions", "answers": given })).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("POST /v1/reset/verify (questions)", 2, &mut measured);

    // The administrators' routes.
    let r = server.call("GET", "/v1/admin/policy", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("GET /v1/admin/policy", 1, &mut measured);
    let mut document = r.body.clone();
    document["reconfirm_days"] = json!(90);
    let r = server.call("PUT", "/v1/admin/policy", Some(&admin), Some(document)).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("PUT /v1/admin/policy", 2, &mut measured);
    let r = server.call("GET", "/v1/admin/activity", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("GET /v1/admin/activity", 2, &mut measured);
    let r = server.call("GET", &format!("/v1/admin/activity?user={ALICE}"), Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("GET /v1/admin/activity (one person's)", 2, &mut measured);
    let r = server.call("GET", "/v1/admin/report?days=30", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    took("GET /v1/admin/report", 2, &mut measured);
    let r = server.call("DELETE", &format!("/v1/admin/users/{ALICE}/registration"), Some(&admin), None).await;
    assert_eq!(r.status, 204, "{r:?}");
    took("DELETE /v1/admin/users/{username}/registration", 2, &mut measured);

    let served: std::collections::BTreeSet<String> = sspr_http::routes().iter().map(sspr_http::Route::key).collect();
    let counted: std::collections::BTreeSet<String> =
        measured.iter().map(|(route, _)| route.split(" (").next().unwrap_or(route).to_owned()).collect();
    assert_eq!(counted, served, "every route is counted");
    assert!(reset <= 11, "a whole SMS reset: {reset} store round trips, the budget is 11");
    let backend = match server.backend {
        Backend::Embedded => "embedded store",
        Backend::Moto { .. } => "DynamoDB",
    };
    for (route, n) in &measured {
        println!("round trips ({backend}): {route}: {n}");
    }
    println!("round trips ({backend}): a whole SMS reset: {reset}");
}

/// S8 in docs/security.md: an authenticator app, played by an independent implementation
/// (pyotp), is added by its first code and proves a reset; its seed is never stored in clear nor
/// shown again; a code is accepted once, even in a new session; five wrong codes end it.
async fn an_app_registered_with_an_independent_phone_resets_once_per_code(server: TestServer) {
    let now = || sspr_core::ports::Clock::now(&server.clock).0;
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let enrolment = server.call("POST", "/v1/me/methods/totp", Some(&token), None).await;
    assert_eq!(enrolment.status, 200, "{enrolment:?}");
    let uri = enrolment.body["otpauth_uri"].as_str().expect("otpauth_uri").to_owned();
    let svg = enrolment.body["qr_svg"].as_str().expect("qr_svg");
    let manual_key = enrolment.body["manual_key"].as_str().expect("manual_key");
    let secret = uri.split(['?', '&']).find_map(|p| p.strip_prefix("secret=")).expect("a secret").to_owned();
    record_secret(&secret);
    assert!(uri.starts_with("otpauth://totp/") && uri.contains("issuer="), "{uri}");
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"), "an SVG picture");
    assert_eq!(manual_key.replace(' ', ""), secret, "the key for typing is the URI's");
    assert!(manual_key.split(' ').all(|group| group.len() == 4), "in groups of four: {manual_key}");
    assert_eq!(secret.len(), 32, "160 bits in base32");

    let right = app_code(&uri, now());
    let wrong = if right == "111111" { "222222" } else { "111111" };
    let r = server.call("POST", "/v1/me/methods/totp/confirm", Some(&token), Some(json!({"code": wrong}))).await;
    assert_eq!((r.status, r.error()), (400, "invalid_code"), "{r:?}");
    let r = server.call("POST", "/v1/me/methods/totp/confirm", Some(&token), Some(json!({"code": right}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["methods"][0]["kind"], "totp");
    let hint = r.body["methods"][0]["hint"].as_str().expect("hint");
    assert!(hint.starts_with("added 20"), "the app's hint is when it was added: {hint}");
    let status = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    assert!(!status.body.to_string().contains(&secret), "the seed is never shown again");
    let again = server.call("POST", "/v1/me/methods/totp/confirm", Some(&token), Some(json!({"code": right}))).await;
    assert_eq!(again.error(), "no_pending_code", "confirmed once");

    // Reset with the app: no send step.
    server.clock.advance(30);
    let session = start_reset(&server, ALICE).await;
    let code = app_code(&uri, now());
    record_secret(&code);
    let r = verify(&server, &session, "totp", &code).await;
    assert_eq!(r.status, 200, "{r:?}");
    let reset_token = r.body["reset_token"].as_str().expect("a reset token").to_owned();
    let password = "App-proved-Passw0rd-1";
    complete_with(&server, &session, &reset_token, password).await;

    // The same code in a new session is refused, and counts.
    let session = start_reset(&server, ALICE).await;
    let r = verify(&server, &session, "totp", &code).await;
    assert_eq!((r.status, r.error()), (400, "invalid_code"), "a replayed code: {r:?}");
    for attempt in 2..=4 {
        let r = verify(&server, &session, "totp", wrong).await;
        assert_eq!((r.status, r.error()), (400, "invalid_code"), "attempt {attempt}: {r:?}");
    }
    let r = verify(&server, &session, "totp", wrong).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "the fifth: {r:?}");
    server.clock.advance(30);
    let r = verify(&server, &session, "totp", &app_code(&uri, now())).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "a right code is dead too: {r:?}");

    // S6: the seed is sealed at rest.
    let raw = server.raw_store().await;
    assert!(raw.contains("seed"), "the scan sees the app");
    assert!(!raw.contains(&secret) && !raw.contains(manual_key), "the seed is stored sealed");
    assert_not_logged(&[secret.as_str(), manual_key, code.as_str(), reset_token.as_str(), password]);
}

/// Security questions (docs/security.md): chosen from the bank, answers kept only as Argon2id
/// hashes, a subset drawn at reset, redrawn after a wrong answer, five wrong answers the end.
async fn questions_registered_from_the_bank_prove_a_reset_and_a_wrong_answer_redraws(server: TestServer) {
    let answers = [("q01", "Lisbon"), ("q03", "Rex the dog"), ("q07", "Fiat Panda")];
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let bank = server.call("GET", "/v1/me/methods/questions", Some(&token), None).await;
    assert_eq!(bank.status, 200, "{bank:?}");
    assert!(bank.body["bank"].as_array().is_some_and(|b| b.len() >= 20), "a bank of at least 20");
    assert_eq!((bank.body["to_register"].as_u64(), bank.body["custom_allowed"].as_bool()), (Some(3), Some(false)));

    let body = |pairs: &[(&str, &str)]| json!({ "answers": pairs.iter().map(|(q, a)| json!({"question": q, "answer": a})).collect::<Vec<_>>() });
    let r = server.call("PUT", "/v1/me/methods/questions", Some(&token), Some(body(&answers[..2]))).await;
    assert_eq!((r.status, r.error()), (400, "invalid_input"), "two are too few: {r:?}");
    let same = [("q01", "Lisbon"), ("q03", "lisbon"), ("q07", "Fiat Panda")];
    let r = server.call("PUT", "/v1/me/methods/questions", Some(&token), Some(body(&same))).await;
    assert_eq!((r.status, r.error()), (400, "invalid_input"), "an answer twice: {r:?}");
    let r = server.call("PUT", "/v1/me/methods/questions", Some(&token), Some(body(&answers))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["methods"][0]["kind"].as_str(), r.body["methods"][0]["hint"].as_str()),
        (Some("questions"), Some("3 questions"))
    );
    let raw = server.raw_store().await.to_lowercase();
    assert!(raw.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "answers are Argon2id hashes");
    for (_, answer) in answers {
        assert!(!raw.contains(&answer.to_lowercase()), "{answer} is stored in clear");
    }

    let session = start_reset(&server, ALICE).await;
    let drawn = server.post("/v1/reset/questions", json!({ "session": session })).await;
    assert_eq!(drawn.status, 200, "{drawn:?}");
    let questions = drawn.body["questions"].as_array().expect("questions").clone();
    assert_eq!(questions.len(), 3);
    let reply = |session: &str, questions: &[Value], wrong: bool| {
        let given: Vec<Value> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let id = q["id"].as_str().expect("id");
                let right = answers.iter().find(|(q, _)| *q == id).map(|(_, a)| *a).expect("a registered question");
                json!({ "id": id, "answer": if wrong && i == 0 { "not this one" } else { right } })
            })
            .collect();
        json!({ "session": session, "method": "questions", "answers": given })
    };
    let r = server.post("/v1/reset/verify", reply(&session, &questions, true)).await;
    assert_eq!((r.status, r.error()), (400, "wrong_answers"), "{r:?}");
    let r = server.post("/v1/reset/verify", reply(&session, &questions, false)).await;
    assert_eq!((r.status, r.error()), (400, "no_questions_drawn"), "a wrong answer ends the subset: {r:?}");
    let redrawn = server.post("/v1/reset/questions", json!({ "session": session })).await;
    let questions = redrawn.body["questions"].as_array().expect("questions").clone();
    let r = server.post("/v1/reset/verify", reply(&session, &questions, false)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let reset_token = r.body["reset_token"].as_str().expect("a reset token").to_owned();
    let password = "Questions-Passw0rd-1";
    complete_with(&server, &session, &reset_token, password).await;

    // Five wrong answers end the method for a session.
    let session = start_reset(&server, ALICE).await;
    for attempt in 1..=5 {
        let drawn = server.post("/v1/reset/questions", json!({ "session": session })).await;
        let questions = drawn.body["questions"].as_array().expect("questions").clone();
        let r = server.post("/v1/reset/verify", reply(&session, &questions, true)).await;
        let expected = if attempt == 5 { (429, "too_many_attempts") } else { (400, "wrong_answers") };
        assert_eq!((r.status, r.error()), expected, "attempt {attempt}: {r:?}");
    }
    let r = server.post("/v1/reset/questions", json!({ "session": session })).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "{r:?}");
    let secrets: Vec<&str> = answers.iter().map(|(_, a)| *a).chain([password, reset_token.as_str()]).collect();
    assert_not_logged(&secrets);
}

/// The code read out in a voice call: the digits after "code is:", up to the full stop.
fn spoken_code(call: &str) -> String {
    let spoken = call.split("code is:").nth(1).and_then(|rest| rest.split('.').next()).expect("a code in the call");
    let code: String = spoken.chars().filter(char::is_ascii_digit).collect();
    record_secret(&code);
    code
}

/// A voice call reads the code out (the outbox records the call, channel `voice`): registered
/// and used to reset, on the embedded adapters. The AWS adapter of voice calls is tested against
/// a stand-in of the service (`tests/e2e/voice.rs`): moto does not emulate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_call_registers_a_phone_and_proves_a_reset() {
    let server = start_embedded().await;
    let (phone, _) = destinations();
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let calls_before = server.messages_to(&phone).await.len();
    let r = server.call("POST", "/v1/me/methods/voice", Some(&token), Some(json!({ "destination": phone }))).await;
    assert_eq!(r.status, 202, "{r:?}");
    let calls = server.messages_to(&phone).await;
    assert_eq!(calls.len(), calls_before + 1, "one call");
    let code = spoken_code(calls.last().expect("a call"));
    let entry = server.outbox.as_ref().expect("outbox").entries().into_iter().last().expect("an entry");
    assert_eq!(serde_json::to_value(&entry).expect("json")["channel"], "voice");
    let r = server.call("POST", "/v1/me/methods/voice/confirm", Some(&token), Some(json!({ "code": code }))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["methods"][0]["kind"], "voice");

    let session = start_reset(&server, ALICE).await;
    let calls_before = server.messages_to(&phone).await.len();
    let r = server
        .post("/v1/reset/send-code", json!({ "session": session, "method": "voice", "destination": phone }))
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let call = server.message_after(&phone, calls_before).await;
    let code = spoken_code(&call);
    let digits: Vec<String> = code.chars().map(String::from).collect();
    assert_eq!(call.matches(&digits.join(", ")).count(), 2, "read out twice, digit by digit: {call}");
    let r = verify(&server, &session, "sms", &code).await;
    assert_eq!(r.error(), "invalid_code", "a voice code is no SMS code");
    let r = verify(&server, &session, "voice", &code).await;
    assert_eq!(r.status, 200, "{r:?}");
    let reset_token = r.body["reset_token"].as_str().expect("a reset token").to_owned();
    let password = "Voice-proved-Passw0rd-1";
    complete_with(&server, &session, &reset_token, password).await;

    // Five wrong codes end voice for the session, as for any code.
    let session = start_reset(&server, ALICE).await;
    let calls_before = server.messages_to(&phone).await.len();
    let r = server
        .post("/v1/reset/send-code", json!({ "session": session, "method": "voice", "destination": phone }))
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let right = spoken_code(&server.message_after(&phone, calls_before).await);
    let wrong = if right == "11111111" { "22222222" } else { "11111111" };
    for attempt in 1..=5 {
        let r = verify(&server, &session, "voice", wrong).await;
        let expected = if attempt == 5 { "too_many_attempts" } else { "invalid_code" };
        assert_eq!(r.error(), expected, "attempt {attempt}: {r:?}");
    }
    assert_eq!(verify(&server, &session, "voice", &right).await.error(), "too_many_attempts", "dead for the session");
    assert_not_logged(&[code.as_str(), right.as_str(), reset_token.as_str(), password]);
}

/// Administrators never register security questions (two gates, neither a question), on the
/// local server's demo administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_is_refused_security_questions() {
    let server = start_embedded().await;
    let token = server.sign_in("admin", "admin-demo-Passw0rd").await.expect("admin signs in");
    let r = server.call("GET", "/v1/me/methods/questions", Some(&token), None).await;
    assert_eq!((r.status, r.error()), (400, "method_not_available"), "{r:?}");
    let answers = three_answers();
    let r = server.call("PUT", "/v1/me/methods/questions", Some(&token), Some(answers)).await;
    assert_eq!((r.status, r.error()), (400, "method_not_available"), "{r:?}");
    let alice = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let r = server.call("GET", "/v1/me/methods/questions", Some(&alice), None).await;
    assert_eq!(r.status, 200, "anyone else may: {r:?}");
}

/// The registration state a sign-in application reads: the day re-confirmation falls due, and
/// `must_register` once it has passed, until the person confirms again.
async fn registration_falls_due_for_reconfirmation_and_is_confirmed_again(server: TestServer) {
    let day = |offset_days: i64| {
        let at = sspr_core::ports::Clock::now(&server.clock).plus_secs(offset_days * 86_400);
        at.date()
    };
    let (token, email, _) = alice_with_email(&server).await;
    let status = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    assert_eq!(status.body["reconfirm_due"], json!(day(180)), "{status:?}");
    assert_eq!(status.body["must_register"], false);
    let r = server.call("POST", "/v1/me/registration/confirm", Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");

    server.clock.advance(181 * 86_400);
    // A new sign-in: the old one has long expired.
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let status = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    assert_eq!(status.body["must_register"], true, "181 days on: {status:?}");
    assert_eq!(status.body["reconfirm_due"], json!(day(-1)));
    let r = server.call("POST", "/v1/me/registration/confirm", Some(&token), Some(json!({}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["must_register"].as_bool(), r.body["reconfirm_due"].as_str()),
        (Some(false), Some(day(180).as_str()))
    );

    // Removing a method is a confirmation too, and every channel hears of it.
    let (phone, _) = destinations();
    register(&server, &token, "sms", &phone).await;
    let told_by_sms = server.messages_to(&phone).await.len();
    let email_notices = server.messages_to(&email).await;
    assert!(
        email_notices.last().is_some_and(|m| m.contains("was added") && m.contains("text messages")),
        "{email_notices:?}"
    );
    assert!(!email_notices.last().is_some_and(|m| m.contains(&phone)), "never the full new destination");
    server.clock.advance(10 * 86_400);
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("a recent sign-in");
    let status = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    let email_id = status.body["methods"][0]["id"].as_str().expect("id").to_owned();
    let r = server.call("DELETE", &format!("/v1/me/methods/{email_id}"), Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["reconfirm_due"], json!(day(180)), "moved on by the removal");
    let sms = server.messages_to(&phone).await;
    assert_eq!(sms.len(), told_by_sms + 1, "the phone hears of the removal: {sms:?}");
    assert!(sms.last().is_some_and(|m| m.contains("removed") && m.contains("email")), "{sms:?}");
    assert!(
        server.messages_to(&email).await.last().is_some_and(|m| m.contains("was removed")),
        "and the removed address"
    );
}

/// The scheduled reminder run, on each store: a registration confirmed 181 days ago gets
/// `must_register` and exactly one reminder, however often or concurrently the run goes; one
/// confirmed yesterday gets none.
async fn a_due_registration_gets_exactly_one_reminder(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    server.clock.advance(181 * 86_400);
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let status = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    assert_eq!(status.body["must_register"], true, "{status:?}");
    let reminders = |messages: Vec<String>| messages.iter().filter(|m| m.contains("please confirm")).count();
    let before = reminders(server.messages_to(&email).await);
    let (a, b) = tokio::join!(server.sspr.send_reminders(7), server.sspr.send_reminders(7));
    let (a, b) = (a.expect("a run"), b.expect("a run"));
    assert_eq!((a.due, b.due, a.sent + b.sent, a.already_sent + b.already_sent), (1, 1, 1, 1), "{a:?} {b:?}");
    let again = server.sspr.send_reminders(7).await.expect("a run");
    assert_eq!((again.sent, again.already_sent), (0, 1), "the same day again");
    let messages = server.messages_to(&email).await;
    assert_eq!(reminders(messages.clone()), before + 1, "exactly one reminder");
    let reminder = messages.iter().rev().find(|m| m.contains("please confirm")).expect("the reminder");
    assert!(reminder.contains(&format!("{}/register", server.url)), "a link to the pages: {reminder}");

    // Confirmed again: due in 180 days, nothing to send tomorrow.
    let r = server.call("POST", "/v1/me/registration/confirm", Some(&token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    server.clock.advance(86_400);
    let run = server.sspr.send_reminders(7).await.expect("a run");
    assert_eq!((run.due, run.sent), (0, 0), "{run:?}");
}

/// The reminder run reads only due registrations, on each real store: of 10,000 registered (on
/// moto, which slows down as its tables grow, 500), 50 confirmed 180 days ago
/// (due today) and the rest within the last 100 days, a run reads the 50 (counted as the
/// records the store returned).
async fn of_many_registrations_a_reminder_run_reads_the_fifty_due(server: TestServer) {
    let calls = match &server.backend {
        Backend::Embedded => {
            fifty_due_of(&server, 10_000, server.embedded_store.clone().expect("the embedded store")).await
        }
        Backend::Moto { sdk, table, .. } => {
            let client = aws_sdk_dynamodb::Client::new(sdk);
            let calls = fifty_due_of(&server, 500, sspr_aws::DynamoDbStore::new(client.clone(), table.clone())).await;
            // moto lists every table's items in the state the other tests read messages from:
            // this one goes, so they do not slow down.
            client.delete_table().table_name(table).send().await.expect("table deleted");
            calls
        }
    };
    assert!(calls.records_read <= 55, "{} registration records read for 50 due", calls.records_read);
    let backend = match server.backend {
        Backend::Embedded => "embedded store",
        Backend::Moto { .. } => "DynamoDB",
    };
    println!(
        "reminders ({backend}): 50 due: {} records read, {} index entries, {} round trips",
        calls.records_read,
        calls.index_entries_read,
        calls.total()
    );
}

/// Writes `total` registrations into `store`, 50 of them due, runs the reminders over it, and
/// answers what the run asked of the store.
async fn fifty_due_of<S: sspr_core::ports::RecordStore + 'static>(
    server: &TestServer,
    total: i64,
    store: S,
) -> sspr_core::fakes::store::StoreCalls {
    use sspr_core::fakes::store::CountingStore;
    use sspr_core::records::{put, registration_key, Held, RegisteredMethod, Registration, Versioned};
    use sspr_core::types::{Destination, MethodId, MethodKind, Timestamp, Username};

    let now = sspr_core::ports::Clock::now(&server.clock).0;
    let mut writes = Vec::new();
    for i in 0..total {
        let days_ago = if i < 50 { 180 } else { i % 100 };
        let at = Timestamp(now - days_ago * 86_400);
        let registration = Registration {
            methods: vec![RegisteredMethod {
                id: MethodId::parse(&format!("{i:016x}")).expect("id"),
                kind: MethodKind::Email,
                held: Held::Destination {
                    destination: Destination::parse(MethodKind::Email, &format!("user{i}@example.com")).expect("email"),
                },
                added_at: at,
            }],
            confirmed_at: Some(at),
        };
        let key = registration_key(&Username::parse(&format!("bulk{i}")).expect("name"));
        writes.push(put(&key, &Versioned::new(registration)).expect("write"));
    }
    for chunk in writes.chunks(100) {
        store.write_all(chunk).await.expect("written");
    }
    // The product over the same store, counted, with senders that keep what they send.
    let counting = std::sync::Arc::new(CountingStore::new(store));
    let sent = sspr_core::fakes::senders::RecordingSender::default();
    let ports = sspr_core::Ports {
        store: counting.clone(),
        directory: std::sync::Arc::new(sspr_core::fakes::directory::MemoryDirectory::new()),
        sms: std::sync::Arc::new(sent.clone()),
        voice: std::sync::Arc::new(sent.clone()),
        mailer: std::sync::Arc::new(sent.clone()),
        clock: std::sync::Arc::new(server.clock.clone()),
        rng: std::sync::Arc::new(sspr_core::ports::SystemRng),
    };
    let branding = sspr_core::notify::Branding { organisation: "Example".into(), public_url: server.url.clone() };
    let settings = sspr_core::Settings::new(branding, sspr_core::policy::Policy::default());
    let pepper = sspr_core::secret::Pepper::new(vec![5; 32]).expect("pepper");
    let sspr = sspr_core::Sspr::new(ports, pepper, settings);
    let run = sspr.send_reminders(7).await.expect("a run");
    assert_eq!((run.due, run.sent, run.failed), (50, 50, 0), "due {} sent {}", run.due, run.sent);
    counting.calls()
}
