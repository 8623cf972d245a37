//! A toy in the same process, for tests and demos of the phone side (the Python and Kotlin
//! suites pair with it, receive its recordings and send it replies). It is the real
//! `toyseal_pairing::Toy` with a fresh identity and an in-memory failure counter; a shipping
//! app never needs it.

use crate::envelope::EnvelopeMetadata;
use crate::roster::Roster;
use crate::{PublicKey, ToysealError};
use std::sync::{Arc, Mutex, MutexGuard};
use toyseal_core::{DeviceIdentity, OsRng, Role};
use toyseal_envelope::{OpenOptions, SealOptions};
use toyseal_pairing::{
    EnvelopeEvent, MemoryFailureStore, PairingCode, Timestamp, Toy, ToyEvent, ToyOutput,
};

struct State {
    toy: Toy<MemoryFailureStore>,
    sas: Option<String>,
    received: Vec<Vec<u8>>,
    delivered: u32,
    failed_pairings: u32,
    /// The last sender sequence it sealed with (each envelope takes the next one).
    sequence: u64,
    /// Whether its "parent" confirms every request at the toy at once (the default).
    auto_confirm: bool,
    /// Whether a confirmation is pending (with `auto_confirm` off).
    pending: bool,
    /// The header hash of the last envelope it sealed (the next one names it).
    previous: [u8; 32],
}

/// An in-process toy for tests and demos (the real protocol endpoint, simulated hardware).
#[derive(uniffi::Object)]
pub struct SimulatedToy {
    identity: Arc<DeviceIdentity>,
    code: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for SimulatedToy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedToy")
            .field("device_id", &self.identity.device_id())
            .finish_non_exhaustive()
    }
}

impl SimulatedToy {
    fn lock(&self) -> Result<MutexGuard<'_, State>, ToysealError> {
        self.state.lock().map_err(|_| ToysealError::Internal {
            reason: "a previous call panicked".into(),
        })
    }
}

impl State {
    /// Records the events; with `auto_confirm`, makes the confirmation gesture the toy asks
    /// for and appends what follows. Returns the frames for the phone.
    fn take(&mut self, out: ToyOutput, now: Timestamp) -> Vec<Vec<u8>> {
        let mut replies = out.replies;
        let mut events = out.events;
        while !events.is_empty() {
            let asked = self.record(std::mem::take(&mut events));
            if asked && self.auto_confirm && self.toy.confirm(now).is_ok() {
                self.pending = false;
                let more = self.toy.poll(now);
                replies.extend(more.replies);
                events = more.events;
            }
        }
        replies
    }

    /// Records the events; whether one asked for a confirmation.
    fn record(&mut self, events: Vec<ToyEvent>) -> bool {
        let mut asked = false;
        for e in events {
            match e {
                ToyEvent::ConfirmationRequested { .. } => {
                    asked = true;
                    self.pending = true;
                }
                ToyEvent::ConfirmationExpired
                | ToyEvent::ConfirmationDeclined
                | ToyEvent::ConfirmationCancelled => self.pending = false,
                ToyEvent::Sas(s) => self.sas = Some(s.to_string()),
                ToyEvent::PairingFailed => self.failed_pairings += 1,
                ToyEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => {
                    self.received.push(envelope);
                }
                ToyEvent::Envelope(EnvelopeEvent::Delivered { .. }) => self.delivered += 1,
                _ => {}
            }
        }
        asked
    }
}

#[uniffi::export]
impl SimulatedToy {
    /// A factory-fresh toy with a random identity and a random 8-digit printed code.
    #[uniffi::constructor]
    pub fn new() -> Result<Arc<Self>, ToysealError> {
        let identity = Arc::new(DeviceIdentity::generate(Role::Toy, &mut OsRng));
        let code = PairingCode::generate(8, &mut OsRng);
        let toy = Toy::builder(
            identity.clone(),
            code.clone(),
            MemoryFailureStore::default(),
        )
        .build()?;
        Ok(Arc::new(Self {
            identity,
            code: code.digits().to_owned(),
            state: Mutex::new(State {
                toy,
                sas: None,
                received: Vec::new(),
                delivered: 0,
                failed_pairings: 0,
                sequence: 0,
                auto_confirm: true,
                pending: false,
                previous: [0; 32],
            }),
        }))
    }

    /// The code printed on its tag.
    pub fn printed_code(&self) -> String {
        self.code.clone()
    }

    /// The QR text on its tag (`TS1:code:device id`).
    pub fn qr_text(&self) -> String {
        format!(
            "TS1:{}:{}",
            self.code,
            self.identity.device_id().to_string().to_uppercase()
        )
    }

    /// Its public key.
    pub fn public_key(&self) -> Arc<PublicKey> {
        PublicKey::wrap(self.identity.public().clone())
    }

    /// The parent holds the button: a pairing window opens.
    pub fn press_pair_button(&self, now_ms: u64) -> Result<(), ToysealError> {
        Ok(self
            .lock()?
            .toy
            .press_pair_button(Timestamp::from_millis(now_ms))?)
    }

    /// The long press at the toy that opens its recovery window (docs/spec/pairing.md §7.2):
    /// for its length, a phone may pair with the printed code and, in a session, prove the
    /// family's recovery key. Fails without a family (use `pressPairButton`).
    pub fn open_recovery_window(&self, now_ms: u64) -> Result<(), ToysealError> {
        Ok(self
            .lock()?
            .toy
            .open_recovery_window(Timestamp::from_millis(now_ms))?)
    }

    /// One whole frame from the phone; returns the toy's replies.
    pub fn handle_frame(&self, frame: Vec<u8>, now_ms: u64) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let now = Timestamp::from_millis(now_ms);
        let out = s.toy.handle(&frame, now, &mut OsRng);
        Ok(s.take(out, now))
    }

    /// The link dropped.
    pub fn disconnect(&self) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let out = s.toy.disconnect();
        Ok(s.take(out, Timestamp::default()))
    }

    /// Whether its "parent" confirms every request at the toy at once (default `true`). Off,
    /// the toy waits: [`SimulatedToy::confirm`], [`SimulatedToy::decline`], or let the
    /// window expire ([`SimulatedToy::tick`]).
    pub fn set_auto_confirm(&self, on: bool) -> Result<(), ToysealError> {
        self.lock()?.auto_confirm = on;
        Ok(())
    }

    /// Whether the toy waits for a confirmation at the toy.
    pub fn confirmation_pending(&self) -> Result<bool, ToysealError> {
        Ok(self.lock()?.pending)
    }

    /// The confirmation gesture at the toy; returns the frames for the phone.
    pub fn confirm(&self, now_ms: u64) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let now = Timestamp::from_millis(now_ms);
        s.toy.confirm(now)?;
        s.pending = false;
        let out = s.toy.poll(now);
        Ok(s.take(out, now))
    }

    /// The toy's user declines; returns the frames for the phone.
    pub fn decline(&self, now_ms: u64) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let now = Timestamp::from_millis(now_ms);
        s.toy.decline(now)?;
        let out = s.toy.poll(now);
        Ok(s.take(out, now))
    }

    /// Time passed (a pending confirmation may expire); returns the frames for the phone.
    pub fn tick(&self, now_ms: u64) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let now = Timestamp::from_millis(now_ms);
        let out = s.toy.poll(now);
        Ok(s.take(out, now))
    }

    /// The short authentication string it spoke during the last pairing.
    pub fn sas(&self) -> Result<Option<String>, ToysealError> {
        Ok(self.lock()?.sas.clone())
    }

    /// Failed pairing attempts it saw.
    pub fn failed_pairings(&self) -> Result<u32, ToysealError> {
        Ok(self.lock()?.failed_pairings)
    }

    /// Envelopes it delivered completely to the phone.
    pub fn delivered(&self) -> Result<u32, ToysealError> {
        Ok(self.lock()?.delivered)
    }

    /// Its verified roster (after it co-signed version 1).
    pub fn roster(&self) -> Result<Option<Arc<Roster>>, ToysealError> {
        Ok(self
            .lock()?
            .toy
            .roster()
            .cloned()
            .map(|inner| Arc::new(Roster { inner })))
    }

    /// Records: seals `content` to its family and starts sending it to the phone in
    /// session; returns the frames to deliver to the phone.
    pub fn record_and_send(
        &self,
        content: Vec<u8>,
        metadata: EnvelopeMetadata,
        now_ms: u64,
    ) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let roster = s
            .toy
            .roster()
            .ok_or_else(|| ToysealError::state("the toy has no family yet"))?;
        let sequence = s.sequence.saturating_add(1);
        let options = SealOptions::default()
            .with_metadata(metadata.into_core())
            .with_sequence(sequence)
            .with_previous(s.previous);
        let envelope = roster.seal(&self.identity, options, &content, &mut OsRng)?;
        s.sequence = sequence;
        s.previous = toyseal_envelope::inspect(&envelope)?.link_hash();
        let now = Timestamp::from_millis(now_ms);
        s.toy.send_envelope(envelope, now)?;
        let out = s.toy.poll(now);
        Ok(s.take(out, now))
    }

    /// Opens the envelopes the phone delivered to it, in order (content of each), with its
    /// roster; fails if any does not verify.
    pub fn open_received(&self) -> Result<Vec<Vec<u8>>, ToysealError> {
        let mut s = self.lock()?;
        let received = std::mem::take(&mut s.received);
        let roster = s
            .toy
            .roster()
            .ok_or_else(|| ToysealError::state("the toy has no family yet"))?;
        received
            .iter()
            .map(|e| {
                roster
                    .open(&self.identity, e, OpenOptions::default())
                    .map(|(content, _)| content)
                    .map_err(ToysealError::from)
            })
            .collect()
    }
}
