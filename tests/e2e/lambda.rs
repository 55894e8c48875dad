//! The Lambda binaries as built for deployment, each run as its own process against
//! cargo-lambda's Lambda runtime emulator, configured only by the environment the template
//! gives them, with DynamoDB, Cognito, SNS, SES and Secrets Manager on the moto server. Fed
//! the sample events of `events/`, they register alice's email and reset her password, and the
//! scheduled function sends a due reminder once.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::repo_root;
use crate::support::{
    cognito_password_works, create_cognito_pool, create_table_from_template, destinations, extract_code, moto_messages,
    moto_url, record_secret, sdk, unique, verify_sender, FaultyProxy, ALICE, ALICE_PASSWORD,
};

/// The runtime emulator (`cargo lambda watch --only-lambda-apis`) the test script started.
fn emulator_url() -> String {
    std::env::var("SSPR_TEST_LAMBDA_EMULATOR").unwrap_or_else(|_| {
        panic!(
            "SSPR_TEST_LAMBDA_EMULATOR is not set: run the tests with `bash tests/run.sh`, which starts \
             cargo-lambda's runtime emulator"
        )
    })
}

/// Where cargo put the function binaries: next to this test's own `deps/` folder.
fn binary(name: &str) -> PathBuf {
    // By hand, another build of the functions (a deploy's, say, each run by a wrapper of that
    // name under an emulator of its architecture) may stand in for this one.
    if let Some(dir) = std::env::var_os("SSPR_TEST_FUNCTIONS_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(path.is_file(), "{} is missing", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the functions first (`cargo build --workspace --all-targets`)",
        path.display()
    );
    path
}

/// One function process; killed when dropped, whatever happened in the test.
struct Function(std::process::Child);

impl Function {
    /// Starts `name` with `env`; what it writes goes to `log`.
    fn start(name: &str, env: &[(String, String)], log: &std::path::Path) -> Self {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut command = std::process::Command::new(binary(name));
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_RUNTIME_API", format!("{}/.rt/{name}", emulator_url()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        Function(command.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}")))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Invokes `function` with `event` and returns the HTTP status and JSON body it answered.
async fn invoke(http: &reqwest::Client, function: &str, event: &Value) -> (u16, Value) {
    let url = format!("{}/2015-03-31/functions/{function}/invocations", emulator_url());
    let response = http.post(url).json(event).send().await.expect("invoke");
    assert!(response.status().is_success(), "{function}: the emulator answered {}", response.status());
    let out: Value = response.json().await.expect("function response");
    let status = out["statusCode"].as_u64().unwrap_or_else(|| panic!("{function}: no statusCode in {out}"));
    let body = out["body"].as_str().map(|b| serde_json::from_str(b).unwrap_or(Value::Null)).unwrap_or(Value::Null);
    (status as u16, body)
}

/// Invokes a function that is not behind the API with `event`; its answer as it gave it.
async fn invoke_plain(http: &reqwest::Client, function: &str, event: &Value) -> Value {
    let url = format!("{}/2015-03-31/functions/{function}/invocations", emulator_url());
    let response = http.post(url).json(event).send().await.expect("invoke");
    let status = response.status();
    let out: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{function}: the emulator answered {status}: {out}");
    out
}

/// A sample event with its body replaced, and for `/v1/me` events a sign-in of just now.
fn sample(name: &str, body: Option<Value>) -> Value {
    let path = repo_root().join("events").join(format!("{name}.json"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("event")).expect("json");
    if let Some(body) = body {
        event["body"] = Value::String(body.to_string());
    }
    if event["requestContext"]["authorizer"]["jwt"]["claims"].is_object() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        event["requestContext"]["authorizer"]["jwt"]["claims"]["auth_time"] = json!(now.to_string());
    }
    event
}

/// Waits for a message to `to` beyond the first `before`, and returns its code.
async fn code_for(to: &str, before: usize) -> String {
    for _ in 0..100 {
        let messages: Vec<String> =
            moto_messages().await.into_iter().filter(|(t, _)| t == to).map(|(_, b)| b).collect();
        if messages.len() > before {
            return extract_code(messages.last().expect("message")).expect("a code in the message");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message reached {to}");
}

async fn sent_to(to: &str) -> usize {
    moto_messages().await.into_iter().filter(|(t, _)| t == to).count()
}

/// How long the send-code function's connections to SES are held.
const SES_DELAY: Duration = Duration::from_secs(2);

const PEPPER: &str = "k7Qp2vX9mZ4rT8wY1nB6cF3hJ5sL0dGaE2uI9oP4yR7tW1xV";

/// The environment `Globals.Function.Environment.Variables` of `infra/template.yaml` gives
/// every function, its intrinsic functions worked out with `values`: what a deployment would
/// give each parameter and resource (by logical name). Parameters not in `values` take their
/// default; a variable whose value is `AWS::NoValue` is left out.
pub(crate) fn template_environment(values: &[(&str, String)]) -> Vec<(String, String)> {
    let template = crate::template();
    let values: Vec<(&str, &str)> = values.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let variables =
        template["Globals"]["Function"]["Environment"]["Variables"].as_mapping().expect("Globals environment");
    variables
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().expect("variable name");
            crate::cfn::chosen(&template, value, &values)
                .map(|value| (name.to_owned(), crate::cfn::text(&template, value, &values)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_binaries_register_and_reset_under_the_lambda_runtime() {
    let sdk = sdk().await;
    let table = unique("sspr-fn");
    create_table_from_template(&sdk, &table).await;
    let pool = create_cognito_pool(&sdk).await;
    verify_sender(&sdk, "noreply@example.com").await;
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(unique("sspr-secrets"))
        .secret_string(json!({ "pepper": PEPPER }).to_string())
        .send()
        .await
        .expect("secret");

    record_secret(PEPPER);

    // What the template's Globals give every function, with deploy-time values filled in, and
    // what the AWS SDK needs to reach moto.
    let mut env = template_environment(&[
        ("Table", table.clone()),
        ("UserPoolId", pool.pool_id.clone()),
        ("EmailFrom", "noreply@example.com".to_owned()),
        ("PublicUrl", "https://reset.example.com".to_owned()),
        ("Secrets", secret.arn().expect("arn").to_owned()),
        ("TargetGroup", "SSPR-Users".to_owned()),
    ]);
    for (name, value) in [
        ("AWS_ENDPOINT_URL", moto_url()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ] {
        env.push((name.to_owned(), value));
    }
    // The functions' log stays where the test script searches logs for secrets, when it says.
    let logs = tempfile::tempdir().expect("log dir");
    let log = match std::env::var_os("SSPR_TEST_LOG_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join("functions.log"),
        None => logs.path().join("functions.log"),
    };
    // send-code reaches SES through a proxy that holds each connection for a while: its answer
    // must not wait for the delivery, and the delivery must still be made.
    let slow_ses = FaultyProxy::start(moto_url().trim_start_matches("http://").trim_end_matches('/').to_owned()).await;
    slow_ses.slow(SES_DELAY);
    let mut send_code_env = env.clone();
    send_code_env.push(("AWS_ENDPOINT_URL_SESV2".to_owned(), slow_ses.url.clone()));
    // Its extension tells when an invocation waits for deliveries.
    send_code_env.push(("RUST_LOG".to_owned(), "info,sspr_app::lambda=debug".to_owned()));
    let mut functions: Vec<Function> = sspr_http::Function::ALL
        .iter()
        .map(|f| {
            let env = if *f == sspr_http::Function::SendCode { &send_code_env } else { &env };
            Function::start(f.binary(), env, &log)
        })
        .collect();
    functions.push(Function::start("remind", &env, &log));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    let (_, email) = destinations();

    // Registration, alice signed in through the JWT authorizer.
    let (status, body) = invoke(&http, "register", &sample("me-registration", None)).await;
    assert_eq!((status, body["registered"].as_bool()), (200, Some(false)), "{body}");
    let before = sent_to(&email).await;
    let (status, body) =
        invoke(&http, "register", &sample("me-methods-email", Some(json!({ "destination": email })))).await;
    assert_eq!(status, 202, "{body}");
    let registration_code = code_for(&email, before).await;
    let (status, body) =
        invoke(&http, "register", &sample("me-methods-email-confirm", Some(json!({ "code": registration_code }))))
            .await;
    assert_eq!((status, body["registered"].as_bool()), (200, Some(true)), "{body}");

    // The reset, one function per step, sharing the session through the table.
    let (status, challenge) = invoke(&http, "reset", &sample("reset-challenge", None)).await;
    assert_eq!(status, 200, "{challenge}");
    let challenge = serde_json::from_value(challenge).expect("challenge");
    let solved = sspr_core::reset::challenge::solve(&challenge).expect("solvable");
    let (status, started) =
        invoke(&http, "reset", &sample("reset-start", Some(json!({ "username": ALICE, "challenge": solved })))).await;
    assert_eq!(status, 200, "{started}");
    let session = started["session"].as_str().expect("session").to_owned();
    record_secret(&session);
    let before = sent_to(&email).await;
    let asked = std::time::Instant::now();
    let (status, body) = invoke(
        &http,
        "send-code",
        &sample("reset-send-code", Some(json!({ "session": session, "method": "email", "destination": email }))),
    )
    .await;
    let answered = asked.elapsed();
    assert_eq!(status, 202, "{body}");
    assert!(answered < SES_DELAY, "send-code answered in {answered:?}, not after its delivery");
    assert_eq!(sent_to(&email).await, before, "the code is still on its way when send-code has answered");
    let code = code_for(&email, before).await;
    assert!(asked.elapsed() >= SES_DELAY, "delivered through the slow SES");
    let waited = std::fs::read_to_string(&log).expect("functions' log");
    assert!(
        waited.contains(r#""message":"the invocation ends once its deliveries have","pending":1"#),
        "the extension held the invocation open for the delivery"
    );
    let (status, verified) = invoke(
        &http,
        "verify",
        &sample("reset-verify", Some(json!({ "session": session, "method": "email", "code": code }))),
    )
    .await;
    assert_eq!(status, 200, "{verified}");
    let token = verified["reset_token"].as_str().expect("reset token").to_owned();
    record_secret(&token);
    let new_password = "Lambda-Passw0rd-77";
    record_secret(new_password);
    let complete = json!({ "session": session, "reset_token": token, "new_password": new_password });
    let (status, body) = invoke(&http, "reset", &sample("reset-complete", Some(complete.clone()))).await;
    assert_eq!((status, body), (200, json!({ "done": true })));
    let (status, body) = invoke(&http, "reset", &sample("reset-complete", Some(complete))).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("token_used")), "{body}");

    assert!(cognito_password_works(&sdk, &pool, ALICE, new_password).await, "the new password signs in");

    // The scheduled reminders: someone confirmed 178 days ago is due within the week.
    let store = sspr_aws::DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    let carol = sspr_core::types::Username::parse("carol").expect("name");
    let carol_email = format!("carol-{}", email);
    let confirmed = sspr_core::types::Timestamp(
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs())
            .expect("now")
            - 178 * 86_400,
    );
    let registration = sspr_core::records::Registration {
        methods: vec![sspr_core::records::RegisteredMethod {
            id: sspr_core::types::MethodId::parse("00000000000000c1").expect("id"),
            kind: sspr_core::types::MethodKind::Email,
            held: sspr_core::records::Held::Destination {
                destination: sspr_core::types::Destination::parse(sspr_core::types::MethodKind::Email, &carol_email)
                    .expect("email"),
            },
            added_at: confirmed,
        }],
        confirmed_at: Some(confirmed),
    };
    let key = sspr_core::records::registration_key(&carol);
    sspr_core::records::save(&store, &key, &sspr_core::records::Versioned::new(registration)).await.expect("saved");
    let scheduled: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/remind-scheduled.json")).expect("the scheduled event"),
    )
    .expect("json");
    let counts = invoke_plain(&http, "remind", &scheduled).await;
    assert_eq!((counts["due"].as_u64(), counts["sent"].as_u64()), (Some(1), Some(1)), "{counts}");
    let counts = invoke_plain(&http, "remind", &scheduled).await;
    assert_eq!((counts["sent"].as_u64(), counts["already_sent"].as_u64()), (Some(0), Some(1)), "{counts}");
    let reminders: Vec<String> =
        moto_messages().await.into_iter().filter(|(t, _)| *t == carol_email).map(|(_, b)| b).collect();
    assert_eq!(reminders.len(), 1, "one reminder, through SES: {reminders:?}");
    assert!(reminders[0].contains("https://reset.example.com/register"), "{}", reminders[0]);
    assert!(!cognito_password_works(&sdk, &pool, ALICE, ALICE_PASSWORD).await, "the old one does not");
    let raw = aws_sdk_dynamodb::Client::new(&sdk).scan().table_name(&table).send().await.expect("scan");
    let raw = format!("{:?}", raw.items());
    drop(functions);
    let logged = std::fs::read_to_string(&log).expect("function logs");
    assert!(logged.contains("\"level\"") && logged.contains("reset completed"), "the functions log JSON lines");
    // Each with an RFC 3339 timestamp: Lambda filters by level only lines that have one.
    let mut stamped = Vec::new();
    for line in logged.lines().filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok()) {
        if line.get("level").is_none() {
            continue;
        }
        let stamp = line["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {line}"));
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{stamp}: not RFC 3339 ({e})"));
        stamped.push(line.to_string());
    }
    assert!(stamped.iter().any(|l| l.contains("reset completed")), "the functions' JSON lines: {stamped:?}");
    for secret in [registration_code.as_str(), code.as_str(), token.as_str(), session.as_str(), new_password, PEPPER] {
        assert!(!raw.contains(secret), "a secret is stored in clear");
        assert!(!logged.contains(secret), "a secret was logged");
    }
    assert!(!logged.contains(&email), "a destination was logged");
}
