//! Who an opener accepts as the sender of an envelope: decided after the header checkpoint has
//! verified and before the file key is unwrapped or any content released.

use std::sync::Arc;
use toyseal_core::PublicIdentity;

/// Where an envelope sits on its sender's chain (docs/spec/envelope.md §11): its signed
/// sequence number, the link hash of the sender's previous envelope it names, and its own link
/// hash (`header_hash`, §5.1). All three are known, and signed, at checkpoint 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainLink {
    /// The sender's sequence number for the envelope.
    pub sequence: u64,
    /// The link hash of the sender's previous envelope (all zero for its first).
    pub previous: [u8; 32],
    /// The envelope's own link hash: SHA-256 of its whole header.
    pub header_hash: [u8; 32],
}

/// A policy over senders. Implemented for a plain list of trusted identities (any link
/// accepted) and, in `toyseal-roster`, for a family roster (current members, and departed
/// devices only on the sender chain their removal recorded).
pub trait TrustedSenders {
    /// Whether `sender`'s envelope at this place on its chain may be opened.
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool;
}

impl TrustedSenders for [PublicIdentity] {
    fn admits(&self, sender: &PublicIdentity, _link: &ChainLink) -> bool {
        self.contains(sender)
    }
}

impl<const N: usize> TrustedSenders for [PublicIdentity; N] {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.as_slice().admits(sender, link)
    }
}

impl TrustedSenders for Vec<PublicIdentity> {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.as_slice().admits(sender, link)
    }
}

impl<T: TrustedSenders + ?Sized> TrustedSenders for &T {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        (**self).admits(sender, link)
    }
}

impl<T: TrustedSenders + ?Sized> TrustedSenders for Arc<T> {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        (**self).admits(sender, link)
    }
}
