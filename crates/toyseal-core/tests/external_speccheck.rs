//! The ed25519-speccheck edge cases ("Taming the many EdDSAs", Chalkias–Garillot–Nikolaenko,
//! SSR 2020), through toyseal-core's own entry points: [`PublicIdentity::new`] (strict key
//! decoding: canonical encoding, not of small order — docs/spec/envelope.md §2.1) and
//! [`PublicIdentity::verify`] (RFC 8032 §5.1.7, cofactorless, S < L, via `ring`).
//!
//! The file is copied unchanged into docs/spec/vectors/external/ (source and licence there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use toyseal_core::{Error, PublicIdentity, Role, Signature};

const CASES: &str = include_str!("../../../docs/spec/vectors/external/ed25519-speccheck-cases.txt");

/// What toyseal must answer for each case, by its index in the file.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Verdict {
    /// The public key is refused when parsed (small order, or not a canonical encoding).
    KeyRefused,
    /// The key parses and the signature verifies.
    Valid,
    /// The key parses and the signature does not verify.
    Invalid,
}

const EXPECTED: [Verdict; 12] = [
    Verdict::KeyRefused, // 0: small-order A, small-order R, S = 0
    Verdict::KeyRefused, // 1: small-order A, mixed-order R
    // 2–5: mixed-order keys (a torsion component, not small order) parse; the verdict is the
    // cofactorless RFC 8032 equation's, as `ring` computes it, pinned here so that a change of
    // verifier behaviour is noticed.
    Verdict::Valid,      // 2: mixed-order A, small-order R
    Verdict::Valid,      // 3: mixed-order A and R
    Verdict::Invalid,    // 4: mixed-order A and R, an equation only a cofactored verifier accepts
    Verdict::Invalid,    // 5: mixed-order A and R, an equation only a cofactored verifier accepts
    Verdict::Invalid,    // 6: S >= L (non-canonical S)
    Verdict::Invalid,    // 7: S >= L
    Verdict::Invalid,    // 8: non-canonical R
    Verdict::Invalid,    // 9: non-canonical R
    Verdict::KeyRefused, // 10: non-canonical A
    Verdict::KeyRefused, // 11: non-canonical A
];

#[test]
fn ed25519_speccheck_cases() {
    let mut lines = CASES.lines();
    let count: usize = lines.next().unwrap().parse().unwrap();
    assert_eq!(count, 12);
    let field = |l: Option<&str>, name: &str| {
        let l = l.unwrap();
        hex::decode(l.strip_prefix(name).unwrap()).unwrap()
    };
    // Any valid X25519 key completes the identity; only the Ed25519 half is under test.
    let mut x25519 = [0u8; 32];
    x25519[0] = 9;
    let mut ran = 0;
    for (i, expected) in EXPECTED.iter().enumerate() {
        let msg = field(lines.next(), "msg=");
        let pk: [u8; 32] = field(lines.next(), "pbk=").try_into().unwrap();
        let sig: [u8; 64] = field(lines.next(), "sig=").try_into().unwrap();
        let verdict = match PublicIdentity::new(Role::Toy, pk, x25519) {
            Err(Error::WeakEd25519Key) => Verdict::KeyRefused,
            Err(e) => panic!("case {i}: unexpected error {e}"),
            Ok(id) => match id.verify(&msg, &Signature::from_bytes(sig)) {
                Ok(()) => Verdict::Valid,
                Err(_) => Verdict::Invalid,
            },
        };
        assert_eq!(verdict, *expected, "case {i}");
        ran += 1;
    }
    assert!(lines.next().is_none());
    assert_eq!(ran, 12);
}
