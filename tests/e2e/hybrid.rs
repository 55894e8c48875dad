//! The hybrid directory on real servers: the Samba AD domain controller on premises and a
//! Cognito user pool on moto, reached through a loopback proxy that can refuse every
//! connection (Cognito failing mid-flow while Active Directory answers). Both passwords change;
//! with Cognito failing, the AD password stands, the change is answered as partly applied after
//! every attempt was made, and finishing it later writes the cloud half. (What the person is
//! told and the audit event are the flow's, tested in the core with the same directory.)

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sspr_core::hybrid::HybridDirectory;
use sspr_core::password::{NewPassword, PasswordRules};
use sspr_core::ports::{Authenticate, Directory, DirectoryError};
use sspr_core::types::Username;

use crate::support::{self, FaultyProxy, ADMIN, ADMIN_PASSWORD};

fn name(s: &str) -> Username {
    Username::parse(s).expect("name")
}

fn password(s: &str) -> NewPassword {
    NewPassword::parse(s, &PasswordRules::default(), &name("someone")).expect("a valid password")
}

async fn takes(directory: &impl Authenticate, password: &str) -> bool {
    takes_for(directory, ADMIN, password).await
}

async fn takes_for(directory: &impl Authenticate, who: &str, password: &str) -> bool {
    let given = SecretString::from(password.to_owned());
    directory.authenticate(&name(who), &given).await.expect("authenticate").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_writes_active_directory_then_cognito_and_finishes_what_cognito_missed() {
    let sdk = support::sdk().await;
    let pool = support::create_cognito_pool(&sdk).await;
    let cognito = sspr_aws::CognitoDirectory::from_config(&sdk, &pool.pool_id, Some(pool.client_id.clone()));
    let moto = support::moto_url();
    let proxy = FaultyProxy::start(moto.trim_start_matches("http://").trim_end_matches('/').to_owned()).await;
    // Through the proxy, with the SDK's own retries off: every attempt is the directory's.
    let proxied = sdk
        .to_builder()
        .endpoint_url(&proxy.url)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build(),
        )
        .build();
    let cloud = sspr_aws::CognitoDirectory::from_config(&proxied, &pool.pool_id, Some(pool.client_id.clone()));
    let ad = Arc::new(crate::ldap::samba_ad());
    let hybrid = HybridDirectory::new(Arc::clone(&ad), Arc::new(cloud))
        .with_retry_delays(vec![Duration::from_millis(50), Duration::from_millis(50)]);

    // The person and groups are Active Directory's.
    let admin = hybrid.find_user(&name(ADMIN)).await.expect("find").expect("admin");
    assert!(admin.is_member_of("SSPR-Admins"), "{admin:?}");
    assert!(takes(&*ad, ADMIN_PASSWORD).await && takes(&cognito, ADMIN_PASSWORD).await, "the same before");

    // Both take the new password, and neither the old.
    hybrid.set_password(&name(ADMIN), &password("Admin-hybrid-Passw0rd-1")).await.expect("both written");
    assert!(takes(&*ad, "Admin-hybrid-Passw0rd-1").await, "Active Directory");
    assert!(takes(&cognito, "Admin-hybrid-Passw0rd-1").await, "Cognito");
    assert!(!takes(&*ad, ADMIN_PASSWORD).await && !takes(&cognito, ADMIN_PASSWORD).await);

    // Cognito unreachable: Active Directory's change stands; every attempt was made.
    proxy.fail(true);
    let r = hybrid.set_password(&name(ADMIN), &password("Admin-hybrid-Passw0rd-2")).await;
    assert!(matches!(r, Err(DirectoryError::PartlyApplied { .. })), "{r:?}");
    let refused = proxy.refused.load(Ordering::SeqCst);
    assert!(refused >= 3, "three attempts at the cloud, each refused: {refused}");
    assert!(takes(&*ad, "Admin-hybrid-Passw0rd-2").await, "Active Directory has the new password");
    assert!(takes(&cognito, "Admin-hybrid-Passw0rd-1").await, "Cognito still the previous one");

    // Back: finishing writes the cloud half, and only with the password AD holds.
    proxy.fail(false);
    let r = hybrid.finish_password(&name(ADMIN), &password("Not-the-same-Passw0rd-3")).await;
    assert!(matches!(r, Err(DirectoryError::PasswordRejected(_))), "{r:?}");
    hybrid.finish_password(&name(ADMIN), &password("Admin-hybrid-Passw0rd-2")).await.expect("finished");
    assert!(takes(&cognito, "Admin-hybrid-Passw0rd-2").await, "Cognito caught up");
    assert!(takes(&*ad, "Admin-hybrid-Passw0rd-2").await);
}

/// The product assembled with `SSPR_DIRECTORY=hybrid` (Samba AD and the moto user pool, as the
/// configuration names them, Cognito reached through the proxy): erin signs in against Active
/// Directory, registers her email and resets her password, and both directories take it. Then
/// with Cognito unreachable a second reset answers 503 `writeback_incomplete`, in words: Active
/// Directory has the new password, Cognito the previous one, the audit log records it and the
/// notice goes out; once Cognito answers, the same token and password finish it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_through_the_product_writes_both_and_finishes_what_the_cloud_missed() {
    use serde_json::json;
    use sspr_core::audit::{ActivityQuery, EventKind};
    const ERIN: &str = "erin";
    const ERIN_PASSWORD: &str = "erin-demo-Passw0rd";
    let sdk = support::sdk().await;
    let pool = support::create_cognito_pool(&sdk).await;
    let c = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    c.admin_create_user()
        .user_pool_id(&pool.pool_id)
        .username(ERIN)
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
        .send()
        .await
        .expect("erin in the pool");
    c.admin_set_user_password()
        .user_pool_id(&pool.pool_id)
        .username(ERIN)
        .password(ERIN_PASSWORD)
        .permanent(true)
        .send()
        .await
        .expect("erin's password in the pool");
    let proxy =
        FaultyProxy::start(support::moto_url().trim_start_matches("http://").trim_end_matches('/').to_owned()).await;
    let proxied =
        sdk.to_builder().endpoint_url(&proxy.url).retry_config(aws_config::retry::RetryConfig::disabled()).build();
    let more = vec![
        ("SSPR_DIRECTORY".to_owned(), "hybrid".to_owned()),
        ("SSPR_COGNITO_USER_POOL_ID".to_owned(), pool.pool_id.clone()),
        ("SSPR_COGNITO_CLIENT_ID".to_owned(), pool.client_id.clone()),
    ];
    let product = crate::ldap::Server::ActiveDirectory.product_with(None, more, Some(proxied)).await;
    let ad = crate::ldap::samba_ad();
    let cognito = sspr_aws::CognitoDirectory::from_config(&sdk, &pool.pool_id, Some(pool.client_id.clone()));

    let token = product.sign_in(ERIN, ERIN_PASSWORD).await.expect("erin signs in against Active Directory");
    let email = "erin@example.com";
    crate::flows::register(&product, &token, "email", email).await;
    // A reset up to its token.
    let verified = || async {
        let (session, _, token) = crate::flows::verified_session_of(&product, ERIN, "email", email).await;
        (session, token)
    };
    let complete = |session: String, token: String, password: &'static str| {
        product
            .post("/v1/reset/complete", json!({ "session": session, "reset_token": token, "new_password": password }))
    };

    let (session, token) = verified().await;
    let first = "Erin-hybrid-Passw0rd-5";
    let r = complete(session, token, first).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(takes_for(&ad, ERIN, first).await && takes_for(&cognito, ERIN, first).await, "both take the new password");
    assert!(!takes_for(&ad, ERIN, ERIN_PASSWORD).await, "Active Directory refuses the old");
    assert!(!takes_for(&cognito, ERIN, ERIN_PASSWORD).await, "Cognito refuses the old");

    let (session, token) = verified().await;
    let second = "Erin-hybrid-Passw0rd-6";
    let told_before = product.messages_to(email).await.len();
    proxy.fail(true);
    let r = complete(session.clone(), token.clone(), second).await;
    assert_eq!((r.status, r.error()), (503, "writeback_incomplete"), "{r:?}");
    assert!(r.body["message"].as_str().is_some_and(|m| m.contains("Press the button again")), "{r:?}");
    assert!(takes_for(&ad, ERIN, second).await, "Active Directory's change stands");
    assert!(takes_for(&cognito, ERIN, first).await, "Cognito still has the previous one");
    let query = ActivityQuery { kind: Some(EventKind::WritebackIncomplete), limit: 10, ..Default::default() };
    let events = product.sspr.activity(&query).await.expect("the audit log").events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].user.as_ref().map(|u| u.as_str()), Some(ERIN));
    let told = product.messages_to(email).await;
    assert_eq!(told.len(), told_before + 1, "told once: {told:?}");
    assert!(told.last().is_some_and(|m| m.contains("password was changed")), "{told:?}");

    proxy.fail(false);
    let r = complete(session, token, second).await;
    assert_eq!(r.status, 200, "finished: {r:?}");
    assert!(takes_for(&cognito, ERIN, second).await, "Cognito caught up");
    assert_eq!(product.messages_to(email).await.len(), told.len(), "not told twice");
}
