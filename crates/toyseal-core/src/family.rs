//! Family ids: the routing name of a family (roster, server paths, envelope headers).

use crate::Error;
use std::{fmt, str::FromStr};

/// A 16-byte random family id, shown as 32 hex digits. Not secret; carries no personal data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FamilyId([u8; 16]);

impl FamilyId {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// A fresh random family id.
    pub fn generate(rng: &mut impl crate::CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({self})")
    }
}

impl FromStr for FamilyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        // Same text form as a device id.
        let id: crate::DeviceId = s
            .parse()
            .map_err(|_| Error::KeyText("a family id is 32 hex digits"))?;
        Ok(Self(*id.as_bytes()))
    }
}
