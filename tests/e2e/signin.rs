//! The local server's own sign-in, safe to leave running: five wrong passwords for a name in
//! fifteen minutes close its sign-in (429 with Retry-After, the right password included, a
//! name nobody has the same), until the oldest is fifteen minutes old; the token is never
//! cached; the body limit of the API holds; and a password reset voids the tokens issued
//! before it.

use serde_json::json;

use crate::support::{self, Backend, ALICE, ALICE_PASSWORD};

const WINDOW_SECS: i64 = 15 * 60;

#[tokio::test]
async fn five_wrong_passwords_close_a_name_for_fifteen_minutes_known_or_not() {
    let server = support::start(Backend::Embedded).await;
    for name in [ALICE, "nobody-by-this-name"] {
        for i in 0..5 {
            let r = server
                .post("/v1/local/signin", json!({ "username": name, "password": format!("Wrong-{i}-Passw0rd") }))
                .await;
            assert_eq!((r.status, r.error()), (401, "signin_failed"), "{name}, try {i}: {r:?}");
            server.clock.advance(10);
        }
        let sixth = server
            .http
            .post(format!("{}/v1/local/signin", server.url))
            .json(&json!({ "username": name.to_uppercase(), "password": ALICE_PASSWORD }))
            .send()
            .await
            .expect("request");
        assert_eq!(sixth.status().as_u16(), 429, "{name}: closed, whatever the case of the name");
        let retry: i64 = sixth.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=WINDOW_SECS).contains(&retry), "Retry-After {retry}");
        let body: serde_json::Value = sixth.json().await.expect("json");
        crate::openapi::assert_documented("POST", "/v1/local/signin", 429, &body);
        assert_eq!(body["error"], "too_many_attempts", "{body}");
        assert_eq!(body["retry_after"].as_i64(), Some(retry), "the wait in the body too: {body}");
    }
    // Fifteen minutes after the oldest failure, the right password works again.
    server.clock.advance(WINDOW_SECS);
    let token = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("open again");
    assert!(!token.is_empty());
    // ...and the count starts afresh: one wrong password does not close it.
    let r = server.post("/v1/local/signin", json!({ "username": ALICE, "password": "Wrong-again-Passw0rd" })).await;
    assert_eq!(r.status, 401, "{r:?}");
    server.sign_in(ALICE, ALICE_PASSWORD).await.expect("still open");
}

#[tokio::test]
async fn the_token_is_not_cached_and_the_body_limit_holds() {
    let server = support::start(Backend::Embedded).await;
    let r = server
        .http
        .post(format!("{}/v1/local/signin", server.url))
        .json(&json!({ "username": ALICE, "password": ALICE_PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let token = r.json::<serde_json::Value>().await.expect("json")["token"].as_str().expect("token").to_owned();
    support::record_secret(&token);

    let big = "x".repeat(64 * 1024);
    let r = server.post("/v1/local/signin", json!({ "username": ALICE, "password": big })).await;
    assert_eq!((r.status, r.error()), (413, "body_too_large"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_voids_the_sign_ins_before_it() {
    let server = support::start(Backend::Embedded).await;
    let before = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("signed in");
    let email = "alice@example.com";
    crate::flows::register(&server, &before, "email", email).await;
    let r = server.call("GET", "/v1/me/registration", Some(&before), None).await;
    assert_eq!(r.status, 200, "{r:?}");

    let (session, _, reset_token) = crate::flows::verified_session_of(&server, ALICE, "email", email).await;
    let new = "Alice-after-Passw0rd-7";
    let r = server
        .post("/v1/reset/complete", json!({ "session": session, "reset_token": reset_token, "new_password": new }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let r = server.call("GET", "/v1/me/registration", Some(&before), None).await;
    assert_eq!(r.status, 401, "the token from before the reset is void: {r:?}");
    let after = server.sign_in(ALICE, new).await.expect("the new password signs in");
    let r = server.call("GET", "/v1/me/registration", Some(&after), None).await;
    assert_eq!(r.status, 200, "{r:?}");
}
