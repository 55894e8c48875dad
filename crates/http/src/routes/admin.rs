//! The administrators' routes, under `/v1/admin`: the policy, the audit log, the report, and
//! clearing a person's registration. A sign-in is not enough: the identity must carry an
//! administrators' group, checked here in the code as well as by the authorizer's audience.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::Json;
use serde::Deserialize;
use sspr_core::admin::Administrator;
use sspr_core::audit::{parse_time, ActivityQuery, EventKind};
use sspr_core::policy::PolicyDocument;
use sspr_core::types::Username;
use sspr_core::FlowError;

use super::{Access, ApiState, Function, Needs, Route};
use crate::error::ApiError;
use crate::extract::ApiJson;

pub(super) fn routes() -> Vec<Route> {
    let route = |method, path, handler| Route {
        method,
        path,
        function: Function::Admin,
        access: Access::Admin,
        needs: Needs::NONE,
        handler,
    };
    vec![
        route(Method::GET, "/v1/admin/policy", || get(policy_document)),
        route(Method::PUT, "/v1/admin/policy", || put(replace_policy)),
        route(Method::GET, "/v1/admin/activity", || get(activity)),
        route(Method::GET, "/v1/admin/report", || get(report)),
        route(Method::DELETE, "/v1/admin/users/{username}/registration", || delete(clear_registration)),
    ]
}

/// A signed-in administrator: 401 without a sign-in, 403 without an administrators' group.
struct Admin(Administrator);

impl axum::extract::FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let who = state.auth.signed_in(parts).await?;
        Ok(Admin(state.sspr.administrator(&who)?))
    }
}

async fn policy_document(State(s): State<ApiState>, Admin(admin): Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.sspr.policy_document(&admin).await?))
}

async fn replace_policy(
    State(s): State<ApiState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    let document = PolicyDocument::parse(&body).map_err(FlowError::InvalidPolicy)?;
    Ok(Json(s.sspr.replace_policy(&admin, document).await?))
}

fn bad_query(what: &'static str, reason: &'static str) -> ApiError {
    FlowError::InvalidInput(sspr_core::types::ParseError { field: what, reason }).into()
}

fn query_error(_: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "The query has an unknown or malformed parameter.")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityParams {
    from: Option<String>,
    to: Option<String>,
    user: Option<String>,
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn activity(
    State(s): State<ApiState>,
    Admin(_admin): Admin,
    params: Result<Query<ActivityParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(p) = params.map_err(query_error)?;
    let time = |value: Option<String>, field: &'static str| {
        value.map(|v| parse_time(&v).ok_or_else(|| bad_query(field, "is not a date (YYYY-MM-DD) or an RFC 3339 time")))
    };
    let query = ActivityQuery {
        from: time(p.from, "from").transpose()?,
        to: time(p.to, "to").transpose()?,
        user: p.user.map(|u| Username::parse(&u).map_err(FlowError::InvalidInput)).transpose()?,
        kind: p
            .kind
            .map(|k| EventKind::parse(&k).ok_or_else(|| bad_query("kind", "is not a kind of event")))
            .transpose()?,
        cursor: p.cursor,
        limit: match p.limit {
            None => 50,
            Some(l) => l
                .parse()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| bad_query("limit", "must be within 1–100"))?,
        },
    };
    Ok(Json(s.sspr.activity(&query).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    days: Option<String>,
}

async fn report(
    State(s): State<ApiState>,
    Admin(_admin): Admin,
    params: Result<Query<ReportParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(p) = params.map_err(query_error)?;
    let days = match p.days {
        None => 7,
        Some(d) => {
            d.parse().ok().filter(|d| (1..=90).contains(d)).ok_or_else(|| bad_query("days", "must be within 1–90"))?
        }
    };
    Ok(Json(s.sspr.report(days).await?))
}

async fn clear_registration(
    State(s): State<ApiState>,
    Admin(admin): Admin,
    Path(username): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let username = Username::parse(&username).map_err(FlowError::InvalidInput)?;
    s.sspr.clear_registration(&admin, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
