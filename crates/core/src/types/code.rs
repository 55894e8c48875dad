//! One-time codes.

use std::fmt;

use super::ParseError;
use crate::ports::Rng;

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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::ports::SystemRng;

    /// Hands out exactly the bytes it was given, in order; asking for more is a test failure.
    struct Scripted(Mutex<VecDeque<u8>>);

    impl Scripted {
        fn new(bytes: impl IntoIterator<Item = u8>) -> Self {
            Self(Mutex::new(bytes.into_iter().collect()))
        }
        fn left(&self) -> usize {
            self.0.lock().expect("lock").len()
        }
    }

    impl Rng for Scripted {
        fn fill(&self, buf: &mut [u8]) {
            let mut bytes = self.0.lock().expect("lock");
            for b in buf {
                *b = bytes.pop_front().expect("the generator asked for more bytes than scripted");
            }
        }
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
    fn bytes_from_250_up_are_skipped() {
        // Taking `byte % 10` of every byte would favour 0 to 5 (26 bytes each against 25):
        // the bytes 250 to 255 are drawn again instead.
        let rng = Scripted::new([250, 255, 3, 252, 17, 249, 251, 0, 99, 254, 10, 200, 253, 5, 42]);
        assert_eq!(Code::generate(&rng, 8).expose(), "37909005");
    }

    #[test]
    fn every_accepted_byte_value_gives_each_digit_equally_often() {
        // Every byte value once, largest first: the 250 accepted ones give each digit 25 times.
        let rng = Scripted::new((0..=255u8).rev());
        let code = Code::generate(&rng, 250);
        assert_eq!(rng.left(), 0);
        let mut counts = [0usize; 10];
        for b in code.expose().bytes() {
            counts[usize::from(b - b'0')] += 1;
        }
        assert_eq!(counts, [25; 10]);
    }
}
