//! The authenticator app, per RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits, a 160-bit seed
//! from the OS CSPRNG. A code is right for the current step or the one before (T-1..T), and
//! the step it matched is returned so a caller can refuse the same step a second time (S8 in
//! docs/security.md). The seed is kept at rest only sealed (`crate::secret::Sealer`).

use std::fmt;

use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use super::{Attempt, Once, Proof, Verdict, Verifier};
use crate::ports::Rng;
use crate::records::totp_step_key;
use crate::reset::session::ResetSession;
use crate::secret::{Sealed, Sealer};
use crate::types::{Code, Timestamp, Username};
use crate::FlowError;

/// Seconds in one step.
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u8 = 6;
/// Bytes in a seed: 160 bits, as RFC 4226 recommends.
pub const SEED_BYTES: usize = 20;

/// The seed an authenticator app shares with the product. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSeed(Zeroizing<[u8; SEED_BYTES]>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an authenticator seed is {SEED_BYTES} bytes")]
pub struct BadSeed;

impl TotpSeed {
    pub fn generate(rng: &dyn Rng) -> Self {
        let mut bytes = Zeroizing::new([0u8; SEED_BYTES]);
        rng.fill(&mut *bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BadSeed> {
        let bytes: [u8; SEED_BYTES] = bytes.try_into().map_err(|_| BadSeed)?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// The seed itself, to be sealed before it is stored.
    pub fn expose(&self) -> &[u8] {
        &*self.0
    }

    fn totp(&self, issuer: &str, account: &str) -> Totp {
        // The otpauth label separates issuer and account with a colon: neither may hold one.
        let issuer = issuer.replace(':', " ");
        let account = account.replace(':', " ");
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(0)
            .with_step_duration(STEP_SECS.unsigned_abs())
            .with_secret(Secret::new(Box::from(self.expose())))
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build_noncompliant()
    }

    /// The step `code` belongs to when it is right at `now`: the current step or the one
    /// before, never a later one. Codes are compared in constant time.
    pub fn check(&self, code: &Code, now: Timestamp) -> Option<u64> {
        let now = u64::try_from(now.0).ok()?;
        let totp = self.totp("", "");
        let step = STEP_SECS.unsigned_abs();
        [now, now.checked_sub(step)?].into_iter().find_map(|at| totp.check(code.expose(), at))
    }

    /// The code for `at`, as an authenticator app would show it.
    pub fn code_at(&self, at: Timestamp) -> String {
        self.totp("", "").generate(u64::try_from(at.0).unwrap_or_default()).to_string()
    }

    /// The `otpauth://` URI an authenticator app scans, naming the organisation and the account.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        // An account name is present and holds no colon, the only reasons `to_url` refuses.
        self.totp(issuer, account).to_url().unwrap_or_default()
    }

    /// The seed in base32, in groups of four, for typing into an app by hand.
    pub fn manual_key(&self) -> String {
        let base32 = Secret::new(Box::from(self.expose())).to_base32();
        base32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }
}

/// What a seed is sealed for: its owner, so a sealed seed copied to another person's record
/// does not open there.
pub fn seal_owner(username: &Username) -> Vec<u8> {
    format!("USER#{username}#totp").into_bytes()
}

/// Seals `seed` for `username`.
pub fn seal(sealer: &Sealer, rng: &dyn Rng, username: &Username, seed: &TotpSeed) -> Sealed {
    sealer.seal(rng, &seal_owner(username), seed.expose())
}

/// Opens a seed sealed for `username`; `None` if it does not open (another key, or tampered).
pub fn open(sealer: &Sealer, username: &Username, sealed: &Sealed) -> Option<TotpSeed> {
    match sealer.open(sealed, &seal_owner(username)) {
        Ok(bytes) => TotpSeed::from_bytes(&bytes).ok(),
        Err(e) => {
            tracing::error!(error = %e, "an authenticator seed could not be opened");
            None
        }
    }
}

/// How long a spent step is remembered: past the end of the window in which its code is valid.
pub const STEP_MEMORY_SECS: i64 = 3 * STEP_SECS;

/// The verifier of authenticator codes: nothing is sent; the code is checked against the seed
/// registered when the session opened, and its step is accepted once across every session.
pub struct AuthenticatorApp;

#[async_trait::async_trait]
impl Verifier for AuthenticatorApp {
    async fn verify(&self, attempt: &Attempt<'_>, session: &mut ResetSession, proof: &Proof<'_>) -> Verdict {
        let code = match proof.code() {
            Ok(code) => code,
            Err(refused) => return refused,
        };
        let method = attempt.method;
        if session.failures_for(method) >= attempt.max_failures {
            return Verdict::RefusedUnchanged(FlowError::TooManyAttempts);
        }
        // Without a subject or a registered app there is no seed: every code is wrong, and
        // the failure counts the same.
        let proved = match (&session.subject, session.registered_kind(method)) {
            (Some(subject), Some(registered)) => registered
                .seed()
                .and_then(|sealed| open(attempt.sealer, subject, sealed))
                .and_then(|seed| seed.check(code, attempt.now))
                .map(|step| {
                    let until = attempt.now.plus_secs(STEP_MEMORY_SECS);
                    (registered.id.clone(), Once { key: totp_step_key(subject, step), until })
                }),
            _ => None,
        };
        let answered = session.answered_mut(method);
        match proved {
            Some((id, once)) => {
                answered.proved = Some(id.clone());
                Verdict::Proved { id, once: Some(once) }
            }
            None => {
                answered.failures += 1;
                Verdict::Refused(if answered.failures >= attempt.max_failures {
                    FlowError::TooManyAttempts
                } else {
                    FlowError::InvalidCode
                })
            }
        }
    }
}

impl fmt::Debug for TotpSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSeed([redacted])")
    }
}

/// `uri` as a QR code, an SVG picture the registration page shows.
pub fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SystemRng;

    /// The seed of RFC 6238's test vectors (Appendix B, SHA-1).
    fn rfc_seed() -> TotpSeed {
        TotpSeed::from_bytes(b"12345678901234567890").expect("20 bytes")
    }

    fn code(s: &str) -> Code {
        Code::parse(s).expect("6 digits")
    }

    #[test]
    fn rfc_6238_sha1_vectors_in_six_digits() {
        // RFC 6238 Appendix B gives 8 digits; 6 digits are the same number modulo 10^6.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let seed = rfc_seed();
        for (time, eight) in vectors {
            let six = &eight[2..];
            assert_eq!(seed.code_at(Timestamp(time)), six, "T = {time}");
            assert!(seed.check(&code(six), Timestamp(time)).is_some(), "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_in_its_step_and_the_one_after() {
        let seed = TotpSeed::generate(&SystemRng);
        let t = Timestamp(1_800_000_000);
        let at = |steps: i64| code(&seed.code_at(Timestamp(t.0 + steps * STEP_SECS)));
        let step = u64::try_from(t.0 / STEP_SECS).expect("positive");
        assert_eq!(seed.check(&at(0), t), Some(step), "the current step");
        assert_eq!(seed.check(&at(-1), t), Some(step - 1), "the step before (T-1)");
        assert_eq!(seed.check(&at(1), t), None, "never a later step");
        assert_eq!(seed.check(&at(-2), t), None, "not two steps back");
        let wrong = if seed.code_at(t) == "000000" { "111111" } else { "000000" };
        assert_eq!(seed.check(&code(wrong), t), None);
        assert_eq!(seed.check(&code("12345678"), t), None, "an 8-digit code is no app code");
    }

    #[test]
    fn seeds_are_160_random_bits_and_never_printed() {
        let a = TotpSeed::generate(&SystemRng);
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a, TotpSeed::generate(&SystemRng));
        assert_eq!(format!("{a:?}"), "TotpSeed([redacted])");
        assert!(TotpSeed::from_bytes(&[0; 16]).is_err());
    }

    #[test]
    fn enrolment_shows_a_uri_a_qr_code_and_a_key_for_typing() {
        let seed = rfc_seed();
        let uri = seed.otpauth_uri("Example: Corp", "alice");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        assert!(uri.contains("issuer=Example"), "{uri}");
        assert!(!uri.contains("algorithm=SHA256") && !uri.contains("digits=8") && !uri.contains("period=60"), "{uri}");
        assert_eq!(seed.manual_key(), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
        let svg = qr_svg(&uri).expect("a QR code");
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
