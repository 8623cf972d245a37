//! The one error type of `toyseal-cloud`.

/// Why a request could not be signed, verified, sent or queued.
///
/// A server answers every verification error with the same generic 401: the variants exist for
/// logs and tests, never for the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required header or parameter is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A header or parameter is malformed.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The covered components are not exactly the profile's.
    #[error("the signature does not cover the required components")]
    Components,
    /// An `alg` parameter was sent: the algorithm is pinned by the key registry.
    #[error("the request may not choose the signature algorithm")]
    Algorithm,
    /// An unknown parameter, or a wrong `tag`.
    #[error("unexpected signature parameter")]
    Parameter,
    /// `expires` is not after `created`, or the validity exceeds 300 s.
    #[error("signature validity is invalid or longer than 300 s")]
    Validity,
    /// `created` is too far in the future.
    #[error("signature created in the future")]
    NotYetValid,
    /// The signature expired or is too old.
    #[error("signature expired")]
    Expired,
    /// The body does not match its Content-Digest.
    #[error("content digest does not match the body")]
    Digest,
    /// The signature does not verify under the registered key.
    #[error("signature verification failed")]
    Signature,
    /// The nonce was seen before (a replay).
    #[error("replayed request")]
    Replay,
    /// A key or identity is invalid.
    #[error("invalid key: {0}")]
    Key(#[from] toyseal_core::Error),
    /// The server answered with an HTTP status the operation does not accept. The response
    /// body is not kept (it is the server's, and may be large or hostile).
    #[error("the server answered HTTP {status}")]
    #[non_exhaustive]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The request could not be sent or its answer not received (connect, timeout, TLS, a
    /// cut connection). Only the kind is kept: no URL, no header, no body.
    #[error("transport failure: {0}")]
    Transport(&'static str),
    /// The server's answer does not match what was asked: another envelope id than the
    /// SHA-256 of the bytes, another family's roster, a response over its size limit.
    #[error("the server's answer failed an integrity check: {0}")]
    Integrity(&'static str),
    /// A roster from the server does not verify (docs/spec/roster.md): never trusted.
    #[error("roster refused: {0}")]
    Roster(#[from] toyseal_roster::Error),
    /// An envelope does not verify or open: bytes given to the outbox that are not a complete,
    /// validly signed envelope, or a streamed download the opener refused.
    #[error("not a sealed envelope: {0}")]
    Envelope(#[from] toyseal_envelope::Error),
    /// The outbox directory could not be read or written.
    #[error("outbox I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The HTTP status, for [`Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same operation may succeed later without any change (server or network
    /// trouble: transport errors, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Status { status } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}
