//! Deterministic pairing/session vectors (docs/spec/vectors/pairing.json), checked both ways:
//! regenerated from fixed seeds and compared with the file byte for byte, then replayed from the
//! file alone (identities, codes and the recorded randomness) through the state machines, which
//! must reproduce every recorded frame. `TOYSEAL_REGENERATE_VECTORS=1` rewrites the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use toyseal_core::{DeviceIdentity, Role};
use toyseal_pairing::*;

/// A generator that records what it hands out, or replays recorded bytes.
enum Tape {
    Record(Box<ChaCha20Rng>, Vec<u8>),
    Replay(VecDeque<u8>),
}

impl Tape {
    fn take(&mut self) -> Vec<u8> {
        match self {
            Tape::Record(_, v) => std::mem::take(v),
            Tape::Replay(q) => q.drain(..).collect(),
        }
    }
}

impl TryRng for Tape {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        match self {
            Tape::Record(r, log) => {
                r.fill_bytes(dst);
                log.extend_from_slice(dst);
            }
            Tape::Replay(q) => {
                assert!(
                    q.len() >= dst.len(),
                    "replay ran out of recorded randomness"
                );
                for d in dst.iter_mut() {
                    *d = q.pop_front().unwrap();
                }
            }
        }
        Ok(())
    }
}
impl TryCryptoRng for Tape {}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Step {
    /// Who sends the frame.
    from: String,
    /// Frame kind name.
    frame: String,
    /// Randomness the sender drew to produce it (hex).
    random: String,
    /// The frame (hex).
    bytes: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vector {
    name: String,
    description: String,
    toy_secret_key: String,
    phone_secret_key: String,
    toy_code: String,
    phone_code: String,
    steps: Vec<Step>,
    /// The short authentication strings the phone and the toy derived (equal when paired;
    /// none when PAIR_CONFIRM failed: neither side learns a SAS before the nonces are open).
    sas: String,
    result: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct File {
    comment: String,
    vectors: Vec<Vector>,
}

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn toy(identity: &DeviceIdentity, code: &str) -> Toy<MemoryFailureStore> {
    // The vector's toy, from its published secret key (test identities only).
    let identity =
        DeviceIdentity::from_secret_key_text(&identity.export_secret_key_text().unwrap()).unwrap();
    let mut toy = Toy::builder(
        std::sync::Arc::new(identity),
        PairingCode::parse(code).unwrap(),
        MemoryFailureStore::default(),
    )
    .build()
    .unwrap();
    toy.press_pair_button(t(0)).unwrap();
    toy
}

/// What the phone's user says after comparing the SAS, and what the toy's user does.
#[derive(Clone, Copy)]
enum Verdict {
    /// The codes match; the parent confirms at the toy.
    Match,
    /// The parent says the codes differ.
    Differ,
    /// The codes match but nobody confirms at the toy: the window expires.
    Unconfirmed,
    /// The toy's user declines at the toy.
    Declined,
}

/// Runs one scenario. With a recording tape, produces the vector; with replay tapes taken
/// from a vector, reproduces it (the caller compares).
fn run(
    name: &str,
    toy_id: &DeviceIdentity,
    phone_id: &DeviceIdentity,
    toy_code: &str,
    phone_code: &str,
    verdict: Verdict,
    mut tape: impl FnMut(&str) -> Tape,
) -> Vector {
    let mut steps = Vec::new();
    let mut push = |from: &str, frame: &str, random: Vec<u8>, bytes: &[u8]| {
        steps.push(Step {
            from: from.into(),
            frame: frame.into(),
            random: hex::encode(random),
            bytes: hex::encode(bytes),
        })
    };
    let mut the_toy = toy(toy_id, toy_code);
    let mut rng = tape("phone PAIR_REQUEST");
    let (mut phone, req) = PhonePairing::start(
        &PairingCode::parse(phone_code).unwrap(),
        PairingExpectations::default(),
        &mut rng,
    )
    .unwrap();
    push("phone", "PAIR_REQUEST", rng.take(), &req);
    let mut rng = tape("toy PAIR_RESPONSE");
    let out = the_toy.handle(&req, t(10), &mut rng);
    push("toy", "PAIR_RESPONSE", rng.take(), &out.replies[0]);
    // Neither side knows the SAS yet: the toy has only committed to its nonce.
    assert!(!out.events.iter().any(|e| matches!(e, ToyEvent::Sas(_))));
    let Ok(PhoneStep::Send(confirm)) = phone.handle(phone_id, &out.replies[0]) else {
        panic!("the toy's response alone never fails")
    };
    assert_eq!(phone.sas(), None);
    push("phone", "PAIR_CONFIRM", vec![], &confirm);
    let out = the_toy.handle(&confirm, t(20), &mut tape("none"));
    let toy_sas = out.events.iter().find_map(|e| match e {
        ToyEvent::Sas(s) => Some(*s),
        _ => None,
    });
    let mut sas = "none".to_string();
    let result = match phone.handle(phone_id, &out.replies[0]) {
        Err(e) => {
            push("toy", "ABORT", vec![], &out.replies[0]);
            assert_eq!(toy_sas, None);
            // The guess was tested, so it is counted; the phone gives up.
            assert_eq!(the_toy.window().total_failures().unwrap(), 1);
            format!("phone fails: {e}")
        }
        Ok(PhoneStep::Paired(_)) if matches!(verdict, Verdict::Differ) => {
            push("toy", "PAIR_DONE", vec![], &out.replies[0]);
            push("toy", "CONFIRMATION_PENDING", vec![], &out.replies[1]);
            sas = format!("phone {} / toy {}", phone.sas().unwrap(), toy_sas.unwrap());
            // The parent says the codes differ: the phone aborts, the toy undoes the
            // pairing and counts a failed attempt.
            let abort = Frame::Abort(AbortReason::Authentication).encode();
            push("phone", "ABORT", vec![], &abort);
            let out = the_toy.handle(&abort, t(25), &mut tape("none"));
            assert!(out.replies.is_empty());
            assert!(out.events.contains(&ToyEvent::PairingRejected {
                phone: phone_id.public().clone()
            }));
            assert!(out.events.contains(&ToyEvent::ConfirmationCancelled));
            assert!(!the_toy.has_guardian());
            assert_eq!(the_toy.window().total_failures().unwrap(), 1);
            "phone rejects the SAS; the toy undoes the pairing and counts a failure".into()
        }
        Ok(PhoneStep::Paired(_)) if matches!(verdict, Verdict::Unconfirmed | Verdict::Declined) => {
            push("toy", "PAIR_DONE", vec![], &out.replies[0]);
            push("toy", "CONFIRMATION_PENDING", vec![], &out.replies[1]);
            assert_eq!(
                Frame::decode(&out.replies[1]).unwrap(),
                Frame::ConfirmationPending { seconds: 30 }
            );
            sas = format!("phone {} / toy {}", phone.sas().unwrap(), toy_sas.unwrap());
            let (out, result) = if matches!(verdict, Verdict::Declined) {
                the_toy.decline(t(25)).unwrap();
                (
                    the_toy.poll(t(25)),
                    "the toy's user declines: ABORT (declined); no founder recorded",
                )
            } else {
                (
                    the_toy.poll(t(20 + 30_000)),
                    "nobody confirms at the toy within 30 s: ABORT (not confirmed); no founder, the printed code still pairs",
                )
            };
            push("toy", "ABORT", vec![], &out.replies[0]);
            assert!(!the_toy.has_guardian());
            // The phone is not admitted to a session.
            let mut rng = tape("phone HANDSHAKE_INIT");
            let (_, hello) = Initiator::start(
                phone_id,
                the_toy.identity().public(),
                SessionConfig::default(),
                &mut rng,
            )
            .unwrap();
            push("phone", "HANDSHAKE_INIT", rng.take(), &hello);
            let out = the_toy.handle(&hello, t(40_000), &mut tape("none"));
            assert_eq!(out.replies, vec![Frame::NotPairable.encode()]);
            push("toy", "NOT_PAIRABLE", vec![], &out.replies[0]);
            result.into()
        }
        Ok(PhoneStep::Paired(paired)) => {
            push("toy", "PAIR_DONE", vec![], &out.replies[0]);
            push("toy", "CONFIRMATION_PENDING", vec![], &out.replies[1]);
            sas = format!("phone {} / toy {}", phone.sas().unwrap(), toy_sas.unwrap());
            // The parent holds the toy's confirmation gesture: the founder is recorded.
            the_toy.confirm(t(25)).unwrap();
            let out = the_toy.poll(t(25));
            push("toy", "CONFIRMED", vec![], &out.replies[0]);
            assert_eq!(the_toy.founder(), Some(phone_id.public()));
            // Reconnect and exchange transport messages.
            let mut rng = tape("phone HANDSHAKE_INIT");
            let (init, hello) = Initiator::start(
                phone_id,
                &paired.identity,
                SessionConfig::default(),
                &mut rng,
            )
            .unwrap();
            push("phone", "HANDSHAKE_INIT", rng.take(), &hello);
            let mut rng = tape("toy HANDSHAKE_RESP");
            let out = the_toy.handle(&hello, t(30), &mut rng);
            push("toy", "HANDSHAKE_RESP", rng.take(), &out.replies[0]);
            let mut session = init.finish(&out.replies[0], t(30)).unwrap();
            push("toy", "TRANSPORT", vec![], &out.replies[1]);
            assert_eq!(
                session.open(&out.replies[1], t(30)).unwrap(),
                SessionMessage::RosterHead {
                    version: 0,
                    hash: [0; 32]
                }
            );
            for (i, msg) in [
                SessionMessage::Ping { nonce: 1 },
                SessionMessage::Control(Control::StartRecording),
                SessionMessage::OpenPairingWindow {
                    code: PairingCode::parse("5820193746").unwrap(),
                },
            ]
            .iter()
            .enumerate()
            {
                let f = session.seal(msg, t(40)).unwrap();
                push("phone", "TRANSPORT", vec![], &f);
                let out = the_toy.handle(&f, t(40), &mut tape("none"));
                if i != 1 {
                    push("toy", "TRANSPORT", vec![], &out.replies[0]);
                    let expected = match i {
                        0 => SessionMessage::Pong { nonce: 1 },
                        _ => SessionMessage::ControlAck { ok: true },
                    };
                    assert_eq!(session.open(&out.replies[0], t(40)).unwrap(), expected);
                }
            }
            // Roster version 1: the toy co-signs only after its user confirms at the toy.
            // The family's recovery key, from a fixed seed (it is inside the encrypted frame).
            let recovery = toyseal_roster::RecoveryKey::generate(
                &mut <chacha20::ChaCha20Rng as rand_core::SeedableRng>::from_seed([0x52; 32]),
            )
            .unwrap();
            let mut v1 = toyseal_roster::RosterProposal::founding(
                toyseal_core::FamilyId::from_bytes([0x46; 16]),
                vec![
                    phone_id.public().clone(),
                    the_toy.identity().public().clone(),
                ],
                *recovery.public(),
            )
            .unwrap()
            .sign(phone_id);
            v1.cosign_recovery(&recovery);
            let f = session
                .seal(
                    &SessionMessage::RosterUpdate {
                        rosters: vec![v1.encode()],
                    },
                    t(50),
                )
                .unwrap();
            push("phone", "TRANSPORT", vec![], &f);
            let out = the_toy.handle(&f, t(50), &mut tape("none"));
            push("toy", "TRANSPORT", vec![], &out.replies[0]);
            assert_eq!(
                session.open(&out.replies[0], t(50)).unwrap(),
                SessionMessage::RosterPending {
                    version: 1,
                    seconds: 30
                }
            );
            assert!(
                the_toy.roster().is_none(),
                "nothing signed before the confirmation"
            );
            the_toy.confirm(t(60)).unwrap();
            let out = the_toy.poll(t(60));
            assert_eq!(out.replies.len(), 2);
            push("toy", "TRANSPORT", vec![], &out.replies[0]);
            push("toy", "TRANSPORT", vec![], &out.replies[1]);
            let SessionMessage::RosterUpdate { rosters } =
                session.open(&out.replies[0], t(60)).unwrap()
            else {
                panic!("the co-signed version 1 comes back")
            };
            let back = toyseal_roster::SignedRoster::decode(&rosters[0]).unwrap();
            assert!(back.signers().any(|s| s == the_toy.identity().device_id()));
            assert_eq!(
                session.open(&out.replies[1], t(60)).unwrap(),
                SessionMessage::RosterAnswer {
                    version: 1,
                    answer: ToyAnswer::Confirmed
                }
            );
            // A recovery proof (§7.2) over this session's handshake hash: Ed25519 is
            // deterministic, so the frame pins the signed bytes. Outside a recovery window the
            // toy answers "closed".
            let signature = *recovery
                .sign_recovery_proof(session.handshake_hash())
                .as_bytes();
            let f = session
                .seal(&SessionMessage::RecoveryProof { signature }, t(70))
                .unwrap();
            push("phone", "TRANSPORT", vec![], &f);
            let out = the_toy.handle(&f, t(70), &mut tape("none"));
            push("toy", "TRANSPORT", vec![], &out.replies[0]);
            assert_eq!(
                session.open(&out.replies[0], t(70)).unwrap(),
                SessionMessage::RecoveryAnswer {
                    answer: RecoveryAnswer::Closed
                }
            );
            "paired; confirmed at the toy; session established; roster version 1 confirmed at the toy and co-signed; a recovery proof outside a recovery window answered closed".into()
        }
        Ok(other) => panic!("{other:?}"),
    };
    Vector {
        name: name.into(),
        description: String::new(),
        toy_secret_key: toy_id.export_secret_key_text().unwrap().to_string(),
        phone_secret_key: phone_id.export_secret_key_text().unwrap().to_string(),
        toy_code: toy_code.into(),
        phone_code: phone_code.into(),
        steps,
        sas,
        result,
    }
}

fn generate() -> File {
    let mut seed_rng = ChaCha20Rng::from_seed([0x70; 32]);
    let toy_id = DeviceIdentity::generate(Role::Toy, &mut seed_rng);
    let phone_id = DeviceIdentity::generate(Role::Guardian, &mut seed_rng);
    let scenarios = [
        (
            "pairing_and_session",
            "48213957",
            "48213957",
            "A full pairing with the right code (2 round trips; both sides show the same SAS; the toy sends CONFIRMATION_PENDING and, once its user confirms at the toy, CONFIRMED), then a Noise KK reconnect and transport frames (the toy's RosterHead (version 0), Ping → Pong, Control StartRecording, OpenPairingWindow → ControlAck, RosterUpdate with version 1 → RosterPending; after the confirmation at the toy the co-signed RosterUpdate and RosterAnswer confirmed; then a RecoveryProof by the family's recovery key over the session's handshake hash, answered RecoveryAnswer closed as no recovery window is open).",
        ),
        (
            "wrong_code",
            "48213957",
            "48213958",
            "The phone uses a wrong code: the toy rejects confirm_phone in PAIR_CONFIRM, counts one failure and answers ABORT (authentication); no SAS is derived on either side.",
        ),
        (
            "sas_rejected",
            "48213957",
            "48213957",
            "The right code, but the parent says the SAS differ: after PAIR_DONE (and CONFIRMATION_PENDING) the phone sends ABORT (authentication); the toy undoes the pairing and counts one failure.",
        ),
        (
            "founder_not_confirmed",
            "48213957",
            "48213957",
            "The right code and matching SAS, but nobody confirms at the toy: after 30 s the toy sends ABORT (5, not confirmed) and records no founder; the phone's HANDSHAKE_INIT gets NOT_PAIRABLE.",
        ),
        (
            "founder_declined",
            "48213957",
            "48213957",
            "The right code and matching SAS, but the toy's user declines: ABORT (6, declined); no founder; the phone's HANDSHAKE_INIT gets NOT_PAIRABLE.",
        ),
    ];
    let vectors = scenarios
        .iter()
        .enumerate()
        .map(|(i, (name, toy_code, phone_code, description))| {
            let mut rng = ChaCha20Rng::from_seed([0x80 + i as u8; 32]);
            let mut seeds = Vec::new();
            for _ in 0..8 {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                seeds.push(s);
            }
            let mut next = 0;
            let mut v = run(
                name,
                &toy_id,
                &phone_id,
                toy_code,
                phone_code,
                verdict(name),
                |_| {
                    next += 1;
                    Tape::Record(
                        Box::new(ChaCha20Rng::from_seed(seeds[next % seeds.len()])),
                        Vec::new(),
                    )
                },
            );
            v.description = (*description).into();
            v
        })
        .collect();
    File {
        comment: "toyseal pairing vectors, pairing version 3 (docs/spec/pairing.md §12). Synthetic test identities; the secret keys are published on purpose. `random` is exactly what the sender drew, in order: for PAIR_REQUEST and PAIR_RESPONSE 96 bytes, the 64 bytes of the SPAKE2 scalar (little-endian, reduced mod l) then the 32-byte SAS nonce (Na for the phone, Nb for the toy); 32 bytes for a Noise ephemeral X25519 key. Generated by crates/toyseal-pairing/tests/vectors.rs.".into(),
        vectors,
    }
}

fn verdict(name: &str) -> Verdict {
    match name {
        "sas_rejected" => Verdict::Differ,
        "founder_not_confirmed" => Verdict::Unconfirmed,
        "founder_declined" => Verdict::Declined,
        _ => Verdict::Match,
    }
}

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec/vectors/pairing.json")
}

#[test]
fn vectors_are_reproduced_and_replay() {
    let generated = generate();
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("TOYSEAL_REGENERATE_VECTORS").is_some() {
        std::fs::write(path(), &text).unwrap();
    }
    let committed = std::fs::read_to_string(path()).unwrap();
    assert_eq!(
        committed, text,
        "pairing vectors differ from the code; regenerate and review"
    );

    // Replay from the file alone.
    let file: File = serde_json::from_str(&committed).unwrap();
    let mut frames_checked = 0;
    for v in &file.vectors {
        let toy_id = DeviceIdentity::from_secret_key_text(&v.toy_secret_key).unwrap();
        let phone_id = DeviceIdentity::from_secret_key_text(&v.phone_secret_key).unwrap();
        let mut randomness: VecDeque<Vec<u8>> = v
            .steps
            .iter()
            .filter(|s| !s.random.is_empty())
            .map(|s| hex::decode(&s.random).unwrap())
            .collect();
        let replayed = run(
            &v.name,
            &toy_id,
            &phone_id,
            &v.toy_code,
            &v.phone_code,
            verdict(&v.name),
            |label| {
                if label == "none" {
                    Tape::Replay(VecDeque::new())
                } else {
                    Tape::Replay(randomness.pop_front().unwrap().into())
                }
            },
        );
        assert_eq!(replayed.steps.len(), v.steps.len());
        for (a, b) in replayed.steps.iter().zip(&v.steps) {
            assert_eq!(a.bytes, b.bytes, "{}: {} differs", v.name, b.frame);
            frames_checked += 1;
        }
        assert_eq!(replayed.sas, v.sas);
        assert_eq!(replayed.result, v.result);
    }
    assert_eq!(file.vectors.len(), 5);
    assert_eq!(
        frames_checked, 46,
        "frames replayed: 20 in the pairing + session, 4 in the wrong-code run, 6 in the SAS rejection, 8 unconfirmed, 8 declined"
    );
}
