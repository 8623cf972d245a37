//! Arbitrary request lines and header values into the signed-request verifier
//! (`toyseal_cloud::UnverifiedRequest`): parsing never panics; when it succeeds, verifying
//! with a fixed registered key (and the input's body) never panics, a success names that key's
//! device, and the rebuilt signature base starts with the method line. The same method and path
//! go through the API's route recognizer (`toyseal_cloud::api::Endpoint::recognize`): a path it
//! recognizes is exactly the one the client's builders write for that endpoint and those ids
//! (one spelling per route, as the server's typed extractors require).
//!
//! Input layout: see `toyseal_fuzz::cloud::split_request` (newline-separated fields, so the
//! seeds are the vectors' requests as text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_cloud::api::{self, Endpoint};
use toyseal_cloud::{ReceivedRequest, RequestTarget, UnverifiedRequest};
use toyseal_fuzz::cloud::{REGISTERED, split_request};

/// The path the client's builders write for `endpoint` with `ids`.
fn built(endpoint: Endpoint, ids: api::PathIds) -> Option<String> {
    let family = ids.family;
    Some(match endpoint {
        Endpoint::Health | Endpoint::OpenApi => endpoint.template().to_owned(),
        Endpoint::CreateFamily | Endpoint::DeleteFamily => api::family_path(family?),
        Endpoint::GetRoster | Endpoint::UpdateRoster => api::roster_path(family?),
        Endpoint::UploadEnvelope | Endpoint::ListEnvelopes => api::envelopes_path(family?),
        Endpoint::GetEnvelope | Endpoint::DeleteEnvelope => {
            api::envelope_path(family?, ids.id.as_ref()?)
        }
        Endpoint::ListDeletions => api::deletions_path(family?),
        Endpoint::RestoreEnvelope => api::restore_path(family?, ids.id.as_ref()?),
        Endpoint::EraseEnvelopes => api::erasures_path(family?),
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let r = split_request(data);
    for e in Endpoint::ALL {
        let method = e.method();
        if method.as_str() != r.method {
            continue;
        }
        if let Some((got, ids)) = Endpoint::recognize(&method, &r.path) {
            assert_eq!(got.method(), method);
            assert_eq!(built(got, ids).as_deref(), Some(r.path.as_str()));
        }
    }
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
