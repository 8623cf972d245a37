//! Adapters that feed the caller's randomness (sans-IO) to `spake2` (rand_core 0.6 traits) and
//! `snow` (its own `Random` trait). No randomness is drawn from anywhere else.

use toyseal_core::CryptoRng;
use zeroize::Zeroizing;

/// Bytes drawn up front from the caller's generator and served to a library that wants an RNG.
/// Running out is an error (snow) or yields a deterministic failure (never silent reuse).
pub(crate) struct Drawn {
    bytes: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl Drawn {
    pub fn new(rng: &mut impl CryptoRng, len: usize) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        rng.fill_bytes(&mut bytes);
        Self { bytes, pos: 0 }
    }

    fn take(&mut self, dest: &mut [u8]) -> bool {
        match self.bytes.get(self.pos..self.pos + dest.len()) {
            Some(src) => {
                dest.copy_from_slice(src);
                self.pos += dest.len();
                true
            }
            None => false,
        }
    }
}

impl rand_core_06::RngCore for Drawn {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // spake2 draws one 64-byte wide scalar; `new` draws enough. Should a future version
        // draw more, fail closed: an all-0xff draw would be visible in tests, never reused.
        if !self.take(dest) {
            dest.fill(0xff);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core_06::CryptoRng for Drawn {}

impl snow::types::Random for Drawn {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        if self.take(dest) {
            Ok(())
        } else {
            Err(snow::Error::Rng)
        }
    }
}

/// snow's resolver with our randomness: X25519 from curve25519-dalek (default resolver),
/// ChaCha20-Poly1305 and SHA-256 from ring.
pub(crate) struct Resolver {
    rng: std::sync::Mutex<Option<Drawn>>,
}

impl Resolver {
    pub fn new(drawn: Drawn) -> Self {
        Self {
            rng: std::sync::Mutex::new(Some(drawn)),
        }
    }
}

impl snow::resolvers::CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        let drawn = self.rng.lock().ok()?.take()?;
        Some(Box::new(drawn))
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(
        &self,
        choice: &snow::params::HashChoice,
    ) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::RingResolver.resolve_hash(choice)
    }
    fn resolve_cipher(
        &self,
        choice: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::RingResolver.resolve_cipher(choice)
    }
}
