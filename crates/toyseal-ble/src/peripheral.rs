//! The toy's side of GATT: the [`GattPeripheral`] trait firmware implements on its BLE stack,
//! and [`PeripheralLink`], which turns it into a [`Link`] for [`crate::ToyDriver`].
//!
//! Firmware wiring (one connection at a time; docs/spec/gatt.md):
//!
//! | BLE stack event | call |
//! |---|---|
//! | a central connected (ATT MTU 23 so far) | `driver.connect(PeripheralLink::new(gatt, 23)?)` |
//! | ATT MTU exchanged | `driver.link_mut().map(|l| l.on_mtu_exchanged(mtu))` |
//! | CCCD of `tx` written | `driver.link_mut().map(|l| l.on_subscription_changed(enabled))` |
//! | `rx` written (Write Without Response) | `driver.link_mut().map(|l| l.on_rx_write(value))`, then `driver.poll(now, rng)` |
//! | `version` read | answer [`crate::gatt::VERSION_VALUE`] |
//! | notification buffers free again | `driver.poll(now, rng)` (sends what waited) |
//! | a timer tick (≈ 1 s) | `driver.poll(now, rng)` (window, idle session, stalled frames) |
//! | the central disconnected | `driver.disconnect()` |
//!
//! If `on_rx_write` returns an error, drop the connection: the packet could not be taken and
//! the stream of packets is broken.

use crate::Error;
use crate::gatt::clamp_mtu;
use crate::link::{Link, check_packet};
use std::collections::VecDeque;

/// What the toy's BLE stack must provide to the driver.
pub trait GattPeripheral {
    /// Sends `packet` as one notification of `tx` to the connected central. Returns
    /// [`Error::QueueFull`] if the stack has no buffer for it right now (the driver keeps it
    /// and retries on its next poll); any other error tears the connection down.
    fn notify_tx(&mut self, packet: &[u8]) -> Result<(), Error>;

    /// Terminates the connection to the central (the driver calls it when it tears down on
    /// tampering or a protocol violation).
    fn disconnect(&mut self);
}

/// Default number of `rx` packets buffered before the driver polls.
pub const DEFAULT_INBOX_CAPACITY: usize = 64;

/// A [`GattPeripheral`] connection as a [`Link`].
#[derive(Debug)]
pub struct PeripheralLink<P: GattPeripheral> {
    gatt: P,
    att_mtu: usize,
    subscribed: bool,
    connected: bool,
    sent_any: bool,
    inbox: VecDeque<Vec<u8>>,
    capacity: usize,
}

impl<P: GattPeripheral> PeripheralLink<P> {
    /// A central connected with `att_mtu` (23 until the exchange; larger values are clamped
    /// to 247).
    pub fn new(gatt: P, att_mtu: usize) -> Result<Self, Error> {
        Ok(Self {
            gatt,
            att_mtu: clamp_mtu(att_mtu)?,
            subscribed: false,
            connected: true,
            sent_any: false,
            inbox: VecDeque::new(),
            capacity: DEFAULT_INBOX_CAPACITY,
        })
    }

    /// Buffers at most `packets` `rx` writes between polls.
    pub fn with_inbox_capacity(mut self, packets: usize) -> Self {
        self.capacity = packets.max(1);
        self
    }

    /// The ATT MTU exchange finished. It must come before the toy's first notification
    /// (the phone exchanges before it subscribes); a later change is ignored, since packets
    /// already cut for the old MTU are in flight.
    pub fn on_mtu_exchanged(&mut self, att_mtu: usize) -> Result<(), Error> {
        let mtu = clamp_mtu(att_mtu)?;
        if !self.sent_any {
            self.att_mtu = mtu;
        }
        Ok(())
    }

    /// The central wrote the CCCD of `tx`.
    pub fn on_subscription_changed(&mut self, notify: bool) {
        self.subscribed = notify;
    }

    /// The central wrote `value` to `rx`.
    pub fn on_rx_write(&mut self, value: &[u8]) -> Result<(), Error> {
        if !self.connected {
            return Err(Error::Disconnected);
        }
        check_packet(value, self.att_mtu)?;
        if self.inbox.len() >= self.capacity {
            return Err(Error::Overflow);
        }
        self.inbox.push_back(value.to_vec());
        Ok(())
    }

    /// The central disconnected.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.inbox.clear();
    }

    /// Whether the central enabled notifications on `tx`.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// The firmware's GATT object.
    pub fn gatt(&self) -> &P {
        &self.gatt
    }

    /// The firmware's GATT object, mutably.
    pub fn gatt_mut(&mut self) -> &mut P {
        &mut self.gatt
    }
}

impl<P: GattPeripheral> Link for PeripheralLink<P> {
    fn att_mtu(&self) -> usize {
        self.att_mtu
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), Error> {
        if !self.connected {
            return Err(Error::Disconnected);
        }
        check_packet(packet, self.att_mtu)?;
        if !self.subscribed {
            return Err(Error::NotSubscribed);
        }
        self.gatt.notify_tx(packet)?;
        self.sent_any = true;
        Ok(())
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if !self.connected {
            return Err(Error::Disconnected);
        }
        Ok(self.inbox.pop_front())
    }

    fn is_connected(&self) -> bool {
        self.connected
    }

    fn disconnect(&mut self) {
        if self.connected {
            self.connected = false;
            self.inbox.clear();
            self.gatt.disconnect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct FakeGatt {
        notified: Vec<Vec<u8>>,
        room: usize,
        disconnects: usize,
    }

    impl GattPeripheral for FakeGatt {
        fn notify_tx(&mut self, packet: &[u8]) -> Result<(), Error> {
            if self.room == 0 {
                return Err(Error::QueueFull);
            }
            self.room -= 1;
            self.notified.push(packet.to_vec());
            Ok(())
        }
        fn disconnect(&mut self) {
            self.disconnects += 1;
        }
    }

    #[test]
    fn adapter_rules() {
        let gatt = FakeGatt {
            room: 1,
            ..Default::default()
        };
        let mut l = PeripheralLink::new(gatt, 23)
            .unwrap()
            .with_inbox_capacity(2);
        assert!(matches!(l.send(&[1]), Err(Error::NotSubscribed)));
        l.on_mtu_exchanged(517).unwrap();
        assert_eq!(l.att_mtu(), 247);
        assert!(matches!(
            l.on_rx_write(&[0; 245]),
            Err(Error::PacketTooLarge { len: 245, max: 244 })
        ));
        l.on_rx_write(&[1]).unwrap();
        l.on_rx_write(&[2]).unwrap();
        assert!(matches!(l.on_rx_write(&[3]), Err(Error::Overflow)));
        assert_eq!(l.recv().unwrap(), Some(vec![1]));
        l.on_subscription_changed(true);
        l.send(&[7; 244]).unwrap();
        assert!(matches!(l.send(&[8]), Err(Error::QueueFull)));
        l.on_mtu_exchanged(23).unwrap();
        assert_eq!(l.att_mtu(), 247, "fixed once packets went out");
        assert!(matches!(
            PeripheralLink::new(FakeGatt::default(), 22),
            Err(Error::Mtu(22))
        ));
        l.disconnect();
        l.disconnect();
        assert_eq!(l.gatt().disconnects, 1);
        assert!(matches!(l.recv(), Err(Error::Disconnected)));
        assert_eq!(l.gatt().notified, vec![vec![7; 244]]);
    }
}
