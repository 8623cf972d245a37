//! Envelope delivery inside a session (docs/spec/pairing.md §8 Envelope delivery): the sender
//! cuts the envelope into `EnvelopeChunk`s at increasing offsets with a bounded window in
//! flight; the receiver appends them in order, acknowledges each with the bytes received so
//! far, refuses anything over its size bound, and reports the envelope only when all declared
//! bytes arrived. The session (Noise KK) already rejects replayed, reordered, dropped and
//! injected frames; these rules catch a buggy or hostile *authenticated* peer.

use crate::message::{MAX_CHUNK_DATA, SessionMessage};
use crate::session::Session;
use crate::{Error, Timestamp};

/// Sending side of one transfer. One framing path serves both sources: the window decides
/// which bytes go out next, the source says whether it holds them yet.
#[derive(Debug)]
pub(crate) struct Outgoing {
    transfer: u32,
    /// The envelope's length; fits a u32 (checked in `start`), so do all offsets below it.
    total: usize,
    source: Source,
    sent: usize,
    acked: usize,
}

/// Where an outgoing envelope's bytes come from.
#[derive(Debug)]
enum Source {
    /// The whole envelope in memory ([`Channel::start_envelope`]).
    Memory(Vec<u8>),
    /// The application supplies the bytes the window asks for ([`Channel::start_streamed`]);
    /// `staged` holds bytes from offset `start` that are not framed yet (less than a chunk
    /// once `next_chunks` ran), so a transfer holds O(window) bytes whatever its length.
    Streamed { start: usize, staged: Vec<u8> },
}

impl Source {
    /// Bytes `from..to` of the envelope, if the source holds all of them.
    fn piece(&self, from: usize, to: usize) -> Option<&[u8]> {
        match self {
            Source::Memory(data) => data.get(from..to),
            Source::Streamed { start, staged } => {
                staged.get(from.checked_sub(*start)?..to.checked_sub(*start)?)
            }
        }
    }

    /// Bytes before `to` are framed: a streamed source forgets them.
    fn framed(&mut self, to: usize) {
        if let Source::Streamed { start, staged } = self
            && let Some(n) = to.checked_sub(*start)
        {
            staged.drain(..n.min(staged.len()));
            *start = to;
        }
    }
}

/// Envelope bytes a streamed transfer needs from the application now: bytes
/// `offset..offset + len` of transfer `transfer` (what the window allows beyond what was
/// already supplied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvelopeRequest {
    /// The transfer id `send_envelope_streamed` returned.
    pub transfer: u32,
    /// The first byte wanted (every byte before it was supplied).
    pub offset: u32,
    /// How many bytes the window takes now (at least 1); supplying fewer is allowed.
    pub len: u32,
}

/// Why supplied envelope bytes were refused: the application broke the streamed delivery
/// contract. Nothing was consumed; the transfer goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeBytesError {
    /// No streamed transfer with this id is in progress (never started, already fully
    /// supplied and delivered, an in-memory transfer, or it ended with the session).
    #[error("no streamed transfer {0} is in progress")]
    UnknownTransfer(u32),
    /// The bytes do not start at the next byte the transfer needs.
    #[error("bytes at offset {got}, the transfer needs offset {expected}")]
    WrongOffset {
        /// The offset the transfer needs (the current request's).
        expected: u32,
        /// The offset supplied.
        got: u32,
    },
    /// More bytes than the window takes now (or than remain of the envelope).
    #[error("{got} bytes supplied, the window takes {allowed} now")]
    TooLong {
        /// The most the transfer takes at this offset now.
        allowed: u32,
        /// The number supplied.
        got: usize,
    },
    /// No bytes were supplied.
    #[error("no bytes supplied")]
    Empty,
}

impl Outgoing {
    pub fn new(transfer: u32, data: Vec<u8>) -> Result<Self, Error> {
        Self::start(transfer, data.len(), Source::Memory(data))
    }

    pub fn streamed(transfer: u32, total: u32) -> Result<Self, Error> {
        let source = Source::Streamed {
            start: 0,
            staged: Vec::new(),
        };
        Self::start(transfer, total as usize, source)
    }

    fn start(transfer: u32, total: usize, source: Source) -> Result<Self, Error> {
        if total == 0 {
            return Err(Error::Transfer("an envelope cannot be empty"));
        }
        if u32::try_from(total).is_err() {
            return Err(Error::TooLarge {
                len: total,
                limit: u32::MAX as usize,
            });
        }
        Ok(Self {
            transfer,
            total,
            source,
            sent: 0,
            acked: 0,
        })
    }

    pub fn id(&self) -> u32 {
        self.transfer
    }

    pub fn len(&self) -> usize {
        self.total
    }

    /// Envelope bytes this transfer holds in memory (the whole envelope for an in-memory
    /// source; at most the window for a streamed one).
    pub fn held(&self) -> usize {
        match &self.source {
            Source::Memory(data) => data.len(),
            Source::Streamed { staged, .. } => staged.len(),
        }
    }

    /// The end of the bytes the window allows in flight now.
    fn window_end(&self, chunk_len: usize, window: usize) -> usize {
        let chunk_len = chunk_len.clamp(1, MAX_CHUNK_DATA);
        self.acked
            .saturating_add(chunk_len.saturating_mul(window.max(1)))
            .min(self.total)
    }

    /// The bytes a streamed source needs now, if any.
    pub fn request(&self, chunk_len: usize, window: usize) -> Option<EnvelopeRequest> {
        let Source::Streamed { start, staged } = &self.source else {
            return None;
        };
        let supplied = start + staged.len();
        let end = self.window_end(chunk_len, window);
        // Invariant: offsets are below `total`, a u32 (checked in `start`).
        (supplied < end).then(|| EnvelopeRequest {
            transfer: self.transfer,
            offset: supplied as u32,
            len: (end - supplied) as u32,
        })
    }

    /// Takes bytes the application supplied for a streamed source.
    pub fn supply(
        &mut self,
        transfer: u32,
        offset: u32,
        bytes: &[u8],
        chunk_len: usize,
        window: usize,
    ) -> Result<(), EnvelopeBytesError> {
        let end = self.window_end(chunk_len, window);
        let Source::Streamed { start, staged } = &mut self.source else {
            return Err(EnvelopeBytesError::UnknownTransfer(transfer));
        };
        if transfer != self.transfer {
            return Err(EnvelopeBytesError::UnknownTransfer(transfer));
        }
        let supplied = *start + staged.len();
        // Invariant: offsets are at most `total`, a u32 (checked in `start`).
        if offset as usize != supplied {
            return Err(EnvelopeBytesError::WrongOffset {
                expected: supplied as u32,
                got: offset,
            });
        }
        if bytes.is_empty() {
            return Err(EnvelopeBytesError::Empty);
        }
        let allowed = end.saturating_sub(supplied);
        if bytes.len() > allowed {
            return Err(EnvelopeBytesError::TooLong {
                allowed: allowed as u32,
                got: bytes.len(),
            });
        }
        staged.extend_from_slice(bytes);
        Ok(())
    }
    /// The chunks the window allows now (and the source holds).
    pub fn next_chunks(&mut self, chunk_len: usize, window: usize) -> Vec<SessionMessage> {
        let end_of_window = self.window_end(chunk_len, window);
        let chunk_len = chunk_len.clamp(1, MAX_CHUNK_DATA);
        let mut out = Vec::new();
        while self.sent < end_of_window {
            let end = self.sent.saturating_add(chunk_len).min(self.total);
            let Some(piece) = self.source.piece(self.sent, end) else {
                // A streamed source has not supplied the whole chunk yet.
                break;
            };
            // Invariant: total fits u32 (checked in `start`), so do offsets.
            out.push(SessionMessage::EnvelopeChunk {
                transfer: self.transfer,
                total: self.total as u32,
                offset: self.sent as u32,
                data: piece.to_vec(),
            });
            self.sent = end;
            self.source.framed(end);
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
        Ok(self.acked == self.total)
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
                    return Err(Error::TooLarge {
                        len: total_len,
                        limit: max_len,
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
            match incoming.take() {
                Some(done) => Ok(Received::Complete(ack, transfer, done.buf)),
                None => Err(Error::Transfer("transfer state lost")),
            }
        } else {
            Ok(Received::Partial(ack))
        }
    }

    /// Bytes buffered so far.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Limits of envelope delivery, the same for both endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// Largest envelope accepted from the peer (default 4 MiB). A transfer declaring more is
    /// refused before any byte is buffered.
    pub max_envelope_len: usize,
    /// Envelope bytes per `EnvelopeChunk` (default 4096; at most [`MAX_CHUNK_DATA`]).
    pub chunk_len: usize,
    /// Chunks sent ahead of the peer's acknowledgements (default 4).
    pub window: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_envelope_len: 4 * 1024 * 1024,
            chunk_len: 4096,
            window: 4,
        }
    }
}

impl DeliveryConfig {
    /// With this envelope size bound.
    pub fn with_max_envelope_len(mut self, bytes: usize) -> Self {
        self.max_envelope_len = bytes;
        self
    }
    /// With this chunk size.
    pub fn with_chunk_len(mut self, bytes: usize) -> Self {
        self.chunk_len = bytes.clamp(1, MAX_CHUNK_DATA);
        self
    }
    /// With this many chunks in flight.
    pub fn with_window(mut self, chunks: usize) -> Self {
        self.window = chunks.max(1);
        self
    }
}

/// What happened to an envelope in transit, reported the same way by both endpoints.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeEvent {
    /// A whole envelope arrived from the peer (complete and within the bound; open it with
    /// the roster).
    Received {
        /// The sender's transfer id.
        transfer: u32,
        /// The envelope bytes.
        envelope: Vec<u8>,
    },
    /// The peer acknowledged every byte of an envelope this side sent.
    Delivered {
        /// The transfer id `send_envelope` returned.
        transfer: u32,
        /// Its length.
        len: usize,
    },
    /// The session ended before an outgoing envelope was acknowledged.
    Aborted {
        /// Its transfer id.
        transfer: u32,
    },
}

/// What one session frame meant, after the channel handled pings, chunks and acks itself.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Nothing for the application (a chunk of an unfinished envelope, an ack, a ping).
    Nothing,
    /// An application message.
    Message(SessionMessage),
    /// An envelope arrived, or was delivered.
    Envelope(EnvelopeEvent),
    /// The peer closed the session in order.
    Closed,
}

/// An open session with its envelope transfers (one per direction): the part of the protocol
/// both endpoints share once the handshake is done.
pub(crate) struct Channel {
    session: Session,
    config: DeliveryConfig,
    outgoing: Option<Outgoing>,
    incoming: Option<Incoming>,
    next_id: u32,
}

impl Channel {
    pub fn new(session: Session, config: DeliveryConfig) -> Self {
        Self {
            session,
            config,
            outgoing: None,
            incoming: None,
            next_id: 0,
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Bytes buffered for a partial incoming envelope.
    pub fn buffered(&self) -> usize {
        self.incoming.as_ref().map_or(0, Incoming::buffered)
    }

    /// The transfer id of an unacknowledged outgoing envelope (abandoned when the channel
    /// ends).
    pub fn pending_transfer(&self) -> Option<u32> {
        self.outgoing.as_ref().map(Outgoing::id)
    }

    /// The event to report when the channel ends with an outgoing envelope unacknowledged.
    pub fn abandoned(&self) -> Option<EnvelopeEvent> {
        self.pending_transfer()
            .map(|transfer| EnvelopeEvent::Aborted { transfer })
    }

    /// Seals one message into a TRANSPORT frame.
    pub fn seal(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<Vec<u8>, Error> {
        self.session.seal(msg, now)
    }

    /// Starts delivering `envelope`; chunks go out through [`Channel::pump`].
    pub fn start_envelope(&mut self, envelope: Vec<u8>) -> Result<u32, Error> {
        self.begin(|id| Outgoing::new(id, envelope))
    }

    /// Starts a streamed delivery of `total` bytes: the bytes come from the application
    /// through [`Channel::request`] and [`Channel::supply`].
    pub fn start_streamed(&mut self, total: u32) -> Result<u32, Error> {
        self.begin(|id| Outgoing::streamed(id, total))
    }

    fn begin(&mut self, make: impl FnOnce(u32) -> Result<Outgoing, Error>) -> Result<u32, Error> {
        if self.outgoing.is_some() {
            return Err(Error::TransferInProgress);
        }
        self.next_id = self.next_id.wrapping_add(1);
        self.outgoing = Some(make(self.next_id)?);
        Ok(self.next_id)
    }

    /// The bytes the streamed transfer in progress needs now, if any.
    pub fn request(&self) -> Option<EnvelopeRequest> {
        self.outgoing
            .as_ref()?
            .request(self.config.chunk_len, self.config.window)
    }

    /// Takes bytes for the streamed transfer and seals the chunks they complete.
    pub fn supply(
        &mut self,
        transfer: u32,
        offset: u32,
        bytes: &[u8],
        now: Timestamp,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let o = self
            .outgoing
            .as_mut()
            .ok_or(EnvelopeBytesError::UnknownTransfer(transfer))?;
        o.supply(
            transfer,
            offset,
            bytes,
            self.config.chunk_len,
            self.config.window,
        )?;
        self.pump(now, out)
    }

    /// Envelope bytes the outgoing transfer holds in memory.
    pub fn outgoing_held(&self) -> usize {
        self.outgoing.as_ref().map_or(0, Outgoing::held)
    }

    /// Seals the chunks the window allows now.
    pub fn pump(&mut self, now: Timestamp, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        if let Some(o) = self.outgoing.as_mut() {
            for msg in o.next_chunks(self.config.chunk_len, self.config.window) {
                out.push(self.session.seal(&msg, now)?);
            }
        }
        Ok(())
    }

    /// Opens one TRANSPORT frame. Any error means the channel is finished: the session tore
    /// itself down (tampering) or the peer broke the delivery rules.
    pub fn open(
        &mut self,
        frame: &[u8],
        now: Timestamp,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Inbound, Error> {
        Ok(match self.session.open(frame, now)? {
            SessionMessage::Ping { nonce } => {
                out.push(self.session.seal(&SessionMessage::Pong { nonce }, now)?);
                Inbound::Nothing
            }
            SessionMessage::Close { .. } => {
                self.session.close();
                Inbound::Closed
            }
            SessionMessage::EnvelopeChunk {
                transfer,
                total,
                offset,
                data,
            } => {
                let r = Incoming::on_chunk(
                    &mut self.incoming,
                    self.config.max_envelope_len,
                    transfer,
                    total,
                    offset,
                    data,
                )?;
                let (ack, inbound) = match r {
                    Received::Partial(ack) => (ack, Inbound::Nothing),
                    Received::Complete(ack, transfer, envelope) => {
                        let received = EnvelopeEvent::Received { transfer, envelope };
                        (ack, Inbound::Envelope(received))
                    }
                };
                out.push(self.session.seal(&ack, now)?);
                inbound
            }
            SessionMessage::EnvelopeAck { transfer, received } => {
                let o = self
                    .outgoing
                    .as_mut()
                    .ok_or(Error::Transfer("acknowledgement without a transfer"))?;
                if o.on_ack(transfer, received)? {
                    let len = o.len();
                    self.outgoing = None;
                    Inbound::Envelope(EnvelopeEvent::Delivered { transfer, len })
                } else {
                    self.pump(now, out)?;
                    Inbound::Nothing
                }
            }
            msg => Inbound::Message(msg),
        })
    }

    /// Runs the idle timer; an error means the session timed out.
    pub fn poll(&mut self, now: Timestamp) -> Result<(), Error> {
        self.session.poll(now)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("session", &self.session)
            .field("sending", &self.pending_transfer())
            .field("receiving", &self.buffered())
            .finish_non_exhaustive()
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
            Err(Error::TooLarge { .. })
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
