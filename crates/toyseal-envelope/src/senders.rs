//! Who an opener accepts as the sender of an envelope: decided after the header checkpoint has
//! verified and before the file key is unwrapped or any content released.

use std::sync::Arc;
use toyseal_core::PublicIdentity;

/// A policy over senders. Implemented for a plain list of trusted identities (any sequence
/// accepted) and, in `toyseal-roster`, for a family roster (current members, and departed
/// devices only for envelopes sealed before their removal).
pub trait TrustedSenders {
    /// Whether `sender`'s envelope with this signed `sequence` may be opened.
    fn admits(&self, sender: &PublicIdentity, sequence: u64) -> bool;
}

impl TrustedSenders for [PublicIdentity] {
    fn admits(&self, sender: &PublicIdentity, _sequence: u64) -> bool {
        self.contains(sender)
    }
}

impl<const N: usize> TrustedSenders for [PublicIdentity; N] {
    fn admits(&self, sender: &PublicIdentity, sequence: u64) -> bool {
        self.as_slice().admits(sender, sequence)
    }
}

impl TrustedSenders for Vec<PublicIdentity> {
    fn admits(&self, sender: &PublicIdentity, sequence: u64) -> bool {
        self.as_slice().admits(sender, sequence)
    }
}

impl<T: TrustedSenders + ?Sized> TrustedSenders for &T {
    fn admits(&self, sender: &PublicIdentity, sequence: u64) -> bool {
        (**self).admits(sender, sequence)
    }
}

impl<T: TrustedSenders + ?Sized> TrustedSenders for Arc<T> {
    fn admits(&self, sender: &PublicIdentity, sequence: u64) -> bool {
        (**self).admits(sender, sequence)
    }
}
