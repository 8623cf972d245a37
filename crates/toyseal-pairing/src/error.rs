//! The one error type of `toyseal-pairing`.

/// Why a pairing, session or fragment operation failed.
///
/// Authentication failures are deliberately coarse ([`Error::Authentication`]): a wrong code, a
/// forged confirmation, a bad signature and a tampered session frame all look the same.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The toy is not accepting pairing now (no window open, window expired or closed).
    #[error("the toy is not pairable now")]
    NotPairable,
    /// The persistent failure counter reached its limit; only a factory reset re-enables pairing.
    #[error("pairing is disabled after too many failed attempts; factory reset required")]
    PairingDisabled,
    /// Another pairing attempt is in progress; one at a time.
    #[error("another pairing attempt is in progress")]
    Busy,
    /// The pairing code breaks a rule (too short, not digits, trivial).
    #[error("invalid pairing code: {0}")]
    Code(&'static str),
    /// The QR payload is not in the toyseal format.
    #[error("invalid QR payload: {0}")]
    QrPayload(&'static str),
    /// A frame, message or field could not be decoded.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A well-formed message arrived in a state that does not expect it.
    #[error("unexpected message for the current state")]
    UnexpectedMessage,
    /// Key confirmation, decryption or a signature failed.
    #[error("authentication failed")]
    Authentication,
    /// The peer authenticated but is not who was expected (wrong role, QR fingerprint mismatch).
    #[error("the peer is not the expected device: {0}")]
    WrongPeer(&'static str),
    /// The maker attestation was required and is missing or invalid.
    #[error("the toy's maker attestation is missing or invalid")]
    Attestation,
    /// The peer is not pinned on this device.
    #[error("unknown peer")]
    UnknownPeer,
    /// A timer expired (pairing attempt, window, reassembly, idle session).
    #[error("timed out")]
    Timeout,
    /// The session has been torn down; open a new one.
    #[error("the session is closed")]
    Closed,
    /// A fragment broke the fragmentation rules (sequence, flags, lengths).
    #[error("fragmentation error: {0}")]
    Fragment(&'static str),
    /// A message is larger than the configured limit.
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The declared or attempted size.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// An envelope transfer is already running in this direction.
    #[error("an envelope transfer is already in progress")]
    TransferInProgress,
    /// The application supplied envelope bytes a streamed transfer did not ask for (a caller
    /// mistake, not the peer's: the session goes on).
    #[error("envelope bytes refused: {0}")]
    EnvelopeBytes(#[from] crate::delivery::EnvelopeBytesError),
    /// The peer broke the envelope transfer rules (offsets, totals, ids, acks).
    #[error("envelope transfer: {0}")]
    Transfer(&'static str),
    /// A roster did not verify or did not chain from the one held.
    #[error("roster: {0}")]
    Roster(#[from] toyseal_roster::Error),
    /// A roster version with the number of the one held but another hash: a fork of the
    /// family's chain, refused (T39).
    #[error("roster fork at version {version}")]
    RosterFork {
        /// The version number both carry.
        version: u64,
    },
    /// The ATT MTU is outside 23..=247.
    #[error("ATT MTU {0} is outside 23..=247")]
    Mtu(usize),
    /// The persistent failure store failed.
    #[error("failure counter storage: {0}")]
    Store(String),
    /// A key or identity was invalid.
    #[error("invalid key: {0}")]
    Key(#[from] toyseal_core::Error),
}

impl Error {
    /// Whether an authenticated peer broke the envelope delivery rules (§8): that ends the
    /// connection, not only the session.
    pub(crate) fn breaks_delivery_rules(&self) -> bool {
        matches!(
            self,
            Error::Transfer(_) | Error::TooLarge { .. } | Error::TransferInProgress
        )
    }
}
