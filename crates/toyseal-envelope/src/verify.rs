//! Verifying an envelope's sender without any decryption key: what the server does before it
//! stores anything. Streaming, bounded memory.

use crate::format::{Header, signed_message};
use crate::framer::{Framer, Step};
use crate::{Error, OpenOptions};

/// A streaming verifier: push the whole envelope, then [`finish`](Self::finish).
pub struct Verifier {
    framer: Framer,
}

impl Verifier {
    /// Starts verifying.
    pub fn new(options: OpenOptions) -> Self {
        Self {
            framer: Framer::new(options.size_limit()),
        }
    }

    /// Feeds envelope bytes.
    pub fn push(&mut self, mut input: &[u8]) -> Result<(), Error> {
        loop {
            match self.framer.step(&mut input) {
                Ok(Step::NeedMore) => return Ok(()),
                Ok(Step::Header | Step::Chunk) => {}
                Err(e) => {
                    self.framer.close();
                    return Err(e);
                }
            }
        }
    }

    /// Checks the framing and the sender's signature over header and every chunk; returns the
    /// header, whose sender is now proved.
    pub fn finish(mut self) -> Result<Header, Error> {
        let tail = self.framer.finish()?;
        let header = &tail.parsed.header;
        header
            .sender
            .verify(&signed_message(tail.digest.as_ref()), &tail.signature)
            .map_err(|_| Error::Signature)?;
        Ok(header.clone())
    }
}

/// Verifies a whole envelope in memory; returns its header with a proved sender.
pub fn verify(envelope: &[u8], options: OpenOptions) -> Result<Header, Error> {
    let mut v = Verifier::new(options);
    v.push(envelope)?;
    v.finish()
}
