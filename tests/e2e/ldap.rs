//! The LDAP directory against a real OpenLDAP (slapd with ppolicy and memberof, over LDAPS on
//! loopback, started by `tests/ldap/slapd.sh` from `tests/run.sh`): the directory conformance,
//! nested groups, the password history refusal, a lockout by bad binds cleared by an unlock,
//! and a connection that drops and is opened again. The server is fresh for each run: the
//! tests change passwords.

use std::time::Duration;

use secrecy::SecretString;
use sspr_core::password::{NewPassword, PasswordRules};
use sspr_core::ports::{Authenticate, Directory, DirectoryError};
use sspr_core::types::Username;
use sspr_ldap::{Flavour, LdapDirectory, LdapSettings};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `bash tests/run.sh`, which starts the OpenLDAP server")
    })
}

fn openldap_settings() -> LdapSettings {
    let password = std::fs::read_to_string(env("SSPR_TEST_SLAPD_PASSWORD_FILE")).expect("the service password");
    LdapSettings {
        url: env("SSPR_TEST_SLAPD_URL"),
        starttls: false,
        flavour: Flavour::OpenLdap,
        bind_dn: env("SSPR_TEST_SLAPD_BIND_DN"),
        bind_password: SecretString::from(password.trim().to_owned()),
        base_dn: env("SSPR_TEST_SLAPD_BASE_DN"),
        user_attribute: "uid".into(),
        ca_pem: Some(std::fs::read(env("SSPR_TEST_SLAPD_CA")).expect("the CA certificate")),
        timeout: Duration::from_secs(10),
    }
}

fn openldap() -> LdapDirectory {
    LdapDirectory::new(openldap_settings()).expect("valid settings")
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

/// One test, in order: each step changes the server's state for the next.
#[tokio::test]
async fn openldap_directory() {
    let directory = openldap();
    crate::conformance::directory_conformance(&directory, true).await;

    // alice is in Team-A, which is in SSPR-Users: both count.
    let alice = directory.find_user(&name("alice")).await.expect("find").expect("alice");
    assert!(alice.groups.contains(&"Team-A".to_owned()) && alice.groups.contains(&"SSPR-Users".to_owned()));
    assert_eq!(alice.email.map(|e| e.to_string()).as_deref(), Some("alice@example.com"));
    let mut admins: Vec<String> = directory
        .members_of("SSPR-Admins")
        .await
        .expect("admins")
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    admins.sort();
    assert_eq!(admins, vec!["admin", "ops"]);
    let mut users: Vec<String> =
        directory.members_of("SSPR-Users").await.expect("users").into_iter().map(|u| u.username.to_string()).collect();
    users.sort();
    assert_eq!(users, vec!["alice", "carol"], "direct members, and the members of a member group");

    // The history refuses a password used before, in words a person can act on.
    let refused = directory.set_password(&name("alice"), &password("alice-demo-Passw0rd")).await;
    match refused {
        Err(DirectoryError::PasswordRejected(reasons)) => {
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].contains("used this password before"), "{reasons:?}");
        }
        other => panic!("a password from the history: {other:?}"),
    }

    // Three bad binds lock bob; the right password then fails too; an unlock opens it again.
    let bob = name("bob");
    for _ in 0..3 {
        assert!(directory.authenticate(&bob, &secret("not-bobs-password")).await.expect("bind").is_none());
    }
    assert!(directory.authenticate(&bob, &secret("bob-demo-Passw0rd")).await.expect("bind").is_none(), "locked");
    directory.lockout().expect("a lockout").unlock(&bob).await.expect("unlocked");
    assert!(directory.authenticate(&bob, &secret("bob-demo-Passw0rd")).await.expect("bind").is_some(), "open again");

    // A reset unlocks as well.
    for _ in 0..3 {
        assert!(directory.authenticate(&bob, &secret("not-bobs-password")).await.expect("bind").is_none());
    }
    directory.set_password(&bob, &password("Bob-reset-Passw0rd-2")).await.expect("reset");
    assert!(directory.authenticate(&bob, &secret("Bob-reset-Passw0rd-2")).await.expect("bind").is_some());
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

/// The whole product on OpenLDAP: carol signs in with her directory password, registers her
/// email, resets her password by email; the directory then takes the new password and refuses
/// the old; her current password is refused in words, and the token stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carol_resets_her_directory_password_through_the_product() {
    use serde_json::json;
    let settings = openldap_settings();
    let overrides: Vec<(String, String)> = [
        ("SSPR_DIRECTORY", "ldap".to_owned()),
        ("SSPR_LDAP_FLAVOUR", "openldap".to_owned()),
        ("SSPR_LDAP_URL", settings.url.clone()),
        ("SSPR_LDAP_BIND_DN", settings.bind_dn.clone()),
        ("SSPR_LDAP_BASE_DN", settings.base_dn.clone()),
        ("SSPR_LDAP_CA_FILE", env("SSPR_TEST_SLAPD_CA")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    use secrecy::ExposeSecret as _;
    let secrets = json!({
        "pepper": "c3NwciB0ZXN0IHBlcHBlciBvZiB0aGlydHktdHdvIGJ5dGVzIQ==",
        "ldap_bind_password": settings.bind_password.expose_secret(),
    });
    let server = crate::support::start_with(crate::support::Backend::Embedded, overrides, Some(secrets)).await;
    let token = server.sign_in("carol", "carol-demo-Passw0rd").await.expect("carol signs in against OpenLDAP");
    let email = "carol@example.com";
    crate::flows::register(&server, &token, "email", email).await;

    let r = server.start_reset("carol").await;
    let session = r.body["session"].as_str().expect("session").to_owned();
    let code = server
        .code_sent_by(
            email,
            server.post("/v1/reset/send-code", json!({ "session": session, "method": "email", "destination": email })),
        )
        .await;
    let r = server.post("/v1/reset/verify", json!({ "session": session, "method": "email", "code": code })).await;
    let reset_token = r.body["reset_token"].as_str().expect("a reset token").to_owned();
    let complete = |password: &str| {
        server.post(
            "/v1/reset/complete",
            json!({ "session": session, "reset_token": reset_token, "new_password": password }),
        )
    };
    let r = complete("carol-demo-Passw0rd").await;
    assert_eq!((r.status, r.error()), (422, "password_rejected"), "{r:?}");
    assert!(r.body["reasons"][0].as_str().is_some_and(|m| m.contains("your current password")), "{r:?}");
    let r = complete("Carol-new-Passw0rd-3").await;
    assert_eq!(r.status, 200, "the token survived the refusal: {r:?}");

    let directory = openldap();
    assert!(directory.authenticate(&name("carol"), &secret("Carol-new-Passw0rd-3")).await.expect("bind").is_some());
    assert!(directory.authenticate(&name("carol"), &secret("carol-demo-Passw0rd")).await.expect("bind").is_none());
    let told = server.messages_to(email).await;
    assert!(told.last().is_some_and(|m| m.contains("password was changed")), "{told:?}");
}
