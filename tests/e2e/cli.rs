//! `sspr admin …`, the real `sspr` binary run as an operator would, each test on a data folder
//! of its own with the embedded store (no network, no AWS): the policy read as JSON, edited
//! and stored again, refused when stale or out of range; the change in the activity log and
//! the report with its actor; clearing a registration nobody made.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `sspr` binary cargo built: next to this test's own `deps/` folder.
fn sspr_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let path = dir.join(format!("sspr{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build -p sspr-local`, or `cargo build --workspace --all-targets`)",
        path.display()
    );
    path
}

/// What one run printed, and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn succeeded(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    #[track_caller]
    fn failed(self) -> Self {
        assert_eq!(self.code, Some(1), "expected exit code 1: {self:#?}");
        assert!(self.stdout.is_empty(), "a refusal prints nothing on stdout: {self:#?}");
        self
    }

    /// The cells of the table rows printed (borders and the header's rule dropped).
    fn rows(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .filter(|line| line.starts_with('│'))
            .map(|line| line.trim_matches('│').split('┆').map(|cell| cell.trim().to_owned()).collect())
            .collect()
    }

    /// The row whose first cell is `first`.
    #[track_caller]
    fn row(&self, first: &str) -> Vec<String> {
        self.rows().into_iter().find(|r| r[0] == first).unwrap_or_else(|| panic!("no row {first}: {}", self.stdout))
    }
}

/// Runs `sspr admin ARGS --data DATA` in a clean environment: no AWS or sspr settings, so the
/// store is the embedded one whatever the shell running the tests has set.
fn admin(data: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let output = Command::new(sspr_binary())
        .arg("admin")
        .args(args)
        .arg("--data")
        .arg(data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("sspr runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8"),
        stderr: String::from_utf8(output.stderr).expect("utf-8"),
    }
}

/// `policy get --json`, with `field` set to `value`, written to `name` in `dir`.
fn edited_policy(data: &Path, dir: &Path, name: &str, field: &str, value: serde_json::Value) -> PathBuf {
    let read = admin(data, &[], &["policy", "get", "--json"]).succeeded();
    let mut document: serde_json::Value = serde_json::from_str(&read.stdout).expect("policy get --json prints JSON");
    assert!(document.get(field).is_some(), "{field} in {document}");
    document[field] = value;
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&document).expect("json")).expect("write policy file");
    path
}

#[test]
fn admin_policy_is_read_edited_and_set_and_a_stale_or_out_of_range_file_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("temp dir");

    let before = admin(data.path(), &[], &["policy", "get"]).succeeded();
    assert_eq!(before.row("reconfirm_days"), ["reconfirm_days", "180"]);
    assert_eq!(before.row("version"), ["version", "0"]);
    let fields: Vec<String> = before.rows().into_iter().map(|r| r[0].clone()).collect();
    let mut expected: Vec<&str> = vec!["field"];
    expected.extend(sspr_core::policy::POLICY_FIELDS);
    expected.push("version");
    assert_eq!(fields, expected, "the header, every field in the policy's order, then the version");

    // The JSON printed is the document `set` takes, and the admin API's.
    let json = admin(data.path(), &[], &["policy", "get", "--json"]).succeeded();
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let parsed = sspr_core::policy::PolicyDocument::parse(&document).expect("a whole document");
    assert_eq!(parsed.version, 0);

    let ninety = edited_policy(data.path(), files.path(), "ninety.json", "reconfirm_days", 90.into());
    let set = admin(data.path(), &[], &["policy", "set", ninety.to_str().expect("path")]).succeeded();
    assert!(set.stdout.contains("version 1"), "{set:#?}");
    let after = admin(data.path(), &[], &["policy", "get"]).succeeded();
    assert_eq!(after.row("reconfirm_days"), ["reconfirm_days", "90"]);
    assert_eq!(after.row("version"), ["version", "1"]);

    // The same file again was read at version 0: stale now, and nothing changes.
    let stale = admin(data.path(), &[], &["policy", "set", ninety.to_str().expect("path")]).failed();
    assert!(stale.stderr.starts_with("sspr: "), "{stale:#?}");
    assert!(stale.stderr.contains("changed since") && stale.stderr.contains("read it again"), "{stale:#?}");
    assert!(stale.stderr.contains("version 0") && stale.stderr.contains("version 1"), "{stale:#?}");
    assert_eq!(stale.stderr.lines().count(), 1, "one readable line: {stale:#?}");

    // Out of range, at the current version: refused naming the field.
    let too_long = edited_policy(data.path(), files.path(), "too-long.json", "reconfirm_days", 999.into());
    let refused = admin(data.path(), &[], &["policy", "set", too_long.to_str().expect("path")]).failed();
    assert!(refused.stderr.starts_with("sspr: ") && refused.stderr.contains("reconfirm_days"), "{refused:#?}");
    assert_eq!(refused.stderr.lines().count(), 1, "one readable line: {refused:#?}");

    let unchanged = admin(data.path(), &[], &["policy", "get"]).succeeded();
    assert_eq!(unchanged.row("reconfirm_days"), ["reconfirm_days", "90"]);
    assert_eq!(unchanged.row("version"), ["version", "1"]);
}

#[test]
fn admin_activity_and_report_show_a_policy_change_with_its_actor() {
    let data = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("temp dir");
    let empty = admin(data.path(), &[], &["activity"]).succeeded();
    assert!(empty.rows().is_empty(), "{empty:#?}");

    // No --actor: the USER of the shell is the actor.
    let file = edited_policy(data.path(), files.path(), "p.json", "reconfirm_days", 90.into());
    admin(data.path(), &[("USER", "ops-carol")], &["policy", "set", file.to_str().expect("path")]).succeeded();
    // --actor wins over USER.
    let file = edited_policy(data.path(), files.path(), "q.json", "notify_admins", false.into());
    let args = ["--actor", "ops-dave", "policy", "set", file.to_str().expect("path")];
    admin(data.path(), &[("USER", "ops-carol")], &args).succeeded();

    let log = admin(data.path(), &[], &["activity"]).succeeded();
    let rows = log.rows();
    let header = ["time", "kind", "user", "actor", "methods", "result", "reason", "destination", "source IP"];
    assert_eq!(rows[0], header, "{}", log.stdout);
    // Events of one second have no order among them (the log is newest first by the second).
    let mut events: Vec<(&str, &str, &str, &str)> =
        rows[1..].iter().map(|r| (r[1].as_str(), r[3].as_str(), r[5].as_str(), r[6].as_str())).collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            ("policy_changed", "ops-carol", "success", "policy: reconfirm_days"),
            ("policy_changed", "ops-dave", "success", "policy: notify_admins"),
        ],
        "each change with its actor, the changed fields named, never their values:\n{}",
        log.stdout
    );
    assert!(!log.stdout.contains("180") && !log.stdout.contains("\"old\""), "no changes JSON: {}", log.stdout);

    // Filters and the limit.
    let newest = admin(data.path(), &[], &["activity", "--limit", "1"]).succeeded();
    assert_eq!(newest.rows().len(), 2, "header and one event: {}", newest.stdout);
    assert!(newest.stdout.contains("raise --limit"), "{}", newest.stdout);
    let changes =
        admin(data.path(), &[], &["activity", "--kind", "policy_changed", "--since", "2000-01-01"]).succeeded();
    assert_eq!(changes.rows().len(), 3, "{}", changes.stdout);
    let none = admin(data.path(), &[], &["activity", "--kind", "reset_succeeded"]).succeeded();
    assert!(none.rows().is_empty(), "{none:#?}");
    let before = admin(data.path(), &[], &["activity", "--until", "2000-01-01"]).succeeded();
    assert!(before.rows().is_empty(), "{before:#?}");

    let report = admin(data.path(), &[], &["report", "--days", "7"]).succeeded();
    assert_eq!(report.row("policy_changed"), ["policy_changed", "2"]);
    assert_eq!(report.row("reset_succeeded"), ["reset_succeeded", "0"]);
}

#[test]
fn admin_report_counts_one_policy_change() {
    let data = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("temp dir");
    let file = edited_policy(data.path(), files.path(), "p.json", "reconfirm_days", 90.into());
    admin(data.path(), &[], &["policy", "set", file.to_str().expect("path")]).succeeded();
    let report = admin(data.path(), &[], &["report", "--days", "7"]).succeeded();
    assert!(report.stdout.contains("7 days"), "{}", report.stdout);
    assert_eq!(report.row("policy_changed"), ["policy_changed", "1"], "{}", report.stdout);
    let activity = admin(data.path(), &[], &["activity"]).succeeded();
    assert_eq!(activity.rows()[1][3], "sspr-cli", "no USER, no --actor: {}", activity.stdout);
    let out_of_range = admin(data.path(), &[], &["report", "--days", "91"]);
    assert_ne!(out_of_range.code, Some(0), "{out_of_range:#?}");
}

#[test]
fn admin_clear_registration_of_someone_not_registered_fails_readably() {
    let data = tempfile::tempdir().expect("temp dir");
    let cleared = admin(data.path(), &[], &["clear-registration", "alice"]).failed();
    assert_eq!(cleared.stderr.trim_end(), "sspr: alice has no registration to clear", "{cleared:#?}");
    let log = admin(data.path(), &[], &["activity"]).succeeded();
    assert!(log.rows().is_empty(), "nothing was done, nothing is logged: {log:#?}");
}

#[test]
fn admin_refuses_a_data_folder_that_does_not_exist() {
    let parent = tempfile::tempdir().expect("temp dir");
    let missing = parent.path().join("not-here");
    let run = admin(&missing, &[], &["policy", "get"]).failed();
    assert!(run.stderr.contains("not-here") && run.stderr.contains("--data"), "{run:#?}");
    assert!(!missing.exists(), "the folder is not made");
}

/// Stops the server it holds when dropped, even when the test failed.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sspr serve` started under umask 022 makes its data folder readable by its owner only, and
/// every file in it (store and its WAL, directory, secrets, outbox) too.
#[test]
#[cfg(unix)]
fn the_data_folder_and_its_files_are_private_whatever_the_umask() {
    use std::io::BufRead as _;
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().expect("dir");
    let data = parent.path().join("data");
    let script =
        format!("umask 022 && exec '{}' serve --addr 127.0.0.1:0 --data '{}'", sspr_binary().display(), data.display());
    let child = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sspr serve");
    let mut serving = Serving(child);
    let stdout = serving.0.stdout.take().expect("stdout");
    let first = std::io::BufReader::new(stdout).lines().next().and_then(Result::ok).unwrap_or_default();
    assert!(first.starts_with("sspr is running at http://127.0.0.1:"), "{first}");

    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder");
    let files: Vec<PathBuf> = std::fs::read_dir(&data).expect("data").map(|e| e.expect("entry").path()).collect();
    let names: Vec<String> = files.iter().filter_map(|f| f.file_name()?.to_str().map(str::to_owned)).collect();
    for expected in ["sspr.db", "directory.json", "secrets.json", "outbox.jsonl"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    for file in &files {
        assert_eq!(mode(file) & 0o077, 0, "{} is {:o}", file.display(), mode(file));
    }
}

/// `sspr smoke` for alice by the code sent to `email`, its standard streams piped.
fn spawn_smoke(url: &str, email: &str, new_password: &str) -> tokio::process::Child {
    tokio::process::Command::new(sspr_binary())
        .args(["smoke", "--url", url, "--username", crate::support::ALICE, "--destination", email])
        .env("SSPR_SMOKE_NEW_PASSWORD", new_password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sspr smoke")
}

/// `sspr smoke`, as an operator checks a deploy: against a running server, it resets a test
/// person's password by the code sent to their registered address, which the operator types in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_resets_a_test_persons_password_by_the_code_typed_in() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

    let server = crate::support::start_embedded().await;
    let token = server.sign_in(crate::support::ALICE, crate::support::ALICE_PASSWORD).await.expect("alice signs in");
    let email = "alice.smoke@example.com";
    crate::flows::register(&server, &token, "email", email).await;
    let new_password = "Smoke-Checked-Deploy-48";
    crate::support::record_secret(new_password);

    let mut child = spawn_smoke(&server.url, email, new_password);
    let before = server.messages_to(email).await.len();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    while let Some(line) = tokio::time::timeout(std::time::Duration::from_secs(60), stdout.next_line())
        .await
        .expect("smoke asks for the code within a minute")
        .expect("stdout")
    {
        let asks = line.starts_with("type the code");
        printed.push(line);
        if asks {
            break;
        }
    }
    assert!(printed.iter().any(|l| l == &format!("type the code sent by email to {email}:")), "{printed:?}");
    let message = server.message_after(email, before).await;
    let code = crate::support::extract_code(&message).expect("a code in the email");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(format!("{code}\n").as_bytes()).await.expect("the code typed in");
    drop(stdin);
    while let Some(line) = stdout.next_line().await.expect("stdout") {
        printed.push(line);
    }
    let status = child.wait().await.expect("smoke ends");
    assert!(status.success(), "{printed:?}");
    for step in ["challenge: 200", "start: 200", "send-code: 202", "verify: 200", "complete: 200"] {
        assert!(printed.iter().any(|l| l.starts_with(step)), "{step}: {printed:?}");
    }
    assert!(
        printed.last().is_some_and(|l| l.starts_with("the reset works: alice has the new password")),
        "{printed:?}"
    );
    assert!(server.password_works(crate::support::ALICE, new_password).await, "the new password is alice's");
    assert!(printed.iter().all(|l| !l.contains(new_password) && !l.contains(&code)), "no secret printed");

    // A wrong code stops it at verify, with the API's error code.
    let mut child = spawn_smoke(&server.url, email, "Smoke-Never-Set-59");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"00000000\n").await.expect("a wrong code typed in");
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("smoke ends within a minute")
        .expect("output");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verify failed: 400 invalid_code"), "{stderr}");
}

#[test]
fn smoke_refuses_without_a_new_password_or_over_plain_http() {
    // No new password: nothing is asked of the deployment.
    let out = Command::new(sspr_binary())
        .args(["smoke", "--url", "https://reset.example.com", "--username", "alice", "--destination", "a@example.com"])
        .env_remove("SSPR_SMOKE_NEW_PASSWORD")
        .output()
        .expect("sspr smoke");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSPR_SMOKE_NEW_PASSWORD"));
    // Plain http elsewhere than this machine is refused.
    let out = Command::new(sspr_binary())
        .args(["smoke", "--url", "http://reset.example.com", "--username", "alice", "--destination", "a@example.com"])
        .env("SSPR_SMOKE_NEW_PASSWORD", "Never-Sent-Anywhere-1")
        .output()
        .expect("sspr smoke");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url is https"), "{out:?}");
}
