//! The narrow packet link every transport implements, and every driver runs over.
//!
//! A [`Link`] is one GATT connection seen from one side: it moves *packets* (the units of
//! `toyseal_pairing::frag`, one per ATT write or notification) in order, both ways. It is
//! sync and never blocks: `send` queues or refuses with [`Error::QueueFull`], `recv` returns
//! `Ok(None)` when nothing has arrived. That keeps the drivers sans-IO and lets the same driver
//! run over the in-memory link, a firmware GATT server or a btleplug central.

use crate::Error;
use crate::gatt::ATT_OVERHEAD;

/// Which way a packet travels. The phone is always the GATT central, the toy the peripheral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Phone (central) → toy (peripheral): ATT Write Without Response on `rx`.
    PhoneToToy,
    /// Toy (peripheral) → phone (central): ATT Handle Value Notification on `tx`.
    ToyToPhone,
}

impl Direction {
    /// The other way.
    pub fn reverse(self) -> Self {
        match self {
            Direction::PhoneToToy => Direction::ToyToPhone,
            Direction::ToyToPhone => Direction::PhoneToToy,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Direction::PhoneToToy => 0,
            Direction::ToyToPhone => 1,
        }
    }
}

/// One GATT connection, seen from one side, as an ordered packet pipe.
///
/// Contract for implementations:
/// - packets are delivered whole, in order, at most once; a lost packet is a broken link
///   ([`Error::Overflow`] or [`Error::Disconnected`]), never silently skipped;
/// - [`Link::att_mtu`] is fixed before the first packet is sent (the phone exchanges the MTU
///   before it subscribes and writes, docs/spec/gatt.md) and lies in 23..=247;
/// - `send` takes packets of at most `att_mtu − 3` bytes ([`Error::PacketTooLarge`]
///   otherwise) and either queues the packet or refuses it whole with [`Error::QueueFull`];
/// - after a disconnect (either side) `send` and `recv` return [`Error::Disconnected`].
pub trait Link {
    /// The negotiated ATT MTU, 23..=247.
    fn att_mtu(&self) -> usize;

    /// Largest packet `send` takes: `att_mtu − 3`.
    fn max_packet_len(&self) -> usize {
        self.att_mtu().saturating_sub(ATT_OVERHEAD)
    }

    /// Queues one packet for the peer. Never blocks.
    fn send(&mut self, packet: &[u8]) -> Result<(), Error>;

    /// The next packet from the peer, or `Ok(None)` if none has arrived yet. Never blocks.
    fn recv(&mut self) -> Result<Option<Vec<u8>>, Error>;

    /// Whether the connection is still up.
    fn is_connected(&self) -> bool;

    /// Ends the connection (the drivers do this when they tear down on tampering).
    fn disconnect(&mut self);
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn att_mtu(&self) -> usize {
        (**self).att_mtu()
    }
    fn max_packet_len(&self) -> usize {
        (**self).max_packet_len()
    }
    fn send(&mut self, packet: &[u8]) -> Result<(), Error> {
        (**self).send(packet)
    }
    fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        (**self).recv()
    }
    fn is_connected(&self) -> bool {
        (**self).is_connected()
    }
    fn disconnect(&mut self) {
        (**self).disconnect()
    }
}

/// Checks a packet against the link's limit.
pub(crate) fn check_packet(packet: &[u8], att_mtu: usize) -> Result<(), Error> {
    let max = att_mtu.saturating_sub(ATT_OVERHEAD);
    if packet.len() > max {
        return Err(Error::PacketTooLarge {
            len: packet.len(),
            max,
        });
    }
    if packet.is_empty() {
        return Err(Error::Protocol(toyseal_pairing::Error::Fragment(
            "empty packet",
        )));
    }
    Ok(())
}
