//! Least privilege, as a contract between the template and the code: each function's role in
//! `infra/template.yaml` grants exactly the DynamoDB calls its code makes, on exactly the
//! partitions (`dynamodb:LeadingKeys`) it touches. The calls are watched, not declared: every
//! function runs a scripted session over a store that notes each call as the DynamoDB adapter
//! makes it (docs/architecture.md, "Least privilege").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};
use sspr_core::ports::{Index, IndexKey, Page, Query, RecordKey, RecordStore, StoreError, StoredRecord, Write};
use sspr_core::types::Timestamp;
use sspr_http::Function;

use crate::handlers::{event, invoke, signed_in_now, start_event, with_body, Functions};
use crate::template;

/// A grant or a call: a DynamoDB action on a partition pattern (`USER#*`, `POLICY`), or on the
/// index (`index`).
type Call = (String, String);

/// The pattern of a partition key: its prefix up to `#`, then `*`; a key without `#` as it is.
fn pattern(pk: &str) -> String {
    match pk.split_once('#') {
        Some((prefix, _)) => format!("{prefix}#*"),
        None => pk.to_owned(),
    }
}

/// Notes every call of the wrapped store as the DynamoDB adapter makes it (a batch of writes is
/// a transaction, checked by IAM item by item).
struct Watched {
    inner: Arc<dyn RecordStore>,
    calls: Arc<Mutex<BTreeSet<Call>>>,
}

impl Watched {
    fn note(&self, action: &str, pk: &str) {
        let pattern = if pk == "index" { "index".to_owned() } else { pattern(pk) };
        self.calls.lock().expect("calls").insert((format!("dynamodb:{action}"), pattern));
    }
}

#[async_trait]
impl RecordStore for Watched {
    async fn get(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        self.note("GetItem", &key.pk);
        self.inner.get(key).await
    }

    async fn put(&self, key: &RecordKey, record: &StoredRecord) -> Result<(), StoreError> {
        self.note("PutItem", &key.pk);
        self.inner.put(key, record).await
    }

    async fn delete(&self, key: &RecordKey, version: u64) -> Result<(), StoreError> {
        self.note("DeleteItem", &key.pk);
        self.inner.delete(key, version).await
    }

    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<StoredRecord>>, StoreError> {
        for key in keys {
            self.note("BatchGetItem", &key.pk);
        }
        self.inner.get_many(keys).await
    }

    async fn get_with_counters(
        &self,
        keys: &[RecordKey],
        counters: &[RecordKey],
    ) -> Result<(Vec<Option<StoredRecord>>, Vec<i64>), StoreError> {
        for key in keys.iter().chain(counters) {
            self.note("BatchGetItem", &key.pk);
        }
        self.inner.get_with_counters(keys, counters).await
    }

    async fn write_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        for write in writes {
            let action = match write {
                Write::Put { .. } => "PutItem",
                Write::Delete { .. } => "DeleteItem",
                Write::Check { .. } => "ConditionCheckItem",
                Write::Count { .. } => "UpdateItem",
            };
            self.note(action, &write.key().pk);
        }
        self.inner.write_all(writes).await
    }

    async fn query(&self, query: &Query) -> Result<Page<(RecordKey, StoredRecord)>, StoreError> {
        self.note("Query", &query.partition);
        self.inner.query(query).await
    }

    async fn query_index(&self, index: Index, query: &Query) -> Result<Page<(RecordKey, IndexKey)>, StoreError> {
        self.note("Query", "index");
        self.inner.query_index(index, query).await
    }

    async fn query_counters(&self, query: &Query) -> Result<Page<(RecordKey, i64)>, StoreError> {
        self.note("Query", &query.partition);
        self.inner.query_counters(query).await
    }

    async fn add_to_counter(&self, key: &RecordKey, by: i64, expires_at: Option<Timestamp>) -> Result<i64, StoreError> {
        self.note("UpdateItem", &key.pk);
        self.inner.add_to_counter(key, by, expires_at).await
    }
}

/// The DynamoDB grants of each function's role in the template, by binary name.
fn granted() -> BTreeMap<String, BTreeSet<Call>> {
    let template = template();
    let mut all = BTreeMap::new();
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary").to_owned();
        let mut grants = BTreeSet::new();
        for policy in resource["Properties"]["Policies"].as_sequence().expect("Policies") {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions: Vec<String> = match &statement["Action"] {
                    serde_yaml::Value::String(a) => vec![a.clone()],
                    serde_yaml::Value::Sequence(list) => {
                        list.iter().map(|a| a.as_str().expect("action").to_owned()).collect()
                    }
                    other => panic!("{name:?}: Action {other:?}"),
                };
                if !actions.iter().any(|a| a.starts_with("dynamodb:")) {
                    continue;
                }
                assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{name:?}");
                let resource = serde_yaml::to_string(&statement["Resource"]).expect("resource");
                let on_index = resource.contains("/index/");
                let patterns: Vec<String> = if on_index {
                    vec!["index".to_owned()]
                } else {
                    assert!(resource.contains("Table.Arn"), "{name:?}: a table grant is on the table: {resource}");
                    let keys = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                    let keys = keys
                        .as_sequence()
                        .unwrap_or_else(|| panic!("{name:?}: {actions:?} on the table must name its partitions"));
                    keys.iter().map(|k| k.as_str().expect("pattern").to_owned()).collect()
                };
                for action in &actions {
                    assert!(!action.ends_with('*') && action != "dynamodb:Scan", "{name:?}: {action}");
                    for pattern in &patterns {
                        grants.insert((action.clone(), pattern.clone()));
                    }
                }
            }
        }
        all.insert(binary, grants);
    }
    all
}

/// Calls a function makes only on a path the scripted session cannot reach, each with why.
const UNSCRIPTED: [(&str, &str, &str, &str); 3] = [
    ("verify", "dynamodb:GetItem", "USER#*", "a spent app step is read with the session after a lost race"),
    ("verify", "dynamodb:BatchGetItem", "USER#*", "a spent app step is read with the session after a lost race"),
    ("remind", "dynamodb:DeleteItem", "USER#*", "a reminder marker is given back when its message could not be sent"),
];

#[tokio::test]
async fn each_function_is_granted_exactly_the_table_calls_it_makes() {
    let watched: BTreeMap<Function, Arc<Mutex<BTreeSet<Call>>>> =
        Function::ALL.into_iter().map(|f| (f, Arc::default())).collect();
    let calls = watched.clone();
    let functions = Functions::with_stores(move |function, store| {
        Arc::new(Watched { inner: store, calls: Arc::clone(&calls[&function]) })
    })
    .await;
    let router = |f| functions.router(f);
    let (register, reset, send, verify, admin) = (
        router(Function::Register),
        router(Function::Reset),
        router(Function::SendCode),
        router(Function::Verify),
        router(Function::Admin),
    );

    // Registration: status, an email, an app, questions, re-confirmation.
    let ok = |(status, body): (u16, Value), what: &str| {
        assert!(status < 300, "{what}: {status} {body}");
        body
    };
    ok(invoke(&register, event("me-registration", None)).await, "status");
    ok(invoke(&register, signed_in_now("me-methods-email")).await, "email");
    let code = last_code(&functions, Function::Register);
    ok(
        invoke(&register, with_body(signed_in_now("me-methods-email-confirm"), json!({ "code": code }))).await,
        "confirm",
    );
    let app = ok(invoke(&register, signed_in_now("me-methods-totp")).await, "app");
    let seed = sspr_core::fakes::world::seed_of(app["manual_key"].as_str().expect("key"));
    let now = || sspr_core::ports::Clock::now(&sspr_core::ports::SystemClock);
    let app_confirm = at_path(signed_in_now("me-methods-email-confirm"), "/v1/me/methods/totp/confirm");
    // Confirmed with the previous step's code, so the reset below proves a later one.
    let confirming = seed.code_at(now().plus_secs(-30));
    ok(invoke(&register, with_body(app_confirm, json!({ "code": confirming }))).await, "app confirm");
    ok(invoke(&register, signed_in_now("me-methods-questions-put")).await, "questions");
    ok(invoke(&register, event("me-methods-questions-get", None)).await, "bank");
    ok(invoke(&register, event("me-registration-confirm", None)).await, "reconfirm");

    // A reset by email, completed; then the app and the questions in a new session.
    for _ in 0..2 {
        let started = ok(invoke(&reset, start_event(&reset).await).await, "start");
        let session = started["session"].clone();
        let body = json!({ "session": session, "method": "email", "destination": "alice@example.com" });
        ok(invoke(&send, event("reset-send-code", Some(body))).await, "send");
        let code = last_code(&functions, Function::SendCode);
        let body = json!({ "session": session, "method": "email", "code": code });
        let verified = ok(invoke(&verify, event("reset-verify", Some(body))).await, "verify");
        let body = json!({ "session": session, "reset_token": verified["reset_token"], "new_password": "short" });
        assert_eq!(invoke(&reset, event("reset-complete", Some(body))).await.0, 422, "a refused password");
        let body = json!({ "session": session, "reset_token": verified["reset_token"], "new_password": "Contract-Passw0rd-9" });
        ok(invoke(&reset, event("reset-complete", Some(body))).await, "complete");
    }
    let started = ok(invoke(&reset, start_event(&reset).await).await, "start");
    let session = started["session"].clone();
    ok(invoke(&verify, event("reset-questions", Some(json!({ "session": session })))).await, "questions drawn");
    let body = json!({ "session": session, "method": "totp", "code": seed.code_at(now()) });
    ok(invoke(&verify, event("reset-verify", Some(body))).await, "verify with the app");
    assert_eq!(invoke(&verify, event("reset-verify", None)).await.0, 400, "a bogus verification");

    // The administrators' routes, all of them.
    let policy = ok(invoke(&admin, event("admin-policy-get", None)).await, "policy");
    ok(invoke(&admin, event("admin-policy-put", Some(policy))).await, "policy saved");
    ok(invoke(&admin, event("admin-activity", None)).await, "one person's activity");
    let mut everyone = event("admin-activity", None);
    *everyone.uri_mut() = "/v1/admin/activity".parse().expect("uri");
    ok(invoke(&admin, everyone).await, "activity");
    ok(invoke(&admin, event("admin-report", None)).await, "report");
    ok(invoke(&admin, event("admin-users-registration-delete", None)).await, "cleared");

    // The reminder run, with a reminder due.
    let remind_calls: Arc<Mutex<BTreeSet<Call>>> = Arc::default();
    let remind = remind_with(&functions, Arc::clone(&remind_calls)).await;
    ok(invoke(&register, signed_in_now("me-methods-email")).await, "email again");
    let code = last_code(&functions, Function::Register);
    ok(invoke(&register, with_body(signed_in_now("me-methods-email-confirm"), json!({ "code": code }))).await, "again");
    remind.1.advance(175 * 86_400);
    let counts = sspr_app::lambda::remind(&remind.0, &json!({})).await.expect("a run");
    assert_eq!(counts["sent"], 1, "{counts}");

    let mut observed: BTreeMap<String, BTreeSet<Call>> =
        watched.iter().map(|(f, calls)| (f.binary().to_owned(), calls.lock().expect("calls").clone())).collect();
    observed.insert("remind".into(), remind_calls.lock().expect("calls").clone());
    let granted = granted();
    assert_eq!(granted.keys().collect::<Vec<_>>(), observed.keys().collect::<Vec<_>>(), "every function is watched");
    for (function, grants) in &granted {
        let made = &observed[function];
        let ungranted: Vec<&Call> = made.difference(grants).collect();
        assert!(ungranted.is_empty(), "{function}: the code makes calls its role does not grant: {ungranted:?}");
        // A single read or a batch is the cache's choice (the policy comes along when the cached
        // one is stale), so for what is granted and not seen, a read is a read.
        let reads: BTreeSet<Call> = made.iter().map(as_read).collect();
        let unused: Vec<&Call> = grants
            .iter()
            .filter(|grant| !made.contains(*grant) && !reads.contains(&as_read(grant)))
            .filter(|(action, pattern)| {
                !UNSCRIPTED.iter().any(|(f, a, p, _)| f == function && a == action && p == pattern)
            })
            .collect();
        assert!(unused.is_empty(), "{function}: the role grants calls the code does not make: {unused:?}");
    }
    // Only the admin function writes the policy or deletes a registration's partition's records
    // outside the person's own registration flow.
    for (function, grants) in &granted {
        let writes_policy = grants.contains(&("dynamodb:PutItem".into(), "POLICY".into()));
        assert_eq!(writes_policy, function == "admin", "{function}: writing the policy");
    }
    // The reset side deletes nothing but a name's limits, after a successful reset.
    for function in ["reset", "send-code", "verify"] {
        let deletes: Vec<&Call> =
            granted[function].iter().filter(|(action, _)| action == "dynamodb:DeleteItem").collect();
        let want: Vec<Call> =
            if function == "reset" { vec![("dynamodb:DeleteItem".into(), "LIMIT#*".into())] } else { Vec::new() };
        assert_eq!(deletes, want.iter().collect::<Vec<_>>(), "{function}: the reset side deletes only limits");
    }
}

/// A single or batch read as a read.
fn as_read((action, pattern): &Call) -> Call {
    let action = match action.as_str() {
        "dynamodb:GetItem" | "dynamodb:BatchGetItem" => "read",
        other => other,
    };
    (action.to_owned(), pattern.clone())
}

/// The code in the last message a function sent.
fn last_code(functions: &Functions, function: Function) -> String {
    let sent = functions.outbox(function).entries();
    crate::support::extract_code(&sent.last().expect("sent").body).expect("code")
}

/// A request moved to another path.
fn at_path(mut request: lambda_http::Request, path: &str) -> lambda_http::Request {
    *request.uri_mut() = path.parse().expect("uri");
    request
}

/// The reminder function over the shared store, watched, with a clock the test moves.
async fn remind_with(
    functions: &Functions,
    calls: Arc<Mutex<BTreeSet<Call>>>,
) -> (Arc<sspr_core::Sspr>, sspr_core::ports::ManualClock) {
    use sspr_app::{assemble, Assembly, Config, Deployment};
    let config = Config::from_lookup(Deployment::Local, |name| {
        (name == "SSPR_PUBLIC_URL").then(|| "https://reset.example.com".to_owned())
    })
    .expect("configuration");
    let mut assembly = Assembly::new(config, sspr_app::lambda::REMIND_NEEDS);
    assembly.data_dir = Some(functions._data.path().to_owned());
    let clock = sspr_core::ports::ManualClock::new(sspr_core::ports::Clock::now(&sspr_core::ports::SystemClock));
    assembly.clock = Arc::new(clock.clone());
    let store = sspr_embedded::SqliteStore::open(&functions._data.path().join("sspr.db")).expect("store");
    assembly.store = Some(Arc::new(Watched { inner: Arc::new(store), calls }));
    let assembled = assemble(assembly).await.expect("assembled");
    (assembled.sspr, clock)
}
