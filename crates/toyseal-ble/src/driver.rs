//! Drivers: the real `toyseal-pairing` state machines run over any [`Link`].
//!
//! A driver owns the protocol endpoint across connections and, while connected, one link with
//! its [`Fragmenter`] and [`Reassembler`]. Its `poll` reads every packet that arrived,
//! reassembles frames (bounded), feeds them to the state machine, fragments the replies and
//! sends them, and returns events. Any fragmentation error, a stalled frame or a broken
//! envelope transfer tears the connection down (docs/spec/gatt.md §Teardown): the state
//! machine is told the link dropped, and the link is disconnected.
//!
//! The drivers never block and never read a clock or an RNG of their own: time and
//! randomness come in as arguments (sans-IO), so firmware and tests drive them alike.

use crate::Error;
use crate::link::Link;
use crate::memory::MemoryLink;
use crate::transfer::{Incoming, Outgoing, Received};
use std::collections::VecDeque;
use std::time::Duration;
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity};
use toyseal_pairing::frag::{
    DEFAULT_MAX_FRAME, DEFAULT_REASSEMBLY_TIMEOUT, Fragmenter, Reassembler,
};
use toyseal_pairing::{
    AbortReason, FailureStore, Frame, Initiator, PairedToy, PairingCode, PairingExpectations,
    PhonePairing, PhoneStep, Session, SessionConfig, SessionMessage, Timestamp, Toy, ToyEvent,
};

/// Limits and tuning shared by both drivers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Largest envelope accepted from the peer (default 4 MiB). A transfer declaring more is
    /// refused before any byte is buffered.
    pub max_envelope_len: usize,
    /// Envelope bytes per `EnvelopeChunk` (default 4096; at most `MAX_CHUNK_DATA`).
    pub chunk_len: usize,
    /// Chunks sent ahead of the peer's acknowledgements (default 4).
    pub window: usize,
    /// Largest link frame reassembled (default 65 536).
    pub max_frame: usize,
    /// Longest pause between two packets of one frame (default 5 s).
    pub reassembly_timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            max_envelope_len: 4 * 1024 * 1024,
            chunk_len: 4096,
            window: 4,
            max_frame: DEFAULT_MAX_FRAME,
            reassembly_timeout: DEFAULT_REASSEMBLY_TIMEOUT,
        }
    }
}

impl DriverConfig {
    /// With this envelope size bound.
    pub fn with_max_envelope_len(mut self, bytes: usize) -> Self {
        self.max_envelope_len = bytes;
        self
    }
    /// With this chunk size.
    pub fn with_chunk_len(mut self, bytes: usize) -> Self {
        self.chunk_len = bytes.clamp(1, toyseal_pairing::MAX_CHUNK_DATA);
        self
    }
    /// With this many chunks in flight.
    pub fn with_window(mut self, chunks: usize) -> Self {
        self.window = chunks.max(1);
        self
    }
    /// With this frame size bound.
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }
    /// With this reassembly timeout.
    pub fn with_reassembly_timeout(mut self, timeout: Duration) -> Self {
        self.reassembly_timeout = timeout;
        self
    }
}

/// One connection: the link, fragmentation both ways, and packets waiting for room.
struct Wire<L> {
    link: L,
    frag: Option<Fragmenter>,
    reasm: Reassembler,
    outbox: VecDeque<Vec<u8>>,
}

impl<L: Link> Wire<L> {
    fn new(link: L, config: &DriverConfig) -> Self {
        Self {
            link,
            frag: None,
            reasm: Reassembler::new(config.max_frame, config.reassembly_timeout),
            outbox: VecDeque::new(),
        }
    }

    fn queue(&mut self, frame: &[u8]) -> Result<(), Error> {
        // Created at the first frame out: by then the phone has exchanged the MTU.
        let frag = match &mut self.frag {
            Some(f) => f,
            None => self.frag.insert(Fragmenter::new(self.link.att_mtu())?),
        };
        self.outbox.extend(frag.fragment(frame)?);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        while let Some(p) = self.outbox.front() {
            match self.link.send(p) {
                Ok(()) => {
                    self.outbox.pop_front();
                }
                Err(Error::QueueFull) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn next_frame(&mut self, now: Timestamp) -> Result<Option<Vec<u8>>, Error> {
        self.reasm.poll(now)?;
        while let Some(p) = self.link.recv()? {
            if let Some(frame) = self.reasm.push(&p, now)? {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }
}

/// Envelope transfers of one session, one per direction.
#[derive(Default)]
struct Transfers {
    outgoing: Option<Outgoing>,
    incoming: Option<Incoming>,
    next_id: u32,
}

impl Transfers {
    fn start(&mut self, envelope: Vec<u8>) -> Result<u32, Error> {
        if self.outgoing.is_some() {
            return Err(Error::TransferInProgress);
        }
        self.next_id = self.next_id.wrapping_add(1);
        self.outgoing = Some(Outgoing::new(self.next_id, envelope)?);
        Ok(self.next_id)
    }

    /// The session ended: whatever was in progress is abandoned.
    fn reset(&mut self) -> Option<u32> {
        self.incoming = None;
        self.outgoing.take().map(|o| o.id())
    }

    fn on_ack(&mut self, transfer: u32, received: u32) -> Result<Option<(u32, usize)>, Error> {
        let out = self
            .outgoing
            .as_mut()
            .ok_or(Error::Transfer("acknowledgement without a transfer"))?;
        if out.on_ack(transfer, received)? {
            Ok(self.outgoing.take().map(|o| (o.id(), o.len())))
        } else {
            Ok(None)
        }
    }

    fn buffered(&self) -> usize {
        self.incoming.as_ref().map_or(0, Incoming::buffered)
    }
}

/// What the toy's application must act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ToyDriverEvent {
    /// From the toy's protocol endpoint (paired, session opened or closed, a session message
    /// other than envelope chunks and acknowledgements).
    Toy(ToyEvent),
    /// A whole envelope arrived from the phone in session (complete and within the bound;
    /// open it with `toyseal_envelope`).
    EnvelopeReceived {
        /// The sender's transfer id.
        transfer: u32,
        /// The envelope bytes.
        envelope: Vec<u8>,
    },
    /// The phone acknowledged every byte of an envelope the toy sent.
    EnvelopeDelivered {
        /// The transfer id [`ToyDriver::send_envelope`] returned.
        transfer: u32,
        /// Its length.
        len: usize,
    },
    /// The session ended before an outgoing envelope was acknowledged.
    EnvelopeAborted {
        /// Its transfer id.
        transfer: u32,
    },
    /// The connection was torn down (tampering, protocol violation, or the link dropped).
    TornDown(Error),
}

/// Runs a [`Toy`] over a link.
pub struct ToyDriver<S: FailureStore, L: Link> {
    toy: Toy<S>,
    config: DriverConfig,
    wire: Option<Wire<L>>,
    transfers: Transfers,
}

impl<S: FailureStore, L: Link> ToyDriver<S, L> {
    /// A driver for `toy`, not connected.
    pub fn new(toy: Toy<S>, config: DriverConfig) -> Self {
        Self {
            toy,
            config,
            wire: None,
            transfers: Transfers::default(),
        }
    }

    /// The toy's protocol endpoint (pinned phones, window, session).
    pub fn toy(&self) -> &Toy<S> {
        &self.toy
    }

    /// Mutable access, for the pairing button and factory reset.
    pub fn toy_mut(&mut self) -> &mut Toy<S> {
        &mut self.toy
    }

    /// A central connected: run over `link` from now on (a previous connection is dropped
    /// first, and its events returned).
    pub fn connect(&mut self, link: L) -> Vec<ToyDriverEvent> {
        let events = self.disconnect();
        self.wire = Some(Wire::new(link, &self.config));
        events
    }

    /// The central disconnected (or the toy drops it): the unfinished pairing attempt counts
    /// as failed, the session ends, the link is closed.
    pub fn disconnect(&mut self) -> Vec<ToyDriverEvent> {
        let mut events = Vec::new();
        if let Some(mut w) = self.wire.take() {
            w.link.disconnect();
        }
        events.extend(
            self.toy
                .disconnect()
                .events
                .into_iter()
                .map(ToyDriverEvent::Toy),
        );
        if let Some(transfer) = self.transfers.reset() {
            events.push(ToyDriverEvent::EnvelopeAborted { transfer });
        }
        events
    }

    /// Whether a link is attached.
    pub fn is_connected(&self) -> bool {
        self.wire.is_some()
    }

    /// The attached link (firmware pushes `rx` writes into a `PeripheralLink` through this).
    pub fn link_mut(&mut self) -> Option<&mut L> {
        self.wire.as_mut().map(|w| &mut w.link)
    }

    /// The attached link.
    pub fn link(&self) -> Option<&L> {
        self.wire.as_ref().map(|w| &w.link)
    }

    /// Bytes held in reassembly (a partial frame and a partial envelope): bounded by
    /// [`DriverConfig::max_frame`] plus [`DriverConfig::max_envelope_len`].
    pub fn buffered(&self) -> usize {
        self.wire.as_ref().map_or(0, |w| w.reasm.buffered()) + self.transfers.buffered()
    }

    /// Packets fragmented but not yet accepted by the link.
    pub fn has_pending_output(&self) -> bool {
        self.wire.as_ref().is_some_and(|w| !w.outbox.is_empty())
    }

    /// Sends a session message to the phone.
    pub fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), Error> {
        let wire = self.wire.as_mut().ok_or(Error::NotConnected)?;
        let frame = self.toy.send(msg, now).map_err(|e| match e {
            toyseal_pairing::Error::Closed => Error::NoSession,
            e => Error::Protocol(e),
        })?;
        wire.queue(&frame)?;
        wire.flush()
    }

    /// Starts delivering `envelope` to the phone in session; returns its transfer id. The
    /// driver sends it in chunks as acknowledgements come back and reports
    /// [`ToyDriverEvent::EnvelopeDelivered`].
    pub fn send_envelope(&mut self, envelope: Vec<u8>, now: Timestamp) -> Result<u32, Error> {
        if self.wire.is_none() {
            return Err(Error::NotConnected);
        }
        if self.toy.session().is_none() {
            return Err(Error::NoSession);
        }
        let id = self.transfers.start(envelope)?;
        self.pump(now)?;
        Ok(id)
    }

    /// Processes what arrived, runs timers, sends replies; returns the events.
    pub fn poll(&mut self, now: Timestamp, rng: &mut impl CryptoRng) -> Vec<ToyDriverEvent> {
        let mut events = Vec::new();
        let timers = self.toy.poll(now);
        let r = self
            .absorb(timers, now, &mut events)
            .and_then(|()| self.step(now, rng, &mut events));
        if let Err(e) = r {
            events.extend(self.disconnect());
            events.push(ToyDriverEvent::TornDown(e));
        }
        events
    }

    fn step(
        &mut self,
        now: Timestamp,
        rng: &mut impl CryptoRng,
        events: &mut Vec<ToyDriverEvent>,
    ) -> Result<(), Error> {
        loop {
            let Some(wire) = self.wire.as_mut() else {
                return Ok(());
            };
            if !wire.link.is_connected() {
                return Err(Error::Disconnected);
            }
            let Some(frame) = wire.next_frame(now)? else {
                break;
            };
            let out = self.toy.handle(&frame, now, rng);
            self.absorb(out, now, events)?;
        }
        self.pump(now)
    }

    fn absorb(
        &mut self,
        out: toyseal_pairing::ToyOutput,
        now: Timestamp,
        events: &mut Vec<ToyDriverEvent>,
    ) -> Result<(), Error> {
        if let Some(wire) = self.wire.as_mut() {
            for reply in &out.replies {
                wire.queue(reply)?;
            }
        }
        for ev in out.events {
            match ev {
                ToyEvent::Message(SessionMessage::EnvelopeChunk {
                    transfer,
                    total,
                    offset,
                    data,
                }) => {
                    let received = Incoming::on_chunk(
                        &mut self.transfers.incoming,
                        self.config.max_envelope_len,
                        transfer,
                        total,
                        offset,
                        data,
                    )?;
                    let ack = match received {
                        Received::Partial(ack) => ack,
                        Received::Complete(ack, transfer, envelope) => {
                            events.push(ToyDriverEvent::EnvelopeReceived { transfer, envelope });
                            ack
                        }
                    };
                    self.send(&ack, now)?;
                }
                ToyEvent::Message(SessionMessage::EnvelopeAck { transfer, received }) => {
                    if let Some((transfer, len)) = self.transfers.on_ack(transfer, received)? {
                        events.push(ToyDriverEvent::EnvelopeDelivered { transfer, len });
                    }
                }
                ev @ (ToyEvent::SessionOpened(_) | ToyEvent::SessionClosed) => {
                    if let Some(transfer) = self.transfers.reset() {
                        events.push(ToyDriverEvent::EnvelopeAborted { transfer });
                    }
                    events.push(ToyDriverEvent::Toy(ev));
                }
                ev => events.push(ToyDriverEvent::Toy(ev)),
            }
        }
        Ok(())
    }

    fn pump(&mut self, now: Timestamp) -> Result<(), Error> {
        let Some(wire) = self.wire.as_mut() else {
            return Ok(());
        };
        if let Some(out) = self.transfers.outgoing.as_mut()
            && self.toy.session().is_some()
        {
            for msg in out.next_chunks(self.config.chunk_len, self.config.window) {
                let frame = self.toy.send(&msg, now)?;
                wire.queue(&frame)?;
            }
        }
        wire.flush()
    }
}

impl<S: FailureStore, L: Link> std::fmt::Debug for ToyDriver<S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToyDriver")
            .field("toy", &self.toy.identity().device_id())
            .field("connected", &self.is_connected())
            .field("session", &self.toy.session())
            .finish_non_exhaustive()
    }
}

/// What the phone's application must act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum PhoneDriverEvent {
    /// Pairing succeeded: pin this toy.
    Paired(PairedToy),
    /// Pairing failed (wrong code, not pairable, busy, tampering, wrong toy).
    PairingFailed(toyseal_pairing::Error),
    /// A session with the toy is open.
    SessionOpened(DeviceId),
    /// The session handshake failed (unknown to the toy, wrong key, tampering).
    SessionFailed(toyseal_pairing::Error),
    /// The session ended (tampering, idle, the toy closed it).
    SessionClosed,
    /// An authenticated session message other than envelope chunks and acknowledgements.
    Message(SessionMessage),
    /// A whole envelope arrived from the toy (complete and within the bound).
    EnvelopeReceived {
        /// The toy's transfer id.
        transfer: u32,
        /// The envelope bytes.
        envelope: Vec<u8>,
    },
    /// The toy acknowledged every byte of an envelope the phone sent.
    EnvelopeDelivered {
        /// The transfer id [`PhoneDriver::send_envelope`] returned.
        transfer: u32,
        /// Its length.
        len: usize,
    },
    /// The session ended before an outgoing envelope was acknowledged.
    EnvelopeAborted {
        /// Its transfer id.
        transfer: u32,
    },
    /// The connection was torn down (tampering, protocol violation, or the link dropped).
    TornDown(Error),
}

enum PhoneState {
    Idle,
    Pairing(Box<PhonePairing>),
    Handshake(Box<Initiator>),
    Session(Box<Session>),
}

/// Runs the phone's side (pairing with a code, Noise KK reconnects, session messages,
/// envelopes) over a link.
pub struct PhoneDriver<L: Link> {
    identity: DeviceIdentity,
    session_config: SessionConfig,
    config: DriverConfig,
    wire: Option<Wire<L>>,
    state: PhoneState,
    transfers: Transfers,
}

impl<L: Link> PhoneDriver<L> {
    /// A driver for the phone with `identity`, not connected.
    pub fn new(
        identity: DeviceIdentity,
        session_config: SessionConfig,
        config: DriverConfig,
    ) -> Self {
        Self {
            identity,
            session_config,
            config,
            wire: None,
            state: PhoneState::Idle,
            transfers: Transfers::default(),
        }
    }

    /// The phone's identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// Run over `link` from now on (a previous connection is dropped first).
    pub fn connect(&mut self, link: L) -> Vec<PhoneDriverEvent> {
        let events = self.disconnect();
        self.wire = Some(Wire::new(link, &self.config));
        events
    }

    /// Drops the connection and whatever ran on it.
    pub fn disconnect(&mut self) -> Vec<PhoneDriverEvent> {
        let mut events = Vec::new();
        if let Some(mut w) = self.wire.take() {
            w.link.disconnect();
        }
        match std::mem::replace(&mut self.state, PhoneState::Idle) {
            PhoneState::Idle => {}
            PhoneState::Pairing(_) => events.push(PhoneDriverEvent::PairingFailed(
                toyseal_pairing::Error::Closed,
            )),
            PhoneState::Handshake(_) => events.push(PhoneDriverEvent::SessionFailed(
                toyseal_pairing::Error::Closed,
            )),
            PhoneState::Session(_) => events.push(PhoneDriverEvent::SessionClosed),
        }
        if let Some(transfer) = self.transfers.reset() {
            events.push(PhoneDriverEvent::EnvelopeAborted { transfer });
        }
        events
    }

    /// Whether a link is attached.
    pub fn is_connected(&self) -> bool {
        self.wire.is_some()
    }

    /// The attached link.
    pub fn link(&self) -> Option<&L> {
        self.wire.as_ref().map(|w| &w.link)
    }

    /// The attached link, mutably.
    pub fn link_mut(&mut self) -> Option<&mut L> {
        self.wire.as_mut().map(|w| &mut w.link)
    }

    /// The open session, if any.
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            PhoneState::Session(s) if s.is_open() => Some(s),
            _ => None,
        }
    }

    /// Bytes held in reassembly (a partial frame and a partial envelope).
    pub fn buffered(&self) -> usize {
        self.wire.as_ref().map_or(0, |w| w.reasm.buffered()) + self.transfers.buffered()
    }

    /// Packets fragmented but not yet accepted by the link.
    pub fn has_pending_output(&self) -> bool {
        self.wire.as_ref().is_some_and(|w| !w.outbox.is_empty())
    }

    /// Starts pairing with the code from the toy's tag (sends PAIR_REQUEST). The result comes
    /// as [`PhoneDriverEvent::Paired`] or [`PhoneDriverEvent::PairingFailed`].
    pub fn pair(
        &mut self,
        code: &PairingCode,
        expect: PairingExpectations,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Error> {
        let wire = self.wire.as_mut().ok_or(Error::NotConnected)?;
        if !matches!(self.state, PhoneState::Idle) {
            return Err(Error::Busy);
        }
        let (pairing, frame) = PhonePairing::start(code, expect, rng)?;
        wire.queue(&frame)?;
        self.state = PhoneState::Pairing(Box::new(pairing));
        wire.flush()
    }

    /// Opens a Noise KK session with a pinned toy (sends HANDSHAKE_INIT; one round trip).
    pub fn open_session(
        &mut self,
        toy: &PublicIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Error> {
        let wire = self.wire.as_mut().ok_or(Error::NotConnected)?;
        if !matches!(self.state, PhoneState::Idle) {
            return Err(Error::Busy);
        }
        let (init, frame) = Initiator::start(&self.identity, toy, self.session_config, rng)?;
        wire.queue(&frame)?;
        self.state = PhoneState::Handshake(Box::new(init));
        wire.flush()
    }

    /// Sends a session message to the toy.
    pub fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), Error> {
        let wire = self.wire.as_mut().ok_or(Error::NotConnected)?;
        let PhoneState::Session(s) = &mut self.state else {
            return Err(Error::NoSession);
        };
        match s.seal(msg, now) {
            Ok(frame) => {
                wire.queue(&frame)?;
                wire.flush()
            }
            Err(e) => {
                self.state = PhoneState::Idle;
                self.transfers.reset();
                Err(match e {
                    toyseal_pairing::Error::Closed => Error::NoSession,
                    e => Error::Protocol(e),
                })
            }
        }
    }

    /// Ends the session in order (sends `Close`).
    pub fn close_session(&mut self, now: Timestamp) -> Result<(), Error> {
        self.send(&SessionMessage::Close { reason: 0 }, now)?;
        self.state = PhoneState::Idle;
        self.transfers.reset();
        Ok(())
    }

    /// Starts delivering `envelope` to the toy in session; returns its transfer id.
    pub fn send_envelope(&mut self, envelope: Vec<u8>, now: Timestamp) -> Result<u32, Error> {
        if self.wire.is_none() {
            return Err(Error::NotConnected);
        }
        if self.session().is_none() {
            return Err(Error::NoSession);
        }
        let id = self.transfers.start(envelope)?;
        self.pump(now)?;
        Ok(id)
    }

    /// Processes what arrived, runs timers, sends what is due; returns the events.
    pub fn poll(&mut self, now: Timestamp) -> Vec<PhoneDriverEvent> {
        let mut events = Vec::new();
        if let PhoneState::Session(s) = &mut self.state
            && s.poll(now).is_err()
        {
            self.state = PhoneState::Idle;
            self.session_ended(&mut events);
        }
        if let Err(e) = self.step(now, &mut events) {
            events.extend(self.disconnect());
            events.push(PhoneDriverEvent::TornDown(e));
        }
        events
    }

    fn session_ended(&mut self, events: &mut Vec<PhoneDriverEvent>) {
        if let Some(transfer) = self.transfers.reset() {
            events.push(PhoneDriverEvent::EnvelopeAborted { transfer });
        }
        events.push(PhoneDriverEvent::SessionClosed);
    }

    fn step(&mut self, now: Timestamp, events: &mut Vec<PhoneDriverEvent>) -> Result<(), Error> {
        loop {
            let Some(wire) = self.wire.as_mut() else {
                return Ok(());
            };
            if !wire.link.is_connected() {
                return Err(Error::Disconnected);
            }
            let Some(frame) = wire.next_frame(now)? else {
                break;
            };
            self.handle(&frame, now, events)?;
        }
        self.pump(now)
    }

    fn handle(
        &mut self,
        frame: &[u8],
        now: Timestamp,
        events: &mut Vec<PhoneDriverEvent>,
    ) -> Result<(), Error> {
        let Some(wire) = self.wire.as_mut() else {
            return Err(Error::NotConnected);
        };
        match std::mem::replace(&mut self.state, PhoneState::Idle) {
            PhoneState::Idle => {
                // Nothing is expected (a NOT_PAIRABLE answering an abort, say): ignore it.
            }
            PhoneState::Pairing(mut p) => match p.handle(&self.identity, frame) {
                Ok(PhoneStep::Send(next)) => {
                    wire.queue(&next)?;
                    self.state = PhoneState::Pairing(p);
                }
                Ok(PhoneStep::Paired(toy)) => events.push(PhoneDriverEvent::Paired(toy)),
                Ok(_) => events.push(PhoneDriverEvent::PairingFailed(
                    toyseal_pairing::Error::UnexpectedMessage,
                )),
                Err(e) => {
                    // Tell the toy we give up, unless it was the toy that refused.
                    if !matches!(
                        Frame::decode(frame),
                        Ok(Frame::Abort(_) | Frame::NotPairable)
                    ) {
                        wire.queue(&Frame::Abort(AbortReason::Authentication).encode())?;
                    }
                    events.push(PhoneDriverEvent::PairingFailed(e));
                }
            },
            PhoneState::Handshake(init) => match init.finish(frame, now) {
                Ok(session) => {
                    events.push(PhoneDriverEvent::SessionOpened(session.peer().device_id()));
                    self.state = PhoneState::Session(Box::new(session));
                }
                Err(e) => events.push(PhoneDriverEvent::SessionFailed(e)),
            },
            PhoneState::Session(mut s) => match s.open(frame, now) {
                Ok(SessionMessage::Close { .. }) => self.session_ended(events),
                Ok(SessionMessage::EnvelopeChunk {
                    transfer,
                    total,
                    offset,
                    data,
                }) => {
                    let received = Incoming::on_chunk(
                        &mut self.transfers.incoming,
                        self.config.max_envelope_len,
                        transfer,
                        total,
                        offset,
                        data,
                    )?;
                    let ack = match received {
                        Received::Partial(ack) => ack,
                        Received::Complete(ack, transfer, envelope) => {
                            events.push(PhoneDriverEvent::EnvelopeReceived { transfer, envelope });
                            ack
                        }
                    };
                    wire.queue(&s.seal(&ack, now)?)?;
                    self.state = PhoneState::Session(s);
                }
                Ok(SessionMessage::EnvelopeAck { transfer, received }) => {
                    if let Some((transfer, len)) = self.transfers.on_ack(transfer, received)? {
                        events.push(PhoneDriverEvent::EnvelopeDelivered { transfer, len });
                    }
                    self.state = PhoneState::Session(s);
                }
                Ok(msg) => {
                    events.push(PhoneDriverEvent::Message(msg));
                    self.state = PhoneState::Session(s);
                }
                // Tampering, replay, reordering: the session tore itself down.
                Err(_) => self.session_ended(events),
            },
        }
        Ok(())
    }

    fn pump(&mut self, now: Timestamp) -> Result<(), Error> {
        let Some(wire) = self.wire.as_mut() else {
            return Ok(());
        };
        if let (Some(out), PhoneState::Session(s)) =
            (self.transfers.outgoing.as_mut(), &mut self.state)
        {
            for msg in out.next_chunks(self.config.chunk_len, self.config.window) {
                wire.queue(&s.seal(&msg, now)?)?;
            }
        }
        wire.flush()
    }
}

impl<L: Link> std::fmt::Debug for PhoneDriver<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            PhoneState::Idle => "idle",
            PhoneState::Pairing(_) => "pairing",
            PhoneState::Handshake(_) => "handshake",
            PhoneState::Session(_) => "session",
        };
        f.debug_struct("PhoneDriver")
            .field("phone", &self.identity.device_id())
            .field("connected", &self.is_connected())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// Everything one [`run_until_idle`] call saw.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Pumped {
    /// The phone's events, in order.
    pub phone: Vec<PhoneDriverEvent>,
    /// The toy's events, in order.
    pub toy: Vec<ToyDriverEvent>,
    /// Poll rounds run.
    pub polls: usize,
    /// Virtual time that passed (with latency `l`, a round trip costs `2 l`).
    pub elapsed: Duration,
}

/// Poll rounds [`run_until_idle`] allows before it reports [`Error::Stalled`].
pub const MAX_PUMP_POLLS: usize = 200_000;

/// Polls both drivers over an in-memory link until nothing is in flight and nothing waits to
/// be sent, advancing the virtual clock to each next delivery (no sleeping).
pub fn run_until_idle<S: FailureStore, P: Link, T: Link>(
    phone: &mut PhoneDriver<P>,
    toy: &mut ToyDriver<S, T>,
    medium: &MemoryLink,
    rng: &mut impl CryptoRng,
) -> Result<Pumped, Error> {
    let start = medium.now();
    let mut pumped = Pumped::default();
    loop {
        if pumped.polls >= MAX_PUMP_POLLS {
            return Err(Error::Stalled(pumped.polls));
        }
        pumped.polls += 1;
        let now = medium.now();
        pumped.toy.extend(toy.poll(now, rng));
        pumped.phone.extend(phone.poll(now));
        if medium.in_flight() == 0 && !toy.has_pending_output() && !phone.has_pending_output() {
            break;
        }
        if let Some(t) = medium.next_delivery()
            && t > now
        {
            medium.advance_to(t);
        }
    }
    pumped.elapsed = medium.now().since(start);
    Ok(pumped)
}
