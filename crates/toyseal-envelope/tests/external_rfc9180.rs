//! RFC 9180 (HPKE) test vectors for the one suite the envelope wraps file keys with: base mode,
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (0x0020 / 0x0001 / 0x0003),
//! run through the `hpke` crate exactly as `wrap.rs` instantiates it.
//!
//! The vectors are the RFC's official `test-vectors.json`, filtered to that suite (source and
//! licence: `docs/spec/vectors/external/README.md`). For each case the harness derives both key
//! pairs from `ikmE` / `ikmR`, reproduces `enc` and every ciphertext by feeding `ikmE` to the
//! sender as its randomness, decrypts every ciphertext with `setup_receiver`, and checks every
//! exported secret on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::X25519HkdfSha256,
};
use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

// The same instantiation as crates/toyseal-envelope/src/wrap.rs.
type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;

const VECTORS: &str = include_str!(
    "../../../docs/spec/vectors/external/rfc9180-base-x25519-sha256-chacha20poly1305.json"
);

/// Randomness that replays fixed bytes: the sender's ephemeral key is then
/// `DeriveKeyPair(ikmE)`, as in the RFC's vectors (hpke's `gen_keypair_with_rng` draws exactly
/// `Nsk` = 32 bytes and derives from them).
struct Replay {
    bytes: Vec<u8>,
}

impl TryRng for Replay {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert!(
            dst.len() <= self.bytes.len(),
            "asked for more randomness than ikmE"
        );
        let rest = self.bytes.split_off(dst.len());
        dst.copy_from_slice(&self.bytes);
        self.bytes = rest;
        Ok(())
    }
}

impl TryCryptoRng for Replay {}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn clamp(mut k: Vec<u8>) -> Vec<u8> {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

#[test]
fn rfc9180_base_x25519_sha256_chacha20poly1305() {
    assert_eq!(<Kem as hpke::Kem>::KEM_ID, 0x0020);
    assert_eq!(<Kdf as hpke::kdf::Kdf>::KDF_ID, 0x0001);
    assert_eq!(<Aead as hpke::aead::Aead>::AEAD_ID, 0x0003);

    let cases: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    let (mut ran_cases, mut ran_encryptions, mut ran_exports) = (0, 0, 0);
    for case in &cases {
        assert_eq!(
            (
                &case["mode"],
                &case["kem_id"],
                &case["kdf_id"],
                &case["aead_id"]
            ),
            (&0.into(), &0x20.into(), &1.into(), &3.into())
        );
        let info = h(&case["info"]);

        // Key pairs from their input keying material (RFC 9180 §7.1.3).
        let (sk_e, pk_e) = Kem::derive_keypair(&h(&case["ikmE"]));
        let (sk_r, pk_r) = Kem::derive_keypair(&h(&case["ikmR"]));
        // hpke stores X25519 scalars clamped (RFC 7748 §5); the RFC lists them unclamped.
        assert_eq!(sk_e.to_bytes().to_vec(), clamp(h(&case["skEm"])));
        assert_eq!(pk_e.to_bytes().to_vec(), h(&case["pkEm"]));
        assert_eq!(sk_r.to_bytes().to_vec(), clamp(h(&case["skRm"])));
        assert_eq!(pk_r.to_bytes().to_vec(), h(&case["pkRm"]));
        // The receiver's key as toyseal would parse it from the wire.
        let pk_r = <Kem as hpke::Kem>::PublicKey::from_bytes(&h(&case["pkRm"])).unwrap();
        let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&h(&case["skRm"])).unwrap();

        // Sender: the ephemeral comes from ikmE through the RNG, as in `wrap.rs`.
        let mut rng = Replay {
            bytes: h(&case["ikmE"]),
        };
        let (enc, mut sender) =
            hpke::setup_sender_with_rng::<Aead, Kdf, Kem>(&OpModeS::Base, &pk_r, &info, &mut rng)
                .unwrap();
        assert!(rng.bytes.is_empty(), "the sender drew exactly ikmE");
        assert_eq!(enc.to_bytes().to_vec(), h(&case["enc"]));

        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&h(&case["enc"])).unwrap();
        let mut receiver =
            hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk_r, &enc, &info).unwrap();

        // Every encryption, in sequence order (the context's counter advances by one each).
        for e in case["encryptions"].as_array().unwrap() {
            let (pt, aad, ct) = (h(&e["pt"]), h(&e["aad"]), h(&e["ct"]));
            assert_eq!(sender.seal(&pt, &aad).unwrap(), ct);
            assert_eq!(receiver.open(&ct, &aad).unwrap(), pt);
            ran_encryptions += 1;
        }

        // The single-shot API `wrap.rs` calls is the first encryption of a fresh context.
        let first = &case["encryptions"][0];
        let mut rng = Replay {
            bytes: h(&case["ikmE"]),
        };
        let (enc1, ct1) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &pk_r,
            &info,
            &h(&first["pt"]),
            &h(&first["aad"]),
            &mut rng,
        )
        .unwrap();
        assert_eq!(enc1.to_bytes().to_vec(), h(&case["enc"]));
        assert_eq!(ct1, h(&first["ct"]));
        let pt1 = hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &sk_r,
            &enc,
            &info,
            &h(&first["ct"]),
            &h(&first["aad"]),
        )
        .unwrap();
        assert_eq!(pt1, h(&first["pt"]));

        // Exported secrets (RFC 9180 §5.3), from both sides.
        for x in case["exports"].as_array().unwrap() {
            let len = usize::try_from(x["L"].as_u64().unwrap()).unwrap();
            let ctx = h(&x["exporter_context"]);
            let mut out_s = vec![0u8; len];
            let mut out_r = vec![0u8; len];
            sender.export(&ctx, &mut out_s).unwrap();
            receiver.export(&ctx, &mut out_r).unwrap();
            assert_eq!(out_s, h(&x["exported_value"]));
            assert_eq!(out_r, h(&x["exported_value"]));
            ran_exports += 1;
        }
        ran_cases += 1;
    }
    assert_eq!(ran_cases, 1);
    assert_eq!(ran_encryptions, 257);
    assert_eq!(ran_exports, 3);
}
