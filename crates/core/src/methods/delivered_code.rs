//! One-time codes delivered to a registered destination: email, SMS and voice calls. The code goes only to a
//! destination the person registered for the method; anywhere else a decoy stands in, so a
//! caller cannot tell the two apart (S1, S2 and S3 in docs/security.md).

use super::{Attempt, Proof, Verdict, Verifier};
use crate::ports::Unavailable;
use crate::reset::session::{IssuedCode, ResetSession, SentTo};
use crate::secret::{Digest, KeyedHasher};
use crate::types::{Code, Destination, MethodKind, SessionId};
use crate::{FlowError, Sspr};

/// The verifier of delivered codes.
pub struct DeliveredCode;

/// The keyed hash that binds a code to its session, method and destination.
pub fn code_hash(
    hasher: &KeyedHasher,
    session_id: &SessionId,
    method: MethodKind,
    destination: &Destination,
    code: &Code,
) -> Digest {
    hasher.digest(
        "reset-code",
        &[
            session_id.expose().as_bytes(),
            method.as_str().as_bytes(),
            destination.as_str().as_bytes(),
            code.expose().as_bytes(),
        ],
    )
}

impl DeliveredCode {
    /// Issues `code` for `destination` in the session, replacing the method's last code but
    /// keeping its failures. Returns whether to deliver it: only to a destination the session's
    /// subject registered for the method.
    pub fn issue(
        &self,
        attempt: &Attempt<'_>,
        ttl_secs: i64,
        session: &mut ResetSession,
        destination: &Destination,
        code: &Code,
    ) -> bool {
        let method = attempt.method;
        let sent_to = session.registered(method, destination).map(|m| SentTo {
            method_id: m.id.clone(),
            destination: destination.clone(),
            code_hash: code_hash(attempt.hasher, attempt.session_id, method, destination, code).to_hex(),
        });
        let deliver = sent_to.is_some();
        session.replace_code(IssuedCode {
            method,
            sent_to,
            issued_at: attempt.now,
            expires_at: attempt.now.plus_secs(ttl_secs),
            failures: 0,
            used: false,
        });
        deliver
    }
}

#[async_trait::async_trait]
impl Verifier for DeliveredCode {
    async fn verify(&self, attempt: &Attempt<'_>, session: &mut ResetSession, proof: &Proof<'_>) -> Verdict {
        let code = match proof.code() {
            Ok(code) => code,
            Err(refused) => return refused,
        };
        let method = attempt.method;
        if session.code_for(method).is_none() {
            // Nothing was asked for: a decoy keeps the count, as for any wrong code.
            session.replace_code(IssuedCode {
                method,
                sent_to: None,
                issued_at: attempt.now,
                expires_at: attempt.now,
                failures: 0,
                used: false,
            });
        }
        let Some(issued) = session.code_mut(method) else {
            return Verdict::RefusedUnchanged(FlowError::InvalidCode);
        };
        if issued.failures >= attempt.max_failures {
            return Verdict::RefusedUnchanged(FlowError::TooManyAttempts);
        }
        let matches = !issued.used
            && issued.sent_to.as_ref().is_some_and(|s| {
                code_hash(attempt.hasher, attempt.session_id, method, &s.destination, code).matches_hex(&s.code_hash)
            });
        if !matches {
            issued.failures += 1;
            return Verdict::Refused(if issued.failures >= attempt.max_failures {
                FlowError::TooManyAttempts
            } else {
                FlowError::InvalidCode
            });
        }
        if attempt.now >= issued.expires_at {
            return Verdict::RefusedUnchanged(FlowError::CodeExpired);
        }
        issued.used = true;
        match &issued.sent_to {
            Some(sent) => Verdict::Proved { id: sent.method_id.clone(), once: None },
            None => Verdict::Refused(FlowError::InvalidCode),
        }
    }
}

/// What a delivered code is for: it decides the words of the message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CodePurpose {
    Reset,
    Confirm,
}

impl Sspr {
    fn code_minutes(&self) -> i64 {
        (self.settings.code_ttl_secs + 59) / 60
    }

    /// Sends a code of method `kind` to a destination, in the words of `purpose`.
    pub(crate) async fn deliver_code(
        &self,
        kind: MethodKind,
        destination: &Destination,
        code: &Code,
        purpose: CodePurpose,
    ) -> Result<(), Unavailable> {
        let b = &self.settings.branding;
        let minutes = self.code_minutes();
        match (destination, purpose) {
            (Destination::Phone(p), purpose) if kind == MethodKind::Voice => {
                let words = match purpose {
                    CodePurpose::Reset => "password reset",
                    CodePurpose::Confirm => "confirmation",
                };
                self.ports.voice.call(p, &b.code_call(code, words, minutes)).await
            }
            (Destination::Phone(p), CodePurpose::Reset) => {
                self.ports.sms.send_sms(p, &b.reset_code_sms(code, minutes)).await
            }
            (Destination::Phone(p), CodePurpose::Confirm) => {
                self.ports.sms.send_sms(p, &b.confirmation_code_sms(code, minutes)).await
            }
            (Destination::Email(e), CodePurpose::Reset) => {
                self.ports.mailer.send_email(e, &b.reset_code_email(code, minutes)).await
            }
            (Destination::Email(e), CodePurpose::Confirm) => {
                self.ports.mailer.send_email(e, &b.confirmation_code_email(code, minutes)).await
            }
        }
    }
}
