//! The Lambda functions' routers, fed with the API Gateway sample events of `events/` (JWT
//! claims included), and the SAM template checked against the routes the code serves.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::Router;
use serde_json::{json, Value};
use sspr_app::{assemble, Assembly, Config, Deployment};
use sspr_core::ports::{Index, IndexKey, Page, Query, RecordKey, RecordStore, StoreError, StoredRecord, Write};
use sspr_core::types::Timestamp;
use sspr_embedded::Outbox;
use sspr_http::{api, ApiState, Deliveries, Function, JwtClaims, Slice};
use tower::ServiceExt as _;

use crate::{repo_root, template};

/// Each function assembled as a deployment builds it — with only the ports its routes declare —
/// on embedded adapters sharing one data directory, as deployed functions share the table:
/// a route that used a port its function lacks would fail here.
pub(crate) struct Functions {
    functions: Vec<(Function, ApiState, Option<Outbox>)>,
    pub(crate) _data: tempfile::TempDir,
}

impl Functions {
    pub(crate) async fn new() -> Self {
        Self::with_stores(|_, store| store).await
    }

    /// Each function over the shared embedded store as `wrap` gives it (tests watch its calls).
    pub(crate) async fn with_stores(
        wrap: impl Fn(Function, Arc<dyn sspr_core::ports::RecordStore>) -> Arc<dyn sspr_core::ports::RecordStore>,
    ) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let shared = sspr_embedded::SqliteStore::open(&data.path().join("sspr.db")).expect("embedded store");
        let mut functions = Vec::new();
        for function in Function::ALL {
            let config = Config::from_lookup(Deployment::Local, |name| {
                (name == "SSPR_PUBLIC_URL").then(|| "https://reset.example.com".to_owned())
            })
            .expect("configuration");
            let mut assembly = Assembly::new(config, function.needs());
            assembly.data_dir = Some(data.path().to_owned());
            assembly.store = Some(wrap(function, Arc::new(shared.clone())));
            let assembled = assemble(assembly).await.expect("assembled");
            let state = ApiState {
                sspr: assembled.sspr,
                auth: Arc::new(JwtClaims::default()),
                deliveries: Deliveries::default(),
            };
            functions.push((function, state, assembled.outbox));
        }
        Self { functions, _data: data }
    }

    pub(crate) fn get(&self, function: Function) -> &(Function, ApiState, Option<Outbox>) {
        self.functions.iter().find(|(f, _, _)| *f == function).expect("every function is built")
    }

    /// The function's router over its own state. As the function's extension keeps the
    /// invocation open in Lambda, a call ends once the deliveries its answer started have.
    pub(crate) fn router(&self, function: Function) -> Router {
        let state = self.get(function).1.clone();
        let deliveries = state.deliveries.clone();
        api(state, Slice::Function(function)).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let deliveries = deliveries.clone();
                async move {
                    let response = next.run(request).await;
                    deliveries.settle().await;
                    response
                }
            },
        ))
    }

    /// What the function sent.
    pub(crate) fn outbox(&self, function: Function) -> Outbox {
        self.get(function).2.clone().unwrap_or_else(|| panic!("{function:?} sends nothing"))
    }
}

pub(crate) fn event_text(name: &str) -> String {
    let path = repo_root().join("events").join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An event as the Lambda runtime would hand it over, with its body replaced when asked.
pub(crate) fn event(name: &str, body: Option<Value>) -> lambda_http::Request {
    let mut raw: Value = serde_json::from_str(&event_text(name)).expect("event json");
    if let Some(body) = body {
        raw["body"] = Value::String(body.to_string());
    }
    lambda_http::request::from_str(&raw.to_string()).unwrap_or_else(|e| panic!("events/{name}.json: {e}"))
}

/// A sample event whose JWT says the person signed in just now.
pub(crate) fn signed_in_now(name: &str) -> lambda_http::Request {
    let mut raw: Value = serde_json::from_str(&event_text(name)).expect("event json");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    raw["requestContext"]["authorizer"]["jwt"]["claims"]["auth_time"] = json!(now.to_string());
    lambda_http::request::from_str(&raw.to_string()).expect("event")
}

/// A request with its JSON body replaced.
pub(crate) fn with_body(request: lambda_http::Request, body: Value) -> lambda_http::Request {
    let (parts, _) = request.into_parts();
    lambda_http::Request::from_parts(parts, lambda_http::Body::from(body.to_string()))
}

pub(crate) async fn invoke(router: &Router, request: lambda_http::Request) -> (u16, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The sample start event with a freshly solved challenge from `router`.
pub(crate) async fn start_event(router: &Router) -> lambda_http::Request {
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
    let functions = Functions::new().await;
    let reset = functions.router(Function::Reset);
    let (status, body) = invoke(&reset, start_event(&reset).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session"].as_str().is_some_and(|s| s.len() == 22 + 1 + 16), "a handle and its limits tag: {body}");
    assert_eq!(body["methods"], json!(["email", "sms", "voice", "totp", "questions"]), "the local demo's methods");
    let (status, body) = invoke(&reset, event("reset-complete", None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_session")), "{body}");
    // Routes of other functions are not served here.
    let (status, _) = invoke(&reset, event("reset-verify", None)).await;
    assert_eq!(status, 404);
}

/// Each step of a reset served by its own function's router, all over one store, as the
/// deployed functions share the table.
#[tokio::test]
async fn the_functions_share_the_session_through_the_store() {
    let functions = Functions::new().await;
    let (reset, send, verify, register) = (
        functions.router(Function::Reset),
        functions.router(Function::SendCode),
        functions.router(Function::Verify),
        functions.router(Function::Register),
    );
    let (status, body) = invoke(&register, signed_in_now("me-methods-email")).await;
    assert_eq!(status, 202, "{body}");
    let sent = functions.outbox(Function::Register).entries();
    let code = crate::support::extract_code(&sent.last().expect("sent").body).expect("code");
    let (status, body) =
        invoke(&register, with_body(signed_in_now("me-methods-email-confirm"), json!({ "code": code }))).await;
    assert_eq!(status, 200, "{body}");

    let (_, started) = invoke(&reset, start_event(&reset).await).await;
    let session = started["session"].clone();
    let (status, body) = invoke(&send, event("reset-send-code", None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_session")), "the sample's placeholder session");
    let (status, body) = invoke(
        &send,
        event(
            "reset-send-code",
            Some(json!({"session": session, "method": "email", "destination": "alice@example.com"})),
        ),
    )
    .await;
    assert_eq!((status, body.clone()), (202, json!({"expires_in": 300})));
    let sent = functions.outbox(Function::SendCode).entries();
    let code = crate::support::extract_code(&sent.last().expect("sent").body).expect("code");
    let (status, body) =
        invoke(&verify, event("reset-verify", Some(json!({"session": session, "method": "email", "code": code}))))
            .await;
    assert_eq!(status, 200, "{body}");
    let token = body["reset_token"].clone();
    let (status, body) = invoke(
        &reset,
        event(
            "reset-complete",
            Some(json!({"session": session, "reset_token": token, "new_password": "Shared-Passw0rd-5"})),
        ),
    )
    .await;
    assert_eq!((status, body), (200, json!({"done": true})));
    let told = functions.outbox(Function::Reset).entries();
    assert!(
        told.last().is_some_and(
            |m| m.to == "alice@example.com" && m.body.contains("was changed with self-service password reset")
        ),
        "the reset function tells the registered address: {told:?}"
    );
    let (status, _) = invoke(&verify, event("reset-start", None)).await;
    assert_eq!(status, 404, "verify serves only its own route");
}

#[tokio::test]
async fn register_function_reads_the_jwt_claims() {
    let functions = Functions::new().await;
    let (register, outbox) = (functions.router(Function::Register), functions.outbox(Function::Register));
    let (status, body) = invoke(&register, event("me-registration", None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"registered": false, "must_register": true, "reconfirm_due": null, "methods": []}));

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
    raw["pathParameters"] = json!({ "method": id });
    let (status, body) = invoke(&register, lambda_http::request::from_str(&raw.to_string()).expect("event")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("recent_signin_required")), "{body}");
}

/// The `remind` function's handler, fed the scheduled event sample: built with only email and
/// SMS over the same data as the others, it reminds alice once her re-confirmation is due.
#[tokio::test]
async fn remind_function_answers_the_scheduled_event_with_counts() {
    use sspr_core::ports::{Clock, ManualClock, SystemClock};
    let functions = Functions::new().await;
    let (_, state, outbox) = functions.get(Function::Register);
    let now = SystemClock.now();
    let alice = sspr_core::registration::SignedIn {
        username: sspr_core::types::Username::parse("alice").expect("name"),
        groups: vec!["SSPR-Users".into()],
        signed_in_at: Some(now),
    };
    state.sspr.begin_method(&alice, sspr_core::types::MethodKind::Email, "alice@example.com").await.expect("sent");
    let sent = outbox.as_ref().expect("outbox").entries();
    let code = crate::support::extract_code(&sent.last().expect("a code").body).expect("code");
    let code = sspr_core::types::Code::parse(&code).expect("code");
    state.sspr.confirm_method(&alice, sspr_core::types::MethodKind::Email, &code).await.expect("registered");

    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/remind-scheduled.json")).expect("the scheduled event"),
    )
    .expect("json");
    let config = Config::from_lookup(Deployment::Local, |name| {
        (name == "SSPR_PUBLIC_URL").then(|| "https://reset.example.com".to_owned())
    })
    .expect("configuration");
    let mut assembly = Assembly::new(config, sspr_app::lambda::REMIND_NEEDS);
    assembly.data_dir = Some(functions._data.path().to_owned());
    let clock = ManualClock::new(now);
    assembly.clock = Arc::new(clock.clone());
    let remind = assemble(assembly).await.expect("assembled");
    let counts = sspr_app::lambda::remind(&remind.sspr, &event).await.expect("a run");
    assert_eq!(counts, json!({"due": 0, "sent": 0, "already_sent": 0, "failed": 0, "unreachable": 0}));
    clock.advance(175 * 86_400);
    let counts = sspr_app::lambda::remind(&remind.sspr, &event).await.expect("a run");
    assert_eq!((counts["due"].as_u64(), counts["sent"].as_u64()), (Some(1), Some(1)), "{counts}");
    let counts = sspr_app::lambda::remind(&remind.sspr, &event).await.expect("a run");
    assert_eq!((counts["sent"].as_u64(), counts["already_sent"].as_u64()), (Some(0), Some(1)), "{counts}");
    // The outbox is the data directory's, shared with the other functions built over it.
    let reminders: Vec<_> = remind
        .outbox
        .as_ref()
        .expect("outbox")
        .entries()
        .into_iter()
        .filter(|e| e.subject.as_deref().is_some_and(|s| s.contains("please confirm")))
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert!(reminders[0].to == "alice@example.com" && reminders[0].body.contains("https://reset.example.com/register"));
}

/// Every sample event parses and names a route the code serves.
#[test]
fn every_sample_event_is_a_served_route() {
    let served: BTreeSet<String> = sspr_http::routes().iter().map(sspr_http::Route::key).collect();
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

/// The template's functions are the route list's: each with exactly its routes, anonymous or
/// behind the JWT authorizer as declared, and IAM for exactly the ports it is built with.
#[test]
fn the_template_functions_are_the_ones_the_routes_declare() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut declared_functions = BTreeSet::new();
    let mut remind_deployed = false;
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary");
        if binary == "remind" {
            // Not behind the API: run by the scheduler, with email, SMS and the index query.
            let events = &resource["Properties"]["Events"];
            assert!(events.is_null(), "{name:?}: the reminder function serves no route");
            let policies = serde_yaml::to_string(&resource["Properties"]["Policies"]).expect("policies");
            for (action, granted) in [
                ("ses:SendEmail", true),
                ("sns:Publish", true),
                ("dynamodb:Query", true),
                ("dynamodb:Scan", false),
                ("cognito-idp:", false),
                ("sms-voice:", false),
            ] {
                assert_eq!(policies.contains(action), granted, "{name:?}: {action}");
            }
            remind_deployed = true;
            continue;
        }
        let function = Function::ALL
            .into_iter()
            .find(|f| f.binary() == binary)
            .unwrap_or_else(|| panic!("{name:?}: the binary {binary} is no function of the route list"));
        declared_functions.insert(function);
        let events: Vec<&serde_yaml::Value> = resource["Properties"]["Events"]
            .as_mapping()
            .expect("Events")
            .values()
            .filter(|e| e["Type"].as_str() == Some("HttpApi"))
            .collect();
        let declared: BTreeSet<String> = events
            .iter()
            .map(|e| {
                let method = e["Properties"]["Method"].as_str().expect("Method").to_uppercase();
                format!("{method} {}", e["Properties"]["Path"].as_str().expect("Path"))
            })
            .collect();
        let expected: BTreeSet<String> = function.routes().map(|r| r.key()).collect();
        assert_eq!(declared, expected, "{name:?}");
        for route in function.routes() {
            let event = events
                .iter()
                .find(|e| e["Properties"]["Path"].as_str() == Some(route.path))
                .expect("the route's event");
            let auth = &event["Properties"]["Auth"]["Authorizer"];
            match route.access {
                sspr_http::Access::SignedIn | sspr_http::Access::Admin => {
                    assert!(auth.as_str().is_some_and(|a| a != "NONE"), "{route:?} must need a JWT")
                }
                sspr_http::Access::Anonymous => {
                    assert!(auth.is_null() || auth.as_str() == Some("NONE"), "{route:?} must be anonymous")
                }
            }
        }
        // Least privilege: the actions of the ports the function is built with, and no others.
        let policies = serde_yaml::to_string(&resource["Properties"]["Policies"]).expect("policies");
        let needs = function.needs();
        for (needed, action) in [
            (needs.directory, "cognito-idp:AdminGetUser"),
            (needs.sms, "sns:Publish"),
            (needs.voice, "sms-voice:SendVoiceMessage"),
            (needs.email, "ses:SendEmail"),
        ] {
            assert_eq!(policies.contains(action), needed, "{name:?}: {action}");
        }
        // The binary is a crate of its own under functions/.
        let manifest = repo_root().join("functions").join(binary).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        assert!(manifest.contains(&format!("name = \"{binary}\"")), "functions/{binary}: the binary's name");
    }
    assert_eq!(declared_functions, Function::ALL.into_iter().collect(), "every function is deployed");
    assert!(remind_deployed, "the reminder function is deployed");
    let schedule = &resources["RemindSchedule"];
    assert_eq!(schedule["Type"].as_str(), Some("AWS::Scheduler::Schedule"));
    assert!(schedule["Properties"]["Target"]["RetryPolicy"].is_mapping(), "runs are retried");
    assert!(schedule["Properties"]["Target"]["DeadLetterConfig"].is_mapping(), "and kept when they never succeed");
}

/// The crates that carry an adapter: the AWS SDK of each AWS adapter, the LDAP one, and the
/// embedded ones. (aws-config brings the STS and SSO SDKs for credentials to every function;
/// they are no adapter.)
const ADAPTER_CRATES: [&str; 9] = [
    "aws-sdk-dynamodb",
    "aws-sdk-secretsmanager",
    "aws-sdk-cognitoidentityprovider",
    "aws-sdk-sns",
    "aws-sdk-pinpointsmsvoicev2",
    "aws-sdk-sesv2",
    "ldap3",
    "sspr-embedded",
    "rusqlite",
];

/// Each function links the SDKs of the adapters behind the ports it is built with, and no
/// others (read from `cargo tree`, as a build of that function alone resolves it).
#[test]
fn each_function_links_only_the_adapters_it_uses() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for function in Function::ALL {
        let package = format!("sspr-fn-{}", function.binary());
        let out = std::process::Command::new(&cargo)
            .args(["tree", "--locked", "-e", "normal", "--prefix", "none", "-p", &package])
            .current_dir(repo_root())
            .output()
            .expect("cargo tree");
        assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
        let tree = String::from_utf8_lossy(&out.stdout);
        let linked: BTreeSet<&str> =
            tree.lines().filter_map(|l| l.split_whitespace().next()).filter(|c| ADAPTER_CRATES.contains(c)).collect();
        let needs = function.needs();
        let mut expected: BTreeSet<&str> = ["aws-sdk-dynamodb", "aws-sdk-secretsmanager"].into_iter().collect();
        for (needed, sdk) in [
            (needs.directory, "aws-sdk-cognitoidentityprovider"),
            (needs.directory, "ldap3"),
            (needs.sms, "aws-sdk-sns"),
            (needs.voice, "aws-sdk-pinpointsmsvoicev2"),
            (needs.email, "aws-sdk-sesv2"),
        ] {
            if needed {
                expected.insert(sdk);
            }
        }
        assert_eq!(linked, expected, "{package}");
    }
    let out = std::process::Command::new(&cargo)
        .args(["tree", "--locked", "-e", "normal", "--prefix", "none", "-p", "sspr-fn-remind"])
        .current_dir(repo_root())
        .output()
        .expect("cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    let linked: BTreeSet<&str> =
        tree.lines().filter_map(|l| l.split_whitespace().next()).filter(|c| ADAPTER_CRATES.contains(c)).collect();
    let expected: BTreeSet<&str> =
        ["aws-sdk-dynamodb", "aws-sdk-secretsmanager", "aws-sdk-sns", "aws-sdk-sesv2"].into_iter().collect();
    assert_eq!(linked, expected, "sspr-fn-remind");
}

/// The template configures the functions only with settings the code knows, and with each
/// directory it offers (the `Directory` parameter) the settings it gives are a valid Lambda
/// configuration.
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
        "SSPR_LDAP_URL",
        "SSPR_LDAP_FLAVOUR",
        "SSPR_LDAP_BIND_DN",
        "SSPR_LDAP_BASE_DN",
        "SSPR_LDAP_USER_ATTRIBUTE",
        "SSPR_LDAP_STARTTLS",
        "SSPR_LDAP_TIMEOUT_SECS",
        "SSPR_SENDER",
        "SSPR_EMAIL_FROM",
        "SSPR_PUBLIC_URL",
        "SSPR_SECRETS_ARN",
        "SSPR_CLAIM_USERNAME",
        "SSPR_CLAIM_GROUPS",
        "SSPR_TARGET_GROUP",
        "SSPR_VOICE_ORIGINATION",
        "SSPR_VOICE_ID",
        "SSPR_ORGANISATION",
        "SSPR_ADMIN_GROUPS",
        "SSPR_AUDIT_DAYS",
        "SSPR_AUTHENTICATOR_REQUIRED",
        "SSPR_SMS_COUNTRIES",
        "SSPR_SMS_DAILY_BUDGET",
        "RUST_LOG",
    ];
    for (key, _) in vars {
        let key = key.as_str().expect("name");
        assert!(known.contains(&key), "{key} is not a setting the code reads");
        assert!(!key.contains("PEPPER") && !key.contains("PASSWORD"), "{key}: secrets never go in env");
    }
    // The variables worked out as a deployment would: the parameters without a default, the
    // resources, and each directory with its settings (the other parameters at their default).
    let deployment = |directory: &str, more: &[(&'static str, &str)]| {
        let mut values: Vec<(&'static str, String)> = vec![
            ("Table", "sspr".to_owned()),
            ("Secrets", "arn:aws:secretsmanager:us-east-1:123456789012:secret:sspr-AbCdEf".to_owned()),
            ("UserPoolId", "us-east-1_abc".to_owned()),
            ("EmailFrom", "noreply@example.com".to_owned()),
            ("PublicUrl", "https://reset.example.com".to_owned()),
            ("Directory", directory.to_owned()),
        ];
        values.extend(more.iter().map(|(name, value)| (*name, (*value).to_owned())));
        values
    };
    let ldap = [
        ("LdapUrl", "ldaps://dc1.corp.example.com"),
        ("LdapBindDn", "CN=sspr-svc,OU=Services,DC=corp,DC=example,DC=com"),
        ("LdapBaseDn", "DC=corp,DC=example,DC=com"),
    ];
    let openldap_with_starttls = [
        ("LdapUrl", "ldap://ldap.corp.example.com"),
        ("LdapFlavour", "openldap"),
        ("LdapStartTls", "true"),
        ("LdapUserAttribute", "mail"),
        ("LdapBindDn", "cn=sspr,ou=services,dc=corp,dc=example,dc=com"),
        ("LdapBaseDn", "dc=corp,dc=example,dc=com"),
    ];
    let cases = [
        ("cognito", deployment("cognito", &[])),
        ("ldap", deployment("ldap", &ldap)),
        ("hybrid", deployment("hybrid", &ldap)),
        ("ldap (openldap, StartTLS)", deployment("ldap", &openldap_with_starttls)),
    ];
    for (case, values) in cases {
        let env = crate::lambda::template_environment(&values);
        let config =
            Config::from_lookup(Deployment::Lambda, |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
        assert!(config.is_ok(), "Directory {case}: {:?}", config.err());
        let ldap_settings: Vec<&str> =
            env.iter().map(|(k, _)| k.as_str()).filter(|k| k.starts_with("SSPR_LDAP_")).collect();
        assert_eq!(ldap_settings.is_empty(), case == "cognito", "Directory {case}: LDAP settings {ldap_settings:?}");
    }
}

/// A store that panics at its next read once armed: a fault no real store can be made to
/// show, standing for any handler's bug.
struct PanicsWhenArmed {
    inner: Arc<dyn RecordStore>,
    armed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl RecordStore for PanicsWhenArmed {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        self.inner.put(key, record).await
    }
    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        self.inner.delete(key, version).await
    }
    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        assert!(!self.armed.load(Ordering::SeqCst), "a bug in a handler");
        self.inner.get_with_counters(keys, counters).await
    }
    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.inner.write_all(writes).await
    }
    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        self.inner.query(query).await
    }
    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        self.inner.query_index(index, query).await
    }
    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        self.inner.query_counters(query).await
    }
    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        self.inner.add_to_counter(key, by, expires_at).await
    }
}

/// A handler's panic is the API's `500 internal`, in the errors' shape, and the function goes
/// on answering. Deployed functions unwind for that: cargo-lambda builds a release with
/// `panic = "abort"` unless the workspace's release profile names a strategy, and an abort would
/// end the function's process mid-request, with no answer of ours.
#[tokio::test]
async fn a_panic_is_a_500_in_the_errors_shape_and_the_function_goes_on() {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Value = toml::from_str(&manifest).expect("Cargo.toml");
    assert_eq!(
        manifest["profile"]["release"].get("panic").and_then(toml::Value::as_str),
        Some("unwind"),
        "the release profile names its panic strategy, or cargo-lambda builds the functions to abort"
    );
    let armed = Arc::new(AtomicBool::new(false));
    let functions = Functions::with_stores(|_, store| {
        Arc::new(PanicsWhenArmed { inner: store, armed: Arc::clone(&armed) }) as Arc<dyn RecordStore>
    })
    .await;
    let reset = functions.router(Function::Reset);
    let start = start_event(&reset).await;
    armed.store(true, Ordering::SeqCst);
    let (status, body) = invoke(&reset, start).await;
    assert_eq!((status, body["error"].as_str()), (500, Some("internal")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.contains("bug")), "nothing of the panic is told: {body}");
    armed.store(false, Ordering::SeqCst);
    let (status, body) = invoke(&reset, start_event(&reset).await).await;
    assert_eq!(status, 200, "the function goes on: {body}");
}
