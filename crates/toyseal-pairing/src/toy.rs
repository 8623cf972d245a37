//! The toy's endpoint: one sans-IO object that owns the pairing window, at most one pairing
//! attempt and at most one session, and answers every frame. Outside a window, and before a
//! session exists, its only answer is NOT_PAIRABLE; it acts on no command without a session.

use crate::frame::{AbortReason, Frame};
use crate::message::SessionMessage;
use crate::pake::{MakerAttestation, ToyPairing};
use crate::session::{self, Session, SessionConfig};
use crate::window::{FailureStore, PairingWindow};
use crate::{Error, PairingCode, Timestamp};
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity};

/// Something the toy's application must act on.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToyEvent {
    /// A phone paired: persist it as pinned.
    Paired(PublicIdentity),
    /// A pairing attempt failed (wrong code, tampering, timeout, disconnect).
    PairingFailed,
    /// A pinned phone opened a session.
    SessionOpened(DeviceId),
    /// The session ended (idle, tampering, close).
    SessionClosed,
    /// An authenticated message from the phone in session.
    Message(SessionMessage),
}

/// Frames to send back, and events for the application.
#[derive(Debug, Default)]
pub struct ToyOutput {
    /// Frames for the phone, in order.
    pub replies: Vec<Vec<u8>>,
    /// Events, in order.
    pub events: Vec<ToyEvent>,
}

/// The toy's protocol endpoint.
pub struct Toy<S: FailureStore> {
    identity: DeviceIdentity,
    code: PairingCode,
    attestation: Option<MakerAttestation>,
    window: PairingWindow<S>,
    pairing: Option<ToyPairing>,
    pinned: Vec<PublicIdentity>,
    session: Option<Session>,
    config: SessionConfig,
}

impl<S: FailureStore> Toy<S> {
    /// A toy with its identity, the code printed on its tag, its optional maker attestation,
    /// the phones it has already pinned, and its window (with the persistent failure store).
    pub fn new(
        identity: DeviceIdentity,
        code: PairingCode,
        attestation: Option<MakerAttestation>,
        pinned: Vec<PublicIdentity>,
        window: PairingWindow<S>,
        config: SessionConfig,
    ) -> Self {
        Self {
            identity,
            code,
            attestation,
            window,
            pairing: None,
            pinned,
            session: None,
            config,
        }
    }

    /// The toy's identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// Phones pinned so far.
    pub fn pinned(&self) -> &[PublicIdentity] {
        &self.pinned
    }

    /// The window (failure counts, state).
    pub fn window(&self) -> &PairingWindow<S> {
        &self.window
    }

    /// The current session, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref().filter(|s| s.is_open())
    }

    /// The pairing button was held: open a window.
    pub fn press_pair_button(&mut self, now: Timestamp) -> Result<(), Error> {
        self.window.open(now)
    }

    /// Factory reset: forget pinned phones and the failure counter.
    pub fn factory_reset(&mut self) -> Result<(), Error> {
        self.pinned.clear();
        self.session = None;
        self.pairing = None;
        self.window.factory_reset()
    }

    /// The link dropped: an unfinished pairing attempt counts as failed; the session ends.
    pub fn disconnect(&mut self) -> ToyOutput {
        let mut out = ToyOutput::default();
        if self.pairing.take().is_some() {
            let _ = self.window.fail_attempt();
            out.events.push(ToyEvent::PairingFailed);
        }
        if self.session.take().is_some() {
            out.events.push(ToyEvent::SessionClosed);
        }
        out
    }

    /// Ends the current session only (e.g. the peer broke an application rule); pairing state
    /// and the link are untouched.
    pub fn close_session(&mut self) -> ToyOutput {
        let mut out = ToyOutput::default();
        if self.session.take().is_some() {
            out.events.push(ToyEvent::SessionClosed);
        }
        out
    }

    /// Timers: attempt timeout, window expiry, idle session.
    pub fn poll(&mut self, now: Timestamp) -> ToyOutput {
        let mut out = ToyOutput::default();
        let _ = self.window.poll(now);
        if self.pairing.is_some() && !self.window.attempt_in_progress() {
            self.pairing = None;
            out.events.push(ToyEvent::PairingFailed);
        }
        if let Some(s) = &mut self.session
            && s.poll(now).is_err()
        {
            self.session = None;
            out.events.push(ToyEvent::SessionClosed);
        }
        out
    }

    /// Sends a message to the phone in session.
    pub fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<Vec<u8>, Error> {
        let s = self.session.as_mut().ok_or(Error::Closed)?;
        let r = s.seal(msg, now);
        if r.is_err() {
            self.session = None;
        }
        r
    }

    /// Handles one reassembled frame from the phone.
    pub fn handle(&mut self, frame: &[u8], now: Timestamp, rng: &mut impl CryptoRng) -> ToyOutput {
        let mut out = self.poll(now);
        let decoded = Frame::decode(frame);
        match decoded {
            Ok(Frame::PairRequest { .. }) => self.on_pair_request(frame, now, rng, &mut out),
            Ok(Frame::PairConfirm { .. }) => self.on_pair_confirm(frame, &mut out),
            Ok(Frame::HandshakeInit { .. }) => {
                match session::respond(&self.identity, &self.pinned, frame, self.config, now, rng) {
                    Ok((session, reply)) => {
                        // A new handshake from a pinned phone replaces the current session.
                        if self.session.take().is_some() {
                            out.events.push(ToyEvent::SessionClosed);
                        }
                        out.events
                            .push(ToyEvent::SessionOpened(session.peer().device_id()));
                        self.session = Some(session);
                        out.replies.push(reply);
                    }
                    Err(_) => out.replies.push(Frame::NotPairable.encode()),
                }
            }
            Ok(Frame::Transport { .. }) => self.on_transport(frame, now, &mut out),
            Ok(Frame::Abort(_)) if self.pairing.is_some() => {
                self.pairing = None;
                let _ = self.window.fail_attempt();
                out.events.push(ToyEvent::PairingFailed);
            }
            Ok(_) | Err(_) => {
                // Garbage or a frame a phone never sends. In session, that is tampering.
                if self.session.take().is_some() {
                    out.events.push(ToyEvent::SessionClosed);
                } else {
                    out.replies.push(Frame::NotPairable.encode());
                }
            }
        }
        out
    }

    fn on_pair_request(
        &mut self,
        frame: &[u8],
        now: Timestamp,
        rng: &mut impl CryptoRng,
        out: &mut ToyOutput,
    ) {
        if self.pairing.is_some() {
            out.replies.push(Frame::Abort(AbortReason::Busy).encode());
            return;
        }
        match self.window.begin_attempt(now) {
            Ok(()) => {}
            Err(Error::Busy) => {
                out.replies.push(Frame::Abort(AbortReason::Busy).encode());
                return;
            }
            Err(_) => {
                out.replies.push(Frame::NotPairable.encode());
                return;
            }
        }
        match ToyPairing::respond(
            &self.identity,
            &self.code,
            self.attestation.as_ref(),
            frame,
            rng,
        ) {
            Ok((pairing, reply)) => {
                self.pairing = Some(pairing);
                out.replies.push(reply);
            }
            Err(_) => {
                let _ = self.window.fail_attempt();
                out.events.push(ToyEvent::PairingFailed);
                out.replies
                    .push(Frame::Abort(AbortReason::Authentication).encode());
            }
        }
    }

    fn on_pair_confirm(&mut self, frame: &[u8], out: &mut ToyOutput) {
        let Some(pairing) = self.pairing.take() else {
            out.replies.push(Frame::NotPairable.encode());
            return;
        };
        match pairing.confirm(frame) {
            Ok((phone, reply)) => {
                if self.window.succeed_attempt().is_err() {
                    out.replies
                        .push(Frame::Abort(AbortReason::Unexpected).encode());
                    return;
                }
                if !self
                    .pinned
                    .iter()
                    .any(|p| p.device_id() == phone.device_id())
                {
                    self.pinned.push(phone.clone());
                }
                out.events.push(ToyEvent::Paired(phone));
                out.replies.push(reply);
            }
            Err(_) => {
                let _ = self.window.fail_attempt();
                out.events.push(ToyEvent::PairingFailed);
                out.replies
                    .push(Frame::Abort(AbortReason::Authentication).encode());
            }
        }
    }

    fn on_transport(&mut self, frame: &[u8], now: Timestamp, out: &mut ToyOutput) {
        let Some(s) = self.session.as_mut() else {
            out.replies.push(Frame::NotPairable.encode());
            return;
        };
        match s.open(frame, now) {
            Ok(SessionMessage::Ping { nonce }) => {
                match s.seal(&SessionMessage::Pong { nonce }, now) {
                    Ok(f) => out.replies.push(f),
                    Err(_) => {
                        self.session = None;
                        out.events.push(ToyEvent::SessionClosed);
                    }
                }
            }
            Ok(SessionMessage::Close { .. }) => {
                self.session = None;
                out.events.push(ToyEvent::SessionClosed);
            }
            Ok(msg) => out.events.push(ToyEvent::Message(msg)),
            Err(_) => {
                self.session = None;
                out.events.push(ToyEvent::SessionClosed);
            }
        }
    }
}
