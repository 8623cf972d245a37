//! Sessions after pairing: Noise_KK_25519_ChaChaPoly_SHA256 (Noise Protocol Framework,
//! revision 34, §7.5 pattern KK) through `snow`, with both static keys pinned at pairing.
//! Mutual authentication and forward secrecy in one round trip; then ChaCha20-Poly1305
//! transport messages with implicit counters (§5.1), so any replayed, reordered, dropped or
//! injected frame fails to decrypt and tears the session down. Spec: docs/spec/pairing.md
//! §Sessions.

use crate::frame::{Frame, HANDSHAKE_LEN, PROTOCOL_VERSION};
use crate::message::SessionMessage;
use crate::rng::{Drawn, Resolver};
use crate::{Error, Timestamp};
use std::time::Duration;
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity};
use zeroize::Zeroizing;

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_KK_25519_ChaChaPoly_SHA256";
const PROLOGUE_CONTEXT: &[u8] = b"toyseal/v1/session";
/// Randomness one handshake side draws (its ephemeral key).
const HANDSHAKE_RANDOM: usize = 32;
/// Largest Noise message.
const MAX_NOISE_LEN: usize = 65_535;

/// Session limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Rekey (Noise §11.3) after this many messages in one direction (default 1024).
    pub rekey_every: u64,
    /// Tear the session down after this long without a message (default 5 min).
    pub idle_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            rekey_every: 1024,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// `"toyseal/v1/session" || version || initiator (phone) device id || responder (toy) device id`.
fn prologue(initiator: DeviceId, responder: DeviceId) -> Vec<u8> {
    let mut p = PROLOGUE_CONTEXT.to_vec();
    p.push(PROTOCOL_VERSION);
    p.extend_from_slice(initiator.as_bytes());
    p.extend_from_slice(responder.as_bytes());
    p
}

fn builder<'a>(
    secret: &'a Zeroizing<[u8; 32]>,
    remote: &'a PublicIdentity,
    prologue: &'a [u8],
    rng: &mut impl CryptoRng,
) -> Result<snow::Builder<'a>, Error> {
    let params: snow::params::NoiseParams = NOISE_PARAMS
        .parse()
        .map_err(|_| Error::Malformed("noise parameters"))?;
    let resolver = Box::new(Resolver::new(Drawn::new(rng, HANDSHAKE_RANDOM)));
    snow::Builder::with_resolver(params, resolver)
        .local_private_key(secret.as_ref())
        .and_then(|b| b.remote_public_key(remote.agreement_key().as_bytes()))
        .and_then(|b| b.prologue(prologue))
        .map_err(|_| Error::Authentication)
}

/// The phone's side of a reconnect: sends HANDSHAKE_INIT, expects HANDSHAKE_RESP.
pub struct Initiator {
    hs: snow::HandshakeState,
    peer: PublicIdentity,
    config: SessionConfig,
}

impl Initiator {
    /// Starts a session with the pinned `peer` (the toy); returns the HANDSHAKE_INIT frame.
    pub fn start(
        me: &DeviceIdentity,
        peer: &PublicIdentity,
        config: SessionConfig,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<u8>), Error> {
        let secret = me.expose_x25519_secret();
        let prologue = prologue(me.device_id(), peer.device_id());
        let mut hs = builder(&secret, peer, &prologue, rng)?
            .build_initiator()
            .map_err(|_| Error::Authentication)?;
        let mut msg = [0u8; HANDSHAKE_LEN];
        let n = hs
            .write_message(&[], &mut msg)
            .map_err(|_| Error::Authentication)?;
        if n != HANDSHAKE_LEN {
            return Err(Error::Malformed("handshake length"));
        }
        let frame = Frame::HandshakeInit {
            initiator: me.device_id(),
            noise: &msg,
        }
        .encode();
        Ok((
            Self {
                hs,
                peer: peer.clone(),
                config,
            },
            frame,
        ))
    }

    /// Completes the handshake with the toy's HANDSHAKE_RESP.
    pub fn finish(mut self, frame: &[u8], now: Timestamp) -> Result<Session, Error> {
        let noise = match Frame::decode(frame)? {
            Frame::HandshakeResp { noise } => noise,
            Frame::NotPairable => return Err(Error::UnknownPeer),
            _ => return Err(Error::UnexpectedMessage),
        };
        let mut payload = [0u8; 64];
        self.hs
            .read_message(noise, &mut payload)
            .map_err(|_| Error::Authentication)?;
        Session::new(self.hs, self.peer, self.config, now)
    }
}

/// The toy's side: answers a HANDSHAKE_INIT from one of its pinned peers.
pub fn respond(
    me: &DeviceIdentity,
    pinned: &[PublicIdentity],
    frame: &[u8],
    config: SessionConfig,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<(Session, Vec<u8>), Error> {
    let Frame::HandshakeInit { initiator, noise } = Frame::decode(frame)? else {
        return Err(Error::UnexpectedMessage);
    };
    let peer = pinned
        .iter()
        .find(|p| p.device_id() == initiator)
        .ok_or(Error::UnknownPeer)?;
    let secret = me.expose_x25519_secret();
    let prologue = prologue(initiator, me.device_id());
    let mut hs = builder(&secret, peer, &prologue, rng)?
        .build_responder()
        .map_err(|_| Error::Authentication)?;
    let mut payload = [0u8; 64];
    hs.read_message(noise, &mut payload)
        .map_err(|_| Error::Authentication)?;
    let mut msg = [0u8; HANDSHAKE_LEN];
    let n = hs
        .write_message(&[], &mut msg)
        .map_err(|_| Error::Authentication)?;
    if n != HANDSHAKE_LEN {
        return Err(Error::Malformed("handshake length"));
    }
    let session = Session::new(hs, peer.clone(), config, now)?;
    Ok((session, Frame::HandshakeResp { noise: &msg }.encode()))
}

/// An established, mutually authenticated session.
pub struct Session {
    transport: Option<snow::TransportState>,
    handshake_hash: [u8; 32],
    peer: PublicIdentity,
    config: SessionConfig,
    sent: u64,
    received: u64,
    last_activity: Timestamp,
    buf: Vec<u8>,
}

impl Session {
    fn new(
        hs: snow::HandshakeState,
        peer: PublicIdentity,
        config: SessionConfig,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let handshake_hash: [u8; 32] = hs
            .get_handshake_hash()
            .try_into()
            .map_err(|_| Error::Malformed("handshake hash length"))?;
        let transport = hs
            .into_transport_mode()
            .map_err(|_| Error::Authentication)?;
        Ok(Self {
            transport: Some(transport),
            handshake_hash,
            peer,
            config,
            sent: 0,
            received: 0,
            last_activity: now,
            buf: vec![0u8; MAX_NOISE_LEN],
        })
    }

    /// The authenticated peer.
    pub fn peer(&self) -> &PublicIdentity {
        &self.peer
    }

    /// The Noise handshake hash `h` of this session (Noise §11.2, channel binding): the same
    /// on both sides, different for every session (it covers both ephemeral keys). A recovery
    /// proof signs it (docs/spec/pairing.md §7.2).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// Whether the session is still usable.
    pub fn is_open(&self) -> bool {
        self.transport.is_some()
    }

    /// Tears the session down (keys dropped).
    pub fn close(&mut self) {
        self.transport = None;
    }

    /// Encrypts `msg` into a TRANSPORT frame.
    pub fn seal(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<Vec<u8>, Error> {
        self.poll(now)?;
        let plaintext = msg.encode()?;
        let t = self.transport.as_mut().ok_or(Error::Closed)?;
        let n = match t.write_message(&plaintext, &mut self.buf) {
            Ok(n) => n,
            Err(_) => {
                self.transport = None;
                return Err(Error::Closed);
            }
        };
        self.sent += 1;
        if self.sent.is_multiple_of(self.config.rekey_every) {
            t.rekey_outgoing();
        }
        self.last_activity = now;
        let noise = self.buf.get(..n).ok_or(Error::Closed)?;
        Ok(Frame::Transport { noise }.encode())
    }

    /// Decrypts a TRANSPORT frame. Any failure (tampering, replay, reordering, a wrong frame
    /// kind, a malformed message) tears the session down.
    pub fn open(&mut self, frame: &[u8], now: Timestamp) -> Result<SessionMessage, Error> {
        self.poll(now)?;
        let r = self.open_inner(frame, now);
        if r.is_err() {
            self.transport = None;
        }
        r
    }

    fn open_inner(&mut self, frame: &[u8], now: Timestamp) -> Result<SessionMessage, Error> {
        let Frame::Transport { noise } = Frame::decode(frame)? else {
            return Err(Error::UnexpectedMessage);
        };
        let t = self.transport.as_mut().ok_or(Error::Closed)?;
        let n = t
            .read_message(noise, &mut self.buf)
            .map_err(|_| Error::Authentication)?;
        self.received += 1;
        if self.received.is_multiple_of(self.config.rekey_every) {
            t.rekey_incoming();
        }
        self.last_activity = now;
        SessionMessage::decode(self.buf.get(..n).ok_or(Error::Closed)?)
    }

    /// Tears the session down after the idle timeout.
    pub fn poll(&mut self, now: Timestamp) -> Result<(), Error> {
        if self.transport.is_none() {
            return Err(Error::Closed);
        }
        if now.since(self.last_activity) > self.config.idle_timeout {
            self.transport = None;
            return Err(Error::Timeout);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer.device_id())
            .field("open", &self.is_open())
            .field("sent", &self.sent)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}
