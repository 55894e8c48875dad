//! Registration of an authenticator app: a fresh seed is sealed in a pending record and shown
//! once (QR code, URI and key for typing); it becomes a registered method only when the first
//! code from the app is right (S8 in docs/security.md).

use serde::Serialize;

use super::SignedIn;
use crate::audit::{EventKind, Happened};
use crate::methods::totp::{self, qr_svg, TotpSeed};
use crate::ports::{StoreError, Unavailable, Write};
use crate::records::{
    decode, pending_key, put, registration_key, save, save_all, spend, totp_step_key, Held, PendingTotp,
    RegisteredMethod, Registration, Versioned,
};
use crate::registration::RegistrationStatus;
use crate::types::{Code, MethodId, MethodKind};
use crate::{FlowError, Sspr, CONFLICT_RETRIES};

/// How long a new seed waits for its first code.
pub const ENROLMENT_SECS: i64 = 600;

/// What the registration page shows while an app is being added. The only time the seed leaves
/// the product: once registered it is never returned.
#[derive(Serialize)]
pub struct TotpEnrolment {
    pub otpauth_uri: String,
    pub qr_svg: String,
    /// The seed in base32, in groups of four, for typing into an app by hand.
    pub manual_key: String,
    pub expires_in: i64,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TotpEnrolment {{ expires_in: {}, .. }}", self.expires_in)
    }
}

impl Sspr {
    /// Starts adding an authenticator app: a new seed, sealed and kept pending; needs a recent
    /// sign-in. Starting again replaces the pending seed but keeps its failures.
    #[tracing::instrument(skip_all)]
    pub async fn begin_totp(&self, who: &SignedIn) -> Result<TotpEnrolment, FlowError> {
        let kind = MethodKind::Totp;
        let key = pending_key(&who.username, kind);
        for _ in 0..CONFLICT_RETRIES {
            let (policy, mut records) = self.read_with_policy(std::slice::from_ref(&key)).await?;
            if !policy.allows_method(kind) {
                return Err(FlowError::MethodNotAvailable);
            }
            self.may_register(&policy, who).await?;
            let existing = decode::<PendingTotp>(&key, records.pop().flatten())?;
            let failures = existing.as_ref().map_or(0, |p| p.value.failures);
            if failures >= self.settings.max_code_failures {
                return Err(FlowError::TooManyAttempts);
            }
            let seed = TotpSeed::generate(&*self.ports.rng);
            let now = self.ports.clock.now();
            let pending = Versioned {
                value: PendingTotp {
                    seed: totp::seal(&self.sealer, &*self.ports.rng, &who.username, &seed),
                    issued_at: now,
                    expires_at: now.plus_secs(ENROLMENT_SECS),
                    failures,
                },
                version: existing.map_or(0, |p| p.version),
            };
            match save(&*self.ports.store, &key, &pending).await {
                Ok(_) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            let otpauth_uri = seed.otpauth_uri(&self.settings.branding.organisation, who.username.as_str());
            let qr_svg = qr_svg(&otpauth_uri).map_err(|e| Unavailable::new(format!("QR code: {e}")))?;
            return Ok(TotpEnrolment {
                otpauth_uri,
                qr_svg,
                manual_key: seed.manual_key(),
                expires_in: ENROLMENT_SECS,
            });
        }
        Err(FlowError::Conflict)
    }

    /// Registers the pending app if `code` is right for its seed now. The pending seed becomes
    /// the registered one (replacing an earlier app), and the code's step is spent, in one
    /// transaction.
    pub(super) async fn confirm_totp(&self, who: &SignedIn, code: &Code) -> Result<RegistrationStatus, FlowError> {
        let key = pending_key(&who.username, MethodKind::Totp);
        let registration_key = registration_key(&who.username);
        for _ in 0..CONFLICT_RETRIES {
            let (policy, mut records) = self.read_with_policy(&[key.clone(), registration_key.clone()]).await?;
            let mut registration = decode::<Registration>(&registration_key, records.pop().flatten())?
                .unwrap_or_else(|| Versioned::new(Registration::default()));
            let mut pending = decode::<PendingTotp>(&key, records.pop().flatten())?.ok_or(FlowError::NoPendingCode)?;
            let max = self.settings.max_code_failures;
            if pending.value.failures >= max {
                return Err(FlowError::TooManyAttempts);
            }
            let now = self.ports.clock.now();
            if now >= pending.value.expires_at {
                return Err(FlowError::CodeExpired);
            }
            let seed = totp::open(&self.sealer, &who.username, &pending.value.seed).ok_or(FlowError::NoPendingCode)?;
            let Some(step) = seed.check(code, now) else {
                pending.value.failures += 1;
                match save(&*self.ports.store, &key, &pending).await {
                    Ok(_) if pending.value.failures >= max => return Err(FlowError::TooManyAttempts),
                    Ok(_) => return Err(FlowError::InvalidCode),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            // One app per person: a new one replaces the old.
            registration.value.methods.retain(|m| m.kind != MethodKind::Totp);
            let added = RegisteredMethod {
                id: MethodId::generate(&*self.ports.rng),
                kind: MethodKind::Totp,
                held: Held::Seed { seed: pending.value.seed.clone() },
                added_at: now,
            };
            registration.value.methods.push(added.clone());
            registration.value.confirmed_at = Some(now);
            // The code that confirmed the app cannot be used again to reset.
            let until = now.plus_secs(totp::STEP_MEMORY_SECS);
            let mut writes = vec![
                Write::Delete { key: key.clone(), version: pending.version },
                put(&registration_key, &registration)?,
                spend(&totp_step_key(&who.username, step), until)?,
            ];
            writes.extend(
                self.audit(Happened::new(EventKind::MethodRegistered, Some(&who.username)).method(MethodKind::Totp))?,
            );
            match save_all(&*self.ports.store, &writes).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            return self.announce_added(&policy, who, &registration.value, &added).await;
        }
        Err(FlowError::Conflict)
    }
}
