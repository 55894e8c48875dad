//! Directory account names.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A directory account name: 1–128 characters, no control characters, no surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let chars = s.chars().count();
        if chars == 0 {
            return Err(ParseError::new("username", "is empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(ParseError::new("username", "is longer than 128 characters"));
        }
        if s.trim() != s {
            return Err(ParseError::new("username", "starts or ends with a space"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(ParseError::new("username", "contains a control character"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
