#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod deletion;
mod erasure;
mod error;
mod format;
mod governance;
mod invitation;
mod recovery;
mod roster;

pub use deletion::FamilyDeletion;
pub use erasure::{EnvelopeErasure, MAX_ERASURE_IDS};
pub use error::Error;
pub use format::{
    Departed, MAX_DEPARTED, MAX_MEMBERS, MAX_RECOVERY_KEYS, RosterProposal, SignedRoster,
};
pub use governance::{Change, ChangeClass};
pub use invitation::{Anchor, ChainFollower, Invitation};
pub use recovery::{RecoveryKey, RecoveryPublicKey};
pub use roster::{Admission, Roster, RosterSenders};
