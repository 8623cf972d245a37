//! The one driver: any `toyseal-pairing` [`Endpoint`] ([`Toy`] or [`Phone`]) over any
//! [`Link`].
//!
//! A driver owns the endpoint across connections and, while connected, one link with its
//! [`Fragmenter`] and [`Reassembler`]. Its `poll` reads every packet that arrived, reassembles
//! frames (bounded in size and in time), feeds them to the endpoint, fragments what the
//! endpoint wants sent, and returns the endpoint's events. It holds no protocol rule: a
//! fragmentation error, a frame that does not finish in time, or the endpoint asking for it
//! tears the connection down (docs/spec/gatt.md §5); the endpoint is told the link dropped.
//!
//! The driver never blocks and never reads a clock or an RNG of its own: time and randomness
//! come in as arguments (sans-IO), so firmware and tests drive it alike.

use crate::Error;
use crate::link::Link;
use crate::memory::MemoryLink;
use std::collections::VecDeque;
use std::time::Duration;
use toyseal_core::CryptoRng;
use toyseal_pairing::frag::{
    DEFAULT_FRAME_DEADLINE, DEFAULT_MAX_FRAME, DEFAULT_REASSEMBLY_TIMEOUT, Fragmenter, Reassembler,
};
use toyseal_pairing::{Endpoint, Phone, Timestamp, Toy};

/// Transport limits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Largest link frame reassembled (default 65 536).
    pub max_frame: usize,
    /// Longest pause between two packets of one frame (default 5 s).
    pub reassembly_timeout: Duration,
    /// Longest time one whole frame may take from its first packet (default 10 s), so one
    /// slow frame cannot hold the toy's only connection.
    pub frame_deadline: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            reassembly_timeout: DEFAULT_REASSEMBLY_TIMEOUT,
            frame_deadline: DEFAULT_FRAME_DEADLINE,
        }
    }
}

impl DriverConfig {
    /// With this whole-frame deadline.
    pub fn with_frame_deadline(mut self, deadline: Duration) -> Self {
        self.frame_deadline = deadline;
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
            reasm: Reassembler::new(config.max_frame, config.reassembly_timeout)
                .with_frame_deadline(config.frame_deadline),
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

/// What a driver reports: the endpoint's events, and teardowns.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverEvent<E> {
    /// From the protocol endpoint.
    Endpoint(E),
    /// The connection was torn down (a transport rule broken, the endpoint asked for it, or
    /// the link dropped).
    TornDown(Error),
}

/// A [`Toy`] over a link.
pub type ToyDriver<S, L> = Driver<Toy<S>, L>;
/// A [`Phone`] over a link.
pub type PhoneDriver<L> = Driver<Phone, L>;

/// Runs one protocol endpoint over a link.
pub struct Driver<E: Endpoint, L: Link> {
    endpoint: E,
    config: DriverConfig,
    wire: Option<Wire<L>>,
}

impl<E: Endpoint, L: Link> Driver<E, L> {
    /// A driver for `endpoint`, not connected.
    pub fn new(endpoint: E, config: DriverConfig) -> Self {
        Self {
            endpoint,
            config,
            wire: None,
        }
    }

    /// The protocol endpoint.
    pub fn endpoint(&self) -> &E {
        &self.endpoint
    }

    /// The protocol endpoint, to act on it (pair, open a session, send); what it queues goes
    /// out at the next [`Driver::poll`].
    pub fn endpoint_mut(&mut self) -> &mut E {
        &mut self.endpoint
    }

    /// Run over `link` from now on (a previous connection is dropped first, and its events
    /// returned).
    pub fn connect(&mut self, link: L) -> Vec<DriverEvent<E::Event>> {
        let events = self.disconnect();
        self.wire = Some(Wire::new(link, &self.config));
        events
    }

    /// Drops the connection; the endpoint ends whatever ran on it.
    pub fn disconnect(&mut self) -> Vec<DriverEvent<E::Event>> {
        if let Some(mut w) = self.wire.take() {
            w.link.disconnect();
        }
        self.endpoint.handle_disconnect();
        let mut events = Vec::new();
        self.drain_events(&mut events);
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

    /// Bytes held for unfinished messages: a partial frame (at most
    /// [`DriverConfig::max_frame`]) plus the endpoint's partial envelope (at most its
    /// `DeliveryConfig::max_envelope_len`).
    pub fn buffered(&self) -> usize {
        self.wire.as_ref().map_or(0, |w| w.reasm.buffered()) + self.endpoint.buffered()
    }

    /// Packets fragmented but not yet accepted by the link.
    pub fn has_pending_output(&self) -> bool {
        self.wire.as_ref().is_some_and(|w| !w.outbox.is_empty())
    }

    /// Runs timers, processes what arrived, sends what the endpoint queued; returns the
    /// events.
    pub fn poll(&mut self, now: Timestamp, rng: &mut impl CryptoRng) -> Vec<DriverEvent<E::Event>> {
        let mut events = Vec::new();
        self.endpoint.handle_timeout(now);
        if let Err(e) = self.step(now, rng, &mut events) {
            events.extend(self.disconnect());
            events.push(DriverEvent::TornDown(e));
        }
        events
    }

    fn drain_events(&mut self, events: &mut Vec<DriverEvent<E::Event>>) {
        while let Some(ev) = self.endpoint.poll_event() {
            events.push(DriverEvent::Endpoint(ev));
        }
    }

    fn transmit(&mut self) -> Result<(), Error> {
        let Some(wire) = self.wire.as_mut() else {
            // Not connected: nothing can go out.
            while self.endpoint.poll_transmit().is_some() {}
            return Ok(());
        };
        while let Some(frame) = self.endpoint.poll_transmit() {
            wire.queue(&frame)?;
        }
        wire.flush()
    }

    fn step(
        &mut self,
        now: Timestamp,
        rng: &mut impl CryptoRng,
        events: &mut Vec<DriverEvent<E::Event>>,
    ) -> Result<(), Error> {
        loop {
            self.transmit()?;
            self.drain_events(events);
            if let Some(why) = self.endpoint.poll_close() {
                return Err(Error::Protocol(why));
            }
            let Some(wire) = self.wire.as_mut() else {
                return Ok(());
            };
            if !wire.link.is_connected() {
                return Err(Error::Disconnected);
            }
            let Some(frame) = wire.next_frame(now)? else {
                return Ok(());
            };
            self.endpoint.handle_frame(&frame, now, rng);
        }
    }
}

impl<E: Endpoint + std::fmt::Debug, L: Link> std::fmt::Debug for Driver<E, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Everything one [`run_until_idle`] call saw.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pumped<P, T> {
    /// The central's (phone's) events, in order.
    pub phone: Vec<DriverEvent<P>>,
    /// The peripheral's (toy's) events, in order.
    pub toy: Vec<DriverEvent<T>>,
    /// Poll rounds run.
    pub polls: usize,
    /// Virtual time that passed (with latency `l`, a round trip costs `2 l`).
    pub elapsed: Duration,
}

/// Poll rounds [`run_until_idle`] allows before it reports [`Error::Stalled`].
pub const MAX_PUMP_POLLS: usize = 200_000;

impl<P, T> Default for Pumped<P, T> {
    fn default() -> Self {
        Self {
            phone: Vec::new(),
            toy: Vec::new(),
            polls: 0,
            elapsed: Duration::ZERO,
        }
    }
}

/// Polls both drivers over an in-memory link until nothing is in flight and nothing waits to
/// be sent, advancing the virtual clock to each next delivery (no sleeping).
pub fn run_until_idle<A: Endpoint, B: Endpoint, P: Link, T: Link>(
    phone: &mut Driver<A, P>,
    toy: &mut Driver<B, T>,
    medium: &MemoryLink,
    rng: &mut impl CryptoRng,
) -> Result<Pumped<A::Event, B::Event>, Error> {
    let start = medium.now();
    let mut pumped = Pumped::default();
    loop {
        if pumped.polls >= MAX_PUMP_POLLS {
            return Err(Error::Stalled(pumped.polls));
        }
        pumped.polls += 1;
        let now = medium.now();
        pumped.toy.extend(toy.poll(now, rng));
        pumped.phone.extend(phone.poll(now, rng));
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
