#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ble;
mod cloud;
mod envelope;
mod error;
mod identity;
mod phone;
mod receive;
mod request;
mod roster;
mod simulated_toy;
mod statements;

pub use ble::{Fragmenter, Reassembler};
pub use cloud::{CloudClient, DeletionPage, EnvelopePage, EnvelopeSummary, PendingDeletion};
pub use envelope::{EnvelopeInfo, EnvelopeMetadata, EnvelopeOpener, OpenedEnvelope};
pub use error::ToysealError;
pub use identity::{Identity, KeyStore, PublicKey, Role};
pub use phone::{FailureReason, Phone, PhoneEvent, RecoveryAnswer, ToyAnswer};
pub use receive::{Freshness, ReceiveState, ReceivedEnvelope};
pub use request::{RequestTarget, SignatureHeaders, sign_request};
pub use roster::{
    Anchor, ChangeClass, Invitation, RecoveryKey, Roster, RosterProposal, SignedRoster,
    envelope_header_hash, generate_family_id,
};
pub use simulated_toy::SimulatedToy;
pub use statements::{EnvelopeErasure, FamilyDeletion};

uniffi::setup_scaffolding!();
