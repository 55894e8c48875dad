//! Values of the domain that can only exist when valid: each is built by parsing.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::ports::Rng;

/// Why a value given by a caller was refused; `field` names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl ParseError {
    fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

/// Seconds since the Unix epoch; the unit of every expiry (and of the DynamoDB TTL attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// RFC 3339, for people and logs.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}

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

/// A mobile number in E.164 form (`+15555550101`), validated with libphonenumber's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts international form only (a leading `+`); spaces, dashes and brackets are allowed.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() > 32 {
            return Err(ParseError::new("destination", "is too long for a phone number"));
        }
        if !s.trim_start().starts_with('+') {
            return Err(ParseError::new("destination", "must be an international phone number starting with +"));
        }
        let number =
            phonenumber::parse(None, s).map_err(|_| ParseError::new("destination", "is not a phone number"))?;
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        if !phonenumber::is_valid(&number) && !Self::is_fictional(&e164) {
            return Err(ParseError::new("destination", "is not a valid phone number"));
        }
        Ok(Self(e164))
    }

    /// North American numbers with the line 555-01XX are reserved for fiction: accepted so
    /// demos and tests can use them, knowing no real person is ever texted.
    fn is_fictional(e164: &str) -> bool {
        let digits = e164.as_bytes();
        digits.len() == 12 && e164.starts_with("+1") && &e164[5..8] == "555" && &e164[8..10] == "01"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a page may show: the country code and last two digits.
    pub fn hint(&self) -> String {
        let digits: Vec<char> = self.0.chars().collect();
        let keep_end = 2.min(digits.len());
        let start: String = digits.iter().take(2).collect();
        let end: String = digits[digits.len() - keep_end..].iter().collect();
        let hidden = digits.len().saturating_sub(2 + keep_end);
        format!("{start}{}{end}", "*".repeat(hidden))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Email => "email",
            MethodKind::Sms => "sms",
            MethodKind::Voice => "voice",
            MethodKind::Totp => "totp",
            MethodKind::Questions => "questions",
        }
    }

    /// Methods proved by a one-time code sent to a destination.
    pub fn is_delivered_code(self) -> bool {
        matches!(self, MethodKind::Email | MethodKind::Sms)
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// 128 random bits, base64url without padding (22 characters); shown only to whoever must hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueSecret(String);

impl OpaqueSecret {
    const BYTES: usize = 16;

    fn generate(rng: &dyn Rng) -> Self {
        let mut bytes = [0u8; Self::BYTES];
        rng.fill(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn parse(s: &str, field: &'static str) -> Result<Self, ParseError> {
        match URL_SAFE_NO_PAD.decode(s) {
            Ok(bytes) if bytes.len() == Self::BYTES && s.len() == 22 => Ok(Self(s.to_owned())),
            _ => Err(ParseError::new(field, "is not valid")),
        }
    }
}

macro_rules! opaque_secret {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(OpaqueSecret);

        impl $name {
            pub fn generate(rng: &dyn Rng) -> Self {
                Self(OpaqueSecret::generate(rng))
            }

            pub fn parse(s: &str) -> Result<Self, ParseError> {
                OpaqueSecret::parse(s, $field).map(Self)
            }

            /// The value itself, for the one response that hands it out and for hashing.
            pub fn expose(&self) -> &str {
                &(self.0).0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

opaque_secret!(
    /// The handle of a reset session, held by the person resetting; stored only as a keyed hash.
    SessionId,
    "session"
);
opaque_secret!(
    /// Proof that a session verified enough methods; single use, stored only as a keyed hash.
    ResetToken,
    "reset_token"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SystemRng;

    #[test]
    fn usernames_parse() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("ålice.o'brien@corp").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(" alice").is_err());
        assert!(Username::parse("al\u{0}ice").is_err());
        assert!(Username::parse(&"a".repeat(129)).is_err());
        assert!(Username::parse(&"é".repeat(128)).is_ok());
    }

    #[test]
    fn phone_numbers_are_e164() {
        let p = PhoneNumber::parse("+1 (555) 555-0101").expect("valid");
        assert_eq!(p.as_str(), "+15555550101");
        assert_eq!(p.hint(), "+1********01");
        assert!(PhoneNumber::parse("5555550101").is_err());
        assert!(PhoneNumber::parse("+1").is_err());
        assert!(PhoneNumber::parse("+44 20 7946 0958").is_ok());
        assert!(PhoneNumber::parse("+99999").is_err());
        assert!(PhoneNumber::parse("+1 555 555 0199").is_ok(), "fictional numbers are for demos");
        assert!(PhoneNumber::parse("+1 555 555 0200").is_err(), "area code 555 is not real");
        assert!(PhoneNumber::parse(&format!("+1{}", "5".repeat(40))).is_err());
    }

    #[test]
    fn emails_parse() {
        let e = Email::parse("Alice@Example.COM").expect("valid");
        assert_eq!(e.as_str(), "Alice@example.com");
        assert_eq!(e.hint(), "A***@example.com");
        for bad in ["", "alice", "alice@", "@example.com", "a b@example.com", "alice@localhost"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn codes_are_digits_and_redacted() {
        let rng = SystemRng;
        for _ in 0..100 {
            let c = Code::generate(&rng, 8);
            assert_eq!(c.expose().len(), 8);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
            assert!(!format!("{c:?}").contains(c.expose()));
        }
        assert!(Code::parse("1234567").is_ok());
        assert!(Code::parse("12345").is_err());
        assert!(Code::parse("12345678901").is_err());
        assert!(Code::parse("1234567a").is_err());
        assert!(Code::parse("١٢٣٤٥٦٧٨").is_err(), "non-ASCII digits are refused");
    }

    #[test]
    fn code_digits_are_roughly_uniform() {
        let rng = SystemRng;
        let mut counts = [0usize; 10];
        for _ in 0..2000 {
            for b in Code::generate(&rng, 8).expose().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 16,000 digits: each expected 1,600; a biased generator drifts far outside this band.
        for c in counts {
            assert!((1350..1850).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn tokens_are_128_bit_and_redacted() {
        let rng = SystemRng;
        let t = ResetToken::generate(&rng);
        assert_eq!(t.expose().len(), 22);
        assert!(ResetToken::parse(t.expose()).is_ok());
        assert_ne!(t, ResetToken::generate(&rng));
        assert!(!format!("{t:?}").contains(t.expose()));
        assert!(SessionId::parse("short").is_err());
        assert!(SessionId::parse(&"A".repeat(23)).is_err());
    }

    #[test]
    fn destinations_follow_the_method() {
        assert!(Destination::parse(MethodKind::Email, "alice@example.com").is_ok());
        assert!(Destination::parse(MethodKind::Sms, "alice@example.com").is_err());
        assert!(Destination::parse(MethodKind::Sms, "+15555550101").is_ok());
        assert!(Destination::parse(MethodKind::Totp, "+15555550101").is_err());
    }

    #[test]
    fn method_ids_parse() {
        let id = MethodId::generate(&SystemRng);
        assert!(MethodId::parse(id.as_str()).is_ok());
        assert!(MethodId::parse("0123456789ABCDEF").is_err());
        assert!(MethodId::parse("../../etc").is_err());
    }
}
