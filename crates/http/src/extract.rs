//! A JSON body extractor whose every refusal is a 4xx `{error, message}`: wrong content type,
//! oversized body, malformed JSON, wrong types and unknown fields.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (is_json, bytes) = read(req, state).await?;
        if !is_json {
            return Err(not_json());
        }
        parse(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: no body at all (or an empty one) is `None`; anything sent
/// is held to the rules of [`ApiJson`].
pub struct MaybeJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (is_json, bytes) = read(req, state).await?;
        if bytes.is_empty() {
            return Ok(MaybeJson(None));
        }
        if !is_json {
            return Err(not_json());
        }
        parse(&bytes).map(|t| MaybeJson(Some(t)))
    }
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send the request body as application/json.",
    )
}

/// Whether the body is declared JSON, and the body, within the size limit.
async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<(bool, Bytes), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "The request body is too large.")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "The request body could not be read.")
        }
    })?;
    Ok((is_json, bytes))
}

/// Parses a body; the message names the problem but never echoes the values sent.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "The request body is not valid JSON.")
            }
            Category::Data => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "The request body has a missing, unknown or wrongly typed field.",
            ),
        }
    })
}
