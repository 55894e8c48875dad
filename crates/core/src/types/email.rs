//! Email addresses.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// An email address (RFC 5321 sizes); the domain is kept lower case so comparisons are stable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() > 254 {
            return Err(ParseError::new("destination", "is too long for an email address"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new("destination", "is not an email address"));
        }
        let parsed = s
            .parse::<email_address::EmailAddress>()
            .map_err(|_| ParseError::new("destination", "is not an email address"))?;
        let (local, domain) = (parsed.local_part(), parsed.domain());
        // A bare host or an address literal is no place to send a recovery code.
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(ParseError::new("destination", "is not an email address"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a page may show: first character of the local part and the domain.
    pub fn hint(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
