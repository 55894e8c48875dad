//! Where a code is delivered.

use serde::{Deserialize, Serialize};

use super::{Email, MethodKind, ParseError, PhoneNumber};

/// Where a code is delivered: an address whose kind matches the method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Destination {
    Phone(PhoneNumber),
    Email(Email),
}

impl Destination {
    /// Parses `s` as the destination of a method of kind `kind`.
    pub fn parse(kind: MethodKind, s: &str) -> Result<Self, ParseError> {
        match kind {
            MethodKind::Email => Email::parse(s).map(Destination::Email),
            MethodKind::Sms | MethodKind::Voice => PhoneNumber::parse(s).map(Destination::Phone),
            MethodKind::Totp | MethodKind::Questions => {
                Err(ParseError::new("method", "has no destination to send a code to"))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Destination::Phone(p) => p.as_str(),
            Destination::Email(e) => e.as_str(),
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Destination::Phone(p) => p.hint(),
            Destination::Email(e) => e.hint(),
        }
    }
}
