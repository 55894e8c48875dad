//! The Lambda functions' routers, fed with the API Gateway sample events of `events/` (JWT
//! claims included), and the SAM template checked against the routes the code serves.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use serde_json::{json, Value};
use sspr_core::notify::Branding;
use sspr_core::policy::Policy;
use sspr_core::ports::{SystemClock, SystemRng};
use sspr_core::secret::{KeyedHasher, Pepper};
use sspr_core::{Settings, Sspr};
use sspr_embedded::{DirectorySeed, EmbeddedDirectory, Outbox, SqliteStore};
use sspr_http::{api, ApiState, JwtClaims, Routes};
use tower::ServiceExt as _;

use crate::{repo_root, template};

/// The core on embedded adapters; only the HTTP layer under test is the Lambda one.
fn function(routes: Routes) -> (Router, Outbox) {
    let outbox = Outbox::new(Arc::new(SystemClock), false);
    let sspr = Sspr {
        store: Arc::new(SqliteStore::in_memory().expect("store")),
        directory: Arc::new(EmbeddedDirectory::open(&DirectorySeed::demo(), None).expect("directory")),
        sms: Arc::new(outbox.clone()),
        mailer: Arc::new(outbox.clone()),
        clock: Arc::new(SystemClock),
        rng: Arc::new(SystemRng),
        hasher: KeyedHasher::new(Pepper::new(vec![9; 32]).expect("pepper")),
        settings: Settings::new(
            Branding { organisation: "sspr".into(), public_url: "https://reset.example.com".into() },
            Policy::default(),
        ),
    };
    (api(ApiState { sspr: Arc::new(sspr), auth: Arc::new(JwtClaims::default()) }, routes), outbox)
}

fn event_text(name: &str) -> String {
    let path = repo_root().join("events").join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An event as the Lambda runtime would hand it over, with its body replaced when asked.
fn event(name: &str, body: Option<Value>) -> lambda_http::Request {
    let mut raw: Value = serde_json::from_str(&event_text(name)).expect("event json");
    if let Some(body) = body {
        raw["body"] = Value::String(body.to_string());
    }
    lambda_http::request::from_str(&raw.to_string()).unwrap_or_else(|e| panic!("events/{name}.json: {e}"))
}

/// A sample event whose JWT says the person signed in just now.
fn signed_in_now(name: &str) -> lambda_http::Request {
    let mut raw: Value = serde_json::from_str(&event_text(name)).expect("event json");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    raw["requestContext"]["authorizer"]["jwt"]["claims"]["auth_time"] = json!(now.to_string());
    lambda_http::request::from_str(&raw.to_string()).expect("event")
}

async fn invoke(router: &Router, request: lambda_http::Request) -> (u16, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The sample start event with a freshly solved challenge from `router`.
async fn start_event(router: &Router) -> lambda_http::Request {
    let mut request = event("reset-start", None);
    *request.method_mut() = axum::http::Method::GET;
    *request.uri_mut() = "/v1/reset/challenge".parse().expect("uri");
    let (status, challenge) = invoke(router, request).await;
    assert_eq!(status, 200);
    let challenge = serde_json::from_value(challenge).expect("challenge");
    let solved = sspr_core::reset::challenge::solve(&challenge).expect("solvable");
    let mut raw: Value = serde_json::from_str(&event_text("reset-start")).expect("json");
    let mut body: Value = serde_json::from_str(raw["body"].as_str().expect("body")).expect("body json");
    body["challenge"] = json!(solved);
    raw["body"] = Value::String(body.to_string());
    lambda_http::request::from_str(&raw.to_string()).expect("event")
}

#[tokio::test]
async fn reset_function_starts_and_refuses_a_bogus_completion() {
    let (reset, _) = function(Routes::Reset);
    let (status, body) = invoke(&reset, start_event(&reset).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session"].as_str().is_some_and(|s| s.len() == 22));
    assert_eq!(body["methods"], json!(["email", "sms"]));
    let (status, body) = invoke(&reset, event("reset-complete", None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_session")), "{body}");
    // Routes of other functions are not served here.
    let (status, _) = invoke(&reset, event("reset-verify", None)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn send_code_and_verify_functions_share_the_session() {
    let (all, _) = function(Routes::All);
    let (_, started) = invoke(&all, start_event(&all).await).await;
    let session = started["session"].clone();

    let (send, _) = function(Routes::SendCode);
    let (status, body) = invoke(&send, event("reset-send-code", None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_session")), "the sample's placeholder session");
    // Sessions live in the store each function builds; here one router stands for both.
    let (status, body) = invoke(
        &all,
        event(
            "reset-send-code",
            Some(json!({"session": session, "method": "email", "destination": "alice@example.com"})),
        ),
    )
    .await;
    assert_eq!((status, body.clone()), (202, json!({"expires_in": 300})));
    let (status, body) =
        invoke(&all, event("reset-verify", Some(json!({"session": session, "method": "email", "code": "12345678"}))))
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_code")), "{body}");

    let (verify, _) = function(Routes::Verify);
    let (status, _) = invoke(&verify, event("reset-start", None)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn register_function_reads_the_jwt_claims() {
    let (register, outbox) = function(Routes::Register);
    let (status, body) = invoke(&register, event("me-registration", None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"registered": false, "must_register": true, "reconfirm_due": false, "methods": []}));

    // Without the authorizer's claims nobody is signed in.
    let mut raw: Value = serde_json::from_str(&event_text("me-registration")).expect("json");
    raw["requestContext"]["authorizer"] = Value::Null;
    let (status, body) = invoke(&register, lambda_http::request::from_str(&raw.to_string()).expect("event")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthenticated")));

    // The sample's sign-in (auth_time) is long past: adding a method asks for a fresh sign-in.
    let (status, body) = invoke(&register, event("me-methods-email", None)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("recent_signin_required")), "{body}");
    assert!(outbox.entries().is_empty(), "nothing is sent without a fresh sign-in");
    let (status, body) = invoke(&register, signed_in_now("me-methods-email")).await;
    assert_eq!(status, 202, "{body}");
    let sent = outbox.entries().last().cloned().expect("a confirmation code");
    assert_eq!(sent.to, "alice@example.com");
    let code = crate::support::extract_code(&sent.body).expect("code");
    let mut confirm: Value = serde_json::from_str(&event_text("me-methods-email-confirm")).expect("json");
    confirm["body"] = Value::String(json!({ "code": code }).to_string());
    let (status, body) = invoke(&register, lambda_http::request::from_str(&confirm.to_string()).expect("event")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["methods"][0]["hint"], "a***@example.com");

    // The sample's sign-in (auth_time) is long past: removal asks for a fresh sign-in.
    let id = body["methods"][0]["id"].as_str().expect("id");
    let mut raw: Value = serde_json::from_str(&event_text("me-methods-delete")).expect("json");
    raw["rawPath"] = json!(format!("/v1/me/methods/{id}"));
    raw["requestContext"]["http"]["path"] = json!(format!("/v1/me/methods/{id}"));
    raw["pathParameters"] = json!({ "id": id });
    let (status, body) = invoke(&register, lambda_http::request::from_str(&raw.to_string()).expect("event")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("recent_signin_required")), "{body}");
}

/// Every sample event parses and names a route the code serves.
#[test]
fn every_sample_event_is_a_served_route() {
    let served: BTreeSet<String> =
        Routes::All.table().into_iter().map(|(method, path)| format!("{method} {path}")).collect();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join("events")).expect("events/") {
        let path = entry.expect("entry").path();
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let Some(route_key) = raw["routeKey"].as_str() else { continue };
        lambda_http::request::from_str(&raw.to_string()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(served.contains(route_key), "{}: {route_key} is not served", path.display());
        seen.insert(route_key.to_owned());
    }
    assert_eq!(seen, served, "one sample event per route");
}

/// The template declares, per function, exactly the routes its binary serves.
#[test]
fn the_template_routes_are_the_ones_the_code_serves() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut functions = 0;
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        functions += 1;
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary");
        let routes = match binary {
            "reset" => Routes::Reset,
            "send-code" => Routes::SendCode,
            "verify" => Routes::Verify,
            "register" => Routes::Register,
            other => panic!("{name:?}: unknown binary {other}"),
        };
        let expected: BTreeSet<String> = routes.table().into_iter().map(|(m, p)| format!("{m} {p}")).collect();
        let declared: BTreeSet<String> = resource["Properties"]["Events"]
            .as_mapping()
            .expect("Events")
            .values()
            .filter(|e| e["Type"].as_str() == Some("HttpApi"))
            .map(|e| {
                let method = e["Properties"]["Method"].as_str().expect("Method").to_uppercase();
                format!("{method} {}", e["Properties"]["Path"].as_str().expect("Path"))
            })
            .collect();
        assert_eq!(declared, expected, "{name:?}");
        // Every /v1/me route sits behind the JWT authorizer; the reset routes are anonymous.
        for e in resource["Properties"]["Events"].as_mapping().expect("Events").values() {
            let path = e["Properties"]["Path"].as_str().unwrap_or_default();
            let auth = &e["Properties"]["Auth"]["Authorizer"];
            if path.starts_with("/v1/me/") {
                assert!(auth.as_str().is_some_and(|a| a != "NONE"), "{path} must need a JWT");
            } else {
                assert!(auth.is_null() || auth.as_str() == Some("NONE"), "{path} must be anonymous");
            }
        }
    }
    assert_eq!(functions, 4);
}

/// The template configures the functions only with settings the code knows.
#[test]
fn the_template_environment_is_a_valid_lambda_configuration() {
    let template = template();
    let vars = template["Globals"]["Function"]["Environment"]["Variables"].as_mapping().expect("Variables");
    let known = [
        "SSPR_STORE",
        "SSPR_TABLE",
        "SSPR_DIRECTORY",
        "SSPR_COGNITO_USER_POOL_ID",
        "SSPR_COGNITO_CLIENT_ID",
        "SSPR_SENDER",
        "SSPR_EMAIL_FROM",
        "SSPR_PUBLIC_URL",
        "SSPR_SECRETS_ARN",
        "SSPR_CLAIM_USERNAME",
        "SSPR_CLAIM_GROUPS",
        "SSPR_TARGET_GROUP",
        "SSPR_ORGANISATION",
        "RUST_LOG",
    ];
    let mut values = Vec::new();
    for (key, value) in vars {
        let key = key.as_str().expect("name");
        assert!(known.contains(&key), "{key} is not a setting the code reads");
        assert!(!key.contains("PEPPER") && !key.contains("PASSWORD"), "{key}: secrets never go in env");
        // Intrinsic functions stand for deploy-time values; give them plausible ones.
        let literal = match value {
            serde_yaml::Value::Tagged(_) => None,
            plain => plain.as_str().map(str::to_owned),
        };
        let literal = literal.unwrap_or_else(|| match key {
            "SSPR_EMAIL_FROM" => "noreply@example.com".into(),
            "SSPR_PUBLIC_URL" => "https://reset.example.com".into(),
            _ => "deploy-time-value".into(),
        });
        values.push((key.to_owned(), literal));
    }
    let config = sspr_http::config::Config::from_lookup(sspr_http::config::Deployment::Lambda, |name| {
        values.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    });
    assert!(config.is_ok(), "{:?}", config.err());
}
