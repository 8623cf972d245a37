#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anchors;
pub mod api;
#[cfg(feature = "client")]
pub mod client;
mod error;
pub mod outbox;
pub mod signing;

pub use anchors::AnchorStore;
#[cfg(feature = "client")]
pub use client::{Client, ClientConfig, Deletion, SentBytes, Uploaded};
pub use outbox::Outbox;

pub use error::{Error, MAX_DETAIL_CHARS};
pub use signing::{
    ReceivedRequest, RequestTarget, SignatureHeaders, UnverifiedRequest, VerifiedRequest,
    content_digest, sign_request,
};
