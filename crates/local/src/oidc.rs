//! Sign-in through the organisation's OpenID Connect issuer, in the local server: a bearer JWT
//! is checked as API Gateway's JWT authorizer checks it in AWS (docs/architecture.md, "Sign-in"):
//! its signature against the issuer's published keys (found through the issuer's discovery
//! document, cached, fetched again for a key id not seen yet), an allowed algorithm, `iss`,
//! `aud` or `client_id`, `exp` and `nbf`. The claims then name the person as they do behind the
//! authorizer ([`JwtClaims::person`]).

use std::time::{Duration, Instant};

use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sspr_core::registration::SignedIn;
use sspr_http::{ApiError, Authenticator, JwtClaims};
use tokio::sync::Mutex;

use crate::signin::bearer;

/// The algorithms a token may be signed with: the asymmetric ones the authorizer accepts. A
/// token naming another (`none`, or an HMAC one, which would turn a public key into a secret)
/// is refused before any key is looked at.
pub const ALGORITHMS: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256];

/// The least time between two fetches of the issuer's keys prompted by an unknown key id, so
/// tokens with made-up key ids cannot make the server hammer the issuer.
pub const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(5);

/// How long fetched keys are used before they are fetched again anyway.
const KEYS_KEPT: Duration = Duration::from_secs(3600);

/// The clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// What the local server is told of its issuer (`SSPR_OIDC_ISSUER`, `SSPR_OIDC_AUDIENCE`,
/// `SSPR_OIDC_SCOPES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer's identifier, exactly as its tokens' `iss` (no trailing slash added or taken).
    pub issuer: String,
    /// The page's client id: a token's `aud` must hold it, or its `client_id` be it.
    pub audience: String,
    /// The scopes the page asks for.
    pub scopes: String,
}

impl OidcSettings {
    /// Both of issuer and audience, or neither (local sign-in); an issuer must be `https`, or
    /// `http` on a loopback address.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let (issuer, audience) = match (get("SSPR_OIDC_ISSUER"), get("SSPR_OIDC_AUDIENCE")) {
            (None, None) => return Ok(None),
            (Some(issuer), Some(audience)) => (issuer, audience),
            _ => return Err("SSPR_OIDC_ISSUER and SSPR_OIDC_AUDIENCE are set together, or neither".to_owned()),
        };
        let url = reqwest::Url::parse(&issuer).map_err(|e| format!("SSPR_OIDC_ISSUER: {e}"))?;
        if !https_or_loopback(&url) {
            return Err("SSPR_OIDC_ISSUER is an https URL (http only on a loopback address)".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err("SSPR_OIDC_ISSUER has no query, fragment or user".to_owned());
        }
        let scopes = get("SSPR_OIDC_SCOPES").unwrap_or_else(|| "openid email profile".to_owned());
        Ok(Some(Self { issuer, audience, scopes }))
    }

    /// The issuer's origin (scheme, host and port), which the pages may fetch from.
    pub fn origin(&self) -> String {
        reqwest::Url::parse(&self.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }

    /// `config.json` for the pages: where to sign in, as whom, and where the API is.
    pub fn page_config(&self) -> Value {
        serde_json::json!({
            "issuer": self.issuer,
            "client_id": self.audience,
            "scopes": self.scopes,
            "api_base": "",
        })
    }
}

/// `config.json` without an issuer: the pages use the local sign-in.
pub static LOCAL_PAGE_CONFIG: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || serde_json::json!({ "issuer": null, "client_id": null, "scopes": null, "api_base": "" }),
);

/// Checks the issuer's bearer tokens.
pub struct OidcSignIn {
    settings: OidcSettings,
    claims: JwtClaims,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    jwks_uri: Option<String>,
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    /// Where the page exchanges its code: another origin than the issuer's at some issuers
    /// (a Cognito user pool's is its sign-in domain).
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// Why a token was refused: said in the log, never to the caller (who gets 401).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not a JWT, or its algorithm is not allowed: {0}")]
    Header(String),
    #[error("the algorithm {0:?} is not allowed")]
    Algorithm(Algorithm),
    #[error("no key of the issuer has the token's key id")]
    UnknownKey,
    #[error("the issuer's keys could not be fetched: {0}")]
    Issuer(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the token is for another client")]
    Audience,
}

impl OidcSignIn {
    pub fn new(settings: OidcSettings, claims: JwtClaims) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { settings, claims, http, keys: Mutex::new(Keys::default()) }
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The origins the registration page fetches from: the issuer's (discovery) and its token
    /// endpoint's, as the issuer's discovery document gives it now. When the document cannot be
    /// read, the issuer's alone (and the page's sign-in fails until the server is restarted
    /// with the issuer reachable, which the log says).
    /// The document read here also gives the key set's address to the token checks.
    pub async fn page_origins(&self) -> Vec<String> {
        let mut origins = vec![self.settings.origin()];
        match self.discover().await {
            Ok(discovery) => {
                self.keys.lock().await.jwks_uri = Some(discovery.jwks_uri.clone());
                let token = discovery.token_endpoint.as_deref().and_then(|t| reqwest::Url::parse(t).ok());
                if let Some(origin) = token.map(|t| t.origin().ascii_serialization()) {
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the issuer's discovery document could not be read: the pages may reach only the issuer's origin")
            }
        }
        origins
    }

    /// The token's claims, when every check passes.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Value>, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| Refused::Header(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Refused::Algorithm(header.alg));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        // `aud` or `client_id`, as the authorizer: checked below.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Refused::Invalid(e.to_string()))?;
        let claims = data.claims;
        let audience = &self.settings.audience;
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        } || claims.get("client_id").and_then(Value::as_str) == Some(audience);
        if !for_us {
            return Err(Refused::Audience);
        }
        Ok(claims)
    }

    /// The issuer's key with id `kid` (or its only key, for a token without one): from the
    /// keys fetched before, else fetched again (at most every [`REFETCH_AT_MOST_EVERY`]).
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, Refused> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|at| at.elapsed() > KEYS_KEPT);
        let known = keys.set.as_ref().and_then(|set| find(set, kid)).is_some();
        let may_refetch = keys.fetched.is_none_or(|at| at.elapsed() > REFETCH_AT_MOST_EVERY);
        if stale || (!known && may_refetch) {
            self.fetch(&mut keys).await?;
        }
        let jwk = keys.set.as_ref().and_then(|set| find(set, kid)).ok_or(Refused::UnknownKey)?;
        DecodingKey::from_jwk(jwk).map_err(|e| Refused::Invalid(e.to_string()))
    }

    async fn fetch(&self, keys: &mut Keys) -> Result<(), Refused> {
        if keys.jwks_uri.is_none() {
            keys.jwks_uri = Some(self.discover().await?.jwks_uri);
        }
        let jwks_uri = keys.jwks_uri.clone().unwrap_or_default();
        keys.fetched = Some(Instant::now());
        keys.set = Some(self.get_json(&jwks_uri).await?);
        Ok(())
    }

    /// The issuer's discovery document, which must name the issuer configured.
    async fn discover(&self) -> Result<Discovery, Refused> {
        let issuer = &self.settings.issuer;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer != *issuer {
            return Err(Refused::Issuer(format!("the discovery document names the issuer {}", discovery.issuer)));
        }
        Ok(discovery)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Refused> {
        let response = self.http.get(url).send().await.map_err(|e| Refused::Issuer(format!("{url}: {e}")))?;
        let response = response.error_for_status().map_err(|e| Refused::Issuer(format!("{url}: {e}")))?;
        response.json::<T>().await.map_err(|e| Refused::Issuer(format!("{url}: {e}")))
    }
}

/// Whether `url` is https, or http on a loopback address (a test, or a server on this machine).
pub fn https_or_loopback(url: &reqwest::Url) -> bool {
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// The key `kid` names; without a key id, the set's only signing key.
fn find<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a jsonwebtoken::jwk::Jwk> {
    match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
}

/// A claim as API Gateway hands it to a function: a string as it is, anything else as JSON.
fn as_authorizer_gives(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait::async_trait]
impl Authenticator for OidcSignIn {
    async fn signed_in(&self, parts: &Parts) -> Result<SignedIn, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        match self.verify(token).await {
            Ok(claims) => self.claims.person(|name| claims.get(name).map(as_authorizer_gives)),
            Err(refused) => {
                tracing::info!(reason = %refused, "a bearer token was refused");
                Err(ApiError::unauthenticated())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OidcSettings;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<OidcSettings>, String> {
        OidcSettings::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn an_issuer_and_an_audience_together_https_or_loopback() {
        assert_eq!(settings(&[]), Ok(None), "local sign-in");
        let set = settings(&[("SSPR_OIDC_ISSUER", "https://id.example.com"), ("SSPR_OIDC_AUDIENCE", "page")])
            .expect("valid")
            .expect("set");
        assert_eq!((set.issuer.as_str(), set.audience.as_str()), ("https://id.example.com", "page"));
        assert_eq!(set.scopes, "openid email profile");
        assert_eq!(set.page_config()["client_id"], "page");
        assert!(settings(&[("SSPR_OIDC_ISSUER", "https://id.example.com")]).is_err(), "no audience");
        assert!(settings(&[("SSPR_OIDC_AUDIENCE", "page")]).is_err(), "no issuer");
        for bad in ["http://id.example.com", "ftp://127.0.0.1", "https://id.example.com/?x=1", "not a url"] {
            assert!(settings(&[("SSPR_OIDC_ISSUER", bad), ("SSPR_OIDC_AUDIENCE", "page")]).is_err(), "{bad}");
        }
        let local = settings(&[("SSPR_OIDC_ISSUER", "http://127.0.0.1:4000"), ("SSPR_OIDC_AUDIENCE", "page")]);
        assert!(local.is_ok_and(|s| s.is_some()), "http on loopback");
    }
}
