//! The main story so far, end to end on one machine: a toy and two parents' phones are
//! provisioned; the toy records a synthetic voice note and seals it to both phones while it
//! records; a keyless "server" checks who sealed it; each phone opens it; and the attacks that
//! matter are tried and fail. Run: `cargo run --example family_demo`.

use std::io::{Read, Write};
use toyseal::core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal::envelope::{
    Metadata, OpenOptions, OpenReader, SealOptions, SealWriter, inspect, open, verify,
};

/// A synthetic "voice": a 16 kHz mono PCM WAV of gliding tones with syllable-like bursts.
/// No real person's voice is used anywhere in toyseal.
fn synthetic_voice_wav(seconds: u32) -> Vec<u8> {
    let rate = 16_000u32;
    let samples = rate * seconds;
    let mut wav = Vec::with_capacity(44 + samples as usize * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples * 2).to_le_bytes());
    for n in 0..samples {
        let t = f64::from(n) / f64::from(rate);
        let pitch = 180.0 + 60.0 * (t * 1.3).sin();
        let envelope = (t * 4.0 * std::f64::consts::PI).sin().abs();
        let v = (t * pitch * 2.0 * std::f64::consts::PI).sin() * envelope * 12_000.0;
        wav.extend_from_slice(&(v as i16).to_le_bytes());
    }
    wav
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Provisioning: identities are generated on each device; only public keys travel.
    let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let mum = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let dad = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    println!("toy   {}  id {}", short(toy.public()), toy.device_id());
    println!("mum   {}  id {}", short(mum.public()), mum.device_id());
    println!("dad   {}  id {}", short(dad.public()), dad.device_id());

    // 2. Recording: the toy seals while it records, 20 ms of audio at a time.
    let mut recording = synthetic_voice_wav(3);
    let marker = b"MARKER: goodnight from the synthetic bear";
    recording.extend_from_slice(marker);
    let family = [mum.public().clone(), dad.public().clone()];
    let options = SealOptions::default().with_metadata(
        Metadata::default()
            .with_content_type("audio/wav")
            .with_codec("pcm_s16le")
            .with_duration_ms(3000),
    );
    let mut writer = SealWriter::new(Vec::new(), &toy, &family, &options, &mut OsRng)?;
    for frame in recording.chunks(640) {
        writer.write_all(frame)?;
    }
    let envelope = writer.finish()?;
    let header = inspect(&envelope)?;
    println!(
        "\nsealed {} bytes of audio into a {}-byte envelope for {} recipients ({:.1} % overhead)",
        recording.len(),
        envelope.len(),
        header.stanzas().len(),
        100.0 * (envelope.len() as f64 / recording.len() as f64 - 1.0)
    );

    // 3. The server's view: no keys, yet it can prove who sealed it.
    let checked = verify(&envelope, OpenOptions::default())?;
    println!(
        "server (no keys) verified the sender: {} (role {})",
        checked.sender().device_id(),
        checked.sender().role()
    );
    let leaks = contains(&envelope, marker) || contains(&envelope, &recording[44..4096]);
    println!("ciphertext contains the marker phrase or raw audio: {leaks}");

    // 4. Playback: each phone opens it, trusting only the toy as sender.
    let trusted = [toy.public().clone()];
    for (name, phone) in [("mum", &mum), ("dad", &dad)] {
        let mut reader = OpenReader::new(&envelope[..], phone, &trusted, OpenOptions::default());
        let mut played = Vec::new();
        reader.read_to_end(&mut played)?;
        let opened = reader.opened().ok_or("no result after end of stream")?;
        println!(
            "{name}'s phone opened it: {} bytes, identical: {}, type {:?}, {} ms, from the toy: {}",
            played.len(),
            played == recording,
            opened.metadata.content_type.as_deref().unwrap_or("?"),
            opened.metadata.duration_ms.unwrap_or(0),
            opened.sender == *toy.public()
        );
    }

    // 5. The attacks.
    let stranger_try = open(&stranger, &trusted, &envelope, OpenOptions::default());
    println!("\nstranger's phone tries to open it: {}", outcome(&stranger_try));
    let mut flipped = envelope.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    println!("one flipped bit: {}", outcome(&open(&mum, &trusted, &flipped, OpenOptions::default())));
    let cut = &envelope[..envelope.len() - 100];
    println!("truncated copy: {}", outcome(&open(&mum, &trusted, cut, OpenOptions::default())));
    let imposter = [stranger.public().clone()];
    println!(
        "accepting only a different sender: {}",
        outcome(&open(&mum, &imposter, &envelope, OpenOptions::default()))
    );
    if leaks || stranger_try.is_ok() {
        return Err("a property failed".into());
    }
    println!("\nproved: only mum and dad can read it, the toy sealed it, nothing was changed or cut.");
    Ok(())
}

fn short(p: &PublicIdentity) -> String {
    let s = p.to_string();
    format!("{}…{}", &s[..16], &s[s.len() - 6..])
}

fn outcome<T>(r: &Result<T, toyseal::envelope::Error>) -> String {
    match r {
        Ok(_) => "ACCEPTED (this is a bug)".into(),
        Err(e) => format!("refused ({e})"),
    }
}
