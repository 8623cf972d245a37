//! `std::io` adapters over the sans-IO [`Sealer`] and [`Opener`], for files and pipes.

use crate::{Error, OpenOptions, Opened, Opener, SealOptions, Sealer, TrustedSenders};
use std::borrow::Borrow;
use std::io::{self, Read, Write};
use std::sync::Arc;
use toyseal_core::{CryptoRng, DeviceIdentity, PublicIdentity};

fn to_io(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes an envelope to `W` as content is written to it. Call [`finish`](Self::finish);
/// dropping the writer leaves an invalid (unfinished) envelope, which readers reject.
/// Holds the sender's identity as its [`Sealer`] does (`I`: an `Arc` by default).
pub struct SealWriter<W: Write, I = Arc<DeviceIdentity>> {
    sealer: Sealer<I>,
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write, I: Borrow<DeviceIdentity>> SealWriter<W, I> {
    /// This envelope's chain link ([`Sealer::link`]): record it in the sender state before the
    /// first byte is written.
    pub fn link(&self) -> crate::ChainLink {
        self.sealer.link()
    }

    /// Starts an envelope written to `inner`.
    pub fn new(
        inner: W,
        sender: I,
        recipients: &[PublicIdentity],
        options: &SealOptions,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, Error> {
        Ok(Self {
            sealer: Sealer::new(sender, recipients, options, rng)?,
            inner,
            buf: Vec::new(),
        })
    }

    /// Writes the end of the envelope (padding chunk by chunk, so memory stays bounded) and
    /// the signature; returns the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.clear();
        let mut finishing = self.sealer.finish_in_steps(&mut self.buf).map_err(to_io)?;
        loop {
            let progress = finishing.step(&mut self.buf).map_err(to_io)?;
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
            if progress == crate::Progress::Complete {
                break;
            }
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write, I: Borrow<DeviceIdentity>> Write for SealWriter<W, I> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.clear();
        self.sealer.update(data, &mut self.buf).map_err(to_io)?;
        self.inner.write_all(&self.buf)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Content still in the sealer's chunk buffer cannot be written before it is complete
        // (or finished); flushing flushes what has been sealed.
        self.inner.flush()
    }
}

/// Reads content out of an envelope read from `R`.
///
/// `read` returns only content that a verified checkpoint proved the sender's, and `Ok(0)`
/// (end of file) only after the final checkpoint verified; any failure, including truncation
/// and a bad signature, is an `Err` of kind `InvalidData` wrapping the envelope [`Error`].
///
/// Owns its [`Opener`] (`P` the sender policy, `I` this device's identity, as there).
pub struct OpenReader<R: Read, P = Vec<PublicIdentity>, I = Arc<DeviceIdentity>> {
    inner: R,
    opener: Option<Opener<P, I>>,
    out: Vec<u8>,
    pos: usize,
    input: Vec<u8>,
    opened: Option<Opened>,
    failed: Option<io::ErrorKind>,
    deferred: Option<io::Error>,
}

impl<R: Read, P: TrustedSenders, I: Borrow<DeviceIdentity>> OpenReader<R, P, I> {
    /// Opens the envelope read from `inner`, for `me`, accepting only senders `trusted` admits.
    pub fn new(inner: R, me: I, trusted: P, options: OpenOptions) -> Self {
        Self {
            inner,
            opener: Some(Opener::new(me, trusted, options)),
            out: Vec::new(),
            pos: 0,
            input: vec![0; 64 * 1024],
            opened: None,
            failed: None,
            deferred: None,
        }
    }

    /// Runs the re-encryption check over `recipients` (see [`Opener::check_recipients`]):
    /// an envelope whose listed recipients did not all receive the same file key fails.
    pub fn check_recipients(mut self, recipients: &[PublicIdentity]) -> Self {
        self.opener = self.opener.take().map(|o| o.check_recipients(recipients));
        self
    }

    /// What was proved, once `read` has returned end of file.
    pub fn opened(&self) -> Option<&Opened> {
        self.opened.as_ref()
    }
}

impl<R: Read, P: TrustedSenders, I: Borrow<DeviceIdentity>> Read for OpenReader<R, P, I> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        // Once failed, always failed: a retrying caller must never see a clean end of file.
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, Error::StreamClosed));
        }
        let r = self.read_inner(dst);
        if let Err(e) = &r
            && e.kind() != io::ErrorKind::Interrupted
        {
            self.failed = Some(e.kind());
            self.opener = None;
        }
        r
    }
}

impl<R: Read, P: TrustedSenders, I: Borrow<DeviceIdentity>> OpenReader<R, P, I> {
    fn read_inner(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = (self.out.len() - self.pos).min(dst.len());
                dst[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            self.out.clear();
            self.pos = 0;
            if let Some(e) = self.deferred.take() {
                return Err(e);
            }
            let Some(opener) = self.opener.as_mut() else {
                return Ok(0);
            };
            let n = match self.inner.read(&mut self.input) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                let opener = self
                    .opener
                    .take()
                    .ok_or_else(|| to_io(Error::StreamClosed))?;
                self.opened = Some(opener.finish().map_err(to_io)?);
            } else if let Err(e) = opener.push(&self.input[..n], &mut self.out) {
                self.opener = None;
                // Content a checkpoint proved before the failure is served first; the error
                // comes with the next read (and every read after it).
                if self.out.is_empty() {
                    return Err(to_io(e));
                }
                self.deferred = Some(to_io(e));
            }
        }
    }
}
