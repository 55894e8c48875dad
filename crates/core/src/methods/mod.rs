//! Recovery methods: how each kind is proved at reset, behind one interface keyed by method
//! kind: codes delivered to a registered destination (email, SMS, voice), the authenticator app,
//! and
//! security questions.

pub mod delivered_code;
pub mod questions;
pub mod totp;

use async_trait::async_trait;

use crate::ports::RecordKey;
use crate::reset::session::ResetSession;
use crate::secret::{KeyedHasher, Sealer};
use crate::types::{Code, MethodId, MethodKind, ParseError, SessionId, Timestamp};
use crate::FlowError;

/// What a person presents at `verify`.
#[derive(Debug)]
pub enum Proof<'a> {
    Code(&'a Code),
    /// Answers to the security questions drawn for the session, by question id.
    Answers(&'a [(String, questions::Answer)]),
}

impl Proof<'_> {
    /// The code of a proof by code, or the refusal of a proof of another shape.
    pub fn code(&self) -> Result<&Code, Verdict> {
        match self {
            Proof::Code(code) => Ok(code),
            Proof::Answers(_) => Err(Verdict::RefusedUnchanged(FlowError::InvalidInput(ParseError::new(
                "code",
                "is needed for this method",
            )))),
        }
    }
}

impl<'a> From<&'a Code> for Proof<'a> {
    fn from(code: &'a Code) -> Self {
        Proof::Code(code)
    }
}

/// The facts a verification needs besides the session.
pub struct Attempt<'a> {
    pub session_id: &'a SessionId,
    pub method: MethodKind,
    pub now: Timestamp,
    pub hasher: &'a KeyedHasher,
    pub sealer: &'a Sealer,
    /// Wrong proofs before the method is dead for the session (S3).
    pub max_failures: u32,
}

/// The outcome of checking a proof.
#[derive(Debug)]
pub enum Verdict {
    /// The registered method the proof came from. With `once`, the proof counts only if that
    /// record does not exist yet: the flow creates it in the same write as the session, so the
    /// same proof is accepted once across every session (an authenticator code's step).
    Proved { id: MethodId, once: Option<Once> },
    /// Refused, and the session changed (a failure was counted): it must be saved.
    Refused(FlowError),
    /// Refused with nothing changed.
    RefusedUnchanged(FlowError),
}

/// A record that spends a proof, and until when it must be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    pub key: RecordKey,
    pub until: Timestamp,
}

/// How one kind of method is proved at reset.
#[async_trait]
pub trait Verifier: Sync {
    /// Checks `proof` against what the session holds for `attempt.method`, counting a failure
    /// in the session when it is wrong. Every refusal looks the same whether or not anything
    /// was ever sent or registered.
    async fn verify(&self, attempt: &Attempt<'_>, session: &mut ResetSession, proof: &Proof<'_>) -> Verdict;
}

/// The verifier of a kind, when this release can prove that kind at reset.
pub fn verifier(kind: MethodKind) -> Option<&'static dyn Verifier> {
    match kind {
        MethodKind::Email | MethodKind::Sms | MethodKind::Voice => Some(&delivered_code::DeliveredCode),
        MethodKind::Totp => Some(&totp::AuthenticatorApp),
        MethodKind::Questions => Some(&questions::SecurityQuestions),
    }
}
