#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod code;
mod delivery;
mod endpoint;
mod error;
pub mod frag;
mod frame;
mod message;
mod pake;
mod phone;
mod rng;
pub mod session;
mod time;
mod toy;
mod window;

pub use code::{PairingCode, QrPayload};
pub use delivery::{DeliveryConfig, EnvelopeBytesError, EnvelopeEvent, EnvelopeRequest};
pub use endpoint::Endpoint;
pub use error::Error;
pub use frame::{AbortReason, Frame, PAIRING_VERSION, PROTOCOL_VERSION};
pub use message::{
    Control, MAX_CHUNK_DATA, MAX_MESSAGE_LEN, MAX_ROSTERS_PER_UPDATE, RecoveryAnswer,
    SessionMessage, ToyAnswer,
};
pub use pake::{
    MakerAttestation, MakerKey, PairedToy, PairingExpectations, PhonePairing, PhoneStep, Sas,
    ToyConfirmed, ToyPairing,
};
pub use phone::{
    DEFAULT_MAX_FAILED_PAIRINGS, ONE_TIME_CODE_DIGITS, Phone, PhoneEvent, PhoneFailure, PhoneOutput,
};
pub use session::{Initiator, Session, SessionConfig};
pub use time::Timestamp;
pub use toy::{
    CLOSE_RECOVERY_ENDED, CLOSE_REMOVED, CodeKind, Confirmation, ConfirmationPolicy, RosterChange,
    Toy, ToyBuilder, ToyEvent, ToyOutput,
};
pub use window::{FailureStore, MemoryFailureStore, PairingWindow, WindowPolicy};
