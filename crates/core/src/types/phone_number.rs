//! Mobile numbers in E.164 form.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

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

    /// The kind of line, by libphonenumber's metadata: what may receive a text or a call. A
    /// fictional number the metadata does not know (area code 555) counts as a North American
    /// number, mobile or fixed; one in a service area code (`+1 900 555 0100`) stays what its
    /// area code makes it.
    pub fn line(&self) -> Line {
        use phonenumber::metadata::DATABASE;
        use phonenumber::Type;
        let Ok(number) = phonenumber::parse(None, &self.0) else {
            return Line::Service;
        };
        match number.number_type(&DATABASE) {
            Type::Mobile => Line::Mobile,
            Type::FixedLineOrMobile => Line::FixedLineOrMobile,
            Type::FixedLine => Line::FixedLine,
            Type::Unknown if Self::is_fictional(&self.0) => Line::FixedLineOrMobile,
            // Premium-rate, toll-free, shared-cost, VoIP, personal, pager, company, unknown.
            _ => Line::Service,
        }
    }

    /// The country the number belongs to (ISO 3166 alpha-2, by libphonenumber's metadata: a
    /// Canadian +1 number is `CA`); the fictional demo range is `US`.
    pub fn country(&self) -> Option<String> {
        use phonenumber::metadata::DATABASE;
        if Self::is_fictional(&self.0) {
            return Some("US".to_owned());
        }
        let number = phonenumber::parse(None, &self.0).ok()?;
        number.metadata(&DATABASE).map(|m| m.id().to_owned())
    }

    /// Whether `code` is a country code (ISO 3166 alpha-2) that has phone numbers.
    pub fn is_country(code: &str) -> bool {
        code.len() == 2
            && code.bytes().all(|b| b.is_ascii_uppercase())
            && phonenumber::metadata::DATABASE.by_id(code).is_some()
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

/// What a number is, as far as texts and calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Mobile,
    /// Where the numbering cannot tell (the US and Canada).
    FixedLineOrMobile,
    FixedLine,
    /// No person's phone: premium-rate, toll-free, shared-cost, VoIP, pagers and the like.
    Service,
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
