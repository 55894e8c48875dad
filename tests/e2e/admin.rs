//! The administrators' API over HTTP, on the embedded default and on the AWS emulator: only an
//! administrator's sign-in reaches it; the policy is replaced whole at its version and every
//! bad value is named; the helpdesk reaches reset errors; an administrator's reset is told to
//! the person and to every other administrator, with no secret; the audit log and the report
//! tell what happened; a cleared registration is gone.

use serde_json::{json, Value};

use crate::flows::{register, verify};
use crate::support::{
    destinations, Reply, TestServer, ADMIN, ADMIN_EMAIL, ADMIN_PASSWORD, ALICE, ALICE_PASSWORD, OTHER_ADMIN_EMAIL,
};

on_both_backends!(
    only_an_administrator_reaches_the_admin_routes,
    the_policy_is_replaced_whole_at_its_version,
    an_administrators_reset_is_told_to_them_and_to_the_other_administrators,
);

/// Every admin route, with a path that exists.
fn admin_routes() -> Vec<(String, String)> {
    sspr_http::routes()
        .into_iter()
        .filter(|r| r.access == sspr_http::Access::Admin)
        .map(|r| (r.method.to_string(), r.path.replace("{username}", ALICE)))
        .collect()
}

async fn only_an_administrator_reaches_the_admin_routes(server: TestServer) {
    let alice = server.sign_in(ALICE, ALICE_PASSWORD).await.expect("alice signs in");
    let routes = admin_routes();
    assert_eq!(routes.len(), 5, "{routes:?}");
    for (method, path) in &routes {
        let body = (method == "PUT").then(|| json!({}));
        let r = server.call(method, path, None, body.clone()).await;
        assert_eq!((r.status, r.error()), (401, "unauthenticated"), "{method} {path} without a sign-in");
        let r = server.call(method, path, Some(&alice), body).await;
        assert_eq!((r.status, r.error()), (403, "forbidden"), "{method} {path} with alice's sign-in: {r:?}");
    }
    let admin = server.sign_in(ADMIN, ADMIN_PASSWORD).await.expect("the administrator signs in");
    let r = server.call("GET", "/v1/admin/policy", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn put_policy<'a>(
    server: &'a TestServer,
    token: &'a str,
    document: Value,
) -> impl std::future::Future<Output = Reply> + 'a {
    server.call("PUT", "/v1/admin/policy", Some(token), Some(document))
}

async fn the_policy_is_replaced_whole_at_its_version(server: TestServer) {
    let admin = server.sign_in(ADMIN, ADMIN_PASSWORD).await.expect("the administrator signs in");
    let read = server.call("GET", "/v1/admin/policy", Some(&admin), None).await;
    assert_eq!(read.status, 200, "{read:?}");
    let document = read.body;
    assert_eq!(document["version"], 0, "never saved: the deployment's default");
    assert_eq!(document.as_object().map(|o| o.len()), Some(16), "15 fields and the version: {document}");

    // Each bad value is refused with its field named, and changes nothing.
    let cases: [(&str, Value, &str); 8] = [
        ("reconfirm_days", json!(731), "reconfirm_days"),
        ("methods_required", json!(3), "methods_required"),
        ("questions_to_reset", json!(2), "questions_to_reset"),
        ("enablement", json!("some"), "enablement"),
        ("helpdesk", json!("http://help.example.com"), "helpdesk"),
        ("password", json!({"min_length": 4, "max_length": 256}), "password.min_length"),
        ("notify_user", json!("yes"), "notify_user"),
        ("colour", json!("red"), "colour"),
    ];
    for (field, value, named) in cases {
        let mut bad = document.clone();
        bad[field] = value;
        let r = put_policy(&server, &admin, bad).await;
        assert_eq!((r.status, r.error()), (422, "invalid_policy"), "{field}: {r:?}");
        assert_eq!(r.body["field"], named, "{field}: {r:?}");
        assert!(r.body["message"].as_str().is_some_and(|m| m.contains(named)), "{r:?}");
    }
    let mut missing = document.clone();
    missing.as_object_mut().expect("object").remove("writeback");
    let r = put_policy(&server, &admin, missing).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("writeback")), "{r:?}");

    let mut change = document.clone();
    change["helpdesk"] = json!("https://help.example.com/sspr");
    change["reconfirm_days"] = json!(90);
    let r = put_policy(&server, &admin, change.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["version"].clone(), r.body["reconfirm_days"].clone()), (json!(1), json!(90)));
    // The same document again is stale now: someone saved since it was read.
    let r = put_policy(&server, &admin, change).await;
    assert_eq!((r.status, r.error()), (409, "stale_version"), "{r:?}");
    let r = server.call("GET", "/v1/admin/policy", Some(&admin), None).await;
    assert_eq!(
        (r.body["version"].clone(), r.body["helpdesk"].clone()),
        (json!(1), json!("https://help.example.com/sspr"))
    );

    // Every reset error now points to the helpdesk.
    let r =
        server.post("/v1/reset/verify", json!({ "session": "nonsense", "method": "sms", "code": "12345678" })).await;
    assert_eq!((r.status, r.body["helpdesk"].as_str()), (400, Some("https://help.example.com/sspr")), "{r:?}");
    let r = server.post("/v1/reset/start", json!({ "username": ALICE })).await;
    assert_eq!((r.status / 100, r.body["helpdesk"].as_str()), (4, Some("https://help.example.com/sspr")), "{r:?}");

    // The change is in the audit log, with who made it and what changed.
    let r = server.call("GET", "/v1/admin/activity?kind=policy_changed", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let events = r.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], ADMIN);
    assert_eq!(events[0]["changes"]["old"], json!({"reconfirm_days": 180, "helpdesk": null}));
    assert_eq!(events[0]["changes"]["new"], json!({"reconfirm_days": 90, "helpdesk": "https://help.example.com/sspr"}));
    assert_eq!(events[0]["source_ip"], "127.0.0.1");
    assert!(events[0]["request_id"].as_str().is_some_and(|id| !id.is_empty()));
}

async fn an_administrators_reset_is_told_to_them_and_to_the_other_administrators(server: TestServer) {
    let (phone, email) = destinations();
    let admin = server.sign_in(ADMIN, ADMIN_PASSWORD).await.expect("the administrator signs in");
    for (kind, destination) in [("email", &email), ("sms", &phone)] {
        register(&server, &admin, kind, destination).await;
    }
    let mine = server.messages_to(ADMIN_EMAIL).await.len();
    let others = server.messages_to(OTHER_ADMIN_EMAIL).await.len();

    // The policy asks for one method; an administrator proves two, and start does not tell.
    let r = server.start_reset(ADMIN).await;
    assert_eq!((r.status, r.body["required"].clone()), (200, json!(1)), "{r:?}");
    let session = r.body["session"].as_str().expect("session").to_owned();
    let first = server
        .code_sent_by(
            &email,
            server.post("/v1/reset/send-code", json!({ "session": session, "method": "email", "destination": email })),
        )
        .await;
    let r = verify(&server, &session, "email", &first).await;
    assert_eq!((r.status, r.body["remaining"].clone(), r.body.get("reset_token")), (200, json!(1), None), "{r:?}");
    let second = server
        .code_sent_by(
            &phone,
            server.post("/v1/reset/send-code", json!({ "session": session, "method": "sms", "destination": phone })),
        )
        .await;
    let r = verify(&server, &session, "sms", &second).await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.body["reset_token"].as_str().expect("a reset token after two methods").to_owned();
    let password = "Admin-new-Passw0rd-7";
    let r = server
        .post("/v1/reset/complete", json!({ "session": session, "reset_token": token, "new_password": password }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The administrator hears at the registered address and at the directory's; the other
    // administrator hears that an administrator reset; nobody gets a secret.
    let secrets = [first.as_str(), second.as_str(), token.as_str(), password, session.as_str()];
    let notice = server.messages_to(&email).await.pop().expect("a notice to the registered address");
    assert!(notice.contains("password was changed") && notice.contains("email, text message"), "{notice}");
    assert!(notice.contains("Contact your administrator now"), "no helpdesk set: {notice}");
    let directory = server.messages_to(ADMIN_EMAIL).await;
    assert_eq!(directory.len(), mine + 1, "the directory's address is told once: {directory:?}");
    let others_told = server.messages_to(OTHER_ADMIN_EMAIL).await;
    assert_eq!(others_told.len(), others + 1, "{others_told:?}");
    let to_others = others_told.last().expect("told");
    assert!(to_others.contains("an administrator's password was changed") && to_others.contains(ADMIN), "{to_others}");
    for message in [&notice, directory.last().expect("told"), to_others] {
        for secret in secrets {
            assert!(!message.contains(secret), "a notice carries a secret");
        }
    }
    assert!(
        server.messages_to("alice@example.com").await.iter().all(|m| !m.contains("administrator's")),
        "alice is no administrator"
    );

    // The audit log and the report tell the same (to a new sign-in: the reset ended the old one
    // where the directory's sessions are the local server's).
    let admin = server.sign_in(ADMIN, password).await.expect("signs in with the new password");
    let r =
        server.call("GET", &format!("/v1/admin/activity?user={ADMIN}&kind=reset_succeeded"), Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let events = r.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["methods"].clone(), events[0]["result"].clone()),
        (json!(["email", "sms"]), json!("success"))
    );
    let r = server.call("GET", &format!("/v1/admin/activity?user={ADMIN}"), Some(&admin), None).await;
    let kinds: Vec<&str> =
        r.body["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["method_registered", "code_sent", "verification_passed", "reset_succeeded"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let text = r.body.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "the audit log carries a secret");
    }
    let r = server.call("GET", "/v1/admin/report?days=7", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["totals"]["reset_succeeded"], 1, "{}", r.body);
    assert_eq!(r.body["totals"]["method_registered"], 2, "{}", r.body);
    let resets = r.body["resets"].as_array().expect("resets");
    assert_eq!(resets.len(), 2, "one row per method proved: {resets:?}");

    // Cleared, the administrator must register again.
    let r = server.call("DELETE", &format!("/v1/admin/users/{ADMIN}/registration"), Some(&admin), None).await;
    assert_eq!(r.status, 204, "{r:?}");
    let admin = server.sign_in(ADMIN, password).await.expect("signs in with the new password");
    let r = server.call("GET", "/v1/me/registration", Some(&admin), None).await;
    assert_eq!((r.body["registered"].clone(), r.body["must_register"].clone()), (json!(false), json!(true)), "{r:?}");
    let r = server.call("DELETE", &format!("/v1/admin/users/{ADMIN}/registration"), Some(&admin), None).await;
    assert_eq!((r.status, r.error()), (404, "not_registered"), "{r:?}");
}
