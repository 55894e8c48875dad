//! The routes of the signed-in person, under `/v1/me`: their registration of recovery methods.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use sspr_core::registration::SignedIn;
use sspr_core::types::MethodId;
use sspr_core::FlowError;

use super::reset::{parse_code, parse_method};
use super::{Access, ApiState, Function, Needs, Route};
use crate::error::ApiError;
use crate::extract::{ApiJson, MaybeJson};

pub(super) fn routes() -> Vec<Route> {
    let route = |method, path, needs, handler| Route {
        method,
        path,
        function: Function::Register,
        access: Access::SignedIn,
        needs,
        handler,
    };
    let directory = Needs { directory: true, ..Needs::NONE };
    vec![
        route(Method::GET, "/v1/me/registration", directory, || get(registration_status)),
        route(Method::POST, "/v1/me/registration/confirm", directory, || post(confirm_registration)),
        route(Method::POST, "/v1/me/methods/totp", directory, || post(begin_totp)),
        route(Method::GET, "/v1/me/methods/questions", directory, || get(question_bank)),
        route(Method::PUT, "/v1/me/methods/questions", Needs { email: true, ..directory }, || put(register_questions)),
        route(Method::POST, "/v1/me/methods/{method}", Needs::ALL, || post(begin_method)),
        route(Method::POST, "/v1/me/methods/{method}/confirm", Needs { email: true, ..directory }, || {
            post(confirm_method)
        }),
        route(Method::DELETE, "/v1/me/methods/{method}", Needs { email: true, ..directory }, || delete(remove_method)),
    ]
}

/// The signed-in person, or 401.
struct Me(SignedIn);

impl axum::extract::FromRequestParts<ApiState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        state.auth.signed_in(parts).await.map(Me)
    }
}

async fn registration_status(State(s): State<ApiState>, Me(me): Me) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.sspr.registration_status(&me).await?))
}

async fn confirm_registration(
    State(s): State<ApiState>,
    Me(me): Me,
    MaybeJson(_): MaybeJson<EmptyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.sspr.confirm_registration(&me).await?))
}

/// `{}` or no body at all.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyRequest {}

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

/// An authenticator app is added with `{}` or no body at all.
async fn begin_totp(
    State(s): State<ApiState>,
    Me(me): Me,
    MaybeJson(_): MaybeJson<EmptyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.sspr.begin_totp(&me).await?))
}

async fn question_bank(State(s): State<ApiState>, Me(me): Me) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.sspr.question_bank(&me).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterQuestionsRequest {
    answers: Vec<ChosenQuestion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChosenQuestion {
    /// A bank id, or the text of a custom question where the policy allows.
    question: String,
    answer: String,
}

async fn register_questions(
    State(s): State<ApiState>,
    Me(me): Me,
    ApiJson(req): ApiJson<RegisterQuestionsRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let chosen: Vec<_> = req.answers.into_iter().map(|c| (c.question, SecretString::from(c.answer))).collect();
    Ok(Json(s.sspr.register_questions(&me, &chosen).await?))
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
    let id = MethodId::parse(&id).map_err(FlowError::InvalidInput)?;
    Ok(Json(s.sspr.remove_method(&me, &id).await?))
}
