//! The routes and their handlers: parse, call the core, map the result to HTTP.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use sspr_core::registration::SignedIn;
use sspr_core::reset::Completion;
use sspr_core::types::{Code, MethodId, MethodKind, ResetToken, SessionId, Username};
use sspr_core::Sspr;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::extract::{ApiJson, MAX_BODY_BYTES};

/// What every handler needs, built once at start.
#[derive(Clone)]
pub struct ApiState {
    pub sspr: Arc<Sspr>,
    pub auth: Arc<dyn Authenticator>,
}

/// Which routes a binary serves: each Lambda function its own slice, the local server all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// `reset`: challenge, start and complete.
    Reset,
    SendCode,
    Verify,
    /// `register`: everything under `/v1/me`.
    Register,
    All,
}

impl Routes {
    /// The method and path of each route in the slice, as in the SAM template.
    pub fn table(self) -> Vec<(&'static str, &'static str)> {
        let reset = [("GET", "/v1/reset/challenge"), ("POST", "/v1/reset/start"), ("POST", "/v1/reset/complete")];
        let send = [("POST", "/v1/reset/send-code")];
        let verify = [("POST", "/v1/reset/verify")];
        let register = [
            ("GET", "/v1/me/registration"),
            ("POST", "/v1/me/methods/{kind}"),
            ("POST", "/v1/me/methods/{kind}/confirm"),
            ("DELETE", "/v1/me/methods/{id}"),
        ];
        match self {
            Routes::Reset => reset.to_vec(),
            Routes::SendCode => send.to_vec(),
            Routes::Verify => verify.to_vec(),
            Routes::Register => register.to_vec(),
            Routes::All => [&reset[..], &send, &verify, &register].concat(),
        }
    }
}

/// The API router for `routes`, with body limit, error shapes and security headers.
pub fn api(state: ApiState, routes: Routes) -> Router {
    let mut router = Router::new();
    if matches!(routes, Routes::Reset | Routes::All) {
        router = router
            .route("/v1/reset/challenge", get(new_challenge))
            .route("/v1/reset/start", post(start_reset))
            .route("/v1/reset/complete", post(complete_reset));
    }
    if matches!(routes, Routes::SendCode | Routes::All) {
        router = router.route("/v1/reset/send-code", post(send_code));
    }
    if matches!(routes, Routes::Verify | Routes::All) {
        router = router.route("/v1/reset/verify", post(verify_method));
    }
    if matches!(routes, Routes::Register | Routes::All) {
        // One parameter name per segment: `{method}` is a kind for POST and an id for DELETE.
        router = router
            .route("/v1/me/registration", get(registration_status))
            .route("/v1/me/methods/{method}", post(begin_method).delete(remove_method))
            .route("/v1/me/methods/{method}/confirm", post(confirm_method));
    }
    router
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }))
}

fn parse_username(s: &str) -> Result<Username, ApiError> {
    Username::parse(s).map_err(|e| sspr_core::FlowError::InvalidInput(e).into())
}

fn parse_session(s: &str) -> Result<SessionId, ApiError> {
    // A malformed handle is as good as an unknown one.
    SessionId::parse(s).map_err(|_| sspr_core::FlowError::InvalidSession.into())
}

fn parse_method(s: &str) -> Result<MethodKind, ApiError> {
    MethodKind::parse(s).map_err(|e| sspr_core::FlowError::InvalidInput(e).into())
}

fn parse_code(s: &str) -> Result<Code, ApiError> {
    Code::parse(s).map_err(|e| sspr_core::FlowError::InvalidInput(e).into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    username: String,
    /// The solved proof-of-work challenge of `GET /v1/reset/challenge`.
    challenge: String,
}

async fn new_challenge(State(s): State<ApiState>) -> impl IntoResponse {
    Json(s.sspr.new_challenge())
}

async fn start_reset(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let username = parse_username(&req.username)?;
    s.sspr.redeem_challenge(&req.challenge).await?;
    Ok(Json(s.sspr.start_reset(&username).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendCodeRequest {
    session: String,
    method: String,
    destination: String,
}

async fn send_code(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<SendCodeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let session = parse_session(&req.session)?;
    let method = parse_method(&req.method)?;
    let sent = s.sspr.send_code(&session, method, &req.destination).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    session: String,
    method: String,
    code: String,
}

async fn verify_method(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let session = parse_session(&req.session)?;
    let method = parse_method(&req.method)?;
    let code = parse_code(&req.code)?;
    Ok(Json(s.sspr.verify_method(&session, method, &code).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteRequest {
    session: String,
    reset_token: String,
    #[serde(default)]
    new_password: Option<String>,
    #[serde(default)]
    unlock_only: bool,
}

async fn complete_reset(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let session = parse_session(&req.session)?;
    let token = ResetToken::parse(&req.reset_token).map_err(|_| ApiError::from(sspr_core::FlowError::InvalidToken))?;
    let completion = match (req.new_password, req.unlock_only) {
        (Some(password), false) => Completion::NewPassword(SecretString::from(password)),
        (None, true) => Completion::UnlockOnly,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "Send either new_password or unlock_only: true.",
            ))
        }
    };
    Ok(Json(s.sspr.complete_reset(&session, &token, completion).await?))
}

/// The signed-in person, or 401.
struct Me(SignedIn);

impl axum::extract::FromRequestParts<ApiState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        state.auth.signed_in(parts).map(Me)
    }
}

async fn registration_status(State(s): State<ApiState>, Me(me): Me) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.sspr.registration_status(&me).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeginMethodRequest {
    destination: String,
}

async fn begin_method(
    State(s): State<ApiState>,
    Me(me): Me,
    Path(kind): Path<String>,
    ApiJson(req): ApiJson<BeginMethodRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = parse_method(&kind)?;
    let sent = s.sspr.begin_method(&me, kind, &req.destination).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmMethodRequest {
    code: String,
}

async fn confirm_method(
    State(s): State<ApiState>,
    Me(me): Me,
    Path(kind): Path<String>,
    ApiJson(req): ApiJson<ConfirmMethodRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = parse_method(&kind)?;
    let code = parse_code(&req.code)?;
    Ok(Json(s.sspr.confirm_method(&me, kind, &code).await?))
}

async fn remove_method(
    State(s): State<ApiState>,
    Me(me): Me,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = MethodId::parse(&id).map_err(|e| ApiError::from(sspr_core::FlowError::InvalidInput(e)))?;
    Ok(Json(s.sspr.remove_method(&me, &id).await?))
}
