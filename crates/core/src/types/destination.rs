//! Where a code is delivered.

use serde::{Deserialize, Serialize};

use super::phone_number::Line;
use super::{Email, MethodKind, ParseError, PhoneNumber};

/// Where a code is delivered: an address whose kind matches the method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Destination {
    Phone(PhoneNumber),
    Email(Email),
}

impl Destination {
    /// Parses `s` as the destination of a method of kind `kind`, as a person gives it (to
    /// register, or to have a code sent): a text goes only to a line that may be a mobile, a
    /// call also to a fixed line; premium-rate, toll-free, shared-cost and other numbers no
    /// person's phone has are refused, so no code is ever sent to one (SMS pumping,
    /// docs/security.md S5). Numbers already stored are read as they are.
    pub fn parse(kind: MethodKind, s: &str) -> Result<Self, ParseError> {
        match kind {
            MethodKind::Email => Email::parse(s).map(Destination::Email),
            MethodKind::Sms | MethodKind::Voice => {
                let phone = PhoneNumber::parse(s)?;
                match (phone.line(), kind) {
                    (Line::Mobile | Line::FixedLineOrMobile, _) | (Line::FixedLine, MethodKind::Voice) => {}
                    (Line::FixedLine, _) => {
                        return Err(ParseError::new(
                            "destination",
                            "is a fixed line, which cannot receive a text message: give a mobile number, or choose a voice call",
                        ))
                    }
                    (Line::Service, _) => {
                        return Err(ParseError::new(
                            "destination",
                            "is a premium-rate, toll-free, shared-cost or other service number, not a person's phone: give a mobile number",
                        ))
                    }
                }
                Ok(Destination::Phone(phone))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(kind: MethodKind, s: &str) -> bool {
        Destination::parse(kind, s).is_err()
    }

    #[test]
    fn texts_go_to_mobiles_calls_also_to_fixed_lines_and_service_numbers_get_neither() {
        for number in ["+447400123456", "+12025550123", "+15555550101", "+12125551234", "+33612345678"] {
            assert!(!refused(MethodKind::Sms, number), "{number} may receive a text");
            assert!(!refused(MethodKind::Voice, number), "{number} may receive a call");
        }
        // A London fixed line: a call, not a text.
        assert!(refused(MethodKind::Sms, "+442079460000"));
        assert!(!refused(MethodKind::Voice, "+442079460000"));
        // UK premium-rate (09) and shared-cost (0845), US premium-rate (900) and toll-free (800):
        // neither.
        for number in ["+449098790000", "+448454640000", "+19002001234", "+18002345678"] {
            for kind in [MethodKind::Sms, MethodKind::Voice] {
                let e = Destination::parse(kind, number).expect_err(number);
                assert!(e.reason.contains("not a person's phone"), "{number}: {}", e.reason);
            }
        }
    }

    #[test]
    fn a_stored_number_is_read_whatever_its_kind() {
        let stored = serde_json::json!({ "type": "phone", "value": "+449098790000" });
        let read: Destination = serde_json::from_value(stored).expect("read as stored");
        assert_eq!(read.as_str(), "+449098790000");
    }
}
