//! Envelope delivery inside a session (docs/spec/gatt.md §Envelope delivery): the sender
//! cuts the envelope into `EnvelopeChunk`s at increasing offsets with a bounded window in
//! flight; the receiver appends them in order, acknowledges each with the bytes received so
//! far, refuses anything over its size bound, and reports the envelope only when all declared
//! bytes arrived. The session (Noise KK) already rejects replayed, reordered, dropped and
//! injected frames; these rules catch a buggy or hostile *authenticated* peer.

use crate::Error;
use toyseal_pairing::{MAX_CHUNK_DATA, SessionMessage};

/// Sending side of one transfer.
#[derive(Debug)]
pub(crate) struct Outgoing {
    transfer: u32,
    data: Vec<u8>,
    sent: usize,
    acked: usize,
}

impl Outgoing {
    pub fn new(transfer: u32, data: Vec<u8>) -> Result<Self, Error> {
        if data.is_empty() {
            return Err(Error::Transfer("an envelope cannot be empty"));
        }
        if u32::try_from(data.len()).is_err() {
            return Err(Error::EnvelopeTooLarge {
                len: data.len() as u64,
                limit: u64::from(u32::MAX),
            });
        }
        Ok(Self {
            transfer,
            data,
            sent: 0,
            acked: 0,
        })
    }

    pub fn id(&self) -> u32 {
        self.transfer
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// The chunks the window allows now.
    pub fn next_chunks(&mut self, chunk_len: usize, window: usize) -> Vec<SessionMessage> {
        let chunk_len = chunk_len.clamp(1, MAX_CHUNK_DATA);
        let limit = self
            .acked
            .saturating_add(chunk_len.saturating_mul(window.max(1)));
        let mut out = Vec::new();
        while self.sent < self.data.len() && self.sent < limit {
            let end = (self.sent + chunk_len).min(self.data.len());
            let Some(piece) = self.data.get(self.sent..end) else {
                break;
            };
            // Invariant: data.len() fits u32 (checked in `new`), so do offsets.
            out.push(SessionMessage::EnvelopeChunk {
                transfer: self.transfer,
                total: self.data.len() as u32,
                offset: self.sent as u32,
                data: piece.to_vec(),
            });
            self.sent = end;
        }
        out
    }

    /// An acknowledgement; `Ok(true)` when everything is acknowledged.
    pub fn on_ack(&mut self, transfer: u32, received: u32) -> Result<bool, Error> {
        let received = received as usize;
        if transfer != self.transfer {
            return Err(Error::Transfer("acknowledgement for another transfer"));
        }
        if received < self.acked || received > self.sent {
            return Err(Error::Transfer(
                "acknowledgement outside the bytes in flight",
            ));
        }
        self.acked = received;
        Ok(self.acked == self.data.len())
    }
}

/// Receiving side of one transfer.
#[derive(Debug)]
pub(crate) struct Incoming {
    transfer: u32,
    total: usize,
    buf: Vec<u8>,
}

/// What one chunk did.
pub(crate) enum Received {
    /// Acknowledge this many bytes; not complete yet.
    Partial(SessionMessage),
    /// Acknowledge, and here is the whole envelope.
    Complete(SessionMessage, u32, Vec<u8>),
}

impl Incoming {
    /// Takes a chunk; `incoming` is the transfer in progress, if any.
    pub fn on_chunk(
        incoming: &mut Option<Incoming>,
        max_len: usize,
        transfer: u32,
        total: u32,
        offset: u32,
        data: Vec<u8>,
    ) -> Result<Received, Error> {
        let r = Self::on_chunk_inner(incoming, max_len, transfer, total, offset, data);
        if r.is_err() {
            *incoming = None;
        }
        r
    }

    fn on_chunk_inner(
        incoming: &mut Option<Incoming>,
        max_len: usize,
        transfer: u32,
        total: u32,
        offset: u32,
        data: Vec<u8>,
    ) -> Result<Received, Error> {
        let total_len = total as usize;
        let cur = match incoming {
            None => {
                if offset != 0 {
                    return Err(Error::Transfer("a transfer must start at offset 0"));
                }
                if total_len > max_len {
                    return Err(Error::EnvelopeTooLarge {
                        len: u64::from(total),
                        limit: max_len as u64,
                    });
                }
                incoming.insert(Incoming {
                    transfer,
                    total: total_len,
                    // Grows with what actually arrives, never by the declared total alone.
                    buf: Vec::with_capacity(total_len.min(64 * 1024)),
                })
            }
            Some(cur) => cur,
        };
        if cur.transfer != transfer {
            return Err(Error::Transfer("a second transfer before the first ended"));
        }
        if cur.total != total_len {
            return Err(Error::Transfer("the declared total changed"));
        }
        if offset as usize != cur.buf.len() {
            return Err(Error::Transfer("chunk offset is not the next byte"));
        }
        if cur.buf.len() + data.len() > cur.total {
            return Err(Error::Transfer("chunk runs past the declared total"));
        }
        cur.buf.extend_from_slice(&data);
        let ack = SessionMessage::EnvelopeAck {
            transfer,
            // Invariant: buf.len() <= total, a u32.
            received: cur.buf.len() as u32,
        };
        if cur.buf.len() == cur.total {
            let done = incoming.take().map(|c| c.buf).unwrap_or_default();
            Ok(Received::Complete(ack, transfer, done))
        } else {
            Ok(Received::Partial(ack))
        }
    }

    /// Bytes buffered so far.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(inc: &mut Option<Incoming>, m: SessionMessage, max: usize) -> Result<Received, Error> {
        let SessionMessage::EnvelopeChunk {
            transfer,
            total,
            offset,
            data,
        } = m
        else {
            panic!("not a chunk")
        };
        Incoming::on_chunk(inc, max, transfer, total, offset, data)
    }

    #[test]
    fn round_trip_with_window() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut out = Outgoing::new(7, data.clone()).unwrap();
        let mut inc = None;
        let mut got = None;
        loop {
            let chunks = out.next_chunks(1000, 3);
            if chunks.is_empty() {
                break;
            }
            assert!(chunks.len() <= 3);
            for c in chunks {
                match feed(&mut inc, c, 1 << 20).unwrap() {
                    Received::Partial(SessionMessage::EnvelopeAck { transfer, received }) => {
                        assert!(!out.on_ack(transfer, received).unwrap())
                    }
                    Received::Complete(
                        SessionMessage::EnvelopeAck { transfer, received },
                        _,
                        env,
                    ) => {
                        assert!(out.on_ack(transfer, received).unwrap());
                        got = Some(env);
                    }
                    _ => panic!(),
                }
            }
        }
        assert_eq!(got, Some(data));
    }

    #[test]
    fn receiver_rules() {
        let chunk = |transfer, total, offset, n| SessionMessage::EnvelopeChunk {
            transfer,
            total,
            offset,
            data: vec![1; n],
        };
        let mut inc = None;
        assert!(matches!(
            feed(&mut inc, chunk(1, 2000, 0, 10), 1000),
            Err(Error::EnvelopeTooLarge { .. })
        ));
        assert!(feed(&mut inc, chunk(1, 100, 5, 10), 1000).is_err(), "gap");
        feed(&mut inc, chunk(1, 100, 0, 10), 1000).unwrap();
        assert!(
            feed(&mut inc, chunk(2, 100, 10, 10), 1000).is_err(),
            "other id"
        );
        assert!(inc.is_none(), "errors drop the partial envelope");
        feed(&mut inc, chunk(1, 100, 0, 10), 1000).unwrap();
        assert!(feed(&mut inc, chunk(1, 90, 10, 10), 1000).is_err(), "total");
        feed(&mut inc, chunk(1, 100, 0, 10), 1000).unwrap();
        assert!(
            feed(&mut inc, chunk(1, 100, 0, 10), 1000).is_err(),
            "replay"
        );
        let mut out = Outgoing::new(3, vec![0; 50]).unwrap();
        out.next_chunks(10, 2);
        assert!(out.on_ack(3, 30).is_err(), "acks more than sent");
        assert!(out.on_ack(4, 10).is_err(), "other transfer");
        assert!(Outgoing::new(1, vec![]).is_err());
    }
}
