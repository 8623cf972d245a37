//! A toy and a parent's phone over an in-memory BLE link: pair with the code printed on the
//! toy (both show the same short authentication string), reconnect with Noise KK, found the
//! family (roster v1, co-signed by the toy), then deliver a sealed voice note toy → phone and a
//! sealed message phone → toy, and open both.
//!
//! ```text
//! cargo run --example pair_and_deliver
//! ```

use std::sync::Arc;
use std::time::Duration;
use toyseal::ble::{
    DriverConfig, DriverEvent, MemoryLink, MemoryLinkConfig, PhoneDriver, Pumped, ToyDriver,
    run_until_idle,
};
use toyseal::core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal::envelope::{Metadata, OpenOptions, SealOptions};
use toyseal::pairing::{
    EnvelopeEvent, MemoryFailureStore, PairingCode, PairingExpectations, Phone, PhoneEvent, Toy,
    ToyEvent,
};
use toyseal::roster::RosterProposal;

const LATENCY: Duration = Duration::from_millis(30);

fn round_trips<P, T>(p: &Pumped<P, T>) -> f64 {
    p.elapsed.as_secs_f64() / (2.0 * LATENCY.as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = OsRng;

    // Factory: the toy's identity and the code printed on its tag.
    let toy_identity = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
    let code = PairingCode::generate(8, &mut rng);
    let toy = Toy::builder(
        toy_identity.clone(),
        code.clone(),
        MemoryFailureStore::default(),
    )
    .build()?;
    let mut toy = ToyDriver::new(toy, DriverConfig::default());
    let parent = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut phone = PhoneDriver::new(Phone::new(parent.clone()), DriverConfig::default());
    let config = MemoryLinkConfig::default()
        .with_att_mtu(247)
        .with_latency(LATENCY);
    println!(
        "toy {} / phone {} / {}-digit code on the tag / ATT MTU 247, {} ms one way",
        toy_identity.device_id(),
        parent.device_id(),
        code.digits().len(),
        LATENCY.as_millis()
    );

    // 1. Pairing: the parent holds the button; the phone types the code.
    let (central, peripheral) = MemoryLink::pair(config.clone());
    let link = central.medium();
    phone.connect(central);
    toy.connect(peripheral);
    toy.endpoint_mut().press_pair_button(link.now())?;
    phone
        .endpoint_mut()
        .pair(&code, PairingExpectations::default(), &mut rng)?;
    let p = run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    let phone_sas = p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::Sas(s)) => Some(*s),
        _ => None,
    });
    let toy_sas = p.toy.iter().find_map(|e| match e {
        DriverEvent::Endpoint(ToyEvent::Sas(s)) => Some(*s),
        _ => None,
    });
    let paired = p
        .phone
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Paired(t)) => Some(t.clone()),
            _ => None,
        })
        .ok_or("pairing failed")?;
    if phone_sas.is_none() || phone_sas != toy_sas {
        return Err("the short authentication strings differ".into());
    }
    println!(
        "paired in {:.0} round trips, {} bytes on the link; the toy says {}, the phone shows {}",
        round_trips(&p),
        link.stats().att_bytes(),
        toy_sas.map(|s| s.to_string()).unwrap_or_default(),
        phone_sas.map(|s| s.to_string()).unwrap_or_default(),
    );
    // The toy records its founder only when the parent confirms at the toy (a long hold of two
    // buttons, a gesture a child does not make in play): the toy's application calls
    // `confirm` on it.
    toy.endpoint_mut().confirm(link.now())?;
    run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    phone.disconnect();
    toy.disconnect();

    // 2. Reconnect: Noise KK with the pinned keys.
    let (central, peripheral) = MemoryLink::pair(config);
    let link = central.medium();
    phone.connect(central);
    toy.connect(peripheral);
    phone
        .endpoint_mut()
        .open_session(&paired.identity, &mut rng)?;
    let p = run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    println!(
        "session open in {:.0} round trip, {} bytes",
        round_trips(&p),
        link.stats().att_bytes()
    );

    // 3. The family: roster v1 {parent, toy}, signed by the parent, co-signed by the toy over
    //    the session after a confirmation at the toy. From now on the toy admits only the roster's guardians.
    let family = FamilyId::generate(&mut rng);
    // Every family keeps a printed recovery key (roster.md §1.2): the parent's phone generates
    // it, it signs version 1, and the family prints it.
    let recovery = toyseal_roster::RecoveryKey::generate(&mut rng)?;
    let mut v1 = RosterProposal::founding(
        family,
        vec![parent.public().clone(), toy_identity.public().clone()],
        *recovery.public(),
    )?
    .sign(&parent);
    v1.cosign_recovery(&recovery);
    phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v1), link.now())?;
    run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    // Again only on the parent's confirmation at the toy.
    toy.endpoint_mut().confirm(link.now())?;
    run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    let roster = toy
        .endpoint()
        .roster()
        .cloned()
        .ok_or("the toy did not co-sign roster v1")?;
    println!(
        "roster v{} of family {family}: {} members, co-signed by the toy",
        roster.version(),
        roster.members().len()
    );

    // 4. Toy → phone: a synthetic 3-second recording, sealed to the family, signed by the toy.
    let recording: Vec<u8> = (0..48_000u32)
        .map(|i| ((i as f64 * 0.05).sin() * 100.0) as i8 as u8)
        .collect();
    let voice_note = roster.seal(
        &toy_identity,
        SealOptions::default().with_metadata(
            Metadata::default()
                .with_content_type("audio/L8")
                .with_duration_ms(3000),
        ),
        &recording,
        &mut rng,
    )?;
    // 5. Phone → toy: a parent's message, sealed to the family.
    let goodnight = roster.seal(
        &parent,
        SealOptions::default(),
        b"Goodnight, sleep tight!",
        &mut rng,
    )?;
    let before = link.stats();
    toy.endpoint_mut()
        .send_envelope(voice_note.clone(), link.now())?;
    phone
        .endpoint_mut()
        .send_envelope(goodnight.clone(), link.now())?;
    let p = run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    let link_bytes = link.stats().att_bytes() - before.att_bytes();
    let moved = voice_note.len() + goodnight.len();

    let mut opened = 0;
    for e in &p.phone {
        if let DriverEvent::Endpoint(PhoneEvent::Envelope(EnvelopeEvent::Received {
            envelope,
            ..
        })) = e
        {
            let (content, info) = roster.open(&parent, envelope, OpenOptions::default())?;
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
        if let DriverEvent::Endpoint(ToyEvent::Envelope(EnvelopeEvent::Received {
            envelope, ..
        })) = e
        {
            let (content, _) = roster.open(&toy_identity, envelope, OpenOptions::default())?;
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
    phone.endpoint_mut().close_session(link.now())?;
    run_until_idle(&mut phone, &mut toy, &link, &mut rng)?;
    Ok(())
}
