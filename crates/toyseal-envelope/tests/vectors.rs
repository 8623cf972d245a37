//! Deterministic envelope test vectors (`docs/spec/vectors/envelope.json`), checked both ways.
//!
//! 1. The generator below seals every vector from fixed seeds (synthetic identities, a seeded
//!    RNG for HPKE ephemerals, file key and payload nonce; Ed25519 is deterministic) and must
//!    reproduce the committed file byte for byte.
//! 2. Every committed vector is then opened from the file alone: with [`open`], with the
//!    streaming [`Opener`] fed in small pieces, and with the server's [`verify`]; each must give
//!    the result the file states.
//!
//! Regenerate the file (after a deliberate format change only) with
//! `TOYSEAL_REGENERATE_VECTORS=1 cargo test -p toyseal-envelope --test vectors`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_envelope::stream::StreamKey;
use toyseal_envelope::{
    Error, FIXED_HEADER_LEN, Metadata, OpenOptions, Opener, STANZA_LEN, SealOptions, open, padme,
    seal, verify,
};

/// Where the committed vectors live.
const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/spec/vectors/envelope.json"
);

/// How many vectors the file holds; a vector silently lost or added fails the test.
const VECTOR_COUNT: usize = 73;

/// Chunk size exponent of most vectors: 1 KiB chunks keep the file small.
const SMALL_CHUNK_LOG2: u8 = 10;
const TAG_LEN: usize = 16;
const SIG_LEN: usize = 64;

// Strings fixed by docs/spec/envelope.md, repeated here on purpose: the insider forgery below
// is built from the spec, not from the library's private constants.
const WRAP_INFO: &[u8] = b"toyseal/v1/file-key";
const PAYLOAD_INFO: &[u8] = b"toyseal/v1/payload";
const KEY_ID_CONTEXT: &[u8] = b"toyseal/v1/recipient-key-id";
const SIGNATURE_CONTEXT: &[u8] = b"toyseal/v1/envelope-signature\x00";

// ---------------------------------------------------------------------------------------------
// The cast: synthetic identities from fixed seeds.

const CAST: &[(&str, Role, u8)] = &[
    ("toy", Role::Toy, 1),
    ("phone-a", Role::Guardian, 2),
    ("phone-b", Role::Guardian, 3),
    ("phone-c", Role::Guardian, 4),
    ("stranger", Role::Guardian, 5),
    ("other-toy", Role::Toy, 6),
];

fn identity(name: &str) -> DeviceIdentity {
    let &(_, role, seed) = CAST
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no identity {name}"));
    DeviceIdentity::generate(role, &mut ChaCha20Rng::from_seed([seed; 32]))
}

fn public(name: &str) -> PublicIdentity {
    identity(name).public().clone()
}

fn family() -> FamilyId {
    FamilyId::from_bytes(*b"synthetic-family")
}

/// Deterministic synthetic "recording" bytes.
fn content(len: usize, tag: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + usize::from(tag) * 17 + i / 251) % 251) as u8)
        .collect()
}

fn small_chunks() -> SealOptions {
    SealOptions::default()
        .with_chunk_size_log2(SMALL_CHUNK_LOG2)
        .unwrap()
}

fn seal_with(
    seed: u8,
    sender: &str,
    recipients: &[&str],
    options: &SealOptions,
    content: &[u8],
) -> Vec<u8> {
    let recipients: Vec<PublicIdentity> = recipients.iter().map(|r| public(r)).collect();
    seal(
        &identity(sender),
        &recipients,
        options,
        content,
        &mut ChaCha20Rng::from_seed([seed; 32]),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Byte layout helpers (docs/spec/envelope.md §Header, §Payload).

const OFF_VERSION: usize = 7;
const OFF_SUITE: usize = 8;
const OFF_FLAGS: usize = 10;
const OFF_CHUNK: usize = 11;
const OFF_FAMILY: usize = 12;
const OFF_ROSTER: usize = 28;
const OFF_NONCE: usize = 36;
const OFF_SENDER: usize = 52;
const OFF_SENDER_ROLE: usize = OFF_SENDER + 1;
const OFF_SENDER_ED25519: usize = OFF_SENDER + 2;
const OFF_SENDER_X25519: usize = OFF_SENDER + 34;
const OFF_COUNT: usize = 118;

fn header_len(env: &[u8]) -> usize {
    let count = usize::from(u16::from_be_bytes([env[OFF_COUNT], env[OFF_COUNT + 1]]));
    FIXED_HEADER_LEN + count * STANZA_LEN
}

/// Byte ranges of each chunk (ciphertext || tag), from the framing rule: every chunk but the
/// last is `2^log2 + 16` bytes; the last is what remains before the 64-byte signature.
fn chunk_ranges(env: &[u8]) -> Vec<std::ops::Range<usize>> {
    let ct = (1usize << env[OFF_CHUNK]) + TAG_LEN;
    let start = header_len(env);
    let end = env.len() - SIG_LEN;
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let next = (at + ct).min(end);
        out.push(at..next);
        at = next;
    }
    out
}

fn flip(env: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut e = env.to_vec();
    e[offset] ^= mask;
    e
}

fn set(env: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut e = env.to_vec();
    e[offset..offset + bytes.len()].copy_from_slice(bytes);
    e
}

/// The envelope rebuilt from the header, the chunks in `order` (indices into the original
/// chunks) and the original signature.
fn rearrange(env: &[u8], order: &[usize]) -> Vec<u8> {
    let chunks = chunk_ranges(env);
    let mut e = env[..header_len(env)].to_vec();
    for &i in order {
        e.extend_from_slice(&env[chunks[i].clone()]);
    }
    e.extend_from_slice(&env[env.len() - SIG_LEN..]);
    e
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest(&SHA256, data).as_ref().to_vec()
}

fn signed_message(envelope_without_signature: &[u8]) -> Vec<u8> {
    let mut m = SIGNATURE_CONTEXT.to_vec();
    m.extend_from_slice(&sha256(envelope_without_signature));
    m
}

// ---------------------------------------------------------------------------------------------
// A recipient's view, written from the spec: what an insider can compute.

/// The payload key, recovered by a recipient from its own stanza (HPKE base mode, RFC 9180).
fn insider_payload_key(env: &[u8], insider: &DeviceIdentity) -> StreamKey {
    use hpke::{
        Deserializable, OpModeR, aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256,
    };
    type Kem = X25519HkdfSha256;
    let mut key_id_input = KEY_ID_CONTEXT.to_vec();
    key_id_input.extend_from_slice(insider.public().agreement_key().as_bytes());
    let key_id = &sha256(&key_id_input)[..8];
    let stanza = (FIXED_HEADER_LEN..header_len(env))
        .step_by(STANZA_LEN)
        .map(|at| &env[at..at + STANZA_LEN])
        .find(|s| &s[..8] == key_id)
        .expect("the insider is a recipient");
    let mut aad = env[..FIXED_HEADER_LEN].to_vec();
    aad.extend_from_slice(key_id);
    let secret = insider.expose_x25519_secret();
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_ref()).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&stanza[8..40]).unwrap();
    let file_key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        WRAP_INFO,
        &stanza[40..72],
        &aad,
    )
    .unwrap();
    assert_eq!(file_key.len(), 16);
    let header_hash = sha256(&env[..header_len(env)]);
    StreamKey::derive(
        &file_key,
        &env[OFF_NONCE..OFF_NONCE + 16],
        &[PAYLOAD_INFO, &header_hash],
    )
}

/// Encrypts a content stream (prelude || content) into chunks, as the spec lays them out:
/// DATA chunks of `0x00 || 2^log2 - 1 bytes`, one END chunk `0x01 || rest || 0x80 || zeros`,
/// PAD chunks of zeros, Padmé over the total plaintext length, last-chunk flag on the last.
fn encrypt_payload(key: &StreamKey, log2: u8, prelude: &[u8], content: &[u8]) -> Vec<u8> {
    let c = 1usize << log2;
    let mut stream = prelude.to_vec();
    stream.extend_from_slice(content);
    let full = stream.len() / (c - 1);
    let rest = &stream[full * (c - 1)..];
    let mut chunks: Vec<Vec<u8>> = stream[..full * (c - 1)]
        .chunks(c - 1)
        .map(|body| [&[0x00][..], body].concat())
        .collect();
    let minimal = (full * c + 1 + rest.len() + 1) as u64;
    let mut remaining = (padme(minimal) - minimal) as usize;
    let mut end = [&[0x01][..], rest, &[0x80][..]].concat();
    let grow = remaining.min(c - end.len());
    end.resize(end.len() + grow, 0);
    remaining -= grow;
    chunks.push(end);
    while remaining > 0 {
        let len = remaining.min(c);
        remaining -= len;
        let mut pad = vec![0u8; len];
        pad[0] = 0x02;
        chunks.push(pad);
    }
    let n = chunks.len();
    let mut out = Vec::new();
    for (i, mut chunk) in chunks.into_iter().enumerate() {
        let tag = key.seal_chunk(i as u64, i + 1 == n, &mut chunk);
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&tag);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Expectations.

fn metadata_json(m: &Metadata) -> Value {
    json!({
        "content_type": m.content_type,
        "codec": m.codec,
        "duration_ms": m.duration_ms,
    })
}

fn expect_ok(content: &[u8], metadata: &Metadata, family: Option<FamilyId>, roster: u64) -> Value {
    let mut v = json!({
        "result": "ok",
        "content_len": content.len(),
        "metadata": metadata_json(metadata),
        "family": family.map(|f| f.to_string()),
        "roster_version": roster,
    });
    if content.len() <= 1100 {
        v["content_hex"] = json!(hex::encode(content));
    } else {
        v["content_sha256"] = json!(hex::encode(sha256(content)));
    }
    v
}

fn expect_err(name: &str) -> Value {
    json!({"result": "error", "error": name})
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::BadMagic => "BadMagic",
        Error::UnsupportedVersion(_) => "UnsupportedVersion",
        Error::UnsupportedSuite(_) => "UnsupportedSuite",
        Error::ReservedFlags(_) => "ReservedFlags",
        Error::ChunkSize(_) => "ChunkSize",
        Error::NoRecipients => "NoRecipients",
        Error::TooManyRecipients { .. } => "TooManyRecipients",
        Error::DuplicateRecipient => "DuplicateRecipient",
        Error::Key(_) => "Key",
        Error::Metadata(_) => "Metadata",
        Error::Truncated => "Truncated",
        Error::TooLarge { .. } => "TooLarge",
        Error::NotARecipient => "NotARecipient",
        Error::Decrypt => "Decrypt",
        Error::Signature => "Signature",
        Error::UntrustedSender => "UntrustedSender",
        Error::StreamClosed => "StreamClosed",
        _ => "Other",
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Vector {
    name: String,
    description: String,
    sender: &'static str,
    recipients: Vec<&'static str>,
    trusted: Vec<&'static str>,
    opener: &'static str,
    /// Identities that took part without being sender, recipient, trusted or opener.
    others: Vec<&'static str>,
    envelope: Vec<u8>,
    expected: Value,
    verify: Value,
}

impl Vector {
    fn to_json(&self) -> VectorJson {
        let mut names: Vec<&str> = Vec::new();
        let mut seen = BTreeSet::new();
        let all = std::iter::once(self.sender)
            .chain(self.recipients.iter().copied())
            .chain(self.trusted.iter().copied())
            .chain(std::iter::once(self.opener))
            .chain(self.others.iter().copied());
        for n in all {
            if seen.insert(n) {
                names.push(n);
            }
        }
        let identities = names
            .iter()
            .map(|n| {
                let id = identity(n);
                IdentityJson {
                    name: n.to_string(),
                    role: id.role().as_str(),
                    public_key: id.public().to_string(),
                    secret_key: id.export_secret_key_text().unwrap().to_string(),
                }
            })
            .collect();
        VectorJson {
            name: self.name.clone(),
            description: self.description.clone(),
            identities,
            sender: self.sender,
            recipients: self.recipients.clone(),
            trusted_senders: self.trusted.clone(),
            opener: self.opener,
            expected: self.expected.clone(),
            server_verify: self.verify.clone(),
            envelope_hex: hex::encode(&self.envelope),
        }
    }
}

// The file's layout; serde keeps field order, so each vector reads top-down: what it is, who
// takes part, what must happen, and the bytes last.

#[derive(serde::Serialize)]
struct IdentityJson {
    name: String,
    role: &'static str,
    public_key: String,
    secret_key: String,
}

#[derive(serde::Serialize)]
struct VectorJson {
    name: String,
    description: String,
    identities: Vec<IdentityJson>,
    sender: &'static str,
    recipients: Vec<&'static str>,
    trusted_senders: Vec<&'static str>,
    opener: &'static str,
    expected: Value,
    server_verify: Value,
    envelope_hex: String,
}

#[derive(serde::Serialize)]
struct FileJson {
    comment: &'static str,
    format: &'static str,
    generator: &'static str,
    vectors: Vec<VectorJson>,
}

/// Collects vectors.
struct Gen {
    vectors: Vec<Vector>,
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        description: &str,
        sender: &'static str,
        recipients: &[&'static str],
        trusted: &[&'static str],
        opener: &'static str,
        envelope: Vec<u8>,
        expected: Value,
        verify: Value,
    ) {
        self.vectors.push(Vector {
            name: name.into(),
            description: description.into(),
            sender,
            recipients: recipients.to_vec(),
            trusted: trusted.to_vec(),
            opener,
            others: Vec::new(),
            envelope,
            expected,
            verify,
        });
    }

    /// A tampered copy of the 3-chunk base envelope (toy → phone-a, family set).
    fn tampered(
        &mut self,
        name: &str,
        description: &str,
        envelope: Vec<u8>,
        open: &str,
        ver: &str,
    ) {
        let verify = if ver == "ok" {
            json!({"result": "ok"})
        } else {
            expect_err(ver)
        };
        self.push(
            name,
            description,
            "toy",
            &["phone-a"],
            &["toy"],
            "phone-a",
            envelope,
            expect_err(open),
            verify,
        );
    }
}

fn verify_ok() -> Value {
    json!({"result": "ok"})
}

fn generate() -> Vec<Vector> {
    let mut g = Gen {
        vectors: Vec::new(),
    };
    let none = Metadata::default();

    // --- valid envelopes: content sizes around the chunk boundaries -------------------------
    let sizes: &[(&str, usize, &str)] = &[
        ("empty", 0, "empty content"),
        ("one_byte", 1, "one content byte"),
        (
            "data_body_exact",
            1021,
            "1021 bytes: with the 2-byte prelude they fill one DATA chunk body (1023 bytes) exactly, so the END chunk holds only the end marker",
        ),
        ("chunk_minus_2", 1022, "1022 bytes (chunk size - 2)"),
        ("chunk_minus_1", 1023, "1023 bytes (chunk size - 1)"),
        ("chunk", 1024, "1024 bytes (exactly the chunk size)"),
        ("chunk_plus_1", 1025, "1025 bytes (chunk size + 1)"),
        (
            "several_chunks",
            4000,
            "4000 bytes: several DATA chunks, then the END chunk",
        ),
    ];
    for (i, &(name, len, desc)) in sizes.iter().enumerate() {
        let c = content(len, i as u8);
        let env = seal_with(10 + i as u8, "toy", &["phone-a"], &small_chunks(), &c);
        g.push(
            &format!("ok_{name}"),
            &format!("toy to one phone, 1 KiB chunks, {desc}"),
            "toy",
            &["phone-a"],
            &["toy"],
            "phone-a",
            env,
            expect_ok(&c, &none, None, 0),
            verify_ok(),
        );
    }

    // 32 DATA chunks, an END chunk (not last) and a PAD chunk (last): Padmé pads 32836 → 34816.
    let pad_content = content(32_800, 40);
    let pad_env = seal_with(17, "toy", &["phone-a"], &small_chunks(), &pad_content);
    assert_eq!(chunk_ranges(&pad_env).len(), 34);
    g.push(
        "ok_padding_chunk",
        "32,800 bytes in 1 KiB chunks: 32 DATA chunks, an END chunk padded with zeros, and a final PAD chunk (Padmé pads the 32,836-byte stream to 34,816)",
        "toy",
        &["phone-a"],
        &["toy"],
        "phone-a",
        pad_env.clone(),
        expect_ok(&pad_content, &none, None, 0),
        verify_ok(),
    );

    // Three recipients; each stanza opens for its own phone.
    let three_content = content(1500, 41);
    let three = seal_with(
        18,
        "toy",
        &["phone-a", "phone-b", "phone-c"],
        &small_chunks(),
        &three_content,
    );
    for opener in ["phone-a", "phone-c"] {
        g.push(
            &format!("ok_three_recipients_{}", opener.replace('-', "_")),
            &format!("toy to three phones, opened by {opener}"),
            "toy",
            &["phone-a", "phone-b", "phone-c"],
            &["toy", "phone-a", "phone-b", "phone-c"],
            opener,
            three.clone(),
            expect_ok(&three_content, &none, None, 0),
            verify_ok(),
        );
    }

    let meta = Metadata::default()
        .with_content_type("audio/wav")
        .with_codec("pcm_s16le")
        .with_duration_ms(4200);
    let meta_content = content(700, 42);
    g.push(
        "ok_metadata",
        "metadata present (content type, codec, duration) in the encrypted prelude",
        "toy",
        &["phone-a"],
        &["toy"],
        "phone-a",
        seal_with(
            19,
            "toy",
            &["phone-a"],
            &small_chunks().with_metadata(meta.clone()),
            &meta_content,
        ),
        expect_ok(&meta_content, &meta, None, 0),
        verify_ok(),
    );

    let fam_content = content(900, 43);
    g.push(
        "ok_family_and_roster_version",
        "family id and roster version 7 in the header, metadata with a content type only",
        "toy",
        &["phone-a", "phone-b"],
        &["toy"],
        "phone-b",
        seal_with(
            20,
            "toy",
            &["phone-a", "phone-b"],
            &small_chunks()
                .with_family(family(), 7)
                .with_metadata(Metadata::default().with_content_type("audio/ogg")),
            &fam_content,
        ),
        expect_ok(
            &fam_content,
            &Metadata::default().with_content_type("audio/ogg"),
            Some(family()),
            7,
        ),
        verify_ok(),
    );

    let default_content = content(100, 44);
    g.push(
        "ok_default_chunk_size",
        "default 64 KiB chunks, a 100-byte message (one END chunk)",
        "toy",
        &["phone-a"],
        &["toy"],
        "phone-a",
        seal_with(
            21,
            "toy",
            &["phone-a"],
            &SealOptions::default(),
            &default_content,
        ),
        expect_ok(&default_content, &none, None, 0),
        verify_ok(),
    );

    let parent_content = content(300, 45);
    g.push(
        "ok_parent_to_toy",
        "the reverse path: a guardian's phone seals to the toy",
        "phone-a",
        &["toy"],
        &["phone-a", "phone-b"],
        "toy",
        seal_with(22, "phone-a", &["toy"], &small_chunks(), &parent_content),
        expect_ok(&parent_content, &none, None, 0),
        verify_ok(),
    );

    // --- the tamper base: toy → phone-a, family set, 3 chunks (1040 + 1040 + 528 bytes) --------
    let base_content = content(2544, 50);
    let base = seal_with(
        30,
        "toy",
        &["phone-a"],
        &small_chunks().with_family(family(), 3),
        &base_content,
    );
    let chunks = chunk_ranges(&base);
    assert_eq!(
        chunks.iter().map(|r| r.len()).collect::<Vec<_>>(),
        [1040, 1040, 528]
    );
    let h = header_len(&base);
    let len = base.len();
    g.push(
        "ok_tamper_base",
        "the envelope the tampered vectors below are made from: toy to phone-a, family set, roster version 3, 3 chunks",
        "toy",
        &["phone-a"],
        &["toy"],
        "phone-a",
        base.clone(),
        expect_ok(&base_content, &none, Some(family()), 3),
        verify_ok(),
    );

    // Flipped bits, region by region. Header fields the fixed part validates fail as such;
    // any other header bit breaks the HPKE aad (Decrypt) and the signature (server).
    let t = &mut g;
    t.tampered(
        "flip_magic",
        "first magic byte flipped",
        flip(&base, 0, 0x01),
        "BadMagic",
        "BadMagic",
    );
    t.tampered(
        "flip_version",
        "version byte 1 → 0",
        flip(&base, OFF_VERSION, 0x01),
        "UnsupportedVersion",
        "UnsupportedVersion",
    );
    t.tampered(
        "flip_suite",
        "suite 0x0001 → 0x0101",
        flip(&base, OFF_SUITE, 0x01),
        "UnsupportedSuite",
        "UnsupportedSuite",
    );
    t.tampered(
        "flip_flags",
        "reserved flags 0x00 → 0x01",
        flip(&base, OFF_FLAGS, 0x01),
        "ReservedFlags",
        "ReservedFlags",
    );
    t.tampered(
        "flip_chunk_size",
        "chunk size exponent 10 → 11: still a legal size, so the header parses, but the HPKE aad (the fixed header) no longer matches and the signature fails",
        flip(&base, OFF_CHUNK, 0x01),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_family",
        "one bit of the family id flipped",
        flip(&base, OFF_FAMILY + 5, 0x10),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_roster_version",
        "roster version 3 → 2",
        flip(&base, OFF_ROSTER + 7, 0x01),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_nonce",
        "one bit of the payload nonce flipped",
        flip(&base, OFF_NONCE + 15, 0x80),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_sender_ed25519",
        "one bit of the sender's Ed25519 key flipped: the header now names a sender the opener does not trust",
        flip(&base, OFF_SENDER_ED25519 + 3, 0x04),
        "UntrustedSender",
        "Signature",
    );
    t.tampered(
        "flip_sender_x25519",
        "one bit of the sender's X25519 key flipped: a different, untrusted identity",
        flip(&base, OFF_SENDER_X25519 + 9, 0x02),
        "UntrustedSender",
        "Signature",
    );
    t.tampered(
        "flip_sender_role",
        "sender role byte 1 (toy) → 3 (unknown)",
        flip(&base, OFF_SENDER_ROLE, 0x02),
        "Key",
        "Key",
    );
    t.tampered(
        "flip_stanza_key_id",
        "one bit of the only stanza's key id flipped",
        flip(&base, FIXED_HEADER_LEN, 0x01),
        "NotARecipient",
        "Signature",
    );
    t.tampered(
        "flip_stanza_enc",
        "one bit of the stanza's HPKE enc flipped",
        flip(&base, FIXED_HEADER_LEN + 8 + 4, 0x08),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_stanza_wrapped_key",
        "one bit of the wrapped file key flipped",
        flip(&base, FIXED_HEADER_LEN + 40, 0x01),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_stanza_wrapped_key_tag",
        "one bit of the wrapped key's HPKE tag flipped",
        flip(&base, FIXED_HEADER_LEN + 71, 0x80),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_first_chunk",
        "one ciphertext bit of the first chunk flipped",
        flip(&base, chunks[0].start + 100, 0x01),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_first_chunk_tag",
        "one bit of the first chunk's tag flipped",
        flip(&base, chunks[0].end - 1, 0x01),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_middle_chunk",
        "one ciphertext bit of the second chunk flipped",
        flip(&base, chunks[1].start, 0x40),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "flip_last_chunk",
        "one ciphertext bit of the last chunk flipped: the signature is checked before the last chunk is decrypted",
        flip(&base, chunks[2].start + 10, 0x01),
        "Signature",
        "Signature",
    );
    t.tampered(
        "flip_signature_r",
        "first byte of the signature (R) flipped",
        flip(&base, len - SIG_LEN, 0x01),
        "Signature",
        "Signature",
    );
    t.tampered(
        "flip_signature_s",
        "last byte of the signature (S) flipped",
        flip(&base, len - 1, 0x01),
        "Signature",
        "Signature",
    );

    // Padding: in the END chunk (not last) and in the final PAD chunk of the padded envelope.
    let pad_chunks = chunk_ranges(&pad_env);
    g.push(
        "flip_end_chunk_padding",
        "a bit flipped in the zero padding inside the END chunk (chunk 32, not the last chunk)",
        "toy",
        &["phone-a"],
        &["toy"],
        "phone-a",
        flip(&pad_env, pad_chunks[32].start + 900, 0x01),
        expect_err("Decrypt"),
        expect_err("Signature"),
    );
    g.push(
        "flip_pad_chunk",
        "a bit flipped in the final PAD chunk",
        "toy",
        &["phone-a"],
        &["toy"],
        "phone-a",
        flip(&pad_env, pad_chunks[33].start + 500, 0x01),
        expect_err("Signature"),
        expect_err("Signature"),
    );

    // Truncation. Fewer bytes than a header: Truncated. At least a final chunk's minimum (17
    // bytes) plus 64 after the header: the framer takes the last 64 bytes as the signature,
    // which does not verify.
    let t = &mut g;
    let cuts: &[(&str, usize, &str, &str)] = &[
        ("truncated_empty", 0, "zero bytes", "Truncated"),
        (
            "truncated_mid_fixed_header",
            60,
            "inside the fixed header",
            "Truncated",
        ),
        (
            "truncated_after_fixed_header",
            FIXED_HEADER_LEN,
            "after the fixed header, before the stanza",
            "Truncated",
        ),
        (
            "truncated_mid_stanza",
            FIXED_HEADER_LEN + 36,
            "inside the stanza",
            "Truncated",
        ),
        (
            "truncated_after_header",
            h,
            "right after the header: no chunk, no signature",
            "Truncated",
        ),
        (
            "truncated_1_byte_into_first_chunk",
            h + 1,
            "one byte into the first chunk",
            "Truncated",
        ),
        (
            "truncated_mid_first_chunk",
            h + 520,
            "in the middle of the first chunk",
            "Signature",
        ),
        (
            "truncated_after_first_chunk",
            chunks[0].end,
            "at the first chunk boundary",
            "Signature",
        ),
        (
            "truncated_mid_second_chunk",
            chunks[1].start + 520,
            "in the middle of the second chunk",
            "Signature",
        ),
        (
            "truncated_after_second_chunk",
            chunks[1].end,
            "at the second chunk boundary",
            "Signature",
        ),
        (
            "truncated_mid_last_chunk",
            chunks[2].start + 264,
            "in the middle of the last chunk",
            "Signature",
        ),
        (
            "truncated_after_last_chunk",
            chunks[2].end,
            "after the last chunk: the signature is missing",
            "Signature",
        ),
        (
            "truncated_mid_signature",
            len - 32,
            "in the middle of the signature",
            "Signature",
        ),
        (
            "truncated_last_byte",
            len - 1,
            "the last byte removed",
            "Signature",
        ),
    ];
    for &(name, at, desc, err) in cuts {
        t.tampered(
            name,
            &format!("envelope cut {desc} ({at} of {len} bytes)"),
            base[..at].to_vec(),
            err,
            err,
        );
    }

    // Chunks reordered, dropped, duplicated; an extra byte.
    t.tampered(
        "chunks_swapped_first_two",
        "chunks 0 and 1 swapped",
        rearrange(&base, &[1, 0, 2]),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "chunks_swapped_last_two",
        "chunks 1 and 2 swapped (the final chunk moved forward)",
        rearrange(&base, &[0, 2, 1]),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "chunk_dropped_first",
        "chunk 0 removed",
        rearrange(&base, &[1, 2]),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "chunk_dropped_middle",
        "chunk 1 removed: the final chunk now sits at counter 1",
        rearrange(&base, &[0, 2]),
        "Signature",
        "Signature",
    );
    t.tampered(
        "chunk_dropped_last",
        "the final chunk removed: a non-final chunk now ends the stream",
        rearrange(&base, &[0, 1]),
        "Signature",
        "Signature",
    );
    t.tampered(
        "chunk_duplicated_first",
        "chunk 0 repeated",
        rearrange(&base, &[0, 0, 1, 2]),
        "Decrypt",
        "Signature",
    );
    t.tampered(
        "chunk_duplicated_last",
        "the final (528-byte) chunk repeated: the framer reads 1040 bytes of it as a non-final chunk 2, which fails to decrypt (opener), and leaves the server 80 bytes, too few for a final chunk and a signature",
        rearrange(&base, &[0, 1, 2, 2]),
        "Decrypt",
        "Truncated",
    );
    let mut extra = base.clone();
    extra.push(0);
    t.tampered(
        "extra_byte_appended",
        "one zero byte appended after the signature: the last 64 bytes read as the signature are no longer the signature",
        extra,
        "Signature",
        "Signature",
    );

    // Header limits and unknown values.
    t.tampered(
        "recipients_0",
        "recipient count set to 0",
        set(&base, OFF_COUNT, &[0, 0]),
        "NoRecipients",
        "NoRecipients",
    );
    t.tampered(
        "recipients_65",
        "recipient count set to 65 (the limit is 64)",
        set(&base, OFF_COUNT, &[0, 65]),
        "TooManyRecipients",
        "TooManyRecipients",
    );
    t.tampered(
        "chunk_size_log2_9",
        "chunk size exponent 9 (below the 10 minimum)",
        set(&base, OFF_CHUNK, &[9]),
        "ChunkSize",
        "ChunkSize",
    );
    t.tampered(
        "chunk_size_log2_21",
        "chunk size exponent 21 (above the 20 maximum)",
        set(&base, OFF_CHUNK, &[21]),
        "ChunkSize",
        "ChunkSize",
    );
    t.tampered(
        "version_2",
        "format version 2",
        set(&base, OFF_VERSION, &[2]),
        "UnsupportedVersion",
        "UnsupportedVersion",
    );
    t.tampered(
        "unknown_suite",
        "suite 0x0002",
        set(&base, OFF_SUITE, &[0, 2]),
        "UnsupportedSuite",
        "UnsupportedSuite",
    );
    t.tampered(
        "reserved_flags",
        "reserved flags 0x80",
        set(&base, OFF_FLAGS, &[0x80]),
        "ReservedFlags",
        "ReservedFlags",
    );
    // An order-8 point (RFC 7748 §6.1): X25519 with it gives an all-zero secret for any key.
    let low_order =
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap();
    t.tampered(
        "sender_low_order_x25519",
        "the sender identity's X25519 key replaced by a low-order point (order 8)",
        set(&base, OFF_SENDER_X25519, &low_order),
        "Key",
        "Key",
    );

    // Who may open what.
    let tr_content = content(200, 60);
    let tr = seal_with(31, "toy", &["phone-a"], &small_chunks(), &tr_content);
    g.push(
        "untrusted_sender",
        "a valid envelope from a toy the opener does not trust (it trusts only another toy); the server view verifies",
        "toy",
        &["phone-a"],
        &["other-toy"],
        "phone-a",
        tr.clone(),
        expect_err("UntrustedSender"),
        verify_ok(),
    );
    g.push(
        "not_a_recipient",
        "a valid envelope opened by a device that is not among its recipients",
        "toy",
        &["phone-a"],
        &["toy"],
        "stranger",
        tr,
        expect_err("NotARecipient"),
        verify_ok(),
    );

    // Insider forgery: phone-a, a legitimate recipient, unwraps the file key, derives the
    // payload key and re-encrypts different content under the unchanged header.
    let orig = content(1500, 70);
    let victim_env = seal_with(32, "toy", &["phone-a", "phone-b"], &small_chunks(), &orig);
    let insider = identity("phone-a");
    let key = insider_payload_key(&victim_env, &insider);
    let hl = header_len(&victim_env);
    let header = &victim_env[..hl];
    // The spec-level re-encryption reproduces the real envelope, so the insider really holds
    // everything but the toy's signing key.
    assert_eq!(
        encrypt_payload(&key, SMALL_CHUNK_LOG2, &[0, 0], &orig),
        victim_env[hl..victim_env.len() - SIG_LEN]
    );
    let forged_content: Vec<u8> = b"FORGED synthetic message "
        .iter()
        .copied()
        .cycle()
        .take(orig.len())
        .collect();
    let mut forged = header.to_vec();
    forged.extend_from_slice(&encrypt_payload(
        &key,
        SMALL_CHUNK_LOG2,
        &[0, 0],
        &forged_content,
    ));
    // Signed by the toy, the forgery would open: only the signature stands in the way.
    {
        let mut with_toy_sig = forged.clone();
        with_toy_sig.extend_from_slice(identity("toy").sign(&signed_message(&forged)).as_bytes());
        let (out, _) = open(
            &identity("phone-b"),
            &[public("toy")],
            &with_toy_sig,
            OpenOptions::default(),
        )
        .unwrap();
        assert_eq!(out, forged_content);
    }
    let mut old_sig = forged.clone();
    old_sig.extend_from_slice(&victim_env[victim_env.len() - SIG_LEN..]);
    let mut own_sig = forged.clone();
    own_sig.extend_from_slice(insider.sign(&signed_message(&forged)).as_bytes());
    for (name, desc, env) in [
        (
            "insider_forgery_old_signature",
            "phone-a (a recipient) re-encrypts new content under the same header with the payload key it can derive, keeping the toy's original signature; phone-b must refuse it",
            old_sig,
        ),
        (
            "insider_forgery_own_signature",
            "phone-a (a recipient) re-encrypts new content under the same header and signs it with its own key; the header still names the toy, so phone-b must refuse it",
            own_sig,
        ),
    ] {
        g.vectors.push(Vector {
            name: name.into(),
            description: desc.into(),
            sender: "toy",
            recipients: vec!["phone-a", "phone-b"],
            trusted: vec!["toy"],
            opener: "phone-b",
            others: Vec::new(),
            envelope: env,
            expected: expect_err("Signature"),
            verify: expect_err("Signature"),
        });
    }

    g.vectors
}

fn render(vectors: &[Vector]) -> String {
    let doc = FileJson {
        comment: "toyseal envelope v1 test vectors (docs/spec/envelope.md), checked in both directions by the generator. Every key in this file, public and secret, is a SYNTHETIC TEST KEY derived from a fixed seed: never use one for anything real. Hex is lower case. `expected` is what open() returns to `opener` when it trusts `trusted_senders`; `server_verify` is what verify(), which holds no keys, returns. Error names are the variants of toyseal_envelope::Error. Vectors whose name starts with flip_, truncated_, chunk_ or another tamper word are copies of ok_tamper_base (or of ok_padding_chunk) with the change their description states.",
        format: "toyseal envelope v1, suite 0x0001",
        generator: "crates/toyseal-envelope/tests/vectors.rs (TOYSEAL_REGENERATE_VECTORS=1 rewrites this file)",
        vectors: vectors.iter().map(Vector::to_json).collect(),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap();
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------------
// The checker: reads only the file.

struct Outcome {
    content: Vec<u8>,
    result: Result<toyseal_envelope::Opened, Error>,
}

fn open_streaming(
    me: &DeviceIdentity,
    trusted: &[PublicIdentity],
    env: &[u8],
    piece: usize,
) -> Outcome {
    let mut opener = Opener::new(me, trusted, OpenOptions::default());
    let mut content = Vec::new();
    for p in env.chunks(piece) {
        if let Err(e) = opener.push(p, &mut content) {
            return Outcome {
                content,
                result: Err(e),
            };
        }
    }
    let result = opener.finish();
    Outcome { content, result }
}

fn check_outcome(
    name: &str,
    how: &str,
    outcome: Outcome,
    expected: &Value,
    sender: &PublicIdentity,
) {
    match (expected["result"].as_str().unwrap(), outcome.result) {
        ("ok", Ok(opened)) => {
            let c = &outcome.content;
            assert_eq!(
                c.len() as u64,
                expected["content_len"].as_u64().unwrap(),
                "{name} ({how})"
            );
            assert_eq!(opened.content_len, c.len() as u64, "{name} ({how})");
            if let Some(h) = expected["content_hex"].as_str() {
                assert_eq!(hex::encode(c), h, "{name} ({how})");
            } else {
                let h = expected["content_sha256"].as_str().unwrap();
                assert_eq!(hex::encode(sha256(c)), h, "{name} ({how})");
            }
            assert_eq!(
                metadata_json(&opened.metadata),
                expected["metadata"],
                "{name} ({how})"
            );
            assert_eq!(
                json!(opened.family.map(|f| f.to_string())),
                expected["family"],
                "{name} ({how})"
            );
            assert_eq!(
                opened.roster_version,
                expected["roster_version"].as_u64().unwrap(),
                "{name} ({how})"
            );
            assert_eq!(&opened.sender, sender, "{name} ({how})");
        }
        ("error", Err(e)) => {
            assert_eq!(
                error_name(&e),
                expected["error"].as_str().unwrap(),
                "{name} ({how}): got {e:?}"
            );
        }
        (want, got) => panic!(
            "{name} ({how}): expected {want}, got {:?}",
            got.map(|_| "ok")
        ),
    }
}

fn check_vector(v: &Value) {
    let name = v["name"].as_str().unwrap();
    let ids: Vec<(String, DeviceIdentity)> = v["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let id =
                DeviceIdentity::from_secret_key_text(i["secret_key"].as_str().unwrap()).unwrap();
            assert_eq!(
                id.public().to_string(),
                i["public_key"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(id.role().as_str(), i["role"].as_str().unwrap(), "{name}");
            (i["name"].as_str().unwrap().to_string(), id)
        })
        .collect();
    let find = |n: &Value| -> &DeviceIdentity {
        let n = n.as_str().unwrap();
        &ids.iter().find(|(k, _)| k == n).unwrap().1
    };
    let trusted: Vec<PublicIdentity> = v["trusted_senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| find(n).public().clone())
        .collect();
    let me = find(&v["opener"]);
    let sender = find(&v["sender"]).public().clone();
    let env = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
    let expected = &v["expected"];

    let (content, result) = match open(me, &trusted, &env, OpenOptions::default()) {
        Ok((c, o)) => (c, Ok(o)),
        Err(e) => (Vec::new(), Err(e)),
    };
    check_outcome(name, "open", Outcome { content, result }, expected, &sender);
    for piece in [1, 97, 1040] {
        let outcome = open_streaming(me, &trusted, &env, piece);
        check_outcome(
            name,
            &format!("Opener, {piece}-byte pieces"),
            outcome,
            expected,
            &sender,
        );
    }

    let server = &v["server_verify"];
    match (
        server["result"].as_str().unwrap(),
        verify(&env, OpenOptions::default()),
    ) {
        ("ok", Ok(header)) => assert_eq!(header.sender(), &sender, "{name} (verify)"),
        ("error", Err(e)) => assert_eq!(
            error_name(&e),
            server["error"].as_str().unwrap(),
            "{name} (verify): got {e:?}"
        ),
        (want, got) => panic!(
            "{name} (verify): expected {want}, got {:?}",
            got.map(|_| "ok")
        ),
    }
}

#[test]
fn committed_vectors_are_reproduced_by_the_generator() {
    let rendered = render(&generate());
    if std::env::var_os("TOYSEAL_REGENERATE_VECTORS").is_some_and(|v| v == "1") {
        std::fs::write(VECTORS_PATH, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(VECTORS_PATH).unwrap();
    assert!(
        committed == rendered,
        "docs/spec/vectors/envelope.json differs from what the generator produces; if the format \
         change is deliberate, rerun with TOYSEAL_REGENERATE_VECTORS=1"
    );
}

#[test]
fn committed_vectors_open_as_stated() {
    let committed = std::fs::read_to_string(VECTORS_PATH).unwrap();
    let doc: Value = serde_json::from_str(&committed).unwrap();
    let mut names = BTreeSet::new();
    let mut ran = 0;
    let (mut ok, mut failing) = (0, 0);
    for v in doc["vectors"].as_array().unwrap() {
        assert!(
            names.insert(v["name"].as_str().unwrap().to_string()),
            "duplicate name"
        );
        check_vector(v);
        if v["expected"]["result"] == "ok" {
            ok += 1;
        } else {
            failing += 1;
        }
        ran += 1;
    }
    assert_eq!(ran, VECTOR_COUNT);
    assert_eq!((ok, failing), (16, VECTOR_COUNT - 16));
}
