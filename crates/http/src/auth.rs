//! Who is calling `/v1/me/*`: in AWS, the claims the HTTP API JWT authorizer verified; in the
//! local server, its own sign-in tokens or, with an OpenID Connect issuer configured, the
//! issuer's JWTs checked as the authorizer checks them. All give the same [`SignedIn`].

use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use sspr_core::registration::SignedIn;
use sspr_core::types::{Timestamp, Username};

use crate::error::ApiError;

#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    async fn signed_in(&self, parts: &Parts) -> Result<SignedIn, ApiError>;
}

/// Reads the identity from the JWT authorizer's claims (API Gateway HTTP API, payload 2.0).
#[derive(Debug, Clone)]
pub struct JwtClaims {
    pub username_claim: String,
    pub groups_claim: String,
}

impl Default for JwtClaims {
    fn default() -> Self {
        Self { username_claim: "cognito:username".into(), groups_claim: "cognito:groups".into() }
    }
}

/// HTTP API hands list claims over as one string, `[a b c]`; a JSON array is accepted too.
fn parse_groups(raw: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

impl JwtClaims {
    /// The person a verified token names, its claims read by `claim` (each as the authorizer
    /// hands it over: a string): the username claim, the groups claim, and when they signed
    /// in (`auth_time`, else `iat`). No username: not signed in.
    pub fn person(&self, claim: impl Fn(&str) -> Option<String>) -> Result<SignedIn, ApiError> {
        let username =
            claim(&self.username_claim).and_then(|u| Username::parse(&u).ok()).ok_or_else(ApiError::unauthenticated)?;
        let groups = claim(&self.groups_claim).map(|g| parse_groups(&g)).unwrap_or_default();
        let signed_in_at =
            claim("auth_time").or_else(|| claim("iat")).and_then(|t| t.parse::<i64>().ok()).map(Timestamp);
        Ok(SignedIn { username, groups, signed_in_at })
    }
}

#[async_trait::async_trait]
impl Authenticator for JwtClaims {
    async fn signed_in(&self, parts: &Parts) -> Result<SignedIn, ApiError> {
        let Some(RequestContext::ApiGatewayV2(context)) = parts.extensions.get::<RequestContext>() else {
            return Err(ApiError::unauthenticated());
        };
        let claims = context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims)
            .ok_or_else(ApiError::unauthenticated)?;
        self.person(|name| claims.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_groups;

    #[test]
    fn group_claims_in_both_shapes() {
        assert_eq!(parse_groups("[SSPR-Users SSPR-Admins]"), vec!["SSPR-Users", "SSPR-Admins"]);
        assert_eq!(parse_groups("[\"a\",\"b\"]"), vec!["a", "b"]);
        assert_eq!(parse_groups("[]"), Vec::<String>::new());
    }
}
