//! Fragmentation of link frames into ATT-sized packets, and bounded reassembly
//! (docs/spec/pairing.md §Fragmentation). Like Matter's BTP, but only what a GATT write /
//! notification pair needs: GATT already delivers packets in order and without loss on a live
//! connection, so sequence numbers detect tampering and bugs rather than recover from loss.
//!
//! ```text
//! packet   = header (1) || [total_len (4, BE) if FIRST] || payload
//! header   = FIRST (0x80) | LAST (0x40) | seq (6 bits, +1 per packet mod 64, per direction)
//! ```

use crate::{Error, Timestamp};
use std::time::Duration;

/// Smallest ATT MTU (BLE 4.0 default).
pub const MIN_ATT_MTU: usize = 23;
/// Largest ATT MTU this profile negotiates (BLE 4.2 data length extension).
pub const MAX_ATT_MTU: usize = 247;
/// ATT header bytes in a write or notification (opcode + handle).
pub const ATT_OVERHEAD: usize = 3;
/// Default largest frame (a full Noise message plus its frame kind byte).
pub const DEFAULT_MAX_FRAME: usize = 65_536;
/// Default time allowed between two packets of one frame.
pub const DEFAULT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit on one whole frame, from its first packet to its last: a 65 536-byte frame
/// must arrive at 2.2 kB/s or more (one 20-byte packet per 7.5 ms connection event at the
/// smallest MTU does), so one slow frame cannot hold the toy's only connection.
pub const DEFAULT_FRAME_DEADLINE: Duration = Duration::from_secs(30);

const FIRST: u8 = 0x80;
const LAST: u8 = 0x40;
const SEQ_MASK: u8 = 0x3f;

/// Bytes of packet available per ATT write/notification at `att_mtu`.
pub fn packet_len(att_mtu: usize) -> Result<usize, Error> {
    if !(MIN_ATT_MTU..=MAX_ATT_MTU).contains(&att_mtu) {
        return Err(Error::Mtu(att_mtu));
    }
    Ok(att_mtu - ATT_OVERHEAD)
}

/// Splits frames into packets of at most `packet_len` bytes.
#[derive(Debug, Clone)]
pub struct Fragmenter {
    packet_len: usize,
    max_frame: usize,
    seq: u8,
}

impl Fragmenter {
    /// A fragmenter for the negotiated `att_mtu`.
    pub fn new(att_mtu: usize) -> Result<Self, Error> {
        Ok(Self {
            packet_len: packet_len(att_mtu)?,
            max_frame: DEFAULT_MAX_FRAME,
            seq: 0,
        })
    }

    /// Splits `frame` (1..=max bytes) into packets.
    pub fn fragment(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        if frame.is_empty() {
            return Err(Error::Fragment("empty frame"));
        }
        if frame.len() > self.max_frame {
            return Err(Error::TooLarge {
                len: frame.len(),
                limit: self.max_frame,
            });
        }
        let mut packets = Vec::with_capacity(frame.len() / (self.packet_len - 1) + 1);
        let first_room = self.packet_len - 5;
        let (head, mut rest) = frame.split_at(first_room.min(frame.len()));
        let mut p = Vec::with_capacity(self.packet_len);
        p.push(FIRST | if rest.is_empty() { LAST } else { 0 } | self.next_seq());
        // Invariant: frame.len() <= max_frame <= u32::MAX.
        p.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        p.extend_from_slice(head);
        packets.push(p);
        while !rest.is_empty() {
            let (now, later) = rest.split_at((self.packet_len - 1).min(rest.len()));
            let mut p = Vec::with_capacity(1 + now.len());
            p.push(if later.is_empty() { LAST } else { 0 } | self.next_seq());
            p.extend_from_slice(now);
            packets.push(p);
            rest = later;
        }
        Ok(packets)
    }

    fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = (self.seq + 1) & SEQ_MASK;
        s
    }
}

/// Reassembles packets into frames with bounded memory: at most `max_frame` bytes are ever
/// buffered, a frame that stalls longer than the timeout between two packets is dropped with
/// an error, and so is a frame not complete within the whole-frame deadline.
#[derive(Debug)]
pub struct Reassembler {
    max_frame: usize,
    timeout: Duration,
    deadline: Duration,
    seq: u8,
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    total: usize,
    buf: Vec<u8>,
    first_packet: Timestamp,
    last_packet: Timestamp,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME, DEFAULT_REASSEMBLY_TIMEOUT)
    }
}

impl Reassembler {
    /// A reassembler accepting frames up to `max_frame` bytes.
    pub fn new(max_frame: usize, timeout: Duration) -> Self {
        Self {
            max_frame,
            timeout,
            deadline: DEFAULT_FRAME_DEADLINE,
            seq: 0,
            partial: None,
        }
    }

    /// With this whole-frame deadline (first packet to last).
    pub fn with_frame_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.buf.len())
    }

    /// Takes one packet; returns a complete frame when its last packet arrives. Any error
    /// drops the partial frame; the caller should tear the connection down.
    pub fn push(&mut self, packet: &[u8], now: Timestamp) -> Result<Option<Vec<u8>>, Error> {
        let r = self.push_inner(packet, now);
        if r.is_err() {
            self.partial = None;
        }
        r
    }

    fn push_inner(&mut self, packet: &[u8], now: Timestamp) -> Result<Option<Vec<u8>>, Error> {
        self.poll(now)?;
        let (&header, body) = packet
            .split_first()
            .ok_or(Error::Fragment("empty packet"))?;
        if header & SEQ_MASK != self.seq {
            return Err(Error::Fragment("sequence number out of order"));
        }
        self.seq = (self.seq + 1) & SEQ_MASK;
        let body = if header & FIRST != 0 {
            if self.partial.is_some() {
                return Err(Error::Fragment("new frame before the previous one ended"));
            }
            let (len, rest) = body
                .split_first_chunk::<4>()
                .ok_or(Error::Fragment("first packet too short"))?;
            let total = u32::from_be_bytes(*len) as usize;
            if total == 0 {
                return Err(Error::Fragment("empty frame"));
            }
            if total > self.max_frame {
                return Err(Error::TooLarge {
                    len: total,
                    limit: self.max_frame,
                });
            }
            self.partial = Some(Partial {
                total,
                buf: Vec::with_capacity(total.min(4096)),
                first_packet: now,
                last_packet: now,
            });
            rest
        } else {
            if self.partial.is_none() {
                return Err(Error::Fragment("continuation without a first packet"));
            }
            if body.is_empty() {
                return Err(Error::Fragment("empty continuation"));
            }
            body
        };
        let partial = self
            .partial
            .as_mut()
            .ok_or(Error::Fragment("no frame in progress"))?;
        if partial.buf.len() + body.len() > partial.total {
            return Err(Error::Fragment("more bytes than the frame declared"));
        }
        partial.buf.extend_from_slice(body);
        partial.last_packet = now;
        let complete = partial.buf.len() == partial.total;
        match (header & LAST != 0, complete) {
            (true, true) => Ok(self.partial.take().map(|p| p.buf)),
            (false, false) => Ok(None),
            (true, false) => Err(Error::Fragment("last packet before the frame was complete")),
            (false, true) => Err(Error::Fragment("frame complete but packet not marked last")),
        }
    }

    /// Drops a frame whose packets stopped arriving, or that is taking too long as a whole.
    pub fn poll(&mut self, now: Timestamp) -> Result<(), Error> {
        if let Some(p) = &self.partial
            && (now.since(p.last_packet) > self.timeout
                || now.since(p.first_packet) > self.deadline)
        {
            self.partial = None;
            return Err(Error::Timeout);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip_any_frames_any_mtu(
            mtu in MIN_ATT_MTU..=MAX_ATT_MTU,
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..3000), 1..5),
        ) {
            let mut f = Fragmenter::new(mtu).unwrap();
            let mut r = Reassembler::default();
            for frame in &frames {
                let packets = f.fragment(frame).unwrap();
                let mut out = None;
                for p in &packets {
                    prop_assert!(p.len() <= mtu - ATT_OVERHEAD);
                    prop_assert!(out.is_none());
                    out = r.push(p, Timestamp::default()).unwrap();
                }
                prop_assert_eq!(out.as_ref(), Some(frame));
            }
        }
    }

    #[test]
    fn rejects_gaps_overruns_and_orphans() {
        let mut f = Fragmenter::new(23).unwrap();
        let packets = f.fragment(&[7u8; 100]).unwrap();
        let now = Timestamp::default();
        // Drop a packet: sequence gap.
        let mut r = Reassembler::default();
        r.push(&packets[0], now).unwrap();
        assert!(matches!(r.push(&packets[2], now), Err(Error::Fragment(_))));
        // Continuation first.
        let mut r = Reassembler::default();
        let mut orphan = packets[1].clone();
        orphan[0] &= !SEQ_MASK;
        assert!(r.push(&orphan, now).is_err());
        // Declared length over the limit.
        let mut r = Reassembler::new(50, DEFAULT_REASSEMBLY_TIMEOUT);
        assert!(matches!(
            r.push(&packets[0], now),
            Err(Error::TooLarge { .. })
        ));
        // Stall.
        let mut r = Reassembler::default();
        r.push(&packets[0], now).unwrap();
        assert!(matches!(
            r.push(&packets[1], Timestamp::from_millis(6000)),
            Err(Error::Timeout)
        ));
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn mtu_bounds() {
        assert!(Fragmenter::new(22).is_err());
        assert!(Fragmenter::new(248).is_err());
        assert_eq!(packet_len(247).unwrap(), 244);
        assert_eq!(packet_len(23).unwrap(), 20);
    }
}
