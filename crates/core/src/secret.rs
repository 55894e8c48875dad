//! Keyed hashing of codes and tokens (S6 in docs/security.md): HMAC-SHA-256 with a secret
//! pepper, compared in constant time. Only these digests are stored.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
#[error("the hashing pepper must be at least 32 bytes")]
pub struct WeakPepper;

/// The secret key of every keyed hash. Never printed.
#[derive(Clone)]
pub struct Pepper(Zeroizing<Vec<u8>>);

impl Pepper {
    pub const MIN_BYTES: usize = 32;

    pub fn new(bytes: Vec<u8>) -> Result<Self, WeakPepper> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(WeakPepper);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([redacted])")
    }
}

/// A keyed digest, stored as lower-case hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time comparison with a stored hex digest; a malformed one never matches.
    pub fn matches_hex(&self, stored: &str) -> bool {
        let mut other = [0u8; 32];
        if hex::decode_to_slice(stored, &mut other).is_err() {
            return false;
        }
        self.0.ct_eq(&other).into()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(..)")
    }
}

/// Computes HMAC-SHA-256 over a purpose label and length-prefixed parts (each preceded by its
/// length as a big-endian u64), so no two different inputs (or purposes) can produce the same
/// message.
#[derive(Clone, Debug)]
pub struct KeyedHasher {
    pepper: Pepper,
}

impl KeyedHasher {
    pub fn new(pepper: Pepper) -> Self {
        Self { pepper }
    }

    pub fn digest(&self, purpose: &str, parts: &[&[u8]]) -> Digest {
        let mut mac = HmacSha256::new_from_slice(&self.pepper.0).expect("HMAC accepts any key length");
        for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Digest(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(byte: u8) -> KeyedHasher {
        KeyedHasher::new(Pepper::new(vec![byte; 32]).expect("long enough"))
    }

    #[test]
    fn digests_depend_on_key_purpose_and_framing() {
        let h = hasher(1);
        let d = h.digest("code", &[b"ab", b"c"]);
        assert!(d.matches_hex(&d.to_hex()));
        assert!(!h.digest("code", &[b"a", b"bc"]).matches_hex(&d.to_hex()));
        assert!(!h.digest("token", &[b"ab", b"c"]).matches_hex(&d.to_hex()));
        assert!(!hasher(2).digest("code", &[b"ab", b"c"]).matches_hex(&d.to_hex()));
        assert!(!d.matches_hex("not hex"));
        assert!(!d.matches_hex(""));
    }

    fn hmac_hex(key: &[u8], data: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn the_primitive_is_hmac_sha_256_of_rfc_4231() {
        // RFC 4231, test cases 1, 2 and 6 (a key longer than the block size).
        assert_eq!(
            hmac_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn digests_have_known_answers() {
        // Computed apart from this crate: HMAC-SHA-256 keyed with the pepper, over the purpose
        // and each part, each preceded by its length as a big-endian u64. Stored digests depend
        // on this framing; changing it makes every stored code, token and session unreadable.
        assert_eq!(
            hasher(7).digest("code", &[b"x"]).to_hex(),
            "d9d5f322b009ba502bc9ef59a4b8d685a3626035aa0ac2013e39602a52223433"
        );
        let h = KeyedHasher::new(Pepper::new(b"0123456789abcdef0123456789abcdef".to_vec()).expect("pepper"));
        let d = h.digest("reset-code", &[b"AAAAAAAAAAAAAAAAAAAAAA", b"email", b"alice@example.com", b"12345678"]);
        assert_eq!(d.to_hex(), "c703e22423d7bcbe83b2382cd158f8ff19b58182394b32ac32afc8ecf9612e13");
    }

    #[test]
    fn short_peppers_are_refused_and_never_printed() {
        assert!(Pepper::new(vec![1; 31]).is_err());
        let p = Pepper::new(b"0123456789abcdef0123456789abcdef".to_vec()).expect("ok");
        assert!(!format!("{p:?}").contains("0123"));
    }
}
