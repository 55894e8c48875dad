//! The reset routes: anonymous, under `/v1/reset`.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use sspr_core::methods::questions::Answer;
use sspr_core::methods::Proof;
use sspr_core::reset::Completion;
use sspr_core::types::{Code, MethodKind, ResetToken, SessionId, Username};
use sspr_core::FlowError;
use tokio::time::Instant;

use super::{Access, ApiState, Function, Needs, Route};
use crate::error::ApiError;
use crate::extract::ApiJson;

pub(super) fn routes() -> Vec<Route> {
    let route = |method, path, function, needs, handler| Route {
        method,
        path,
        function,
        access: Access::Anonymous,
        needs,
        handler,
    };
    let directory = Needs { directory: true, ..Needs::NONE };
    let senders = Needs { sms: true, voice: true, email: true, ..Needs::NONE };
    let notify = Needs { directory: true, email: true, ..Needs::NONE };
    vec![
        route(Method::GET, "/v1/reset/challenge", Function::Reset, Needs::NONE, || get(new_challenge)),
        route(Method::POST, "/v1/reset/start", Function::Reset, directory, || post(start_reset)),
        route(Method::POST, "/v1/reset/send-code", Function::SendCode, senders, || post(send_code)),
        route(Method::POST, "/v1/reset/questions", Function::Verify, Needs::NONE, || post(reset_questions)),
        route(Method::POST, "/v1/reset/verify", Function::Verify, Needs::NONE, || post(verify_method)),
        route(Method::POST, "/v1/reset/complete", Function::Reset, notify, || post(complete_reset)),
    ]
}

pub(super) fn parse_method(s: &str) -> Result<MethodKind, ApiError> {
    MethodKind::parse(s).map_err(|e| FlowError::InvalidInput(e).into())
}

pub(super) fn parse_code(s: &str) -> Result<Code, ApiError> {
    Code::parse(s).map_err(|e| FlowError::InvalidInput(e).into())
}

fn parse_session(s: &str) -> Result<SessionId, ApiError> {
    // A malformed handle is as good as an unknown one.
    SessionId::parse(s).map_err(|_| FlowError::InvalidSession.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    username: String,
    /// The solved proof-of-work challenge of `GET /v1/reset/challenge`.
    challenge: String,
}

async fn new_challenge(State(s): State<ApiState>) -> impl IntoResponse {
    Json(s.sspr.challenge_for_request().await)
}

async fn start_reset(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let began = Instant::now();
    let username = Username::parse(&req.username).map_err(FlowError::InvalidInput)?;
    let started = s.sspr.start_reset(&username, &req.challenge).await;
    // Not before the floor, whatever the directory answered and how fast.
    no_sooner(began, s.sspr.settings.start_floor_ms).await;
    Ok(Json(started?))
}

/// Waits out what is left of `floor_ms` since `began`: a step before a factor is verified
/// answers no sooner, whoever is asked about (S1 in docs/security.md).
async fn no_sooner(began: Instant, floor_ms: u64) {
    tokio::time::sleep_until(began + std::time::Duration::from_millis(floor_ms)).await;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendCodeRequest {
    session: String,
    method: String,
    destination: String,
    /// A fresh solved challenge: needed for every code after the session's first.
    #[serde(default)]
    challenge: Option<String>,
}

async fn send_code(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<SendCodeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let began = Instant::now();
    let session = parse_session(&req.session)?;
    let method = parse_method(&req.method)?;
    let decided = s.sspr.decide_code(&session, method, &req.destination, req.challenge.as_deref()).await;
    no_sooner(began, s.sspr.settings.step_floor_ms).await;
    let (sent, delivery) = decided?;
    if let Some(delivery) = delivery {
        // Delivered after the answer: a decoy and a real send take the same time (S1 in
        // docs/security.md), and a failed send cannot change the answer.
        let sspr = std::sync::Arc::clone(&s.sspr);
        s.deliveries.start(async move { sspr.deliver(delivery).await });
    }
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    session: String,
}

async fn reset_questions(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<SessionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let began = Instant::now();
    let session = parse_session(&req.session)?;
    let drawn = s.sspr.reset_questions(&session).await;
    no_sooner(began, s.sspr.settings.step_floor_ms).await;
    Ok(Json(drawn?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    session: String,
    method: String,
    /// A code, for every method but security questions.
    #[serde(default)]
    code: Option<String>,
    /// Answers to the questions drawn, for security questions.
    #[serde(default)]
    answers: Option<Vec<GivenAnswer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GivenAnswer {
    id: String,
    answer: String,
}

async fn verify_method(
    State(s): State<ApiState>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let began = Instant::now();
    let session = parse_session(&req.session)?;
    let method = parse_method(&req.method)?;
    let verified = match (method, req.code, req.answers) {
        (MethodKind::Questions, None, Some(given)) => {
            let answers = given
                .into_iter()
                .map(|g| Ok((g.id, Answer::normalise(&g.answer).map_err(FlowError::InvalidInput)?)))
                .collect::<Result<Vec<_>, ApiError>>()?;
            s.sspr.verify_method(&session, method, Proof::Answers(&answers)).await
        }
        (MethodKind::Questions, _, _) => return Err(one_of("answers (and no code)")),
        (_, Some(code), None) => s.sspr.verify_method(&session, method, &parse_code(&code)?).await,
        (_, _, _) => return Err(one_of("code (and no answers)")),
    };
    no_sooner(began, s.sspr.settings.step_floor_ms).await;
    Ok(Json(verified?))
}

fn one_of(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        format!("This method is proved with {expected}."),
    )
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
    let token = ResetToken::parse(&req.reset_token).map_err(|_| FlowError::InvalidToken)?;
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
