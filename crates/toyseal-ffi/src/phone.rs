//! The phone's protocol endpoint, sans-IO (docs/spec/pairing.md): the app's BLE code moves
//! whole frames in and out; time comes in as milliseconds of a monotonic clock; events come
//! out. Pairing with the code shows a short authentication string ([`PhoneEvent::Sas`], known
//! once the toy's last pairing frame verified, just before `Paired`) the parent compares with
//! what the toy speaks or blinks; if they differ the app calls `rejectSas`.

use crate::roster::{RecoveryKey, SignedRoster};
use crate::{Identity, PublicKey, ToysealError};
use std::sync::{Arc, Mutex, MutexGuard};
use toyseal_core::OsRng;
use toyseal_pairing::{
    Endpoint, EnvelopeEvent, PairingCode, PairingExpectations, QrPayload, Timestamp,
};

/// Why a pairing or session handshake failed, as the app shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
#[non_exhaustive]
pub enum FailureReason {
    /// The toy is not pairable now (hold its button), or does not know this phone.
    NotPairable,
    /// The toy is busy with another phone; try again in a moment.
    Busy,
    /// Wrong code, or someone in the middle: check the code and try again.
    Authentication,
    /// Not the toy the user scanned, or one that already has a family.
    WrongPeer,
    /// The link dropped or the toy answered out of turn; try again.
    Interrupted,
}

impl FailureReason {
    fn of(f: toyseal_pairing::PhoneFailure) -> Self {
        use toyseal_pairing::PhoneFailure as F;
        match f {
            F::NotPairable => Self::NotPairable,
            F::Busy => Self::Busy,
            F::Authentication => Self::Authentication,
            F::WrongPeer => Self::WrongPeer,
            _ => Self::Interrupted,
        }
    }
}

/// Something the app must act on, in order.
#[derive(Debug, uniffi::Enum)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// Show this six-digit string; the parent confirms it matches the toy's before the app
    /// trusts the pairing.
    Sas {
        /// Six decimal digits.
        sas: String,
    },
    /// Pairing succeeded: pin this toy (store its public key).
    Paired {
        /// The toy.
        toy: Arc<PublicKey>,
        /// Whether a trusted maker attested it.
        attested: bool,
    },
    /// Pairing failed.
    PairingFailed {
        /// Why.
        reason: FailureReason,
    },
    /// A session with the toy is open.
    SessionOpened {
        /// The toy's device id.
        toy_id: String,
    },
    /// The session handshake failed.
    SessionFailed {
        /// Why.
        reason: FailureReason,
    },
    /// The session ended.
    SessionClosed,
    /// Roster versions the toy sent (its co-signature of version 1, or newer versions):
    /// verify them with `Roster` before use.
    Rosters {
        /// Oldest first.
        rosters: Vec<Arc<SignedRoster>>,
    },
    /// The toy accepted (or refused) a pairing window this phone opened.
    PairingWindowAck {
        /// Whether it opened.
        opened: bool,
    },
    /// A whole envelope arrived from the toy: open it with the roster.
    EnvelopeReceived {
        /// The envelope bytes (still sealed).
        envelope: Vec<u8>,
    },
    /// The toy acknowledged every byte of an envelope this phone sent.
    EnvelopeDelivered {
        /// What `sendEnvelope` returned.
        transfer: u32,
    },
    /// The session ended before an outgoing envelope was acknowledged.
    EnvelopeAborted {
        /// What `sendEnvelope` returned.
        transfer: u32,
    },
    /// The toy waits for its user to confirm at the toy (a deliberate gesture there) for up
    /// to `seconds`: show "confirm on the toy". `version` is the roster version the toy would
    /// co-sign, or absent for recording this phone as the founding guardian (the toy admits
    /// it only once it confirmed).
    AwaitingConfirmation {
        /// The proposed roster version, or none for the founding pairing.
        version: Option<u64>,
        /// The confirmation window.
        seconds: u16,
    },
    /// What the toy did with the founding pairing (`version` absent) or a roster version:
    /// anything but `Confirmed` is an error to show (nothing was signed or recorded).
    ToyAnswered {
        /// The roster version, or none for the founding pairing.
        version: Option<u64>,
        /// The answer.
        answer: ToyAnswer,
    },
    /// What the toy made of this phone's recovery proof (`proveRecovery`): with `Proved` the
    /// toy's current roster version follows in `Rosters`; build the next version on it, sign
    /// it with the recovery key (and this phone's key if it adds this phone) and push it
    /// (`pushRosters`); the toy then asks its user to confirm (`AwaitingConfirmation`,
    /// `ToyAnswered`).
    RecoveryAnswered {
        /// The answer.
        answer: RecoveryAnswer,
    },
    /// The toy's roster head has a version this phone holds with another hash: a fork of the
    /// family's chain. Nothing was pushed; show it.
    RosterFork {
        /// The version number.
        version: u64,
    },
    /// Another authenticated message from the toy (acknowledgements, pongs).
    Message {
        /// A short description for logs.
        summary: String,
    },
}

/// The toy's answer to a confirmation request or a roster push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ToyAnswer {
    /// Confirmed at the toy: the founder is recorded, or the version co-signed and applied.
    Confirmed,
    /// Nobody confirmed at the toy in time.
    Expired,
    /// The toy's user declined.
    Declined,
    /// The versions did not verify or chain.
    Refused,
    /// A version with the toy's own number but another hash (a fork).
    Fork,
    /// Another confirmation is pending at the toy.
    Busy,
}

/// The toy's answer to a recovery proof (docs/spec/pairing.md §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RecoveryAnswer {
    /// The proof verified against the roster's recovery key: the toy's current version
    /// follows, and this phone may push one version signed by the key.
    Proved,
    /// The signature does not verify (another key, or a proof made for another session): the
    /// recovery window is closed and the session ends.
    Refused,
    /// No recovery window is open for this session, a proof was already given in it, or a
    /// confirmation is pending.
    Closed,
}

impl RecoveryAnswer {
    fn of(a: toyseal_pairing::RecoveryAnswer) -> Self {
        use toyseal_pairing::RecoveryAnswer as A;
        match a {
            A::Proved => Self::Proved,
            A::Refused => Self::Refused,
            _ => Self::Closed,
        }
    }
}

impl ToyAnswer {
    fn of(a: toyseal_pairing::ToyAnswer) -> Self {
        use toyseal_pairing::ToyAnswer as A;
        match a {
            A::Confirmed => Self::Confirmed,
            A::Expired => Self::Expired,
            A::Declined => Self::Declined,
            A::Fork => Self::Fork,
            A::Busy => Self::Busy,
            _ => Self::Refused,
        }
    }
}

impl PhoneEvent {
    fn of(e: toyseal_pairing::PhoneEvent) -> Self {
        use toyseal_pairing::PhoneEvent as E;
        match e {
            E::Sas(s) => Self::Sas { sas: s.to_string() },
            E::Paired(t) => Self::Paired {
                toy: PublicKey::wrap(t.identity),
                attested: t.attested,
            },
            E::PairingFailed(f) => Self::PairingFailed {
                reason: FailureReason::of(f),
            },
            E::SessionOpened(id) => Self::SessionOpened {
                toy_id: id.to_string(),
            },
            E::SessionFailed(f) => Self::SessionFailed {
                reason: FailureReason::of(f),
            },
            E::SessionClosed => Self::SessionClosed,
            E::Rosters(r) => Self::Rosters {
                rosters: r.into_iter().map(SignedRoster::wrap).collect(),
            },
            E::PairingWindowAck(opened) => Self::PairingWindowAck { opened },
            E::Envelope(EnvelopeEvent::Received { envelope, .. }) => {
                Self::EnvelopeReceived { envelope }
            }
            E::Envelope(EnvelopeEvent::Delivered { transfer, .. }) => {
                Self::EnvelopeDelivered { transfer }
            }
            E::Envelope(EnvelopeEvent::Aborted { transfer }) => Self::EnvelopeAborted { transfer },
            E::AwaitingConfirmation { version, seconds } => {
                Self::AwaitingConfirmation { version, seconds }
            }
            E::ToyAnswered { version, answer } => Self::ToyAnswered {
                version,
                answer: ToyAnswer::of(answer),
            },
            E::RosterFork { version, .. } => Self::RosterFork { version },
            E::RecoveryAnswered(answer) => Self::RecoveryAnswered {
                answer: RecoveryAnswer::of(answer),
            },
            other => Self::Message {
                summary: format!("{other:?}"),
            },
        }
    }
}

/// The phone's protocol endpoint. Feed it every frame from the toy
/// ([`handle_frame`](Self::handle_frame)), send what [`poll_transmit`](Self::poll_transmit)
/// returns, act on [`poll_event`](Self::poll_event), and call
/// [`handle_timeout`](Self::handle_timeout) now and then.
#[derive(uniffi::Object)]
pub struct Phone {
    inner: Mutex<toyseal_pairing::Phone>,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone").finish_non_exhaustive()
    }
}

impl Phone {
    fn lock(&self) -> Result<MutexGuard<'_, toyseal_pairing::Phone>, ToysealError> {
        self.inner.lock().map_err(|_| ToysealError::Internal {
            reason: "a previous call panicked".into(),
        })
    }
}

fn code(text: &str) -> Result<PairingCode, ToysealError> {
    Ok(PairingCode::parse(text)?)
}

#[uniffi::export]
impl Phone {
    /// The endpoint of this phone (a guardian's identity).
    #[uniffi::constructor]
    pub fn new(identity: Arc<Identity>) -> Result<Arc<Self>, ToysealError> {
        if identity.inner.role() != toyseal_core::Role::Guardian {
            return Err(ToysealError::invalid("a phone needs a guardian identity"));
        }
        Ok(Arc::new(Self {
            inner: Mutex::new(toyseal_pairing::Phone::new(identity.inner.clone())),
        }))
    }

    /// Starts pairing with the code the user typed (from the toy's tag, or a guardian's
    /// one-time code). `Sas`, then `Paired` or `PairingFailed` follow.
    pub fn pair(&self, code: String) -> Result<(), ToysealError> {
        let code = self::code(&code)?;
        Ok(self
            .lock()?
            .pair(&code, PairingExpectations::default(), &mut OsRng)?)
    }

    /// Starts pairing with the scanned QR text (`TS1:…`): also checks the toy is the one on
    /// the tag.
    pub fn pair_scanned(&self, qr_text: String) -> Result<(), ToysealError> {
        let qr = QrPayload::parse(&qr_text)?;
        let expect = PairingExpectations {
            fingerprint: Some(qr.fingerprint),
            ..PairingExpectations::default()
        };
        Ok(self.lock()?.pair(&qr.code, expect, &mut OsRng)?)
    }

    /// The parent says the SAS differs from the toy's (a man in the middle, THREATS.md T37):
    /// tells the toy (which undoes the pairing and counts a failed attempt) and counts a
    /// failed pairing here. Call it right after `Sas`/`Paired`, before anything else; then do
    /// not pin the toy. A `PairingFailed` event follows.
    pub fn reject_sas(&self) -> Result<(), ToysealError> {
        Ok(self.lock()?.reject_sas()?)
    }

    /// After too many failures, the user re-scanned the code: allow pairing again.
    pub fn reset_pairing_attempts(&self) -> Result<(), ToysealError> {
        self.lock()?.reset_pairing_attempts();
        Ok(())
    }

    /// Opens a session with a paired toy (its pinned key). `SessionOpened` or
    /// `SessionFailed` follows.
    pub fn open_session(&self, toy: Arc<PublicKey>) -> Result<(), ToysealError> {
        Ok(self.lock()?.open_session(&toy.inner, &mut OsRng)?)
    }

    /// The roster versions this phone knows (oldest first): pushed to the toy at every
    /// session start, so a removal reaches it even if the server withholds it.
    pub fn set_rosters(&self, rosters: Vec<Arc<SignedRoster>>) -> Result<(), ToysealError> {
        self.lock()?
            .set_rosters(rosters.iter().map(|r| r.inner.clone()).collect());
        Ok(())
    }

    /// Pushes roster versions (oldest first) to the toy in session now (e.g. version 1 for
    /// the toy to co-sign; it answers with a `Rosters` event).
    pub fn push_rosters(
        &self,
        rosters: Vec<Arc<SignedRoster>>,
        now_ms: u64,
    ) -> Result<(), ToysealError> {
        let rosters: Vec<_> = rosters.iter().map(|r| r.inner.clone()).collect();
        Ok(self
            .lock()?
            .push_rosters(&rosters, Timestamp::from_millis(now_ms))?)
    }

    /// Starts sending a sealed envelope to the toy in session; returns its transfer id
    /// (`EnvelopeDelivered` follows).
    pub fn send_envelope(&self, envelope: Vec<u8>, now_ms: u64) -> Result<u32, ToysealError> {
        Ok(self
            .lock()?
            .send_envelope(envelope, Timestamp::from_millis(now_ms))?)
    }

    /// Opens a pairing window on the toy for one more phone; returns the one-time code to
    /// show on this phone's screen.
    pub fn open_pairing_window(&self, now_ms: u64) -> Result<String, ToysealError> {
        let code = self
            .lock()?
            .open_pairing_window(Timestamp::from_millis(now_ms), &mut OsRng)?;
        Ok(code.digits().to_owned())
    }

    /// Recovery (docs/spec/pairing.md §7.2): in a session opened in the toy's recovery window
    /// (after a long press at the toy and pairing with its printed code), proves the scanned
    /// recovery key over this session's handshake hash, so the proof is worth nothing in any
    /// other session. `RecoveryAnswered` follows. Drop the key object once the recovery
    /// version is signed.
    pub fn prove_recovery(&self, key: Arc<RecoveryKey>, now_ms: u64) -> Result<(), ToysealError> {
        Ok(self
            .lock()?
            .prove_recovery(&key.inner, Timestamp::from_millis(now_ms))?)
    }

    /// Ends the session in order.
    pub fn close_session(&self, now_ms: u64) -> Result<(), ToysealError> {
        Ok(self.lock()?.close_session(Timestamp::from_millis(now_ms))?)
    }

    /// One whole frame from the toy.
    pub fn handle_frame(&self, frame: Vec<u8>, now_ms: u64) -> Result<(), ToysealError> {
        self.lock()?
            .handle_frame(&frame, Timestamp::from_millis(now_ms), &mut OsRng);
        Ok(())
    }

    /// Time passed (runs the session's idle timer).
    pub fn handle_timeout(&self, now_ms: u64) -> Result<(), ToysealError> {
        self.lock()?.handle_timeout(Timestamp::from_millis(now_ms));
        Ok(())
    }

    /// The BLE link dropped: whatever ran on it ends.
    pub fn handle_disconnect(&self) -> Result<(), ToysealError> {
        self.lock()?.handle_disconnect();
        Ok(())
    }

    /// The next frame to send to the toy, or `None`.
    pub fn poll_transmit(&self) -> Result<Option<Vec<u8>>, ToysealError> {
        Ok(self.lock()?.poll_transmit())
    }

    /// The next event, or `None`.
    pub fn poll_event(&self) -> Result<Option<PhoneEvent>, ToysealError> {
        Ok(self.lock()?.poll_event().map(PhoneEvent::of))
    }

    /// Set when the phone wants the link dropped (the toy broke a protocol rule): drop it,
    /// then call `handle_disconnect`.
    pub fn poll_close(&self) -> Result<bool, ToysealError> {
        Ok(self.lock()?.poll_close().is_some())
    }
}
