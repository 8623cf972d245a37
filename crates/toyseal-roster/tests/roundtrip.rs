//! Property tests: every roster version, family deletion and invitation the API can build
//! encodes and decodes to an equal value with the same hash (one value, one encoding), and a
//! flipped byte in a signed version never verifies as the same chain step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;
use std::sync::LazyLock;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_roster::*;

/// Eight devices: guardians at even indices below 6, toys at odd ones below 6, members at 6
/// and 7.
static DEVICES: LazyLock<Vec<DeviceIdentity>> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    (0..8)
        .map(|i| {
            let role = match i {
                6 | 7 => Role::Member,
                _ if i % 2 == 0 => Role::Guardian,
                _ => Role::Toy,
            };
            DeviceIdentity::generate(role, &mut rng)
        })
        .collect()
});
static RECOVERY: LazyLock<RecoveryKey> =
    LazyLock::new(|| RecoveryKey::generate(&mut ChaCha20Rng::from_seed([10; 32])).unwrap());

/// The devices of `mask`, always with guardian 0 and toy 1.
fn devices(mask: u8) -> Vec<&'static DeviceIdentity> {
    DEVICES
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 2 || mask & (1 << i) != 0)
        .map(|(_, d)| d)
        .collect()
}

fn publics(d: &[&DeviceIdentity]) -> Vec<PublicIdentity> {
    d.iter().map(|d| d.public().clone()).collect()
}

fn sign_all(p: RosterProposal, signers: &[&DeviceIdentity], recovery: bool) -> SignedRoster {
    let mut s = p.sign(signers[0]);
    for d in &signers[1..] {
        s.cosign(d);
    }
    if recovery {
        s.cosign_recovery(&RECOVERY);
    }
    s
}

fn assert_round_trip(s: &SignedRoster) {
    let bytes = s.encode();
    let back = SignedRoster::decode(&bytes).unwrap();
    assert_eq!(&back, s);
    assert_eq!(back.hash(), s.hash());
    assert_eq!(back.encode(), bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn chains_round_trip_and_verify(
        family in any::<[u8; 16]>().prop_filter("non-zero", |f| f != &[0; 16]),
        masks in proptest::collection::vec(any::<u8>(), 1..5),
        sequences in proptest::collection::vec(any::<u64>(), 4),
    ) {
        let family = FamilyId::from_bytes(family);
        let first = devices(masks[0]);
        let p1 = RosterProposal::founding(family, publics(&first), *RECOVERY.public()).unwrap();
        let v1 = sign_all(p1, &first, true);
        assert_round_trip(&v1);
        let mut roster = Roster::verify_founding(v1).unwrap();
        for (i, mask) in masks.iter().enumerate().skip(1) {
            let now = devices(*mask);
            let mut p = RosterProposal::next(&roster, publics(&now)).unwrap();
            for (d, seq) in roster.members().iter().zip(&sequences) {
                if !now.iter().any(|n| n.public() == d) {
                    let head = if *seq == 0 { [0; 32] } else { [(*seq as u8) | 1; 32] };
                    p = p.with_last_envelope(d.device_id(), *seq, head).unwrap();
                }
            }
            // Guardian 0 (always a member) and the recovery key are a quorum of every class;
            // the newcomers co-sign.
            let mut signers = vec![&DEVICES[0]];
            signers.extend(now.iter().filter(|d| !roster.contains(d.public())));
            let next = sign_all(p, &signers, true);
            assert_round_trip(&next);
            roster = roster.verify_next(next).unwrap();
            prop_assert_eq!(roster.version(), i as u64 + 1);
            let mut deletion = FamilyDeletion::new(&roster);
            deletion.cosign(&DEVICES[0]);
            deletion.cosign_recovery(&RECOVERY);
            let back = FamilyDeletion::decode(&deletion.encode()).unwrap();
            prop_assert_eq!(&back, &deletion);
            roster.verify_deletion(&back).unwrap();
            let inv = Invitation::new(roster.signed(), Some("https://api.example")).unwrap();
            prop_assert_eq!(inv.to_string().parse::<Invitation>().unwrap(), inv);
        }
    }

    #[test]
    fn a_flipped_byte_never_verifies(mask in any::<u8>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let first = devices(0);
        let v1 = sign_all(
            RosterProposal::founding(FamilyId::from_bytes([7; 16]), publics(&first), *RECOVERY.public()).unwrap(),
            &first,
            true,
        );
        let r1 = Roster::verify_founding(v1).unwrap();
        let now = devices(mask);
        let mut signers = vec![&DEVICES[0]];
        signers.extend(now.iter().filter(|d| !r1.contains(d.public())));
        let next = sign_all(RosterProposal::next(&r1, publics(&now)).unwrap(), &signers, true);
        let mut bytes = next.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(tampered) = SignedRoster::decode(&bytes) {
            prop_assert!(r1.verify_next(tampered).is_err(), "flip at {} verified", i);
        }
    }
}
