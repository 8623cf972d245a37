#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod format;
mod framer;
mod io;
mod metadata;
mod open;
mod padding;
#[cfg(feature = "parallel")]
mod parallel;
mod schedule;
mod seal;
mod senders;
mod sequence;
mod verify;
mod wrap;

/// Hazmat: the raw STREAM layer (age's payload layout), exposed for the C2SP age testkit
/// harness and benchmarks only. Not part of the stable API.
#[doc(hidden)]
pub mod stream;

pub use error::Error;
pub use format::{
    COMMITMENT_LEN, DEFAULT_CHUNK_SIZE_LOG2, DEFAULT_SEGMENT_LOG2, FIXED_HEADER_LEN, Header, MAGIC,
    MAX_CHUNK_SIZE_LOG2, MAX_HEADER_LEN, MAX_RECIPIENTS, MAX_SEGMENT_LOG2, MIN_CHUNK_SIZE_LOG2,
    STANZA_LEN, SUITE, Stanza, VERSION,
};
pub use io::{OpenReader, SealWriter};
pub use metadata::Metadata;
pub use open::{DEFAULT_SIZE_LIMIT, OpenOptions, Opened, Opener, open};
pub use padding::padme;
#[cfg(feature = "parallel")]
pub use parallel::{open_parallel, seal_parallel};
pub use seal::{Finishing, Progress, SealOptions, Sealer, seal};
pub use senders::{ChainLink, TrustedSenders};
pub use sequence::{Freshness, ReceiveState, SequenceTracker};
pub use verify::{VerifiedHeader, Verifier, verify};

/// Parses an envelope's header without any key and without checking any signature (what
/// `toyseal inspect` shows before it verifies). Nothing in it is proved; use [`verify`].
pub fn inspect(envelope: &[u8]) -> Result<Header, Error> {
    Header::parse(envelope).map(|(h, _)| h)
}
