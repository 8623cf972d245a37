//! A toy and a parent's phone over an in-memory BLE link: pair with the code printed on the
//! toy, reconnect with Noise KK, then deliver a sealed voice note toy → phone and a sealed
//! message phone → toy, and open both.
//!
//! ```text
//! cargo run --example pair_and_deliver
//! ```

use std::time::Duration;
use toyseal::ble::{
    DriverConfig, MemoryLink, MemoryLinkConfig, PhoneDriver, PhoneDriverEvent, Pumped, ToyDriver,
    ToyDriverEvent, run_until_idle,
};
use toyseal::core::{DeviceIdentity, OsRng, Role};
use toyseal::envelope::{Metadata, OpenOptions, SealOptions, open, seal};
use toyseal::pairing::{
    MemoryFailureStore, PairingCode, PairingExpectations, PairingWindow, SessionConfig, Toy,
    WindowPolicy,
};

const LATENCY: Duration = Duration::from_millis(30);

fn round_trips(p: &Pumped) -> f64 {
    p.elapsed.as_secs_f64() / (2.0 * LATENCY.as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = OsRng;

    // Factory: the toy's identity and the code printed on its tag.
    let toy_identity = DeviceIdentity::generate(Role::Toy, &mut rng);
    let code = PairingCode::generate(8, &mut rng);
    let toy = Toy::new(
        toy_identity,
        code.clone(),
        None,
        vec![],
        PairingWindow::new(WindowPolicy::default(), MemoryFailureStore::default()),
        SessionConfig::default(),
    );
    let mut toy = ToyDriver::new(toy, DriverConfig::default());
    let mut phone = PhoneDriver::new(
        DeviceIdentity::generate(Role::Guardian, &mut rng),
        SessionConfig::default(),
        DriverConfig::default(),
    );
    let config = MemoryLinkConfig::default()
        .with_att_mtu(247)
        .with_latency(LATENCY);
    println!(
        "toy {} / phone {} / {}-digit code on the tag / ATT MTU 247, {} ms one way",
        toy.toy().identity().device_id(),
        phone.identity().device_id(),
        code.digits().len(),
        LATENCY.as_millis()
    );

    // 1. Pairing: the parent holds the button; the phone types the code.
    let (central, peripheral) = MemoryLink::pair(config.clone());
    let link = central.medium();
    phone.connect(central);
    toy.connect(peripheral);
    toy.toy_mut().press_pair_button(link.now())?;
    phone.pair(&code, PairingExpectations::default(), &mut rng)?;
    let p = run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    let paired = p
        .phone
        .iter()
        .find_map(|e| match e {
            PhoneDriverEvent::Paired(t) => Some(t.clone()),
            _ => None,
        })
        .ok_or("pairing failed")?;
    println!(
        "paired in {:.0} round trips, {} bytes on the link; both sides pinned each other",
        round_trips(&p),
        link.stats().att_bytes()
    );
    phone.disconnect();
    toy.disconnect();

    // 2. Reconnect: Noise KK with the pinned keys.
    let (central, peripheral) = MemoryLink::pair(config);
    let link = central.medium();
    phone.connect(central);
    toy.connect(peripheral);
    phone.open_session(&paired.identity, &mut rng)?;
    let p = run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    println!(
        "session open in {:.0} round trip, {} bytes",
        round_trips(&p),
        link.stats().att_bytes()
    );

    // 3. Toy → phone: a synthetic 3-second recording, sealed to the phone, signed by the toy.
    let recording: Vec<u8> = (0..48_000u32)
        .map(|i| ((i as f64 * 0.05).sin() * 100.0) as i8 as u8)
        .collect();
    let voice_note = seal(
        toy.toy().identity(),
        &[phone.identity().public().clone()],
        &SealOptions::default().with_metadata(
            Metadata::default()
                .with_content_type("audio/L8")
                .with_duration_ms(3000),
        ),
        &recording,
        &mut rng,
    )?;
    // 4. Phone → toy: a parent's message, sealed to the toy.
    let goodnight = seal(
        phone.identity(),
        &[toy.toy().identity().public().clone()],
        &SealOptions::default(),
        b"Goodnight, sleep tight!",
        &mut rng,
    )?;
    let before = link.stats();
    toy.send_envelope(voice_note.clone(), link.now())?;
    phone.send_envelope(goodnight.clone(), link.now())?;
    let p = run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    let link_bytes = link.stats().att_bytes() - before.att_bytes();
    let moved = voice_note.len() + goodnight.len();

    let mut opened = 0;
    for e in &p.phone {
        if let PhoneDriverEvent::EnvelopeReceived { envelope, .. } = e {
            let (content, info) = open(
                phone.identity(),
                std::slice::from_ref(&paired.identity),
                envelope,
                OpenOptions::default(),
            )?;
            assert_eq!(content, recording);
            println!(
                "phone opened the toy's voice note: {} bytes of {}, signed by the toy",
                content.len(),
                info.metadata.content_type.as_deref().unwrap_or("?")
            );
            opened += 1;
        }
    }
    for e in &p.toy {
        if let ToyDriverEvent::EnvelopeReceived { envelope, .. } = e {
            let parent = phone.identity().public().clone();
            let (content, _) = open(
                toy.toy().identity(),
                &[parent],
                envelope,
                OpenOptions::default(),
            )?;
            println!(
                "toy opened the parent's message: {:?}",
                String::from_utf8_lossy(&content)
            );
            opened += 1;
        }
    }
    if opened != 2 {
        return Err("an envelope did not arrive".into());
    }
    println!(
        "delivered {moved} envelope bytes in {:.1} round trips over {link_bytes} ATT bytes: goodput {:.1} %",
        round_trips(&p),
        100.0 * moved as f64 / link_bytes as f64
    );
    phone.close_session(link.now())?;
    run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    Ok(())
}
