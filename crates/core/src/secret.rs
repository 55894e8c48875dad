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

/// A secret sealed for storage: AES-256-GCM with a key derived from the pepper, a fresh 96-bit
/// nonce, and the id of the key, so keys can be rotated and an old value still told apart.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed {{ key_id: {:?}, .. }}", self.key_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the value was sealed with another key ({0})")]
    UnknownKey(String),
    #[error("the sealed value is damaged, or belongs to someone else")]
    Damaged,
}

/// Seals secrets that must be read back (authenticator seeds): AES-256-GCM, its key derived from
/// the pepper with a label of its own, so one secret in Secrets Manager (or `secrets.json`)
/// serves both hashing and sealing without one key doing two jobs (S6 in docs/security.md).
#[derive(Clone)]
pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
    key_id: String,
}

impl Sealer {
    pub fn new(pepper: &Pepper) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(&pepper.0).expect("HMAC accepts any key length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let key = Zeroizing::new(derive(b"sspr seal key v1"));
        let key_id = hex::encode(&derive(b"sspr seal key id v1")[..8]);
        Self { key, key_id }
    }

    /// The id stored beside every value this sealer seals.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn cipher(&self) -> aes_gcm::Aes256Gcm {
        use aes_gcm::KeyInit as _;
        aes_gcm::Aes256Gcm::new(aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(&*self.key))
    }

    /// Seals `plain` for `owner` (bound as associated data: a value copied to another owner's
    /// record does not open there).
    pub fn seal(&self, rng: &dyn crate::ports::Rng, owner: &[u8], plain: &[u8]) -> Sealed {
        use aes_gcm::aead::{Aead as _, Payload};
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(aes_gcm::Nonce::from_slice(&nonce), Payload { msg: plain, aad: owner })
            .expect("AES-GCM seals any message shorter than 64 GiB");
        Sealed { key_id: self.key_id.clone(), nonce: hex::encode(nonce), ciphertext: hex::encode(ciphertext) }
    }

    /// Opens what [`Sealer::seal`] sealed for the same `owner`.
    pub fn open(&self, sealed: &Sealed, owner: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        use aes_gcm::aead::{Aead as _, Payload};
        if sealed.key_id != self.key_id {
            return Err(SealError::UnknownKey(sealed.key_id.clone()));
        }
        let nonce: [u8; 12] =
            hex::decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or(SealError::Damaged)?;
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| SealError::Damaged)?;
        self.cipher()
            .decrypt(aes_gcm::Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: owner })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Damaged)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer {{ key_id: {:?} }}", self.key_id)
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

    #[test]
    fn sealed_values_open_only_with_their_key_and_owner() {
        use crate::ports::SystemRng;
        let pepper = |b: u8| Pepper::new(vec![b; 32]).expect("pepper");
        let sealer = Sealer::new(&pepper(1));
        let seed = b"12345678901234567890";
        let sealed = sealer.seal(&SystemRng, b"USER#alice", seed);
        assert_eq!(sealer.open(&sealed, b"USER#alice").expect("opens").as_slice(), seed);
        assert!(!sealed.ciphertext.contains(&hex::encode(seed)), "nothing in clear");
        assert_ne!(sealer.seal(&SystemRng, b"USER#alice", seed).nonce, sealed.nonce, "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed, b"USER#bob"), Err(SealError::Damaged), "bound to its owner");
        let mut tampered = sealed.clone();
        let flipped = if tampered.ciphertext.starts_with('0') { '1' } else { '0' };
        tampered.ciphertext.replace_range(0..1, &flipped.to_string());
        assert_eq!(sealer.open(&tampered, b"USER#alice"), Err(SealError::Damaged), "tampering is caught");
        let other = Sealer::new(&pepper(2));
        assert_ne!(other.key_id(), sealer.key_id());
        assert!(matches!(other.open(&sealed, b"USER#alice"), Err(SealError::UnknownKey(_))));
        assert_eq!(Sealer::new(&pepper(1)).key_id(), sealer.key_id(), "the key id follows the key");
        assert!(!format!("{sealer:?} {sealed:?}").contains(&sealed.ciphertext));
    }

    #[test]
    fn the_sealing_key_id_has_a_known_answer() {
        // HMAC-SHA-256(key = 32 bytes of 0x01, "sspr seal key id v1"), first 8 bytes, computed
        // independently (Python's hmac module).
        let sealer = Sealer::new(&Pepper::new(vec![1; 32]).expect("pepper"));
        assert_eq!(sealer.key_id(), "83f91c7acf7d97e7");
    }
}
