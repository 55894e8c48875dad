//! Identifiers of registered methods.

use serde::{Deserialize, Serialize};

use super::ParseError;
use crate::ports::Rng;

/// The identifier of a registered method: 16 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MethodId(String);

impl MethodId {
    pub fn generate(rng: &dyn Rng) -> Self {
        let mut bytes = [0u8; 8];
        rng.fill(&mut bytes);
        Self(hex::encode(bytes))
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new("id", "is not a method id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MethodId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<MethodId> for String {
    fn from(m: MethodId) -> String {
        m.0
    }
}
