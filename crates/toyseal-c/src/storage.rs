//! The caller's durable storage, as two callbacks over named slots: the toy's identity, its
//! lifetime pairing-failure counter, its envelope sequence counter, its founding guardian and
//! its current roster version.

use crate::result::toyseal_result;
use std::ffi::{c_int, c_void};
use toyseal_core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal_pairing::FailureStore;
use toyseal_roster::{Roster, SignedRoster};
use zeroize::Zeroizing;

/// What a storage slot holds.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum toyseal_slot {
    /// The toy's secret identity (a secret: keep it in protected flash; at most 256 bytes).
    Identity = 0,
    /// The lifetime count of failed pairings (4 bytes, little endian).
    FailureCount = 1,
    /// The sender state: the last envelope sequence number used (8 bytes, little endian)
    /// and that envelope's header hash (32 bytes), 40 bytes in all.
    Sequence = 2,
    /// The founding guardian's public identity, until roster version 1 exists.
    Founder = 3,
    /// The toy's current signed roster, as it verified it: up to 16384 bytes
    /// (`TOYSEAL_ROSTER_SLOT_CAP`; every other slot is at most 256). Written, durably, whenever
    /// the roster version changes, before the call that changed it returns; emptied by a
    /// factory reset. Restored at boot: keep it beside the identity, as trusted as it.
    Roster = 4,
}

/// The most bytes the `Roster` slot holds, and the `cap` toyseal passes when loading it. A
/// signed roster at its limits (32 members, a recovery key, 32 departed records, a signature
/// from each allowed signer) encodes to about 10 KiB.
pub const TOYSEAL_ROSTER_SLOT_CAP: usize = 16 * 1024;

/// The caller's storage. `ctx` is passed back to both callbacks untouched; it (and the
/// callbacks) must stay valid until the toy is freed. Callbacks are called only from inside
/// toyseal calls on the same thread.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct toyseal_storage {
    /// The caller's context.
    pub ctx: *mut c_void,
    /// Reads a slot into `(buf, cap)` (`cap` is 256 for every slot but `Roster`, where it is
    /// `TOYSEAL_ROSTER_SLOT_CAP`) and writes the stored length to `*len`: 0 when the slot was
    /// never written. Returns 0 on success, anything else on failure.
    pub load: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            slot: toyseal_slot,
            buf: *mut u8,
            cap: usize,
            len: *mut usize,
        ) -> c_int,
    >,
    /// Durably stores `len` bytes at `data` into a slot, replacing what it held. Returns 0
    /// only once the bytes are durable, anything else on failure.
    pub store: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            slot: toyseal_slot,
            data: *const u8,
            len: usize,
        ) -> c_int,
    >,
}

/// Largest slot toyseal reads, but the roster.
const SLOT_CAP: usize = 256;

impl toyseal_slot {
    /// The `cap` passed when loading this slot.
    fn cap(self) -> usize {
        match self {
            toyseal_slot::Roster => TOYSEAL_ROSTER_SLOT_CAP,
            _ => SLOT_CAP,
        }
    }
}

/// The checked storage: both callbacks present.
#[derive(Clone, Copy)]
pub(crate) struct Storage {
    ctx: *mut c_void,
    load: LoadFn,
    store: StoreFn,
}

type LoadFn = unsafe extern "C" fn(*mut c_void, toyseal_slot, *mut u8, usize, *mut usize) -> c_int;
type StoreFn = unsafe extern "C" fn(*mut c_void, toyseal_slot, *const u8, usize) -> c_int;

impl Storage {
    pub fn new(s: &toyseal_storage) -> Result<Self, toyseal_result> {
        match (s.load, s.store) {
            (Some(load), Some(store)) => Ok(Self {
                ctx: s.ctx,
                load,
                store,
            }),
            _ => Err(toyseal_result::NullArgument),
        }
    }

    /// The slot's bytes (empty when never written), in a buffer that zeroizes on drop.
    pub fn load(&self, slot: toyseal_slot) -> Result<Zeroizing<Vec<u8>>, toyseal_result> {
        let cap = slot.cap();
        let mut buf = Zeroizing::new(vec![0u8; cap]);
        let mut len = 0usize;
        // SAFETY: the callback was supplied by the caller for this purpose; `buf` has `cap`
        // writable bytes and `len` is a valid `usize` for the duration of the call.
        let r = unsafe { (self.load)(self.ctx, slot, buf.as_mut_ptr(), cap, &mut len) };
        if r != 0 || len > cap {
            return Err(toyseal_result::Storage);
        }
        buf.truncate(len);
        Ok(buf)
    }

    pub fn store(&self, slot: toyseal_slot, data: &[u8]) -> Result<(), toyseal_result> {
        // What toyseal could not load back must not be stored (unreachable for the roster
        // under its limits; a loud error rather than a slot that bricks the next boot).
        if data.len() > slot.cap() {
            return Err(toyseal_result::TooLarge);
        }
        // SAFETY: the callback was supplied by the caller for this purpose; `data` is valid for
        // reads of `data.len()` bytes for the duration of the call.
        let r = unsafe { (self.store)(self.ctx, slot, data.as_ptr(), data.len()) };
        if r == 0 {
            Ok(())
        } else {
            Err(toyseal_result::Storage)
        }
    }

    /// The toy's identity: loaded, or generated and stored on first boot.
    pub fn identity(&self) -> Result<DeviceIdentity, toyseal_result> {
        let stored = self.load(toyseal_slot::Identity)?;
        if stored.is_empty() {
            let identity = DeviceIdentity::generate(Role::Toy, &mut OsRng);
            let text = identity
                .export_secret_key_text()
                .map_err(|_| toyseal_result::Failed)?;
            self.store(toyseal_slot::Identity, text.as_bytes())?;
            return Ok(identity);
        }
        let text = std::str::from_utf8(&stored).map_err(|_| toyseal_result::Storage)?;
        let identity =
            DeviceIdentity::from_secret_key_text(text).map_err(|_| toyseal_result::Storage)?;
        if identity.role() != Role::Toy {
            return Err(toyseal_result::Storage);
        }
        Ok(identity)
    }

    /// The founding guardian, if one was stored.
    pub fn founder(&self) -> Result<Option<PublicIdentity>, toyseal_result> {
        let stored = self.load(toyseal_slot::Founder)?;
        if stored.is_empty() {
            return Ok(None);
        }
        PublicIdentity::from_bytes(&stored)
            .map(Some)
            .map_err(|_| toyseal_result::Storage)
    }

    /// The roster the toy verified and stored before a reboot, if any (`me`: the toy). A slot
    /// that does not decode or restore (`Roster::restore_verified`) is `Storage`: the firmware
    /// decides (clear the slot and let the founder push the chain again, or factory reset);
    /// toyseal never boots silently without the family it had.
    pub fn roster(&self, me: &PublicIdentity) -> Result<Option<Roster>, toyseal_result> {
        let stored = self.load(toyseal_slot::Roster)?;
        if stored.is_empty() {
            return Ok(None);
        }
        let signed = SignedRoster::decode(&stored).map_err(|_| toyseal_result::Storage)?;
        // The slot holds only what this toy verified itself (collect_events stores a roster
        // from `ToyEvent::RosterApplied`), with the identity's trust: never network bytes.
        Roster::restore_verified(signed, me)
            .map(Some)
            .map_err(|_| toyseal_result::Storage)
    }

    /// Stores the toy's current roster (`RosterApplied`).
    pub fn store_roster(&self, roster: &Roster) -> Result<(), toyseal_result> {
        self.store(toyseal_slot::Roster, &roster.signed().encode())
    }

    /// The toy's sender state (`toyseal_core::SequenceStore` semantics): the next sequence
    /// number (the first is 1) and the header hash of its last envelope. The slot holds the
    /// last emitted sequence (8 bytes, little-endian) and that envelope's header hash (32); an
    /// empty slot is the first envelope; 8 bytes alone (before sender chains) a previous hash
    /// of zero.
    pub fn sender_state(&self) -> Result<toyseal_core::SenderState, toyseal_result> {
        let stored = self.load(toyseal_slot::Sequence)?;
        let (last, head) = match stored.as_slice() {
            [] => return Ok(toyseal_core::SenderState::FIRST),
            bytes if bytes.len() == 8 => (bytes, [0u8; 32]),
            bytes if bytes.len() == 40 => {
                let (last, head) = bytes.split_at(8);
                (last, head.try_into().map_err(|_| toyseal_result::Storage)?)
            }
            _ => return Err(toyseal_result::Storage),
        };
        let last = u64::from_le_bytes(last.try_into().map_err(|_| toyseal_result::Storage)?);
        toyseal_core::SenderState::after(last, head).map_err(|_| toyseal_result::Storage)
    }

    /// Records that the envelope with `sequence` and `header_hash` was emitted: stored before
    /// any byte of it leaves, so a crash never re-uses a number. A sequence below the stored
    /// next one is refused.
    pub fn record_sent(&self, sequence: u64, header_hash: [u8; 32]) -> Result<(), toyseal_result> {
        if sequence < self.sender_state()?.sequence {
            return Err(toyseal_result::Storage);
        }
        let mut slot = sequence.to_le_bytes().to_vec();
        slot.extend_from_slice(&header_hash);
        self.store(toyseal_slot::Sequence, &slot)
    }
}

impl FailureStore for Storage {
    fn load(&self) -> Result<u32, toyseal_pairing::Error> {
        let stored = Storage::load(self, toyseal_slot::FailureCount).map_err(store_error)?;
        match stored.as_slice() {
            [] => Ok(0),
            bytes => bytes
                .try_into()
                .map(u32::from_le_bytes)
                .map_err(|_| store_error(toyseal_result::Storage)),
        }
    }

    fn store(&mut self, count: u32) -> Result<(), toyseal_pairing::Error> {
        Storage::store(self, toyseal_slot::FailureCount, &count.to_le_bytes()).map_err(store_error)
    }
}

fn store_error(_: toyseal_result) -> toyseal_pairing::Error {
    toyseal_pairing::Error::Store("the caller's storage callback failed".into())
}
