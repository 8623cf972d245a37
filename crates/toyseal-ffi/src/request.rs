//! Signing cloud API requests (docs/spec/signed-requests.md, an RFC 9421 profile): the app's
//! HTTP client adds the three headers to each request.

use crate::{Identity, ToysealError};
use std::sync::Arc;
use toyseal_core::OsRng;

/// The signed parts of a request.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RequestTarget {
    /// Method as sent, e.g. `POST`.
    pub method: String,
    /// Host and optional port, e.g. `api.example` or `127.0.0.1:8080`.
    pub authority: String,
    /// Absolute path, e.g. `/v1/families/…/envelopes`.
    pub path: String,
    /// Query string without `?`, if any.
    #[uniffi(default = None)]
    pub query: Option<String>,
}

/// The headers to add to the request.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SignatureHeaders {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

/// Signs a request with the device key, valid for `validity_secs` (1 to 300) from `now_unix`
/// (the device's wall clock, Unix seconds).
#[uniffi::export]
pub fn sign_request(
    identity: Arc<Identity>,
    target: RequestTarget,
    body: Vec<u8>,
    now_unix: u64,
    validity_secs: u64,
) -> Result<SignatureHeaders, ToysealError> {
    let t = toyseal_cloud::RequestTarget {
        method: &target.method,
        authority: &target.authority,
        path: &target.path,
        query: target.query.as_deref(),
    };
    let h = toyseal_cloud::sign_request(
        &identity.inner,
        &t,
        &body,
        now_unix,
        validity_secs,
        &mut OsRng,
    )?;
    Ok(SignatureHeaders {
        content_digest: h.content_digest,
        signature_input: h.signature_input,
        signature: h.signature,
    })
}
