//! The governance rules of docs/spec/roster.md §3 and §5, re-checked independently on every
//! chain the verifier accepts: structured chains (members, signers, the recovery key, removal
//! records drawn by the fuzzer) are verified version by version (`Roster::verify_founding`,
//! then `verify_next`), and for each accepted step the target recomputes, from the public API
//! alone, the change's class (§3.3.1) and that a quorum of the previous version for that class
//! signed (§3.3.2: a removal of members or toys — two guardians, a guardian and the recovery
//! key, or a guardian and a toy; anything else — two guardians, a guardian and the recovery
//! key, or the recovery key and a toy; a `member` never counts), that every added member and
//! recovery key signed, and that removal records are exactly the removals plus unchanged
//! earlier records. A family deletion signed by a fuzzed subset is accepted iff the deletion
//! quorum holds (two guardians, or a guardian and the recovery key), and `admission` agrees
//! with members and records. `Roster::change_to` and `Roster::quorum_met` agree with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_core::{DeviceId, Role};
use toyseal_fuzz::cloud::{ChainInput, DEVICES, RECOVERY, build_chain, pick};
use toyseal_roster::{Admission, ChangeClass, FamilyDeletion, Roster, RosterProposal};

/// Which quorum a statement needs (an independent restatement of roster.md §3.3).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Removal,
    Grant,
    Deletion,
}

/// Independent classification of the change `prev` → `next` (§3.3.1).
fn class(prev: &RosterProposal, next: &RosterProposal) -> Need {
    let listed = |p: &RosterProposal, id: DeviceId| p.members().iter().any(|m| m.device_id() == id);
    let adds = next.members().iter().any(|m| !listed(prev, m.device_id()));
    let removes_governing = prev
        .members()
        .iter()
        .any(|m| !listed(next, m.device_id()) && m.role() == Role::Guardian);
    if adds || removes_governing || prev.recovery_key() != next.recovery_key() {
        Need::Grant
    } else {
        Need::Removal
    }
}

/// Independent quorum check over `version`'s authorities, each counted once.
fn quorum(version: &RosterProposal, need: Need, signers: &[DeviceId]) -> bool {
    let mut guardians = std::collections::BTreeSet::new();
    let (mut recovery, mut toy) = (false, false);
    for id in signers {
        if version.recovery_key().id() == *id {
            recovery = true;
        } else if let Some(m) = version.members().iter().find(|m| m.device_id() == *id) {
            match m.role() {
                Role::Guardian => {
                    guardians.insert(*id);
                }
                Role::Toy => toy = true,
                _ => {}
            }
        }
    }
    let g = guardians.len();
    match need {
        Need::Removal => g >= 2 || (g >= 1 && (recovery || toy)),
        Need::Grant => g >= 2 || (g >= 1 && recovery) || (recovery && toy),
        Need::Deletion => g >= 2 || (g >= 1 && recovery),
    }
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
                assert!(
                    signers.contains(&p.recovery_key().id()),
                    "recovery key did not sign"
                );
                assert!(p.members().iter().any(|m| m.role() == Role::Toy));
            }
            Some(c) => {
                let prev = c.signed().proposal();
                let need = class(prev, p);
                assert!(
                    quorum(prev, need, &signers),
                    "accepted without a quorum of the previous version for a {need:?}"
                );
                let api_class = c.change_to(p).class();
                assert_eq!(
                    api_class == ChangeClass::Grant,
                    need == Need::Grant,
                    "change_to classifies differently"
                );
                assert!(c.quorum_met(api_class, &signers));
                for m in p.members() {
                    if !prev.members().contains(m) {
                        assert!(
                            signers.contains(&m.device_id()),
                            "added member did not sign"
                        );
                    }
                }
                if p.recovery_key() != prev.recovery_key() {
                    assert!(
                        signers.contains(&p.recovery_key().id()),
                        "new recovery key did not sign"
                    );
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
            v.members().iter().any(|m| m.device_id() == *id) || v.recovery_key().id() == *id
        });
        let decoded = FamilyDeletion::decode(&deletion.encode());
        match decoded {
            Ok(d) => assert_eq!(
                r.verify_deletion(&d).is_ok(),
                all_authorities && quorum(v, Need::Deletion, &signers),
                "deletion verdict differs from the quorum rule"
            ),
            Err(_) => assert!(signers.is_empty(), "a signed deletion did not decode"),
        }
    }
});
