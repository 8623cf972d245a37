#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod family;
mod identity;
mod keyfile;
mod keystore;
mod rng;
mod text;
mod x25519;

pub use error::Error;
pub use family::FamilyId;
pub use identity::{DeviceId, DeviceIdentity, PublicIdentity, Role, SIGNATURE_LEN, Signature};
pub use keystore::{
    FileKeyStore, KeyStore, SenderState, SequenceStore, read_sender_state, record_sent,
};
pub use rng::{CryptoRng, OsRng};
pub use x25519::{X25519PublicKey, x25519_checked};

/// Re-exported so that callers can hold exported secrets in the same wrapper the crate uses.
pub use zeroize::Zeroizing;
