//! The one error type of `toyseal-core`.

/// Everything that can go wrong with identities, keys and key storage.
///
/// Cryptographic failures are coarse on purpose (a signature is valid or it is not).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key's text form is not valid: wrong prefix, bad characters or a failed checksum.
    #[error("invalid key text: {0}")]
    KeyText(&'static str),
    /// A key's binary form has the wrong length or layout.
    #[error("invalid key encoding: {0}")]
    KeyEncoding(&'static str),
    /// The key was written by a newer (or unknown) format version.
    #[error("unsupported key format version {0}")]
    UnsupportedVersion(u8),
    /// The role byte names no known role.
    #[error("unknown device role {0}")]
    UnknownRole(u8),
    /// An X25519 public key of low order: any Diffie-Hellman with it gives an all-zero secret
    /// (RFC 7748 §6.1), so it is refused wherever a key enters the system.
    #[error("X25519 public key has low order (it would give an all-zero shared secret)")]
    WeakX25519Key,
    /// An X25519 public key that is not in canonical form: bit 255 set, or a u-coordinate
    /// `≥ 2^255 − 19`. RFC 7748 would silently reduce it; toyseal refuses it so that every key
    /// has one spelling.
    #[error("X25519 public key is not canonically encoded (bit 255 set or u >= 2^255 - 19)")]
    NonCanonicalX25519Key,
    /// An Ed25519 public key that is not a canonical encoding of a point (RFC 8032 §5.1.3
    /// strict decoding), or a point of small order (anyone could forge signatures for it).
    #[error("Ed25519 public key is non-canonical or of small order")]
    WeakEd25519Key,
    /// An Ed25519 signature did not verify under the claimed key.
    #[error("signature verification failed")]
    BadSignature,
    /// A key-store name is empty, too long, or has characters other than `[A-Za-z0-9._-]`.
    #[error("invalid key name: use 1-64 characters from A-Z a-z 0-9 . _ - (not starting with '.')")]
    KeyName,
    /// The key file is not in the toyseal key-file format.
    #[error("invalid key file: {0}")]
    KeyFile(&'static str),
    /// Reading or writing the key store failed.
    #[error("key store I/O: {0}")]
    Io(#[from] std::io::Error),
}
