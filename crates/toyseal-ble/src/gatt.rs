//! The toyseal GATT profile (docs/spec/gatt.md): one primary service, three characteristics.
//!
//! | characteristic | UUID | properties | who writes | carries |
//! |---|---|---|---|---|
//! | `rx` | [`RX_UUID`] | Write Without Response | the phone (central) | one fragmentation packet per write |
//! | `tx` | [`TX_UUID`] | Notify (CCCD) | the toy (peripheral), as notifications | one fragmentation packet per notification |
//! | `version` | [`VERSION_UUID`] | Read | nobody (constant) | [`VERSION_VALUE`] |
//!
//! Nothing in GATT is trusted: BLE pairing/bonding is not used, and every byte on `rx`/`tx`
//! is authenticated (or refused) by the pairing and Noise layers of `toyseal-pairing`.

use crate::Error;
use std::fmt;
use toyseal_pairing::PROTOCOL_VERSION;
pub use toyseal_pairing::frag::{ATT_OVERHEAD, MAX_ATT_MTU, MIN_ATT_MTU};

/// A 128-bit Bluetooth UUID, held as the big-endian number of its text form.
///
/// BLE carries UUIDs little-endian on the air: use [`Uuid128::to_le_bytes`] for a GATT
/// database table in firmware, [`Uuid128::to_be_bytes`] for the order of the text form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid128(u128);

impl Uuid128 {
    /// The UUID whose text form is this number in hex.
    pub const fn from_u128(v: u128) -> Self {
        Self(v)
    }
    /// The UUID as a number.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
    /// Bytes in text order (RFC 9562).
    pub const fn to_be_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
    /// Bytes in on-air order (Bluetooth Core, Vol 3, Part B §2.5.1: little-endian).
    pub const fn to_le_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }
}

impl fmt::Display for Uuid128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            v >> 96,
            (v >> 80) & 0xffff,
            (v >> 64) & 0xffff,
            (v >> 48) & 0xffff,
            v & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Debug for Uuid128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid128({self})")
    }
}

/// The toyseal primary service. Toys advertise it (complete or incomplete list of 128-bit
/// service UUIDs) so phones can scan for it.
pub const SERVICE_UUID: Uuid128 = Uuid128::from_u128(0xf4570001_895a_4a01_90ca_59ef99f909ec);
/// `rx`: phone → toy, Write Without Response; each write is one packet.
pub const RX_UUID: Uuid128 = Uuid128::from_u128(0xf4570002_895a_4a01_90ca_59ef99f909ec);
/// `tx`: toy → phone, Notify; each notification is one packet.
pub const TX_UUID: Uuid128 = Uuid128::from_u128(0xf4570003_895a_4a01_90ca_59ef99f909ec);
/// `version`: Read; one byte, [`PROTOCOL_VERSION`].
pub const VERSION_UUID: Uuid128 = Uuid128::from_u128(0xf4570004_895a_4a01_90ca_59ef99f909ec);
/// The Client Characteristic Configuration Descriptor (16-bit UUID 0x2902) under `tx`.
pub const CCCD_UUID16: u16 = 0x2902;
/// CCCD value that enables notifications (little-endian 0x0001).
pub const CCCD_NOTIFY: [u8; 2] = [0x01, 0x00];
/// The value of the `version` characteristic.
pub const VERSION_VALUE: [u8; 1] = [PROTOCOL_VERSION];

/// One of the profile's characteristics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Characteristic {
    /// Phone → toy packets.
    Rx,
    /// Toy → phone packets.
    Tx,
    /// Protocol version.
    Version,
}

/// A GATT characteristic property this profile uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Property {
    /// Read (0x02).
    Read,
    /// Write Without Response (0x04).
    WriteWithoutResponse,
    /// Notify (0x10).
    Notify,
}

impl Characteristic {
    /// Every characteristic of the service.
    pub const ALL: [Characteristic; 3] = [
        Characteristic::Rx,
        Characteristic::Tx,
        Characteristic::Version,
    ];

    /// Its UUID.
    pub const fn uuid(self) -> Uuid128 {
        match self {
            Characteristic::Rx => RX_UUID,
            Characteristic::Tx => TX_UUID,
            Characteristic::Version => VERSION_UUID,
        }
    }

    /// Its one property (the profile sets exactly one on each).
    pub const fn property(self) -> Property {
        match self {
            Characteristic::Rx => Property::WriteWithoutResponse,
            Characteristic::Tx => Property::Notify,
            Characteristic::Version => Property::Read,
        }
    }
}

/// Largest packet one ATT write or notification carries at `att_mtu` (`ATT_MTU − 3`).
/// MTUs above 247 are clamped to 247: the profile never uses more.
pub fn max_packet_len(att_mtu: usize) -> Result<usize, Error> {
    Ok(clamp_mtu(att_mtu)? - ATT_OVERHEAD)
}

/// The ATT MTU this profile uses on a connection that negotiated `negotiated`: at most 247
/// (modern stacks often negotiate 517; a packet still has to fit the toy's buffers), and an
/// error below the BLE minimum of 23.
pub fn clamp_mtu(negotiated: usize) -> Result<usize, Error> {
    if negotiated < MIN_ATT_MTU {
        return Err(Error::Mtu(negotiated));
    }
    Ok(negotiated.min(MAX_ATT_MTU))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = include_str!("../../../docs/spec/gatt.md");

    #[test]
    fn uuids_are_distinct_random_v4_and_in_the_spec() {
        let all = [SERVICE_UUID, RX_UUID, TX_UUID, VERSION_UUID];
        for (i, a) in all.iter().enumerate() {
            // Version 4, variant 10xx (RFC 9562 §5.4).
            assert_eq!((a.as_u128() >> 76) & 0xf, 4, "{a}");
            assert_eq!((a.as_u128() >> 62) & 0x3, 2, "{a}");
            assert!(SPEC.contains(&a.to_string()), "{a} missing from gatt.md");
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            SERVICE_UUID.to_string(),
            "f4570001-895a-4a01-90ca-59ef99f909ec"
        );
        assert_eq!(RX_UUID.to_le_bytes()[15], 0xf4);
        assert_eq!(RX_UUID.to_be_bytes()[3], 0x02);
    }

    #[test]
    fn packet_sizes() {
        assert_eq!(max_packet_len(23).unwrap(), 20);
        assert_eq!(max_packet_len(185).unwrap(), 182);
        assert_eq!(max_packet_len(247).unwrap(), 244);
        assert_eq!(max_packet_len(517).unwrap(), 244);
        assert!(matches!(max_packet_len(22), Err(Error::Mtu(22))));
        assert_eq!(VERSION_VALUE, [1]);
        assert_eq!(Characteristic::Tx.property(), Property::Notify);
    }
}
