//! The phone's endpoint: pairing with a code (printed, or one-time from a guardian), Noise KK
//! sessions with a paired toy, envelope delivery, roster pushes, and opening a pairing window
//! for another phone. Sans-IO like [`crate::Toy`]; `toyseal-ble` only moves its frames.

use crate::delivery::{Channel, DeliveryConfig, EnvelopeEvent, EnvelopeRequest, Inbound};
use crate::endpoint::{Endpoint, Queues};
use crate::frame::{AbortReason, Frame};
use crate::message::{MAX_ROSTERS_PER_UPDATE, RecoveryAnswer, SessionMessage, ToyAnswer};
use crate::pake::{PairedToy, PairingExpectations, PhonePairing, PhoneStep};
use crate::session::{Initiator, Session, SessionConfig};
use crate::{Error, PairingCode, Sas, Timestamp};
use std::sync::Arc;
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity, Role};
use toyseal_roster::{RecoveryKey, SignedRoster};

/// Digits of the one-time codes a guardian's phone generates.
pub const ONE_TIME_CODE_DIGITS: usize = 10;

/// Failed pairings (wrong code, wrong toy) after which the phone refuses to try again until
/// the user starts over ([`Phone::reset_pairing_attempts`]). Each failure may have shown a
/// device posing as the toy one guess at the code (§5.5), so the phone limits them too.
pub const DEFAULT_MAX_FAILED_PAIRINGS: u32 = 3;

/// Something the phone's application must act on.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// The short authentication string of the pairing, known once PAIR_DONE verified (it
    /// comes just before [`PhoneEvent::Paired`]): show it; the user confirms it matches what
    /// the toy speaks or blinks before trusting the pairing, and if it does not, the app
    /// calls [`Phone::reject_sas`] and forgets the toy.
    Sas(Sas),
    /// Pairing succeeded: pin this toy. With the printed code the toy then asks its user to
    /// confirm at the toy ([`PhoneEvent::AwaitingConfirmation`] with no version) and admits
    /// this phone only after [`PhoneEvent::ToyAnswered`] `Confirmed`; any other answer means
    /// the toy recorded nothing (forget it, pair again).
    Paired(PairedToy),
    /// Pairing failed (wrong code, not pairable, busy, tampering, wrong toy, link dropped).
    PairingFailed(PhoneFailure),
    /// A session with the toy is open (the phone already pushed its rosters).
    SessionOpened(DeviceId),
    /// The session handshake failed (unknown to the toy, wrong key, tampering).
    SessionFailed(PhoneFailure),
    /// The session ended (tampering, idle, the toy closed it).
    SessionClosed,
    /// An authenticated application message from the toy (acks, pongs, commands' results).
    Message(SessionMessage),
    /// Roster versions the toy sent (its co-signed version 1, or a version newer than the
    /// phone's): verify them with `toyseal-roster` before use.
    Rosters(Vec<SignedRoster>),
    /// The toy acknowledged a pairing window this phone opened (`true`) or refused it.
    PairingWindowAck(bool),
    /// An envelope arrived, was delivered, or was abandoned with the session.
    Envelope(EnvelopeEvent),
    /// The toy waits for its user to confirm at the toy (a deliberate gesture there) for up
    /// to `seconds`: show "confirm on the toy". `version` is the roster version the toy would
    /// co-sign, or `None` for recording this phone as the founding guardian after a pairing
    /// with the printed code (then the toy admits this phone only once it confirmed).
    AwaitingConfirmation {
        /// The proposed roster version, or `None` for the founding pairing.
        version: Option<u64>,
        /// The confirmation window.
        seconds: u16,
    },
    /// What the toy did with the founding pairing (`version` `None`) or a roster version:
    /// confirmed (the co-signed version came in [`PhoneEvent::Rosters`]), or expired,
    /// declined, refused, a fork, busy. Anything but `Confirmed` is an error to show.
    ToyAnswered {
        /// The roster version, or `None` for the founding pairing.
        version: Option<u64>,
        /// The answer.
        answer: ToyAnswer,
    },
    /// What the toy made of this phone's recovery proof ([`Phone::prove_recovery`]): with
    /// `Proved` the toy's current roster version follows in [`PhoneEvent::Rosters`]; build
    /// the next version on it, sign it with the recovery key (and this phone's key if it adds
    /// this phone) and push it ([`Phone::push_rosters`]); the toy then asks its user to
    /// confirm ([`PhoneEvent::AwaitingConfirmation`], [`PhoneEvent::ToyAnswered`]).
    RecoveryAnswered(RecoveryAnswer),
    /// The toy's roster head (stated at the start of every session) has a version this phone
    /// holds with another hash: a fork of the family's chain (T39). Nothing was pushed; show
    /// it.
    RosterFork {
        /// The version number.
        version: u64,
        /// The toy's hash of it.
        toy: [u8; 32],
        /// This phone's hash of it.
        phone: [u8; 32],
    },
}

/// Why a pairing or handshake failed, as the phone's application sees it (coarse on purpose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneFailure {
    /// The toy is not pairable now, or does not know this phone.
    NotPairable,
    /// The toy is busy with another attempt.
    Busy,
    /// Key confirmation, a signature or decryption failed (wrong code, man in the middle).
    Authentication,
    /// The peer is not the expected toy (QR fingerprint, role, attestation, already owned).
    WrongPeer,
    /// The link dropped or the message did not fit the state.
    Interrupted,
}

impl PhoneFailure {
    fn of(e: &Error) -> Self {
        match e {
            Error::NotPairable | Error::UnknownPeer => Self::NotPairable,
            Error::Busy => Self::Busy,
            Error::Authentication | Error::Malformed(_) => Self::Authentication,
            Error::WrongPeer(_) | Error::Attestation => Self::WrongPeer,
            _ => Self::Interrupted,
        }
    }
}

enum PhoneState {
    Idle,
    Pairing(Box<PhonePairing>),
    Handshake(Box<Initiator>),
    Session(Box<Channel>),
}

/// The phone's protocol endpoint.
pub struct Phone {
    identity: Arc<DeviceIdentity>,
    session_config: SessionConfig,
    delivery: DeliveryConfig,
    max_failed_pairings: u32,
    failed_pairings: u32,
    rosters: Vec<SignedRoster>,
    awaiting_window_ack: bool,
    sas_pending: bool,
    founder_pending: bool,
    state: PhoneState,
    io: Queues<PhoneEvent>,
}

impl Phone {
    /// The phone with this (guardian) identity, with default limits.
    pub fn new(identity: Arc<DeviceIdentity>) -> Self {
        Self {
            identity,
            session_config: SessionConfig::default(),
            delivery: DeliveryConfig::default(),
            max_failed_pairings: DEFAULT_MAX_FAILED_PAIRINGS,
            failed_pairings: 0,
            rosters: Vec::new(),
            awaiting_window_ack: false,
            sas_pending: false,
            founder_pending: false,
            state: PhoneState::Idle,
            io: Queues::default(),
        }
    }

    /// With these session limits.
    pub fn with_session_config(mut self, config: SessionConfig) -> Self {
        self.session_config = config;
        self
    }

    /// With these envelope delivery limits.
    pub fn with_delivery(mut self, config: DeliveryConfig) -> Self {
        self.delivery = config;
        self
    }

    /// With this limit on failed pairings (at least 1).
    pub fn with_max_failed_pairings(mut self, attempts: u32) -> Self {
        self.max_failed_pairings = attempts.max(1);
        self
    }

    /// The phone's identity.
    pub fn identity(&self) -> &Arc<DeviceIdentity> {
        &self.identity
    }

    /// The roster versions this phone knows (oldest first, consecutive). At every session
    /// start, once the toy stated its head, it pushes the ones newer than the toy's, in
    /// batches of at most [`MAX_ROSTERS_PER_UPDATE`], so a removal reaches the toy through
    /// each guardian even if the server withholds it, and a toy any number of versions behind
    /// catches up.
    pub fn set_rosters(&mut self, rosters: Vec<SignedRoster>) {
        self.rosters = rosters;
    }

    /// The open session, if any.
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            PhoneState::Session(c) if c.session().is_open() => Some(c.session()),
            _ => None,
        }
    }

    /// Failed pairings counted against the phone's own limit.
    pub fn failed_pairings(&self) -> u32 {
        self.failed_pairings
    }

    /// The user started over (re-scanned the code): the phone may try again.
    pub fn reset_pairing_attempts(&mut self) {
        self.failed_pairings = 0;
    }

    /// The parent says the SAS the phone shows differs from the toy's (T37): sends ABORT(1)
    /// so that the toy undoes the pairing and counts a failed attempt, and counts one against
    /// this phone's own limit. Valid right after [`PhoneEvent::Paired`], before anything else
    /// is sent on the connection; the app must not pin the toy.
    pub fn reject_sas(&mut self) -> Result<(), Error> {
        if !std::mem::take(&mut self.sas_pending) || !matches!(self.state, PhoneState::Idle) {
            return Err(Error::UnexpectedMessage);
        }
        self.founder_pending = false;
        self.io
            .send(Frame::Abort(AbortReason::Authentication).encode());
        self.pairing_failed(&Error::Authentication);
        Ok(())
    }

    /// Starts pairing with the code from the toy's tag, or a guardian's one-time code (sends
    /// PAIR_REQUEST). [`PhoneEvent::Sas`] then [`PhoneEvent::Paired`] (both once PAIR_DONE
    /// verified) or [`PhoneEvent::PairingFailed`] follow.
    pub fn pair(
        &mut self,
        code: &PairingCode,
        expect: PairingExpectations,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Error> {
        if !matches!(self.state, PhoneState::Idle) {
            return Err(Error::Busy);
        }
        if self.failed_pairings >= self.max_failed_pairings {
            return Err(Error::PairingDisabled);
        }
        let (pairing, frame) = PhonePairing::start(code, expect, rng)?;
        self.sas_pending = false;
        self.founder_pending = false;
        self.io.send(frame);
        self.state = PhoneState::Pairing(Box::new(pairing));
        Ok(())
    }

    /// Opens a Noise KK session with a paired toy (sends HANDSHAKE_INIT; one round trip).
    pub fn open_session(
        &mut self,
        toy: &PublicIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Error> {
        if !matches!(self.state, PhoneState::Idle) {
            return Err(Error::Busy);
        }
        if toy.role() != Role::Toy {
            return Err(Error::WrongPeer("sessions are opened with a toy"));
        }
        let (init, frame) = Initiator::start(&self.identity, toy, self.session_config, rng)?;
        self.sas_pending = false;
        self.founder_pending = false;
        self.io.send(frame);
        self.state = PhoneState::Handshake(Box::new(init));
        Ok(())
    }

    /// Sends a session message to the toy.
    pub fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), Error> {
        let PhoneState::Session(c) = &mut self.state else {
            return Err(Error::Closed);
        };
        match c.seal(msg, now) {
            Ok(f) => {
                self.io.send(f);
                Ok(())
            }
            Err(e) => {
                self.end_session();
                Err(e)
            }
        }
    }

    /// Pushes roster versions (oldest first, consecutive) to the toy now: all of them, in
    /// consecutive RosterUpdate messages of at most [`MAX_ROSTERS_PER_UPDATE`] versions each
    /// (fewer when they do not fit one session message). The toy applies each in turn.
    pub fn push_rosters(&mut self, rosters: &[SignedRoster], now: Timestamp) -> Result<(), Error> {
        let mut rest = rosters;
        while !rest.is_empty() {
            let mut take = rest.len().min(MAX_ROSTERS_PER_UPDATE);
            loop {
                let msg = SessionMessage::RosterUpdate {
                    rosters: rest
                        .get(..take)
                        .unwrap_or_default()
                        .iter()
                        .map(SignedRoster::encode)
                        .collect(),
                };
                match msg.encode() {
                    // Too big for one message: fewer versions in this one.
                    Err(Error::TooLarge { .. }) if take > 1 => take -= 1,
                    _ => {
                        self.send(&msg, now)?;
                        break;
                    }
                }
            }
            rest = rest.get(take..).unwrap_or_default();
        }
        Ok(())
    }

    /// The toy stated its roster head: report a fork, or push what it lacks (§7.1).
    fn on_head(&mut self, version: u64, hash: [u8; 32], now: Timestamp) {
        let rosters = std::mem::take(&mut self.rosters);
        let mine = rosters
            .iter()
            .position(|r| r.proposal().version() == version);
        match mine.and_then(|i| rosters.get(i).map(|r| (i, r.hash()))) {
            Some((_, h)) if h != hash => self.io.event(PhoneEvent::RosterFork {
                version,
                toy: hash,
                phone: h,
            }),
            Some((i, _)) => {
                let _ = self.push_rosters(rosters.get(i + 1..).unwrap_or_default(), now);
            }
            None => {
                let newest = rosters.last().map(|r| r.proposal().version());
                if newest.is_some_and(|n| n < version) {
                    // Behind the toy: the newest one, so that the toy answers with its own.
                    let _ = self
                        .push_rosters(rosters.get(rosters.len() - 1..).unwrap_or_default(), now);
                } else {
                    let _ = self.push_rosters(&rosters, now);
                }
            }
        }
        self.rosters = rosters;
    }

    /// Opens a pairing window on the toy for one new phone: generates a fresh one-time code,
    /// sends it over the session, and returns it to show on this phone's screen.
    pub fn open_pairing_window(
        &mut self,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<PairingCode, Error> {
        let code = PairingCode::generate(ONE_TIME_CODE_DIGITS, rng);
        self.send(
            &SessionMessage::OpenPairingWindow { code: code.clone() },
            now,
        )?;
        self.awaiting_window_ack = true;
        Ok(code)
    }

    /// Proves the family's recovery key to the toy in this session (docs/spec/pairing.md §7.2):
    /// sends RecoveryProof, the key's signature over this session's Noise handshake hash
    /// (`RecoveryKey::sign_recovery_proof`), so it proves nothing in any other session. Valid
    /// in a session the toy admitted in its recovery window (after pairing with the printed
    /// code while it was open); [`PhoneEvent::RecoveryAnswered`] follows. The key is only
    /// borrowed: the app scans the printed key, calls this, and drops it.
    /// [`Error::Closed`] without a session.
    pub fn prove_recovery(&mut self, key: &RecoveryKey, now: Timestamp) -> Result<(), Error> {
        let hash = *self.session().ok_or(Error::Closed)?.handshake_hash();
        let signature = *key.sign_recovery_proof(&hash).as_bytes();
        self.send(&SessionMessage::RecoveryProof { signature }, now)
    }

    /// Ends the session in order (sends `Close`).
    pub fn close_session(&mut self, now: Timestamp) -> Result<(), Error> {
        self.send(&SessionMessage::Close { reason: 0 }, now)?;
        self.end_session();
        Ok(())
    }

    /// Starts delivering `envelope` to the toy in session; returns its transfer id.
    pub fn send_envelope(&mut self, envelope: Vec<u8>, now: Timestamp) -> Result<u32, Error> {
        let PhoneState::Session(c) = &mut self.state else {
            return Err(Error::Closed);
        };
        let id = c.start_envelope(envelope)?;
        let mut frames = Vec::new();
        let r = c.pump(now, &mut frames);
        self.io.transmit.extend(frames);
        r.map(|()| id)
    }

    /// Starts delivering an envelope of `total_len` bytes the application supplies piece by
    /// piece ([`Phone::envelope_request`], [`Phone::provide_envelope_bytes`]); the same
    /// contract as `Toy::send_envelope_streamed`.
    pub fn send_envelope_streamed(&mut self, total_len: u32) -> Result<u32, Error> {
        let PhoneState::Session(c) = &mut self.state else {
            return Err(Error::Closed);
        };
        c.start_streamed(total_len)
    }

    /// The envelope bytes the streamed delivery in progress needs now, if any.
    pub fn envelope_request(&self) -> Option<EnvelopeRequest> {
        match &self.state {
            PhoneState::Session(c) => c.request(),
            _ => None,
        }
    }

    /// Supplies bytes for the streamed delivery `transfer` (see `Toy::provide_envelope_bytes`).
    pub fn provide_envelope_bytes(
        &mut self,
        transfer: u32,
        offset: u32,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(), Error> {
        let PhoneState::Session(c) = &mut self.state else {
            return Err(Error::Closed);
        };
        let mut frames = Vec::new();
        let r = c.supply(transfer, offset, bytes, now, &mut frames);
        self.io.transmit.extend(frames);
        r
    }

    /// Handles one reassembled frame and returns what to send and what happened.
    pub fn handle(&mut self, frame: &[u8], now: Timestamp) -> PhoneOutput {
        self.on_frame(frame, now);
        self.drain()
    }

    /// Frames waiting to be sent and events, drained (for callers without a transport).
    pub fn drain(&mut self) -> PhoneOutput {
        PhoneOutput {
            frames: self.io.transmit.drain(..).collect(),
            events: self.io.events.drain(..).collect(),
        }
    }

    fn end_session(&mut self) {
        self.awaiting_window_ack = false;
        if let PhoneState::Session(c) = std::mem::replace(&mut self.state, PhoneState::Idle) {
            if let Some(e) = c.abandoned() {
                self.io.event(PhoneEvent::Envelope(e));
            }
            self.io.event(PhoneEvent::SessionClosed);
        }
    }

    fn pairing_failed(&mut self, e: &Error) {
        if matches!(
            e,
            Error::Authentication | Error::WrongPeer(_) | Error::Attestation | Error::Malformed(_)
        ) {
            self.failed_pairings = self.failed_pairings.saturating_add(1);
        }
        self.io
            .event(PhoneEvent::PairingFailed(PhoneFailure::of(e)));
    }

    fn on_frame(&mut self, frame: &[u8], now: Timestamp) {
        match std::mem::replace(&mut self.state, PhoneState::Idle) {
            // After PAIR_DONE with the printed code: the toy's user confirms (or not) at the toy.
            PhoneState::Idle if self.sas_pending || self.founder_pending => {
                match Frame::decode(frame) {
                    Ok(Frame::ConfirmationPending { seconds }) if self.sas_pending => {
                        self.founder_pending = true;
                        self.io.event(PhoneEvent::AwaitingConfirmation {
                            version: None,
                            seconds,
                        });
                    }
                    Ok(Frame::Confirmed) if self.founder_pending => {
                        self.founder_pending = false;
                        self.io.event(PhoneEvent::ToyAnswered {
                            version: None,
                            answer: ToyAnswer::Confirmed,
                        });
                    }
                    Ok(Frame::Abort(r @ (AbortReason::NotConfirmed | AbortReason::Declined)))
                        if self.founder_pending =>
                    {
                        self.founder_pending = false;
                        self.sas_pending = false;
                        let answer = if r == AbortReason::Declined {
                            ToyAnswer::Declined
                        } else {
                            ToyAnswer::Expired
                        };
                        self.io.event(PhoneEvent::ToyAnswered {
                            version: None,
                            answer,
                        });
                    }
                    _ => {}
                }
            }
            // Nothing is expected (a NOT_PAIRABLE answering an abort, say): ignore it.
            PhoneState::Idle => {}
            PhoneState::Pairing(mut p) => match p.handle(&self.identity, frame) {
                Ok(PhoneStep::Send(next)) => {
                    self.io.send(next);
                    self.state = PhoneState::Pairing(p);
                }
                Ok(PhoneStep::Paired(toy)) => {
                    if let Some(sas) = p.sas() {
                        self.io.event(PhoneEvent::Sas(sas));
                    }
                    self.sas_pending = true;
                    self.io.event(PhoneEvent::Paired(toy));
                }
                Err(e) => {
                    // Tell the toy we give up, unless it was the toy that refused.
                    if !matches!(
                        Frame::decode(frame),
                        Ok(Frame::Abort(_) | Frame::NotPairable)
                    ) {
                        self.io
                            .send(Frame::Abort(AbortReason::Authentication).encode());
                    }
                    self.pairing_failed(&e);
                }
            },
            PhoneState::Handshake(init) => match init.finish(frame, now) {
                Ok(session) => {
                    let toy = session.peer().device_id();
                    self.state =
                        PhoneState::Session(Box::new(Channel::new(session, self.delivery.clone())));
                    // The toy states its roster head next; the phone then brings the toy's
                    // allow-list up to date (§7.1).
                    self.io.event(PhoneEvent::SessionOpened(toy));
                }
                Err(e) => self
                    .io
                    .event(PhoneEvent::SessionFailed(PhoneFailure::of(&e))),
            },
            PhoneState::Session(mut c) => {
                let mut frames = Vec::new();
                let r = c.open(frame, now, &mut frames);
                self.io.transmit.extend(frames);
                self.state = PhoneState::Session(c);
                match r {
                    Ok(Inbound::Nothing) => {}
                    Ok(Inbound::Closed) => self.end_session(),
                    Ok(Inbound::Envelope(e)) => self.io.event(PhoneEvent::Envelope(e)),
                    Ok(Inbound::Message(SessionMessage::RosterUpdate { rosters })) => {
                        let decoded: Result<Vec<_>, _> =
                            rosters.iter().map(|r| SignedRoster::decode(r)).collect();
                        if let Ok(decoded) = decoded {
                            self.io.event(PhoneEvent::Rosters(decoded));
                        }
                    }
                    Ok(Inbound::Message(SessionMessage::RosterHead { version, hash })) => {
                        self.on_head(version, hash, now)
                    }
                    Ok(Inbound::Message(SessionMessage::RosterPending { version, seconds })) => {
                        self.io.event(PhoneEvent::AwaitingConfirmation {
                            version: Some(version),
                            seconds,
                        })
                    }
                    Ok(Inbound::Message(SessionMessage::RosterAnswer { version, answer })) => {
                        self.io.event(PhoneEvent::ToyAnswered {
                            version: Some(version),
                            answer,
                        })
                    }
                    Ok(Inbound::Message(SessionMessage::RecoveryAnswer { answer })) => {
                        self.io.event(PhoneEvent::RecoveryAnswered(answer))
                    }
                    Ok(Inbound::Message(SessionMessage::ControlAck { ok }))
                        if self.awaiting_window_ack =>
                    {
                        self.awaiting_window_ack = false;
                        self.io.event(PhoneEvent::PairingWindowAck(ok))
                    }
                    Ok(Inbound::Message(msg)) => self.io.event(PhoneEvent::Message(msg)),
                    Err(e) => {
                        let delivery_rule = e.breaks_delivery_rules();
                        self.end_session();
                        if delivery_rule {
                            self.io.close(e);
                        }
                    }
                }
            }
        }
    }
}

/// Frames to send and events (what [`Phone::handle`] returns).
#[derive(Debug, Default)]
pub struct PhoneOutput {
    /// Frames for the toy, in order.
    pub frames: Vec<Vec<u8>>,
    /// Events, in order.
    pub events: Vec<PhoneEvent>,
}

impl Endpoint for Phone {
    type Event = PhoneEvent;

    fn handle_frame(&mut self, frame: &[u8], now: Timestamp, _rng: &mut impl CryptoRng) {
        self.handle_timeout(now);
        self.on_frame(frame, now);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if let PhoneState::Session(c) = &mut self.state
            && c.poll(now).is_err()
        {
            self.end_session();
        }
    }

    fn handle_disconnect(&mut self) {
        // The toy can no longer learn of a rejection on this connection.
        self.sas_pending = false;
        self.founder_pending = false;
        match std::mem::replace(&mut self.state, PhoneState::Idle) {
            PhoneState::Idle => {}
            PhoneState::Pairing(_) => self
                .io
                .event(PhoneEvent::PairingFailed(PhoneFailure::Interrupted)),
            PhoneState::Handshake(_) => self
                .io
                .event(PhoneEvent::SessionFailed(PhoneFailure::Interrupted)),
            s @ PhoneState::Session(_) => {
                self.state = s;
                self.end_session();
            }
        }
        self.io.transmit.clear();
        self.io.close = None;
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.io.transmit.pop_front()
    }

    fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.io.events.pop_front()
    }

    fn poll_close(&mut self) -> Option<Error> {
        self.io.close.take()
    }

    fn buffered(&self) -> usize {
        match &self.state {
            PhoneState::Session(c) => c.buffered(),
            _ => 0,
        }
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            PhoneState::Idle => "idle",
            PhoneState::Pairing(_) => "pairing",
            PhoneState::Handshake(_) => "handshake",
            PhoneState::Session(_) => "session",
        };
        f.debug_struct("Phone")
            .field("id", &self.identity.device_id())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
