//! The one error type every call can throw (`ToysealException` in Kotlin, `ToysealError` in
//! Swift and Python). Small and stable on purpose: each variant says what the app should do,
//! and cryptographic failures stay coarse (which check failed is no business of an attacker).

/// Why a toyseal call failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum ToysealError {
    /// The app passed something malformed (a code, key, id, QR or invitation text that does
    /// not parse, a wrong role, an out-of-range value). Fix the input; retrying will not help.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What was wrong.
        reason: String,
    },
    /// The call does not fit the object's state (pairing while busy, sending without a
    /// session, pushing after `finish`). Fix the call order.
    #[error("wrong state: {reason}")]
    WrongState {
        /// What the state was.
        reason: String,
    },
    /// Too many failed pairings on this phone: ask the user to re-scan the toy's code, then
    /// call `resetPairingAttempts`.
    #[error("pairing disabled after too many failures; re-scan the code and reset attempts")]
    PairingDisabled,
    /// The platform key store (your `KeyStore` implementation) failed.
    #[error("key store: {reason}")]
    KeyStore {
        /// The store's own message.
        reason: String,
    },
    /// Decryption, a signature or a key confirmation failed: the bytes were changed, are not
    /// for this device, or came from someone else. Drop them; do not show partial content.
    #[error("authentication failed: the data was tampered with or is not for this device")]
    Authentication,
    /// The envelope is from a device this family's roster does not admit as a sender.
    #[error("the sender is not a member of this family")]
    UntrustedSender,
    /// This device is not among the envelope's recipients (sealed before it joined?).
    #[error("this device is not a recipient")]
    NotARecipient,
    /// The envelope ended early: content released before this error is proved, nothing after.
    #[error("the envelope is truncated")]
    Truncated,
    /// A roster (or chain of rosters) did not verify: a missing signature or quorum, a broken
    /// hash chain, another family, or a chain that does not pass through this device's anchor
    /// (what a server fabricating a family produces). Do not use it; keep the last verified one.
    #[error("roster refused: {reason}")]
    RosterRejected {
        /// Which rule it broke.
        reason: String,
    },
    /// A fork: roster version `version` of this family exists with another hash than the one
    /// this device holds — the family's roster was changed without this device. Show it to
    /// the user; keep the last verified version.
    #[error("the family's roster was changed without this device (version {version} exists twice)")]
    RosterFork {
        /// The version number that exists with two hashes.
        version: u64,
    },
    /// The BLE link broke a framing rule or stalled (a packet out of sequence, a frame too
    /// slow): disconnect, then reconnect.
    #[error("BLE link broken: {reason}")]
    LinkBroken {
        /// Which rule.
        reason: String,
    },
    /// The server answered with an error status (401/403: this device is not allowed; 404:
    /// no such family or envelope; 409: a conflicting roster; 410: the family was deleted;
    /// 429/5xx: try again later), with its RFC 9457 problem details when it gave them.
    #[error("the server answered {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Server {
        /// The HTTP status code.
        status: u16,
        /// The problem's kind (`removed`, `gone`, `forbidden`, …; signed-requests.md
        /// §Errors), if the answer was one of the API's problems: match on this, not on
        /// `detail`.
        kind: Option<String>,
        /// The server's reason, for a person (control characters stripped, length capped).
        detail: Option<String>,
        /// For `removed`: the roster version that removed this device.
        removed_at_version: Option<u64>,
    },
    /// The server could not be reached or the connection broke: try again later.
    #[error("network: {reason}")]
    Network {
        /// What failed (no URL, header or body).
        reason: String,
    },
    /// A size limit was exceeded (envelope, message, members).
    #[error("too large: {reason}")]
    TooLarge {
        /// Which limit.
        reason: String,
    },
    /// A bug or an unexpected condition inside toyseal; please report it.
    #[error("internal error: {reason}")]
    Internal {
        /// Details for the bug report.
        reason: String,
    },
}

impl ToysealError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            reason: reason.into(),
        }
    }

    pub(crate) fn state(reason: impl Into<String>) -> Self {
        Self::WrongState {
            reason: reason.into(),
        }
    }
}

impl From<toyseal_core::Error> for ToysealError {
    fn from(e: toyseal_core::Error) -> Self {
        use toyseal_core::Error as E;
        match e {
            E::BadSignature => Self::Authentication,
            E::Io(e) => Self::KeyStore {
                reason: e.to_string(),
            },
            other => Self::invalid(other.to_string()),
        }
    }
}

impl From<toyseal_envelope::Error> for ToysealError {
    fn from(e: toyseal_envelope::Error) -> Self {
        use toyseal_envelope::Error as E;
        match e {
            E::Decrypt | E::Signature => Self::Authentication,
            E::UntrustedSender => Self::UntrustedSender,
            // As the roster's own refusal (`toyseal_roster::Error::WrongFamily`) reads.
            E::WrongFamily => Self::invalid("it belongs to another family"),
            E::NotARecipient => Self::NotARecipient,
            E::Truncated => Self::Truncated,
            E::TooLarge { .. } | E::TooManyRecipients { .. } => Self::TooLarge {
                reason: e.to_string(),
            },
            E::StreamClosed | E::ApiMisuse(_) => Self::state(e.to_string()),
            E::Internal(_) => Self::Internal {
                reason: e.to_string(),
            },
            E::Key(k) => k.into(),
            // Header fields an attacker controls: the bytes are not a valid envelope.
            _ => Self::Authentication,
        }
    }
}

impl From<toyseal_roster::Error> for ToysealError {
    fn from(e: toyseal_roster::Error) -> Self {
        use toyseal_roster::Error as E;
        match e {
            E::Envelope(e) => e.into(),
            E::Key(k) => k.into(),
            E::WrongFamily => Self::invalid("it belongs to another family"),
            E::Fork { version } => Self::RosterFork { version },
            E::MemberCount { .. } => Self::TooLarge {
                reason: e.to_string(),
            },
            other => Self::RosterRejected {
                reason: other.to_string(),
            },
        }
    }
}

impl From<toyseal_pairing::Error> for ToysealError {
    fn from(e: toyseal_pairing::Error) -> Self {
        use toyseal_pairing::Error as E;
        match e {
            E::PairingDisabled => Self::PairingDisabled,
            E::Code(_) | E::QrPayload(_) | E::WrongPeer(_) | E::Mtu(_) => {
                Self::invalid(e.to_string())
            }
            E::Busy | E::Closed | E::TransferInProgress | E::UnexpectedMessage => {
                Self::state(e.to_string())
            }
            E::TooLarge { .. } => Self::TooLarge {
                reason: e.to_string(),
            },
            E::Fragment(_) | E::Timeout => Self::LinkBroken {
                reason: e.to_string(),
            },
            E::Roster(r) => r.into(),
            E::Key(k) => k.into(),
            E::Store(s) => Self::KeyStore { reason: s },
            _ => Self::Authentication,
        }
    }
}

impl From<toyseal_cloud::Error> for ToysealError {
    fn from(e: toyseal_cloud::Error) -> Self {
        use toyseal_cloud::Error as E;
        match e {
            E::Key(k) => k.into(),
            E::Roster(r) => r.into(),
            E::Envelope(e) => e.into(),
            E::Status {
                status,
                kind,
                detail,
                removed_at_version,
                ..
            } => Self::Server {
                status,
                kind: kind.map(|k| k.slug().to_owned()),
                detail,
                removed_at_version,
            },
            // The reason keeps to what the variant documents: what failed, the tries and the
            // time-out, not the URL.
            E::Transport {
                cause,
                tries,
                timeout,
                ..
            } => Self::Network {
                reason: match timeout {
                    Some(t) => format!("no answer within {} s ({tries} tries)", t.as_secs()),
                    None => format!("{cause} failed ({tries} tries)"),
                },
            },
            E::Io(_) => Self::Network {
                reason: e.to_string(),
            },
            E::TooLarge { .. } => Self::TooLarge {
                reason: e.to_string(),
            },
            // The server's answer did not check out (bytes that do not hash to their id).
            E::Integrity(_) => Self::Authentication,
            other => Self::invalid(other.to_string()),
        }
    }
}

/// A callback (the app's `KeyStore`) threw something that is not a `ToysealError`.
impl From<uniffi::UnexpectedUniFFICallbackError> for ToysealError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::KeyStore { reason: e.reason }
    }
}
