//! The whole stack without a radio: a real `PhoneDriver` over `CentralLink` (the async→sync
//! bridge) over a fake `GattClient`, whose "air" is a real `ToyDriver` over `PeripheralLink`
//! over a fake `GattPeripheral`. Pairs, reconnects and delivers envelopes both ways.
#![cfg(feature = "central")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::future::Future;
use std::sync::{Arc, Mutex};
use toyseal_ble::central::{CentralConfig, CentralLink, GattClient, NotificationSink};
use toyseal_ble::gatt::{RX_UUID, TX_UUID, Uuid128, VERSION_UUID, VERSION_VALUE};
use toyseal_ble::{
    DriverConfig, DriverEvent, Error, GattPeripheral, Link, PeripheralLink, PhoneDriver, ToyDriver,
};
use toyseal_pairing::{
    EnvelopeEvent, MemoryFailureStore, PairingExpectations, PhoneEvent, Timestamp, ToyEvent,
};

/// The toy's BLE stack: notifications go straight into the central's sink.
struct FakeRadio {
    sink: Arc<Mutex<Option<NotificationSink>>>,
}

impl GattPeripheral for FakeRadio {
    fn notify_tx(&mut self, packet: &[u8]) -> Result<(), Error> {
        match &*self.sink.lock().unwrap() {
            Some(s) if s.deliver(packet.to_vec()) => Ok(()),
            _ => Err(Error::Overflow),
        }
    }
    fn disconnect(&mut self) {
        if let Some(s) = &*self.sink.lock().unwrap() {
            s.close();
        }
    }
}

struct ToySide {
    driver: ToyDriver<MemoryFailureStore, PeripheralLink<FakeRadio>>,
    rng: chacha20::ChaCha20Rng,
    events: Vec<ToyDriverEvent>,
    now: u64,
}

impl ToySide {
    fn poll(&mut self) {
        let ev = self
            .driver
            .poll(Timestamp::from_millis(self.now), &mut self.rng);
        self.events.extend(ev);
    }
}

#[derive(Clone)]
struct FakeClient {
    toy: Arc<Mutex<ToySide>>,
    sink: Arc<Mutex<Option<NotificationSink>>>,
}

impl GattClient for FakeClient {
    type Device = u8;
    async fn scan(&self, _s: Uuid128, _t: std::time::Duration) -> Result<Vec<u8>, Error> {
        Ok(vec![0])
    }
    fn connect(&self, _d: &u8) -> impl Future<Output = Result<(), Error>> + Send {
        let radio = FakeRadio {
            sink: self.sink.clone(),
        };
        let mut toy = self.toy.lock().unwrap();
        toy.driver.connect(PeripheralLink::new(radio, 23).unwrap());
        // The central exchanges the MTU right after connecting.
        toy.driver
            .link_mut()
            .unwrap()
            .on_mtu_exchanged(185)
            .unwrap();
        async { Ok(()) }
    }
    async fn discover(&self, _d: &u8, _s: Uuid128) -> Result<Vec<Uuid128>, Error> {
        Ok(vec![RX_UUID, TX_UUID, VERSION_UUID])
    }
    fn read(&self, _d: &u8, c: Uuid128) -> impl Future<Output = Result<Vec<u8>, Error>> + Send {
        assert_eq!(c, VERSION_UUID);
        async { Ok(VERSION_VALUE.to_vec()) }
    }
    fn subscribe(
        &self,
        _d: &u8,
        c: Uuid128,
        sink: NotificationSink,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        assert_eq!(c, TX_UUID);
        *self.sink.lock().unwrap() = Some(sink);
        let mut toy = self.toy.lock().unwrap();
        toy.driver.link_mut().unwrap().on_subscription_changed(true);
        async { Ok(()) }
    }
    fn write_without_response(
        &self,
        _d: &u8,
        c: Uuid128,
        value: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send {
        assert_eq!(c, RX_UUID);
        let mut toy = self.toy.lock().unwrap();
        let r = match toy.driver.link_mut() {
            Some(link) => link.on_rx_write(value),
            None => Err(Error::Disconnected),
        };
        toy.poll();
        async move { r }
    }
    fn att_mtu(&self, _d: &u8) -> usize {
        185
    }
    fn disconnect(&self, _d: &u8) -> impl Future<Output = Result<(), Error>> + Send {
        let mut toy = self.toy.lock().unwrap();
        let ev = toy.driver.disconnect();
        toy.events.extend(ev);
        async { Ok(()) }
    }
}

type Phone = PhoneDriver<CentralLink<FakeClient>>;

fn run_phone(
    phone: &mut Phone,
    until: impl Fn(&PhoneDriverEvent) -> bool,
) -> Vec<PhoneDriverEvent> {
    let mut all = Vec::new();
    for i in 0..10_000u64 {
        let ev = phone.poll(Timestamp::from_millis(i), &mut common::rng(62));
        let done = ev.iter().any(&until);
        all.extend(ev);
        if done {
            return all;
        }
    }
    panic!("never happened: {all:?}");
}

#[test]
fn pair_reconnect_and_deliver_through_central_and_peripheral_adapters() {
    let mut rng = rng(60);
    let code = toyseal_pairing::PairingCode::generate(8, &mut rng);
    let toy = toyseal_pairing::Toy::builder(
        Arc::new(toyseal_core::DeviceIdentity::generate(
            toyseal_core::Role::Toy,
            &mut rng,
        )),
        code.clone(),
        MemoryFailureStore::default(),
    )
    .build()
    .unwrap();
    let mut driver = ToyDriver::new(toy, DriverConfig::default());
    driver
        .endpoint_mut()
        .press_pair_button(Timestamp::default())
        .unwrap();
    let toy_side = Arc::new(Mutex::new(ToySide {
        driver,
        rng: common::rng(61),
        events: Vec::new(),
        now: 0,
    }));
    let client = FakeClient {
        toy: toy_side.clone(),
        sink: Arc::default(),
    };
    let connect = |client: &FakeClient| {
        let c = client.clone();
        CentralLink::scan_and_connect(CentralConfig::default(), move || async move { Ok(c) })
            .unwrap()
    };

    let mut phone: Phone = PhoneDriver::new(
        toyseal_pairing::Phone::new(Arc::new(toyseal_core::DeviceIdentity::generate(
            toyseal_core::Role::Guardian,
            &mut rng,
        ))),
        DriverConfig::default(),
    );
    phone.connect(connect(&client));
    assert_eq!(phone.link().unwrap().att_mtu(), 185);
    phone
        .pair(&code, PairingExpectations::default(), &mut rng)
        .unwrap();
    let ev = run_phone(&mut phone, |e| {
        matches!(e, DriverEvent::Endpoint(PhoneEvent::Paired(_)))
    });
    let paired = ev
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Paired(p)) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    // The parent confirms at the toy; only then does it record its founder (T37).
    assert!(!toy_side.lock().unwrap().driver.endpoint().has_guardian());
    {
        let mut t = toy_side.lock().unwrap();
        let now = Timestamp::from_millis(t.now);
        t.driver.endpoint_mut().confirm(now).unwrap();
        t.poll();
    }
    run_phone(&mut phone, |e| {
        matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::ToyAnswered { version: None, .. })
        )
    });
    assert!(toy_side.lock().unwrap().driver.endpoint().has_guardian());

    // Reconnect over a fresh central connection, then envelopes both ways.
    phone.disconnect();
    assert!(!toy_side.lock().unwrap().driver.is_connected());
    phone.connect(connect(&client));
    phone.open_session(&paired.identity, &mut rng).unwrap();
    run_phone(&mut phone, |e| {
        matches!(e, DriverEvent::Endpoint(PhoneEvent::SessionOpened(_)))
    });
    let to_toy: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    phone
        .send_envelope(to_toy.clone(), Timestamp::default())
        .unwrap();
    run_phone(&mut phone, |e| {
        matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::Envelope(EnvelopeEvent::Delivered { .. }))
        )
    });
    assert!(toy_side.lock().unwrap().events.iter().any(|e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::Envelope(EnvelopeEvent::Received { envelope, .. })) if *envelope == to_toy
    )));
    let to_phone: Vec<u8> = (0..30_000u32).map(|i| (i / 3) as u8).collect();
    toy_side
        .lock()
        .unwrap()
        .driver
        .send_envelope(to_phone.clone(), Timestamp::default())
        .unwrap();
    // What the endpoint queued goes out at the driver's next poll.
    toy_side.lock().unwrap().poll();
    let ev = run_phone(&mut phone, |e| {
        matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::Envelope(EnvelopeEvent::Received { .. }))
        )
    });
    assert!(ev.iter().any(|e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. })) if *envelope == to_phone
    )));
    // The phone's acks reach the toy as writes; the toy learns the envelope was delivered.
    toy_side.lock().unwrap().poll();
    assert!(toy_side.lock().unwrap().events.iter().any(|e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::Envelope(EnvelopeEvent::Delivered {
            len: 30_000,
            ..
        }))
    )));
    phone.disconnect();
}
