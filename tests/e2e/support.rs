//! What the end-to-end tests share: the local server started in-process on a loopback port
//! (embedded adapters, or AWS adapters on the moto server), reading sent codes back the way a
//! person would, and captured logs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use sspr_app::{Config, Deployment};
use sspr_core::fakes::store::CountingStore;
use sspr_core::ports::RecordStore;
use sspr_core::ports::{ManualClock, SystemClock, SystemRng};
use sspr_embedded::{Outbox, SqliteStore};
use sspr_local::{build, LocalOptions};
use tokio::net::{TcpListener, TcpStream};

pub const ALICE: &str = "alice";
pub const ALICE_PASSWORD: &str = "alice-demo-Passw0rd";
/// The demo administrator, in `SSPR-Admins` (in the embedded directory and the test pool).
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-demo-Passw0rd";
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// A second administrator, told when the first resets their password.
pub const OTHER_ADMIN: &str = "ops";
pub const OTHER_ADMIN_EMAIL: &str = "ops@example.com";

/// The embedded directory of the tests: the demo users and a second administrator.
const TEST_DIRECTORY: &str = r#"
[[user]]
username = "alice"
password = "alice-demo-Passw0rd"
email = "alice@example.com"
phone = "+15555550101"
groups = ["SSPR-Users"]

[[user]]
username = "bob"
password = "bob-demo-Passw0rd"
groups = ["SSPR-Users"]

[[user]]
username = "frank"
password = "frank-demo-Passw0rd"
groups = ["Contractors"]

[[user]]
username = "admin"
password = "admin-demo-Passw0rd"
email = "admin@example.com"
groups = ["SSPR-Admins"]
admin = true

[[user]]
username = "ops"
password = "ops-demo-Passw0rd"
email = "ops@example.com"
groups = ["SSPR-Admins"]
admin = true
"#;

// ---------------------------------------------------------------- captured logs

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Routes every log line of the test process (at debug level) into a buffer tests can search,
/// and on to standard error, where the test script searches it too. Fails when it cannot: a
/// subscriber installed before this one would leave the buffer empty and every check of it
/// vacuous.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = LogSink(Arc::clone(&buffer));
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,h2=info,aws_smithy_runtime=info,aws_config=info,rustls=info",
            ))
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .try_init()
            .unwrap_or_else(|e| panic!("log capture cannot be set up (was another subscriber installed first?): {e}"));
        buffer
    });
}

pub fn captured_logs() -> String {
    let buffer = LOGS.get().expect("log capture is not set up: call capture_logs first");
    let bytes = buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The line `complete_reset` logs; call [`assert_not_logged`] after a reset was completed.
pub const RESET_COMPLETED: &str = "reset completed";

/// Fails if any of `secrets` appears in any captured log line (S9 in docs/security.md), or if
/// the capture misses the line a completed reset logs: an empty capture proves nothing.
/// A code (digits only) is looked for as a whole word, as the test script's final search does
/// (`grep -w`): every line's timestamp holds six digits of microseconds, which a six-digit
/// app code may equal by chance.
pub fn assert_not_logged(secrets: &[&str]) {
    let logs = captured_logs();
    assert!(logs.contains(RESET_COMPLETED), "no \"{RESET_COMPLETED}\" line was captured: logs are not being captured");
    for secret in secrets {
        assert!(!secret.is_empty());
        let found = if secret.bytes().all(|b| b.is_ascii_digit()) {
            contains_word(&logs, secret)
        } else {
            logs.contains(secret)
        };
        assert!(!found, "a secret appeared in the logs");
    }
}

/// Whether `word` occurs in `text` with no letter, digit or underscore on either side.
fn contains_word(text: &str, word: &str) -> bool {
    let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let bytes = text.as_bytes();
    text.match_indices(word)
        .any(|(at, _)| !is_word(at.checked_sub(1).and_then(|i| bytes.get(i))) && !is_word(bytes.get(at + word.len())))
}

#[test]
fn a_code_is_found_as_a_whole_word_only() {
    assert!(contains_word("code=123456 sent", "123456"));
    assert!(contains_word("{\"code\":\"123456\"}", "123456"));
    assert!(contains_word("123456", "123456"));
    assert!(!contains_word("2026-12-07T04:05:13.123456Z", "123456"), "a timestamp's microseconds");
    assert!(!contains_word("sdk_invocation_id=1234567", "123456"));
    assert!(contains_word("id=1234567 then 123456.", "123456"), "a later whole occurrence");
}

// ---------------------------------------------------------------- secrets used

static SECRETS_FILE: Mutex<()> = Mutex::new(());

/// Notes a secret the tests used (a code, reset token, session id, sign-in token, password or
/// pepper) in the file `SSPR_TEST_SECRETS_FILE` names, one a line, so the test script can look
/// for each in every log once the tests are done (S9 in docs/security.md). Without that variable
/// nothing is written. Values under 8 characters are too short to search logs for.
pub fn record_secret(secret: &str) {
    let Some(path) = std::env::var_os("SSPR_TEST_SECRETS_FILE") else { return };
    assert!(!secret.contains(['\n', '\r']), "a secret is one line");
    if secret.chars().count() < 8 {
        return;
    }
    let _one_writer = SECRETS_FILE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", std::path::Path::new(&path).display()));
    std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes()).expect("secrets file");
}

/// Records the secret fields of a request or response body. Codes are recorded as they are
/// read from messages ([`extract_code`]), not as sent: tests also send codes never issued.
fn record_secrets_in(body: &Value) {
    for field in ["session", "reset_token", "token", "password", "new_password", "manual_key"] {
        if let Some(secret) = body.get(field).and_then(Value::as_str) {
            record_secret(secret);
        }
    }
}

// ---------------------------------------------------------------- the moto server

/// The moto server started by the test script; every test that needs AWS fails without it.
pub fn moto_url() -> String {
    std::env::var("SSPR_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("SSPR_TEST_MOTO_URL is not set: run the tests with `bash tests/run.sh`, which starts the moto server")
    })
}

pub async fn sdk() -> aws_config::SdkConfig {
    let url = moto_url();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sspr_aws::https_client())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

/// A name no other test in this run (or an earlier run on the same moto server) uses.
pub fn unique(prefix: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A fictional phone number (555-01XX, in one of ten US area codes: a thousand numbers no
/// other test of this run uses by name) and an email address of this test's own.
pub fn destinations() -> (String, String) {
    const AREAS: [&str; 10] = ["212", "213", "312", "415", "617", "713", "206", "303", "305", "404"];
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let salt = std::process::id() % 1000;
    let k = ((n + salt) % 1000) as usize;
    (format!("+1{}5550{}", AREAS[k / 100], 100 + k % 100), format!("alice.{salt}.{n}@example.com"))
}

/// Creates the table exactly as `infra/template.yaml` declares it.
pub async fn create_table_from_template(sdk: &aws_config::SdkConfig, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TimeToLiveSpecification,
    };
    let template = crate::template();
    let props = &template["Resources"]["Table"]["Properties"];
    let s = |v: &serde_yaml::Value| {
        v.as_str().unwrap_or_else(|| panic!("template: expected a string, got {v:?}")).to_owned()
    };
    let key_schema = |v: &serde_yaml::Value| -> Vec<KeySchemaElement> {
        v.as_sequence()
            .expect("KeySchema")
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(s(&k["AttributeName"]))
                    .key_type(KeyType::from(s(&k["KeyType"]).as_str()))
                    .build()
                    .expect("key")
            })
            .collect()
    };
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(s(&props["BillingMode"]).as_str()))
        .set_key_schema(Some(key_schema(&props["KeySchema"])));
    for a in props["AttributeDefinitions"].as_sequence().expect("AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(s(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(s(&a["AttributeType"]).as_str()))
                .build()
                .expect("attribute"),
        );
    }
    for g in props["GlobalSecondaryIndexes"].as_sequence().into_iter().flatten() {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(s(&g["IndexName"]))
                .set_key_schema(Some(key_schema(&g["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(s(&g["Projection"]["ProjectionType"]).as_str()))
                        .build(),
                )
                .build()
                .expect("index"),
        );
    }
    request.send().await.expect("create table");
    let ttl = &props["TimeToLiveSpecification"];
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(s(&ttl["AttributeName"]))
                .enabled(ttl["Enabled"].as_bool().expect("Enabled"))
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("ttl");
}

/// A Cognito user pool with alice in `SSPR-Users`, the administrator in `SSPR-Admins` (with a
/// directory email address), and an app client for admin password sign-in.
pub struct CognitoPool {
    pub pool_id: String,
    pub client_id: String,
}

pub async fn create_cognito_pool(sdk: &aws_config::SdkConfig) -> CognitoPool {
    use aws_sdk_cognitoidentityprovider::types::{ExplicitAuthFlowsType, PasswordPolicyType, UserPoolPolicyType};
    let c = aws_sdk_cognitoidentityprovider::Client::new(sdk);
    let pool = c
        .create_user_pool()
        .pool_name(unique("sspr"))
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(8)
                        .require_numbers(true)
                        .require_lowercase(true)
                        .require_uppercase(false)
                        .require_symbols(false)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("user pool");
    let pool_id = pool.user_pool.and_then(|p| p.id).expect("pool id");
    let client = c
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("sspr-local")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .expect("client");
    let client_id = client.user_pool_client.and_then(|c| c.client_id).expect("client id");
    for group in ["SSPR-Users", "SSPR-Admins", "Contractors"] {
        c.create_group().user_pool_id(&pool_id).group_name(group).send().await.expect("group");
    }
    add_cognito_user(&c, &pool_id, ALICE, None, Some(ALICE_PASSWORD), "SSPR-Users").await;
    add_cognito_user(&c, &pool_id, "bob", None, Some("bob-demo-Passw0rd"), "SSPR-Users").await;
    add_cognito_user(&c, &pool_id, "frank", None, Some("frank-demo-Passw0rd"), "Contractors").await;
    add_cognito_user(&c, &pool_id, ADMIN, Some(ADMIN_EMAIL), Some(ADMIN_PASSWORD), "SSPR-Admins").await;
    add_cognito_user(&c, &pool_id, OTHER_ADMIN, Some(OTHER_ADMIN_EMAIL), None, "SSPR-Admins").await;
    CognitoPool { pool_id, client_id }
}

/// A user of the pool, with a directory address and a permanent password when given, in `group`.
async fn add_cognito_user(
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    username: &str,
    email: Option<&str>,
    password: Option<&str>,
    group: &str,
) {
    use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
    let attributes = email.map(|e| vec![AttributeType::builder().name("email").value(e).build().expect("attribute")]);
    c.admin_create_user()
        .user_pool_id(pool_id)
        .username(username)
        .set_user_attributes(attributes)
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{username}: {e}"));
    if let Some(password) = password {
        c.admin_set_user_password()
            .user_pool_id(pool_id)
            .username(username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{username}'s password: {e}"));
    }
    c.admin_add_user_to_group()
        .user_pool_id(pool_id)
        .username(username)
        .group_name(group)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{username} in {group}: {e}"));
}

/// Signs in to Cognito as an application would; `true` when the password is accepted.
pub async fn cognito_password_works(
    sdk: &aws_config::SdkConfig,
    pool: &CognitoPool,
    username: &str,
    password: &str,
) -> bool {
    aws_sdk_cognitoidentityprovider::Client::new(sdk)
        .admin_initiate_auth()
        .user_pool_id(&pool.pool_id)
        .client_id(&pool.client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .map(|o| o.authentication_result().is_some())
        .unwrap_or(false)
}

pub async fn verify_sender(sdk: &aws_config::SdkConfig, from: &str) {
    aws_sdk_sesv2::Client::new(sdk).create_email_identity().email_identity(from).send().await.expect("email identity");
}

/// moto's record of its state. It is built while other requests change that state, and now and
/// then the server answers with an error instead; a second look gets it.
async fn moto_data() -> Value {
    let url = format!("{}/moto-api/data.json", moto_url());
    let mut last = String::new();
    for _ in 0..10 {
        let response = reqwest::get(&url).await.expect("moto data");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            if let Ok(data) = serde_json::from_str(&text) {
                return data;
            }
        }
        last = format!("{status}: {}", text.chars().take(300).collect::<String>());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto's data.json did not answer with JSON: {last}");
}

/// Everything moto says was sent, as a phone or mailbox would show it: `(to, body)`.
pub async fn moto_messages() -> Vec<(String, String)> {
    let data = moto_data().await;
    let mut out = Vec::new();
    for sms in data["sns"]["SMS"].as_array().into_iter().flatten() {
        out.push((
            sms["phone_number"].as_str().unwrap_or_default().to_owned(),
            sms["message"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for mail in data["ses"]["Message"].as_array().into_iter().flatten() {
        let body =
            format!("{}\n{}", mail["subject"].as_str().unwrap_or_default(), mail["body"].as_str().unwrap_or_default());
        for to in mail["destinations"]["ToAddresses"].as_array().into_iter().flatten() {
            out.push((to.as_str().unwrap_or_default().to_owned(), body.clone()));
        }
    }
    out
}

// ---------------------------------------------------------------- the local server

pub enum Backend {
    Embedded,
    Moto { sdk: Box<aws_config::SdkConfig>, pool: CognitoPool, table: String },
}

/// A local server on a loopback port, stopped when dropped.
pub struct TestServer {
    pub url: String,
    /// The product behind the server, for what has no route (the scheduled reminder run).
    pub sspr: Arc<sspr_core::Sspr>,
    pub clock: ManualClock,
    pub backend: Backend,
    pub outbox: Option<Outbox>,
    pub embedded_store: Option<SqliteStore>,
    /// Counts the store's round trips: calls of the embedded store, or requests to DynamoDB.
    pub round_trips: RoundTrips,
    pub http: reqwest::Client,
    /// Sessions that asked for a code already: their next `send-code` carries a fresh proof of
    /// work, as the page sends it.
    asked: std::sync::Mutex<std::collections::HashSet<String>>,
    _data: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn start(backend: Backend) -> TestServer {
    start_with(backend, Vec::new(), None).await
}

/// A server whose settings `overrides` change (they win over the backend's), with `secrets` as
/// its `secrets.json` when given.
pub async fn start_with(
    backend: Backend,
    overrides: Vec<(String, String)>,
    secrets: Option<serde_json::Value>,
) -> TestServer {
    start_with_aws(backend, overrides, secrets, None).await
}

/// The same, with `aws` as the AWS configuration instead of the environment's.
pub async fn start_with_aws(
    backend: Backend,
    overrides: Vec<(String, String)>,
    secrets: Option<serde_json::Value>,
    aws: Option<aws_config::SdkConfig>,
) -> TestServer {
    capture_logs();
    let data = tempfile::tempdir().expect("data dir");
    if let Some(secrets) = secrets {
        std::fs::write(data.path().join("secrets.json"), secrets.to_string()).expect("secrets.json");
    }
    let base: Vec<(String, String)> = match &backend {
        Backend::Embedded => {
            let seed = data.path().join("directory.toml");
            std::fs::write(&seed, TEST_DIRECTORY).expect("directory seed");
            vec![("SSPR_DIRECTORY_FILE".into(), seed.display().to_string())]
        }
        Backend::Moto { pool, table, .. } => vec![
            ("SSPR_STORE".into(), "dynamodb".into()),
            ("SSPR_TABLE".into(), table.clone()),
            ("SSPR_DIRECTORY".into(), "cognito".into()),
            ("SSPR_COGNITO_USER_POOL_ID".into(), pool.pool_id.clone()),
            ("SSPR_COGNITO_CLIENT_ID".into(), pool.client_id.clone()),
            ("SSPR_SENDER".into(), "aws".into()),
            ("SSPR_EMAIL_FROM".into(), "noreply@example.com".into()),
        ],
    };
    let vars: Vec<(String, String)> = overrides.into_iter().chain(base).collect();
    let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let config = Config::from_lookup(Deployment::Local, lookup).expect("test configuration");
    let oidc = sspr_local::OidcSettings::from_lookup(lookup).expect("OpenID Connect settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let clock = ManualClock::new(sspr_core::ports::Clock::now(&SystemClock));
    // The store the configuration names, built here so its round trips can be counted.
    let (store, embedded_store, round_trips): (Arc<dyn RecordStore>, _, _) = match &backend {
        Backend::Embedded => {
            let sqlite = SqliteStore::open(&data.path().join("sspr.db")).expect("embedded store");
            let counting = Arc::new(CountingStore::new(sqlite.clone()));
            (counting.clone(), Some(sqlite), RoundTrips::Embedded(counting))
        }
        Backend::Moto { sdk, table, .. } => {
            let requests = Arc::new(AtomicUsize::new(0));
            let config = aws_sdk_dynamodb::config::Builder::from(&**sdk)
                .interceptor(CountRequests(Arc::clone(&requests)))
                .build();
            let client = aws_sdk_dynamodb::Client::from_conf(config);
            (Arc::new(sspr_aws::DynamoDbStore::new(client, table.clone())), None, RoundTrips::DynamoDb(requests))
        }
    };
    let server = build(LocalOptions {
        config,
        data_dir: data.path().to_owned(),
        public_url: url.clone(),
        clock: Arc::new(clock.clone()),
        rng: Arc::new(SystemRng),
        echo_outbox: false,
        store: Some(store),
        aws,
        oidc,
    })
    .await
    .expect("local server");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = server.router.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    TestServer {
        url,
        sspr: Arc::clone(&server.sspr),
        clock,
        backend,
        outbox: server.outbox.clone(),
        embedded_store,
        round_trips,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        asked: Default::default(),
        _data: data,
        shutdown: Some(tx),
    }
}

/// Counts a store's round trips.
pub enum RoundTrips {
    Embedded(Arc<CountingStore<SqliteStore>>),
    DynamoDb(Arc<AtomicUsize>),
}

impl RoundTrips {
    /// Round trips so far.
    pub fn count(&self) -> usize {
        match self {
            RoundTrips::Embedded(counting) => counting.calls().total(),
            RoundTrips::DynamoDb(requests) => requests.load(Ordering::SeqCst),
        }
    }
}

/// Counts every request the DynamoDB client sends, retries included: each is a round trip.
#[derive(Debug)]
struct CountRequests(Arc<AtomicUsize>);

impl aws_sdk_dynamodb::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub async fn start_embedded() -> TestServer {
    start(Backend::Embedded).await
}

pub async fn start_moto() -> TestServer {
    start_moto_with(Vec::new()).await
}

/// A server on moto whose settings `overrides` change.
pub async fn start_moto_with(overrides: Vec<(String, String)>) -> TestServer {
    let sdk = sdk().await;
    let table = unique("sspr");
    create_table_from_template(&sdk, &table).await;
    let pool = create_cognito_pool(&sdk).await;
    verify_sender(&sdk, "noreply@example.com").await;
    start_with(Backend::Moto { sdk: Box::new(sdk), pool, table }, overrides, None).await
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The `Retry-After` header, where there is one.
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl TestServer {
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), format!("{}{path}", self.url));
        if let Some(token) = token {
            record_secret(token);
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            record_secrets_in(&body);
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).map(|v| v.to_str().unwrap_or("not text").to_owned());
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        record_secrets_in(&body);
        crate::openapi::assert_documented(method, path, status, &body);
        Reply { status, body, retry_after }
    }

    /// `POST path` with `body`; a `send-code` after the session's first gets a fresh solved
    /// challenge, as the page adds it, unless the body has one.
    pub async fn post(&self, path: &str, mut body: Value) -> Reply {
        if path == "/v1/reset/send-code" && body.get("challenge").is_none() {
            let session = body["session"].as_str().unwrap_or_default().to_owned();
            let again = !self.asked.lock().expect("sessions").insert(session);
            if again {
                body["challenge"] = Value::String(self.challenge().await);
            }
        }
        self.call("POST", path, None, Some(body)).await
    }

    /// A solved proof-of-work challenge, as the reset page would send it.
    pub async fn challenge(&self) -> String {
        let r = self.call("GET", "/v1/reset/challenge", None, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let challenge: sspr_core::reset::challenge::Challenge = serde_json::from_value(r.body).expect("challenge");
        sspr_core::reset::challenge::solve(&challenge).expect("solvable")
    }

    /// `POST /v1/reset/start` for `username`, with a solved challenge.
    pub async fn start_reset(&self, username: &str) -> Reply {
        let challenge = self.challenge().await;
        self.post("/v1/reset/start", json!({ "username": username, "challenge": challenge })).await
    }

    pub async fn sign_in(&self, username: &str, password: &str) -> Result<String, Reply> {
        let r = self.post("/v1/local/signin", json!({"username": username, "password": password})).await;
        match r.body["token"].as_str() {
            Some(t) if r.status == 200 => Ok(t.to_owned()),
            _ => Err(r),
        }
    }

    /// Messages delivered so far to `to` (phone or email), oldest first.
    pub async fn messages_to(&self, to: &str) -> Vec<String> {
        match &self.backend {
            Backend::Embedded => self
                .outbox
                .as_ref()
                .expect("outbox")
                .entries()
                .into_iter()
                .filter(|e| e.to == to)
                .map(|e| format!("{}\n{}", e.subject.unwrap_or_default(), e.body))
                .collect(),
            Backend::Moto { .. } => {
                moto_messages().await.into_iter().filter(|(t, _)| t == to).map(|(_, b)| b).collect()
            }
        }
    }

    /// Runs `send`, then reads the code from the message it caused at `to`.
    pub async fn code_sent_by<F: std::future::Future<Output = Reply>>(&self, to: &str, send: F) -> String {
        let before = self.messages_to(to).await.len();
        let reply = send.await;
        assert_eq!(reply.status, 202, "sending a code: {reply:?}");
        let last = self.message_after(to, before).await;
        extract_code(&last).unwrap_or_else(|| panic!("no code in the message to {to}"))
    }

    /// The newest message to `to` once there are more than `before` (the local server may
    /// deliver a code just after it answered).
    pub async fn message_after(&self, to: &str, before: usize) -> String {
        for _ in 0..50 {
            let mut messages = self.messages_to(to).await;
            if messages.len() > before {
                return messages.pop().expect("a message");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no message reached {to}");
    }

    /// Whether `password` signs alice (or another user) in, through the configured directory.
    pub async fn password_works(&self, username: &str, password: &str) -> bool {
        let local = self.sign_in(username, password).await.is_ok();
        if let Backend::Moto { sdk, pool, .. } = &self.backend {
            let cognito = cognito_password_works(sdk, pool, username, password).await;
            assert_eq!(local, cognito, "local sign-in and Cognito disagree");
        }
        local
    }

    /// Every stored item as text: SQLite rows, or a DynamoDB scan.
    pub async fn raw_store(&self) -> String {
        match &self.backend {
            Backend::Embedded => {
                let rows = self.embedded_store.as_ref().expect("store").dump().await.expect("dump");
                rows.into_iter().map(|(pk, sk, body)| format!("{pk} {sk} {body}\n")).collect()
            }
            Backend::Moto { sdk, table, .. } => {
                let out = aws_sdk_dynamodb::Client::new(sdk).scan().table_name(table).send().await.expect("scan");
                format!("{:?}", out.items())
            }
        }
    }
}

// ---------------------------------------------------------------- a phone's authenticator app

/// The code an authenticator app shows at `at` (Unix seconds) for the app added with `otpauth_uri`,
/// computed apart from the product by PyPI's `pyotp`, in the Python the test script prepared.
pub fn app_code(otpauth_uri: &str, at: i64) -> String {
    let python = std::env::var("SSPR_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("SSPR_TEST_PYTHON is not set: run the tests with `bash tests/run.sh`, which installs pyotp")
    });
    let out = std::process::Command::new(&python)
        .args(["-c", "import pyotp, sys; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))", otpauth_uri])
        .arg(at.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(out.status.success(), "pyotp: {}", String::from_utf8_lossy(&out.stderr));
    let code = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "pyotp answered {code:?}");
    code
}

/// The 8-digit code in a message (recorded as a secret the tests used).
pub fn extract_code(message: &str) -> Option<String> {
    let code = message.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 8).map(str::to_owned)?;
    record_secret(&code);
    Some(code)
}

/// A TCP proxy on loopback to `target`; while `failing`, every new connection is closed at
/// once, and turning it on closes the open ones (the client's pool keeps them alive). Each
/// connection it forwards waits `delay` first (a slow service).
pub struct FaultyProxy {
    pub url: String,
    failing: Arc<AtomicBool>,
    pub refused: Arc<AtomicUsize>,
    delay: Arc<std::sync::Mutex<Duration>>,
    open: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let failing = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let delay = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let (f, r, o, d) = (Arc::clone(&failing), Arc::clone(&refused), Arc::clone(&open), Arc::clone(&delay));
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if f.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let wait = *d.lock().expect("delay");
                let forward = tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                o.lock().expect("connections").push(forward);
            }
        });
        Self { url, failing, refused, delay, open, task }
    }

    /// Every connection from now on waits `delay` before it is forwarded.
    pub fn slow(&self, delay: Duration) {
        *self.delay.lock().expect("delay") = delay;
    }

    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
        if on {
            for connection in self.open.lock().expect("connections").drain(..) {
                connection.abort();
            }
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.fail(true);
    }
}
