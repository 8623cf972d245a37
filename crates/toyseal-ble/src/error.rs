//! The one error type of `toyseal-ble`.

/// Why a link, driver or GATT operation failed.
///
/// Protocol failures (pairing, session, envelope delivery, fragmentation) keep the
/// `toyseal-pairing` error, which is coarse on purpose for anything cryptographic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pairing, session or fragmentation layer refused something.
    #[error(transparent)]
    Protocol(#[from] toyseal_pairing::Error),
    /// The connection is gone (either side disconnected, or the link was torn down).
    #[error("the link is disconnected")]
    Disconnected,
    /// The link cannot take another packet now; nothing was sent. Retry after the peer drained
    /// its queue (the drivers do this on their next poll).
    #[error("the link's queue is full")]
    QueueFull,
    /// Packets arrived faster than they were read and one was lost; the connection is unusable.
    #[error("incoming packets overflowed the bounded queue")]
    Overflow,
    /// A packet is longer than one ATT write or notification can carry.
    #[error("packet of {len} bytes exceeds the {max} bytes an ATT write can carry")]
    PacketTooLarge {
        /// The packet's length.
        len: usize,
        /// `ATT_MTU - 3`.
        max: usize,
    },
    /// The ATT MTU is outside 23..=247 (after clamping a larger negotiated MTU to 247).
    #[error("ATT MTU {0} is below 23")]
    Mtu(usize),
    /// The central has not enabled notifications on `tx` (CCCD), so the toy cannot answer.
    #[error("the central has not subscribed to tx")]
    NotSubscribed,
    /// The peripheral does not expose the toyseal GATT profile (docs/spec/gatt.md).
    #[error("not a toyseal GATT profile: {0}")]
    Profile(&'static str),
    /// No peripheral advertising the toyseal service was found before the scan timeout.
    #[error("no toyseal toy found")]
    NotFound,
    /// A GATT operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The Bluetooth stack reported an error.
    #[error("bluetooth: {0}")]
    Gatt(String),
    /// The in-memory pump did not go idle within its step budget (a hook that never stops
    /// injecting, for instance).
    #[error("the link did not go idle within {0} steps")]
    Stalled(usize),
}
