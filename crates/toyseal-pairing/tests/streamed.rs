//! Streamed envelope delivery (docs/spec/pairing.md §8) through the real Toy and Phone
//! endpoints: the toy's application supplies the bytes the window asks for, from storage the
//! toy does not hold. The wire traffic is the same as delivering the whole envelope from
//! memory, the toy holds at most one window, and bytes the toy did not ask for are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;
use std::sync::Arc;
use toyseal_core::{DeviceIdentity, Role};
use toyseal_pairing::*;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A toy and the parent's phone in session, built from a seed (same seed, same keys: two
/// pairs from one seed produce byte-identical frames for the same messages).
struct Pair {
    toy: Toy<MemoryFailureStore>,
    phone: Phone,
    rng: ChaCha20Rng,
    toy_events: Vec<ToyEvent>,
    phone_events: Vec<PhoneEvent>,
    /// Every frame the toy sent, in order.
    toy_frames: Vec<Vec<u8>>,
}

impl Pair {
    fn new(seed: u8, config: DeliveryConfig) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let toy_id = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
        let code = PairingCode::parse("4821-3957").unwrap();
        let toy = Toy::builder(toy_id, code.clone(), MemoryFailureStore::default())
            .delivery(config.clone())
            .build()
            .unwrap();
        let parent = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
        let phone = Phone::new(parent).with_delivery(config);
        let mut p = Pair {
            toy,
            phone,
            rng,
            toy_events: Vec::new(),
            phone_events: Vec::new(),
            toy_frames: Vec::new(),
        };
        p.toy.press_pair_button(t(0)).unwrap();
        p.phone
            .pair(&code, PairingExpectations::default(), &mut p.rng)
            .unwrap();
        p.pump();
        let paired = p
            .phone_events
            .iter()
            .find_map(|e| match e {
                PhoneEvent::Paired(t) => Some(t.identity.clone()),
                _ => None,
            })
            .expect("paired");
        // The parent confirms the founding pairing at the toy (T37).
        p.toy.confirm(t(100)).unwrap();
        p.pump();
        assert!(p.phone_events.contains(&PhoneEvent::ToyAnswered {
            version: None,
            answer: ToyAnswer::Confirmed
        }));
        p.phone.handle_disconnect();
        p.toy.handle_disconnect();
        p.phone.open_session(&paired, &mut p.rng).unwrap();
        p.pump();
        assert!(p.toy.session().is_some(), "session open");
        p.toy_events.clear();
        p.phone_events.clear();
        p.toy_frames.clear();
        p
    }

    /// Moves frames both ways until neither side has anything to send.
    fn pump(&mut self) -> bool {
        let mut any = false;
        loop {
            let mut moved = false;
            while let Some(f) = self.phone.poll_transmit() {
                self.toy.handle_frame(&f, t(100), &mut self.rng);
                moved = true;
            }
            while let Some(f) = self.toy.poll_transmit() {
                self.phone.handle_frame(&f, t(100), &mut self.rng);
                self.toy_frames.push(f);
                moved = true;
            }
            self.toy_events
                .extend(std::iter::from_fn(|| self.toy.poll_event()));
            self.phone_events
                .extend(std::iter::from_fn(|| self.phone.poll_event()));
            if !moved {
                return any;
            }
            any = true;
        }
    }

    /// Answers the toy's requests from `envelope` in pieces of at most `piece` bytes, one
    /// frame at a time to the phone, until the toy asks for nothing more. Returns the most
    /// the toy held (envelope bytes plus frames queued for the phone).
    fn stream(&mut self, envelope: &[u8], piece: usize) -> usize {
        let mut most = 0;
        loop {
            let mut moved = false;
            while let Some(req) = self.toy.envelope_request() {
                assert!(req.len > 0);
                let from = req.offset as usize;
                let n = (req.len as usize).min(piece);
                self.toy
                    .provide_envelope_bytes(
                        req.transfer,
                        req.offset,
                        &envelope[from..from + n],
                        t(100),
                    )
                    .unwrap();
                most = most.max(self.toy.outgoing_envelope_bytes());
                moved = true;
            }
            // Frames the toy queued: what it holds besides its window's staged bytes.
            let mut queued = Vec::new();
            while let Some(f) = self.toy.poll_transmit() {
                queued.push(f);
            }
            most = most.max(
                self.toy.outgoing_envelope_bytes() + queued.iter().map(Vec::len).sum::<usize>(),
            );
            for f in queued {
                self.phone.handle_frame(&f, t(100), &mut self.rng);
                self.toy_frames.push(f);
                moved = true;
            }
            self.phone_events
                .extend(std::iter::from_fn(|| self.phone.poll_event()));
            while let Some(f) = self.phone.poll_transmit() {
                self.toy.handle_frame(&f, t(100), &mut self.rng);
                moved = true;
            }
            self.toy_events
                .extend(std::iter::from_fn(|| self.toy.poll_event()));
            if !moved {
                return most;
            }
        }
    }

    fn received(&self) -> Option<&[u8]> {
        self.phone_events.iter().find_map(|e| match e {
            PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => {
                Some(envelope.as_slice())
            }
            _ => None,
        })
    }

    fn delivered(&self) -> Option<(u32, usize)> {
        self.toy_events.iter().find_map(|e| match e {
            ToyEvent::Envelope(EnvelopeEvent::Delivered { transfer, len }) => {
                Some((*transfer, *len))
            }
            _ => None,
        })
    }
}

fn envelope(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// The toy frames of a whole-envelope delivery, and of a streamed one supplied in `piece`s.
fn both_ways(config: &DeliveryConfig, data: &[u8], piece: usize) -> (Pair, Pair) {
    let mut memory = Pair::new(7, config.clone());
    let id = memory.toy.send_envelope(data.to_vec(), t(100)).unwrap();
    memory.pump();
    assert_eq!(memory.delivered(), Some((id, data.len())));

    let mut streamed = Pair::new(7, config.clone());
    let id = streamed
        .toy
        .send_envelope_streamed(data.len() as u32)
        .unwrap();
    let most = streamed.stream(data, piece);
    assert_eq!(streamed.delivered(), Some((id, data.len())));
    let window = config.chunk_len * config.window;
    // Queued frames carry at most one window of chunks (plus per-frame overhead).
    let overhead = 64 * config.window;
    assert!(
        most <= window + overhead,
        "the toy held {most} B, window {window} B"
    );
    (memory, streamed)
}

#[test]
fn streamed_delivery_is_byte_identical_on_the_wire() {
    let config = DeliveryConfig::default()
        .with_chunk_len(1000)
        .with_window(3);
    let data = envelope(10_500);
    for piece in [1, 333, 1000, 4096] {
        let (memory, streamed) = both_ways(&config, &data, piece);
        assert!(!memory.toy_frames.is_empty());
        assert_eq!(
            memory.toy_frames, streamed.toy_frames,
            "piece {piece}: the same sealed frames"
        );
        assert_eq!(streamed.received(), Some(data.as_slice()));
        assert_eq!(memory.received(), Some(data.as_slice()));
        assert_eq!(streamed.toy.envelope_request(), None, "nothing more to ask");
        assert_eq!(streamed.toy.outgoing_envelope_bytes(), 0);
    }
}

#[test]
fn the_phone_streams_too() {
    let mut p = Pair::new(9, DeliveryConfig::default().with_chunk_len(700));
    let data = envelope(5000);
    let id = p.phone.send_envelope_streamed(5000).unwrap();
    loop {
        let mut moved = false;
        while let Some(req) = p.phone.envelope_request() {
            assert_eq!(req.transfer, id);
            let from = req.offset as usize;
            let to = from + req.len as usize;
            p.phone
                .provide_envelope_bytes(id, req.offset, &data[from..to], t(100))
                .unwrap();
            moved = true;
        }
        if !p.pump() && !moved {
            break;
        }
    }
    let got = p.toy_events.iter().find_map(|e| match e {
        ToyEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => Some(envelope.clone()),
        _ => None,
    });
    assert_eq!(got, Some(data));
    assert!(
        p.phone_events
            .contains(&PhoneEvent::Envelope(EnvelopeEvent::Delivered {
                transfer: id,
                len: 5000
            }))
    );
}

#[test]
fn bytes_the_toy_did_not_ask_for_are_refused() {
    let mut p = Pair::new(
        3,
        DeliveryConfig::default().with_chunk_len(100).with_window(2),
    );
    let data = envelope(1000);
    assert!(matches!(
        p.toy.send_envelope_streamed(0),
        Err(Error::Transfer(_))
    ));
    let id = p.toy.send_envelope_streamed(1000).unwrap();
    assert!(matches!(
        p.toy.send_envelope_streamed(10),
        Err(Error::TransferInProgress)
    ));
    assert!(matches!(
        p.toy.send_envelope(vec![1], t(100)),
        Err(Error::TransferInProgress)
    ));
    let req = p.toy.envelope_request().unwrap();
    assert_eq!((req.transfer, req.offset, req.len), (id, 0, 200));

    let refused = |r: Result<(), Error>| match r {
        Err(Error::EnvelopeBytes(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(p.toy.provide_envelope_bytes(id + 1, 0, &data[..10], t(100))),
        EnvelopeBytesError::UnknownTransfer(id + 1)
    );
    assert_eq!(
        refused(p.toy.provide_envelope_bytes(id, 5, &data[5..10], t(100))),
        EnvelopeBytesError::WrongOffset {
            expected: 0,
            got: 5
        }
    );
    assert_eq!(
        refused(p.toy.provide_envelope_bytes(id, 0, &data[..201], t(100))),
        EnvelopeBytesError::TooLong {
            allowed: 200,
            got: 201
        }
    );
    assert_eq!(
        refused(p.toy.provide_envelope_bytes(id, 0, &[], t(100))),
        EnvelopeBytesError::Empty
    );
    // Refusals changed nothing: the request stands, no frame went out.
    assert_eq!(p.toy.envelope_request(), Some(req));
    assert!(p.toy.poll_transmit().is_none());

    // A partial answer: the toy frames whole chunks only and asks for the rest.
    p.toy
        .provide_envelope_bytes(id, 0, &data[..150], t(100))
        .unwrap();
    let req = p.toy.envelope_request().unwrap();
    assert_eq!((req.offset, req.len), (150, 50));
    assert_eq!(p.toy.outgoing_envelope_bytes(), 50, "half a chunk staged");
    // The window is full once 200 bytes are supplied, until the phone acknowledges.
    p.toy
        .provide_envelope_bytes(id, 150, &data[150..200], t(100))
        .unwrap();
    assert_eq!(p.toy.envelope_request(), None);
    assert_eq!(
        refused(
            p.toy
                .provide_envelope_bytes(id, 200, &data[200..210], t(100))
        ),
        EnvelopeBytesError::TooLong {
            allowed: 0,
            got: 10
        }
    );
    p.stream(&data, 1000);
    assert_eq!(p.received(), Some(data.as_slice()));
    assert_eq!(p.delivered(), Some((id, 1000)));
    // Delivered: the transfer is over.
    assert_eq!(
        refused(p.toy.provide_envelope_bytes(id, 1000, &data[..1], t(100))),
        EnvelopeBytesError::UnknownTransfer(id)
    );

    // An in-memory transfer takes no supplied bytes.
    let mem = p.toy.send_envelope(data.clone(), t(100)).unwrap();
    assert_eq!(p.toy.envelope_request(), None);
    assert_eq!(
        refused(p.toy.provide_envelope_bytes(mem, 0, &data[..1], t(100))),
        EnvelopeBytesError::UnknownTransfer(mem)
    );
    p.pump();

    // After the session ends: aborted, and supplying is refused.
    let id = p.toy.send_envelope_streamed(1000).unwrap();
    p.toy
        .provide_envelope_bytes(id, 0, &data[..100], t(100))
        .unwrap();
    let out = p.toy.close_session();
    assert!(
        out.events
            .contains(&ToyEvent::Envelope(EnvelopeEvent::Aborted { transfer: id }))
    );
    assert_eq!(p.toy.envelope_request(), None);
    assert!(matches!(
        p.toy
            .provide_envelope_bytes(id, 100, &data[100..110], t(100)),
        Err(Error::Closed)
    ));
    assert!(matches!(
        p.toy.send_envelope_streamed(10),
        Err(Error::Closed)
    ));
}

#[test]
fn a_2_mib_streamed_delivery_holds_one_window() {
    let config = DeliveryConfig::default();
    let window = config.chunk_len * config.window;
    let mut p = Pair::new(5, config.clone());
    let len = 2 * 1024 * 1024;
    let data = envelope(len);
    let id = p.toy.send_envelope_streamed(len as u32).unwrap();
    let most = p.stream(&data, 512);
    assert_eq!(p.delivered(), Some((id, len)));
    assert_eq!(p.received().map(<[u8]>::len), Some(len));
    assert!(p.received() == Some(data.as_slice()));
    assert!(
        most <= window + 64 * config.window,
        "the toy held {most} B of a {len} B envelope (window {window} B)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn streamed_equals_memory(
        len in 1usize..12_000,
        chunk in 1usize..1500,
        window in 1usize..6,
        piece in 1usize..5000,
    ) {
        let config = DeliveryConfig::default().with_chunk_len(chunk).with_window(window);
        let data = envelope(len);
        let (memory, streamed) = both_ways(&config, &data, piece);
        prop_assert_eq!(&memory.toy_frames, &streamed.toy_frames);
        prop_assert_eq!(streamed.received(), Some(data.as_slice()));
    }
}
