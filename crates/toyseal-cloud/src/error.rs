//! The one error type of `toyseal-cloud`.

use crate::api::ProblemKind;
use std::time::Duration;

/// The longest server `detail` kept in an [`Error::Status`], in characters.
pub const MAX_DETAIL_CHARS: usize = 300;

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
    /// The server answered with an HTTP status the operation does not accept. When the answer
    /// was RFC 9457 problem details (docs/spec/signed-requests.md §Errors), its kind, detail and
    /// extension members are kept — read from at most 4 KiB of the body, the detail stripped
    /// of control characters and capped at [`MAX_DETAIL_CHARS`] (the body is the server's and
    /// may be hostile). Match `kind` for the refusals an app acts on:
    /// [`ProblemKind::Removed`] (with `removed_at_version`), [`ProblemKind::Gone`] (the family
    /// was deleted). A 413 with a `limit` becomes [`Error::TooLarge`] instead.
    #[error("the server answered HTTP {status}{}", detail_suffix(detail.as_deref(), *kind, *removed_at_version))]
    #[non_exhaustive]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The problem's kind, if the answer was one of this API's problem types.
        kind: Option<ProblemKind>,
        /// The server's reason, for a person (sanitized, capped).
        detail: Option<String>,
        /// The limit that refused the request (`limit` member), if given.
        limit: Option<u64>,
        /// For [`ProblemKind::Removed`]: the roster version that removed this device.
        removed_at_version: Option<u64>,
    },
    /// A request body larger than the server accepts: refused by the client before a byte
    /// was sent (the limit learnt from `GET /v1/health`), or answered 413 with the server's
    /// `limit`.
    #[error("{size} bytes is larger than the server's limit of {limit} bytes")]
    TooLarge {
        /// The body's size in bytes.
        size: u64,
        /// The server's largest request body in bytes.
        limit: u64,
    },
    /// The request could not be sent or its answer not received (connect, timeout, TLS, a
    /// cut connection) after `tries` tries. Names the URL (scheme, host, port and path only:
    /// never a query, header, signature or body) and, when a time-out ended it, that time-out.
    #[error("{}", transport_message(cause, url, *tries, *timeout))]
    Transport {
        /// What failed: `connect`, `request`, `reading the answer`, `timeout`, ….
        cause: &'static str,
        /// The URL tried, without query.
        url: String,
        /// Tries made (0: none could be started).
        tries: u32,
        /// The time-out that fired (the overall one or a try's), if one did.
        timeout: Option<Duration>,
    },
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
            Self::Status { status, .. } => Some(*status),
            Self::TooLarge { .. } => Some(413),
            _ => None,
        }
    }

    /// Whether the same operation may succeed later without any change (server or network
    /// trouble: transport errors, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// The problem kind of a refusal: [`Error::Status`]'s, and `TooLarge` for
    /// [`Error::TooLarge`].
    pub fn problem_kind(&self) -> Option<ProblemKind> {
        match self {
            Self::Status { kind, .. } => *kind,
            Self::TooLarge { .. } => Some(ProblemKind::TooLarge),
            _ => None,
        }
    }

    /// The server's reason for a refusal, sanitized ([`Error::Status`] only).
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Status { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }
}

fn detail_suffix(
    detail: Option<&str>,
    kind: Option<ProblemKind>,
    removed_at_version: Option<u64>,
) -> String {
    let mut out = String::new();
    if let Some(k) = kind {
        out.push_str(&format!(" ({})", k.title()));
    }
    if let Some(d) = detail.filter(|d| !d.is_empty()) {
        out.push_str(": ");
        out.push_str(d);
    }
    if let (Some(ProblemKind::Removed), Some(v)) = (kind, removed_at_version) {
        out.push_str(&format!(" [removed at roster version {v}]"));
    }
    out
}

fn transport_message(cause: &str, url: &str, tries: u32, timeout: Option<Duration>) -> String {
    let tries = match tries {
        1 => "1 try".to_owned(),
        n => format!("{n} tries"),
    };
    match timeout {
        Some(t) => format!("no answer from {url} within {} ({tries})", secs(t)),
        None if cause == "connect" => format!("could not connect to {url} ({tries})"),
        None => format!("transport failure ({cause}) for {url} ({tries})"),
    }
}

/// `30 s`, `1.5 s`.
fn secs(t: Duration) -> String {
    if t.subsec_millis() == 0 {
        format!("{} s", t.as_secs())
    } else {
        format!("{:.1} s", t.as_secs_f64())
    }
}
