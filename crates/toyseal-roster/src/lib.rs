#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod format;
mod roster;

pub use error::Error;
pub use format::{MAX_MEMBERS, RosterProposal, SignedRoster};
pub use roster::Roster;
