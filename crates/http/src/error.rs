//! Every failure becomes `{error, message}` with a fitting status; internal causes are logged,
//! never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sspr_core::FlowError;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// The field at fault, where one is (a policy value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Where to get help: the policy's helpdesk link, on every reset error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helpdesk: Option<String>,
    /// Seconds to wait before asking again (a limit): sent as `Retry-After` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<std::num::NonZeroU32>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self { status, error, message: message.into(), reasons: None, field: None, helpdesk: None, retry_after: None }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "There is nothing here.")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed here.")
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Sign in first.")
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side. Try again later.")
    }
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        let status = match &e {
            FlowError::InvalidInput(_)
            | FlowError::MethodNotAvailable
            | FlowError::InvalidCode
            | FlowError::WrongAnswers
            | FlowError::NoQuestionsDrawn
            | FlowError::CodeExpired
            | FlowError::UnlockNotAvailable
            | FlowError::NoPendingCode
            | FlowError::NothingToConfirm
            | FlowError::ChallengeFailed
            | FlowError::CountryNotAllowed
            | FlowError::InvalidSession => StatusCode::BAD_REQUEST,
            FlowError::SessionExpired => StatusCode::GONE,
            FlowError::TooManyAttempts | FlowError::OverLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            FlowError::AlreadyVerified | FlowError::TokenUsed | FlowError::Conflict => StatusCode::CONFLICT,
            FlowError::NotVerified
            | FlowError::InvalidToken
            | FlowError::NotEnabled
            | FlowError::RecentSignInRequired => StatusCode::FORBIDDEN,
            FlowError::MethodNotFound | FlowError::NotRegistered => StatusCode::NOT_FOUND,
            FlowError::Forbidden | FlowError::WritebackOff => StatusCode::FORBIDDEN,
            FlowError::StaleVersion => StatusCode::CONFLICT,
            FlowError::InvalidPolicy(_) => StatusCode::UNPROCESSABLE_ENTITY,
            FlowError::PasswordRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            FlowError::Unavailable(cause) => {
                tracing::error!(%cause, "a dependency is unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            FlowError::DirectoryUnavailable(cause) => {
                tracing::error!(%cause, "the directory is unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            FlowError::WritebackIncomplete => StatusCode::SERVICE_UNAVAILABLE,
        };
        let reasons = match &e {
            FlowError::PasswordRejected(reasons) => Some(reasons.clone()),
            _ => None,
        };
        let message = match &e {
            FlowError::InvalidInput(p) => format!("The {} {}.", p.field, p.reason),
            other => other.to_string(),
        };
        let field = match &e {
            FlowError::InvalidPolicy(p) => Some(p.field.clone()),
            FlowError::InvalidInput(p) => Some(p.field.to_owned()),
            _ => None,
        };
        let retry_after = match &e {
            FlowError::OverLimit(over) => {
                std::num::NonZeroU32::new(u32::try_from(over.retry_after.max(1)).unwrap_or(u32::MAX))
            }
            _ => None,
        };
        Self { status, error: e.code(), message, reasons, field, helpdesk: None, retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.get().into());
        }
        response
    }
}
