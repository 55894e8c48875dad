//! One-time codes.

use std::fmt;

use super::ParseError;
use crate::ports::Rng;

/// A one-time code: 6 to 10 ASCII digits. Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub const DEFAULT_DIGITS: usize = 8;

    /// Draws `digits` uniformly distributed decimal digits from the CSPRNG.
    pub fn generate(rng: &dyn Rng, digits: usize) -> Self {
        let mut out = String::with_capacity(digits);
        while out.len() < digits {
            let mut byte = [0u8; 1];
            rng.fill(&mut byte);
            // Rejection sampling: 250 is the largest multiple of 10 below 256, so no digit is favoured.
            if byte[0] < 250 {
                out.push(char::from(b'0' + byte[0] % 10));
            }
        }
        Self(out)
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if !(6..=10).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new("code", "must be 6 to 10 digits"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code([{} digits redacted])", self.0.len())
    }
}
