//! Randomness for codes, tokens and ids.

use rand::RngCore;

/// Randomness for codes, tokens and ids. Production uses the operating system's CSPRNG.
pub trait Rng: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}
