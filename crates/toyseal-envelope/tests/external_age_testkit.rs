//! The C2SP age testkit (`docs/spec/vectors/external/age-testkit/`, from the npm package
//! `cctv-age`) run against toyseal's STREAM layer, which keeps age's payload layout.
//!
//! For every testkit file whose expectation concerns the payload (`success` or
//! `payload failure`), the harness takes the `file key` the file states, skips the age header
//! (it ends with the `--- ` MAC line), reads the 16-byte nonce, derives the payload key with
//! [`StreamKey::derive`] (HKDF-SHA256, salt = nonce, ikm = file key, info = `payload`) and
//! decrypts age's payload with [`StreamKey::open_chunk`] the way age's reference reader does:
//! chunks of 64 KiB + 16-byte tag, the final-chunk flag on the last, a full final chunk
//! allowed (a full chunk is tried as non-final, then as final), an empty final chunk allowed
//! only as the only chunk, nothing after the final chunk. The SHA-256 of all plaintext released before the end (or the failure)
//! must equal the file's `payload` hash, and the file must fail exactly when it says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use ring::digest::{SHA256, digest};
use std::path::PathBuf;
use toyseal_envelope::stream::StreamKey;

/// age's STREAM chunk: 64 KiB of plaintext and a 16-byte Poly1305 tag.
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

struct TestFile {
    name: String,
    expect: String,
    payload_sha256: Option<String>,
    file_key: Option<[u8; 16]>,
    compressed: bool,
    armored: bool,
    body: Vec<u8>,
}

fn parse(name: String, raw: &[u8]) -> TestFile {
    let split = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or_else(|| panic!("{name}: no blank line after the testkit header"));
    let header = std::str::from_utf8(&raw[..split]).unwrap();
    let mut f = TestFile {
        name,
        expect: String::new(),
        payload_sha256: None,
        file_key: None,
        compressed: false,
        armored: false,
        body: raw[split + 2..].to_vec(),
    };
    for line in header.lines() {
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{}: bad header line {line:?}", f.name));
        match key {
            "expect" => f.expect = value.to_string(),
            "payload" => f.payload_sha256 = Some(value.to_string()),
            "file key" => f.file_key = Some(hex::decode(value).unwrap().try_into().unwrap()),
            "compressed" => {
                assert_eq!(value, "zlib", "{}", f.name);
                f.compressed = true;
            }
            "armored" => f.armored = value == "yes",
            "identity" | "passphrase" | "comment" => {}
            other => panic!("{}: unknown testkit header key {other:?}", f.name),
        }
    }
    f
}

/// The binary age file: decompressed, then de-armored (armor is lenient here; armor parsing
/// is not what this harness tests, and no armor-failure file is included).
fn age_bytes(f: &TestFile) -> Vec<u8> {
    let mut bytes = if f.compressed {
        miniz_oxide::inflate::decompress_to_vec_zlib(&f.body).unwrap()
    } else {
        f.body.clone()
    };
    if f.armored {
        let text = String::from_utf8(bytes).unwrap();
        let b64: String = text
            .trim()
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_else(|e| panic!("{}: armor: {e}", f.name));
    }
    bytes
}

/// Splits an age file into (nonce, payload) after the header's `--- ` MAC line.
fn nonce_and_payload<'a>(name: &str, age: &'a [u8]) -> Option<(&'a [u8; 16], &'a [u8])> {
    assert!(age.starts_with(b"age-encryption.org/v1\n"), "{name}");
    let mac_line = age.windows(5).position(|w| w == b"\n--- ")? + 1;
    let end = mac_line + age[mac_line..].iter().position(|&b| b == b'\n')? + 1;
    let nonce = age.get(end..end + 16)?.try_into().ok()?;
    Some((nonce, &age[end + 16..]))
}

/// Decrypts age's STREAM payload as age's reference reader does; returns the plaintext
/// released and whether the payload completed.
///
/// A short chunk is final. A full chunk is tried as non-final first and, if that fails, as
/// final (a full final chunk is legal); once a final chunk has opened, any further byte is an
/// error. An empty final chunk is allowed only as the only chunk, and the payload must end
/// with a final chunk.
fn decrypt_payload(key: &StreamKey, payload: &[u8]) -> (Vec<u8>, bool) {
    let mut released = Vec::new();
    let chunks: Vec<&[u8]> = payload.chunks(CHUNK + TAG).collect();
    if chunks.is_empty() {
        // Not even an empty final chunk.
        return (released, false);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let counter = i as u64;
        let more = i + 1 < chunks.len();
        let opened = if chunk.len() < CHUNK + TAG {
            if chunk.len() < TAG || (chunk.len() == TAG && i > 0) {
                return (released, false);
            }
            key.open_chunk(counter, true, &mut chunk.to_vec())
                .map(|pt| (pt.to_vec(), true))
        } else {
            key.open_chunk(counter, false, &mut chunk.to_vec())
                .map(|pt| (pt.to_vec(), false))
                .or_else(|_| {
                    key.open_chunk(counter, true, &mut chunk.to_vec())
                        .map(|pt| (pt.to_vec(), true))
                })
        };
        let Ok((pt, last)) = opened else {
            return (released, false);
        };
        released.extend_from_slice(&pt);
        if last {
            // Trailing data after the final chunk fails the payload, after release.
            return (released, !more);
        }
    }
    // Every chunk was non-final: the stream was truncated.
    (released, false)
}

#[test]
fn age_testkit_stream_payloads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/spec/vectors/external/age-testkit");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "LICENSE")
        .collect();
    entries.sort();
    let (mut ran, mut succeeded, mut failed_as_expected, mut skipped_header) = (0, 0, 0, 0);
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let f = parse(name.clone(), &std::fs::read(&path).unwrap());
        let should_succeed = match f.expect.as_str() {
            "success" => true,
            "payload failure" => false,
            // Header, HMAC, recipient and armor failures say nothing about STREAM.
            _ => {
                skipped_header += 1;
                continue;
            }
        };
        let file_key = f.file_key.unwrap_or_else(|| panic!("{name}: no file key"));
        let age = age_bytes(&f);
        let (nonce, payload) = nonce_and_payload(&name, &age)
            .unwrap_or_else(|| panic!("{name}: no header end and nonce"));
        let key = StreamKey::derive(&file_key, nonce, &[b"payload"]);
        let (released, complete) = decrypt_payload(&key, payload);
        assert_eq!(complete, should_succeed, "{name}: expected {}", f.expect);
        let want = f
            .payload_sha256
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: no payload hash"));
        assert_eq!(
            hex::encode(digest(&SHA256, &released)),
            want,
            "{name}: hash of the released plaintext"
        );
        if should_succeed {
            succeeded += 1;
        } else {
            failed_as_expected += 1;
        }
        ran += 1;
    }
    assert_eq!(skipped_header, 0, "only payload files are copied");
    assert_eq!((succeeded, failed_as_expected), (26, 19));
    assert_eq!(ran, 45);
}
