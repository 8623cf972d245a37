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
mod seal;
mod verify;
mod wrap;

pub mod stream;

pub use error::Error;
pub use format::{
    DEFAULT_CHUNK_SIZE_LOG2, FIXED_HEADER_LEN, Header, MAGIC, MAX_CHUNK_SIZE_LOG2, MAX_HEADER_LEN,
    MAX_RECIPIENTS, MIN_CHUNK_SIZE_LOG2, STANZA_LEN, SUITE, Stanza, VERSION,
};
pub use io::{OpenReader, SealWriter};
pub use metadata::Metadata;
pub use open::{DEFAULT_SIZE_LIMIT, OpenOptions, Opened, Opener, open};
pub use padding::padme;
pub use seal::{Finishing, Progress, SealOptions, Sealer, seal};
pub use verify::{Verifier, verify};

/// Parses an envelope's header without any key (what `toyseal inspect` shows).
pub fn inspect(envelope: &[u8]) -> Result<Header, Error> {
    Header::parse(envelope).map(|(h, _)| h)
}
