//! Opaque 128-bit secrets handed to a caller: session handles and reset tokens.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::ParseError;
use crate::ports::Rng;

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

/// The handle of a reset session, held by the person resetting; stored only as a keyed hash.
/// It is 128 random bits, a dot, and the tag of the limits of the name typed at start (16 hex
/// digits; docs/security.md, "Limits"), so every step reads the person's limits together with
/// the session. The whole handle is hashed into the session's key: a changed tag finds no
/// session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId {
    text: String,
}

impl SessionId {
    const TAG_CHARS: usize = 16;

    /// A new handle for a session under the limits tagged `tag` (16 lower-case hex digits).
    pub fn generate(rng: &dyn Rng, tag: &str) -> Self {
        Self { text: format!("{}.{tag}", OpaqueSecret::generate(rng).0) }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let invalid = || ParseError::new("session", "is not valid");
        let (secret, tag) = s.split_once('.').ok_or_else(invalid)?;
        OpaqueSecret::parse(secret, "session")?;
        let hex = tag.len() == Self::TAG_CHARS && tag.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(invalid());
        }
        Ok(Self { text: s.to_owned() })
    }

    /// The value itself, for the one response that hands it out and for hashing.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The tag of the limits the session counts under.
    pub fn limits_tag(&self) -> &str {
        self.text.split_once('.').map_or("", |(_, tag)| tag)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}
opaque_secret!(
    /// Proof that a session verified enough methods; single use, stored only as a keyed hash.
    ResetToken,
    "reset_token"
);
