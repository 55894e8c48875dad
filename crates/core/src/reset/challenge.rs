//! Proof of work before a reset session opens (ALTCHA-style, no third-party service): the
//! server hands out `SHA-256(salt ‖ n)` for a secret random `n` below `maxnumber`, signed with
//! the pepper; the page finds `n` by trying, and each solution is accepted once, before it
//! expires. It makes scripted mass resets costly without bothering a person.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::ports::Write;
use crate::records::{challenge_key, spend};
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

    pub fn new_challenge(&self) -> Challenge {
        let mut salt = [0u8; 12];
        self.ports.rng.fill(&mut salt);
        let expires = self.ports.clock.now().plus_secs(CHALLENGE_TTL_SECS);
        let salt = format!("{}?expires={}", hex::encode(salt), expires.0);
        let max = self.settings.challenge_max_number.max(1);
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

    /// Checks a solution: signed by us, not expired, correct. Returns the write that spends it,
    /// which fails if it was used before; the caller makes it with the reset session it opens,
    /// in one transaction.
    pub(crate) fn check_challenge(&self, payload: &str) -> Result<Write, FlowError> {
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
        Ok(spend(&challenge_key(&solution.challenge), expires)?)
    }
}
