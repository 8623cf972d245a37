//! The signed-request profile end to end at the library level: sign, verify, and every
//! change an attacker might make after signing (T04, T05, T06 at the verifier; the server's
//! tests repeat them over HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_cloud::{Error, ReceivedRequest, RequestTarget, UnverifiedRequest, sign_request};
use toyseal_core::{DeviceIdentity, Role};

const NOW: u64 = 1_795_000_000;

fn target<'a>(method: &'a str, path: &'a str, query: Option<&'a str>) -> RequestTarget<'a> {
    RequestTarget {
        method,
        authority: "api.toyseal.test",
        path,
        query,
    }
}

struct Signed {
    id: DeviceIdentity,
    h: toyseal_cloud::SignatureHeaders,
}

fn signed(body: &[u8]) -> Signed {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let id = DeviceIdentity::generate(Role::Toy, &mut rng);
    let h = sign_request(
        &id,
        &target("POST", "/v1/families/ab/envelopes", Some("x=1")),
        body,
        NOW,
        300,
        &mut rng,
    )
    .unwrap();
    Signed { id, h }
}

fn check(
    s: &Signed,
    t: RequestTarget<'_>,
    body: &[u8],
    now: u64,
) -> Result<toyseal_cloud::VerifiedRequest, Error> {
    let req = ReceivedRequest {
        target: t,
        content_digest: Some(&s.h.content_digest),
        signature_input: Some(&s.h.signature_input),
        signature: Some(&s.h.signature),
    };
    UnverifiedRequest::parse(&req, now)?.verify(s.id.public(), body)
}

#[test]
fn round_trip() {
    let s = signed(b"envelope bytes");
    let v = check(
        &s,
        target("POST", "/v1/families/ab/envelopes", Some("x=1")),
        b"envelope bytes",
        NOW + 10,
    )
    .unwrap();
    assert_eq!(v.device(), s.id.device_id());
    assert_eq!(v.expires(), NOW + 300);
    assert!(s.h.signature_input.starts_with(
        "toyseal=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created="
    ));
    assert!(s.h.signature_input.ends_with(";tag=\"toyseal-v1\""));
}

#[test]
fn t05_any_change_after_signing_is_rejected() {
    let s = signed(b"body");
    let t = || target("POST", "/v1/families/ab/envelopes", Some("x=1"));
    assert!(matches!(
        check(
            &s,
            RequestTarget {
                method: "PUT",
                ..t()
            },
            b"body",
            NOW
        ),
        Err(Error::Signature)
    ));
    assert!(matches!(
        check(
            &s,
            RequestTarget {
                path: "/v1/families/cd/envelopes",
                ..t()
            },
            b"body",
            NOW
        ),
        Err(Error::Signature)
    ));
    assert!(matches!(
        check(
            &s,
            RequestTarget {
                query: Some("x=2"),
                ..t()
            },
            b"body",
            NOW
        ),
        Err(Error::Signature)
    ));
    assert!(matches!(
        check(&s, RequestTarget { query: None, ..t() }, b"body", NOW),
        Err(Error::Signature)
    ));
    assert!(matches!(
        check(
            &s,
            RequestTarget {
                authority: "evil.test",
                ..t()
            },
            b"body",
            NOW
        ),
        Err(Error::Signature)
    ));
    assert!(matches!(check(&s, t(), b"BODY", NOW), Err(Error::Digest)));
    // Replacing the digest header to match a new body breaks the signature instead.
    let mut s2 = signed(b"body");
    s2.h.content_digest = toyseal_cloud::content_digest(b"other");
    assert!(matches!(
        check(&s2, t(), b"other", NOW),
        Err(Error::Signature)
    ));
}

#[test]
fn t04_freshness() {
    let s = signed(b"");
    let t = target("POST", "/v1/families/ab/envelopes", Some("x=1"));
    assert!(check(&s, t, b"", NOW + 299).is_ok());
    assert!(matches!(check(&s, t, b"", NOW + 300), Err(Error::Expired)));
    assert!(matches!(check(&s, t, b"", NOW + 600), Err(Error::Expired)));
    assert!(matches!(
        check(&s, t, b"", NOW - 61),
        Err(Error::NotYetValid)
    ));
    // A signer cannot ask for more than 300 s.
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    assert!(sign_request(&s.id, &t, b"", NOW, 301, &mut rng).is_err());
    // Hand-edited parameters: validity too long, expires before created.
    for (from, to) in [
        (
            format!("expires={}", NOW + 300),
            format!("expires={}", NOW + 301),
        ),
        (
            format!("expires={}", NOW + 300),
            format!("expires={}", NOW - 1),
        ),
    ] {
        let mut bad = signed(b"");
        bad.h.signature_input = bad.h.signature_input.replace(&from, &to);
        assert!(
            matches!(check(&bad, t, b"", NOW + 1), Err(Error::Validity)),
            "{to}"
        );
    }
}

#[test]
fn t06_algorithm_and_keyid_cannot_be_chosen() {
    let t = target("POST", "/v1/families/ab/envelopes", Some("x=1"));
    let mut s = signed(b"");
    s.h.signature_input.push_str(";alg=\"hmac-sha256\"");
    assert!(matches!(check(&s, t, b"", NOW), Err(Error::Algorithm)));
    // keyid of another device: the registry returns that device's key; the signature fails.
    let s = signed(b"");
    let other = DeviceIdentity::generate(Role::Guardian, &mut ChaCha20Rng::from_seed([9; 32]));
    let mut forged = signed(b"");
    forged.h.signature_input = forged.h.signature_input.replace(
        &s.id.device_id().to_string(),
        &other.device_id().to_string(),
    );
    let req = ReceivedRequest {
        target: t,
        content_digest: Some(&forged.h.content_digest),
        signature_input: Some(&forged.h.signature_input),
        signature: Some(&forged.h.signature),
    };
    let parsed = UnverifiedRequest::parse(&req, NOW).unwrap();
    assert_eq!(parsed.key_id(), other.device_id());
    assert!(matches!(
        parsed.verify(other.public(), b""),
        Err(Error::Signature)
    ));
    // Looking up the wrong key for a keyid is caught too.
    let parsed = UnverifiedRequest::parse(&req, NOW).unwrap();
    assert!(matches!(
        parsed.verify(s.id.public(), b""),
        Err(Error::Signature)
    ));
}

#[test]
fn t01_missing_or_garbled_headers_are_typed_errors() {
    let s = signed(b"");
    let t = target("GET", "/", None);
    let cases: [(Option<&str>, Option<&str>, Option<&str>); 6] = [
        (None, None, None),
        (Some(&s.h.content_digest), None, Some(&s.h.signature)),
        (Some(&s.h.content_digest), Some(&s.h.signature_input), None),
        (None, Some(&s.h.signature_input), Some(&s.h.signature)),
        (
            Some("sha-256=:!!:"),
            Some(&s.h.signature_input),
            Some(&s.h.signature),
        ),
        (
            Some(&s.h.content_digest),
            Some("toyseal=(\"@method\");created=1"),
            Some(&s.h.signature),
        ),
    ];
    for (d, i, sig) in cases {
        let req = ReceivedRequest {
            target: t,
            content_digest: d,
            signature_input: i,
            signature: sig,
        };
        assert!(UnverifiedRequest::parse(&req, NOW).is_err());
    }
}
