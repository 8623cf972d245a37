//! Secure-channel goodput (DESIGN.md target: ≥ 90 % of link bytes at ATT MTU 247): a 60 KB
//! sealed envelope delivered over an open session on the in-memory link, counted in ATT bytes
//! both ways (packets + 3-byte ATT headers, acknowledgements included). Not timed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use toyseal_ble::{DriverEvent, MemoryLinkConfig};
use toyseal_pairing::{EnvelopeEvent, PhoneEvent};

#[test]
fn goodput_60kb_envelope_at_mtu_23_185_247() {
    let mut results = Vec::new();
    for mtu in [23, 185, 247] {
        let mut w = world(47, MemoryLinkConfig::default().with_att_mtu(mtu));
        w.in_session();
        let phone = w.phone.endpoint().identity().public().clone();
        let recording: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let envelope = toyseal_envelope::seal(
            w.toy.endpoint().identity(),
            &[phone],
            &toyseal_envelope::SealOptions::default(),
            &recording,
            &mut rng(48),
        )
        .unwrap();
        let before = w.medium.stats();
        let now = w.now();
        w.toy.send_envelope(envelope.clone(), now).unwrap();
        let p = w.pump();
        let after = w.medium.stats();
        assert!(p.phone.iter().any(|e| matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::Envelope(EnvelopeEvent::Received { envelope: got, .. })) if *got == envelope
        )));
        let att = after.att_bytes() - before.att_bytes();
        let packets = after.total_packets() - before.total_packets();
        let goodput = envelope.len() as f64 / att as f64;
        println!(
            "MTU {mtu:>3}: envelope {} B, link {att} ATT bytes in {packets} packets (both ways), goodput {:.1} %",
            envelope.len(),
            100.0 * goodput
        );
        results.push((mtu, goodput));
    }
    let at_247 = results.iter().find(|(m, _)| *m == 247).unwrap().1;
    assert!(at_247 >= 0.90, "goodput at MTU 247 is {at_247:.3}");
}
