//! What can go wrong in a flow, in the product's words, each with a stable code for clients.

use crate::ports::{DirectoryError, StoreError, Unavailable};
use crate::types::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    InvalidInput(#[from] ParseError),
    #[error("The anti-automation check failed. Reload the page and try again.")]
    ChallengeFailed,
    #[error("This reset session is not valid. Start again.")]
    InvalidSession,
    #[error("This reset session has expired. Start again.")]
    SessionExpired,
    #[error("This method cannot be used here.")]
    MethodNotAvailable,
    #[error("The code is not correct.")]
    InvalidCode,
    #[error("The code has expired. Ask for a new one.")]
    CodeExpired,
    #[error("One or more answers are not right. Answer the new questions.")]
    WrongAnswers,
    #[error("Ask for the questions to answer first.")]
    NoQuestionsDrawn,
    #[error("Too many wrong attempts. Start again later.")]
    TooManyAttempts,
    #[error("This method is already verified.")]
    AlreadyVerified,
    #[error("Verify your methods before setting a password.")]
    NotVerified,
    #[error("The reset token is not valid.")]
    InvalidToken,
    #[error("The reset token was already used.")]
    TokenUsed,
    #[error("The new password was not accepted.")]
    PasswordRejected(Vec<String>),
    #[error("Your account cannot be unlocked here; reset your password instead.")]
    UnlockNotAvailable,
    #[error("Self-service password reset is not enabled for your account.")]
    NotEnabled,
    #[error("No method with this id is registered.")]
    MethodNotFound,
    #[error("There are no recovery methods to confirm. Register one first.")]
    NothingToConfirm,
    #[error("No code was sent for this method. Ask for a code first.")]
    NoPendingCode,
    #[error("Sign in again to change your recovery methods.")]
    RecentSignInRequired,
    #[error("Another request changed this at the same time. Try again.")]
    Conflict,
    #[error("This needs an administrator.")]
    Forbidden,
    #[error("The policy was changed since it was read. Read it again and reapply the change.")]
    StaleVersion,
    #[error("The policy's {}", .0)]
    InvalidPolicy(crate::policy::PolicyError),
    #[error("This user has no registration to clear.")]
    NotRegistered,
    #[error("Passwords cannot be reset here. Contact your helpdesk.")]
    WritebackOff,
    /// The on-premises directory has the new password and the cloud one does not yet.
    #[error(
        "Your new password is set in your organisation's directory, but the cloud sign-in could not be \
         updated yet. Press the button again in a moment to finish; until then cloud apps still take your \
         old password."
    )]
    WritebackIncomplete,
    /// The organisation's directory did not answer (or refused the service account): nothing
    /// was changed, and the person can try again within the session.
    #[error("Your organisation's directory cannot be reached just now. Nothing was changed: try again in a moment.")]
    DirectoryUnavailable(String),
    #[error("Texts and calls cannot go to numbers of this country here. Use another number or method.")]
    CountryNotAllowed,
    /// Over one of the limits of docs/security.md: wait `retry_after` seconds.
    #[error("{}", .0.limit.message())]
    OverLimit(crate::limits::OverLimit),
    #[error("The service is temporarily unavailable. Try again later.")]
    Unavailable(String),
}

impl FlowError {
    /// The stable, machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::InvalidInput(_) => "invalid_input",
            FlowError::ChallengeFailed => "challenge_failed",
            FlowError::InvalidSession => "invalid_session",
            FlowError::SessionExpired => "session_expired",
            FlowError::MethodNotAvailable => "method_not_available",
            FlowError::InvalidCode => "invalid_code",
            FlowError::CodeExpired => "code_expired",
            FlowError::WrongAnswers => "wrong_answers",
            FlowError::NoQuestionsDrawn => "no_questions_drawn",
            FlowError::TooManyAttempts => "too_many_attempts",
            FlowError::AlreadyVerified => "already_verified",
            FlowError::NotVerified => "not_verified",
            FlowError::InvalidToken => "invalid_token",
            FlowError::TokenUsed => "token_used",
            FlowError::PasswordRejected(_) => "password_rejected",
            FlowError::UnlockNotAvailable => "unlock_not_available",
            FlowError::NotEnabled => "not_enabled",
            FlowError::MethodNotFound => "method_not_found",
            FlowError::NoPendingCode => "no_pending_code",
            FlowError::NothingToConfirm => "nothing_to_confirm",
            FlowError::RecentSignInRequired => "recent_signin_required",
            FlowError::Conflict => "conflict",
            FlowError::Forbidden => "forbidden",
            FlowError::StaleVersion => "stale_version",
            FlowError::InvalidPolicy(_) => "invalid_policy",
            FlowError::NotRegistered => "not_registered",
            FlowError::WritebackOff => "writeback_off",
            FlowError::WritebackIncomplete => "writeback_incomplete",
            FlowError::DirectoryUnavailable(_) => "directory_unavailable",
            FlowError::CountryNotAllowed => "country_not_allowed",
            FlowError::OverLimit(over) => over.limit.code(),
            FlowError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<crate::limits::OverLimit> for FlowError {
    fn from(over: crate::limits::OverLimit) -> Self {
        FlowError::OverLimit(over)
    }
}

impl From<Unavailable> for FlowError {
    fn from(e: Unavailable) -> Self {
        FlowError::Unavailable(e.0)
    }
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => FlowError::Conflict,
            StoreError::Unavailable(u) => u.into(),
        }
    }
}

impl From<DirectoryError> for FlowError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::PasswordRejected(reasons) => FlowError::PasswordRejected(reasons),
            DirectoryError::UnknownUser => FlowError::InvalidSession,
            DirectoryError::PartlyApplied { .. } => FlowError::WritebackIncomplete,
            DirectoryError::Unavailable(u) => FlowError::DirectoryUnavailable(u.0),
        }
    }
}
