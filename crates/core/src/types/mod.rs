//! Values of the domain that can only exist when valid: each is built by parsing, one type a file.

mod code;
mod destination;
mod email;
mod method_id;
mod method_kind;
mod opaque;
mod phone_number;
mod timestamp;
mod username;

pub use code::Code;
pub use destination::Destination;
pub use email::Email;
pub use method_id::MethodId;
pub use method_kind::MethodKind;
pub use opaque::{ResetToken, SessionId};
pub use phone_number::{Line, PhoneNumber};
pub use timestamp::Timestamp;
pub use username::Username;

/// Why a value given by a caller was refused; `field` names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

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
        let country = |n: &str| PhoneNumber::parse(n).expect("number").country();
        assert_eq!(country("+447400123456").as_deref(), Some("GB"));
        assert_eq!(country("+15555550101").as_deref(), Some("US"), "the fictional range");
        assert_eq!(country("+14162340000").as_deref(), Some("CA"), "+1 is shared: the area code tells");
        assert!(PhoneNumber::is_country("US") && !PhoneNumber::is_country("us") && !PhoneNumber::is_country("XX"));
        assert!(PhoneNumber::parse("+99999").is_err());
        assert!(PhoneNumber::parse("+1 555 555 0199").is_ok(), "fictional numbers are for demos");
        assert!(PhoneNumber::parse("+1 555 555 0200").is_err(), "area code 555 is not real");
        assert!(PhoneNumber::parse(&format!("+1{}", "5".repeat(40))).is_err());
    }

    #[test]
    fn a_fictional_line_in_a_service_area_code_is_still_a_service_number() {
        let line = |n: &str| PhoneNumber::parse(n).expect("number").line();
        assert_eq!(line("+15555550101"), Line::FixedLineOrMobile, "the demo range");
        assert_eq!(line("+12025550143"), Line::FixedLineOrMobile, "a fictional line in a real area code");
        for service in ["+19005550100", "+18005550100", "+18885550199", "+15005550100"] {
            assert_eq!(line(service), Line::Service, "{service}");
        }
        assert_eq!(line("+447400123456"), Line::Mobile);
        assert_eq!(line("+442079460958"), Line::FixedLine);
        assert_eq!(line("+449090000000"), Line::Service);
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
