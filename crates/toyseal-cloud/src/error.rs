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
}
