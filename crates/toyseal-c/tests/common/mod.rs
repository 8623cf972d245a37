//! Test support: the C toy (through the same `extern "C"` functions C calls) with storage in
//! memory, a Rust phone, and a pump that moves frames between them in-process.
// Test support, not library code: a failed step is a failed test.
#![allow(dead_code, clippy::expect_used, clippy::panic)]

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use toyseal_c::*;
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_pairing::{Endpoint, PairingCode, PairingExpectations, Phone, PhoneEvent, Timestamp};
use toyseal_roster::{Roster, RosterProposal};

/// The toy's "flash": five slots in memory.
#[derive(Default)]
pub struct Flash {
    pub slots: [Vec<u8>; 5],
    /// Stores into this slot fail (a worn-out or full flash).
    pub fail_store: Option<toyseal_slot>,
}

unsafe extern "C" fn flash_load(
    ctx: *mut c_void,
    slot: toyseal_slot,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> c_int {
    // SAFETY: `ctx` is the `Flash` the test boxed and keeps alive for the toy's life.
    let flash = unsafe { &*(ctx as *const Flash) };
    let Some(data) = flash.slots.get(slot as usize) else {
        return 1;
    };
    if data.len() > cap {
        return 1;
    }
    // SAFETY: toyseal passes `cap` writable bytes at `buf` and a writable `len`.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        len.write(data.len());
    }
    0
}

unsafe extern "C" fn flash_store(
    ctx: *mut c_void,
    slot: toyseal_slot,
    data: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: `ctx` is the `Flash` the test boxed; toyseal calls back on this thread only.
    let flash = unsafe { &mut *(ctx as *mut Flash) };
    // SAFETY: toyseal passes `len` readable bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) };
    match flash.slots.get_mut(slot as usize) {
        Some(_) if flash.fail_store == Some(slot) => 1,
        Some(s) => {
            *s = bytes.to_vec();
            0
        }
        None => 1,
    }
}

/// A toy behind the C ABI.
pub struct CToy {
    pub handle: *mut toyseal_toy,
    pub flash: Box<Flash>,
}

impl CToy {
    pub fn boot(code: &str, flash: Box<Flash>) -> Result<Self, toyseal_result> {
        let mut flash = flash;
        let storage = toyseal_storage {
            ctx: (&mut *flash as *mut Flash).cast(),
            load: Some(flash_load),
            store: Some(flash_store),
        };
        let mut handle = std::ptr::null_mut();
        // SAFETY: valid storage (the box outlives the handle: both live in `CToy`), `code`
        // readable, `handle` writable.
        let r = unsafe { toyseal_toy_new(&storage, code.as_ptr(), code.len(), &mut handle) };
        if r != toyseal_result::Ok {
            return Err(r);
        }
        Ok(Self { handle, flash })
    }

    pub fn frame(&mut self, frame: &[u8], now: u64) -> toyseal_result {
        // SAFETY: live handle; `frame` readable.
        unsafe { toyseal_toy_handle_frame(self.handle, frame.as_ptr(), frame.len(), now) }
    }

    /// Every queued frame, read through a deliberately small buffer first.
    pub fn transmit(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16];
        loop {
            let mut len = 0;
            // SAFETY: live handle; `buf` has `buf.len()` writable bytes; `len` writable.
            let r = unsafe {
                toyseal_toy_poll_transmit(self.handle, buf.as_mut_ptr(), buf.len(), &mut len)
            };
            match r {
                toyseal_result::BufferTooSmall => buf.resize(len, 0),
                toyseal_result::Ok if len == 0 => return out,
                toyseal_result::Ok => out.push(buf[..len].to_vec()),
                other => panic!("poll_transmit: {other:?}"),
            }
        }
    }

    pub fn events(&mut self) -> Vec<toyseal_event> {
        let mut out = Vec::new();
        loop {
            let mut e = std::mem::MaybeUninit::<toyseal_event>::uninit();
            // SAFETY: live handle; `e` writable.
            let r = unsafe { toyseal_toy_poll_event(self.handle, e.as_mut_ptr()) };
            assert_eq!(r, toyseal_result::Ok);
            // SAFETY: written by a successful poll_event.
            let e = unsafe { e.assume_init() };
            if e.kind == toyseal_event_kind::None {
                return out;
            }
            out.push(e);
        }
    }

    /// The user's deliberate gesture at the toy (`toyseal_toy_confirm`).
    pub fn confirm(&mut self, now: u64) -> toyseal_result {
        // SAFETY: live handle.
        unsafe { toyseal_toy_confirm(self.handle, now) }
    }

    pub fn disconnect(&mut self) {
        // SAFETY: live handle.
        let r = unsafe { toyseal_toy_disconnect(self.handle) };
        assert_eq!(r, toyseal_result::Ok);
    }
}

impl Drop for CToy {
    fn drop(&mut self) {
        // SAFETY: the handle came from toyseal_toy_new and is freed once.
        unsafe { toyseal_toy_free(self.handle) };
    }
}

/// Moves frames both ways until neither side has anything to send.
pub fn pump(phone: &mut Phone, toy: &mut CToy, now: u64) -> (Vec<PhoneEvent>, Vec<toyseal_event>) {
    let (mut pe, mut te) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(f) = phone.poll_transmit() {
            assert_eq!(toy.frame(&f, now), toyseal_result::Ok);
            moved = true;
        }
        te.extend(toy.events());
        for f in toy.transmit() {
            phone.handle_frame(&f, Timestamp::from_millis(now), &mut OsRng);
            moved = true;
        }
        while let Some(e) = phone.poll_event() {
            pe.push(e);
        }
        if !moved {
            return (pe, te);
        }
    }
}

/// A founded family: the parent's phone in session with the C toy, roster v1 co-signed.
pub struct Family {
    pub phone: Phone,
    pub parent: Arc<DeviceIdentity>,
    /// The family's printed recovery key (roster.md §1.2).
    pub recovery: toyseal_roster::RecoveryKey,
    pub roster: Roster,
    pub toy: CToy,
    /// The code printed on the toy's tag (it pairs again only in a recovery window).
    pub code: PairingCode,
}

pub fn family() -> Family {
    let code = PairingCode::generate(8, &mut OsRng);
    let mut toy = CToy::boot(code.digits(), Box::default()).expect("boot");
    // SAFETY: live handle.
    let r = unsafe { toyseal_toy_press_pair_button(toy.handle, 0) };
    assert_eq!(r, toyseal_result::Ok);
    let parent = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let mut phone = Phone::new(parent.clone());
    phone
        .pair(&code, PairingExpectations::default(), &mut OsRng)
        .expect("pair");
    let (pe, te) = pump(&mut phone, &mut toy, 10);
    let paired = pe
        .iter()
        .find_map(|e| match e {
            PhoneEvent::Paired(t) => Some(t.clone()),
            _ => None,
        })
        .expect("paired");
    let phone_sas = pe.iter().find_map(|e| match e {
        PhoneEvent::Sas(s) => Some(s.value()),
        _ => None,
    });
    let toy_sas = te
        .iter()
        .find(|e| e.kind == toyseal_event_kind::Sas)
        .map(|e| e.sas);
    assert!(
        phone_sas.is_some() && phone_sas == toy_sas,
        "the SAS differ"
    );
    // No founder until the parent confirms at the toy (T37).
    assert!(!te.iter().any(|e| e.kind == toyseal_event_kind::Paired));
    assert!(toy.flash.slots[toyseal_slot::Founder as usize].is_empty());
    let ask = te
        .iter()
        .find(|e| e.kind == toyseal_event_kind::ConfirmationRequested)
        .expect("the toy asks for a confirmation");
    assert_eq!(ask.confirmation, toyseal_confirmation::Founder);
    assert_eq!(&ask.device_id, parent.device_id().as_bytes());
    assert_eq!(ask.expires_ms, 10 + 30_000);
    assert_eq!(toy.confirm(11), toyseal_result::Ok);
    let (pe, te) = pump(&mut phone, &mut toy, 11);
    assert!(pe.iter().any(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: None,
            answer: toyseal_pairing::ToyAnswer::Confirmed
        }
    )));
    assert!(te.iter().any(|e| e.kind == toyseal_event_kind::Paired));
    assert!(!toy.flash.slots[toyseal_slot::Founder as usize].is_empty());

    phone.handle_disconnect();
    toy.disconnect();
    phone
        .open_session(&paired.identity, &mut OsRng)
        .expect("session");
    let (pe, _) = pump(&mut phone, &mut toy, 20);
    assert!(pe.iter().any(|e| matches!(e, PhoneEvent::SessionOpened(_))));

    let recovery = toyseal_roster::RecoveryKey::generate(&mut OsRng).expect("recovery key");
    let mut v1 = RosterProposal::founding(
        FamilyId::generate(&mut OsRng),
        vec![parent.public().clone(), paired.identity.clone()],
        *recovery.public(),
    )
    .expect("proposal")
    .sign(&parent);
    v1.cosign_recovery(&recovery);
    phone
        .push_rosters(std::slice::from_ref(&v1), Timestamp::from_millis(30))
        .expect("push");
    let (_, te) = pump(&mut phone, &mut toy, 30);
    let ask = te
        .iter()
        .find(|e| e.kind == toyseal_event_kind::ConfirmationRequested)
        .expect("the toy asks before co-signing v1");
    assert_eq!(ask.confirmation, toyseal_confirmation::Roster);
    assert_eq!((ask.roster_version, ask.added, ask.removed), (1, 2, 0));
    assert_eq!(toy.confirm(31), toyseal_result::Ok);
    let (pe, te) = pump(&mut phone, &mut toy, 31);
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::RosterApplied && e.roster_version == 1)
    );
    let signed = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Rosters(r) => r.into_iter().next(),
            _ => None,
        })
        .expect("co-signed roster");
    let roster = Roster::verify_founding(signed).expect("verified");
    Family {
        phone,
        parent,
        recovery,
        roster,
        toy,
        code,
    }
}

/// 8 kHz 16-bit PCM of a synthetic triangle tone (no real voice).
pub fn tone(samples: usize) -> Vec<u8> {
    (0..samples)
        .flat_map(|i| {
            let p = (i % 20) as i32;
            let v = if p < 10 {
                -8000 + p * 1600
            } else {
                8000 - (p - 10) * 1600
            };
            (v as i16).to_le_bytes()
        })
        .collect()
}

/// Seals `content` through the C sealer as a recording: `piece` bytes per update, a
/// checkpoint every `checkpoint_every` bytes, output drained after every call through a
/// `read_cap`-byte buffer into `out`.
pub fn c_seal(
    toy: &mut CToy,
    chunk_log2: u8,
    content: &[u8],
    piece: usize,
    checkpoint_every: usize,
    out: &mut Vec<u8>,
) -> Result<(), toyseal_result> {
    let ct = b"audio/L16;rate=8000";
    let opts = toyseal_seal_options {
        chunk_size_log2: chunk_log2,
        segment_size_log2: chunk_log2,
        created_unix: 0,
        duration_ms: (content.len() / 16) as u32,
        content_type: ct.as_ptr(),
        content_type_len: ct.len(),
    };
    let mut s = std::ptr::null_mut();
    // SAFETY: live toy handle, valid options, writable out pointer.
    let r = unsafe { toyseal_sealer_new(toy.handle, &opts, &mut s) };
    if r != toyseal_result::Ok {
        return Err(r);
    }
    let mut buf = [0u8; 512];
    let mut drain = |s: *mut toyseal_sealer, out: &mut Vec<u8>| -> Result<(), toyseal_result> {
        loop {
            let mut n = 0;
            // SAFETY: live sealer; `buf` writable; `n` writable.
            let r = unsafe { toyseal_sealer_read(s, buf.as_mut_ptr(), buf.len(), &mut n) };
            if r != toyseal_result::Ok {
                return Err(r);
            }
            if n == 0 {
                return Ok(());
            }
            out.extend_from_slice(&buf[..n]);
        }
    };
    let result = (|| {
        let mut since = 0;
        for p in content.chunks(piece) {
            // SAFETY: live sealer; `p` readable.
            let r = unsafe { toyseal_sealer_update(s, p.as_ptr(), p.len()) };
            if r != toyseal_result::Ok {
                return Err(r);
            }
            since += p.len();
            if since >= checkpoint_every {
                since = 0;
                // SAFETY: live sealer.
                let r = unsafe { toyseal_sealer_checkpoint(s) };
                if r != toyseal_result::Ok {
                    return Err(r);
                }
            }
            drain(s, out)?;
        }
        // SAFETY: live sealer.
        let r = unsafe { toyseal_sealer_finish(s) };
        if r != toyseal_result::Ok {
            return Err(r);
        }
        drain(s, out)
    })();
    // SAFETY: the sealer came from toyseal_sealer_new and is freed once.
    unsafe { toyseal_sealer_free(s) };
    result
}

/// Delivers `flash` (the sealed envelope in the toy's storage, not its RAM) through the
/// streamed C calls, as firmware does: after every step the toy says which bytes its window
/// takes; they are supplied `piece` bytes at a time (a flash page), and frames move both
/// ways until the phone acknowledged everything. `toy_side(true)` / `toy_side(false)` bracket
/// every call into the toy and nothing else (the memory test counts the toy's heap with it).
/// Returns the transfer id and the phone's and the toy's events.
pub fn c_stream(
    phone: &mut Phone,
    toy: &mut CToy,
    flash: &[u8],
    piece: usize,
    now: u64,
    toy_side: &dyn Fn(bool),
) -> (u32, Vec<PhoneEvent>, Vec<toyseal_event>) {
    let (mut pe, mut te) = (Vec::new(), Vec::new());
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(64);
    let mut buf = vec![0u8; 8192];
    let mut transfer = 0;
    toy_side(true);
    // SAFETY: live handle; `transfer` writable.
    let r = unsafe { toyseal_toy_send_envelope_begin(toy.handle, flash.len(), &mut transfer) };
    toy_side(false);
    assert_eq!(r, toyseal_result::Ok);
    loop {
        let mut moved = false;
        loop {
            let (mut t, mut offset, mut len) = (0u32, 0usize, 0usize);
            toy_side(true);
            // SAFETY: live handle; the outputs are writable.
            let r =
                unsafe { toyseal_toy_envelope_request(toy.handle, &mut t, &mut offset, &mut len) };
            toy_side(false);
            assert_eq!(r, toyseal_result::Ok);
            if len == 0 {
                break;
            }
            assert_eq!(t, transfer);
            let bytes = &flash[offset..offset + len.min(piece)];
            toy_side(true);
            // SAFETY: live handle; `bytes` readable.
            let r = unsafe {
                toyseal_toy_send_envelope_bytes(
                    toy.handle,
                    t,
                    offset,
                    bytes.as_ptr(),
                    bytes.len(),
                    now,
                )
            };
            toy_side(false);
            assert_eq!(r, toyseal_result::Ok);
            moved = true;
        }
        loop {
            let mut len = 0;
            toy_side(true);
            // SAFETY: live handle; `buf` has `buf.len()` writable bytes; `len` writable.
            let r = unsafe {
                toyseal_toy_poll_transmit(toy.handle, buf.as_mut_ptr(), buf.len(), &mut len)
            };
            toy_side(false);
            match r {
                toyseal_result::BufferTooSmall => buf.resize(len, 0),
                toyseal_result::Ok if len == 0 => break,
                toyseal_result::Ok => frames.push(buf[..len].to_vec()),
                other => panic!("poll_transmit: {other:?}"),
            }
        }
        loop {
            let mut e = std::mem::MaybeUninit::<toyseal_event>::uninit();
            toy_side(true);
            // SAFETY: live handle; `e` writable.
            let r = unsafe { toyseal_toy_poll_event(toy.handle, e.as_mut_ptr()) };
            toy_side(false);
            assert_eq!(r, toyseal_result::Ok);
            // SAFETY: written by a successful poll_event.
            let e = unsafe { e.assume_init() };
            if e.kind == toyseal_event_kind::None {
                break;
            }
            te.push(e);
        }
        for f in frames.drain(..) {
            phone.handle_frame(&f, Timestamp::from_millis(now), &mut OsRng);
            moved = true;
        }
        while let Some(e) = phone.poll_event() {
            pe.push(e);
        }
        while let Some(f) = phone.poll_transmit() {
            toy_side(true);
            // SAFETY: live handle; `f` readable.
            let r = unsafe { toyseal_toy_handle_frame(toy.handle, f.as_ptr(), f.len(), now) };
            toy_side(false);
            assert_eq!(r, toyseal_result::Ok);
            moved = true;
        }
        if !moved {
            return (transfer, pe, te);
        }
    }
}
