//! The reset session: an explicit state machine.
//!
//! `Started` → `MethodVerified` (while fewer methods than required are proved) → `TokenIssued`
//! → `Completing` (a completion holds the token) → `Completed`. Time ends every state: a
//! session past `expires_at` is expired whatever its state. Each transition consumes the old
//! state and returns the new one, or the reason it is not allowed.

use serde::{Deserialize, Serialize};

use crate::records::RegisteredMethod;
use crate::secret::Digest;
use crate::types::{Destination, Email, MethodId, MethodKind, Timestamp, Username};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ResetState {
    Started,
    MethodVerified { verified: Vec<MethodKind> },
    TokenIssued { verified: Vec<MethodKind>, token_hash: String },
    Completing { verified: Vec<MethodKind>, token_hash: String },
    Completed { at: Timestamp },
}

/// Why a transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("this method is already verified")]
    AlreadyVerified,
    #[error("enough methods are verified already")]
    AlreadyComplete,
    #[error("not enough methods are verified yet")]
    NotVerified,
    #[error("the reset token does not match")]
    WrongToken,
    #[error("the reset token was already used")]
    TokenUsed,
}

impl ResetState {
    pub fn verified(&self) -> &[MethodKind] {
        match self {
            ResetState::Started | ResetState::Completed { .. } => &[],
            ResetState::MethodVerified { verified }
            | ResetState::TokenIssued { verified, .. }
            | ResetState::Completing { verified, .. } => verified,
        }
    }

    /// Whether a proof of `method` may still be asked for: before the token, and not proved yet.
    pub fn awaits(&self, method: MethodKind) -> bool {
        matches!(self, ResetState::Started | ResetState::MethodVerified { .. }) && !self.verified().contains(&method)
    }

    /// A method was proved. With enough proofs the session moves to `TokenIssued`, keeping
    /// only the token's keyed hash.
    /// Records a proof of `kind`; the token is issued once `required` different methods are
    /// proved, `must_include` among them when it is set.
    pub fn prove(
        self,
        kind: MethodKind,
        required: usize,
        must_include: Option<MethodKind>,
        token_hash: impl FnOnce() -> Digest,
    ) -> Result<ResetState, TransitionError> {
        let mut verified = match self {
            ResetState::Started => Vec::new(),
            ResetState::MethodVerified { verified } => verified,
            ResetState::TokenIssued { .. } => return Err(TransitionError::AlreadyComplete),
            ResetState::Completing { .. } | ResetState::Completed { .. } => return Err(TransitionError::TokenUsed),
        };
        if verified.contains(&kind) {
            return Err(TransitionError::AlreadyVerified);
        }
        verified.push(kind);
        if verified.len() >= required && must_include.is_none_or(|k| verified.contains(&k)) {
            Ok(ResetState::TokenIssued { verified, token_hash: token_hash().to_hex() })
        } else {
            Ok(ResetState::MethodVerified { verified })
        }
    }

    /// A completion takes the token: from here on no other request can use it.
    pub fn claim_token(self, presented: &Digest) -> Result<ResetState, TransitionError> {
        match self {
            ResetState::TokenIssued { verified, token_hash } => {
                if presented.matches_hex(&token_hash) {
                    Ok(ResetState::Completing { verified, token_hash })
                } else {
                    Err(TransitionError::WrongToken)
                }
            }
            ResetState::Started | ResetState::MethodVerified { .. } => Err(TransitionError::NotVerified),
            ResetState::Completing { .. } | ResetState::Completed { .. } => Err(TransitionError::TokenUsed),
        }
    }

    /// The directory refused the new password: the token may be used again.
    pub fn release_token(self) -> ResetState {
        match self {
            ResetState::Completing { verified, token_hash } => ResetState::TokenIssued { verified, token_hash },
            other => other,
        }
    }

    pub fn complete(self, at: Timestamp) -> Result<ResetState, TransitionError> {
        match self {
            ResetState::Completing { .. } => Ok(ResetState::Completed { at }),
            ResetState::Completed { .. } => Err(TransitionError::TokenUsed),
            _ => Err(TransitionError::NotVerified),
        }
    }
}

/// The last code sent for one method in a session (or a decoy where nothing was sent, so the
/// two cannot be told apart). Failures count across codes: a new code does not reset them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub method: MethodKind,
    /// The registered method the code went to; `None` for a decoy.
    pub sent_to: Option<SentTo>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub failures: u32,
    pub used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentTo {
    pub method_id: MethodId,
    pub destination: Destination,
    /// HMAC of session, method, destination and code.
    pub code_hash: String,
}

/// A reset session as stored, keyed by the keyed hash of its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetSession {
    /// Who may be reset; `None` when the name matched nobody who can reset (never revealed).
    pub subject: Option<Username>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub required: usize,
    pub state: ResetState,
    pub codes: Vec<IssuedCode>,
    /// What the subject had registered when the session opened: the steps of the session
    /// read it here; completion checks the registration itself again.
    #[serde(default)]
    pub methods: Vec<RegisteredMethod>,
    /// The version of the registration `methods` was read from (0: there was none).
    #[serde(default)]
    pub registration_version: u64,
    /// A method that must be among those proved: the authenticator app, where the deployment
    /// asks that a registered app be used (docs/security.md, "Administrators").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_prove: Option<MethodKind>,
    /// Whether the subject is an administrator, as the directory said when the session opened:
    /// the other administrators are told of their reset.
    #[serde(default)]
    pub administrator: bool,
    /// The address the directory holds for the subject, told of the reset with the registered
    /// ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_email: Option<Email>,
    /// Whether the directory reported the account locked when the session opened; told only
    /// with the reset token, so the page offers an unlock after a proof, never before.
    #[serde(default)]
    pub locked: bool,
    /// A completion wrote the new password on premises and not to the cloud directory: the
    /// token was given back for the person to finish, with the same password.
    #[serde(default)]
    pub partly_written: bool,
    /// Codes asked for in this session (sent or not): every one after the first needs a fresh
    /// proof of work.
    #[serde(default)]
    pub codes_asked: u32,
    /// Methods proved with nothing sent first (the authenticator app, security questions):
    /// failures and outcome.
    #[serde(default)]
    pub answered: Vec<Answered>,
    /// The bank questions the subject appears to have when they have none that may be used
    /// (unknown, unregistered, or an administrator): stable per name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoy_questions: Vec<String>,
}

/// Attempts at a method proved with nothing sent first, in one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub method: MethodKind,
    pub failures: u32,
    /// The registered method proved, once it is.
    pub proved: Option<MethodId>,
    /// Security questions: the ids of the subset drawn to be answered now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drawn: Vec<String>,
}

impl ResetSession {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    pub fn code_for(&self, method: MethodKind) -> Option<&IssuedCode> {
        self.codes.iter().find(|c| c.method == method)
    }

    pub fn failures_for(&self, method: MethodKind) -> u32 {
        self.code_for(method).map_or(0, |c| c.failures)
            + self.answered.iter().find(|a| a.method == method).map_or(0, |a| a.failures)
    }

    /// Replaces the code of `code.method`, keeping the failures counted so far.
    pub fn replace_code(&mut self, mut code: IssuedCode) {
        code.failures = self.failures_for(code.method);
        self.codes.retain(|c| c.method != code.method);
        self.codes.push(code);
    }

    pub fn code_mut(&mut self, method: MethodKind) -> Option<&mut IssuedCode> {
        self.codes.iter_mut().find(|c| c.method == method)
    }

    /// The registered method of `kind` at `destination`, as registered when the session opened.
    pub fn registered(&self, kind: MethodKind, destination: &Destination) -> Option<&RegisteredMethod> {
        self.methods.iter().find(|m| m.kind == kind && m.destination() == Some(destination))
    }

    /// The registered method of `kind` that holds no destination (the authenticator app).
    pub fn registered_kind(&self, kind: MethodKind) -> Option<&RegisteredMethod> {
        self.methods.iter().find(|m| m.kind == kind && m.destination().is_none())
    }

    /// A proof that was right but already spent elsewhere (an authenticator code used before):
    /// it counts as a wrong one.
    pub fn refuse_replay(&mut self, method: MethodKind, max_failures: u32) -> crate::FlowError {
        let answered = self.answered_mut(method);
        answered.proved = None;
        answered.failures += 1;
        if answered.failures >= max_failures {
            crate::FlowError::TooManyAttempts
        } else {
            crate::FlowError::InvalidCode
        }
    }

    pub fn answered_mut(&mut self, method: MethodKind) -> &mut Answered {
        if let Some(i) = self.answered.iter().position(|a| a.method == method) {
            &mut self.answered[i]
        } else {
            self.answered.push(Answered { method, failures: 0, proved: None, drawn: Vec::new() });
            self.answered.last_mut().expect("just pushed")
        }
    }

    /// The registered methods proved in this session, each with the destination it was proved
    /// at when it is a delivered code.
    pub fn proved_methods(&self) -> impl Iterator<Item = (&MethodId, Option<&Destination>)> {
        let codes = self.codes.iter().filter(|c| c.used).filter_map(|c| c.sent_to.as_ref());
        let answered = self.answered.iter().filter_map(|a| a.proved.as_ref());
        codes.map(|s| (&s.method_id, Some(&s.destination))).chain(answered.map(|id| (id, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{KeyedHasher, Pepper};

    fn digest(s: &str) -> Digest {
        KeyedHasher::new(Pepper::new(vec![3; 32]).expect("pepper")).digest("token", &[s.as_bytes()])
    }

    #[test]
    fn one_method_issues_the_token_directly() {
        let s = ResetState::Started.prove(MethodKind::Email, 1, None, || digest("t")).expect("proved");
        assert!(matches!(s, ResetState::TokenIssued { .. }));
        assert_eq!(s.verified(), &[MethodKind::Email]);
    }

    #[test]
    fn a_method_that_must_be_proved_holds_the_token_back_until_it_is() {
        let s = ResetState::Started.prove(MethodKind::Email, 1, Some(MethodKind::Totp), || digest("t")).expect("one");
        assert!(matches!(s, ResetState::MethodVerified { .. }), "one is not enough without the app");
        let s = s.prove(MethodKind::Totp, 1, Some(MethodKind::Totp), || digest("t")).expect("the app");
        assert!(matches!(s, ResetState::TokenIssued { .. }));
        let s = ResetState::Started.prove(MethodKind::Totp, 2, Some(MethodKind::Totp), || digest("t")).expect("app");
        assert!(matches!(s, ResetState::MethodVerified { .. }), "two are still two");
    }

    #[test]
    fn two_methods_pass_through_method_verified() {
        let s = ResetState::Started.prove(MethodKind::Email, 2, None, || digest("t")).expect("first");
        assert!(matches!(s, ResetState::MethodVerified { .. }));
        assert_eq!(s.clone().prove(MethodKind::Email, 2, None, || digest("t")), Err(TransitionError::AlreadyVerified));
        let s = s.prove(MethodKind::Sms, 2, None, || digest("t")).expect("second");
        assert!(matches!(s, ResetState::TokenIssued { .. }));
        assert_eq!(s.prove(MethodKind::Voice, 2, None, || digest("t")), Err(TransitionError::AlreadyComplete));
    }

    #[test]
    fn the_token_is_claimed_once_and_released_on_refusal() {
        let issued = ResetState::Started.prove(MethodKind::Sms, 1, None, || digest("t")).expect("issued");
        assert_eq!(issued.clone().claim_token(&digest("other")), Err(TransitionError::WrongToken));
        let claimed = issued.claim_token(&digest("t")).expect("claimed");
        assert_eq!(claimed.clone().claim_token(&digest("t")), Err(TransitionError::TokenUsed));
        let released = claimed.clone().release_token();
        assert!(released.claim_token(&digest("t")).is_ok());
        let done = claimed.complete(Timestamp(5)).expect("completed");
        assert_eq!(done.clone().claim_token(&digest("t")), Err(TransitionError::TokenUsed));
        assert_eq!(done.complete(Timestamp(6)), Err(TransitionError::TokenUsed));
    }

    #[test]
    fn nothing_is_claimed_before_verification() {
        assert_eq!(ResetState::Started.claim_token(&digest("t")), Err(TransitionError::NotVerified));
        assert_eq!(ResetState::Started.complete(Timestamp(1)), Err(TransitionError::NotVerified));
    }
}
