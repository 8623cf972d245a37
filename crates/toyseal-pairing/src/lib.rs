#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod code;
mod error;
pub mod frag;
mod frame;
mod message;
mod pake;
mod rng;
pub mod session;
mod time;
mod toy;
mod window;

pub use code::{PairingCode, QrPayload};
pub use error::Error;
pub use frame::{AbortReason, Frame, PROTOCOL_VERSION};
pub use message::{Control, MAX_CHUNK_DATA, MAX_MESSAGE_LEN, SessionMessage};
pub use pake::{
    MakerAttestation, MakerKey, PairedToy, PairingExpectations, PhonePairing, PhoneStep, ToyPairing,
};
pub use session::{Initiator, Session, SessionConfig};
pub use time::Timestamp;
pub use toy::{Toy, ToyEvent, ToyOutput};
pub use window::{FailureStore, MemoryFailureStore, PairingWindow, WindowPolicy};
