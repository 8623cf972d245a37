//! Arbitrary request lines and header values into the signed-request verifier
//! (`toyseal_cloud::UnverifiedRequest`): parsing never panics; when it succeeds, verifying
//! with a fixed registered key (and the input's body) never panics, a success names that key's
//! device, and the rebuilt signature base starts with the method line.
//!
//! Input layout: see `toyseal_fuzz::cloud::split_request` (newline-separated fields, so the
//! seeds are the vectors' requests as text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_cloud::{ReceivedRequest, RequestTarget, UnverifiedRequest};
use toyseal_fuzz::cloud::{REGISTERED, split_request};

fuzz_target!(|data: &[u8]| {
    let r = split_request(data);
    let req = ReceivedRequest {
        target: RequestTarget {
            method: &r.method,
            authority: &r.authority,
            path: &r.path,
            query: r.query.as_deref(),
        },
        content_digest: r.content_digest.as_deref(),
        signature_input: r.signature_input.as_deref(),
        signature: r.signature.as_deref(),
    };
    let Ok(parsed) = UnverifiedRequest::parse(&req, r.now) else {
        return;
    };
    assert!(parsed.signature_base().starts_with("\"@method\": "));
    let claimed = parsed.key_id();
    let key = REGISTERED.public();
    let body_digest = parsed.clone().verify(key, &r.body);
    if let Ok(v) = &body_digest {
        assert_eq!(v.device(), claimed);
        assert_eq!(v.device(), key.device_id());
    }
    // The streaming entry point agrees with the one-shot one.
    let d = ring::digest::digest(&ring::digest::SHA256, &r.body);
    let streamed = parsed.verify_with_body_digest(key, d.as_ref());
    assert_eq!(streamed.ok(), body_digest.ok());
});
