//! New passwords (docs/security.md, "Passwords"): length first, Unicode allowed and NFKC-normalised, no truncation.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::types::Username;

/// The local rules a new password must meet before it is offered to the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordRules {
    pub min_length: usize,
    pub max_length: usize,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self { min_length: 8, max_length: 256 }
    }
}

/// The shortest minimum a policy may set (NIST SP 800-63B).
pub const LEAST_MIN_LENGTH: usize = 8;
/// The lowest maximum a policy may set: at least 64 characters must be allowed.
pub const LEAST_MAX_LENGTH: usize = 64;
/// The highest maximum a policy may set.
pub const MOST_MAX_LENGTH: usize = 1024;

impl PasswordRules {
    /// Whether the rules are within what a policy may set.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.min_length < LEAST_MIN_LENGTH {
            return Err("min_length must be at least 8");
        }
        if !(LEAST_MAX_LENGTH..=MOST_MAX_LENGTH).contains(&self.max_length) {
            return Err("max_length must be within 64–1024");
        }
        if self.min_length > self.max_length {
            return Err("min_length must not be more than max_length");
        }
        Ok(())
    }

    /// The rules of an administrator's policy document, strictly: every field present, none
    /// unknown, each in range. A refusal names the field (`password.min_length`).
    pub fn parse(value: Option<&serde_json::Value>) -> Result<Self, (String, String)> {
        let refuse = |field: &str, reason: &str| Err((format!("password.{field}"), reason.to_owned()));
        let Some(serde_json::Value::Object(map)) = value else {
            return Err(("password".to_owned(), "must be an object with min_length and max_length".to_owned()));
        };
        if let Some(unknown) = map.keys().find(|k| !matches!(k.as_str(), "min_length" | "max_length")) {
            return refuse(unknown, "is not a password rule");
        }
        let number =
            |field: &str| map.get(field).and_then(serde_json::Value::as_u64).and_then(|n| usize::try_from(n).ok());
        let Some(min_length) = number("min_length") else {
            return refuse("min_length", "must be a whole number of characters");
        };
        let Some(max_length) = number("max_length") else {
            return refuse("max_length", "must be a whole number of characters");
        };
        let rules = Self { min_length, max_length };
        match rules.check() {
            Ok(()) => Ok(rules),
            Err(reason) => {
                let field = reason.split(' ').next().unwrap_or("min_length");
                Err((format!("password.{field}"), reason.to_owned()))
            }
        }
    }
}

/// A password that met the rules, normalised to NFKC. Never printed.
pub struct NewPassword(Zeroizing<String>);

impl NewPassword {
    /// Checks `raw` against `rules`; every failed rule yields one reason a person can act on.
    pub fn parse(raw: &str, rules: &PasswordRules, username: &Username) -> Result<Self, Vec<String>> {
        let normalised = Zeroizing::new(raw.nfkc().collect::<String>());
        let length = normalised.chars().count();
        let mut reasons = Vec::new();
        if length < rules.min_length {
            reasons.push(format!("Use at least {} characters.", rules.min_length));
        }
        if length > rules.max_length {
            reasons.push(format!("Use at most {} characters.", rules.max_length));
        }
        if normalised.chars().any(|c| c.is_control()) {
            reasons.push("Do not use control characters.".to_owned());
        }
        if normalised.to_lowercase() == username.as_str().to_lowercase() {
            reasons.push("Do not use your username as your password.".to_owned());
        }
        if reasons.is_empty() {
            Ok(Self(normalised))
        } else {
            Err(reasons)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NewPassword, Vec<String>> {
        NewPassword::parse(s, &PasswordRules::default(), &Username::parse("alice").expect("name"))
    }

    #[test]
    fn length_is_counted_in_characters_after_nfkc() {
        assert!(parse("1234567").is_err());
        assert!(parse("12345678").is_ok());
        // Eight characters of three bytes each is eight characters, not 24.
        assert!(parse("ééééééé").is_err());
        assert!(parse("éééééééé").is_ok());
        // The ligature "ﬃ" is three characters under NFKC.
        assert_eq!(parse("ﬃﬃﬃ").map(|p| p.expose().to_owned()).ok(), Some("ffiffiffi".to_owned()));
    }

    #[test]
    fn long_passwords_are_kept_whole_or_refused() {
        let p = "x".repeat(256);
        assert_eq!(parse(&p).map(|p| p.expose().len()).ok(), Some(256));
        let reasons = parse(&"x".repeat(257)).expect_err("too long");
        assert_eq!(reasons, vec!["Use at most 256 characters.".to_owned()]);
    }

    #[test]
    fn username_and_control_characters_are_refused() {
        assert!(parse("ALICE").is_err());
        assert!(parse("Alice").is_err());
        assert!(parse("passw\u{7}ord-long").is_err());
        assert!(!format!("{:?}", parse("secret-pass").expect("ok")).contains("secret"));
    }
}
