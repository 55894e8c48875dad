//! The LDAP directory against real servers on loopback, started by `tests/run.sh`: OpenLDAP
//! (slapd with ppolicy and memberof, `tests/ldap/slapd.sh`) and a Samba Active Directory
//! domain controller (`tests/ldap/samba.sh`), both over LDAPS. On each: the directory
//! conformance, nested groups, the password history refusal, a lockout by bad binds cleared by
//! an unlock, and the whole product resetting a password and unlocking an account. The servers
//! are fresh for each run: the tests change passwords.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use sspr_core::password::{NewPassword, PasswordRules};
use sspr_core::ports::{Authenticate, Directory, DirectoryError};
use sspr_core::types::Username;
use sspr_ldap::{Flavour, LdapDirectory, LdapSettings};

use crate::support::{self, Backend};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `bash tests/run.sh`, which starts the directory servers")
    })
}

/// One of the two test servers: its settings come from `SSPR_TEST_<prefix>_*`.
#[derive(Clone, Copy)]
pub(crate) enum Server {
    OpenLdap,
    ActiveDirectory,
}

impl Server {
    fn var(self, name: &str) -> String {
        let prefix = match self {
            Server::OpenLdap => "SSPR_TEST_SLAPD",
            Server::ActiveDirectory => "SSPR_TEST_AD",
        };
        env(&format!("{prefix}_{name}"))
    }

    fn flavour(self) -> (Flavour, &'static str, &'static str) {
        match self {
            Server::OpenLdap => (Flavour::OpenLdap, "openldap", "uid"),
            Server::ActiveDirectory => (Flavour::ActiveDirectory, "ad", "sAMAccountName"),
        }
    }

    fn settings(self) -> LdapSettings {
        let password = std::fs::read_to_string(self.var("PASSWORD_FILE")).expect("the service password");
        let (flavour, _, user_attribute) = self.flavour();
        LdapSettings {
            url: self.var("URL"),
            starttls: false,
            flavour,
            bind_dn: self.var("BIND_DN"),
            bind_password: SecretString::from(password.trim().to_owned()),
            base_dn: self.var("BASE_DN"),
            user_attribute: user_attribute.into(),
            ca_pem: Some(std::fs::read(self.var("CA")).expect("the CA certificate")),
            timeout: Duration::from_secs(10),
        }
    }

    fn directory(self) -> LdapDirectory {
        LdapDirectory::new(self.settings()).expect("valid settings")
    }

    /// The local server on this directory, with the embedded store and the outbox.
    async fn product(self) -> support::TestServer {
        self.product_at(None).await
    }

    /// The same, reaching the directory at `url` instead where given.
    async fn product_at(self, url: Option<&str>) -> support::TestServer {
        self.product_with(url, Vec::new(), None).await
    }

    /// The same, with more settings (they win over these), and an AWS configuration of its own
    /// where given.
    pub(crate) async fn product_with(
        self,
        url: Option<&str>,
        more: Vec<(String, String)>,
        aws: Option<aws_config::SdkConfig>,
    ) -> support::TestServer {
        let mut settings = self.settings();
        if let Some(url) = url {
            settings.url = url.to_owned();
        }
        let (_, flavour, _) = self.flavour();
        let overrides: Vec<(String, String)> = [
            ("SSPR_DIRECTORY", "ldap".to_owned()),
            ("SSPR_LDAP_FLAVOUR", flavour.to_owned()),
            ("SSPR_LDAP_URL", settings.url.clone()),
            ("SSPR_LDAP_BIND_DN", settings.bind_dn.clone()),
            ("SSPR_LDAP_BASE_DN", settings.base_dn.clone()),
            ("SSPR_LDAP_CA_FILE", self.var("CA")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let overrides: Vec<(String, String)> = more.into_iter().chain(overrides).collect();
        let secrets = json!({
            "pepper": "c3NwciB0ZXN0IHBlcHBlciBvZiB0aGlydHktdHdvIGJ5dGVzIQ==",
            "ldap_bind_password": settings.bind_password.expose_secret(),
        });
        support::start_with_aws(Backend::Embedded, overrides, Some(secrets), aws).await
    }
}

/// The adapter on the Samba AD domain controller.
pub(crate) fn samba_ad() -> LdapDirectory {
    Server::ActiveDirectory.directory()
}

fn openldap_settings() -> LdapSettings {
    Server::OpenLdap.settings()
}

fn openldap() -> LdapDirectory {
    Server::OpenLdap.directory()
}

fn name(s: &str) -> Username {
    Username::parse(s).expect("name")
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn password(s: &str) -> NewPassword {
    NewPassword::parse(s, &PasswordRules::default(), &name("someone")).expect("a valid password")
}

/// Whether `directory` takes `password` for `who` (a bind as the person).
async fn binds(directory: &LdapDirectory, who: &str, password: &str) -> bool {
    directory.authenticate(&name(who), &secret(password)).await.expect("bind").is_some()
}

/// Three bad binds: the threshold of both test servers.
async fn lock_out(directory: &LdapDirectory, who: &str) {
    for _ in 0..3 {
        assert!(!binds(directory, who, "not-the-password-9X").await);
    }
}

/// The only refusal reason of a `set_password` that had to fail.
async fn refusal(directory: &LdapDirectory, who: &str, new: &str) -> String {
    match directory.set_password(&name(who), &password(new)).await {
        Err(DirectoryError::PasswordRejected(mut reasons)) => {
            assert_eq!(reasons.len(), 1, "{reasons:?}");
            reasons.remove(0)
        }
        other => panic!("{who} to {new}: {other:?}"),
    }
}

/// Group names of `who`, and the sorted names of the members of `group`.
async fn names_in(directory: &LdapDirectory, group: &str) -> Vec<String> {
    let mut names: Vec<String> =
        directory.members_of(group).await.expect("members").into_iter().map(|u| u.username.to_string()).collect();
    names.sort();
    names
}

/// What the groups and members of both test servers hold: alice is in Team-A, which is in
/// SSPR-Users, and both count; SSPR-Users has carol directly and alice through Team-A.
async fn nested_groups(directory: &LdapDirectory) {
    let alice = directory.find_user(&name("alice")).await.expect("find").expect("alice");
    assert!(alice.groups.contains(&"Team-A".to_owned()) && alice.groups.contains(&"SSPR-Users".to_owned()));
    assert_eq!(alice.email.map(|e| e.to_string()).as_deref(), Some("alice@example.com"));
    assert_eq!(names_in(directory, "SSPR-Admins").await, vec!["admin", "ops"]);
    // (So are dave on OpenLDAP and erin on Samba, whom other tests use.)
    let users = names_in(directory, "SSPR-Users").await;
    assert!(users.starts_with(&["alice".to_owned(), "carol".to_owned()]), "direct and nested members: {users:?}");
    assert!(!users.contains(&"bob".to_owned()), "{users:?}");
}

/// Three bad binds lock bob, which the directory reports; the right password then fails too;
/// an unlock opens the account again; a reset unlocks as well.
async fn lockout_and_unlock(directory: &LdapDirectory, bob_password: &str) {
    let bob = name("bob");
    assert!(!directory.find_user(&bob).await.expect("find").expect("bob").locked);
    lock_out(directory, "bob").await;
    assert!(directory.find_user(&bob).await.expect("find").expect("bob").locked, "reported locked");
    assert!(!binds(directory, "bob", bob_password).await, "locked: the right password fails too");
    directory.lockout().expect("a lockout").unlock(&bob).await.expect("unlocked");
    assert!(!directory.find_user(&bob).await.expect("find").expect("bob").locked);
    assert!(binds(directory, "bob", bob_password).await, "open again");

    lock_out(directory, "bob").await;
    directory.set_password(&bob, &password("Bob-reset-Passw0rd-2")).await.expect("reset");
    assert!(binds(directory, "bob", "Bob-reset-Passw0rd-2").await, "a reset unlocks");
}

/// One test, in order: each step changes the server's state for the next.
#[tokio::test]
async fn openldap_directory() {
    let directory = openldap();
    crate::conformance::directory_conformance(&directory, true).await;
    nested_groups(&directory).await;
    // The history refuses a password used before, in words a person can act on.
    let reason = refusal(&directory, "alice", "alice-demo-Passw0rd").await;
    assert!(reason.contains("used this password before"), "{reason}");
    lockout_and_unlock(&directory, "bob-demo-Passw0rd").await;
}

/// The same on Active Directory, and what only it has: the complexity rule, and `pwdLastSet`,
/// which a reset must leave set (not 0, "must change at next logon").
#[tokio::test]
async fn active_directory() {
    let server = Server::ActiveDirectory;
    let directory = server.directory();
    crate::conformance::directory_conformance(&directory, true).await;
    nested_groups(&directory).await;
    // Samba holds only a person's own change to the history (it has no policy hints control,
    // which Windows honours for a reset): its refusal of a reused password, read from the
    // server, becomes the sentence a person sees.
    let refused = ad_user_change("alice", "Conformance-Passw0rd-1", "Alice-own-Passw0rd-7")
        .and_then(|()| ad_user_change("alice", "Alice-own-Passw0rd-7", "Conformance-Passw0rd-1"))
        .expect_err("a password from the history");
    assert!(refused.contains("in history"), "{refused}");
    let reason = sspr_ldap::refusal_reason(Flavour::ActiveDirectory, &refused);
    assert!(reason.contains("used this password before"), "{reason}");
    let reason = refusal(&directory, "alice", "onlylowercaseletters").await;
    assert!(reason.contains("too simple"), "{reason}");
    lockout_and_unlock(&directory, "bob-demo-Passw0rd").await;

    // ops must change the password at next logon; a reset through the adapter clears that.
    ad_admin_modify("ops", "replace: pwdLastSet\npwdLastSet: 0");
    assert_eq!(ad_attribute("ops", "pwdLastSet").as_deref(), Some("0"));
    directory.set_password(&name("ops"), &password("Ops-reset-Passw0rd-4")).await.expect("reset");
    let last_set = ad_attribute("ops", "pwdLastSet").expect("pwdLastSet");
    assert!(last_set.parse::<i64>().is_ok_and(|t| t > 0), "pwdLastSet after the reset: {last_set}");
    assert!(binds(&directory, "ops", "Ops-reset-Passw0rd-4").await);

    // People may also be found by userPrincipalName; either way, by the directory's spelling.
    let mut by_upn = server.settings();
    by_upn.user_attribute = "userPrincipalName".into();
    let by_upn = LdapDirectory::new(by_upn).expect("valid settings");
    let found = by_upn.find_user(&name("Carol@SSPR.TEST")).await.expect("find").expect("carol by her UPN");
    assert_eq!(found.username.as_str(), "carol@sspr.test");
    assert!(found.is_member_of("SSPR-Users"), "{found:?}");
    let found = directory.find_user(&name("CAROL")).await.expect("find").expect("carol in capitals");
    assert_eq!(found.username.as_str(), "carol", "the directory's spelling");

    // The service account holds exactly the rights README.md lists: nothing beyond people.
    let admin = directory.set_password(&name("Administrator"), &password("Not-Allowed-Passw0rd-5")).await;
    assert!(matches!(admin, Err(DirectoryError::Unavailable(_)) | Err(DirectoryError::UnknownUser)), "{admin:?}");
}

/// `ldapsearch`/`ldapmodify` against the Samba server as its Administrator (the test's own
/// hand, apart from the adapter): the first value of `attribute` of `who`.
fn ad_attribute(who: &str, attribute: &str) -> Option<String> {
    let server = Server::ActiveDirectory;
    let out = std::process::Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", server.var("CA"))
        .args(["-LLL", "-x", "-H", &server.var("URL"), "-D", "CN=Administrator,CN=Users,DC=sspr,DC=test"])
        .args(["-y", &server.var("ADMIN_PASSWORD_FILE"), "-b", &server.var("BASE_DN")])
        .arg(format!("(sAMAccountName={who})"))
        .arg(attribute)
        .output()
        .expect("ldapsearch");
    assert!(out.status.success(), "ldapsearch: {}", String::from_utf8_lossy(&out.stderr));
    let prefix = format!("{attribute}: ");
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

/// A person's own password change on the Samba server (the old password removed, the new one
/// added, bound as the person); the server's diagnostic when it refuses.
fn ad_user_change(who: &str, old: &str, new: &str) -> Result<(), String> {
    use std::io::Write as _;
    let server = Server::ActiveDirectory;
    let dn = ad_dn(who);
    let quoted = |p: &str| -> String {
        use base64::Engine as _;
        let bytes: Vec<u8> = format!("\"{p}\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let password_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(password_file.path(), old).expect("password file");
    let mut child = std::process::Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", server.var("CA"))
        .args(["-x", "-H", &server.var("URL"), "-D", &dn, "-y"])
        .arg(password_file.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ldapmodify");
    let ldif = format!(
        "dn: {dn}\nchangetype: modify\ndelete: unicodePwd\nunicodePwd:: {}\n-\nadd: unicodePwd\nunicodePwd:: {}\n-\n",
        quoted(old),
        quoted(new)
    );
    child.stdin.take().expect("stdin").write_all(ldif.as_bytes()).expect("ldif");
    let out = child.wait_with_output().expect("ldapmodify");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The DN of `who` on the Samba server.
fn ad_dn(who: &str) -> String {
    let server = Server::ActiveDirectory;
    let out = std::process::Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", server.var("CA"))
        .args(["-LLL", "-x", "-o", "ldif_wrap=no", "-H", &server.var("URL")])
        .args(["-D", "CN=Administrator,CN=Users,DC=sspr,DC=test", "-y", &server.var("ADMIN_PASSWORD_FILE")])
        .args(["-b", &server.var("BASE_DN"), &format!("(sAMAccountName={who})"), "1.1"])
        .output()
        .expect("ldapsearch");
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("dn: ").map(str::to_owned)).expect("dn")
}

fn ad_admin_modify(who: &str, change: &str) {
    use std::io::Write as _;
    let server = Server::ActiveDirectory;
    let dn = ad_dn(who);
    let mut child = std::process::Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", server.var("CA"))
        .args(["-x", "-H", &server.var("URL"), "-D", "CN=Administrator,CN=Users,DC=sspr,DC=test"])
        .args(["-y", &server.var("ADMIN_PASSWORD_FILE")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ldapmodify");
    let ldif = format!("dn: {dn}\nchangetype: modify\n{change}\n");
    child.stdin.take().expect("stdin").write_all(ldif.as_bytes()).expect("ldif");
    assert!(child.wait().expect("ldapmodify").success(), "ldapmodify {ldif}");
}

#[tokio::test]
async fn a_wrong_service_password_or_an_unknown_authority_is_unavailable_not_a_crash() {
    let mut wrong = openldap_settings();
    wrong.bind_password = secret("not-the-service-password");
    let directory = LdapDirectory::new(wrong).expect("valid settings");
    assert!(matches!(directory.find_user(&name("alice")).await, Err(DirectoryError::Unavailable(_))));

    let mut untrusted = openldap_settings();
    untrusted.ca_pem = None;
    let directory = LdapDirectory::new(untrusted).expect("valid settings");
    let r = directory.find_user(&name("alice")).await;
    assert!(matches!(r, Err(DirectoryError::Unavailable(_))), "a certificate nobody vouches for: {r:?}");

    let mut plain = openldap_settings();
    plain.url = plain.url.replace("ldaps://", "ldap://");
    assert_eq!(LdapDirectory::new(plain).err().map(|e| e.setting), Some("SSPR_LDAP_URL"));
}

/// The connections that served the searches for `uid=<probe>`, in order, from the server's log
/// (the name is unique to one test, so other tests' connections do not count).
fn connections_of(probe: &str) -> Vec<String> {
    let ca = std::path::PathBuf::from(env("SSPR_TEST_SLAPD_CA"));
    let log = std::fs::read_to_string(ca.with_file_name("slapd.log")).expect("the server's log");
    let filter = format!("(uid={probe}))\"");
    log.lines()
        .filter(|l| l.contains(" SRCH ") && l.contains(&filter))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("conn=")).map(str::to_owned))
        .collect()
}

/// One connection serves call after call; when the server drops it (here: idle for longer than
/// the server's 3-second idle timeout), the next call opens a new one and succeeds.
#[tokio::test]
async fn the_connection_is_reused_and_opened_again_after_the_server_dropped_it() {
    let directory = openldap();
    let probe = format!("probe-{}", std::process::id());
    for _ in 0..5 {
        assert!(directory.find_user(&name(&probe)).await.expect("find").is_none());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(directory.find_user(&name(&probe)).await.expect("the call after the drop").is_none());
    let connections = connections_of(&probe);
    assert_eq!(connections.len(), 6, "{connections:?}");
    assert!(connections[..5].iter().all(|c| *c == connections[0]), "one connection for five calls: {connections:?}");
    assert_ne!(connections[5], connections[0], "a new connection after the drop: {connections:?}");
}

/// The whole product on a directory server: carol signs in with her directory password,
/// registers her email, resets her password by email; the directory then takes the new password
/// and refuses the old; her current password is refused in words, and the token stays usable.
/// Then three bad binds lock her out: before a proof nothing tells the lock; after one the page
/// is offered the unlock, which opens the account with the password she has.
async fn carol_resets_and_unlocks_through_the_product(server: Server) {
    let product = server.product().await;
    let token =
        product.sign_in("carol", "carol-demo-Passw0rd").await.expect("carol signs in with her directory password");
    let email = "carol@example.com";
    crate::flows::register(&product, &token, "email", email).await;

    // Proves carol by email; the reply of the proof.
    let prove = || async {
        let r = product.start_reset("carol").await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.get("locked").is_none() && r.body.get("unlock_offered").is_none(), "{r:?}");
        let session = r.body["session"].as_str().expect("session").to_owned();
        let send = json!({ "session": session, "method": "email", "destination": email });
        let code = product.code_sent_by(email, product.post("/v1/reset/send-code", send)).await;
        let r = product.post("/v1/reset/verify", json!({ "session": session, "method": "email", "code": code })).await;
        assert_eq!(r.status, 200, "{r:?}");
        (session, r)
    };

    let (session, verified) = prove().await;
    assert_eq!(
        (verified.body["locked"].as_bool(), verified.body["unlock_offered"].as_bool()),
        (Some(false), Some(false))
    );
    let reset_token = verified.body["reset_token"].as_str().expect("a reset token").to_owned();
    let complete = |password: &str| {
        product.post(
            "/v1/reset/complete",
            json!({ "session": session, "reset_token": reset_token, "new_password": password }),
        )
    };
    // A password the directory's policy refuses: OpenLDAP's history takes the current one;
    // Active Directory's complexity rule one of lower case letters only.
    let (refused, because) = match server {
        Server::OpenLdap => ("carol-demo-Passw0rd", "your current password"),
        Server::ActiveDirectory => ("onlylowercaseletters", "too simple"),
    };
    let r = complete(refused).await;
    assert_eq!((r.status, r.error()), (422, "password_rejected"), "{r:?}");
    assert!(r.body["reasons"][0].as_str().is_some_and(|m| m.contains(because)), "{r:?}");
    let r = complete("Carol-new-Passw0rd-3").await;
    assert_eq!(r.status, 200, "the token survived the refusal: {r:?}");

    let directory = server.directory();
    assert!(binds(&directory, "carol", "Carol-new-Passw0rd-3").await);
    assert!(!binds(&directory, "carol", "carol-demo-Passw0rd").await);
    let told = product.messages_to(email).await;
    assert!(told.last().is_some_and(|m| m.contains("password was changed")), "{told:?}");

    lock_out(&directory, "carol").await;
    assert!(!binds(&directory, "carol", "Carol-new-Passw0rd-3").await, "locked");
    let (session, verified) = prove().await;
    assert_eq!(
        (verified.body["locked"].as_bool(), verified.body["unlock_offered"].as_bool()),
        (Some(true), Some(true))
    );
    let reset_token = verified.body["reset_token"].as_str().expect("a reset token");
    let r = product
        .post("/v1/reset/complete", json!({ "session": session, "reset_token": reset_token, "unlock_only": true }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(binds(&directory, "carol", "Carol-new-Passw0rd-3").await, "unlocked, with the password she had");
    let told = product.messages_to(email).await;
    assert!(told.last().is_some_and(|m| m.contains("unlocked")), "{told:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carol_resets_and_unlocks_on_openldap() {
    carol_resets_and_unlocks_through_the_product(Server::OpenLdap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carol_resets_and_unlocks_on_active_directory() {
    carol_resets_and_unlocks_through_the_product(Server::ActiveDirectory).await;
}

/// A directory that does not answer: sign-in and reset answer 503 `directory_unavailable`, in
/// words, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_directory_is_told_as_such() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("addr").port()
    };
    let product = Server::OpenLdap.product_at(Some(&format!("ldaps://127.0.0.1:{closed}"))).await;
    let r = product.post("/v1/local/signin", json!({ "username": "carol", "password": "carol-demo-Passw0rd" })).await;
    assert_eq!((r.status, r.error()), (503, "directory_unavailable"), "{r:?}");
    let r = product.start_reset("carol").await;
    assert_eq!((r.status, r.error()), (503, "directory_unavailable"), "{r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| m.contains("directory")), "{r:?}");
}

/// With the policy's writeback off, a person of the on-premises directory who proved who they
/// are is sent to the helpdesk (403 `writeback_off`, the link in the answer), and the
/// directory's password is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writeback_off_sends_people_of_the_directory_to_the_helpdesk() {
    let product = Server::OpenLdap.product().await;
    let admin = product.sign_in("admin", "admin-demo-Passw0rd").await.expect("the administrator signs in");
    let r = product.call("GET", "/v1/admin/policy", Some(&admin), None).await;
    let mut policy = r.body;
    policy["writeback"] = json!(false);
    policy["helpdesk"] = json!("https://help.example.com/sspr");
    let r = product.call("PUT", "/v1/admin/policy", Some(&admin), Some(policy)).await;
    assert_eq!(r.status, 200, "{r:?}");

    // dave is the browser test's; nothing here changes his directory entry.
    let token = product.sign_in("dave", "dave-demo-Passw0rd").await.expect("dave signs in");
    let email = "dave@example.com";
    crate::flows::register(&product, &token, "email", email).await;
    let (session, _, reset_token) = crate::flows::verified_session_of(&product, "dave", "email", email).await;
    let r = product
        .post(
            "/v1/reset/complete",
            json!({ "session": session, "reset_token": reset_token, "new_password": "Dave-new-Passw0rd-6" }),
        )
        .await;
    assert_eq!((r.status, r.error()), (403, "writeback_off"), "{r:?}");
    assert_eq!(r.body["helpdesk"].as_str(), Some("https://help.example.com/sspr"), "{r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| m.contains("helpdesk")), "{r:?}");
    assert!(binds(&Server::OpenLdap.directory(), "dave", "dave-demo-Passw0rd").await, "unchanged");
}

/// Over a real directory the local server keeps its outbox to itself: `/dev/outbox` would hand
/// real people's codes to whoever asks. (Over the demo directory it is served.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_not_served_over_a_real_directory() {
    let product = Server::OpenLdap.product().await;
    let r = product.call("GET", "/dev/outbox", None, None).await;
    assert_eq!(r.status, 404, "{r:?}");
    let demo = support::start(Backend::Embedded).await;
    let r = demo.call("GET", "/dev/outbox", None, None).await;
    assert_eq!(r.status, 200, "{r:?}");
}
