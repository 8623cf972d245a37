//! The result codes every entry point returns, and the boundary guard that turns a panic into
//! one (a panic must never unwind into C).

use std::ffi::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a call did. `TOYSEAL_RESULT_OK` is 0; every other value is a failure. New codes may be
/// added in later versions: treat an unknown code as a failure.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum toyseal_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument was out of range or malformed (a length, a code, UTF-8, an option).
    InvalidArgument = 2,
    /// The caller's buffer is too small; the needed length was written to the length output
    /// and nothing was consumed. Call again with a larger buffer.
    BufferTooSmall = 3,
    /// The call does not fit the object's state (a caller mistake: updating a finished sealer,
    /// sealing before the toy has a roster).
    Misuse = 4,
    /// A storage callback failed, or returned data that does not parse.
    Storage = 5,
    /// The toy is not pairable now (it has a roster: only a guardian opens windows).
    NotPairable = 6,
    /// Pairing is disabled until a factory reset (too many failed attempts over the toy's life).
    PairingDisabled = 7,
    /// There is no session to deliver on.
    NoSession = 8,
    /// The toy has no roster yet: nobody to seal to.
    NoRoster = 9,
    /// Busy: an envelope transfer is in progress, or the sealer's output must be read first.
    Busy = 10,
    /// A size limit was exceeded (envelope too large for the session, too much content).
    TooLarge = 11,
    /// The protocol or cryptography failed (the details are deliberately coarse).
    Failed = 12,
    /// A bug inside toyseal: a Rust panic was caught at the boundary. The object that was
    /// being used should be freed.
    Panic = 13,
}

/// A static, NUL-terminated English description of a `toyseal_result` value (never NULL,
/// never freed; an unknown value gets a description too). Takes an `int` so that any value
/// a C caller holds is safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn toyseal_result_str(result: c_int) -> *const c_char {
    let s: &'static std::ffi::CStr = match toyseal_result::from_c(result) {
        None => c"unknown toyseal_result value",
        Some(r) => match r {
            toyseal_result::Ok => c"ok",
            toyseal_result::NullArgument => c"a required pointer argument was NULL",
            toyseal_result::InvalidArgument => c"an argument was out of range or malformed",
            toyseal_result::BufferTooSmall => {
                c"the buffer is too small; the needed length was reported"
            }
            toyseal_result::Misuse => c"the call does not fit the object's state",
            toyseal_result::Storage => c"a storage callback failed or returned unreadable data",
            toyseal_result::NotPairable => c"the toy is not pairable now",
            toyseal_result::PairingDisabled => c"pairing is disabled until a factory reset",
            toyseal_result::NoSession => c"there is no session",
            toyseal_result::NoRoster => c"the toy has no roster yet",
            toyseal_result::Busy => c"busy: a transfer is in progress or output must be read first",
            toyseal_result::TooLarge => c"a size limit was exceeded",
            toyseal_result::Failed => c"the protocol or cryptography failed",
            toyseal_result::Panic => c"internal error (a panic was caught)",
        },
    };
    s.as_ptr()
}

impl toyseal_result {
    /// The result with this C value, if any.
    fn from_c(v: c_int) -> Option<Self> {
        const ALL: [toyseal_result; 14] = [
            toyseal_result::Ok,
            toyseal_result::NullArgument,
            toyseal_result::InvalidArgument,
            toyseal_result::BufferTooSmall,
            toyseal_result::Misuse,
            toyseal_result::Storage,
            toyseal_result::NotPairable,
            toyseal_result::PairingDisabled,
            toyseal_result::NoSession,
            toyseal_result::NoRoster,
            toyseal_result::Busy,
            toyseal_result::TooLarge,
            toyseal_result::Failed,
            toyseal_result::Panic,
        ];
        ALL.into_iter().find(|r| *r as c_int == v)
    }
}

/// Runs one entry point's body: a panic becomes [`toyseal_result::Panic`].
pub(crate) fn guard(body: impl FnOnce() -> Result<(), toyseal_result>) -> toyseal_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => toyseal_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => toyseal_result::Panic,
    }
}

impl From<toyseal_pairing::Error> for toyseal_result {
    fn from(e: toyseal_pairing::Error) -> Self {
        use toyseal_pairing::{EnvelopeBytesError, Error as E};
        match e {
            E::NotPairable => Self::NotPairable,
            E::PairingDisabled => Self::PairingDisabled,
            E::Busy | E::TransferInProgress => Self::Busy,
            E::Closed => Self::NoSession,
            E::TooLarge { .. } => Self::TooLarge,
            E::Code(_) => Self::InvalidArgument,
            E::Store(_) => Self::Storage,
            // The firmware supplied bytes the toy did not ask for: a caller mistake.
            E::EnvelopeBytes(EnvelopeBytesError::UnknownTransfer(_)) => Self::Misuse,
            E::EnvelopeBytes(_) => Self::InvalidArgument,
            _ => Self::Failed,
        }
    }
}

impl From<toyseal_envelope::Error> for toyseal_result {
    fn from(e: toyseal_envelope::Error) -> Self {
        use toyseal_envelope::Error as E;
        match e {
            E::ChunkSize(_) | E::SegmentSize(_) => Self::InvalidArgument,
            E::ApiMisuse(_) => Self::Misuse,
            E::NoRecipients => Self::NoRoster,
            _ => Self::Failed,
        }
    }
}

impl From<toyseal_roster::Error> for toyseal_result {
    fn from(e: toyseal_roster::Error) -> Self {
        use toyseal_roster::Error as E;
        match e {
            E::Envelope(e) => e.into(),
            // The toy's own roster does not list it: it has no family to seal to.
            E::NotAMember => Self::NoRoster,
            _ => Self::Failed,
        }
    }
}

/// Checks a pointer argument.
pub(crate) fn non_null<T>(p: *const T) -> Result<(), toyseal_result> {
    if p.is_null() {
        Err(toyseal_result::NullArgument)
    } else {
        Ok(())
    }
}

/// Borrows a handle mutably (NULL is an error).
///
/// # Safety
/// `handle` must be NULL or a live handle this crate returned (`Box::into_raw`), used by no
/// one else during the call.
pub(crate) unsafe fn handle_mut<'a, T>(handle: *mut T) -> Result<&'a mut T, toyseal_result> {
    non_null(handle)?;
    // SAFETY: non-NULL, and the caller guarantees a live, unaliased handle.
    Ok(unsafe { &mut *handle })
}

/// Frees a handle (NULL is a no-op); a panic in a destructor is caught.
///
/// # Safety
/// `handle` must be NULL or a handle this crate returned (`Box::into_raw`) not freed before;
/// it must not be used afterwards.
pub(crate) unsafe fn free_handle<T>(handle: *mut T) {
    if handle.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: a live handle from `Box::into_raw` (caller's contract), freed once.
        drop(unsafe { Box::from_raw(handle) });
        Ok(())
    });
}

/// Borrows `len` bytes at `ptr` (NULL is allowed only with `len == 0`).
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn input<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], toyseal_result> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(ptr)?;
    if len > isize::MAX as usize {
        return Err(toyseal_result::InvalidArgument);
    }
    // SAFETY: non-NULL and at most isize::MAX (checked above); the caller guarantees `len`
    // readable bytes at `ptr` for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `data` into the caller's buffer `(buf, cap)` and writes the length to `*len_out`,
/// or writes the needed length and returns [`toyseal_result::BufferTooSmall`]. `(NULL, 0)` is
/// a valid buffer: it asks for the length.
///
/// # Safety
/// `len_out` must be writable; a non-NULL `buf` must point to `cap` writable bytes.
pub(crate) unsafe fn output(
    data: &[u8],
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> Result<(), toyseal_result> {
    non_null(len_out)?;
    if buf.is_null() && cap != 0 {
        // NULL is a buffer only with capacity 0 (asking for the needed length).
        return Err(toyseal_result::NullArgument);
    }
    // SAFETY: `len_out` is non-NULL and the caller guarantees it is writable.
    unsafe { len_out.write(data.len()) };
    if data.is_empty() {
        return Ok(());
    }
    if cap < data.len() {
        return Err(toyseal_result::BufferTooSmall);
    }
    non_null(buf)?;
    // SAFETY: `buf` is non-NULL with `cap >= data.len()` writable bytes (caller's contract);
    // `data` is Rust-owned memory, so the two cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    Ok(())
}
