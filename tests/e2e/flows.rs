//! The product's flows over HTTP against the local server, each run twice: on the embedded
//! adapters and on the AWS adapters against the moto server (DynamoDB, Cognito, SNS, SES).

use serde_json::{json, Value};

use crate::support::{
    assert_not_logged, destinations, start_embedded, start_moto, Backend, Reply, TestServer, ALICE, ALICE_PASSWORD,
};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::start_embedded().await).await
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::start_moto().await).await
                }
            )*
        }
    };
}

on_both_backends!(
    register_then_reset_by_email_and_by_sms,
    five_wrong_codes_kill_the_code_and_a_new_code_does_not_help,
    an_expired_code_and_an_expired_session_are_refused,
    a_reset_token_is_used_once,
    of_fifty_parallel_completions_exactly_one_succeeds,
    callers_cannot_tell_unknown_users_from_registered_ones,
    changing_methods_needs_a_recent_sign_in,
);

/// Registers `destination` for `kind` as the signed-in person; returns the code used.
async fn register(server: &TestServer, token: &str, kind: &str, destination: &str) -> (String, Reply) {
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

async fn start_reset(server: &TestServer, username: &str) -> String {
    let r = server.start_reset(username).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["session"].as_str().expect("session").to_owned()
}

/// Proves `kind` at `destination` in a new session; returns (session, code, reset token).
async fn verified_session(server: &TestServer, kind: &str, destination: &str) -> (String, String, String) {
    let session = start_reset(server, ALICE).await;
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
    assert_eq!(status.body, json!({"registered": false, "must_register": true, "reconfirm_due": false, "methods": []}));
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

async fn five_wrong_codes_kill_the_code_and_a_new_code_does_not_help(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    let session = start_reset(&server, ALICE).await;
    let send =
        || server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email}));
    let code = server.code_sent_by(&email, send()).await;
    let wrong = if code == "11111111" { "22222222" } else { "11111111" };
    for attempt in 1..=5 {
        let r = server.post("/v1/reset/verify", json!({"session": session, "method": "email", "code": wrong})).await;
        let expected = if attempt < 5 { "invalid_code" } else { "too_many_attempts" };
        assert_eq!(r.error(), expected, "attempt {attempt}: {r:?}");
    }
    let r = server.post("/v1/reset/verify", json!({"session": session, "method": "email", "code": code})).await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "the right code is dead too");
    let r = send().await;
    assert_eq!((r.status, r.error()), (429, "too_many_attempts"), "a new code does not reset the count");
}

async fn an_expired_code_and_an_expired_session_are_refused(server: TestServer) {
    let (_, email, _) = alice_with_email(&server).await;
    let session = start_reset(&server, ALICE).await;
    let code = server
        .code_sent_by(
            &email,
            server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email})),
        )
        .await;
    server.clock.advance(301);
    let r = server.post("/v1/reset/verify", json!({"session": session, "method": "email", "code": code})).await;
    assert_eq!((r.status, r.error()), (400, "code_expired"), "{r:?}");
    // A fresh code works within the session...
    let code = server
        .code_sent_by(
            &email,
            server.post("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": email})),
        )
        .await;
    // ...but not once the session's 15 minutes are over.
    server.clock.advance(900);
    let r = server.post("/v1/reset/verify", json!({"session": session, "method": "email", "code": code})).await;
    assert_eq!((r.status, r.error()), (410, "session_expired"), "{r:?}");
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
