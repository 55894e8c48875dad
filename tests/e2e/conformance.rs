//! One conformance suite per port, run against every adapter: each proves the same behaviour.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::json;
use sspr_core::password::{NewPassword, PasswordRules};
use sspr_core::ports::{
    Directory, DirectoryError, EmailMessage, Mailer, RecordKey, RecordStore, Sms, StoreError, StoredRecord, SystemClock,
};
use sspr_core::secret::{KeyedHasher, Pepper};
use sspr_core::types::{Email, PhoneNumber, Timestamp, Username};
use sspr_embedded::{DirectorySeed, EmbeddedDirectory, Outbox, SqliteStore};

use crate::support::{self, ALICE, ALICE_PASSWORD};

// ---------------------------------------------------------------- RecordStore

fn record(version: u64, body: serde_json::Value, expires_at: Option<i64>) -> StoredRecord {
    let serde_json::Value::Object(body) = body else { panic!("object") };
    StoredRecord { version, expires_at: expires_at.map(Timestamp), body }
}

async fn store_conformance(store: Arc<dyn RecordStore>) {
    let key = RecordKey { pk: support::unique("USER#conformance"), sk: "REGISTRATION".into() };
    assert!(store.get(&key).await.expect("get").is_none(), "a missing record reads as none");

    let body = json!({"name": "ålice ✓", "nested": {"list": [1, 2.5, "x", null, true]}, "empty": "", "n": 0});
    store.put(&key, &record(1, body.clone(), Some(1_900_000_000))).await.expect("create");
    let read = store.get(&key).await.expect("get").expect("present");
    assert_eq!(read, record(1, body, Some(1_900_000_000)), "what is written is read back unchanged");

    assert!(
        matches!(store.put(&key, &record(1, json!({"a": 1}), None)).await, Err(StoreError::Conflict)),
        "create twice"
    );
    assert!(
        matches!(store.put(&key, &record(3, json!({"a": 1}), None)).await, Err(StoreError::Conflict)),
        "skip a version"
    );
    store.put(&key, &record(2, json!({"a": 2}), None)).await.expect("update");
    assert!(
        matches!(store.put(&key, &record(2, json!({"a": 3}), None)).await, Err(StoreError::Conflict)),
        "stale update"
    );
    let read = store.get(&key).await.expect("get").expect("present");
    assert_eq!((read.version, read.body["a"].clone(), read.expires_at), (2, json!(2), None));

    // Of many writers racing from the same version, exactly one wins.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (store, key) = (Arc::clone(&store), key.clone());
        tasks.spawn(async move { store.put(&key, &record(3, json!({"writer": i}), None)).await });
    }
    let mut wins = 0;
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(()) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wins, 1);

    assert!(matches!(store.delete(&key, 2).await, Err(StoreError::Conflict)), "delete a stale version");
    assert!(store.get(&key).await.expect("get").is_some());
    store.delete(&key, 3).await.expect("delete");
    assert!(store.get(&key).await.expect("get").is_none());
    store.delete(&key, 3).await.expect("deleting what is gone is fine");
    store.put(&key, &record(1, json!({"again": true}), None)).await.expect("re-create after delete");

    // Keys are exact: a sibling sort key is a different record.
    let sibling = RecordKey { pk: key.pk.clone(), sk: "PENDING#email".into() };
    assert!(store.get(&sibling).await.expect("get").is_none());
}

#[tokio::test]
async fn store_conformance_sqlite() {
    store_conformance(Arc::new(SqliteStore::in_memory().expect("store"))).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sspr.db");
    store_conformance(Arc::new(SqliteStore::open(&path).expect("store"))).await;
    // The file keeps what was written.
    let key = RecordKey { pk: "POLICY".into(), sk: "POLICY".into() };
    SqliteStore::open(&path).expect("open").put(&key, &record(1, json!({"kept": 1}), None)).await.expect("put");
    let reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(reopened.get(&key).await.expect("get").map(|r| r.body["kept"].clone()), Some(json!(1)));
}

#[tokio::test]
async fn store_conformance_dynamodb() {
    let sdk = support::sdk().await;
    let table = support::unique("sspr-conformance");
    support::create_table_from_template(&sdk, &table).await;
    store_conformance(Arc::new(sspr_aws::DynamoDbStore::from_config(&sdk, table))).await;
}

#[tokio::test]
async fn dynamodb_unavailable_is_an_error_not_a_conflict() {
    let sdk = support::sdk().await;
    let store = sspr_aws::DynamoDbStore::from_config(&sdk, "no-such-table");
    let key = RecordKey { pk: "x".into(), sk: "y".into() };
    assert!(matches!(store.get(&key).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.put(&key, &record(1, json!({}), None)).await, Err(StoreError::Unavailable(_))));
}

// ---------------------------------------------------------------- Directory

fn password(s: &str) -> NewPassword {
    NewPassword::parse(s, &PasswordRules::default(), &Username::parse(ALICE).expect("name")).expect("valid password")
}

async fn directory_conformance(directory: &dyn Directory) {
    let alice = Username::parse(ALICE).expect("name");
    let user = directory.find_user(&alice).await.expect("find").expect("alice exists");
    assert_eq!(user.username, alice);
    assert!(user.enabled);
    assert!(user.groups.iter().any(|g| g == "SSPR-Users"), "{:?}", user.groups);
    let nobody = Username::parse("nobody-here").expect("name");
    assert!(directory.find_user(&nobody).await.expect("find").is_none());

    let secret = |s: &str| SecretString::from(s.to_owned());
    assert!(directory.authenticate(&alice, &secret(ALICE_PASSWORD)).await.expect("auth").is_some());
    assert!(directory.authenticate(&alice, &secret("wrong-password-1")).await.expect("auth").is_none());
    assert!(directory.authenticate(&nobody, &secret(ALICE_PASSWORD)).await.expect("auth").is_none());

    directory.set_password(&alice, &password("Conformance-Passw0rd-1")).await.expect("set password");
    assert!(directory.authenticate(&alice, &secret("Conformance-Passw0rd-1")).await.expect("auth").is_some());
    assert!(directory.authenticate(&alice, &secret(ALICE_PASSWORD)).await.expect("auth").is_none());
    assert!(matches!(
        directory.set_password(&nobody, &password("Conformance-Passw0rd-2")).await,
        Err(DirectoryError::UnknownUser)
    ));
    directory.sign_out_everywhere(&alice).await.expect("sign out");
    assert!(matches!(directory.unlock(&alice).await, Err(DirectoryError::UnlockNotSupported)));
}

#[tokio::test]
async fn directory_conformance_embedded() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("directory.json");
    let embedded = EmbeddedDirectory::open(&DirectorySeed::demo(), Some(&file)).expect("directory");
    directory_conformance(&embedded).await;
    // Changes survive a restart; the seed does not overwrite them.
    let reopened = EmbeddedDirectory::open(&DirectorySeed::demo(), Some(&file)).expect("reopen");
    let alice = Username::parse(ALICE).expect("name");
    let kept = SecretString::from("Conformance-Passw0rd-1".to_owned());
    assert!(reopened.authenticate(&alice, &kept).await.expect("auth").is_some());
    assert!(!std::fs::read_to_string(&file).expect("file").contains("Conformance"), "only hashes are kept");
}

#[tokio::test]
async fn directory_conformance_cognito() {
    let sdk = support::sdk().await;
    let pool = support::create_cognito_pool(&sdk).await;
    let cognito = sspr_aws::CognitoDirectory::from_config(&sdk, &pool.pool_id, Some(pool.client_id.clone()));
    directory_conformance(&cognito).await;
}

#[tokio::test]
async fn directory_seed_files_replace_the_demo_users() {
    let seed = DirectorySeed::from_toml(
        r#"
        [[user]]
        username = "bob"
        password = "bob-seed-Passw0rd"
        groups = ["SSPR-Users"]
        "#,
    )
    .expect("seed");
    let directory = EmbeddedDirectory::open(&seed, None).expect("directory");
    assert!(directory.find_user(&Username::parse("bob").expect("name")).await.expect("find").is_some());
    assert!(directory.find_user(&Username::parse(ALICE).expect("name")).await.expect("find").is_none());
    assert!(DirectorySeed::from_toml("[[user]]\nusername = \"x\"\nunknown = 1").is_err());
}

// ---------------------------------------------------------------- Sms and Mailer

async fn sender_conformance<F, Fut>(sms: &dyn Sms, mailer: &dyn Mailer, read: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    // Only what arrives after sending counts: a reused server keeps older messages to the same
    // (fictional) destinations.
    let (phone, email) = support::destinations();
    let phone_number = PhoneNumber::parse(&phone).expect("phone");
    let before = read(phone.clone()).await.len();
    sms.send_sms(&phone_number, "sspr conformance code 12345678").await.expect("sms");
    let got = read(phone.clone()).await;
    assert!(got.len() > before, "no new message to {phone}");
    assert!(got[before..].iter().any(|m| m.contains("12345678")), "{got:?}");

    let message = EmailMessage {
        subject: "Conformance".into(),
        text: "text part 87654321".into(),
        html: "<p>html part 87654321</p>".into(),
    };
    let before = read(email.clone()).await.len();
    mailer.send_email(&Email::parse(&email).expect("email"), &message).await.expect("email");
    let got = read(email.clone()).await;
    assert!(got.len() > before, "no new message to {email}");
    assert!(got[before..].iter().any(|m| m.contains("87654321") && m.contains("Conformance")), "{got:?}");
    assert!(read("nobody@example.com".into()).await.is_empty());
}

#[tokio::test]
async fn sender_conformance_outbox() {
    let outbox = Outbox::new(Arc::new(SystemClock), false);
    let entries = outbox.clone();
    sender_conformance(&outbox, &outbox, |to| {
        let entries = entries.entries();
        async move {
            entries
                .into_iter()
                .filter(|e| e.to == to)
                .map(|e| format!("{} {}", e.subject.unwrap_or_default(), e.body))
                .collect()
        }
    })
    .await;
}

#[tokio::test]
async fn sender_conformance_sns_and_ses() {
    let sdk = support::sdk().await;
    support::verify_sender(&sdk, "noreply@example.com").await;
    let sms = sspr_aws::SnsSms::from_config(&sdk);
    let mailer = sspr_aws::SesMailer::from_config(&sdk, Email::parse("noreply@example.com").expect("from"));
    sender_conformance(&sms, &mailer, |to| async move {
        support::moto_messages().await.into_iter().filter(|(t, _)| *t == to).map(|(_, b)| b).collect()
    })
    .await;
}

#[tokio::test]
async fn ses_refuses_an_unverified_sender() {
    let sdk = support::sdk().await;
    let mailer = sspr_aws::SesMailer::from_config(&sdk, Email::parse("unverified@example.org").expect("from"));
    let message = EmailMessage { subject: "s".into(), text: "t".into(), html: "h".into() };
    let refused = mailer
        .send_email(&Email::parse("alice@example.com").expect("to"), &message)
        .await
        .expect_err("an unverified sender is refused");
    // SES answers MessageRejected, "Email address not verified <address>".
    let said = refused.to_string();
    assert!(said.contains("not verified") && said.contains("unverified@example.org"), "{said}");
}

const PEPPER: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZab";

#[tokio::test]
async fn secrets_manager_gives_the_pepper() {
    support::record_secret(PEPPER);
    let sdk = support::sdk().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = support::unique("sspr-secrets");
    let created = client
        .create_secret()
        .name(&name)
        .secret_string(json!({ "pepper": PEPPER }).to_string())
        .send()
        .await
        .expect("secret");
    let arn = created.arn().expect("arn");
    let loaded = sspr_aws::secrets::load_pepper(&sdk, arn).await.expect("the pepper loads");
    // The pepper is the string's bytes: digests with it are those with the known bytes.
    let known = Pepper::new(PEPPER.as_bytes().to_vec()).expect("pepper");
    let digest = |pepper: Pepper| KeyedHasher::new(pepper).digest("conformance", &[b"part"]);
    assert_eq!(digest(loaded).to_hex(), digest(known).to_hex());
    let short = client
        .create_secret()
        .name(format!("{name}-short"))
        .secret_string(r#"{"pepper":"short"}"#)
        .send()
        .await
        .expect("secret");
    assert!(sspr_aws::secrets::load_pepper(&sdk, short.arn().expect("arn")).await.is_err());
    assert!(sspr_aws::secrets::load_pepper(&sdk, "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing")
        .await
        .is_err());
}
