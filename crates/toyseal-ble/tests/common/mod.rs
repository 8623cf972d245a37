//! Shared set-up for the integration tests: a toy and a phone with real identities and a
//! real generated code, connected by an in-memory link through the one generic driver.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use std::sync::Arc;
use toyseal_ble::{
    DriverConfig, DriverEvent, Link, MemoryEnd, MemoryLink, MemoryLinkConfig, PhoneDriver,
    ToyDriver, run_until_idle,
};
use toyseal_core::{DeviceIdentity, PublicIdentity, Role};
use toyseal_pairing::frag::{Fragmenter, Reassembler};
use toyseal_pairing::{
    DeliveryConfig, Frame, MemoryFailureStore, PairedToy, PairingCode, PairingExpectations, Phone,
    PhoneEvent, SessionMessage, Timestamp, Toy, ToyEvent,
};

pub type TestToy = ToyDriver<MemoryFailureStore, MemoryEnd>;
pub type TestPhone = PhoneDriver<MemoryEnd>;
pub type Pumped = toyseal_ble::Pumped<PhoneEvent, ToyEvent>;
pub type ToyDriverEvent = DriverEvent<ToyEvent>;
pub type PhoneDriverEvent = DriverEvent<PhoneEvent>;

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

pub struct World {
    pub toy: TestToy,
    pub phone: TestPhone,
    pub medium: MemoryLink,
    pub code: PairingCode,
    pub rng: ChaCha20Rng,
    pub config: MemoryLinkConfig,
}

pub fn toy_endpoint(
    rng: &mut ChaCha20Rng,
    code: PairingCode,
    delivery: DeliveryConfig,
) -> Toy<MemoryFailureStore> {
    Toy::builder(
        Arc::new(DeviceIdentity::generate(Role::Toy, rng)),
        code,
        MemoryFailureStore::default(),
    )
    .delivery(delivery)
    .build()
    .unwrap()
}

pub fn new_toy(rng: &mut ChaCha20Rng, code: PairingCode, config: DriverConfig) -> TestToy {
    new_toy_with(rng, code, config, DeliveryConfig::default())
}

pub fn new_toy_with(
    rng: &mut ChaCha20Rng,
    code: PairingCode,
    config: DriverConfig,
    delivery: DeliveryConfig,
) -> TestToy {
    ToyDriver::new(toy_endpoint(rng, code, delivery), config)
}

pub fn new_phone(rng: &mut ChaCha20Rng) -> TestPhone {
    PhoneDriver::new(
        Phone::new(Arc::new(DeviceIdentity::generate(Role::Guardian, rng))),
        DriverConfig::default(),
    )
}

pub fn world(seed: u8, config: MemoryLinkConfig) -> World {
    world_with(seed, config, DriverConfig::default())
}

pub fn world_with(seed: u8, config: MemoryLinkConfig, driver: DriverConfig) -> World {
    world_full(seed, config, driver, DeliveryConfig::default())
}

pub fn world_full(
    seed: u8,
    config: MemoryLinkConfig,
    driver: DriverConfig,
    delivery: DeliveryConfig,
) -> World {
    let mut rng = rng(seed);
    let code = PairingCode::generate(8, &mut rng);
    let toy = new_toy_with(&mut rng, code.clone(), driver.clone(), delivery.clone());
    let phone = PhoneDriver::new(
        Phone::new(Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng)))
            .with_delivery(delivery),
        driver,
    );
    let mut w = World {
        toy,
        phone,
        medium: MemoryLink::pair(config.clone()).0.medium(),
        code,
        rng,
        config,
    };
    w.reconnect();
    w
}

/// The phone-side calls the tests make, forwarded to the endpoint inside the driver.
pub trait PhoneCalls {
    fn pair(
        &mut self,
        code: &PairingCode,
        expect: PairingExpectations,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), toyseal_pairing::Error>;
    fn open_session(
        &mut self,
        toy: &PublicIdentity,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), toyseal_pairing::Error>;
    fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), toyseal_pairing::Error>;
    fn send_envelope(
        &mut self,
        envelope: Vec<u8>,
        now: Timestamp,
    ) -> Result<u32, toyseal_pairing::Error>;
}

impl<L: Link> PhoneCalls for PhoneDriver<L> {
    fn pair(
        &mut self,
        code: &PairingCode,
        expect: PairingExpectations,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), toyseal_pairing::Error> {
        self.endpoint_mut().pair(code, expect, rng)
    }
    fn open_session(
        &mut self,
        toy: &PublicIdentity,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), toyseal_pairing::Error> {
        self.endpoint_mut().open_session(toy, rng)
    }
    fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), toyseal_pairing::Error> {
        self.endpoint_mut().send(msg, now)
    }
    fn send_envelope(
        &mut self,
        envelope: Vec<u8>,
        now: Timestamp,
    ) -> Result<u32, toyseal_pairing::Error> {
        self.endpoint_mut().send_envelope(envelope, now)
    }
}

/// The same for the toy.
pub trait ToyCalls {
    fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), toyseal_pairing::Error>;
    fn send_envelope(
        &mut self,
        envelope: Vec<u8>,
        now: Timestamp,
    ) -> Result<u32, toyseal_pairing::Error>;
}

impl<L: Link> ToyCalls for ToyDriver<MemoryFailureStore, L> {
    fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), toyseal_pairing::Error> {
        self.endpoint_mut().send(msg, now)
    }
    fn send_envelope(
        &mut self,
        envelope: Vec<u8>,
        now: Timestamp,
    ) -> Result<u32, toyseal_pairing::Error> {
        self.endpoint_mut().send_envelope(envelope, now)
    }
}

impl World {
    /// A fresh connection (a new in-memory link) for both drivers.
    pub fn reconnect(&mut self) {
        let (central, peripheral) = MemoryLink::pair(self.config.clone());
        self.medium = central.medium();
        self.phone.connect(central);
        self.toy.connect(peripheral);
    }

    pub fn now(&self) -> Timestamp {
        self.medium.now()
    }

    pub fn pump(&mut self) -> Pumped {
        run_until_idle(&mut self.phone, &mut self.toy, &self.medium, &mut self.rng).unwrap()
    }

    /// Presses the button and pairs with `code`; returns what both sides saw.
    pub fn try_pair(&mut self, code: &PairingCode) -> Pumped {
        let now = self.now();
        let _ = self.toy.endpoint_mut().press_pair_button(now);
        self.phone
            .pair(code, PairingExpectations::default(), &mut self.rng)
            .unwrap();
        self.pump()
    }

    pub fn pair(&mut self) -> PairedToy {
        let code = self.code.clone();
        let p = self.try_pair(&code);
        let toy = paired(&p).expect("pairing succeeds");
        // The parent confirms the founding pairing at the toy (T37).
        let p = self.confirm_at_toy();
        assert!(
            phone_saw(&p, |e| matches!(
                e,
                DriverEvent::Endpoint(PhoneEvent::ToyAnswered {
                    version: None,
                    answer: toyseal_pairing::ToyAnswer::Confirmed
                })
            )),
            "{p:?}"
        );
        toy
    }

    /// The toy's user makes the confirmation gesture for what the toy asked; returns what both
    /// sides saw then.
    pub fn confirm_at_toy(&mut self) -> Pumped {
        let now = self.now();
        self.toy.endpoint_mut().confirm(now).unwrap();
        self.pump()
    }

    pub fn open_session(&mut self, toy: &PublicIdentity) -> Pumped {
        self.phone.open_session(toy, &mut self.rng).unwrap();
        let p = self.pump();
        assert!(
            p.phone
                .iter()
                .any(|e| matches!(e, DriverEvent::Endpoint(PhoneEvent::SessionOpened(_)))),
            "{p:?}"
        );
        p
    }

    /// Paired, reconnected, session open.
    pub fn in_session(&mut self) -> PairedToy {
        let paired = self.pair();
        self.reconnect();
        self.open_session(&paired.identity);
        paired
    }
}

pub fn paired(p: &Pumped) -> Option<PairedToy> {
    p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::Paired(t)) => Some(t.clone()),
        _ => None,
    })
}

pub fn toy_messages(p: &Pumped) -> Vec<SessionMessage> {
    p.toy
        .iter()
        .filter_map(|e| match e {
            DriverEvent::Endpoint(ToyEvent::Message(m)) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub fn toy_saw(p: &Pumped, f: impl Fn(&ToyDriverEvent) -> bool) -> bool {
    p.toy.iter().any(f)
}

pub fn phone_saw(p: &Pumped, f: impl Fn(&PhoneDriverEvent) -> bool) -> bool {
    p.phone.iter().any(f)
}

/// An attacker's raw end of a link: frames in and out, fragmented like a real phone would.
pub struct RawPeer {
    pub end: MemoryEnd,
    frag: Fragmenter,
    reasm: Reassembler,
}

impl RawPeer {
    pub fn new(end: MemoryEnd) -> Self {
        let mtu = end.att_mtu();
        Self {
            end,
            frag: Fragmenter::new(mtu).unwrap(),
            reasm: Reassembler::default(),
        }
    }

    pub fn send_frame(&mut self, frame: &[u8]) {
        for p in self.frag.fragment(frame).unwrap() {
            self.end.send(&p).unwrap();
        }
    }

    pub fn send_packet(&mut self, packet: &[u8]) -> Result<(), toyseal_ble::Error> {
        self.end.send(packet)
    }

    pub fn recv_frames(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(Some(p)) = self.end.recv() {
            if let Some(f) = self.reasm.push(&p, Timestamp::default()).unwrap() {
                out.push(f);
            }
        }
        out
    }
}

pub fn not_pairable() -> Vec<u8> {
    Frame::NotPairable.encode()
}
