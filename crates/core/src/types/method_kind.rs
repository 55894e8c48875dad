//! The kinds of recovery method.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// The kinds of recovery method the product knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    Email,
    Sms,
    Voice,
    Totp,
    Questions,
}

impl MethodKind {
    pub const ALL: [MethodKind; 5] =
        [MethodKind::Email, MethodKind::Sms, MethodKind::Voice, MethodKind::Totp, MethodKind::Questions];

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or(ParseError::new("method", "is not a known method"))
    }

    /// Whether a code of this kind is sent to a registered destination (`send-code`).
    pub fn is_delivered(self) -> bool {
        matches!(self, MethodKind::Email | MethodKind::Sms | MethodKind::Voice)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Email => "email",
            MethodKind::Sms => "sms",
            MethodKind::Voice => "voice",
            MethodKind::Totp => "totp",
            MethodKind::Questions => "questions",
        }
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
