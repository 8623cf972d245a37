//! The governance rules of docs/spec/roster.md §3 and §5, re-checked independently on every
//! chain the verifier accepts: structured chains (members, signers, the recovery key, removal
//! records drawn by the fuzzer) are verified version by version (`Roster::verify_founding`,
//! then `verify_next`), and for each accepted step the target recomputes, from the public API alone, that a quorum of the previous version signed
//! (two guardians, or a guardian and a toy, the recovery key counting as a guardian), that
//! every added member and recovery key signed, and that removal records are exactly the
//! removals plus unchanged earlier records. A family deletion signed by a fuzzed subset is
//! accepted iff the same quorum rule holds, and `admission` agrees with members and records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_core::{DeviceId, Role};
use toyseal_fuzz::cloud::{ChainInput, DEVICES, RECOVERY, build_chain, pick};
use toyseal_roster::{Admission, FamilyDeletion, Roster, RosterProposal};

/// Independent quorum check over `version`'s authorities.
fn quorum(version: &RosterProposal, signers: &[DeviceId]) -> bool {
    let mut guardians = 0;
    let mut toys = 0;
    for id in signers {
        if version.recovery_key().is_some_and(|r| r.id() == *id) {
            guardians += 1;
        } else if let Some(m) = version.members().iter().find(|m| m.device_id() == *id) {
            match m.role() {
                Role::Guardian => guardians += 1,
                Role::Toy => toys += 1,
                _ => {}
            }
        }
    }
    guardians >= 2 || (guardians >= 1 && toys >= 1)
}

fuzz_target!(|input: (ChainInput, u8, bool, u8)| {
    let (chain_input, deletion_signers, recovery_deletes, probe_sequence) = input;
    let chain = build_chain(&chain_input);
    let mut current: Option<Roster> = None;
    for next in &chain {
        let verified = match &current {
            None => Roster::verify_founding(next.clone()),
            Some(c) => c.verify_next(next.clone()),
        };
        let Ok(verified) = verified else {
            break;
        };
        let signers: Vec<DeviceId> = next.signers().collect();
        let p = next.proposal();
        match &current {
            None => {
                // Founding: every member and the recovery key signed.
                for m in p.members() {
                    assert!(
                        signers.contains(&m.device_id()),
                        "founding member did not sign"
                    );
                }
                if let Some(r) = p.recovery_key() {
                    assert!(signers.contains(&r.id()), "recovery key did not sign");
                }
                assert!(p.members().iter().any(|m| m.role() == Role::Toy));
            }
            Some(c) => {
                let prev = c.signed().proposal();
                assert!(
                    quorum(prev, &signers),
                    "accepted without a quorum of the previous version"
                );
                for m in p.members() {
                    if !prev.members().contains(m) {
                        assert!(
                            signers.contains(&m.device_id()),
                            "added member did not sign"
                        );
                    }
                }
                if let Some(r) = p.recovery_key()
                    && prev.recovery_key() != Some(r)
                {
                    assert!(signers.contains(&r.id()), "new recovery key did not sign");
                }
                for m in prev.members() {
                    if !p.members().contains(m) {
                        assert!(
                            p.departed().iter().any(|d| d.identity() == m),
                            "a removal was not recorded"
                        );
                    }
                }
                for d in p.departed() {
                    let removed_now = prev.members().contains(d.identity());
                    assert!(
                        removed_now || prev.departed().contains(d),
                        "a departed record was invented or changed"
                    );
                }
            }
        }
        // Sender admission agrees with members and records.
        for dev in DEVICES.iter() {
            let seq = u64::from(probe_sequence);
            // The probed envelope's header hash: the chain head its sequence would have, or
            // another one (a back-dated or re-used sequence).
            let on_chain = probe_sequence % 2 == 0;
            let link = toyseal_envelope::ChainLink {
                sequence: seq,
                previous: [0; 32],
                header_hash: if on_chain {
                    toyseal_fuzz::cloud::chain_head(seq)
                } else {
                    [0xee; 32]
                },
            };
            let expected = if verified.contains(dev.public()) {
                Admission::Member
            } else {
                match verified
                    .departed()
                    .iter()
                    .find(|d| d.identity() == dev.public())
                {
                    // Without receive state only the recorded chain head itself is admitted;
                    // sequence 0 and a zero head never are.
                    Some(d)
                        if seq != 0
                            && seq == d.last_sequence()
                            && link.header_hash == *d.chain_head() =>
                    {
                        Admission::DepartedEarlier {
                            last_sequence: d.last_sequence(),
                        }
                    }
                    _ => Admission::Refused,
                }
            };
            assert_eq!(verified.admission(dev.public(), &link), expected);
        }
        current = Some(verified);
    }
    // A family deletion signed by a fuzzed subset of devices (and maybe the recovery key).
    if let Some(r) = &current {
        let mut deletion = FamilyDeletion::new(r);
        for d in pick(deletion_signers) {
            deletion.cosign(d);
        }
        if recovery_deletes {
            deletion.cosign_recovery(&RECOVERY);
        }
        let v = r.signed().proposal();
        let signers: Vec<DeviceId> = deletion.signers().collect();
        let all_authorities = signers.iter().all(|id| {
            v.members().iter().any(|m| m.device_id() == *id)
                || v.recovery_key().is_some_and(|k| k.id() == *id)
        });
        let decoded = FamilyDeletion::decode(&deletion.encode());
        match decoded {
            Ok(d) => assert_eq!(
                r.verify_deletion(&d).is_ok(),
                all_authorities && quorum(v, &signers),
                "deletion verdict differs from the quorum rule"
            ),
            Err(_) => assert!(signers.is_empty(), "a signed deletion did not decode"),
        }
    }
});
