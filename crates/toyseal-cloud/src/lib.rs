#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
mod error;
pub mod signing;

pub use error::Error;
pub use signing::{
    ReceivedRequest, RequestTarget, SignatureHeaders, UnverifiedRequest, VerifiedRequest,
    content_digest, sign_request,
};
