//! The one error type of `toyseal-envelope`.

/// Why sealing, parsing, verifying or opening an envelope failed.
///
/// Header errors are specific: the header is public, so naming the problem leaks nothing.
/// Everything that depends on secret keys collapses into [`Error::Decrypt`] on purpose, so a
/// failed open is no oracle about which byte or which check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not start with the envelope magic `toyseal`.
    #[error("not a toyseal envelope (bad magic bytes)")]
    BadMagic,
    /// The format version is not 2.
    #[error("unsupported envelope version {0} (this build reads version 2)")]
    UnsupportedVersion(u8),
    /// The suite id names no suite this build implements.
    #[error("unsupported cipher suite 0x{0:04x} (this build implements 0x0001)")]
    UnsupportedSuite(u16),
    /// Reserved header flags were set.
    #[error("reserved header flags set: 0x{0:02x}")]
    ReservedFlags(u8),
    /// The chunk size exponent is outside 10..=20 (1 KiB ..= 1 MiB).
    #[error("chunk size 2^{0} is outside the allowed 2^10..=2^20 bytes")]
    ChunkSize(u8),
    /// The segment exponent is below the chunk exponent or above 24 (16 MiB between
    /// checkpoints), or a checkpoint interval outside those bounds was asked for.
    #[error("segment size 2^{0} is outside 2^chunk_size_log2..=2^24 bytes")]
    SegmentSize(u8),
    /// The header names no family (all-zero family id) but a non-zero roster version.
    #[error("a roster version without a family id")]
    RosterVersionWithoutFamily,
    /// The header is unsequenced (sequence 0) but names a previous envelope: an unsequenced
    /// envelope is on no sender chain (docs/spec/envelope.md §4.3 step 12).
    #[error("a previous-envelope hash without a sequence number")]
    PreviousWithoutSequence,
    /// No recipients: an envelope nobody can open is refused.
    #[error("an envelope needs at least one recipient")]
    NoRecipients,
    /// More recipients than the format allows.
    #[error("{count} recipients exceed the limit of {max}")]
    TooManyRecipients {
        /// How many were given or declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same recipient key appears twice (sealing), or two stanzas carry the same key id
    /// (parsing).
    #[error("the same recipient was given twice")]
    DuplicateRecipient,
    /// A key in the header or a recipient key is malformed or weak (e.g. low-order X25519).
    #[error("invalid key: {0}")]
    Key(#[from] toyseal_core::Error),
    /// Metadata is too long or not encodable.
    #[error("invalid metadata: {0}")]
    Metadata(&'static str),
    /// The input ended before a complete envelope (header, chunks and signature) was read.
    #[error("the envelope is truncated")]
    Truncated,
    /// The envelope is larger than the configured limit.
    #[error("the envelope exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// None of the envelope's recipient entries is addressed to this device.
    #[error("this device is not a recipient of the envelope")]
    NotARecipient,
    /// Decryption or authentication of the content failed. Deliberately coarse: flipped bits,
    /// reordered, dropped or duplicated chunks, malformed records or content, a file key that
    /// does not match the header's key commitment, and another recipient's stanza that does not
    /// carry the same file key all end here.
    #[error("the envelope could not be decrypted and authenticated")]
    Decrypt,
    /// A checkpoint signature is invalid: the header or the content since the previous
    /// checkpoint was not sealed by the device named in the header (or was changed after). No
    /// content after the last valid checkpoint has been released.
    #[error("a checkpoint signature of the sender is invalid")]
    Signature,
    /// The sender named in the header is not one the caller trusts, or the caller's policy
    /// refuses this sender's sequence number (e.g. a device removed from the roster before it
    /// sealed this envelope).
    #[error("the envelope's sender is not a trusted sender")]
    UntrustedSender,
    /// The header names another family (or none) than the one the opener was told to require
    /// ([`crate::Opener::require_family`]); decided with the sender's trust, before any key is
    /// unwrapped.
    #[error("the envelope names another family")]
    WrongFamily,
    /// The streaming API was used after it had finished or failed.
    #[error("the stream has already finished or failed")]
    StreamClosed,
    /// A caller's mistake, not hostile input: the API was used in an order it does not allow
    /// (e.g. sealing after `finish`).
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
    /// An internal consistency check failed (a bug in toyseal or a dependency); nothing was
    /// released or written as complete.
    #[error("internal error: {0}")]
    Internal(&'static str),
}
