//! One conformance suite per port, run against every adapter: each proves the same behaviour.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::json;
use sspr_core::fakes::store::MemoryStore;
use sspr_core::password::{NewPassword, PasswordRules};
use sspr_core::ports::{
    Authenticate, Cursor, Directory, DirectoryError, EmailMessage, Index, IndexKey, Mailer, Page, Query, RecordKey,
    RecordStore, Sms, SortKeys, StoreError, StoredRecord, SystemClock, Voice, Write,
};
use sspr_core::secret::{KeyedHasher, Pepper};
use sspr_core::types::{Email, PhoneNumber, Timestamp, Username};
use sspr_embedded::{DirectorySeed, EmbeddedDirectory, Outbox, SqliteStore};

use crate::support::{self, ALICE, ALICE_PASSWORD};

// ---------------------------------------------------------------- RecordStore

fn record(version: u64, body: serde_json::Value, expires_at: Option<i64>) -> StoredRecord {
    let serde_json::Value::Object(body) = body else { panic!("object") };
    StoredRecord { version, expires_at: expires_at.map(Timestamp), index: None, body }
}

fn indexed(version: u64, body: serde_json::Value, index: &str, index_sk: &str) -> StoredRecord {
    StoredRecord { index: Some(IndexKey { pk: index.into(), sk: index_sk.into() }), ..record(version, body, None) }
}

fn key(pk: &str, sk: &str) -> RecordKey {
    RecordKey { pk: pk.into(), sk: sk.into() }
}

fn query(partition: &str, sort: SortKeys, descending: bool, limit: usize) -> Query {
    Query { partition: partition.into(), sort, descending, limit, after: None }
}

fn prefix(p: &str) -> SortKeys {
    SortKeys::Prefix(p.into())
}

fn between(from: &str, to: &str) -> SortKeys {
    SortKeys::Between { from: from.into(), to: to.into() }
}

fn is_unavailable<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Unavailable(_)))
}

/// Every page of a query, following cursors to the end; `read` reads one page.
async fn all_pages<T, F, Fut>(mut q: Query, read: F) -> Vec<Vec<T>>
where
    F: Fn(Query) -> Fut,
    Fut: std::future::Future<Output = Page<T>>,
{
    let mut pages = Vec::new();
    loop {
        let page = read(q.clone()).await;
        assert!(page.items.len() <= q.limit, "a page holds at most the limit");
        pages.push(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "pagination does not end");
    }
}

/// Every page of a query of the table.
async fn pages(store: &dyn RecordStore, q: Query) -> Vec<Vec<(RecordKey, StoredRecord)>> {
    all_pages(q, |q| async move { store.query(&q).await.expect("query") }).await
}

/// Every page of an index query.
async fn index_pages(store: &dyn RecordStore, q: Query) -> Vec<Vec<(RecordKey, IndexKey)>> {
    all_pages(q, |q| async move { store.query_index(Index::ReconfirmDue, &q).await.expect("query_index") }).await
}

/// Pages are full but the last; DynamoDB may add an empty page after an exactly full one.
fn assert_full_pages<T: std::fmt::Debug>(pages: &[Vec<T>], limit: usize) {
    let mut pages = pages;
    if pages.len() > 1 && pages[pages.len() - 1].is_empty() {
        pages = &pages[..pages.len() - 1];
    }
    let (last, full) = pages.split_last().expect("a page");
    assert!(full.iter().all(|p| p.len() == limit), "only the last page is short: {pages:?}");
    assert!(!last.is_empty() || full.is_empty(), "{pages:?}");
}

fn sort_keys(items: &[(RecordKey, StoredRecord)]) -> Vec<&str> {
    items.iter().map(|(k, _)| k.sk.as_str()).collect()
}

async fn store_conformance(store: Arc<dyn RecordStore>) {
    let key = RecordKey { pk: support::unique("USER#conformance"), sk: "REGISTRATION".into() };
    assert!(store.get(&key).await.expect("get").is_none(), "a missing record reads as none");

    let body = json!({"name": "ålice ✓", "nested": {"list": [1, 2.5, "x", null, true]}, "empty": "", "n": 0});
    let first = StoredRecord {
        index: Some(IndexKey { pk: support::unique("REMINDERS"), sk: "2026-12-01T00:00:00Z#alice".into() }),
        ..record(1, body, Some(1_900_000_000))
    };
    store.put(&key, &first).await.expect("create");
    let read = store.get(&key).await.expect("get").expect("present");
    assert_eq!(read, first, "what is written is read back unchanged, index key included");

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
    assert_eq!((read.version, read.body["a"].clone(), read.expires_at, read.index), (2, json!(2), None, None));

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

    // Expired records are still read: readers check expiry themselves.
    let expired = RecordKey { pk: key.pk.clone(), sk: "EXPIRED".into() };
    store.put(&expired, &record(1, json!({}), Some(1_000))).await.expect("put");
    assert_eq!(store.get(&expired).await.expect("get").and_then(|r| r.expires_at), Some(Timestamp(1_000)));
}

async fn get_many_conformance(store: &dyn RecordStore) {
    let (p1, p2) = (support::unique("USER#many"), support::unique("USER#many"));
    let a = (key(&p1, "REGISTRATION"), indexed(1, json!({"who": "a"}), "RECONFIRM#x", "2027-01-01"));
    let b = (key(&p2, "PENDING#sms"), record(1, json!({"who": "b", "n": [1, 2]}), Some(1_900_000_000)));
    store.put(&a.0, &a.1).await.expect("put");
    store.put(&b.0, &b.1).await.expect("put");
    store.put(&b.0, &StoredRecord { version: 2, ..b.1.clone() }).await.expect("update");
    let b = (b.0, StoredRecord { version: 2, ..b.1 });

    let keys = [key(&p1, "PENDING#sms"), b.0.clone(), a.0.clone(), key(&support::unique("USER#none"), "REGISTRATION")];
    let read = store.get_many(&keys).await.expect("get_many");
    assert_eq!(read, vec![None, Some(b.1.clone()), Some(a.1.clone()), None], "in request order, absent as none");
    assert_eq!(store.get_many(&keys[1..3]).await.expect("get_many"), vec![Some(b.1), Some(a.1)]);
    assert!(store.get_many(&[]).await.expect("nothing to read").is_empty());

    let hundred: Vec<RecordKey> = (0..100).map(|i| key(&p1, &format!("K#{i:03}"))).collect();
    let read = store.get_many(&hundred).await.expect("a hundred keys are allowed");
    assert_eq!(read.len(), 100);
    assert!(read.iter().all(Option::is_none));
    let too_many: Vec<RecordKey> = (0..101).map(|i| key(&p1, &format!("K#{i:03}"))).collect();
    assert!(is_unavailable(store.get_many(&too_many).await), "101 keys");
    assert!(is_unavailable(store.get_many(&[a.0.clone(), a.0.clone()]).await), "a key twice");
}

async fn write_all_conformance(store: Arc<dyn RecordStore>) {
    let part = |name: &str| support::unique(&format!("USER#tx-{name}"));
    let (x, y, z, n, m) = (
        key(&part("x"), "REGISTRATION"),
        key(&part("y"), "REGISTRATION"),
        key(&part("z"), "PENDING#email"),
        key(&part("n"), "REGISTRATION"),
        key(&part("m"), "REGISTRATION"),
    );
    for k in [&x, &y, &z] {
        store.put(k, &record(1, json!({"at": 1}), None)).await.expect("put");
    }

    // Several puts and a delete, across partitions, apply together.
    let applied = [
        Write::Put { key: x.clone(), record: record(2, json!({"at": 2}), None) },
        Write::Put { key: n.clone(), record: indexed(1, json!({"new": true}), "RECONFIRM#tx", "2027-02-02") },
        Write::Delete { key: z.clone(), version: 1 },
        Write::Put { key: y.clone(), record: record(2, json!({"at": 2}), Some(1_900_000_000)) },
    ];
    store.write_all(&applied).await.expect("write_all");
    let read = store.get_many(&[x.clone(), y.clone(), z.clone(), n.clone()]).await.expect("get_many");
    assert_eq!(
        read,
        vec![
            Some(record(2, json!({"at": 2}), None)),
            Some(record(2, json!({"at": 2}), Some(1_900_000_000))),
            None,
            Some(indexed(1, json!({"new": true}), "RECONFIRM#tx", "2027-02-02")),
        ]
    );

    // One failed condition and nothing is written: a stale version, a create over an existing
    // record, a delete of a changed record.
    let good = || {
        vec![
            Write::Put { key: x.clone(), record: record(3, json!({"at": 3}), None) },
            Write::Put { key: m.clone(), record: record(1, json!({"m": 1}), None) },
            Write::Delete { key: z.clone(), version: 1 },
        ]
    };
    let failing = [
        Write::Put { key: y.clone(), record: record(2, json!({"stale": true}), None) },
        Write::Put { key: n.clone(), record: record(1, json!({"over": true}), None) },
        Write::Delete { key: y.clone(), version: 1 },
    ];
    for (i, bad) in failing.into_iter().enumerate() {
        let mut writes = good();
        writes.insert(i % 3, bad);
        assert!(matches!(store.write_all(&writes).await, Err(StoreError::Conflict)), "{writes:?}");
        let read = store.get_many(&[x.clone(), y.clone(), n.clone(), m.clone()]).await.expect("get_many");
        assert_eq!(
            read.iter().map(|r| r.as_ref().map(|r| r.version)).collect::<Vec<_>>(),
            vec![Some(2), Some(2), Some(1), None],
            "nothing of a failed batch is written"
        );
        assert_eq!(read[0].as_ref().map(|r| r.body["at"].clone()), Some(json!(2)));
    }

    // A check writes nothing but holds the batch to a record's version (0: absent).
    let absent = key(&part("absent"), "REGISTRATION");
    let checked = |version: u64, on: &RecordKey, at: i64| {
        vec![
            Write::Check { key: on.clone(), version },
            Write::Put { key: x.clone(), record: record(3, json!({"at": at}), None) },
        ]
    };
    for stale in [checked(1, &y, 30), checked(0, &y, 31), checked(1, &absent, 32)] {
        assert!(matches!(store.write_all(&stale).await, Err(StoreError::Conflict)), "{stale:?}");
        let read = store.get(&x).await.expect("get").expect("x");
        assert_eq!(read.version, 2, "a failed check stops the batch: {stale:?}");
    }
    store.write_all(&checked(2, &y, 3)).await.expect("the check holds");
    store.write_all(&[Write::Check { key: absent.clone(), version: 0 }]).await.expect("absent as expected");
    let read = store.get_many(&[x.clone(), y.clone(), absent.clone()]).await.expect("get_many");
    assert_eq!(read[0].as_ref().map(|r| (r.version, r.body["at"].clone())), Some((3, json!(3))));
    assert_eq!(read[1], Some(record(2, json!({"at": 2}), Some(1_900_000_000))), "a checked record is unchanged");
    assert!(read[2].is_none(), "a check creates nothing");

    // Empty, and limits: at most 100 writes, no key twice.
    store.write_all(&[]).await.expect("nothing to write");
    let too_many: Vec<Write> = (0..101)
        .map(|i| Write::Put { key: key(&m.pk, &format!("K#{i:03}")), record: record(1, json!({}), None) })
        .collect();
    assert!(is_unavailable(store.write_all(&too_many).await), "101 writes");
    let twice = [
        Write::Put { key: m.clone(), record: record(1, json!({}), None) },
        Write::Delete { key: m.clone(), version: 1 },
    ];
    assert!(is_unavailable(store.write_all(&twice).await), "a key twice");
    assert!(store.get(&m).await.expect("get").is_none(), "a refused batch writes nothing");
    let hundred: Vec<Write> = (0..100)
        .map(|i| Write::Put { key: key(&m.pk, &format!("K#{i:03}")), record: record(1, json!({}), None) })
        .collect();
    store.write_all(&hundred).await.expect("a hundred writes are allowed");
    let read = store.get_many(&hundred.iter().map(|w| w.key().clone()).collect::<Vec<_>>()).await.expect("get_many");
    assert!(read.iter().all(Option::is_some));

    // Of many writers racing to change two records from the same versions, exactly one wins,
    // and both records carry its writes.
    let (r1, r2) = (key(&part("race"), "REGISTRATION"), key(&part("race"), "PENDING#sms"));
    store.put(&r1, &record(1, json!({}), None)).await.expect("put");
    store.put(&r2, &record(1, json!({}), None)).await.expect("put");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (store, r1, r2) = (Arc::clone(&store), r1.clone(), r2.clone());
        tasks.spawn(async move {
            let writes = [
                Write::Put { key: r1, record: record(2, json!({"writer": i}), None) },
                Write::Put { key: r2, record: record(2, json!({"writer": i}), None) },
            ];
            (i, store.write_all(&writes).await)
        });
    }
    let mut winners = vec![];
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            (i, Ok(())) => winners.push(i),
            (_, Err(StoreError::Conflict)) => {}
            (_, Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let read = store.get_many(&[r1, r2]).await.expect("get_many");
    for r in read {
        assert_eq!(r, Some(record(2, json!({"writer": winners[0]}), None)));
    }
}

async fn query_conformance(store: &dyn RecordStore) {
    let partition = support::unique("USER#audit");
    let sibling = format!("{partition}-sibling");
    let audit: Vec<String> = (0..7).map(|n| format!("AUDIT#2026-11-25T10:00:0{n}")).collect();
    // Written out of order; one has expired, which does not hide it.
    for n in [3, 0, 6, 1, 5, 2, 4] {
        let expires_at = (n == 2).then_some(1_000);
        store.put(&key(&partition, &audit[n]), &record(1, json!({"n": n}), expires_at)).await.expect("put");
    }
    let others = ["AUDIS#z", "AUDIT$", "AUDIT$x", "AUDIT", "NOTE#2026-11-25T10:00:00", "REGISTRATION"];
    for sk in others {
        store.put(&key(&partition, sk), &record(1, json!({"other": sk}), None)).await.expect("put");
    }
    for sk in audit.iter().map(String::as_str).chain(others) {
        store.put(&key(&sibling, sk), &record(1, json!({"sibling": true}), None)).await.expect("put");
    }
    let audit: Vec<&str> = audit.iter().map(String::as_str).collect();
    let backwards: Vec<&str> = audit.iter().rev().copied().collect();

    let page = store.query(&query(&partition, prefix("AUDIT#"), false, 100)).await.expect("query");
    assert_eq!(sort_keys(&page.items), audit, "a prefix, oldest first");
    assert!(page.next.is_none(), "a short page is the last");
    assert!(page.items.iter().all(|(k, _)| k.pk == partition));
    assert_eq!(page.items[2].1, record(1, json!({"n": 2}), Some(1_000)), "records come whole");
    let page = store.query(&query(&partition, prefix("AUDIT#"), true, 100)).await.expect("query");
    assert_eq!(sort_keys(&page.items), backwards, "newest first");

    let range = between("AUDIT#2026-11-25T10:00:02", "AUDIT#2026-11-25T10:00:05");
    let page = store.query(&query(&partition, range.clone(), false, 100)).await.expect("query");
    assert_eq!(sort_keys(&page.items), audit[2..=5], "both ends included");
    let page = store.query(&query(&partition, range, true, 100)).await.expect("query");
    assert_eq!(sort_keys(&page.items), backwards[1..=4]);
    let open_ended = between("AUDIT#2026-11-25T10:00:05", "AUDIT#~");
    let page = store.query(&query(&partition, open_ended, false, 100)).await.expect("query");
    assert_eq!(sort_keys(&page.items), audit[5..]);
    let page = store.query(&query(&partition, prefix("AUDIT#2026-11-26"), false, 100)).await.expect("query");
    assert!(page.items.is_empty() && page.next.is_none());

    let mut all: Vec<&str> = audit.iter().copied().chain(others).collect();
    all.sort();
    let page = store.query(&query(&partition, SortKeys::All, false, 100)).await.expect("query");
    assert_eq!(sort_keys(&page.items), all, "the whole partition, by sort key, nothing of its sibling");

    // Pages of a limit walk every item once, in order, whichever the direction.
    for (descending, limit) in [(false, 3), (true, 2), (false, 7), (true, 1), (false, 100)] {
        let pages = pages(store, query(&partition, prefix("AUDIT#"), descending, limit)).await;
        assert_full_pages(&pages, limit);
        let walked: Vec<&str> = pages.iter().flat_map(|p| sort_keys(p)).collect();
        let want = if descending { &backwards } else { &audit };
        assert_eq!(&walked, want, "limit {limit}");
    }
    let pages = pages(store, query(&partition, SortKeys::All, true, 4)).await;
    let walked: Vec<&str> = pages.iter().flat_map(|p| sort_keys(p)).collect();
    assert_eq!(walked, all.iter().rev().copied().collect::<Vec<_>>());

    // Programming errors.
    for bad in [query(&partition, SortKeys::All, false, 0), query(&partition, SortKeys::All, false, 1001)] {
        assert!(is_unavailable(store.query(&bad).await), "limit {}", bad.limit);
    }
    assert!(is_unavailable(store.query(&query(&partition, between("B", "A"), false, 10)).await), "a reversed range");
    let garbage =
        Query { after: Some(Cursor::new("not a cursor".into())), ..query(&partition, SortKeys::All, false, 10) };
    assert!(is_unavailable(store.query(&garbage).await));
    assert!(store.query(&query(&partition, SortKeys::All, false, 1000)).await.is_ok());
}

async fn query_index_conformance(store: &dyn RecordStore) {
    let due = support::unique("RECONFIRM");
    let other = support::unique("RECONFIRM");
    let user = |n: usize| key(&format!("{due}-USER#{n}"), "REGISTRATION");
    let day = |d: usize, n: usize| format!("2026-11-{d:02}#{n}");
    // Users 0..6 fall due on the day of their number; 6 is not listed; 7 is listed elsewhere.
    for n in [4, 1, 5, 0, 3, 2] {
        store.put(&user(n), &indexed(1, json!({"n": n}), &due, &day(n + 1, n))).await.expect("put");
    }
    store.put(&user(6), &record(1, json!({"n": 6}), None)).await.expect("put");
    store.put(&user(7), &indexed(1, json!({"n": 7}), &other, &day(3, 7))).await.expect("put");
    let listed = |n: usize, d: usize| (user(n), IndexKey { pk: due.clone(), sk: day(d, n) });
    let expected: Vec<_> = (0..6).map(|n| listed(n, n + 1)).collect();

    let page = store.query_index(Index::ReconfirmDue, &query(&due, SortKeys::All, false, 100)).await.expect("query");
    assert_eq!(page.items, expected, "table key and index key, by index sort key");
    assert!(page.next.is_none());
    let page = store.query_index(Index::ReconfirmDue, &query(&due, SortKeys::All, true, 100)).await.expect("query");
    assert_eq!(page.items, expected.iter().rev().cloned().collect::<Vec<_>>());
    let range = between("2026-11-02", "2026-11-04~");
    let page = store.query_index(Index::ReconfirmDue, &query(&due, range.clone(), false, 100)).await.expect("query");
    assert_eq!(page.items, expected[1..=3], "a range of index sort keys");
    let page =
        store.query_index(Index::ReconfirmDue, &query(&due, prefix("2026-11-05#"), false, 100)).await.expect("query");
    assert_eq!(page.items, expected[4..=4]);
    for (descending, limit) in [(false, 2), (true, 4), (false, 6), (true, 1)] {
        let pages = index_pages(store, query(&due, SortKeys::All, descending, limit)).await;
        assert_full_pages(&pages, limit);
        let walked: Vec<_> = pages.into_iter().flatten().collect();
        let mut want = expected.clone();
        if descending {
            want.reverse();
        }
        assert_eq!(walked, want, "limit {limit}");
    }

    // Records that share an index sort key each come exactly once across pages.
    for n in [8, 9, 10] {
        store.put(&user(n), &indexed(1, json!({"n": n}), &due, "2026-11-30")).await.expect("put");
    }
    let pages = index_pages(store, query(&due, prefix("2026-11-30"), false, 1)).await;
    let mut walked: Vec<String> = pages.into_iter().flatten().map(|(k, _)| k.pk).collect();
    walked.sort();
    let mut want: Vec<String> = [8, 9, 10].map(|n| user(n).pk).to_vec();
    want.sort();
    assert_eq!(walked, want);

    // Re-written without an index key, a record leaves the index; with another, it moves; a new
    // one, or one written in a batch, joins; a deleted one leaves.
    store.put(&user(2), &record(2, json!({"n": 2}), None)).await.expect("unlist");
    store.put(&user(3), &indexed(2, json!({"n": 3}), &due, &day(20, 3))).await.expect("move");
    store
        .write_all(&[Write::Put { key: user(6), record: indexed(2, json!({"n": 6}), &due, &day(3, 6)) }])
        .await
        .expect("list");
    store.delete(&user(4), 1).await.expect("delete");
    let window = query(&due, between("2026-11-01", "2026-11-29"), false, 100);
    let page = store.query_index(Index::ReconfirmDue, &window).await.expect("query");
    assert_eq!(page.items, vec![listed(0, 1), listed(1, 2), listed(6, 3), listed(5, 6), listed(3, 20)]);
    assert_eq!(store.get(&user(2)).await.expect("get").and_then(|r| r.index), None);

    // Programming errors.
    assert!(is_unavailable(store.query_index(Index::ReconfirmDue, &query(&due, SortKeys::All, false, 0)).await));
    let garbage = Query { after: Some(Cursor::new("not a cursor".into())), ..query(&due, SortKeys::All, false, 10) };
    assert!(is_unavailable(store.query_index(Index::ReconfirmDue, &garbage).await));
    assert_eq!(Index::ReconfirmDue.name(), "reconfirm-due");
}

/// Reads the expiry a store keeps for a counter, outside the port (which only adds to them).
type CounterExpiry = Arc<dyn Fn(RecordKey) -> BoxFuture<Option<i64>> + Send + Sync>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

async fn counter_conformance(store: Arc<dyn RecordStore>, expiry_of: CounterExpiry) {
    let partition = support::unique("RATE#sms");
    let counter = key(&partition, "COUNT#2026-11-25");
    assert_eq!(
        store.add_to_counter(&counter, 3, Some(Timestamp(2_000_000_000))).await.expect("add"),
        3,
        "starts at by"
    );
    assert_eq!(store.add_to_counter(&counter, 2, Some(Timestamp(2_100_000_000))).await.expect("add"), 5);
    assert_eq!(store.add_to_counter(&counter, 0, None).await.expect("read"), 5, "adding 0 reads");
    assert_eq!(store.add_to_counter(&counter, -7, None).await.expect("subtract"), -2);
    assert_eq!(expiry_of(counter.clone()).await, Some(2_000_000_000), "the expiry of the creation is kept");

    let zero = key(&partition, "COUNT#zero");
    assert_eq!(store.add_to_counter(&zero, 0, None).await.expect("create at 0"), 0);
    assert_eq!(expiry_of(zero.clone()).await, None);
    assert_eq!(store.add_to_counter(&zero, 1, Some(Timestamp(2_000_000_000))).await.expect("add"), 1);
    assert_eq!(store.add_to_counter(&zero, 1, Some(Timestamp(2_100_000_000))).await.expect("add"), 2);
    assert_eq!(expiry_of(zero).await, Some(2_000_000_000), "a counter created without expiry takes the first one");

    // Counters are not records.
    assert!(store.get(&counter).await.expect("get").is_none());
    assert_eq!(store.get_many(std::slice::from_ref(&counter)).await.expect("get_many"), vec![None]);
    store.put(&key(&partition, "NOTE"), &record(1, json!({}), None)).await.expect("put");
    let pages = pages(&*store, query(&partition, SortKeys::All, false, 1)).await;
    let walked: Vec<_> = pages.into_iter().flatten().map(|(k, _)| k.sk).collect();
    assert_eq!(walked, vec!["NOTE"], "a query reads records only");

    // Racing increments are all counted, each seeing its own value.
    let raced = key(&partition, "COUNT#raced");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (store, raced) = (Arc::clone(&store), raced.clone());
        tasks.spawn(async move { store.add_to_counter(&raced, 1, None).await });
    }
    let mut seen = vec![];
    while let Some(result) = tasks.join_next().await {
        seen.push(result.expect("task").expect("add"));
    }
    seen.sort();
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    assert_eq!(store.add_to_counter(&raced, 0, None).await.expect("read"), 50);
}

/// Every page of a query of counters.
async fn counter_pages(store: &dyn RecordStore, q: Query) -> Vec<Vec<(RecordKey, i64)>> {
    all_pages(q, |q| async move { store.query_counters(&q).await.expect("query_counters") }).await
}

/// Every counter of `partition`, by sort key, as `(sort key, value)`.
async fn counters_of(store: &dyn RecordStore, partition: &str) -> Vec<(String, i64)> {
    let pages = counter_pages(store, query(partition, SortKeys::All, false, 100)).await;
    pages.into_iter().flatten().map(|(k, value)| (k.sk, value)).collect()
}

async fn counter_batch_conformance(store: &dyn RecordStore, expiry_of: CounterExpiry) {
    let partition = support::unique("RATE#batch");
    let (a, b, c) = (key(&partition, "COUNT#a"), key(&partition, "COUNT#b"), key(&partition, "COUNT#c"));
    let note = key(&partition, "NOTE");
    let count = |k: &RecordKey, by: i64, expires_at: Option<i64>| Write::Count {
        key: k.clone(),
        by,
        expires_at: expires_at.map(Timestamp),
        most: None,
    };
    let counted = |pairs: &[(&str, i64)]| pairs.iter().map(|(sk, n)| ((*sk).to_owned(), *n)).collect::<Vec<_>>();

    // A put and two counts apply together; a count creates its counter with the expiry given.
    let batch = [
        count(&a, 2, Some(2_000_000_000)),
        Write::Put { key: note.clone(), record: record(1, json!({"n": 1}), None) },
        count(&b, -1, None),
    ];
    store.write_all(&batch).await.expect("write_all");
    assert_eq!(store.get(&note).await.expect("get"), Some(record(1, json!({"n": 1}), None)));
    assert_eq!(counters_of(store, &partition).await, counted(&[("COUNT#a", 2), ("COUNT#b", -1)]));
    assert_eq!(expiry_of(a.clone()).await, Some(2_000_000_000), "created with the expiry given");
    assert_eq!(expiry_of(b.clone()).await, None);

    // Counts add up; the first expiry is kept, and a counter without one takes the first given.
    let batch = [
        Write::Put { key: note.clone(), record: record(2, json!({"n": 2}), None) },
        count(&a, 3, Some(2_100_000_000)),
        count(&b, 1, Some(2_200_000_000)),
    ];
    store.write_all(&batch).await.expect("write_all");
    assert_eq!(counters_of(store, &partition).await, counted(&[("COUNT#a", 5), ("COUNT#b", 0)]));
    assert_eq!(expiry_of(a.clone()).await, Some(2_000_000_000), "the expiry of the creation is kept");
    assert_eq!(expiry_of(b.clone()).await, Some(2_200_000_000), "no expiry yet: the first one given");
    assert_eq!(store.add_to_counter(&a, 1, None).await.expect("add"), 6, "the same counter as add_to_counter's");

    // When a condition of the batch fails, no counter changes and none is created.
    let failing = [
        Write::Put { key: note.clone(), record: record(2, json!({"stale": true}), None) },
        Write::Put { key: note.clone(), record: record(1, json!({"over": true}), None) },
        Write::Delete { key: note.clone(), version: 1 },
        Write::Check { key: note.clone(), version: 0 },
    ];
    for (i, bad) in failing.into_iter().enumerate() {
        let mut writes = vec![count(&a, 10, None), count(&c, 1, Some(2_000_000_000))];
        writes.insert(i % 3, bad);
        assert!(matches!(store.write_all(&writes).await, Err(StoreError::Conflict)), "{writes:?}");
        assert_eq!(
            counters_of(store, &partition).await,
            counted(&[("COUNT#a", 6), ("COUNT#b", 0)]),
            "no count of a failed batch: {writes:?}"
        );
    }
    assert_eq!(store.get(&note).await.expect("get").map(|r| r.version), Some(2));

    // Counts alone, in a batch and through `save_all`'s single-write shortcut.
    store.write_all(&[count(&c, 4, Some(2_300_000_000))]).await.expect("a batch of one count");
    sspr_core::records::save_all(store, &[count(&c, 1, None)]).await.expect("save_all");
    sspr_core::records::save_all(store, &[count(&b, 2, None), count(&a, -6, None)]).await.expect("save_all");
    assert_eq!(counters_of(store, &partition).await, counted(&[("COUNT#a", 0), ("COUNT#b", 2), ("COUNT#c", 5)]));
    assert_eq!(expiry_of(c.clone()).await, Some(2_300_000_000));

    // A count is a write on its key: no other write of the batch may be on it.
    let twice = [count(&a, 1, None), Write::Check { key: a.clone(), version: 0 }];
    assert!(is_unavailable(store.write_all(&twice).await), "a key twice");
    let twice = [count(&a, 1, None), count(&a, 1, None)];
    assert!(is_unavailable(store.write_all(&twice).await), "a counter twice");
    assert_eq!(counters_of(store, &partition).await[0], ("COUNT#a".to_owned(), 0), "a refused batch counts nothing");

    // Counters stay out of the records: a query reads the note alone.
    let read = pages(store, query(&partition, SortKeys::All, false, 1)).await;
    assert_eq!(read.into_iter().flatten().map(|(k, _)| k.sk).collect::<Vec<_>>(), vec!["NOTE"]);
}

async fn query_counters_conformance(store: &dyn RecordStore) {
    let partition = support::unique("RATE#query");
    let sibling = format!("{partition}-sibling");
    let days: Vec<String> = (0..7).map(|n| format!("COUNT#2026-11-2{n}")).collect();
    // Made out of order, by either write; one has expired, which does not hide it.
    for n in [3, 0, 6, 1, 5, 2, 4] {
        let (k, by, expires_at) = (key(&partition, &days[n]), n as i64 + 1, (n == 2).then_some(Timestamp(1_000)));
        if n % 2 == 0 {
            store.add_to_counter(&k, by, expires_at).await.expect("add");
        } else {
            store.write_all(&[Write::Count { key: k, by, expires_at, most: None }]).await.expect("count");
        }
    }
    let other_counters = ["COUNS#z", "COUNT$", "COUNT"];
    for sk in other_counters {
        store.add_to_counter(&key(&partition, sk), 100, None).await.expect("add");
    }
    // Records of the partition, one among the counters' sort keys; counters of a sibling.
    let records = ["AUDIT#1", "COUNT#2026-11-23#note", "COUNT#", "REGISTRATION"];
    for sk in records {
        store.put(&key(&partition, sk), &record(1, json!({"record": sk}), None)).await.expect("put");
    }
    for sk in days.iter().map(String::as_str).chain(other_counters) {
        store.add_to_counter(&key(&sibling, sk), -1, None).await.expect("add");
    }
    let day = |n: usize| (key(&partition, &days[n]), n as i64 + 1);
    let forwards: Vec<(RecordKey, i64)> = (0..7).map(day).collect();
    let backwards: Vec<(RecordKey, i64)> = forwards.iter().rev().cloned().collect();

    let page = store.query_counters(&query(&partition, prefix("COUNT#"), false, 100)).await.expect("query");
    assert_eq!(page.items, forwards, "a prefix, by sort key, with values; no record");
    assert!(page.next.is_none(), "a short page is the last");
    let page = store.query_counters(&query(&partition, prefix("COUNT#"), true, 100)).await.expect("query");
    assert_eq!(page.items, backwards, "descending");

    let range = between(&days[2], &days[5]);
    let page = store.query_counters(&query(&partition, range.clone(), false, 100)).await.expect("query");
    assert_eq!(page.items, forwards[2..=5], "both ends included, the record between skipped");
    let page = store.query_counters(&query(&partition, range, true, 100)).await.expect("query");
    assert_eq!(page.items, backwards[1..=4]);
    let page = store.query_counters(&query(&partition, prefix("COUNT#2026-12"), false, 100)).await.expect("query");
    assert!(page.items.is_empty() && page.next.is_none());

    let page = store.query_counters(&query(&partition, SortKeys::All, false, 100)).await.expect("query");
    let mut all = forwards.clone();
    all.extend(other_counters.map(|sk| (key(&partition, sk), 100)));
    all.sort_by(|x, y| x.0.sk.cmp(&y.0.sk));
    assert_eq!(page.items, all, "the whole partition's counters, nothing of its records or sibling");

    // Pages of a limit walk every counter once, in order, whichever the direction; records
    // among them may only shorten a page.
    for (descending, limit) in [(false, 3), (true, 2), (false, 7), (true, 1), (false, 1), (false, 100)] {
        let pages = counter_pages(store, query(&partition, prefix("COUNT#"), descending, limit)).await;
        let walked: Vec<_> = pages.into_iter().flatten().collect();
        assert_eq!(walked, if descending { backwards.clone() } else { forwards.clone() }, "limit {limit}");
    }
    for (descending, limit) in [(false, 2), (true, 3)] {
        let pages = counter_pages(store, query(&partition, between(&days[4], &days[6]), descending, limit)).await;
        assert_full_pages(&pages, limit);
        let mut want = forwards[4..].to_vec();
        if descending {
            want.reverse();
        }
        assert_eq!(pages.into_iter().flatten().collect::<Vec<_>>(), want, "limit {limit}");
    }
    let walked = counter_pages(store, query(&partition, SortKeys::All, true, 4)).await;
    assert_eq!(walked.into_iter().flatten().collect::<Vec<_>>(), all.iter().rev().cloned().collect::<Vec<_>>());
    let sibling_counters = counters_of(store, &sibling).await;
    assert_eq!(sibling_counters.len(), 10);
    assert!(sibling_counters.iter().all(|(_, value)| *value == -1));

    // Queries of records never return counters.
    let read = pages(store, query(&partition, SortKeys::All, false, 2)).await;
    let mut want = records.to_vec();
    want.sort();
    assert_eq!(read.iter().flat_map(|p| sort_keys(p)).collect::<Vec<_>>(), want, "a query reads records only");

    // Programming errors.
    for bad in [query(&partition, SortKeys::All, false, 0), query(&partition, SortKeys::All, false, 1001)] {
        assert!(is_unavailable(store.query_counters(&bad).await), "limit {}", bad.limit);
    }
    let reversed = query(&partition, between("B", "A"), false, 10);
    assert!(is_unavailable(store.query_counters(&reversed).await), "a reversed range");
    let garbage =
        Query { after: Some(Cursor::new("not a cursor".into())), ..query(&partition, SortKeys::All, false, 10) };
    assert!(is_unavailable(store.query_counters(&garbage).await));
    let first = store.query_counters(&query(&partition, SortKeys::All, false, 1)).await.expect("query");
    let elsewhere = Query { after: first.next, ..query(&sibling, SortKeys::All, false, 10) };
    assert!(elsewhere.after.is_some());
    assert!(is_unavailable(store.query_counters(&elsewhere).await), "a cursor of another partition");
    assert!(store.query_counters(&query(&partition, SortKeys::All, false, 1000)).await.is_ok());
}

/// Records and counters read together; a count with a limit that the batch would pass fails it.
async fn limited_count_conformance(store: &dyn RecordStore) {
    let partition = support::unique("RATE#limit");
    let (a, b, never) = (key(&partition, "COUNT#a"), key(&partition, "COUNT#b"), key(&partition, "COUNT#never"));
    let note = key(&partition, "NOTE");
    let limited = |k: &RecordKey, by: i64, most: i64| Write::Count {
        key: k.clone(),
        by,
        expires_at: Some(Timestamp(2_000_000_000)),
        most: Some(most),
    };
    store.put(&note, &record(1, json!({"n": 1}), None)).await.expect("put");

    // Up to the limit and not one further, whether the counter exists yet or not.
    for n in 1..=3 {
        store.write_all(&[limited(&a, 1, 3)]).await.expect("within the limit");
        let (records, values) =
            store.get_with_counters(std::slice::from_ref(&note), &[a.clone(), never.clone()]).await.expect("read");
        assert_eq!(values, vec![n, 0], "a counter never written reads 0");
        assert_eq!(records, vec![Some(record(1, json!({"n": 1}), None))]);
    }
    let batch = [Write::Put { key: note.clone(), record: record(2, json!({"n": 2}), None) }, limited(&a, 1, 3)];
    assert!(matches!(store.write_all(&batch).await, Err(StoreError::Conflict)), "over the limit");
    assert!(matches!(store.write_all(&[limited(&b, 5, 4)]).await, Err(StoreError::Conflict)), "a first count over it");
    let (records, values) =
        store.get_with_counters(std::slice::from_ref(&note), &[a.clone(), b.clone()]).await.expect("read");
    assert_eq!((records[0].as_ref().map(|r| r.version), values), (Some(1), vec![3, 0]), "the batch changed nothing");
    // A negative count makes room again; a limit of its own for each counter.
    store.write_all(&[limited(&a, -2, 3), limited(&b, 4, 4)]).await.expect("room again");
    store.write_all(&[limited(&a, 2, 3)]).await.expect("within the limit");
    assert_eq!(store.get_with_counters(&[], &[a.clone(), b.clone()]).await.expect("read").1, vec![3, 4]);

    // Concurrent batches never pass the limit together.
    let c = key(&partition, "COUNT#c");
    let one = [limited(&c, 1, 5)];
    let tries = futures::future::join_all((0..12).map(|_| store.write_all(&one))).await;
    let passed = tries.iter().filter(|r| r.is_ok()).count();
    assert!(passed <= 5, "{passed} of 12 passed a limit of 5");
    assert_eq!(store.get_with_counters(&[], std::slice::from_ref(&c)).await.expect("read").1, vec![passed as i64]);

    // The same bounds as get_many: no key twice, at most 100 in all.
    assert!(
        is_unavailable(store.get_with_counters(std::slice::from_ref(&a), std::slice::from_ref(&a)).await),
        "a key twice"
    );
    let many: Vec<RecordKey> = (0..101).map(|n| key(&partition, &format!("K{n}"))).collect();
    assert!(is_unavailable(store.get_with_counters(&many[..60], &many[60..]).await), "101 keys");
    assert!(store.get_with_counters(&many[..60], &many[61..]).await.is_ok(), "100 keys");
}

/// Every store conformance test, on one store.
async fn store_conformance_all(store: Arc<dyn RecordStore>, expiry_of: CounterExpiry) {
    store_conformance(Arc::clone(&store)).await;
    get_many_conformance(&*store).await;
    write_all_conformance(Arc::clone(&store)).await;
    query_conformance(&*store).await;
    query_index_conformance(&*store).await;
    counter_batch_conformance(&*store, Arc::clone(&expiry_of)).await;
    query_counters_conformance(&*store).await;
    limited_count_conformance(&*store).await;
    counter_conformance(store, expiry_of).await;
}

fn sqlite_expiry(store: &SqliteStore) -> CounterExpiry {
    let store = store.clone();
    Arc::new(move |key| -> BoxFuture<Option<i64>> {
        let store = store.clone();
        Box::pin(async move { store.counter(&key).await.expect("counter").and_then(|(_, at)| at).map(|t| t.0) })
    })
}

#[tokio::test]
async fn store_conformance_sqlite() {
    let store = SqliteStore::in_memory().expect("store");
    store_conformance_all(Arc::new(store.clone()), sqlite_expiry(&store)).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sspr.db");
    let store = SqliteStore::open(&path).expect("store");
    store_conformance_all(Arc::new(store.clone()), sqlite_expiry(&store)).await;
    // The file keeps what was written.
    let key = RecordKey { pk: "POLICY".into(), sk: "POLICY".into() };
    let kept = indexed(1, json!({"kept": 1}), "RECONFIRM#kept", "2027");
    SqliteStore::open(&path).expect("open").put(&key, &kept).await.expect("put");
    let reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(reopened.get(&key).await.expect("get"), Some(kept));
    let page = reopened.query_index(Index::ReconfirmDue, &query("RECONFIRM#kept", SortKeys::All, false, 10)).await;
    assert_eq!(page.expect("query").items.len(), 1);
}

#[tokio::test]
async fn store_conformance_dynamodb() {
    let sdk = support::sdk().await;
    let table = support::unique("sspr-conformance");
    support::create_table_from_template(&sdk, &table).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let expiry_of: CounterExpiry = {
        let table = table.clone();
        Arc::new(move |key: RecordKey| -> BoxFuture<Option<i64>> {
            let (client, table) = (client.clone(), table.clone());
            Box::pin(async move {
                use aws_sdk_dynamodb::types::AttributeValue;
                let item = client
                    .get_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(key.pk))
                    .key("sk", AttributeValue::S(key.sk))
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("get_item")
                    .item
                    .expect("the counter item");
                item.get("expires_at").map(|v| v.as_n().expect("a number").parse().expect("an integer"))
            })
        })
    };
    store_conformance_all(Arc::new(sspr_aws::DynamoDbStore::from_config(&sdk, table)), expiry_of).await;
}

#[tokio::test]
async fn store_conformance_memory() {
    let store = MemoryStore::new();
    let inner = store.clone();
    let expiry_of: CounterExpiry = Arc::new(move |key| -> BoxFuture<Option<i64>> {
        Box::pin(std::future::ready(inner.counter(&key).and_then(|(_, at)| at).map(|t| t.0)))
    });
    store_conformance_all(Arc::new(store), expiry_of).await;
}

#[tokio::test]
async fn dynamodb_unavailable_is_an_error_not_a_conflict() {
    let sdk = support::sdk().await;
    let store = sspr_aws::DynamoDbStore::from_config(&sdk, "no-such-table");
    let key = RecordKey { pk: "x".into(), sk: "y".into() };
    assert!(matches!(store.get(&key).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.put(&key, &record(1, json!({}), None)).await, Err(StoreError::Unavailable(_))));
    let write = Write::Put { key: key.clone(), record: record(1, json!({}), None) };
    assert!(matches!(store.write_all(&[write]).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.get_many(std::slice::from_ref(&key)).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.add_to_counter(&key, 1, None).await, Err(StoreError::Unavailable(_))));
}

// ---------------------------------------------------------------- Directory

fn password(s: &str) -> NewPassword {
    NewPassword::parse(s, &PasswordRules::default(), &Username::parse(ALICE).expect("name")).expect("valid password")
}

/// The directory port on one adapter: `has_lockout` says whether its directory locks accounts.
pub(crate) async fn directory_conformance(directory: &(impl Directory + Authenticate), has_lockout: bool) {
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
    assert_eq!(directory.lockout().is_some(), has_lockout, "the unlock capability");
    if let Some(lockout) = directory.lockout() {
        lockout.unlock(&alice).await.expect("unlocking an account that is not locked is no error");
        assert!(matches!(lockout.unlock(&nobody).await, Err(DirectoryError::UnknownUser)));
    }
    let admins = directory.members_of("SSPR-Admins").await.expect("members");
    assert!(admins.iter().all(|a| a.groups.iter().any(|g| g == "SSPR-Admins")), "{admins:?}");
    assert!(directory.members_of("no-such-group").await.expect("members").is_empty());
}

#[tokio::test]
async fn directory_conformance_embedded() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("directory.json");
    let embedded = EmbeddedDirectory::open(&DirectorySeed::demo(), Some(&file)).expect("directory");
    directory_conformance(&embedded, false).await;
    // Changes survive a restart; the seed does not overwrite them.
    let reopened = EmbeddedDirectory::open(&DirectorySeed::demo(), Some(&file)).expect("reopen");
    let alice = Username::parse(ALICE).expect("name");
    let kept = SecretString::from("Conformance-Passw0rd-1".to_owned());
    assert!(reopened.authenticate(&alice, &kept).await.expect("auth").is_some());
    assert!(!std::fs::read_to_string(&file).expect("file").contains("Conformance"), "only hashes are kept");
}

/// Forty people, three resets each, all at once: none fails, and after a restart each person's
/// password is the one the directory held before it, the last change it acknowledged (the
/// file is written by one change at a time, and a change counts only once it is on disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_of_the_embedded_directory_are_all_kept() {
    const PEOPLE: usize = 40;
    const RESETS: usize = 3;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("directory.json");
    let names: Vec<String> = (0..PEOPLE).map(|i| format!("person{i:02}")).collect();
    let seed = DirectorySeed {
        users: names
            .iter()
            .map(|n| sspr_embedded::directory::SeedUser {
                username: n.clone(),
                password: format!("{n}-first-Passw0rd"),
                email: None,
                phone: None,
                groups: Vec::new(),
                admin: false,
            })
            .collect(),
    };
    let directory = EmbeddedDirectory::open(&seed, Some(&file)).expect("directory");
    let candidate = |n: &str, k: usize| format!("{n}-reset-{k}-Passw0rd");
    let mut resets = tokio::task::JoinSet::new();
    for n in &names {
        for k in 0..RESETS {
            let (directory, name) = (directory.clone(), Username::parse(n).expect("name"));
            let password = NewPassword::parse(&candidate(n, k), &PasswordRules::default(), &name).expect("password");
            resets.spawn(async move { directory.set_password(&name, &password).await });
        }
    }
    let mut failed = 0;
    while let Some(done) = resets.join_next().await {
        if let Err(e) = done.expect("the reset task") {
            eprintln!("a reset failed: {e}");
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "resets that failed");

    // The one password each holds now, then after a restart from the file.
    let holds = |directory: EmbeddedDirectory, n: String| async move {
        let name = Username::parse(&n).expect("name");
        let mut held = Vec::new();
        for k in 0..RESETS {
            let given = SecretString::from(candidate(&n, k));
            if directory.authenticate(&name, &given).await.expect("authenticate").is_some() {
                held.push(k);
            }
        }
        held
    };
    let reopened = EmbeddedDirectory::open(&DirectorySeed { users: Vec::new() }, Some(&file)).expect("reopened");
    for n in &names {
        let before = holds(directory.clone(), n.clone()).await;
        assert_eq!(before.len(), 1, "{n} holds exactly one of the passwords set: {before:?}");
        let after = holds(reopened.clone(), n.clone()).await;
        assert_eq!(after, before, "{n}: the file holds what the directory acknowledged");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f != "directory.json")
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left: {leftovers:?}");
}

#[tokio::test]
async fn directory_conformance_memory() {
    let memory = sspr_core::fakes::directory::MemoryDirectory::new();
    memory.add_user(ALICE, ALICE_PASSWORD, &["SSPR-Users"]);
    directory_conformance(&memory, false).await;
}

#[tokio::test]
async fn directory_conformance_cognito() {
    let sdk = support::sdk().await;
    let pool = support::create_cognito_pool(&sdk).await;
    let cognito = sspr_aws::CognitoDirectory::from_config(&sdk, &pool.pool_id, Some(pool.client_id.clone()));
    directory_conformance(&cognito, false).await;
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
async fn sender_conformance_recording() {
    let sender = sspr_core::fakes::senders::RecordingSender::default();
    let sent = sender.clone();
    sender_conformance(&sender, &sender, |to| {
        let texts: Vec<String> = sent.sent_to(&to).into_iter().map(|m| m.text).collect();
        async move { texts }
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

// ---------------------------------------------------------------- Voice

async fn voice_conformance<F, Fut>(voice: &dyn Voice, read: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let (phone, _) = support::destinations();
    let (elsewhere, _) = support::destinations();
    let before = read(phone.clone()).await.len();
    voice.call(&PhoneNumber::parse(&phone).expect("phone"), "sspr conformance code 23456789").await.expect("call");
    let got = read(phone.clone()).await;
    assert_eq!(got.len(), before + 1, "one call to {phone}: {got:?}");
    assert!(got[before].contains("23456789"), "{got:?}");
    assert!(read(elsewhere).await.is_empty());
}

#[tokio::test]
async fn voice_conformance_outbox() {
    let outbox = Outbox::new(Arc::new(SystemClock), false);
    voice_conformance(&outbox, |to| {
        let entries = outbox.entries();
        async move { entries.into_iter().filter(|e| e.channel == "voice" && e.to == to).map(|e| e.body).collect() }
    })
    .await;
    // `/dev/outbox` lists the call as one.
    let listed = serde_json::to_value(outbox.entries()).expect("json");
    assert_eq!(listed[0]["channel"], "voice");
    assert!(listed[0].get("subject").is_none(), "{listed}");
}

/// End User Messaging SMS and Voice v2 through its stand-in (the AWS emulator has no voice).
#[tokio::test]
async fn voice_conformance_end_user_messaging() {
    let stand_in = crate::voice::StandIn::start().await;
    voice_conformance(&stand_in.voice().await, |to| {
        let requests = stand_in.requests();
        async move {
            requests
                .into_iter()
                .filter(|r| r.status == 200 && r.body["DestinationPhoneNumber"] == to.as_str())
                .filter_map(|r| r.body["MessageBody"].as_str().map(str::to_owned))
                .collect()
        }
    })
    .await;
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
