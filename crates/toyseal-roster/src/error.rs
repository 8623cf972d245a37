//! The one error type of `toyseal-roster`.

/// Why a roster was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a roster (magic, lengths, counts).
    #[error("malformed roster: {0}")]
    Malformed(&'static str),
    /// The roster format version is unknown.
    #[error("unsupported roster format {0}")]
    UnsupportedFormat(u8),
    /// More members than allowed, or none.
    #[error("a roster has 1 to {max} members, this one has {count}")]
    MemberCount {
        /// Members declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same device appears twice.
    #[error("a device appears twice in the roster")]
    DuplicateMember,
    /// Two members share a key (Ed25519 or X25519), or the recovery key is a member's
    /// signing key: one key would count twice in a quorum, or one device would receive as two.
    #[error("two entries of the roster share a key")]
    SharedKey,
    /// Members or signatures are not in canonical (ascending device id) order.
    #[error("roster entries are not in canonical order")]
    NotCanonical,
    /// A roster must keep at least one guardian.
    #[error("a roster must have at least one guardian")]
    NoGuardian,
    /// A signature does not verify, or its signer is not allowed to sign this roster.
    #[error("a roster signature is invalid or from a device that may not sign it")]
    Signature,
    /// The signatures the rules require are missing (founding guardian + toy for version 1; a
    /// quorum of the previous version for the change's class for later ones, roster.md §3.3,
    /// and the deletion quorum for a family deletion).
    #[error("the roster lacks a required signature: {0}")]
    Unauthorized(&'static str),
    /// A member or recovery key that this version adds did not sign it (proof of possession).
    #[error("a member or recovery key added by this version did not sign it")]
    ProofOfPossession,
    /// The version's departed records do not match its removals.
    #[error("departed devices: {0}")]
    Departure(&'static str),
    /// The version lists no recovery key: every family enrols one at founding, and a version
    /// may replace it but never drop it (roster.md §1.2).
    #[error("the roster lists no recovery key: every family keeps one")]
    NoRecoveryKey,
    /// A fork: a version this device already holds (this number, this family) with another
    /// hash — the family's roster was changed without this device (roster.md §3.6).
    #[error(
        "roster version {version} exists with another hash: the family's roster was changed without this device"
    )]
    Fork {
        /// The version number that exists twice.
        version: u64,
    },
    /// A recovery key is invalid (weak public key, or a printed form that does not parse).
    #[error("invalid recovery key: {0}")]
    RecoveryKey(&'static str),
    /// A family deletion names a roster version that is not the current one.
    #[error("the deletion was decided under another roster version")]
    NotCurrentRoster,
    /// A chain does not pass through the device's anchor (roster.md §6): the version at the
    /// anchor's number is another one, or the chain ends before it.
    #[error("the roster chain does not pass through this device's anchor")]
    NotAnchored,
    /// The roster belongs to another family.
    #[error("the roster belongs to another family")]
    WrongFamily,
    /// The version does not follow the current one (replay, rollback or a gap).
    #[error("roster version {got} does not follow version {current}")]
    NotNextVersion {
        /// The verified current version.
        current: u64,
        /// The offered version.
        got: u64,
    },
    /// The previous-version hash does not match the verified previous roster.
    #[error("the roster does not chain to the previous version")]
    BrokenChain,
    /// The sender of an envelope is not a member of the roster.
    #[error("the device is not a member of this roster")]
    NotAMember,
    /// An envelope operation failed.
    #[error(transparent)]
    Envelope(#[from] toyseal_envelope::Error),
    /// A key inside the roster is invalid.
    #[error("invalid key in roster: {0}")]
    Key(#[from] toyseal_core::Error),
}
