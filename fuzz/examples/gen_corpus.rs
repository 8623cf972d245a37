//! Writes the seed corpora under `fuzz/corpus/<target>/` from the fixed synthetic family.
//! Deterministic: re-running it rewrites identical files.
//!
//! ```text
//! cd fuzz && cargo run --example gen_corpus
//! ```

use std::{fs, path::Path};

use rand_core::Rng;
use toyseal_core::{DeviceIdentity, FamilyId, Role};
use toyseal_envelope::{Metadata, SealOptions, seal};
use toyseal_fuzz::{FAMILY, join_control, rng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let fam = &*FAMILY;
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)
    };
    let content = |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 31 % 251) as u8).collect() };
    let small = SealOptions::default().with_chunk_size_log2(10)?;
    let meta = Metadata::default()
        .with_content_type("audio/wav")
        .with_codec("pcm_s16le")
        .with_duration_ms(4200);

    // envelope_open: control prefix (piece sizes) + envelope.
    let to_me = seal(
        &fam.toy,
        &fam.recipients(2),
        &small,
        &content(2500),
        &mut rng(1),
    )?;
    write(
        "envelope_open",
        "two-recipients-whole",
        &join_control(&[], &to_me),
    )?;
    write(
        "envelope_open",
        "two-recipients-pieces",
        &join_control(&[0, 1, 7, 0x80, 0x8f, 0], &to_me),
    )?;
    let empty = seal(&fam.toy, &fam.recipients(1), &small, &[], &mut rng(2))?;
    write(
        "envelope_open",
        "empty-content",
        &join_control(&[3], &empty),
    )?;
    let with_meta = seal(
        &fam.toy,
        &fam.recipients(4),
        &small
            .clone()
            .with_metadata(meta.clone())
            .with_family(FamilyId::from_bytes([7; 16]), 3),
        &content(1023),
        &mut rng(3),
    )?;
    write(
        "envelope_open",
        "four-recipients-metadata",
        &join_control(&[0x81], &with_meta),
    )?;
    let not_to_me = seal(
        &fam.toy,
        &[fam.stranger.public().clone()],
        &small,
        b"hi",
        &mut rng(4),
    )?;
    write(
        "envelope_open",
        "not-a-recipient",
        &join_control(&[], &not_to_me),
    )?;
    let untrusted = seal(
        &fam.phones[1],
        &fam.recipients(1),
        &small,
        b"hi",
        &mut rng(5),
    )?;
    write(
        "envelope_open",
        "untrusted-sender",
        &join_control(&[], &untrusted),
    )?;

    // envelope_mutate / envelope_stream_pieces: `arbitrary` decodes any bytes; seeds of a few
    // sizes give the fuzzer structures with and without content, mutations and pieces.
    let mut r = rng(6);
    for (i, len) in [16usize, 64, 256, 1024, 3000].into_iter().enumerate() {
        let mut bytes = vec![0u8; len];
        r.fill_bytes(&mut bytes);
        write("envelope_mutate", &format!("random-{len}"), &bytes)?;
        r.fill_bytes(&mut bytes);
        write("envelope_stream_pieces", &format!("random-{len}"), &bytes)?;
        write(
            "envelope_stream_pieces",
            &format!("zeros-{i}"),
            &vec![0u8; len],
        )?;
    }

    // pubkey_text: every text form the parsers accept, and near misses.
    let guardian = DeviceIdentity::generate(Role::Guardian, &mut rng(7));
    let public = fam.toy.public().to_string();
    write("pubkey_text", "public-toy", public.as_bytes())?;
    write(
        "pubkey_text",
        "public-guardian-upper",
        guardian.public().to_string().to_uppercase().as_bytes(),
    )?;
    write(
        "pubkey_text",
        "public-padded",
        format!("  {public}\n").as_bytes(),
    )?;
    write(
        "pubkey_text",
        "secret",
        guardian.export_secret_key_text()?.as_bytes(),
    )?;
    write(
        "pubkey_text",
        "key-file",
        guardian.to_key_file()?.as_bytes(),
    )?;
    write(
        "pubkey_text",
        "device-id",
        fam.toy.device_id().to_string().as_bytes(),
    )?;
    write(
        "pubkey_text",
        "family-id",
        b"0123456789ABCDEFabcdef0123456789",
    )?;
    write(
        "pubkey_text",
        "wrong-prefix",
        public.replacen("toyseal", "age", 1).as_bytes(),
    )?;
    Ok(())
}
