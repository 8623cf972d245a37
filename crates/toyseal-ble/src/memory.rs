//! An in-memory GATT link for tests, simulations and demos: both ends in one process, a
//! virtual clock (latency without sleeping), bounded queues, byte counters, an eavesdropper
//! tap that records every packet, and an active man-in-the-middle hook.
//!
//! ```
//! use toyseal_ble::link::{Direction, Link};
//! use toyseal_ble::memory::{MemoryLink, MemoryLinkConfig};
//! use std::time::Duration;
//!
//! let (mut phone, mut toy) = MemoryLink::pair(
//!     MemoryLinkConfig::default().with_att_mtu(23).with_latency(Duration::from_millis(15)),
//! );
//! phone.send(b"\xc0\0\0\0\x01\x06")?;
//! assert_eq!(toy.recv()?, None, "still in the air");
//! let medium = phone.medium();
//! medium.advance(Duration::from_millis(15));
//! assert_eq!(toy.recv()?.as_deref(), Some(&b"\xc0\0\0\0\x01\x06"[..]));
//! assert_eq!(medium.tap().packets()[0].direction, Direction::PhoneToToy);
//! # Ok::<(), toyseal_ble::Error>(())
//! ```

use crate::Error;
use crate::gatt::clamp_mtu;
use crate::link::{Direction, Link, check_packet};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use toyseal_pairing::Timestamp;
use toyseal_pairing::frag::{Fragmenter, Reassembler};

/// Settings of an in-memory link.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryLinkConfig {
    /// Negotiated ATT MTU (23..=247; default 247).
    pub att_mtu: usize,
    /// One-way delay of every packet on the virtual clock (default 0).
    pub latency: Duration,
    /// Packets that may be in flight per direction before `send` says
    /// [`Error::QueueFull`] (default 2048).
    pub queue_capacity: usize,
}

impl Default for MemoryLinkConfig {
    fn default() -> Self {
        Self {
            att_mtu: 247,
            latency: Duration::ZERO,
            queue_capacity: 2048,
        }
    }
}

impl MemoryLinkConfig {
    /// With this ATT MTU (clamped to 247 like a real connection; below 23 is refused by
    /// [`MemoryLink::try_pair`]).
    pub fn with_att_mtu(mut self, att_mtu: usize) -> Self {
        self.att_mtu = att_mtu;
        self
    }
    /// With this one-way latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
    /// With this many packets in flight per direction at most.
    pub fn with_queue_capacity(mut self, packets: usize) -> Self {
        self.queue_capacity = packets.max(1);
        self
    }
}

/// A packet on the air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Which way it travels.
    pub direction: Direction,
    /// The packet (one ATT write or notification value).
    pub bytes: Vec<u8>,
}

impl Packet {
    /// A packet going `direction`.
    pub fn new(direction: Direction, bytes: Vec<u8>) -> Self {
        Self { direction, bytes }
    }
}

/// A packet the eavesdropper recorded: what an endpoint transmitted, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TappedPacket {
    /// Which way it went.
    pub direction: Direction,
    /// Virtual time of transmission.
    pub at: Timestamp,
    /// The packet bytes.
    pub bytes: Vec<u8>,
}

/// Everything the eavesdropper heard, in order (a snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tap {
    packets: Vec<TappedPacket>,
}

impl Tap {
    /// The recorded packets in transmission order.
    pub fn packets(&self) -> &[TappedPacket] {
        &self.packets
    }

    /// All bytes of one direction, concatenated.
    pub fn bytes(&self, direction: Direction) -> Vec<u8> {
        self.packets
            .iter()
            .filter(|p| p.direction == direction)
            .flat_map(|p| p.bytes.iter().copied())
            .collect()
    }

    /// All bytes both ways, concatenated in transmission order.
    pub fn all_bytes(&self) -> Vec<u8> {
        self.packets
            .iter()
            .flat_map(|p| p.bytes.iter().copied())
            .collect()
    }

    /// Whether `needle` occurs in any packet or across packet boundaries of one direction.
    pub fn contains(&self, needle: &[u8]) -> bool {
        if needle.is_empty() {
            return true;
        }
        [Direction::PhoneToToy, Direction::ToyToPhone]
            .iter()
            .any(|d| self.bytes(*d).windows(needle.len()).any(|w| w == needle))
    }

    /// The link frames of one direction, reassembled the way the receiver did (what an
    /// attacker replaying or analysing a recording works with).
    pub fn frames(&self, direction: Direction) -> Result<Vec<Vec<u8>>, Error> {
        let mut r = Reassembler::default();
        let mut frames = Vec::new();
        for p in self.packets.iter().filter(|p| p.direction == direction) {
            if let Some(f) = r.push(&p.bytes, p.at)? {
                frames.push(f);
            }
        }
        Ok(frames)
    }
}

/// Packet and byte counters, per direction, of what the endpoints transmitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    packets: [u64; 2],
    bytes: [u64; 2],
    dropped: u64,
}

impl LinkStats {
    /// Packets sent in `direction`.
    pub fn packets(&self, direction: Direction) -> u64 {
        self.packets[direction.index()]
    }
    /// Packet bytes sent in `direction` (ATT values, without the 3-byte ATT header).
    pub fn bytes(&self, direction: Direction) -> u64 {
        self.bytes[direction.index()]
    }
    /// Packet bytes both ways.
    pub fn total_bytes(&self) -> u64 {
        self.bytes[0] + self.bytes[1]
    }
    /// Packets both ways.
    pub fn total_packets(&self) -> u64 {
        self.packets[0] + self.packets[1]
    }
    /// ATT PDU bytes both ways: packet bytes plus the 3-byte ATT header of each write or
    /// notification (what the link layer carries; the goodput denominator).
    pub fn att_bytes(&self) -> u64 {
        self.total_bytes() + 3 * self.total_packets()
    }
    /// Packets the man-in-the-middle hook produced that did not fit a full queue.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The man-in-the-middle hook: sees each transmitted packet and returns what goes on the air
/// instead. Return it unchanged to forward, nothing to drop, changed bytes to modify, extra
/// packets (either direction) to inject or replay.
pub type MitmHook = Box<dyn FnMut(Packet) -> Vec<Packet> + Send>;

struct InFlight {
    deliver_at: Timestamp,
    bytes: Vec<u8>,
}

struct Medium {
    att_mtu: usize,
    latency: Duration,
    capacity: usize,
    now: Timestamp,
    connected: bool,
    queues: [VecDeque<InFlight>; 2],
    tap: Vec<TappedPacket>,
    stats: LinkStats,
    mitm: Option<MitmHook>,
}

/// The shared medium of one in-memory connection: the clock, the tap, the counters and the
/// hook. Cheap to clone; every clone is the same medium.
#[derive(Clone)]
pub struct MemoryLink {
    inner: Arc<Mutex<Medium>>,
}

/// One end of an in-memory connection; implements [`Link`].
pub struct MemoryEnd {
    medium: MemoryLink,
    sends: Direction,
}

impl MemoryLink {
    /// A connected pair: `(central end for the phone, peripheral end for the toy)`.
    /// An MTU below 23 is raised to 23; use [`MemoryLink::try_pair`] to have it refused.
    pub fn pair(config: MemoryLinkConfig) -> (MemoryEnd, MemoryEnd) {
        let att_mtu = clamp_mtu(config.att_mtu).unwrap_or(crate::gatt::MIN_ATT_MTU);
        Self::build(att_mtu, config)
    }

    /// Like [`MemoryLink::pair`], refusing an MTU below 23.
    pub fn try_pair(config: MemoryLinkConfig) -> Result<(MemoryEnd, MemoryEnd), Error> {
        let att_mtu = clamp_mtu(config.att_mtu)?;
        Ok(Self::build(att_mtu, config))
    }

    fn build(att_mtu: usize, config: MemoryLinkConfig) -> (MemoryEnd, MemoryEnd) {
        let medium = MemoryLink {
            inner: Arc::new(Mutex::new(Medium {
                att_mtu,
                latency: config.latency,
                capacity: config.queue_capacity.max(1),
                now: Timestamp::default(),
                connected: true,
                queues: [VecDeque::new(), VecDeque::new()],
                tap: Vec::new(),
                stats: LinkStats::default(),
                mitm: None,
            })),
        };
        (
            MemoryEnd {
                medium: medium.clone(),
                sends: Direction::PhoneToToy,
            },
            MemoryEnd {
                medium,
                sends: Direction::ToyToPhone,
            },
        )
    }

    fn lock(&self) -> MutexGuard<'_, Medium> {
        // A poisoned lock only means a hook panicked in a test; the data is still consistent
        // (every mutation completes before any call into the hook returns).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The virtual clock.
    pub fn now(&self) -> Timestamp {
        self.lock().now
    }

    /// Moves the virtual clock forward.
    pub fn advance(&self, d: Duration) {
        let mut m = self.lock();
        m.now = m.now.after(d);
    }

    /// Moves the virtual clock to `t` (never backwards).
    pub fn advance_to(&self, t: Timestamp) {
        let mut m = self.lock();
        m.now = m.now.max(t);
    }

    /// When the next packet in flight becomes deliverable, if any is in flight.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        let m = self.lock();
        m.queues
            .iter()
            .filter_map(|q| q.front().map(|p| p.deliver_at))
            .min()
    }

    /// Packets in flight, both ways.
    pub fn in_flight(&self) -> usize {
        let m = self.lock();
        m.queues.iter().map(VecDeque::len).sum()
    }

    /// The negotiated ATT MTU.
    pub fn att_mtu(&self) -> usize {
        self.lock().att_mtu
    }

    /// A snapshot of everything the eavesdropper heard so far.
    pub fn tap(&self) -> Tap {
        Tap {
            packets: self.lock().tap.clone(),
        }
    }

    /// Forgets what the tap heard so far.
    pub fn clear_tap(&self) {
        self.lock().tap.clear();
    }

    /// Packet and byte counters.
    pub fn stats(&self) -> LinkStats {
        self.lock().stats
    }

    /// Installs the man-in-the-middle hook (replacing any previous one). It runs on every
    /// packet an endpoint transmits, after the tap recorded it.
    pub fn set_mitm(&self, hook: impl FnMut(Packet) -> Vec<Packet> + Send + 'static) {
        self.lock().mitm = Some(Box::new(hook));
    }

    /// Removes the hook: packets pass unchanged again.
    pub fn clear_mitm(&self) {
        self.lock().mitm = None;
    }

    /// Cuts the connection; both ends see [`Error::Disconnected`], packets in flight are lost.
    pub fn disconnect(&self) {
        let mut m = self.lock();
        m.connected = false;
        m.queues.iter_mut().for_each(VecDeque::clear);
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    fn transmit(&self, direction: Direction, packet: &[u8]) -> Result<(), Error> {
        let mut guard = self.lock();
        let m = &mut *guard;
        if !m.connected {
            return Err(Error::Disconnected);
        }
        check_packet(packet, m.att_mtu)?;
        if m.queues[direction.index()].len() >= m.capacity {
            return Err(Error::QueueFull);
        }
        m.tap.push(TappedPacket {
            direction,
            at: m.now,
            bytes: packet.to_vec(),
        });
        m.stats.packets[direction.index()] += 1;
        m.stats.bytes[direction.index()] += packet.len() as u64;
        let original = Packet::new(direction, packet.to_vec());
        let on_air = match m.mitm.as_mut() {
            Some(hook) => hook(original),
            None => vec![original],
        };
        let deliver_at = m.now.after(m.latency);
        for p in on_air {
            let q = &mut m.queues[p.direction.index()];
            if q.len() >= m.capacity {
                m.stats.dropped += 1;
                continue;
            }
            q.push_back(InFlight {
                deliver_at,
                bytes: p.bytes,
            });
        }
        Ok(())
    }

    fn receive(&self, direction: Direction) -> Result<Option<Vec<u8>>, Error> {
        let mut m = self.lock();
        if !m.connected {
            return Err(Error::Disconnected);
        }
        let now = m.now;
        let q = &mut m.queues[direction.index()];
        match q.front() {
            Some(p) if p.deliver_at <= now => Ok(q.pop_front().map(|p| p.bytes)),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Debug for MemoryLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.lock();
        f.debug_struct("MemoryLink")
            .field("att_mtu", &m.att_mtu)
            .field("now", &m.now)
            .field("connected", &m.connected)
            .field("stats", &m.stats)
            .finish_non_exhaustive()
    }
}

impl MemoryEnd {
    /// The shared medium (clock, tap, counters, hook).
    pub fn medium(&self) -> MemoryLink {
        self.medium.clone()
    }

    /// The direction this end transmits in.
    pub fn sends(&self) -> Direction {
        self.sends
    }
}

impl std::fmt::Debug for MemoryEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEnd")
            .field("sends", &self.sends)
            .finish_non_exhaustive()
    }
}

impl Link for MemoryEnd {
    fn att_mtu(&self) -> usize {
        self.medium.att_mtu()
    }
    fn send(&mut self, packet: &[u8]) -> Result<(), Error> {
        self.medium.transmit(self.sends, packet)
    }
    fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.medium.receive(self.sends.reverse())
    }
    fn is_connected(&self) -> bool {
        self.medium.is_connected()
    }
    fn disconnect(&mut self) {
        self.medium.disconnect();
    }
}

/// Adapts a *frame*-level man-in-the-middle to the packet hook: packets are reassembled per
/// direction, `f` sees each whole link frame and returns the frames to put on the air (either
/// direction), which are fragmented again with the MITM's own per-direction sequence numbers
/// so the endpoints' reassemblers accept them. Packets that do not reassemble are dropped.
/// Install it before the connection's first packet: it follows the sequence numbers from 0.
pub fn frame_mitm(
    att_mtu: usize,
    mut f: impl FnMut(Direction, Vec<u8>) -> Vec<(Direction, Vec<u8>)> + Send + 'static,
) -> Result<impl FnMut(Packet) -> Vec<Packet> + Send + 'static, Error> {
    let mut reassemblers = [Reassembler::default(), Reassembler::default()];
    let mut fragmenters = [Fragmenter::new(att_mtu)?, Fragmenter::new(att_mtu)?];
    Ok(move |p: Packet| {
        let frame = match reassemblers[p.direction.index()].push(&p.bytes, Timestamp::default()) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for (d, frame) in f(p.direction, frame) {
            if let Ok(packets) = fragmenters[d.index()].fragment(&frame) {
                out.extend(packets.into_iter().map(|b| Packet::new(d, b)));
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_order_bounds_and_counters() {
        let (mut a, mut b) = MemoryLink::pair(
            MemoryLinkConfig::default()
                .with_att_mtu(23)
                .with_latency(Duration::from_millis(10))
                .with_queue_capacity(2),
        );
        let m = a.medium();
        a.send(&[1; 20]).unwrap();
        a.send(&[2; 5]).unwrap();
        assert!(matches!(a.send(&[3]), Err(Error::QueueFull)));
        assert!(matches!(
            a.send(&[0; 21]),
            Err(Error::PacketTooLarge { len: 21, max: 20 })
        ));
        assert_eq!(b.recv().unwrap(), None);
        assert_eq!(m.next_delivery(), Some(Timestamp::from_millis(10)));
        m.advance(Duration::from_millis(10));
        assert_eq!(b.recv().unwrap(), Some(vec![1; 20]));
        assert_eq!(b.recv().unwrap(), Some(vec![2; 5]));
        assert_eq!(b.recv().unwrap(), None);
        assert_eq!(a.recv().unwrap(), None, "nothing came back");
        let s = m.stats();
        assert_eq!(s.packets(Direction::PhoneToToy), 2);
        assert_eq!(s.bytes(Direction::PhoneToToy), 25);
        assert_eq!(s.att_bytes(), 31);
        assert_eq!(m.tap().packets().len(), 2);
        b.disconnect();
        assert!(matches!(a.send(&[1]), Err(Error::Disconnected)));
        assert!(matches!(a.recv(), Err(Error::Disconnected)));
    }

    #[test]
    fn mitm_can_drop_modify_inject_and_reflect() {
        let (mut a, mut b) = MemoryLink::pair(MemoryLinkConfig::default());
        a.medium().set_mitm(|mut p| match p.bytes[0] {
            0 => vec![],
            1 => {
                p.bytes[0] = 9;
                vec![p]
            }
            _ => vec![
                p.clone(),
                p.clone(),
                Packet::new(p.direction.reverse(), p.bytes),
            ],
        });
        a.send(&[0]).unwrap();
        a.send(&[1]).unwrap();
        a.send(&[2]).unwrap();
        assert_eq!(b.recv().unwrap(), Some(vec![9]));
        assert_eq!(b.recv().unwrap(), Some(vec![2]));
        assert_eq!(b.recv().unwrap(), Some(vec![2]));
        assert_eq!(a.recv().unwrap(), Some(vec![2]));
        assert_eq!(
            a.medium().tap().packets().len(),
            3,
            "the tap hears the sender"
        );
    }

    #[test]
    fn frame_mitm_refragments() {
        let (mut a, mut b) = MemoryLink::pair(MemoryLinkConfig::default().with_att_mtu(23));
        a.medium().set_mitm(
            frame_mitm(23, |d, mut f| {
                f.push(0xee);
                vec![(d, f)]
            })
            .unwrap(),
        );
        let mut frag = Fragmenter::new(23).unwrap();
        for p in frag.fragment(&[5u8; 50]).unwrap() {
            a.send(&p).unwrap();
        }
        let mut r = Reassembler::default();
        let mut got = None;
        while let Some(p) = b.recv().unwrap() {
            got = r.push(&p, Timestamp::default()).unwrap().or(got);
        }
        let mut want = vec![5u8; 50];
        want.push(0xee);
        assert_eq!(got, Some(want));
    }
}
