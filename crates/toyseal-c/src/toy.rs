//! The toy's endpoint behind an opaque handle: frames in, frames and events out.

use crate::result::{free_handle, guard, handle_mut, input, non_null, output, toyseal_result};
use crate::storage::{Storage, toyseal_slot, toyseal_storage};
use std::collections::VecDeque;
use std::sync::Arc;
use toyseal_core::{DeviceIdentity, OsRng};
use toyseal_pairing::{
    CodeKind, Confirmation, Endpoint, EnvelopeEvent, PairingCode, Timestamp, Toy, ToyEvent,
};

/// The toy: its identity, pairing window, session and roster. Create with
/// [`toyseal_toy_new`], free with [`toyseal_toy_free`]. Not thread-safe: use it from one
/// thread (or behind the caller's lock).
#[allow(non_camel_case_types)]
pub struct toyseal_toy {
    pub(crate) toy: Toy<Storage>,
    pub(crate) storage: Storage,
    events: VecDeque<toyseal_event>,
    frame: Option<Vec<u8>>,
}

/// What happened; `kind` says which other fields mean something.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum toyseal_event_kind {
    /// No event is pending.
    None = 0,
    /// Speak or blink `sas` (6 decimal digits, `%06u`); the parent compares it with the phone.
    /// Known once the phone's PAIR_CONFIRM verified: it comes just before
    /// `CONFIRMATION_REQUESTED` (the parent compares, then confirms at the toy).
    Sas = 1,
    /// A phone (`device_id`) paired. A founding guardian (confirmed at the toy: this comes from
    /// `toyseal_toy_confirm`) was stored in slot Founder; if that store failed, the call that
    /// queued this event returned `TOYSEAL_RESULT_STORAGE` (the pairing holds until the next
    /// boot only). A phone that paired with the printed code in the recovery window
    /// (`toyseal_toy_open_recovery_window`) is only the recovery candidate: it is never stored
    /// as founder and governs nothing until `RecoveryProved` and a confirmed recovery version.
    Paired = 2,
    /// A pairing attempt failed (wrong code, tampering, timeout, disconnect), or the phone
    /// rejected the SAS right after PAIR_DONE (the parent saw different codes): that pairing is
    /// undone (a pending confirmation is cancelled) and slot Founder holds the previous founder
    /// again (empty if none; with a roster, e.g. a rejected pairing in the recovery window,
    /// slot Founder is left as it was).
    PairingFailed = 3,
    /// A guardian (`device_id`) opened a pairing window for one new phone.
    PairingWindowOpened = 4,
    /// A session with the phone `device_id` is open.
    SessionOpened = 5,
    /// The session ended.
    SessionClosed = 6,
    /// An application message arrived over the session (not exposed in this version).
    Message = 7,
    /// An envelope of `length` bytes arrived (opening envelopes is not in this ABI yet).
    EnvelopeReceived = 8,
    /// The phone acknowledged every byte of envelope `transfer` (`length` bytes).
    EnvelopeDelivered = 9,
    /// The session ended before envelope `transfer` was acknowledged: deliver it again later.
    EnvelopeAborted = 10,
    /// The toy verified and co-signed/applied roster version `roster_version`. It was stored
    /// in slot Roster; if that store failed, the call that queued this event returned
    /// `TOYSEAL_RESULT_STORAGE` (the roster holds until the next boot only).
    RosterApplied = 11,
    /// A roster update did not verify; nothing changed.
    RosterRefused = 12,
    /// Drop the link now, then call `toyseal_toy_disconnect` (the peer broke a rule).
    CloseRequested = 13,
    /// The toy signs (or records a founder) only if its user confirms at the toy before
    /// `expires_ms`: speak or blink the summary — `confirmation` says what (a founding
    /// guardian `device_id`, or roster version `roster_version` proposed by `device_id`
    /// adding `added`, removing `removed`, changing `changed` members, read them with
    /// `toyseal_toy_confirmation_entry`; `recovery_key_changed`) — then call
    /// `toyseal_toy_confirm` on a deliberate gesture (one a child does not make in play,
    /// e.g. a long hold of two buttons) or `toyseal_toy_decline`. One at a time.
    ConfirmationRequested = 14,
    /// The pending confirmation expired (`toyseal_toy_handle_timeout`): nothing was signed or
    /// recorded; the phone was told.
    ConfirmationExpired = 15,
    /// The user declined: nothing was signed or recorded; the phone was told.
    ConfirmationDeclined = 16,
    /// The pending confirmation ended with its session or link: nothing was signed.
    ConfirmationCancelled = 17,
    /// A roster version `roster_version` with the number of the toy's own but another hash (a
    /// fork of the family's chain) was refused. Show it.
    RosterFork = 18,
    /// The phone `device_id`, which paired with the printed code in the recovery window,
    /// proved the family's recovery key over its session: it may now push one version signed
    /// by the key, which the toy co-signs only after a second confirmation at the toy
    /// (`ConfirmationRequested` with `confirmation == TOYSEAL_CONFIRMATION_RECOVERY`).
    RecoveryProved = 19,
    /// A recovery proof did not verify (another key, or replayed from another session): the
    /// recovery window closed (`RecoveryWindowClosed` follows). Show it.
    RecoveryRefused = 20,
    /// The recovery window closed: it expired, a proof or version was refused, the recovery
    /// confirmation expired or was declined, or the recovery succeeded (then `RosterApplied`
    /// came first). The printed code admits no one again. Stop showing the window.
    RecoveryWindowClosed = 21,
}

/// What a `ConfirmationRequested` event asks the user to confirm.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum toyseal_confirmation {
    /// Not a `ConfirmationRequested` event.
    None = 0,
    /// Record the phone `device_id` (which just paired with the printed code; the parent
    /// compared the SAS) as the founding guardian.
    Founder = 1,
    /// Co-sign roster version `roster_version`, proposed by the guardian `device_id` in session.
    Roster = 2,
    /// Recovery: co-sign roster version `roster_version`, signed by the family's recovery key
    /// and pushed by `device_id`, the phone that proved the key in the recovery window (the
    /// summary fields and `toyseal_toy_confirmation_entry` as for `Roster`). With the toy's
    /// signature the recovery key alone changes the family's guardians: speak it as such
    /// ("a new phone replaces the family's phones").
    Recovery = 3,
}

/// One line of a pending roster change's summary (`toyseal_toy_confirmation_entry`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct toyseal_change_entry {
    /// 1: added, 2: removed, 3: kept with another role or keys.
    pub change: u8,
    /// The member's role: 1 toy, 2 guardian (for a change, the role it had).
    pub role: u8,
    /// For a change (3), the new role; else 0.
    pub new_role: u8,
    /// The member's device id.
    pub device_id: [u8; 16],
}

/// One event (see [`toyseal_event_kind`]).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct toyseal_event {
    /// What happened.
    pub kind: toyseal_event_kind,
    /// The short authentication string (`Sas`).
    pub sas: u32,
    /// The transfer id (`EnvelopeDelivered`, `EnvelopeAborted`, `EnvelopeReceived`).
    pub transfer: u32,
    /// The envelope length (`EnvelopeReceived`, `EnvelopeDelivered`).
    pub length: u64,
    /// The roster version (`RosterApplied`).
    pub roster_version: u64,
    /// The peer's device id (`Paired`, `PairingWindowOpened`, `SessionOpened`; the founder or
    /// the proposing guardian for `ConfirmationRequested`).
    pub device_id: [u8; 16],
    /// What `ConfirmationRequested` asks (`None` for other events).
    pub confirmation: toyseal_confirmation,
    /// When the pending confirmation expires, on the caller's clock (`ConfirmationRequested`).
    pub expires_ms: u64,
    /// Members the proposed roster adds (`ConfirmationRequested`, `Roster`).
    pub added: u32,
    /// Members it removes.
    pub removed: u32,
    /// Members it keeps with another role or keys.
    pub changed: u32,
    /// Whether it sets, replaces or drops the family's recovery key.
    pub recovery_key_changed: bool,
}

impl toyseal_event {
    fn of(kind: toyseal_event_kind) -> Self {
        Self {
            kind,
            sas: 0,
            transfer: 0,
            length: 0,
            roster_version: 0,
            device_id: [0; 16],
            confirmation: toyseal_confirmation::None,
            expires_ms: 0,
            added: 0,
            removed: 0,
            changed: 0,
            recovery_key_changed: false,
        }
    }
}

impl toyseal_toy {
    /// Turns the endpoint's events into C events, persisting what must survive a reboot. A
    /// storage failure is reported after every event was queued (none is lost).
    fn collect_events(&mut self) -> Result<(), toyseal_result> {
        use toyseal_event_kind as K;
        let mut stored = Ok(());
        while let Some(e) = self.toy.poll_event() {
            let mut ev = toyseal_event::of(K::None);
            match e {
                ToyEvent::Sas(s) => {
                    ev.kind = K::Sas;
                    ev.sas = s.value();
                }
                ToyEvent::Paired { phone, code } => {
                    // Only the printed code outside the recovery window founds the family: a
                    // recovery candidate (`CodeKind::Recovery`) is never recorded as founder.
                    if code == CodeKind::Printed {
                        stored = stored
                            .and(self.storage.store(toyseal_slot::Founder, &phone.to_bytes()));
                    }
                    ev.kind = K::Paired;
                    ev.device_id = *phone.device_id().as_bytes();
                }
                ToyEvent::PairingFailed => ev.kind = K::PairingFailed,
                ToyEvent::PairingRejected { .. } => {
                    // The phone rejected the SAS right after PAIR_DONE (T37): the founder the
                    // toy just stored is undone. PAIRING_FAILED was already queued for it.
                    // With a roster no pairing stored a founder (a recovery candidate never
                    // is one): slot Founder stays as it is.
                    if self.toy.roster().is_some() {
                        continue;
                    }
                    let founder = match self.toy.founder() {
                        Some(f) => f.to_bytes().to_vec(),
                        None => Vec::new(),
                    };
                    stored = stored.and(self.storage.store(toyseal_slot::Founder, &founder));
                    continue;
                }
                ToyEvent::PairingWindowOpened { by } => {
                    ev.kind = K::PairingWindowOpened;
                    ev.device_id = *by.as_bytes();
                }
                ToyEvent::SessionOpened(id) => {
                    ev.kind = K::SessionOpened;
                    ev.device_id = *id.as_bytes();
                }
                ToyEvent::SessionClosed => ev.kind = K::SessionClosed,
                ToyEvent::Message(_) => ev.kind = K::Message,
                ToyEvent::Envelope(EnvelopeEvent::Received { transfer, envelope }) => {
                    ev.kind = K::EnvelopeReceived;
                    ev.transfer = transfer;
                    ev.length = envelope.len() as u64;
                }
                ToyEvent::Envelope(EnvelopeEvent::Delivered { transfer, len }) => {
                    ev.kind = K::EnvelopeDelivered;
                    ev.transfer = transfer;
                    ev.length = len as u64;
                }
                ToyEvent::Envelope(EnvelopeEvent::Aborted { transfer }) => {
                    ev.kind = K::EnvelopeAborted;
                    ev.transfer = transfer;
                }
                ToyEvent::RosterApplied(r) => {
                    // Stored before this call returns, so before the co-signed version the
                    // toy queued goes out: a toy that reboots comes back with it.
                    stored = stored.and(self.storage.store_roster(&r));
                    ev.kind = K::RosterApplied;
                    ev.roster_version = r.version();
                }
                ToyEvent::RosterRefused => ev.kind = K::RosterRefused,
                ToyEvent::RosterFork { version, .. } => {
                    ev.kind = K::RosterFork;
                    ev.roster_version = version;
                }
                ToyEvent::ConfirmationRequested {
                    summary,
                    expires_at,
                } => {
                    ev.kind = K::ConfirmationRequested;
                    ev.expires_ms = expires_at.as_millis();
                    let recovery = matches!(summary, Confirmation::Recovery(_));
                    match summary {
                        Confirmation::Founder { phone } => {
                            ev.confirmation = toyseal_confirmation::Founder;
                            ev.device_id = *phone.as_bytes();
                        }
                        Confirmation::Roster(c) | Confirmation::Recovery(c) => {
                            ev.confirmation = if recovery {
                                toyseal_confirmation::Recovery
                            } else {
                                toyseal_confirmation::Roster
                            };
                            ev.device_id = *c.by.as_bytes();
                            ev.roster_version = c.version;
                            ev.added = u32::try_from(c.added.len()).unwrap_or(u32::MAX);
                            ev.removed = u32::try_from(c.removed.len()).unwrap_or(u32::MAX);
                            ev.changed = u32::try_from(c.changed.len()).unwrap_or(u32::MAX);
                            ev.recovery_key_changed = c.recovery_key_changed;
                        }
                        _ => ev.confirmation = toyseal_confirmation::None,
                    }
                }
                ToyEvent::ConfirmationExpired => ev.kind = K::ConfirmationExpired,
                ToyEvent::ConfirmationDeclined => ev.kind = K::ConfirmationDeclined,
                ToyEvent::ConfirmationCancelled => ev.kind = K::ConfirmationCancelled,
                ToyEvent::RecoveryProved { phone } => {
                    ev.kind = K::RecoveryProved;
                    ev.device_id = *phone.as_bytes();
                }
                ToyEvent::RecoveryRefused => ev.kind = K::RecoveryRefused,
                ToyEvent::RecoveryWindowClosed => ev.kind = K::RecoveryWindowClosed,
                // A later toyseal may add events; they are not lost silently: the toy goes on.
                _ => continue,
            }
            self.events.push_back(ev);
        }
        if self.toy.poll_close().is_some() {
            self.events.push_back(toyseal_event::of(K::CloseRequested));
        }
        stored
    }
}

/// Boots the toy: loads its identity from `storage` (generating and storing one on first
/// boot), the lifetime failure counter, its roster (slot Roster) or, before roster version 1,
/// the founding guardian, and takes the code printed on its tag (`code_len` ASCII digits, at
/// least 8). On success `*toy_out` owns a new handle. A slot that cannot be read or does not
/// parse — an identity, or a roster that does not restore (corrupt, or not listing this toy)
/// — is `TOYSEAL_RESULT_STORAGE` and no handle, never a boot without the family: the firmware
/// decides (clear slot Roster and boot as before roster version 1, or factory reset).
///
/// # Safety
/// `storage` must point to a valid `toyseal_storage` whose context and callbacks stay valid
/// until the toy is freed; `code` must point to `code_len` readable bytes; `toy_out` must be
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_new(
    storage: *const toyseal_storage,
    code: *const u8,
    code_len: usize,
    toy_out: *mut *mut toyseal_toy,
) -> toyseal_result {
    guard(|| {
        non_null(storage)?;
        non_null(toy_out)?;
        // SAFETY: `toy_out` is non-NULL and writable (caller's contract): clear it first so a
        // failure never leaves a stale pointer behind.
        unsafe { toy_out.write(std::ptr::null_mut()) };
        // SAFETY: non-NULL and valid for reads (caller's contract).
        let storage = Storage::new(unsafe { &*storage })?;
        // SAFETY: `code_len` readable bytes at `code` (caller's contract).
        let code = unsafe { input(code, code_len) }?;
        let code = std::str::from_utf8(code).map_err(|_| toyseal_result::InvalidArgument)?;
        let code = PairingCode::parse(code).map_err(|_| toyseal_result::InvalidArgument)?;
        let identity: Arc<DeviceIdentity> = Arc::new(storage.identity()?);
        let roster = storage.roster(identity.public())?;
        let mut builder = Toy::builder(identity, code, storage);
        // The founder slot matters only before roster version 1.
        if let Some(roster) = roster {
            builder = builder.roster(roster);
        } else if let Some(founder) = storage.founder()? {
            builder = builder.founder(founder);
        }
        let toy = builder.build().map_err(|_| toyseal_result::Storage)?;
        let handle = Box::new(toyseal_toy {
            toy,
            storage,
            events: VecDeque::new(),
            frame: None,
        });
        // SAFETY: checked writable above.
        unsafe { toy_out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Frees a toy (NULL is a no-op). Its secrets are wiped.
///
/// # Safety
/// `toy` must be NULL or a handle from [`toyseal_toy_new`] not freed before; it must not be
/// used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_free(toy: *mut toyseal_toy) {
    // SAFETY: NULL or a live handle from `Box::into_raw`, freed once (caller's contract).
    unsafe { free_handle(toy) }
}

/// Writes the toy's 16-byte device id into `out` (`out_len` must be at least 16).
///
/// # Safety
/// `toy` must be a live handle; `out` must point to `out_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_device_id(
    toy: *mut toyseal_toy,
    out: *mut u8,
    out_len: usize,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        let id = toy.toy.identity().device_id();
        let mut len = 0usize;
        // SAFETY: `out` has `out_len` writable bytes (caller's contract); `len` is local.
        unsafe { output(id.as_bytes(), out, out_len, &mut len) }
    })
}

/// The pairing button was held: opens a pairing window for the printed code (default 3
/// minutes). `now_ms` is the caller's monotonic clock in milliseconds.
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_press_pair_button(
    toy: *mut toyseal_toy,
    now_ms: u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        toy.toy.press_pair_button(Timestamp::from_millis(now_ms))?;
        Ok(())
    })
}

/// Factory reset: forgets the founding guardian and the roster (emptying slots Founder and
/// Roster), the session and the lifetime failure counter. The identity stays: a reset toy
/// pairs again with its printed code.
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_factory_reset(toy: *mut toyseal_toy) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        toy.storage.store(toyseal_slot::Founder, &[])?;
        toy.storage.store(toyseal_slot::Roster, &[])?;
        toy.toy.factory_reset()?;
        toy.frame = None;
        toy.events.clear();
        toy.collect_events()
    })
}

/// Handles one whole (reassembled) frame from the phone. Then drain
/// [`toyseal_toy_poll_transmit`] and [`toyseal_toy_poll_event`]. Hostile frames are not an
/// error: the protocol answers them itself.
///
/// # Safety
/// `toy` must be a live handle; `frame` must point to `frame_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_handle_frame(
    toy: *mut toyseal_toy,
    frame: *const u8,
    frame_len: usize,
    now_ms: u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        // SAFETY: caller's contract (`frame_len` readable bytes).
        let frame = unsafe { input(frame, frame_len) }?;
        toy.toy
            .handle_frame(frame, Timestamp::from_millis(now_ms), &mut OsRng);
        toy.collect_events()
    })
}

/// Runs the timers (pairing attempt, window, idle session). Call it whenever time passed
/// (every 100 ms to 1 s is plenty).
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_handle_timeout(
    toy: *mut toyseal_toy,
    now_ms: u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        toy.toy.handle_timeout(Timestamp::from_millis(now_ms));
        toy.collect_events()
    })
}

/// The link dropped (or the caller dropped it after `CloseRequested`): a pairing attempt or
/// session on it ends, and unsent frames are discarded.
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_disconnect(toy: *mut toyseal_toy) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        toy.toy.handle_disconnect();
        toy.frame = None;
        toy.collect_events()
    })
}

/// Copies the next frame to send into `(buf, cap)` and its length into `*len`; `*len == 0`
/// means nothing to send. When `cap` is too small, returns `TOYSEAL_RESULT_BUFFER_TOO_SMALL`
/// with the needed length in `*len` and keeps the frame for the next call (pass `NULL, 0` to
/// ask for the length).
///
/// # Safety
/// `toy` must be a live handle; `buf` must point to `cap` writable bytes; `len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_poll_transmit(
    toy: *mut toyseal_toy,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(len)?;
        if toy.frame.is_none() {
            toy.frame = toy.toy.poll_transmit();
        }
        let frame: &[u8] = match &toy.frame {
            Some(f) => f,
            None => &[], // nothing to send: `*len` becomes 0
        };
        // SAFETY: caller's contract (`cap` writable bytes at `buf`, `len` writable).
        unsafe { output(frame, buf, cap, len) }?;
        toy.frame = None;
        Ok(())
    })
}

/// Takes the next event into `*event` (`kind == TOYSEAL_EVENT_KIND_NONE` when none).
///
/// # Safety
/// `toy` must be a live handle; `event` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_poll_event(
    toy: *mut toyseal_toy,
    event: *mut toyseal_event,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(event)?;
        let next = toy
            .events
            .pop_front()
            .unwrap_or(toyseal_event::of(toyseal_event_kind::None));
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { event.write(next) };
        Ok(())
    })
}

/// Starts delivering a sealed envelope (copied) to the phone in session; `*transfer` gets its
/// transfer id. `EnvelopeDelivered` follows once the phone acknowledged every byte.
///
/// # Safety
/// `toy` must be a live handle; `envelope` must point to `len` readable bytes; `transfer`
/// must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_send_envelope(
    toy: *mut toyseal_toy,
    envelope: *const u8,
    len: usize,
    now_ms: u64,
    transfer: *mut u32,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(transfer)?;
        // SAFETY: caller's contract (`len` readable bytes).
        let envelope = unsafe { input(envelope, len) }?;
        if envelope.is_empty() {
            return Err(toyseal_result::InvalidArgument);
        }
        let id = toy
            .toy
            .send_envelope(envelope.to_vec(), Timestamp::from_millis(now_ms))?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { transfer.write(id) };
        toy.collect_events()
    })
}

/// Starts delivering a sealed envelope of `total_len` bytes that the firmware keeps in its own
/// storage (flash): toyseal holds at most one window of it (4 chunks of 4 KiB by default),
/// whatever its length. `*transfer` gets its transfer id. Then, after this call and after
/// every `toyseal_toy_handle_frame`, ask [`toyseal_toy_envelope_request`] which bytes the
/// window takes and supply them with [`toyseal_toy_send_envelope_bytes`]. `EnvelopeDelivered`
/// follows once the phone acknowledged every byte; `EnvelopeAborted` if the session ends
/// first. The frames on the wire are those of [`toyseal_toy_send_envelope`].
///
/// # Safety
/// `toy` must be a live handle; `transfer` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_send_envelope_begin(
    toy: *mut toyseal_toy,
    total_len: usize,
    transfer: *mut u32,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(transfer)?;
        if total_len == 0 {
            return Err(toyseal_result::InvalidArgument);
        }
        let total = u32::try_from(total_len).map_err(|_| toyseal_result::TooLarge)?;
        let id = toy.toy.send_envelope_streamed(total)?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { transfer.write(id) };
        toy.collect_events()
    })
}

/// Which envelope bytes the streamed delivery needs now: bytes `*offset .. *offset + *len` of
/// transfer `*transfer`. `*len == 0` means none (no streamed delivery, or the window is full
/// until the phone acknowledges more: ask again after the next frame). Supplying fewer than
/// `*len` bytes is fine (e.g. one flash page at a time).
///
/// # Safety
/// `toy` must be a live handle; `transfer`, `offset` and `len` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_envelope_request(
    toy: *mut toyseal_toy,
    transfer: *mut u32,
    offset: *mut usize,
    len: *mut usize,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(transfer)?;
        non_null(offset)?;
        non_null(len)?;
        let (t, o, l) = match toy.toy.envelope_request() {
            Some(r) => (r.transfer, r.offset as usize, r.len as usize),
            None => (0, 0, 0),
        };
        // SAFETY: all three are non-NULL and writable (caller's contract).
        unsafe {
            transfer.write(t);
            offset.write(o);
            len.write(l);
        }
        Ok(())
    })
}

/// Supplies `len` bytes at `offset` of the streamed delivery `transfer`; the chunks they
/// complete are queued for [`toyseal_toy_poll_transmit`]. The bytes must start at the offset
/// [`toyseal_toy_envelope_request`] gave and be at most its length, else
/// `TOYSEAL_RESULT_INVALID_ARGUMENT` (nothing consumed); an unknown or finished transfer is
/// `TOYSEAL_RESULT_MISUSE`; without a session `TOYSEAL_RESULT_NO_SESSION`. The bytes are
/// copied: the buffer may be reused when the call returns.
///
/// # Safety
/// `toy` must be a live handle; `bytes` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_send_envelope_bytes(
    toy: *mut toyseal_toy,
    transfer: u32,
    offset: usize,
    bytes: *const u8,
    len: usize,
    now_ms: u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        // SAFETY: caller's contract (`len` readable bytes).
        let bytes = unsafe { input(bytes, len) }?;
        let offset = u32::try_from(offset).map_err(|_| toyseal_result::InvalidArgument)?;
        toy.toy
            .provide_envelope_bytes(transfer, offset, bytes, Timestamp::from_millis(now_ms))?;
        toy.collect_events()
    })
}

/// Writes the version of the toy's verified roster into `*version`, or returns
/// `TOYSEAL_RESULT_NO_ROSTER`.
///
/// # Safety
/// `toy` must be a live handle; `version` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_roster_version(
    toy: *mut toyseal_toy,
    version: *mut u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(version)?;
        let v = toy.toy.roster().ok_or(toyseal_result::NoRoster)?.version();
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { version.write(v) };
        Ok(())
    })
}

/// The user made the deliberate confirmation gesture for the pending `ConfirmationRequested`
/// (the firmware chooses the gesture and MUST choose one a child does not make in play: a
/// long hold of two buttons, say). The toy records the founder (`Paired`, slot Founder) or
/// co-signs, verifies and applies the roster version — also a recovery version
/// (`TOYSEAL_CONFIRMATION_RECOVERY`, then `RecoveryWindowClosed`) — (`RosterApplied`, slot
/// Roster; or `RosterRefused` if it does not verify); then drain [`toyseal_toy_poll_transmit`] and
/// [`toyseal_toy_poll_event`]. `TOYSEAL_RESULT_MISUSE` when nothing is pending (or it just
/// expired: see the `ConfirmationExpired` event).
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_confirm(toy: *mut toyseal_toy, now_ms: u64) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        let r = toy.toy.confirm(Timestamp::from_millis(now_ms));
        let stored = toy.collect_events();
        r.map_err(|_| toyseal_result::Misuse)?;
        stored
    })
}

/// The user declined the pending confirmation: nothing is signed or recorded
/// (`ConfirmationDeclined`); the phone is told. `TOYSEAL_RESULT_MISUSE` when nothing is
/// pending.
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_decline(toy: *mut toyseal_toy, now_ms: u64) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        let r = toy.toy.decline(Timestamp::from_millis(now_ms));
        let stored = toy.collect_events();
        r.map_err(|_| toyseal_result::Misuse)?;
        stored
    })
}

/// Sets the confirmation window: how long a pending confirmation waits for
/// [`toyseal_toy_confirm`] (default 30 s; 1 … 65535 s, else `TOYSEAL_RESULT_INVALID_ARGUMENT`).
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_set_confirmation_window(
    toy: *mut toyseal_toy,
    seconds: u32,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        if seconds == 0 || seconds > u32::from(u16::MAX) {
            return Err(toyseal_result::InvalidArgument);
        }
        let policy = toy
            .toy
            .confirmation_policy()
            .with_window(std::time::Duration::from_secs(u64::from(seconds)));
        toy.toy.set_confirmation_policy(policy);
        Ok(())
    })
}

/// Copies line `index` (0 ≤ index < added + removed + changed of the `ConfirmationRequested`
/// event: the added members first, then the removed, then the changed) of the pending roster
/// change (a roster or recovery confirmation) into `*entry`. `TOYSEAL_RESULT_MISUSE` when no
/// roster or recovery confirmation is pending,
/// `TOYSEAL_RESULT_INVALID_ARGUMENT` for an index past the end.
///
/// # Safety
/// `toy` must be a live handle; `entry` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_confirmation_entry(
    toy: *mut toyseal_toy,
    index: u32,
    entry: *mut toyseal_change_entry,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(entry)?;
        let c = match toy.toy.pending_confirmation() {
            Some((Confirmation::Roster(c) | Confirmation::Recovery(c), _)) => c,
            _ => return Err(toyseal_result::Misuse),
        };
        let line = |change: u8, (id, role): &(toyseal_core::DeviceId, toyseal_core::Role)| {
            toyseal_change_entry {
                change,
                role: role.to_byte(),
                new_role: 0,
                device_id: *id.as_bytes(),
            }
        };
        let lines: Vec<toyseal_change_entry> = c
            .added
            .iter()
            .map(|a| line(1, a))
            .chain(c.removed.iter().map(|r| line(2, r)))
            .chain(c.changed.iter().map(|(id, old, new)| toyseal_change_entry {
                change: 3,
                role: old.to_byte(),
                new_role: new.to_byte(),
                device_id: *id.as_bytes(),
            }))
            .collect();
        let e = usize::try_from(index)
            .ok()
            .and_then(|i| lines.get(i))
            .ok_or(toyseal_result::InvalidArgument)?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { entry.write(*e) };
        Ok(())
    })
}

/// Sets the recovery window: how long [`toyseal_toy_open_recovery_window`] keeps the printed
/// code open for a recovering phone (default 300 s; 1 … 65535 s, else
/// `TOYSEAL_RESULT_INVALID_ARGUMENT`). The recovery confirmation expires after the
/// confirmation window ([`toyseal_toy_set_confirmation_window`]) or when the recovery window
/// closes, whichever is first. Takes effect at the next long press.
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_set_recovery_window(
    toy: *mut toyseal_toy,
    seconds: u32,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        if seconds == 0 || seconds > u32::from(u16::MAX) {
            return Err(toyseal_result::InvalidArgument);
        }
        let policy = toy
            .toy
            .confirmation_policy()
            .with_recovery_window(std::time::Duration::from_secs(u64::from(seconds)));
        toy.toy.set_confirmation_policy(policy);
        Ok(())
    })
}

/// The recovery long press (docs/spec/pairing.md §7.2): the family lost its only phone. Call
/// it on a gesture distinct from the pairing button's and from the confirmation's (a long
/// press the firmware documents for parents, e.g. 10 s on the pairing button). It opens the
/// **recovery window** (default 300 s, [`toyseal_toy_set_recovery_window`]) and a pairing
/// window for the printed code: a phone not on the roster may pair with it (`Paired`; never
/// stored as founder) and open a session, in which it proves the family's recovery key
/// (`RecoveryProved`) and pushes one version signed by it; the toy then asks its user again
/// (`ConfirmationRequested`, `TOYSEAL_CONFIRMATION_RECOVERY`) and, on
/// [`toyseal_toy_confirm`], co-signs and applies it (`RosterApplied`, stored in slot Roster).
/// `RecoveryWindowClosed` ends the window in every case. A one-time code in force is
/// withdrawn; pressing again restarts the window (forgetting a phone paired in it).
///
/// Errors: `TOYSEAL_RESULT_NOT_PAIRABLE` without a roster (before roster version 1 use
/// [`toyseal_toy_press_pair_button`]), `TOYSEAL_RESULT_BUSY` while a confirmation is pending,
/// `TOYSEAL_RESULT_PAIRING_DISABLED` after too many failed pairings,
/// `TOYSEAL_RESULT_STORAGE` if an event it queued failed to persist. Then drain
/// [`toyseal_toy_poll_transmit`] and [`toyseal_toy_poll_event`].
///
/// # Safety
/// `toy` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_open_recovery_window(
    toy: *mut toyseal_toy,
    now_ms: u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        let r = toy.toy.open_recovery_window(Timestamp::from_millis(now_ms));
        // Opening may end a previous recovery session or run timers: keep their events.
        let stored = toy.collect_events();
        r?;
        stored
    })
}

/// Writes when the open recovery window closes (on the caller's clock) into `*closes_ms`;
/// `TOYSEAL_RESULT_MISUSE` when no recovery window is open.
///
/// # Safety
/// `toy` must be a live handle; `closes_ms` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_toy_recovery_window(
    toy: *mut toyseal_toy,
    closes_ms: *mut u64,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let toy = unsafe { handle_mut(toy) }?;
        non_null(closes_ms)?;
        let at = toy
            .toy
            .recovery_window()
            .ok_or(toyseal_result::Misuse)?
            .as_millis();
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { closes_ms.write(at) };
        Ok(())
    })
}
