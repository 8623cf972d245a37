//! Verifying an envelope's sender without any decryption key: what the server does before it
//! stores anything. Streaming, bounded memory; every checkpoint is verified.

use crate::format::Header;
use crate::framer::{Framer, Step};
use crate::{Error, OpenOptions};

/// A streaming verifier: push the whole envelope, then [`finish`](Self::finish).
pub struct Verifier {
    framer: Framer,
}

/// A header whose sender is proved: the header checkpoint and every later checkpoint, up to the
/// final one, verified under the sender's key. Only [`Verifier::finish`] and [`verify`] make
/// one; [`crate::inspect`] returns an unproved [`Header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHeader(Header);

impl VerifiedHeader {
    /// The proved header.
    pub fn header(&self) -> &Header {
        &self.0
    }
}

impl std::ops::Deref for VerifiedHeader {
    type Target = Header;
    fn deref(&self) -> &Header {
        &self.0
    }
}

impl Verifier {
    /// Starts verifying.
    pub fn new(options: OpenOptions) -> Self {
        Self {
            framer: Framer::new(options.size_limit()),
        }
    }

    /// Feeds envelope bytes; fails at the first checkpoint that does not verify.
    pub fn push(&mut self, mut input: &[u8]) -> Result<(), Error> {
        loop {
            match self.framer.step(&mut input) {
                Ok(Step::NeedMore) => return Ok(()),
                Ok(Step::Header | Step::Chunk | Step::Checkpoint { .. }) => {}
                Err(e) => {
                    self.framer.close();
                    return Err(e);
                }
            }
        }
    }

    /// Checks that the envelope was complete: the final checkpoint verified. Returns the
    /// header, whose sender is now proved.
    pub fn finish(mut self) -> Result<VerifiedHeader, Error> {
        let parsed = self.framer.finish()?;
        Ok(VerifiedHeader(parsed.header.clone()))
    }
}

/// Verifies a whole envelope in memory; returns its header with a proved sender.
pub fn verify(envelope: &[u8], options: OpenOptions) -> Result<VerifiedHeader, Error> {
    let mut v = Verifier::new(options);
    v.push(envelope)?;
    v.finish()
}
