//! Local sign-in for the registration page (local server only): the configured directory
//! checks the password, and a short-lived token signed with a per-process key stands in for
//! the JWT that API Gateway verifies in AWS.
//!
//! Safe to leave running (docs/security.md, "The local server, safe to leave running"): five
//! wrong passwords for a name within fifteen minutes close that name's sign-in until the oldest
//! of them is fifteen minutes old (whether or not the name exists); the token is never cached;
//! and a token issued before the person's sessions were last ended (a reset does that) is void.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sspr_core::ports::{Authenticate, Clock, Rng};
use sspr_core::registration::SignedIn;
use sspr_core::types::{Timestamp, Username};
use sspr_http::extract::ApiJson;
use sspr_http::{ApiError, Authenticator};

/// How long a local sign-in lasts.
const TOKEN_TTL_SECS: i64 = 8 * 3600;

/// Wrong passwords for one name within [`FAILURE_WINDOW_SECS`] that close its sign-in.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;

/// Names whose failures are remembered before the stale ones are dropped.
const REMEMBERED_NAMES: usize = 10_000;

#[derive(Clone)]
pub struct LocalSignIn {
    key: Arc<[u8; 32]>,
    clock: Arc<dyn Clock>,
    directory: Arc<dyn Authenticate>,
    /// The times of recent wrong passwords, by the name given (lower case).
    failures: Arc<Mutex<HashMap<String, Vec<i64>>>>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    groups: Vec<String>,
    iat: i64,
    /// How many times the person's sessions had been ended when the token was issued.
    #[serde(default)]
    gen: u64,
}

impl LocalSignIn {
    pub fn new(rng: &dyn Rng, clock: Arc<dyn Clock>, directory: Arc<dyn Authenticate>) -> Self {
        let mut key = [0u8; 32];
        rng.fill(&mut key);
        Self { key: Arc::new(key), clock, directory, failures: Arc::default() }
    }

    /// When the name's sign-in opens again, if it is closed now.
    fn closed_until(&self, name: &str) -> Option<i64> {
        let now = self.clock.now().0;
        let mut failures = self.failures.lock().ok()?;
        let times = failures.get_mut(name)?;
        times.retain(|t| now - t < FAILURE_WINDOW_SECS);
        (times.len() >= MAX_FAILURES).then(|| times[times.len() - MAX_FAILURES] + FAILURE_WINDOW_SECS)
    }

    fn failed(&self, name: &str) {
        let now = self.clock.now().0;
        if let Ok(mut failures) = self.failures.lock() {
            if failures.len() >= REMEMBERED_NAMES {
                failures.retain(|_, times| times.iter().any(|t| now - t < FAILURE_WINDOW_SECS));
            }
            failures.entry(name.to_owned()).or_default().push(now);
        }
    }

    fn succeeded(&self, name: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(name);
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&*self.key).expect("HMAC accepts any key length")
    }

    fn issue(&self, username: &Username, groups: Vec<String>) -> String {
        let gen = self.directory.sign_outs(username);
        let claims = Claims { sub: username.to_string(), groups, iat: self.clock.now().0, gen };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn check(&self, token: &str) -> Option<SignedIn> {
        let (payload, signature) = token.split_once('.')?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let now = self.clock.now().0;
        if now.saturating_sub(claims.iat) > TOKEN_TTL_SECS {
            return None;
        }
        let username = Username::parse(&claims.sub).ok()?;
        // Sessions ended since (a password reset): the token went with them.
        if self.directory.sign_outs(&username) != claims.gen {
            return None;
        }
        Some(SignedIn { username, groups: claims.groups, signed_in_at: Some(Timestamp(claims.iat)) })
    }
}

#[async_trait::async_trait]
impl Authenticator for LocalSignIn {
    async fn signed_in(&self, parts: &Parts) -> Result<SignedIn, ApiError> {
        bearer(parts).and_then(|token| self.check(token)).ok_or_else(ApiError::unauthenticated)
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct SignInResponse {
    token: String,
}

pub async fn sign_in(
    State(auth): State<LocalSignIn>,
    ApiJson(req): ApiJson<SignInRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let failed =
        || ApiError::new(StatusCode::UNAUTHORIZED, "signin_failed", "The username or password is not correct.");
    let username = Username::parse(&req.username).map_err(|_| failed())?;
    // Counted by the name given, known or not, so the limit tells nothing of who exists.
    let name = username.as_str().to_lowercase();
    if let Some(until) = auth.closed_until(&name) {
        let wait = (until - auth.clock.now().0).max(1);
        let minutes = (wait + 59) / 60;
        let mut closed = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many wrong passwords for this name. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        );
        // As every answer over a limit: the wait in the body too, and as Retry-After.
        closed.retry_after = std::num::NonZeroU32::new(u32::try_from(wait).unwrap_or(u32::MAX));
        return Err(closed);
    }
    let password = SecretString::from(req.password);
    match auth.directory.authenticate(&username, &password).await {
        Ok(Some(user)) => {
            auth.succeeded(&name);
            let token = Json(SignInResponse { token: auth.issue(&user.username, user.groups) });
            Ok(([(header::CACHE_CONTROL, "no-store")], token).into_response())
        }
        Ok(None) => {
            auth.failed(&name);
            Err(failed())
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in could not reach the directory");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "directory_unavailable",
                "Your organisation's directory cannot be reached just now. Try again in a moment.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sspr_core::ports::{ManualClock, SystemRng};
    use sspr_embedded::{DirectorySeed, EmbeddedDirectory};

    #[test]
    fn tokens_are_signed_and_expire() {
        let clock = ManualClock::new(Timestamp(1_000_000));
        let directory = Arc::new(EmbeddedDirectory::open(&DirectorySeed { users: vec![] }, None).expect("dir"));
        let auth = LocalSignIn::new(&SystemRng, Arc::new(clock.clone()), directory.clone());
        let token = auth.issue(&Username::parse("alice").expect("name"), vec!["g".into()]);
        assert_eq!(auth.check(&token).map(|s| s.username.to_string()), Some("alice".into()));
        let other = LocalSignIn::new(&SystemRng, Arc::new(clock.clone()), directory);
        assert!(other.check(&token).is_none(), "another key does not accept it");
        let (payload, sig) = token.split_once('.').expect("two parts");
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","groups":[],"iat":1000000}"#));
        assert!(auth.check(&forged).is_none());
        assert!(auth.check(payload).is_none());
        clock.advance(TOKEN_TTL_SECS + 1);
        assert!(auth.check(&token).is_none(), "expired");
    }
}
