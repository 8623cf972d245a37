//! Randomness enters the protocol code from outside (sans-IO): every function that needs it takes
//! a `&mut impl CryptoRng`. [`OsRng`] is the operating system's generator for real use; tests and
//! vector generators pass a seeded ChaCha20 generator instead.

pub use rand_core::CryptoRng;
use rand_core::{TryCryptoRng, TryRng};

/// The operating system's CSPRNG (`getrandom`).
///
/// Failing to read the OS generator is not recoverable for a cryptographic SDK: like
/// `rand_core::UnwrapErr(getrandom::SysRng)`, this aborts the calling thread with a panic
/// instead of producing predictable keys. On the platforms toyseal supports it does not fail
/// after boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl TryRng for OsRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        // Invariant: the OS generator does not fail once the system has booted; predictable
        // output would be worse than stopping (see the type's docs).
        #[allow(clippy::panic)]
        if getrandom::fill(dst).is_err() {
            panic!("the operating system's random number generator failed");
        }
        Ok(())
    }
}

impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn os_rng_produces_distinct_output() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut a);
        OsRng.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
