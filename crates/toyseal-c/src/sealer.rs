//! Sealing a recording to the toy's current roster while it is being recorded, in bounded
//! memory: content goes in with [`toyseal_sealer_update`], ciphertext comes out into the
//! caller's buffers with [`toyseal_sealer_read`].

use crate::result::{free_handle, guard, handle_mut, input, non_null, output, toyseal_result};
use crate::toy::toyseal_toy;
use toyseal_core::OsRng;
use toyseal_envelope::{Finishing, Metadata, Progress, SealOptions, Sealer};

/// How to seal. Zero fields take the defaults.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct toyseal_seal_options {
    /// Chunk size `2^chunk_size_log2` bytes, 10..=20 (0: 64 KiB). The sealer holds about one
    /// chunk: 10 (1 KiB) for the smallest memory.
    pub chunk_size_log2: u8,
    /// At most `2^segment_size_log2` bytes between signed checkpoints, at least the chunk size,
    /// at most 24 (0: 1 MiB). A phone buffers up to a segment before playing.
    pub segment_size_log2: u8,
    /// When the recording was made, Unix seconds by the toy's clock (0: unknown).
    pub created_unix: u64,
    /// The recording's duration in milliseconds (0: not recorded in the metadata).
    pub duration_ms: u32,
    /// The content type (e.g. `audio/L16;rate=8000`), `content_type_len` bytes of UTF-8; NULL
    /// with length 0 for none.
    pub content_type: *const u8,
    /// Length of `content_type`.
    pub content_type_len: usize,
}

/// A recording being sealed. Create with [`toyseal_sealer_new`], free with
/// [`toyseal_sealer_free`]. Independent of the toy handle once created.
#[allow(non_camel_case_types)]
pub struct toyseal_sealer {
    // The sealer holds its own `Arc` of the toy's identity: no borrow of the toy handle.
    state: State,
    out: Vec<u8>,
    read: usize,
    limit: usize,
}

enum State {
    Sealing(Sealer),
    Finishing(Finishing),
    Complete,
    Failed,
}

/// Undrained output above which `update` asks the caller to read first (keeps memory bounded
/// even if the caller forgets to drain).
fn output_limit(chunk_size: usize) -> usize {
    4 * chunk_size + 4096
}

impl toyseal_sealer {
    fn pending(&self) -> usize {
        self.out.len() - self.read
    }

    fn compact(&mut self) {
        if self.read == self.out.len() {
            self.out.clear();
            self.read = 0;
        }
    }

    /// Runs `f` on the sealer; an error fails the envelope for good (no partial reuse).
    fn with_sealer(
        &mut self,
        f: impl FnOnce(&mut Sealer, &mut Vec<u8>) -> Result<(), toyseal_envelope::Error>,
    ) -> Result<(), toyseal_result> {
        let State::Sealing(s) = &mut self.state else {
            return Err(toyseal_result::Misuse);
        };
        if let Err(e) = f(s, &mut self.out) {
            self.state = State::Failed;
            return Err(e.into());
        }
        Ok(())
    }
}

/// Starts sealing a recording from the toy to every other member of its current roster,
/// signed by the toy, on its sender chain: the next sequence number and the previous envelope's
/// header hash from the storage (slot Sequence), which records this envelope's before the call
/// returns (a call that fails consumes nothing; once it succeeded the number is used).
/// `options` may be NULL for the defaults. On success `*sealer_out` owns a new handle.
///
/// # Safety
/// `toy` must be a live handle; `options` NULL or valid (its `content_type` pointing to
/// `content_type_len` readable bytes); `sealer_out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_sealer_new(
    toy: *mut toyseal_toy,
    options: *const toyseal_seal_options,
    sealer_out: *mut *mut toyseal_sealer,
) -> toyseal_result {
    guard(|| {
        non_null(toy)?;
        non_null(sealer_out)?;
        // SAFETY: writable (caller's contract); cleared so a failure leaves no stale pointer.
        unsafe { sealer_out.write(std::ptr::null_mut()) };
        // SAFETY: non-NULL live handle (caller's contract); only read here.
        let toy = unsafe { &*toy };
        let mut opts = SealOptions::default();
        let mut metadata = Metadata::default();
        let mut chunk_log2 = 16u32;
        if !options.is_null() {
            // SAFETY: non-NULL and valid for reads (caller's contract).
            let o = unsafe { &*options };
            if o.chunk_size_log2 != 0 {
                opts = opts.with_chunk_size_log2(o.chunk_size_log2)?;
                chunk_log2 = u32::from(o.chunk_size_log2);
            }
            if o.segment_size_log2 != 0 {
                opts = opts.with_segment_size_log2(o.segment_size_log2)?;
            }
            opts = opts.with_created(o.created_unix);
            if o.duration_ms != 0 {
                metadata = metadata.with_duration_ms(o.duration_ms);
            }
            // SAFETY: `content_type_len` readable bytes (caller's contract).
            let ct = unsafe { input(o.content_type, o.content_type_len) }?;
            if !ct.is_empty() {
                let ct = std::str::from_utf8(ct).map_err(|_| toyseal_result::InvalidArgument)?;
                metadata = metadata.with_content_type(ct);
            }
        }
        let roster = toy.toy.roster().ok_or(toyseal_result::NoRoster)?;
        // The family rule (sender a member, recipients every other member, the family and
        // version in the header) is the roster's: `Roster::sealer`.
        let state = toy.storage.sender_state()?;
        let opts = opts
            .with_metadata(metadata)
            .with_sequence(state.sequence)
            .with_previous(state.previous);
        let sealer = roster.sealer(toy.toy.identity().clone(), opts, &mut OsRng)?;
        // The header exists: record it before any byte of it can leave (docs/spec/envelope.md
        // §11.2).
        let link = sealer.link();
        toy.storage.record_sent(link.sequence, link.header_hash)?;
        let handle = Box::new(toyseal_sealer {
            state: State::Sealing(sealer),
            out: Vec::new(),
            read: 0,
            limit: output_limit(1usize << chunk_log2),
        });
        // SAFETY: checked writable above.
        unsafe { sealer_out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Seals `len` more bytes of the recording. Read the output with [`toyseal_sealer_read`]
/// after every update; more than a few chunks of unread output returns
/// `TOYSEAL_RESULT_BUSY` (nothing consumed).
///
/// # Safety
/// `sealer` must be a live handle; `data` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_sealer_update(
    sealer: *mut toyseal_sealer,
    data: *const u8,
    len: usize,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let s = unsafe { handle_mut(sealer) }?;
        // SAFETY: caller's contract (`len` readable bytes).
        let data = unsafe { input(data, len) }?;
        if !matches!(s.state, State::Sealing(_)) {
            return Err(toyseal_result::Misuse);
        }
        if s.pending() > s.limit {
            return Err(toyseal_result::Busy);
        }
        s.with_sealer(|sealer, out| sealer.update(data, out))
    })
}

/// Ends the current segment now with a signed checkpoint, so the phone can play everything
/// sealed so far (call it every second or so for live audio).
///
/// # Safety
/// `sealer` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_sealer_checkpoint(sealer: *mut toyseal_sealer) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let s = unsafe { handle_mut(sealer) }?;
        s.with_sealer(|sealer, out| sealer.checkpoint(out))
    })
}

/// The recording ended: the rest of the envelope (end, padding, final signature) comes out of
/// [`toyseal_sealer_read`], one chunk at a time; no more updates.
///
/// # Safety
/// `sealer` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_sealer_finish(sealer: *mut toyseal_sealer) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let s = unsafe { handle_mut(sealer) }?;
        match std::mem::replace(&mut s.state, State::Failed) {
            State::Sealing(sealer) => {
                let f = sealer.finish_in_steps(&mut s.out)?;
                s.state = State::Finishing(f);
                Ok(())
            }
            other => {
                s.state = other;
                Err(toyseal_result::Misuse)
            }
        }
    })
}

/// Copies up to `cap` bytes of sealed output into `buf` and their count into `*written`.
/// Before finish, `*written == 0` means "nothing yet"; after finish, it means the envelope is
/// complete (every byte was read).
///
/// # Safety
/// `sealer` must be a live handle; `buf` must point to `cap` writable bytes; `written`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_sealer_read(
    sealer: *mut toyseal_sealer,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> toyseal_result {
    guard(|| {
        // SAFETY: caller's contract (live handle).
        let s = unsafe { handle_mut(sealer) }?;
        non_null(written)?;
        if cap == 0 {
            return Err(toyseal_result::InvalidArgument);
        }
        s.compact();
        if s.pending() == 0
            && let State::Finishing(f) = &mut s.state
        {
            match f.step(&mut s.out) {
                Ok(Progress::More) => {}
                Ok(Progress::Complete) => s.state = State::Complete,
                Err(e) => {
                    s.state = State::Failed;
                    return Err(e.into());
                }
            }
        }
        if matches!(s.state, State::Failed) {
            return Err(toyseal_result::Failed);
        }
        let n = s.pending().min(cap);
        let piece = s.out.get(s.read..s.read + n).ok_or(toyseal_result::Panic)?;
        // SAFETY: caller's contract (`cap >= n` writable bytes at `buf`, `written` writable).
        unsafe { output(piece, buf, cap, written) }?;
        s.read += n;
        s.compact();
        Ok(())
    })
}

/// Frees a sealer (NULL is a no-op). Freeing before the envelope is complete abandons it:
/// what was already read is not a valid envelope.
///
/// # Safety
/// `sealer` must be NULL or a handle from [`toyseal_sealer_new`] not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn toyseal_sealer_free(sealer: *mut toyseal_sealer) {
    // SAFETY: NULL or a live handle from `Box::into_raw`, freed once (caller's contract).
    unsafe { free_handle(sealer) }
}
