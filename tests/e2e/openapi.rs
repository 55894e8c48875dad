//! `openapi.yaml` is the API's contract: its operations are exactly the routes the code serves,
//! every request example it documents is one the server accepts as well-formed, and every answer
//! the tests get over HTTP has a status and error code it documents for its operation
//! ([`assert_documented`], called on each of them).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;

use crate::repo_root;
use crate::support::start_embedded;

fn openapi() -> Value {
    let path = repo_root().join("openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails when `METHOD path` is a documented operation whose documentation does not list the
/// answer's status, or, for an error, its `error` code. Paths the document does not have (the
/// tests' deliberate strangers) and methods it does not list for a path are left to their tests.
pub fn assert_documented(method: &str, path: &str, status: u16, body: &Value) {
    // Read and split into operations once: every answer of the suite is checked here.
    static DOC: OnceLock<(Value, Vec<Operation>)> = OnceLock::new();
    let (doc, operations) = DOC.get_or_init(|| {
        let doc = openapi();
        let operations = operations(&doc);
        (doc, operations)
    });
    let path = path.split('?').next().unwrap_or_default();
    // The most literal template wins: POST /v1/me/methods/totp is its own operation.
    let Some((_, template, op)) = operations
        .iter()
        .filter(|(m, template, _)| m.eq_ignore_ascii_case(method) && path_matches(template, path))
        .min_by_key(|(_, template, _)| template.matches('{').count())
    else {
        return;
    };
    let responses = op["responses"].as_object().expect("responses");
    assert!(
        responses.contains_key(&status.to_string()),
        "{method} {template}: the answer {status} is not documented ({body})"
    );
    if status >= 400 {
        let code = body["error"].as_str().unwrap_or_default();
        let codes = doc.pointer("/components/schemas/Error/properties/error/enum").expect("error codes");
        assert!(
            codes.as_array().expect("enum").iter().any(|c| c.as_str() == Some(code)),
            "{method} {template}: the error code {code:?} is not documented ({body})"
        );
    }
}

/// Whether `path` is an instance of the documented `template` (`{name}` is one segment).
fn path_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// `(METHOD, path, operation)`.
type Operation = (String, String, Value);

/// Every documented operation.
fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn the_documented_operations_are_the_served_routes() {
    let doc = openapi();
    let documented: BTreeSet<String> = operations(&doc)
        .into_iter()
        .filter(|(_, _, op)| op["x-local-only"] != Value::Bool(true))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    let served: BTreeSet<String> = sspr_http::routes().iter().map(sspr_http::Route::key).collect();
    assert_eq!(documented, served);
    // Registration and administration need the JWT; reset does not.
    for (method, path, op) in operations(&doc) {
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(secured, path.starts_with("/v1/me/") || path.starts_with("/v1/admin/"), "{method} {path}: security");
    }
}

#[test]
fn an_undocumented_answer_is_caught() {
    assert!(path_matches("/v1/me/methods/{method}", "/v1/me/methods/email"));
    assert!(!path_matches("/v1/me/methods/{method}", "/v1/me/methods/"));
    assert!(!path_matches("/v1/reset/start", "/v1/reset/start/x"));
    let ok = serde_json::json!({ "error": "rate_limited", "message": "Wait." });
    assert_documented("POST", "/v1/reset/send-code", 429, &ok);
    assert_documented("POST", "/v1/nowhere", 418, &ok);
    let caught = |method: &'static str, path: &'static str, status: u16, body: Value| {
        std::panic::catch_unwind(move || assert_documented(method, path, status, &body)).is_err()
    };
    assert!(caught("POST", "/v1/reset/send-code", 418, ok.clone()), "a status not listed");
    assert!(caught("POST", "/v1/reset/send-code", 429, serde_json::json!({ "error": "teapot" })), "a code not listed");
    assert!(caught("POST", "/v1/me/methods/totp", 404, ok), "the literal route's own answers");
}

/// Every `$ref` points at something that exists.
#[test]
fn every_reference_resolves() {
    fn walk(doc: &Value, v: &Value, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {target}"));
                    assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
                    *seen += 1;
                }
                map.values().for_each(|v| walk(doc, v, seen));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, seen)),
            _ => {}
        }
    }
    let doc = openapi();
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 20, "only {seen} references");
}

/// The documented request examples, sent to the server, are parsed (whatever the flow then
/// says about their made-up values), and the documented response fields are present.
#[tokio::test]
async fn documented_examples_are_accepted_and_answers_have_the_documented_fields() {
    let doc = openapi();
    let server = start_embedded().await;
    let token = server.sign_in("alice", "alice-demo-Passw0rd").await.expect("sign in");
    let admin = server.sign_in("admin", "admin-demo-Passw0rd").await.expect("sign in");
    let malformed = ["invalid_json", "invalid_body", "invalid_request", "unsupported_media_type", "not_found"];
    let mut sent = 0;
    for (method, path, op) in operations(&doc) {
        let Some(example) = op.pointer("/requestBody/content/application~1json/example") else { continue };
        let path = path.replace("{kind}", "email");
        let signed_in = if path.starts_with("/v1/admin/") { &admin } else { &token };
        let reply = server.call(&method, &path, Some(signed_in), Some(example.clone())).await;
        assert!(!malformed.contains(&reply.error()), "{method} {path}: the documented example is refused: {reply:?}");
        assert!(reply.status < 500, "{method} {path}: {reply:?}");
        let documented = op["responses"].as_object().expect("responses");
        assert!(
            documented.contains_key(&reply.status.to_string()),
            "{method} {path}: {} is undocumented",
            reply.status
        );
        if reply.status >= 400 {
            let codes = doc.pointer("/components/schemas/Error/properties/error/enum").expect("error codes");
            assert!(
                codes.as_array().expect("enum").iter().any(|c| c.as_str() == Some(reply.error())),
                "{method} {path}: error code {} is undocumented",
                reply.error()
            );
        }
        sent += 1;
    }
    assert!(sent >= 7, "only {sent} examples");

    // Answers carry the documented required fields.
    let schema = |name: &str| doc.pointer(&format!("/components/schemas/{name}/required")).cloned().expect(name);
    let check = |name: &str, body: &Value| {
        for field in schema(name).as_array().expect("required") {
            let field = field.as_str().expect("name");
            assert!(body.get(field).is_some(), "{name}: {field} missing in {body}");
        }
    };
    let r = server.call("GET", "/v1/reset/challenge", None, None).await;
    check("Challenge", &r.body);
    let r = server.start_reset("alice").await;
    check("ResetStarted", &r.body);
    let r = server.call("GET", "/v1/me/registration", Some(&token), None).await;
    check("RegistrationStatus", &r.body);
    let r = server.call("GET", "/v1/admin/policy", Some(&admin), None).await;
    check("PolicyDocument", &r.body);
    let r = server.call("GET", "/v1/admin/activity", Some(&admin), None).await;
    check("ActivityPage", &r.body);
    let r = server.call("GET", "/v1/admin/report?days=30", Some(&admin), None).await;
    check("Report", &r.body);
    let r = server.call("GET", "/dev/outbox", None, None).await;
    assert_eq!(r.status, 200, "the local-only outbox is served locally");
}
