//! Erasure and family-deletion statements through the exported API (docs/spec/roster.md §5,
//! THREATS T36): built under a roster version, cosigned by two guardians or a guardian and
//! the recovery key, encoded and decoded; one guardian alone, or a guardian and the toy, is
//! not enough.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use toyseal_ffi::{EnvelopeErasure, FamilyDeletion};

mod common;
use common::*;

#[test]
fn an_erasure_needs_two_guardians_or_a_guardian_and_the_recovery_key() {
    let f = family();
    let (a, b) = ("aa".repeat(32), "0b".repeat(32));
    let erasure =
        EnvelopeErasure::new(f.v1.clone(), vec![a.clone(), b.clone(), a.clone()]).unwrap();
    assert_eq!(erasure.envelope_ids(), vec![b.clone(), a.clone()]);
    assert_eq!(erasure.family_id(), f.v1.family_id());
    assert!(erasure.verify(f.v1.clone()).is_err());
    let by_mum = erasure.cosign(f.mum.clone());
    assert!(by_mum.verify(f.v1.clone()).is_err(), "one guardian alone");
    assert!(
        by_mum.cosign(f.toy.clone()).verify(f.v1.clone()).is_err(),
        "a guardian and the toy"
    );
    let both = by_mum.cosign(f.dad.clone());
    both.verify(f.v1.clone()).unwrap();
    assert_eq!(both.signers().len(), 2);
    by_mum
        .cosign_recovery(f.recovery.clone())
        .verify(f.v1.clone())
        .unwrap();
    // The signed bytes travel between the guardians' phones.
    let back = EnvelopeErasure::decode(both.encode()).unwrap();
    assert_eq!(back.encode(), both.encode());
    back.verify(f.v1.clone()).unwrap();
    // Under another family's roster it is refused.
    assert!(back.verify(family().v1).is_err());

    assert!(EnvelopeErasure::new(f.v1.clone(), Vec::new()).is_err());
    assert!(EnvelopeErasure::new(f.v1.clone(), vec!["xyz".into()]).is_err());
    let too_many: Vec<String> = (0..65u8).map(|i| format!("{i:02x}").repeat(32)).collect();
    assert!(EnvelopeErasure::new(f.v1.clone(), too_many).is_err());
    assert!(EnvelopeErasure::decode(vec![1, 2, 3]).is_err());
}

#[test]
fn a_family_deletion_needs_the_same_quorum_and_round_trips() {
    let f = family();
    let deletion = FamilyDeletion::new(f.v1.clone());
    assert_eq!(deletion.family_id(), f.v1.family_id());
    let by_dad = deletion.cosign(f.dad.clone());
    assert!(by_dad.verify(f.v1.clone()).is_err(), "one guardian alone");
    assert!(by_dad.cosign(f.toy.clone()).verify(f.v1.clone()).is_err());
    let with_key = by_dad.cosign_recovery(f.recovery.clone());
    with_key.verify(f.v1.clone()).unwrap();
    let back = FamilyDeletion::decode(with_key.encode()).unwrap();
    back.verify(f.v1.clone()).unwrap();
    assert_eq!(back.signers(), with_key.signers());
    deletion
        .cosign(f.mum.clone())
        .cosign(f.dad.clone())
        .verify(f.v1.clone())
        .unwrap();
    assert!(FamilyDeletion::decode(Vec::new()).is_err());
}
