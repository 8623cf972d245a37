//! The toy's endpoint: one sans-IO object that owns the pairing window, at most one pairing
//! attempt, at most one session with its envelope transfers, and the family roster that is
//! its allow-list. Outside a window, and before a session exists, its only answer is
//! NOT_PAIRABLE; it acts on no command without a session (docs/spec/pairing.md §9).

use crate::delivery::{Channel, DeliveryConfig, EnvelopeEvent, EnvelopeRequest, Inbound};
use crate::endpoint::{Endpoint, Queues};
use crate::frame::{AbortReason, Frame};
use crate::message::{MAX_ROSTERS_PER_UPDATE, RecoveryAnswer, SessionMessage, ToyAnswer};
use crate::pake::{MakerAttestation, ToyConfirmed, ToyPairing};
use crate::session::{self, Session, SessionConfig};
use crate::window::{FailureStore, PairingWindow, WindowPolicy};
use crate::{Error, PairingCode, Sas, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity, Role, Signature};
use toyseal_roster::{Roster, SignedRoster};

/// `Close` reason the toy sends to a phone the roster no longer lists.
pub const CLOSE_REMOVED: u8 = 1;
/// `Close` reason the toy sends to the phone of a recovery session when the recovery window
/// closes before a recovery version listed that phone (docs/spec/pairing.md §7.2).
pub const CLOSE_RECOVERY_ENDED: u8 = 2;

/// How long the toy waits for its user's confirmation (docs/spec/pairing.md §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfirmationPolicy {
    /// How long a pending confirmation (a founding pairing, a roster version to co-sign)
    /// waits for [`Toy::confirm`] before it expires. Default 30 s; at most 65 535 s (the
    /// phone is told the window in whole seconds).
    pub window: Duration,
    /// How long the recovery window stays open after [`Toy::open_recovery_window`] (the long
    /// press): the new phone pairs with the printed code, proves the recovery key, pushes one
    /// version signed by it, and the toy's user confirms it, all within it
    /// (docs/spec/pairing.md §7.2). The recovery confirmation expires after
    /// [`ConfirmationPolicy::window`] or when the recovery window closes, whichever is first.
    /// Default 300 s.
    pub recovery_window: Duration,
}

impl Default for ConfirmationPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            recovery_window: Duration::from_secs(300),
        }
    }
}

impl ConfirmationPolicy {
    /// A policy with this confirmation window.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// A policy with this recovery window.
    pub fn with_recovery_window(mut self, window: Duration) -> Self {
        self.recovery_window = window;
        self
    }

    fn seconds(&self) -> u16 {
        u16::try_from(self.window.as_secs()).unwrap_or(u16::MAX)
    }
}

/// A change to the family the toy would co-sign, as its user must hear it: who is added or
/// removed, in which role, and whether the recovery key changes. Computed from the toy's
/// version and the proposed one by device id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterChange {
    /// The guardian in session who proposed it.
    pub by: DeviceId,
    /// The toy's version (0 before version 1).
    pub from_version: u64,
    /// The proposed version.
    pub version: u64,
    /// Members the proposed version adds, with their roles.
    pub added: Vec<(DeviceId, Role)>,
    /// Members it removes, with the roles they had.
    pub removed: Vec<(DeviceId, Role)>,
    /// Members kept under the same device id with another identity (role or keys): the role
    /// they had, then the new one.
    pub changed: Vec<(DeviceId, Role, Role)>,
    /// Whether the family's recovery key is set, replaced or dropped.
    pub recovery_key_changed: bool,
}

impl RosterChange {
    fn between(by: DeviceId, current: Option<&Roster>, proposed: &SignedRoster) -> Self {
        let old: &[PublicIdentity] = current.map_or(&[], Roster::members);
        let new = proposed.proposal().members();
        let find = |list: &[PublicIdentity], id: DeviceId| {
            list.iter().find(|m| m.device_id() == id).cloned()
        };
        let mut added = Vec::new();
        let mut changed = Vec::new();
        for m in new {
            match find(old, m.device_id()) {
                None => added.push((m.device_id(), m.role())),
                Some(o) if &o != m => changed.push((m.device_id(), o.role(), m.role())),
                Some(_) => {}
            }
        }
        let removed = old
            .iter()
            .filter(|o| find(new, o.device_id()).is_none())
            .map(|o| (o.device_id(), o.role()))
            .collect();
        Self {
            by,
            from_version: current.map_or(0, Roster::version),
            version: proposed.proposal().version(),
            added,
            removed,
            changed,
            recovery_key_changed: current.map(Roster::recovery_key)
                != Some(proposed.proposal().recovery_key()),
        }
    }
}

/// What the toy asks its user to confirm with a deliberate gesture ([`Toy::confirm`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Confirmation {
    /// Record this phone (which just paired with the printed code, and whose SAS the parent
    /// compared) as the founding guardian.
    Founder {
        /// The phone's device id.
        phone: DeviceId,
    },
    /// Co-sign this roster version (version 1 from the founding guardian, or the next one
    /// from a guardian in session).
    Roster(RosterChange),
    /// Recovery: co-sign this version, signed by the family's recovery key and pushed by the
    /// phone (`by`) that proved the key in the recovery window. With the toy's signature the
    /// recovery key alone changes the family's guardians: speak it as such.
    Recovery(RosterChange),
}

/// Which code a pairing used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeKind {
    /// The code printed on the tag: only while the toy has no guardian.
    Printed,
    /// A one-time code a guardian sent over its session (docs/spec/pairing.md §5.5).
    OneTime,
    /// The printed code in the recovery window ([`Toy::open_recovery_window`]): the phone is
    /// admitted to sessions until the window closes but governs nothing until it proves the
    /// recovery key and a version it pushes lists it (docs/spec/pairing.md §7.2).
    Recovery,
}

/// Something the toy's application must act on.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToyEvent {
    /// A phone paired. With [`CodeKind::Printed`] it is the founding guardian, reported only
    /// once the toy's user confirmed it ([`Toy::confirm`] after
    /// [`ToyEvent::ConfirmationRequested`]): persist it (and restore it with
    /// [`ToyBuilder::founder`]) until roster version 1 replaces it.
    Paired {
        /// The phone.
        phone: PublicIdentity,
        /// Which code admitted it.
        code: CodeKind,
    },
    /// The short authentication string of the pairing in progress, known once PAIR_CONFIRM
    /// verified (just before [`ToyEvent::Paired`]): speak or blink it; the parent compares
    /// it with the phone's screen.
    Sas(Sas),
    /// The phone aborted right after PAIR_DONE (its parent said the codes differ, or its
    /// checks failed): the pairing just reported by [`ToyEvent::Paired`] is undone and
    /// counted as a failed attempt. Forget the founder you persisted from it.
    PairingRejected {
        /// The phone of the undone pairing.
        phone: PublicIdentity,
    },
    /// A pairing attempt failed (wrong code, tampering, timeout, disconnect).
    PairingFailed,
    /// A guardian opened a pairing window for one new phone (one-time code).
    PairingWindowOpened {
        /// The guardian who opened it.
        by: DeviceId,
    },
    /// A phone the roster (or, before roster version 1, the founding pairing) admits opened a
    /// session.
    SessionOpened(DeviceId),
    /// The session ended (idle, tampering, close, the peer was removed from the roster).
    SessionClosed,
    /// An authenticated application message from the phone in session (commands, pongs).
    Message(SessionMessage),
    /// An envelope arrived, was delivered, or was abandoned with the session.
    Envelope(EnvelopeEvent),
    /// The toy verified and applied a newer roster: persist it. Sessions of devices it no
    /// longer admits have already ended.
    RosterApplied(Roster),
    /// A roster update did not chain from the toy's roster (or was not acceptable as version
    /// 1); nothing changed.
    RosterRefused,
    /// A roster version with the number of the toy's own but another hash (a fork of the
    /// family's chain, T39), from a session or [`Toy::apply_rosters`]: refused, nothing
    /// changed. Show it: someone signed a competing version.
    RosterFork {
        /// The version number.
        version: u64,
        /// The hash of the toy's version.
        held: [u8; 32],
        /// The hash of the other one.
        other: [u8; 32],
    },
    /// The toy will sign (or record a founder) only if its user confirms with a deliberate
    /// gesture before `expires_at`: speak or blink `summary`, then call [`Toy::confirm`] on
    /// the gesture (one a child does not make in play, e.g. a long hold of two buttons) or
    /// [`Toy::decline`]. One at a time.
    ConfirmationRequested {
        /// What the user confirms.
        summary: Confirmation,
        /// When it expires ([`Toy::poll`] expires it).
        expires_at: Timestamp,
    },
    /// The pending confirmation expired: nothing was signed or recorded, the phone was told.
    ConfirmationExpired,
    /// The user declined ([`Toy::decline`]): nothing was signed or recorded, the phone was
    /// told.
    ConfirmationDeclined,
    /// The pending confirmation ended with the session or connection it came over (or the
    /// phone rejected the SAS): nothing was signed or recorded.
    ConfirmationCancelled,
    /// The phone in a recovery session proved the family's recovery key over this session
    /// (docs/spec/pairing.md §7.2); it may now push one version signed by the key.
    RecoveryProved {
        /// The phone.
        phone: DeviceId,
    },
    /// A recovery proof did not verify (another key, or replayed from another session): the
    /// recovery window closed.
    RecoveryRefused,
    /// The recovery window closed (it expired, a proof or version was refused, the
    /// confirmation expired or was declined, or the recovery succeeded). The printed code
    /// admits no one again.
    RecoveryWindowClosed,
}

/// Frames to send back, and events for the application (what [`Toy::handle`] returns).
#[derive(Debug, Default)]
pub struct ToyOutput {
    /// Frames for the phone, in order.
    pub replies: Vec<Vec<u8>>,
    /// Events, in order.
    pub events: Vec<ToyEvent>,
}

/// Builds a [`Toy`]: what the factory gave it, and what it persisted.
pub struct ToyBuilder<S: FailureStore> {
    identity: Arc<DeviceIdentity>,
    code: PairingCode,
    store: S,
    attestation: Option<MakerAttestation>,
    window: WindowPolicy,
    session: SessionConfig,
    delivery: DeliveryConfig,
    founder: Option<PublicIdentity>,
    roster: Option<Roster>,
    confirmation: ConfirmationPolicy,
}

impl<S: FailureStore> ToyBuilder<S> {
    /// The confirmation window (default 30 s).
    pub fn confirmation_policy(mut self, policy: ConfirmationPolicy) -> Self {
        self.confirmation = policy;
        self
    }
    /// The maker's attestation of this toy.
    pub fn attestation(mut self, attestation: MakerAttestation) -> Self {
        self.attestation = Some(attestation);
        self
    }
    /// Pairing window limits.
    pub fn window_policy(mut self, policy: WindowPolicy) -> Self {
        self.window = policy;
        self
    }
    /// Session limits.
    pub fn session_config(mut self, config: SessionConfig) -> Self {
        self.session = config;
        self
    }
    /// Envelope delivery limits.
    pub fn delivery(mut self, config: DeliveryConfig) -> Self {
        self.delivery = config;
        self
    }
    /// The founding guardian persisted from [`ToyEvent::Paired`] (before roster version 1).
    pub fn founder(mut self, phone: PublicIdentity) -> Self {
        self.founder = Some(phone);
        self
    }
    /// The roster persisted from [`ToyEvent::RosterApplied`]: verify the stored chain with
    /// `Roster::verify_founding` + `Roster::advance` (the toy founded the family), or restore the one version the toy stored itself with
    /// `Roster::restore_verified` (never bytes from the network; the C ABI's roster slot).
    pub fn roster(mut self, roster: Roster) -> Self {
        self.roster = Some(roster);
        self
    }

    /// The toy. Refused when the identity is not a toy's, the founder not a guardian's, or
    /// the roster does not list this toy.
    pub fn build(self) -> Result<Toy<S>, Error> {
        if self.identity.role() != Role::Toy {
            return Err(Error::WrongPeer(
                "the toy's identity must have the toy role",
            ));
        }
        if self
            .founder
            .as_ref()
            .is_some_and(|f| f.role() != Role::Guardian)
        {
            return Err(Error::WrongPeer("the founder must be a guardian"));
        }
        if let Some(r) = &self.roster
            && !r.contains(self.identity.public())
        {
            return Err(Error::WrongPeer("the roster does not list this toy"));
        }
        Ok(Toy {
            identity: self.identity,
            printed_code: self.code,
            one_time_code: None,
            attestation: self.attestation,
            window: PairingWindow::new(self.window, self.store),
            pairing: None,
            unconfirmed: None,
            pending: None,
            confirmation: self.confirmation,
            recovery: None,
            founder: self.founder,
            roster: self.roster,
            channel: None,
            session_config: self.session,
            delivery: self.delivery,
            io: Queues::default(),
        })
    }
}

/// A pairing the toy recorded with PAIR_DONE that the phone may still reject (an ABORT on
/// the same connection before any other frame, §5.4 step 6).
struct Unconfirmed {
    phone: PublicIdentity,
    previous_founder: Option<PublicIdentity>,
}

/// What a pending confirmation will do.
enum Pending {
    /// Record this phone as the founding guardian (on the pairing connection).
    Founder(PublicIdentity),
    /// Co-sign `proposed` (version 1 when the toy has no roster), then apply `rest`. With
    /// `recovery`, `proposed` is signed by the recovery key and came from the recovery session.
    Roster {
        peer: DeviceId,
        proposed: SignedRoster,
        rest: Vec<SignedRoster>,
        recovery: bool,
    },
}

/// The recovery window (docs/spec/pairing.md §7.2).
struct Recovery {
    closes_at: Timestamp,
    /// The phone that paired with the printed code in this window.
    candidate: Option<PublicIdentity>,
    /// Whether it proved the recovery key in its current session.
    proved: bool,
}

struct PendingConfirmation {
    what: Pending,
    expires_at: Timestamp,
}

/// The toy's protocol endpoint.
pub struct Toy<S: FailureStore> {
    identity: Arc<DeviceIdentity>,
    printed_code: PairingCode,
    one_time_code: Option<PairingCode>,
    attestation: Option<MakerAttestation>,
    window: PairingWindow<S>,
    pairing: Option<(ToyPairing, CodeKind)>,
    unconfirmed: Option<Unconfirmed>,
    pending: Option<PendingConfirmation>,
    confirmation: ConfirmationPolicy,
    recovery: Option<Recovery>,
    founder: Option<PublicIdentity>,
    roster: Option<Roster>,
    channel: Option<Channel>,
    session_config: SessionConfig,
    delivery: DeliveryConfig,
    io: Queues<ToyEvent>,
}

impl<S: FailureStore> Toy<S> {
    /// Starts building a toy from its identity, the code printed on its tag and the durable
    /// store of its lifetime pairing-failure counter.
    pub fn builder(identity: Arc<DeviceIdentity>, code: PairingCode, store: S) -> ToyBuilder<S> {
        ToyBuilder {
            identity,
            code,
            store,
            attestation: None,
            window: WindowPolicy::default(),
            session: SessionConfig::default(),
            delivery: DeliveryConfig::default(),
            founder: None,
            roster: None,
            confirmation: ConfirmationPolicy::default(),
        }
    }

    /// The toy's identity.
    pub fn identity(&self) -> &Arc<DeviceIdentity> {
        &self.identity
    }

    /// The verified roster, once version 1 exists.
    pub fn roster(&self) -> Option<&Roster> {
        self.roster.as_ref()
    }

    /// The founding guardian before roster version 1 exists.
    pub fn founder(&self) -> Option<&PublicIdentity> {
        self.founder.as_ref()
    }

    /// Whether the toy has a guardian (a founding pairing or a roster). From then on the
    /// printed code admits no one.
    pub fn has_guardian(&self) -> bool {
        self.founder.is_some() || self.roster.is_some()
    }

    /// The device this toy admits to a session with this id: a guardian of the current
    /// roster or, before version 1, the founding guardian. This is the whole allow-list of
    /// governing devices; besides it, only the phone that paired in an open recovery window
    /// ([`Toy::recovery_candidate`]) gets a session, which governs nothing until it proves the
    /// recovery key (docs/spec/pairing.md §7.2).
    pub fn admitted(&self, id: DeviceId) -> Option<&PublicIdentity> {
        // Only `Role::Guardian` governs: any other role (a toy, a future non-governing member)
        // is never admitted to push rosters.
        match &self.roster {
            Some(r) => r.member(id).filter(|m| m.role() == Role::Guardian),
            None => self.founder.as_ref().filter(|f| f.device_id() == id),
        }
    }

    /// The window (failure counts, state).
    pub fn window(&self) -> &PairingWindow<S> {
        &self.window
    }

    /// The current session, if any.
    pub fn session(&self) -> Option<&Session> {
        self.channel
            .as_ref()
            .map(Channel::session)
            .filter(|s| s.is_open())
    }

    /// The pairing button was held: opens a window for the printed code. Refused once the
    /// toy has a roster (then only a guardian opens windows, with a one-time code). Between
    /// the founding pairing and roster version 1 the window admits only the founding phone
    /// again (its PAIR_DONE may have been lost).
    pub fn press_pair_button(&mut self, now: Timestamp) -> Result<(), Error> {
        if self.roster.is_some() {
            return Err(Error::NotPairable);
        }
        self.window.open(now)
    }

    /// The long press (a gesture distinct from the pairing button's and from the
    /// confirmation's, made at the toy by the family that lost its only phone): opens the
    /// **recovery window** for [`ConfirmationPolicy::recovery_window`] (default 5 min) and a
    /// pairing window for the printed code (docs/spec/pairing.md §7.2). A phone not on the
    /// roster may then pair with the printed code ([`CodeKind::Recovery`]) and open a session;
    /// in it, it proves the family's recovery key and pushes one version signed by it, which
    /// the toy co-signs only after a second confirmation at the toy. A one-time code in force
    /// is withdrawn; pressing again restarts the window (forgetting a phone paired in it).
    /// [`Error::NotPairable`] without a roster (use [`Toy::press_pair_button`]),
    /// [`Error::Busy`] while a confirmation is pending, [`Error::PairingDisabled`] after too
    /// many failed pairings.
    pub fn open_recovery_window(&mut self, now: Timestamp) -> Result<(), Error> {
        self.handle_timeout(now);
        if self.roster.is_none() {
            return Err(Error::NotPairable);
        }
        if self.pending.is_some() {
            return Err(Error::Busy);
        }
        self.window.open(now)?;
        self.one_time_code = None;
        if self.recovery_session() {
            self.end_channel(true);
        }
        self.recovery = Some(Recovery {
            closes_at: now.after(self.confirmation.recovery_window),
            candidate: None,
            proved: false,
        });
        Ok(())
    }

    /// When the open recovery window closes, if one is open.
    pub fn recovery_window(&self) -> Option<Timestamp> {
        self.recovery.as_ref().map(|r| r.closes_at)
    }

    /// The phone that paired with the printed code in the open recovery window, if any.
    pub fn recovery_candidate(&self) -> Option<&PublicIdentity> {
        self.recovery.as_ref()?.candidate.as_ref()
    }

    /// Whether the live session is the recovery window's candidate's.
    fn recovery_session(&self) -> bool {
        let candidate = self.recovery.as_ref().and_then(|r| r.candidate.as_ref());
        candidate.is_some_and(|c| self.session().is_some_and(|s| s.peer() == c))
    }

    /// Closes the recovery window: the printed code admits no one again, a pairing attempt
    /// in it ends, and the candidate's session ends unless a roster now admits it.
    fn close_recovery(&mut self, now: Timestamp) {
        let Some(r) = self.recovery.take() else {
            return;
        };
        self.window.close();
        if self
            .pairing
            .as_ref()
            .is_some_and(|(_, k)| *k == CodeKind::Recovery)
        {
            self.pairing = None;
            self.io.event(ToyEvent::PairingFailed);
        }
        self.io.event(ToyEvent::RecoveryWindowClosed);
        let peer = self.session().map(|s| s.peer().clone());
        if let (Some(c), Some(p)) = (r.candidate, peer)
            && c == p
            && self.admitted(p.device_id()) != Some(&p)
        {
            let _ = self.send(
                &SessionMessage::Close {
                    reason: CLOSE_RECOVERY_ENDED,
                },
                now,
            );
            self.end_channel(true);
        }
    }

    /// Factory reset: forgets the founder, the roster, the session and the failure counter.
    pub fn factory_reset(&mut self) -> Result<(), Error> {
        self.pending = None;
        self.recovery = None;
        self.founder = None;
        self.roster = None;
        self.one_time_code = None;
        self.pairing = None;
        self.unconfirmed = None;
        self.end_channel(false);
        self.window.factory_reset()
    }

    /// Ends the current session only (e.g. the peer broke an application rule).
    pub fn close_session(&mut self) -> ToyOutput {
        self.end_channel(true);
        self.drain()
    }

    /// Sends a message to the phone in session.
    pub fn send(&mut self, msg: &SessionMessage, now: Timestamp) -> Result<(), Error> {
        let c = self.channel.as_mut().ok_or(Error::Closed)?;
        match c.seal(msg, now) {
            Ok(f) => {
                self.io.send(f);
                Ok(())
            }
            Err(e) => {
                self.end_channel(true);
                Err(e)
            }
        }
    }

    /// Starts delivering `envelope` to the phone in session; returns its transfer id.
    /// [`ToyEvent::Envelope`] ([`EnvelopeEvent::Delivered`]) follows when the phone acknowledged every byte.
    /// The toy holds the whole envelope until then; [`Toy::send_envelope_streamed`] sends the
    /// same frames from the application's storage in O(window) memory.
    pub fn send_envelope(&mut self, envelope: Vec<u8>, now: Timestamp) -> Result<u32, Error> {
        let c = self.channel.as_mut().ok_or(Error::Closed)?;
        let id = c.start_envelope(envelope)?;
        let mut frames = Vec::new();
        let r = c.pump(now, &mut frames);
        self.io.transmit.extend(frames);
        r.map(|()| id)
    }

    /// Starts delivering an envelope of `total_len` bytes that the application keeps (in
    /// flash, say) and supplies piece by piece; returns its transfer id. The toy then holds
    /// at most one window of it (`chunk_len × window` of [`DeliveryConfig`]), whatever its
    /// length: after this call and after every [`Toy::handle`] / [`Endpoint::handle_frame`],
    /// ask [`Toy::envelope_request`] which bytes the window takes and answer with
    /// [`Toy::provide_envelope_bytes`]. The frames on the wire are the same as
    /// [`Toy::send_envelope`]'s. [`EnvelopeEvent::Delivered`] follows when the phone
    /// acknowledged every byte; [`EnvelopeEvent::Aborted`] if the session ends first.
    pub fn send_envelope_streamed(&mut self, total_len: u32) -> Result<u32, Error> {
        let c = self.channel.as_mut().ok_or(Error::Closed)?;
        c.start_streamed(total_len)
    }

    /// The envelope bytes the streamed delivery in progress needs now (`None` when it needs
    /// none until the phone acknowledges more, or no streamed delivery is in progress).
    pub fn envelope_request(&self) -> Option<EnvelopeRequest> {
        self.channel.as_ref()?.request()
    }

    /// Supplies bytes for the streamed delivery `transfer`, starting at the offset of
    /// [`Toy::envelope_request`] and at most its length (fewer is fine: ask again); the
    /// chunks they complete go out at once. Bytes it did not ask for are refused with
    /// [`Error::EnvelopeBytes`] and change nothing; [`Error::Closed`] without a session.
    pub fn provide_envelope_bytes(
        &mut self,
        transfer: u32,
        offset: u32,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(), Error> {
        let c = self.channel.as_mut().ok_or(Error::Closed)?;
        let mut frames = Vec::new();
        let r = c.supply(transfer, offset, bytes, now, &mut frames);
        self.io.transmit.extend(frames);
        r
    }

    /// Envelope bytes the toy holds for its outgoing delivery: the whole envelope after
    /// [`Toy::send_envelope`], at most one window's worth when streamed (frames already in
    /// the transmit queue not counted).
    pub fn outgoing_envelope_bytes(&self) -> usize {
        self.channel.as_ref().map_or(0, Channel::outgoing_held)
    }

    /// Applies roster versions learned outside a session (a Wi-Fi toy's cloud pull): they
    /// must chain from the toy's roster. Sessions of removed devices end at once.
    pub fn apply_rosters(
        &mut self,
        rosters: &[SignedRoster],
        now: Timestamp,
    ) -> Result<&Roster, Error> {
        let current = self.roster.as_ref().ok_or(Error::UnexpectedMessage)?;
        if let Some(other) = fork_of(current, rosters) {
            let version = current.version();
            self.io.event(ToyEvent::RosterFork {
                version,
                held: current.signed().hash(),
                other,
            });
            return Err(Error::RosterFork { version });
        }
        let newer: Vec<SignedRoster> = rosters
            .iter()
            .filter(|r| r.proposal().version() > current.version())
            .cloned()
            .collect();
        let next = current.advance(&newer)?;
        self.install(next, now);
        self.roster.as_ref().ok_or(Error::Closed)
    }

    /// The confirmation policy in force.
    pub fn confirmation_policy(&self) -> &ConfirmationPolicy {
        &self.confirmation
    }

    /// Replaces the confirmation policy (a pending confirmation keeps its deadline).
    pub fn set_confirmation_policy(&mut self, policy: ConfirmationPolicy) {
        self.confirmation = policy;
    }

    /// The confirmation the toy is waiting for, if any, and when it expires.
    pub fn pending_confirmation(&self) -> Option<(Confirmation, Timestamp)> {
        let p = self.pending.as_ref()?;
        let summary = match &p.what {
            Pending::Founder(phone) => Confirmation::Founder {
                phone: phone.device_id(),
            },
            Pending::Roster {
                peer,
                proposed,
                recovery,
                ..
            } => {
                let change = RosterChange::between(*peer, self.roster.as_ref(), proposed);
                if *recovery {
                    Confirmation::Recovery(change)
                } else {
                    Confirmation::Roster(change)
                }
            }
        };
        Some((summary, p.expires_at))
    }

    /// The toy's user made the deliberate confirmation gesture for the pending
    /// [`ToyEvent::ConfirmationRequested`]. The application chooses the gesture and MUST choose
    /// one a child does not make in play (a long hold of two buttons, say): a confirmation is
    /// what stops a stolen guardian key from changing the family (T35). The toy then records
    /// the founder ([`ToyEvent::Paired`], CONFIRMED to the phone) or co-signs the version,
    /// verifies it as the next one, applies it ([`ToyEvent::RosterApplied`]) and sends it
    /// back; frames and events come out of the next [`Toy::poll`] (or the [`Endpoint`]
    /// queues). [`Error::UnexpectedMessage`] when nothing is pending (or it just expired).
    pub fn confirm(&mut self, now: Timestamp) -> Result<(), Error> {
        self.handle_timeout(now);
        let p = self.pending.take().ok_or(Error::UnexpectedMessage)?;
        match p.what {
            Pending::Founder(phone) => {
                self.founder = Some(phone.clone());
                self.io.event(ToyEvent::Paired {
                    phone,
                    code: CodeKind::Printed,
                });
                self.io.send(Frame::Confirmed.encode());
            }
            Pending::Roster {
                peer,
                proposed,
                rest,
                recovery,
            } => {
                let version = proposed.proposal().version();
                let mut cosigned = proposed;
                cosigned.cosign(&self.identity);
                let verified = match &self.roster {
                    Some(current) => current.verify_next(cosigned),
                    None => Roster::verify_founding(cosigned),
                };
                let in_session = self.session().is_some_and(|s| s.peer().device_id() == peer);
                let still_admitted = in_session
                    && if recovery {
                        self.recovery.as_ref().is_some_and(|r| {
                            r.proved
                                && r.candidate.as_ref().map(PublicIdentity::device_id) == Some(peer)
                        })
                    } else {
                        self.admitted(peer).is_some()
                    };
                match verified {
                    Ok(next) if still_admitted => {
                        let back = next.signed().encode();
                        let latest = next.advance(&rest).unwrap_or_else(|_| next.clone());
                        let _ = self.send(
                            &SessionMessage::RosterUpdate {
                                rosters: vec![back],
                            },
                            now,
                        );
                        let _ = self.send(
                            &SessionMessage::RosterAnswer {
                                version,
                                answer: ToyAnswer::Confirmed,
                            },
                            now,
                        );
                        self.install(latest, now);
                        if recovery {
                            // One version per window; the candidate's session goes on only if
                            // the version lists it as a guardian.
                            self.close_recovery(now);
                        }
                    }
                    _ => {
                        self.io.event(ToyEvent::RosterRefused);
                        self.answer(version, ToyAnswer::Refused, now);
                        if recovery {
                            self.close_recovery(now);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The toy's user declined the pending confirmation: nothing is signed or recorded
    /// ([`ToyEvent::ConfirmationDeclined`]); the phone is told (ABORT(6) after a pairing,
    /// RosterAnswer declined in a session). [`Error::UnexpectedMessage`] when nothing is
    /// pending.
    pub fn decline(&mut self, now: Timestamp) -> Result<(), Error> {
        self.handle_timeout(now);
        let p = self.pending.take().ok_or(Error::UnexpectedMessage)?;
        self.io.event(ToyEvent::ConfirmationDeclined);
        self.refuse_pending(p.what, ToyAnswer::Declined, now);
        Ok(())
    }

    /// Tells the phone a pending confirmation ended unsigned.
    fn refuse_pending(&mut self, what: Pending, answer: ToyAnswer, now: Timestamp) {
        match what {
            Pending::Founder(_) => {
                self.unconfirmed = None;
                let reason = match answer {
                    ToyAnswer::Declined => AbortReason::Declined,
                    _ => AbortReason::NotConfirmed,
                };
                self.io.send(Frame::Abort(reason).encode());
            }
            Pending::Roster {
                proposed, recovery, ..
            } => {
                self.answer(proposed.proposal().version(), answer, now);
                if recovery {
                    self.close_recovery(now);
                }
            }
        }
    }

    fn answer(&mut self, version: u64, answer: ToyAnswer, now: Timestamp) {
        if self.session().is_some() {
            let _ = self.send(&SessionMessage::RosterAnswer { version, answer }, now);
        }
    }

    /// Starts waiting for the user's confirmation of `what`.
    fn request_confirmation(&mut self, what: Pending, now: Timestamp) {
        let mut expires_at = now.after(self.confirmation.window);
        if matches!(what, Pending::Roster { recovery: true, .. })
            && let Some(r) = &self.recovery
        {
            expires_at = expires_at.min(r.closes_at);
        }
        self.pending = Some(PendingConfirmation { what, expires_at });
        if let Some((summary, expires_at)) = self.pending_confirmation() {
            self.io.event(ToyEvent::ConfirmationRequested {
                summary,
                expires_at,
            });
        }
    }

    /// Handles one reassembled frame and returns what to send and what happened.
    pub fn handle(&mut self, frame: &[u8], now: Timestamp, rng: &mut impl CryptoRng) -> ToyOutput {
        self.handle_frame(frame, now, rng);
        self.drain()
    }

    /// Runs the timers and returns what happened.
    pub fn poll(&mut self, now: Timestamp) -> ToyOutput {
        self.handle_timeout(now);
        self.drain()
    }

    /// The link dropped: an unfinished pairing attempt ends, the session ends.
    pub fn disconnect(&mut self) -> ToyOutput {
        self.handle_disconnect();
        self.drain()
    }

    fn drain(&mut self) -> ToyOutput {
        ToyOutput {
            replies: self.io.transmit.drain(..).collect(),
            events: self.io.events.drain(..).collect(),
        }
    }

    /// Ends the channel, reporting it (and an abandoned outgoing envelope). A roster
    /// confirmation pending for it is cancelled: nothing is signed.
    fn end_channel(&mut self, report: bool) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| matches!(p.what, Pending::Roster { .. }))
        {
            self.pending = None;
            self.io.event(ToyEvent::ConfirmationCancelled);
        }
        if let Some(c) = self.channel.take()
            && report
        {
            if let Some(e) = c.abandoned() {
                self.io.event(ToyEvent::Envelope(e));
            }
            self.io.event(ToyEvent::SessionClosed);
        }
    }

    fn not_pairable(&mut self) {
        self.io.send(Frame::NotPairable.encode());
    }

    fn on_pair_request(&mut self, frame: &[u8], now: Timestamp, rng: &mut impl CryptoRng) {
        if self.pairing.is_some() {
            self.io.send(Frame::Abort(AbortReason::Busy).encode());
            return;
        }
        let (code, kind) = match (&self.one_time_code, self.roster.is_some()) {
            (Some(c), _) => (c, CodeKind::OneTime),
            (None, false) => (&self.printed_code, CodeKind::Printed),
            // The long press opened the recovery window: the printed code again (§7.2).
            (None, true) if self.recovery.is_some() => (&self.printed_code, CodeKind::Recovery),
            (None, true) => {
                self.not_pairable();
                return;
            }
        };
        match self.window.begin_attempt(now) {
            Ok(()) => {}
            Err(Error::Busy) => {
                self.io.send(Frame::Abort(AbortReason::Busy).encode());
                return;
            }
            Err(_) => {
                self.not_pairable();
                return;
            }
        }
        match ToyPairing::respond(&self.identity, code, self.attestation.as_ref(), frame, rng) {
            Ok((pairing, reply)) => {
                self.pairing = Some((pairing, kind));
                self.io.send(reply);
            }
            Err(_) => {
                // A malformed request tested no guess.
                let _ = self.window.abandon_attempt();
                self.io.event(ToyEvent::PairingFailed);
                self.io.send(Frame::Abort(AbortReason::Unexpected).encode());
            }
        }
    }

    fn on_pair_confirm(&mut self, frame: &[u8], now: Timestamp) {
        let Some((pairing, kind)) = self.pairing.take() else {
            self.not_pairable();
            return;
        };
        // Durably counted before it is checked: cutting the power now still costs the guess.
        if self.window.record_guess().is_err() {
            let _ = self.window.abandon_attempt();
            self.io.event(ToyEvent::PairingFailed);
            self.io.send(Frame::Abort(AbortReason::Unexpected).encode());
            return;
        }
        let result = pairing.confirm(frame).and_then(|c| {
            // The printed code pairs the founder only; a repeat by the same phone (its
            // PAIR_DONE was lost) is allowed until roster version 1 exists.
            if kind == CodeKind::Printed && self.founder.as_ref().is_some_and(|f| f != &c.phone) {
                return Err(Error::WrongPeer("the toy already has a guardian"));
            }
            // The recovery window admits a new phone only (a member already has sessions).
            if kind == CodeKind::Recovery
                && (self.recovery.is_none()
                    || self
                        .roster
                        .as_ref()
                        .is_some_and(|r| r.member(c.phone.device_id()).is_some()))
            {
                return Err(Error::WrongPeer("already on the roster"));
            }
            Ok(c)
        });
        match result {
            Ok(ToyConfirmed { phone, sas, reply }) => {
                if self.window.succeed_attempt().is_err() {
                    self.io.send(Frame::Abort(AbortReason::Unexpected).encode());
                    return;
                }
                let previous_founder = self.founder.clone();
                self.unconfirmed = Some(Unconfirmed {
                    phone: phone.clone(),
                    previous_founder,
                });
                self.io.event(ToyEvent::Sas(sas));
                self.io.send(reply);
                match kind {
                    // No founder without the user's confirmation at the toy (T37): the slot
                    // stays as it was, and the printed code valid, until then.
                    CodeKind::Printed => {
                        self.io.send(
                            Frame::ConfirmationPending {
                                seconds: self.confirmation.seconds(),
                            }
                            .encode(),
                        );
                        self.request_confirmation(Pending::Founder(phone), now);
                    }
                    CodeKind::OneTime => {
                        self.one_time_code = None;
                        self.io.event(ToyEvent::Paired { phone, code: kind });
                    }
                    // Admitted to sessions while the window is open; it governs nothing until
                    // it proves the recovery key (§7.2).
                    CodeKind::Recovery => {
                        if let Some(r) = self.recovery.as_mut() {
                            r.candidate = Some(phone.clone());
                            r.proved = false;
                        }
                        self.io.event(ToyEvent::Paired { phone, code: kind });
                    }
                }
            }
            Err(e) => {
                let _ = self.window.fail_attempt();
                self.io.event(ToyEvent::PairingFailed);
                let reason = match e {
                    Error::WrongPeer(_) => AbortReason::WrongPeer,
                    _ => AbortReason::Authentication,
                };
                self.io.send(Frame::Abort(reason).encode());
            }
        }
    }

    /// The phone aborted right after PAIR_DONE: its parent rejected the SAS (or its own
    /// checks failed). Undo the pairing and count it as a failed attempt (T37).
    fn on_rejection(&mut self, rejected: Unconfirmed) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| matches!(&p.what, Pending::Founder(f) if f == &rejected.phone))
        {
            self.pending = None;
            self.io.event(ToyEvent::ConfirmationCancelled);
        }
        if self.founder.as_ref() == Some(&rejected.phone) {
            self.founder = rejected.previous_founder;
        }
        if let Some(r) = self.recovery.as_mut()
            && r.candidate.as_ref() == Some(&rejected.phone)
        {
            r.candidate = None;
        }
        if let Err(e) = self.window.record_rejection() {
            self.io.close(e);
        }
        self.io.event(ToyEvent::PairingFailed);
        self.io.event(ToyEvent::PairingRejected {
            phone: rejected.phone,
        });
    }

    fn on_handshake(&mut self, frame: &[u8], now: Timestamp, rng: &mut impl CryptoRng) {
        let Ok(Frame::HandshakeInit { initiator, .. }) = Frame::decode(frame) else {
            self.not_pairable();
            return;
        };
        let candidate = self
            .recovery
            .as_ref()
            .and_then(|r| r.candidate.clone())
            .filter(|c| c.device_id() == initiator);
        let Some(peer) = self.admitted(initiator).cloned().or(candidate) else {
            self.not_pairable();
            return;
        };
        match session::respond(
            &self.identity,
            std::slice::from_ref(&peer),
            frame,
            self.session_config,
            now,
            rng,
        ) {
            Ok((session, reply)) => {
                // A recovery proof holds for the session it was made in only.
                if let Some(r) = self.recovery.as_mut() {
                    r.proved = false;
                }
                self.channel = Some(Channel::new(session, self.delivery.clone()));
                self.io.event(ToyEvent::SessionOpened(initiator));
                self.io.send(reply);
                // The toy states its roster head first in every session (§7.1): the phone
                // compares it with its chain (a fork) and sends what the toy lacks.
                let (version, hash) = self
                    .roster
                    .as_ref()
                    .map_or((0, [0; 32]), |r| (r.version(), r.signed().hash()));
                let _ = self.send(&SessionMessage::RosterHead { version, hash }, now);
            }
            Err(_) => self.not_pairable(),
        }
    }

    fn on_transport(&mut self, frame: &[u8], now: Timestamp) {
        let Some(c) = self.channel.as_mut() else {
            self.not_pairable();
            return;
        };
        let peer = c.session().peer().clone();
        let mut frames = Vec::new();
        let r = c.open(frame, now, &mut frames);
        self.io.transmit.extend(frames);
        if self.recovery_session() {
            // The recovery candidate governs nothing and commands nothing (§7.2).
            match r {
                Ok(Inbound::Closed) => self.end_channel(true),
                Ok(Inbound::Message(SessionMessage::RecoveryProof { signature })) => {
                    self.on_recovery_proof(&peer, signature, now)
                }
                Ok(Inbound::Message(SessionMessage::RosterUpdate { rosters })) => {
                    self.on_recovery_rosters(&peer, &rosters, now)
                }
                Ok(_) => {}
                Err(e) => {
                    let delivery_rule = e.breaks_delivery_rules();
                    self.end_channel(true);
                    if delivery_rule {
                        self.io.close(e);
                    }
                }
            }
            return;
        }
        match r {
            Ok(Inbound::Nothing) => {}
            Ok(Inbound::Closed) => self.end_channel(true),
            Ok(Inbound::Envelope(e)) => self.io.event(ToyEvent::Envelope(e)),
            Ok(Inbound::Message(SessionMessage::RosterUpdate { rosters })) => {
                self.on_rosters(&peer, &rosters, now)
            }
            Ok(Inbound::Message(SessionMessage::RecoveryProof { .. })) => {
                // Only in a session the recovery window admitted.
                let _ = self.send(
                    &SessionMessage::RecoveryAnswer {
                        answer: RecoveryAnswer::Closed,
                    },
                    now,
                );
            }
            Ok(Inbound::Message(SessionMessage::OpenPairingWindow { code })) => {
                let ok = self.window.open(now).is_ok();
                if ok {
                    self.one_time_code = Some(code);
                    self.io.event(ToyEvent::PairingWindowOpened {
                        by: peer.device_id(),
                    });
                }
                let _ = self.send(&SessionMessage::ControlAck { ok }, now);
            }
            Ok(Inbound::Message(msg)) => self.io.event(ToyEvent::Message(msg)),
            Err(e) => {
                // Tampering, replay, a broken delivery rule: the session is over. A peer that
                // broke the delivery rules authenticated, so the connection goes too.
                let delivery_rule = e.breaks_delivery_rules();
                self.end_channel(true);
                if delivery_rule {
                    self.io.close(e);
                }
            }
        }
    }

    /// A roster update from the guardian in session (docs/spec/pairing.md §7.1). Processed in
    /// order, one message (at most [`MAX_ROSTERS_PER_UPDATE`] versions) at a time: a toy any
    /// number of versions behind catches up from consecutive messages in bounded memory.
    fn on_rosters(&mut self, peer: &PublicIdentity, rosters: &[Vec<u8>], now: Timestamp) {
        let decoded: Result<Vec<SignedRoster>, _> =
            rosters.iter().map(|r| SignedRoster::decode(r)).collect();
        let Ok(decoded) = decoded else {
            self.io.event(ToyEvent::RosterRefused);
            self.answer(0, ToyAnswer::Refused, now);
            return;
        };
        let newest = decoded
            .iter()
            .map(|r| r.proposal().version())
            .max()
            .unwrap_or(0);
        if self.pending.is_some() {
            // One confirmation at a time; nothing else changes the roster meanwhile.
            self.answer(newest, ToyAnswer::Busy, now);
            return;
        }
        // Only a guardian governs (a future non-governing role is never admitted to push).
        if peer.role() != Role::Guardian {
            self.io.event(ToyEvent::RosterRefused);
            return;
        }
        let Some(current) = &self.roster else {
            self.found(peer, decoded, now);
            return;
        };
        if let Some(other) = fork_of(current, &decoded) {
            let version = current.version();
            self.io.event(ToyEvent::RosterFork {
                version,
                held: current.signed().hash(),
                other,
            });
            self.answer(version, ToyAnswer::Fork, now);
            return;
        }
        if newest < current.version() {
            // The guardian is behind: tell it what the toy knows.
            let mine = current.signed().encode();
            let _ = self.send(
                &SessionMessage::RosterUpdate {
                    rosters: vec![mine],
                },
                now,
            );
            return;
        }
        if newest == current.version() {
            return;
        }
        if self.apply_rosters(&decoded, now).is_ok() {
            return;
        }
        // The guardian in session proposes the next version, signed by it (and by every
        // device it adds); the toy's co-signature would complete the quorum (roster.md §3).
        // It signs only after its user confirms at the toy (T35): ask.
        if let Some(next) = self.cosignable(peer, &decoded) {
            let version = next.proposal().version();
            let seconds = self.confirmation.seconds();
            self.request_confirmation(
                Pending::Roster {
                    peer: peer.device_id(),
                    proposed: next,
                    rest: Vec::new(),
                    recovery: false,
                },
                now,
            );
            let _ = self.send(&SessionMessage::RosterPending { version, seconds }, now);
            return;
        }
        self.io.event(ToyEvent::RosterRefused);
        self.answer(newest, ToyAnswer::Refused, now);
    }

    /// The version the guardian `peer` in session proposes for the toy's co-signature: exactly
    /// version n + 1 of the toy's version n, chaining from it, signed by the peer, a guardian
    /// of version n that lists the toy. Nothing is signed here; [`Toy::confirm`] co-signs and
    /// verifies the result with `Roster::verify_next` (the quorum and every other rule).
    fn cosignable(&self, peer: &PublicIdentity, proposed: &[SignedRoster]) -> Option<SignedRoster> {
        let current = self.roster.as_ref()?;
        let [next] = proposed else {
            return None;
        };
        let p = next.proposal();
        let is_guardian = peer.role() == Role::Guardian && current.guardians().any(|g| g == peer);
        let me_member = current.contains(self.identity.public());
        let signed_by_peer = next.signers().any(|s| s == peer.device_id());
        let chains = p.family() == current.family()
            && p.previous_hash() == &current.signed().hash()
            && p.version() == current.version().checked_add(1)?;
        // Ask the user only for a change the toy's signature can complete: with a guardian the
        // toy counts only for removals (roster.md §3.3), so a grant pushed by one guardian is
        // refused at once, never put to a child's button.
        let mut signers = current.counted_signers(next);
        signers.push(self.identity.device_id());
        let completes = current.quorum_met(current.change_to(p).class(), &signers);
        (is_guardian && me_member && signed_by_peer && chains && completes).then(|| next.clone())
    }

    /// A recovery proof in the candidate's session (§7.2): the family's recovery key's
    /// signature over this session's handshake hash. Verified: the toy says so and sends its
    /// current version. Anything else closes the recovery window.
    fn on_recovery_proof(&mut self, peer: &PublicIdentity, signature: [u8; 64], now: Timestamp) {
        let Some(r) = self.recovery.as_ref() else {
            return;
        };
        if r.proved || self.pending.is_some() {
            let _ = self.send(
                &SessionMessage::RecoveryAnswer {
                    answer: RecoveryAnswer::Closed,
                },
                now,
            );
            return;
        }
        let (Some(roster), Some(session)) = (self.roster.as_ref(), self.session()) else {
            return;
        };
        let verified = roster
            .recovery_key()
            .verify_recovery_proof(session.handshake_hash(), &Signature::from_bytes(signature))
            .is_ok();
        if !verified {
            self.io.event(ToyEvent::RecoveryRefused);
            let _ = self.send(
                &SessionMessage::RecoveryAnswer {
                    answer: RecoveryAnswer::Refused,
                },
                now,
            );
            self.close_recovery(now);
            return;
        }
        let mine = roster.signed().encode();
        if let Some(r) = self.recovery.as_mut() {
            r.proved = true;
        }
        self.io.event(ToyEvent::RecoveryProved {
            phone: peer.device_id(),
        });
        let _ = self.send(
            &SessionMessage::RecoveryAnswer {
                answer: RecoveryAnswer::Proved,
            },
            now,
        );
        // The phone lost the family's chain with its phone: the toy's head is what it builds on.
        let _ = self.send(
            &SessionMessage::RosterUpdate {
                rosters: vec![mine],
            },
            now,
        );
    }

    /// The one version the candidate pushes after its proof (§7.2): exactly version n + 1 of
    /// the toy's version n, chaining from it, signed by the recovery key of version n, and
    /// such that the recovery key and the toy's signature make a quorum for its class. Then a
    /// second confirmation at the toy; anything else is refused and closes the window.
    fn on_recovery_rosters(&mut self, peer: &PublicIdentity, rosters: &[Vec<u8>], now: Timestamp) {
        let decoded: Result<Vec<SignedRoster>, _> =
            rosters.iter().map(|r| SignedRoster::decode(r)).collect();
        let newest = decoded
            .as_ref()
            .ok()
            .and_then(|d| d.iter().map(|r| r.proposal().version()).max())
            .unwrap_or(0);
        if self.pending.is_some() {
            self.answer(newest, ToyAnswer::Busy, now);
            return;
        }
        let proved = self.recovery.as_ref().is_some_and(|r| r.proved);
        if let (Ok(d), Some(current)) = (&decoded, &self.roster)
            && let Some(other) = fork_of(current, d)
        {
            let version = current.version();
            self.io.event(ToyEvent::RosterFork {
                version,
                held: current.signed().hash(),
                other,
            });
            self.answer(version, ToyAnswer::Fork, now);
            self.close_recovery(now);
            return;
        }
        let next = match (&decoded, &self.roster) {
            (Ok(d), Some(current)) if proved => recovery_cosignable(current, &self.identity, d),
            _ => None,
        };
        let Some(next) = next else {
            self.io.event(ToyEvent::RosterRefused);
            self.answer(newest, ToyAnswer::Refused, now);
            if proved {
                // One version per window.
                self.close_recovery(now);
            }
            return;
        };
        let version = next.proposal().version();
        self.request_confirmation(
            Pending::Roster {
                peer: peer.device_id(),
                proposed: next,
                rest: Vec::new(),
                recovery: true,
            },
            now,
        );
        let seconds = self.pending.as_ref().map_or(0, |p| {
            u16::try_from(p.expires_at.since(now).as_secs()).unwrap_or(u16::MAX)
        });
        let _ = self.send(&SessionMessage::RosterPending { version, seconds }, now);
    }

    /// Roster version 1: a version 1 that already verifies (co-signed before) is applied; one
    /// the toy would co-sign — from its founding guardian's session, listing both as they
    /// paired, signed by that guardian — waits for its user's confirmation.
    fn found(&mut self, peer: &PublicIdentity, rosters: Vec<SignedRoster>, now: Timestamp) {
        let Some((first, rest)) = rosters.split_first() else {
            return;
        };
        if let Ok(v1) = Roster::verify_founding(first.clone()) {
            match v1.advance(rest) {
                Ok(latest) => self.install(latest, now),
                Err(_) => {
                    self.io.event(ToyEvent::RosterRefused);
                    self.answer(1, ToyAnswer::Refused, now);
                }
            }
            return;
        }
        let p = first.proposal();
        let acceptable = self.founder.as_ref() == Some(peer)
            && p.version() == 1
            && p.members().contains(peer)
            && p.members().contains(self.identity.public())
            && first.signers().any(|s| s == peer.device_id())
            && rest.len() < MAX_ROSTERS_PER_UPDATE;
        if !acceptable {
            self.io.event(ToyEvent::RosterRefused);
            self.answer(p.version(), ToyAnswer::Refused, now);
            return;
        }
        let seconds = self.confirmation.seconds();
        self.request_confirmation(
            Pending::Roster {
                peer: peer.device_id(),
                proposed: first.clone(),
                rest: rest.to_vec(),
                recovery: false,
            },
            now,
        );
        let _ = self.send(
            &SessionMessage::RosterPending {
                version: 1,
                seconds,
            },
            now,
        );
    }

    /// Makes `roster` the allow-list; a session whose peer it no longer admits ends now.
    fn install(&mut self, roster: Roster, now: Timestamp) {
        self.founder = None;
        self.roster = Some(roster.clone());
        self.io.event(ToyEvent::RosterApplied(roster));
        let removed = self
            .session()
            .map(|s| s.peer().clone())
            .is_some_and(|p| self.admitted(p.device_id()) != Some(&p));
        if removed {
            if let Some(c) = self.channel.as_mut()
                && let Ok(f) = c.seal(
                    &SessionMessage::Close {
                        reason: CLOSE_REMOVED,
                    },
                    now,
                )
            {
                self.io.send(f);
            }
            self.end_channel(true);
            self.io.close(Error::UnknownPeer);
        }
    }
}

impl<S: FailureStore> Endpoint for Toy<S> {
    type Event = ToyEvent;

    fn handle_frame(&mut self, frame: &[u8], now: Timestamp, rng: &mut impl CryptoRng) {
        self.handle_timeout(now);
        let decoded = Frame::decode(frame);
        if self.session().is_some() && !matches!(decoded, Ok(Frame::Transport { .. })) {
            // A live session carries only TRANSPORT frames. Anything else (a replayed
            // HANDSHAKE_INIT, pairing frames, garbage) is injected: ignored, so that it costs
            // the session nothing (T32); a phone that wants a new session reconnects (§6.3).
            return;
        }
        // Only the frame right after PAIR_DONE can reject it (§5.4 step 6).
        if let (Ok(Frame::Abort(_)), Some(rejected)) = (&decoded, self.unconfirmed.take()) {
            self.on_rejection(rejected);
            return;
        }
        match decoded {
            Ok(Frame::PairRequest { .. }) => self.on_pair_request(frame, now, rng),
            Ok(Frame::PairConfirm { .. }) => self.on_pair_confirm(frame, now),
            Ok(Frame::HandshakeInit { .. }) => self.on_handshake(frame, now, rng),
            Ok(Frame::Transport { .. }) => self.on_transport(frame, now),
            Ok(Frame::Abort(_)) if self.pairing.is_some() => {
                self.pairing = None;
                let _ = self.window.abandon_attempt();
                self.io.event(ToyEvent::PairingFailed);
            }
            // Garbage, or a frame a phone never sends: the only answer.
            Ok(_) | Err(_) => self.not_pairable(),
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if self.pending.as_ref().is_some_and(|p| now >= p.expires_at)
            && let Some(p) = self.pending.take()
        {
            self.io.event(ToyEvent::ConfirmationExpired);
            self.refuse_pending(p.what, ToyAnswer::Expired, now);
        }
        if self.recovery.as_ref().is_some_and(|r| now >= r.closes_at) {
            self.close_recovery(now);
        }
        let _ = self.window.poll(now);
        if self.pairing.is_some() && !self.window.attempt_in_progress() {
            self.pairing = None;
            self.io.event(ToyEvent::PairingFailed);
        }
        if self.one_time_code.is_some() && !self.window.is_open(now) {
            self.one_time_code = None;
        }
        if let Some(c) = &mut self.channel
            && c.poll(now).is_err()
        {
            self.end_channel(true);
        }
    }

    fn handle_disconnect(&mut self) {
        self.unconfirmed = None;
        if self
            .pending
            .as_ref()
            .is_some_and(|p| matches!(p.what, Pending::Founder(_)))
        {
            // The phone can no longer learn of it: no founder.
            self.pending = None;
            self.io.event(ToyEvent::ConfirmationCancelled);
        }
        if self.pairing.take().is_some() {
            let _ = self.window.abandon_attempt();
            self.io.event(ToyEvent::PairingFailed);
        }
        self.end_channel(true);
        self.io.transmit.clear();
        self.io.close = None;
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.io.transmit.pop_front()
    }

    fn poll_event(&mut self) -> Option<ToyEvent> {
        self.io.events.pop_front()
    }

    fn poll_close(&mut self) -> Option<Error> {
        self.io.close.take()
    }

    fn buffered(&self) -> usize {
        self.channel.as_ref().map_or(0, Channel::buffered)
    }
}

impl<S: FailureStore> std::fmt::Debug for Toy<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toy")
            .field("id", &self.identity.device_id())
            .field("roster_version", &self.roster.as_ref().map(Roster::version))
            .field("session", &self.session())
            .finish_non_exhaustive()
    }
}

/// The hash of an entry in `rosters` with `current`'s version number but another hash, if any.
fn fork_of(current: &Roster, rosters: &[SignedRoster]) -> Option<[u8; 32]> {
    let held = current.signed().hash();
    rosters
        .iter()
        .filter(|r| r.proposal().version() == current.version())
        .map(SignedRoster::hash)
        .find(|h| h != &held)
}

/// The version a proved recovery session proposes for the toy's co-signature, if the toy may
/// ask its user about it (§7.2): one entry, version n + 1 of `current`, chaining from it,
/// signed by `current`'s recovery key, the toy a member of `current`, and the recovery key
/// plus the toy's signature a quorum for the change's class. [`Toy::confirm`] verifies the
/// co-signed result with `Roster::verify_next` (every other rule).
fn recovery_cosignable(
    current: &Roster,
    me: &DeviceIdentity,
    proposed: &[SignedRoster],
) -> Option<SignedRoster> {
    let [next] = proposed else {
        return None;
    };
    let p = next.proposal();
    let chains = p.family() == current.family()
        && p.previous_hash() == &current.signed().hash()
        && p.version() == current.version().checked_add(1)?;
    let mut signers = current.counted_signers(next);
    let by_recovery = signers.contains(&current.recovery_key().id());
    signers.push(me.device_id());
    let completes = current.quorum_met(current.change_to(p).class(), &signers);
    // The toy stays in the family it recovers.
    let stays = current.contains(me.public()) && p.members().contains(me.public());
    (chains && by_recovery && stays && completes).then(|| next.clone())
}
