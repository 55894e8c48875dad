//! Proof of work before a reset session opens (ALTCHA-style, no third-party service): the
//! server hands out `SHA-256(salt ‖ n)` for a secret random `n` below `maxnumber`, signed with
//! the pepper; the page finds `n` by trying, and each solution is accepted once, before it
//! expires. It makes scripted mass resets costly without bothering a person. The work doubles
//! for a source address with each refusal over a limit this hour, up to a ceiling a phone still
//! solves within seconds (docs/security.md, "Also enforced"); a session asks a fresh solution
//! for every code after its first.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::audit::current_request;
use crate::limits::{address_of, pressure_meter};
use crate::ports::{RecordKey, Write};
use crate::records::{challenge_key, load_with_counters, spend};
use crate::types::Timestamp;
use crate::{FlowError, Sspr};

/// How long a challenge may be solved and used.
const CHALLENGE_TTL_SECS: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub algorithm: String,
    pub challenge: String,
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// What the page sends back, base64-encoded JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Solution {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

pub fn sha256_hex(salt: &str, number: u64) -> String {
    hex::encode(Sha256::digest(format!("{salt}{number}").as_bytes()))
}

/// Finds the number behind a challenge by trying each in turn, as the page does.
pub fn solve(challenge: &Challenge) -> Option<String> {
    let number = (0..=challenge.maxnumber).find(|n| sha256_hex(&challenge.salt, *n) == challenge.challenge)?;
    let solution = serde_json::json!({
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "number": number,
        "salt": challenge.salt,
        "signature": challenge.signature,
    });
    Some(STANDARD.encode(solution.to_string()))
}

impl Sspr {
    fn challenge_signature(&self, challenge: &str) -> crate::secret::Digest {
        self.hasher.digest("challenge", &[challenge.as_bytes()])
    }

    /// A challenge at the base difficulty.
    pub fn new_challenge(&self) -> Challenge {
        self.challenge_of(self.settings.challenge_max_number.max(1))
    }

    /// A challenge for the request being served: the base difficulty doubled for each refusal
    /// over a limit its source address had this hour, up to the ceiling. One store read.
    pub async fn challenge_for_request(&self) -> Challenge {
        let base = self.settings.challenge_max_number.max(1);
        let Some(address) = address_of(current_request().source_ip.as_deref()) else {
            return self.challenge_of(base);
        };
        let meter = pressure_meter(&self.hasher, &address, self.ports.clock.now());
        let refusals = match load_with_counters(&*self.ports.store, &[], std::slice::from_ref(&meter.key)).await {
            Ok((_, values)) => values.first().copied().unwrap_or(0),
            Err(e) => {
                // The base difficulty then: a challenge is no reason to fail a reset.
                tracing::warn!(error = %e, "the pressure of an address could not be read");
                0
            }
        };
        self.challenge_of(scaled_difficulty(base, self.settings.challenge_ceiling, refusals))
    }

    fn challenge_of(&self, max: u64) -> Challenge {
        let mut salt = [0u8; 12];
        self.ports.rng.fill(&mut salt);
        let expires = self.ports.clock.now().plus_secs(CHALLENGE_TTL_SECS);
        let salt = format!("{}?expires={}", hex::encode(salt), expires.0);
        let mut n = [0u8; 8];
        self.ports.rng.fill(&mut n);
        let number = u64::from_le_bytes(n) % (max + 1);
        let challenge = sha256_hex(&salt, number);
        Challenge {
            algorithm: "SHA-256".into(),
            signature: self.challenge_signature(&challenge).to_hex(),
            challenge,
            maxnumber: max,
            salt,
        }
    }

    /// Checks a solution: signed by us, not expired, correct. Returns where it is spent and the
    /// write that spends it, which fails if it was used before; the caller makes it with the
    /// reset session it opens or sends a code for, in one transaction.
    pub(crate) fn check_challenge(&self, payload: &str) -> Result<(RecordKey, Write), FlowError> {
        let solution: Solution = STANDARD
            .decode(payload.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(FlowError::ChallengeFailed)?;
        let expires = solution
            .salt
            .split_once("?expires=")
            .and_then(|(_, t)| t.parse::<i64>().ok())
            .map(Timestamp)
            .ok_or(FlowError::ChallengeFailed)?;
        let valid = solution.algorithm == "SHA-256"
            && self.challenge_signature(&solution.challenge).matches_hex(&solution.signature)
            && self.ports.clock.now() < expires
            && sha256_hex(&solution.salt, solution.number) == solution.challenge;
        if !valid {
            return Err(FlowError::ChallengeFailed);
        }
        // Spent until it would have expired anyway.
        let key = challenge_key(&solution.challenge);
        let write = spend(&key, expires)?;
        Ok((key, write))
    }
}

/// `base` doubled once for each refusal, never above `ceiling` (nor below `base`).
pub fn scaled_difficulty(base: u64, ceiling: u64, refusals: i64) -> u64 {
    let doublings = u32::try_from(refusals.clamp(0, 63)).unwrap_or(0);
    base.checked_shl(doublings).filter(|max| *max >> doublings == base).unwrap_or(u64::MAX).min(ceiling.max(base))
}

#[cfg(test)]
mod tests {
    use super::scaled_difficulty;

    #[test]
    fn the_work_doubles_with_each_refusal_up_to_the_ceiling() {
        let at = |refusals| scaled_difficulty(50_000, 200_000, refusals);
        assert_eq!([at(0), at(1), at(2), at(3), at(60), at(-1)], [50_000, 100_000, 200_000, 200_000, 200_000, 50_000]);
        assert_eq!(scaled_difficulty(50_000, 10, 3), 50_000, "never below the base");
        assert_eq!(scaled_difficulty(u64::MAX / 2, u64::MAX, 5), u64::MAX, "no overflow");
    }
}
