//! Recovery methods: how each kind is proved at reset, behind one interface keyed by method
//! kind. Codes delivered to a registered destination (email, SMS) are the first; the
//! authenticator app and security questions plug in beside them.

pub mod delivered_code;
pub mod totp;

use crate::reset::session::ResetSession;
use crate::secret::KeyedHasher;
use crate::types::{Code, MethodId, MethodKind, SessionId, Timestamp};
use crate::FlowError;

/// What a person presents at `verify`.
#[derive(Debug)]
pub enum Proof<'a> {
    Code(&'a Code),
}

/// The facts a verification needs besides the session.
pub struct Attempt<'a> {
    pub session_id: &'a SessionId,
    pub method: MethodKind,
    pub now: Timestamp,
    pub hasher: &'a KeyedHasher,
    /// Wrong proofs before the method is dead for the session (S3).
    pub max_failures: u32,
}

/// The outcome of checking a proof.
#[derive(Debug)]
pub enum Verdict {
    /// The registered method the proof came from.
    Proved(MethodId),
    /// Refused, and the session changed (a failure was counted): it must be saved.
    Refused(FlowError),
    /// Refused with nothing changed.
    RefusedUnchanged(FlowError),
}

/// How one kind of method is proved at reset.
pub trait Verifier: Sync {
    /// Checks `proof` against what the session holds for `attempt.method`, counting a failure
    /// in the session when it is wrong. Every refusal looks the same whether or not anything
    /// was ever sent or registered.
    fn verify(&self, attempt: &Attempt<'_>, session: &mut ResetSession, proof: &Proof<'_>) -> Verdict;
}

/// The verifier of a kind, when this release can prove that kind at reset.
pub fn verifier(kind: MethodKind) -> Option<&'static dyn Verifier> {
    match kind {
        MethodKind::Email | MethodKind::Sms => Some(&delivered_code::DeliveredCode),
        MethodKind::Voice | MethodKind::Totp | MethodKind::Questions => None,
    }
}
