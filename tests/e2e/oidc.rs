//! The local server signed in through an OpenID Connect issuer (`SSPR_OIDC_ISSUER`,
//! `SSPR_OIDC_AUDIENCE`): bearer JWTs are checked as API Gateway's JWT authorizer checks them.
//! The issuer here is a loopback server of the test's own that publishes a discovery document
//! and a key set, so that tokens can be made that a real issuer never hands out: expired, for
//! another client, from another issuer, unsigned, or signed by a key it does not publish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use sspr_core::ports::Rng;

use crate::support::{start_with, Backend, TestServer, ALICE};

const CLIENT: &str = "sspr-register-page";

/// A signing key of the test issuer: ES256, with its key id.
struct Key {
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
}

impl Key {
    fn new(kid: &str) -> Self {
        let mut bytes = [0u8; 32];
        sspr_core::ports::SystemRng.fill(&mut bytes);
        let secret = p256::SecretKey::from_slice(&bytes).expect("a P-256 key");
        let der = secret.to_pkcs8_der().expect("PKCS#8");
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256).expect("its public JWK");
        public.common.key_id = Some(kid.to_owned());
        Self { kid: kid.to_owned(), encoding, public }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed")
    }
}

/// The test's issuer on loopback: its discovery document and the keys it publishes now.
struct Issuer {
    url: String,
    published: Arc<Mutex<Vec<Jwk>>>,
    key_fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start(keys: &[&Key]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let published = Arc::new(Mutex::new(keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>()));
        let key_fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/auth"),
            // At another origin, as a Cognito pool's sign-in domain is: the pages' policy allows it.
            "token_endpoint": url.replace("127.0.0.1", "localhost") + "/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let (keys, fetches) = (Arc::clone(&published), Arc::clone(&key_fetches));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
            .route(
                "/jwks",
                get(move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Json(JwkSet { keys: keys.lock().expect("keys").clone() })
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, published, key_fetches, task }
    }

    fn publish(&self, key: &Key) {
        self.published.lock().expect("keys").push(key.public.clone());
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// The claims of a good ID token for alice, signed in just now.
fn claims(issuer: &Issuer) -> Value {
    let now = now();
    json!({
        "iss": issuer.url,
        "aud": CLIENT,
        "sub": "0b6c1e1a-alice",
        "cognito:username": ALICE,
        "cognito:groups": ["SSPR-Users"],
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
    })
}

async fn server_for(issuer: &Issuer) -> TestServer {
    let settings =
        vec![("SSPR_OIDC_ISSUER".to_owned(), issuer.url.clone()), ("SSPR_OIDC_AUDIENCE".to_owned(), CLIENT.to_owned())];
    start_with(Backend::Embedded, settings, None).await
}

async fn status_with(server: &TestServer, token: &str) -> u16 {
    server.call("GET", "/v1/me/registration", Some(token), None).await.status
}

#[tokio::test]
async fn the_issuers_tokens_sign_people_in_and_no_other_token_does() {
    let key = Key::new("key-1");
    let issuer = Issuer::start(&[&key]).await;
    let server = server_for(&issuer).await;

    // The pages learn where to sign in; the local sign-in is gone.
    let config = server.call("GET", "/config.json", None, None).await;
    assert_eq!(config.status, 200);
    assert_eq!(
        config.body,
        json!({ "issuer": issuer.url, "client_id": CLIENT, "scopes": "openid email profile", "api_base": "" })
    );
    let local = server.call("POST", "/v1/local/signin", None, Some(json!({"username": ALICE, "password": "x"}))).await;
    assert_eq!(local.status, 404, "no local sign-in beside the issuer");
    // The page may fetch from the issuer (discovery) and its token endpoint, and nowhere else.
    let page = server.http.get(format!("{}/register", server.url)).send().await.expect("the page");
    let policy = page.headers()["content-security-policy"].to_str().expect("ASCII").to_owned();
    let token_origin = issuer.url.replace("127.0.0.1", "localhost");
    assert!(policy.contains(&format!("connect-src 'self' {} {token_origin};", issuer.url)), "{policy}");

    let good = key.sign(&claims(&issuer));
    let r = server.call("GET", "/v1/me/registration", Some(&good), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    // An access token names the client in client_id rather than aud (Cognito's do).
    let mut access = claims(&issuer);
    access.as_object_mut().expect("claims").remove("aud");
    access["client_id"] = json!(CLIENT);
    assert_eq!(status_with(&server, &key.sign(&access)).await, 200, "client_id instead of aud");

    let changed = |claim: &str, value: Value| {
        let mut c = claims(&issuer);
        c[claim] = value;
        c
    };
    let refused: Vec<(&str, String)> = vec![
        ("another issuer", key.sign(&changed("iss", json!("https://id.example.com")))),
        ("another client", key.sign(&changed("aud", json!("another-client")))),
        ("expired an hour ago", key.sign(&changed("exp", json!(now() - 3600)))),
        ("not valid for an hour", key.sign(&changed("nbf", json!(now() + 3600)))),
        ("no expiry", {
            let mut c = claims(&issuer);
            c.as_object_mut().expect("claims").remove("exp");
            key.sign(&c)
        }),
        ("signed by a key the issuer does not publish, under its key id", Key::new("key-1").sign(&claims(&issuer))),
        ("signed by an unknown key id", Key::new("key-elsewhere").sign(&claims(&issuer))),
        ("unsigned (alg none)", {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
            let body = URL_SAFE_NO_PAD.encode(claims(&issuer).to_string());
            format!("{header}.{body}.")
        }),
        ("HS256 keyed with the published key", {
            let public = serde_json::to_vec(&key.public).expect("jwk");
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("key-1".into());
            jsonwebtoken::encode(&header, &claims(&issuer), &EncodingKey::from_secret(&public)).expect("signed")
        }),
        ("a good token's signature on other claims", {
            let (head, sig) = (good.split('.').next().expect("header"), good.rsplit('.').next().expect("sig"));
            let mut other = claims(&issuer);
            other["cognito:username"] = json!("admin");
            format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(other.to_string()))
        }),
        ("not a JWT", "not-a-token".to_owned()),
    ];
    for (what, token) in refused {
        crate::support::record_secret(&token);
        let r = server.call("GET", "/v1/me/registration", Some(&token), None).await;
        assert_eq!((r.status, r.error()), (401, "unauthenticated"), "{what}: {r:?}");
    }
    let r = server.call("GET", "/v1/me/registration", None, None).await;
    assert_eq!(r.status, 401, "no token");

    // A sign-in that is not recent is enough to look, not to add a method.
    let mut earlier = claims(&issuer);
    earlier["auth_time"] = json!(now() - 3600);
    let stale = key.sign(&earlier);
    assert_eq!(status_with(&server, &stale).await, 200);
    let r = server
        .call("POST", "/v1/me/methods/email", Some(&stale), Some(json!({"destination": "alice@example.com"})))
        .await;
    assert_eq!((r.status, r.error()), (403, "recent_signin_required"), "{r:?}");
    let r = server
        .call("POST", "/v1/me/methods/email", Some(&good), Some(json!({"destination": "alice@example.com"})))
        .await;
    assert_eq!(r.status, 202, "{r:?}");
}

#[tokio::test]
async fn a_new_key_of_the_issuer_is_fetched_when_a_token_names_it_and_not_more_often() {
    let first = Key::new("key-1");
    let issuer = Issuer::start(&[&first]).await;
    let server = server_for(&issuer).await;
    assert_eq!(status_with(&server, &first.sign(&claims(&issuer))).await, 200);
    assert_eq!(issuer.key_fetches.load(Ordering::SeqCst), 1, "fetched once, then kept");
    assert_eq!(status_with(&server, &first.sign(&claims(&issuer))).await, 200);
    assert_eq!(issuer.key_fetches.load(Ordering::SeqCst), 1);

    // The issuer rotates to a new key. Right after a fetch, a token naming an unknown key id is
    // refused without asking again (made-up key ids cannot make the server hammer the issuer).
    let second = Key::new("key-2");
    issuer.publish(&second);
    let token = second.sign(&claims(&issuer));
    assert_eq!(status_with(&server, &token).await, 401);
    assert_eq!(issuer.key_fetches.load(Ordering::SeqCst), 1);
    // A while later the unknown key id makes the server fetch the keys again, and it is found.
    tokio::time::sleep(sspr_local::oidc::REFETCH_AT_MOST_EVERY).await;
    assert_eq!(status_with(&server, &token).await, 200);
    assert_eq!(issuer.key_fetches.load(Ordering::SeqCst), 2);
    assert_eq!(status_with(&server, &first.sign(&claims(&issuer))).await, 200, "the first key still works");
    assert_eq!(issuer.key_fetches.load(Ordering::SeqCst), 2);
}
