//! The C ABI (crates/toyseal-c) under arbitrary call sequences, exactly as C would call it:
//! NULL handles and pointers, NULL with non-zero lengths, buffers of every size (down to
//! zero), calls in any order (sealing before a roster, reading after free, updates after
//! finish), storage callbacks that fail or return garbage, and a real phone that founds the
//! family so that sealing and delivery are reached too. Nothing may panic or crash: every
//! misuse must come back as a result code. Pointers passed are always NULL or valid for the
//! length passed (what the ABI can check); the rest is the C caller's contract.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_int, c_void};
use std::ptr::{null, null_mut};
use toyseal_c::*;
use toyseal_core::{FamilyId, Role};
use toyseal_fuzz::rng;
use toyseal_pairing::{Endpoint, PairingCode, PairingExpectations, Phone, PhoneEvent, Timestamp};
use toyseal_roster::RosterProposal;

/// The toy's flash: five slots (a reboot restores the roster slot); `fail` makes every
/// callback fail.
#[derive(Default)]
struct Flash {
    slots: [Vec<u8>; 5],
    fail: bool,
}

unsafe extern "C" fn load(
    ctx: *mut c_void,
    slot: toyseal_slot,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> c_int {
    // SAFETY: `ctx` is the boxed `Flash` this target keeps alive while the toy lives.
    let f = unsafe { &*(ctx as *const Flash) };
    match f.slots.get(slot as usize) {
        Some(d) if !f.fail && d.len() <= cap => {
            // SAFETY: toyseal passes `cap` writable bytes and a writable `len`.
            unsafe {
                std::ptr::copy_nonoverlapping(d.as_ptr(), buf, d.len());
                len.write(d.len());
            }
            0
        }
        _ => 1,
    }
}

unsafe extern "C" fn store(
    ctx: *mut c_void,
    slot: toyseal_slot,
    data: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: as in `load`; toyseal calls back on this thread only.
    let f = unsafe { &mut *(ctx as *mut Flash) };
    // SAFETY: toyseal passes `len` readable bytes.
    let d = unsafe { std::slice::from_raw_parts(data, len) };
    match f.slots.get_mut(slot as usize) {
        Some(s) if !f.fail => {
            *s = d.to_vec();
            0
        }
        _ => 1,
    }
}

#[derive(Arbitrary, Debug)]
enum Action {
    /// Boot (or reboot) the toy; `code` None uses the real code.
    Boot {
        code: Option<Vec<u8>>,
        null_storage: bool,
        null_callbacks: bool,
        identity: Option<Vec<u8>>,
        null_out: bool,
    },
    /// A real phone pairs, opens a session and founds the family (roster v1).
    Found,
    Button(u16),
    Frame {
        data: Vec<u8>,
        null_ptr: bool,
        len: u16,
    },
    Timeout(u16),
    Disconnect,
    /// The user's gesture at the toy (`toyseal_toy_confirm`), or a decline.
    Confirm {
        decline: bool,
    },
    /// Reads a line of the pending roster change's summary.
    ConfirmationEntry {
        index: u8,
        null_ptr: bool,
    },
    /// Sets the confirmation window (any value: out of range is a result code).
    ConfirmationWindow(u32),
    Transmit {
        cap: u16,
        null_buf: bool,
        null_len: bool,
    },
    Event {
        null_ptr: bool,
    },
    DeviceId {
        cap: u8,
        null_ptr: bool,
    },
    Send {
        data: Vec<u8>,
        null_ptr: bool,
        null_transfer: bool,
    },
    RosterVersion {
        null_ptr: bool,
    },
    /// Starts a streamed delivery of `total` bytes.
    SendBegin {
        total: u32,
        null_transfer: bool,
    },
    /// Asks which bytes the streamed delivery needs (`nulls` picks NULL outputs).
    Request {
        nulls: u8,
    },
    /// Supplies bytes: at the requested transfer and offset when `as_asked`, else at the
    /// arbitrary ones given; `len` NULL-pointer bytes when `null_ptr`.
    SendBytes {
        as_asked: bool,
        transfer: u32,
        offset: u32,
        data: Vec<u8>,
        null_ptr: bool,
        len: u16,
    },
    SealerNew {
        chunk: u8,
        segment: u8,
        content_type: Vec<u8>,
        null_options: bool,
        null_ct: bool,
    },
    Update {
        data: Vec<u8>,
        null_ptr: bool,
        len: u16,
    },
    Checkpoint,
    Finish,
    Read {
        cap: u16,
        null_buf: bool,
        null_written: bool,
    },
    FreeSealer,
    FreeToy,
    FailStorage(bool),
    ResultStr(i32),
}

const CODE: &str = "48151623";

struct State {
    flash: Box<Flash>,
    toy: *mut toyseal_toy,
    sealer: *mut toyseal_sealer,
    phone: Option<Phone>,
    now: u64,
}

impl State {
    fn pump(&mut self) {
        let Some(phone) = self.phone.as_mut() else {
            return;
        };
        let mut r = rng(self.now);
        for _ in 0..64 {
            let mut moved = false;
            while let Some(f) = phone.poll_transmit() {
                // SAFETY: a live (or NULL) toy handle; `f` readable.
                unsafe { toyseal_toy_handle_frame(self.toy, f.as_ptr(), f.len(), self.now) };
                moved = true;
            }
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let mut len = 0;
                // SAFETY: live or NULL handle; `buf` writable; `len` writable.
                let res = unsafe {
                    toyseal_toy_poll_transmit(self.toy, buf.as_mut_ptr(), buf.len(), &mut len)
                };
                if res != toyseal_result::Ok || len == 0 {
                    break;
                }
                phone.handle_frame(&buf[..len], Timestamp::from_millis(self.now), &mut r);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn found(&mut self) {
        let mut r = rng(self.now ^ 0x5eed);
        let parent = std::sync::Arc::new(toyseal_core::DeviceIdentity::generate(
            Role::Guardian,
            &mut r,
        ));
        let mut phone = Phone::new(parent.clone());
        let Ok(code) = PairingCode::parse(CODE) else {
            return;
        };
        if phone
            .pair(&code, PairingExpectations::default(), &mut r)
            .is_err()
        {
            return;
        }
        self.phone = Some(phone);
        self.pump();
        let Some(phone) = self.phone.as_mut() else {
            return;
        };
        let mut paired = None;
        while let Some(e) = phone.poll_event() {
            if let PhoneEvent::Paired(t) = e {
                paired = Some(t);
            }
        }
        let Some(paired) = paired else { return };
        // The parent confirms the founding pairing at the toy.
        // SAFETY: live or NULL handle.
        unsafe { toyseal_toy_confirm(self.toy, self.now) };
        self.pump();
        let Some(phone) = self.phone.as_mut() else {
            return;
        };
        phone.handle_disconnect();
        // SAFETY: live or NULL handle.
        unsafe { toyseal_toy_disconnect(self.toy) };
        if phone.open_session(&paired.identity, &mut r).is_err() {
            return;
        }
        self.pump();
        let Ok(recovery) = toyseal_roster::RecoveryKey::generate(&mut r) else {
            return;
        };
        let Ok(p) = RosterProposal::founding(
            FamilyId::generate(&mut r),
            vec![parent.public().clone(), paired.identity.clone()],
            *recovery.public(),
        ) else {
            return;
        };
        let mut v1 = p.sign(&parent);
        v1.cosign_recovery(&recovery);
        if let Some(phone) = self.phone.as_mut() {
            let _ = phone.push_rosters(std::slice::from_ref(&v1), Timestamp::from_millis(self.now));
        }
        self.pump();
        // And co-signing version 1.
        // SAFETY: live or NULL handle.
        unsafe { toyseal_toy_confirm(self.toy, self.now) };
        self.pump();
    }
}

fuzz_target!(|actions: Vec<Action>| {
    let mut s = State {
        flash: Box::default(),
        toy: null_mut(),
        sealer: null_mut(),
        phone: None,
        now: 0,
    };
    for action in actions.into_iter().take(48) {
        s.now += 1;
        let mut len = 0usize;
        // SAFETY (every call below): handles are NULL or live (freed handles are set to NULL),
        // and every non-NULL pointer is valid for the length passed with it.
        unsafe {
            match action {
                Action::Boot {
                    code,
                    null_storage,
                    null_callbacks,
                    identity,
                    null_out,
                } => {
                    toyseal_toy_free(s.toy);
                    s.toy = null_mut();
                    s.phone = None;
                    if let Some(id) = identity {
                        s.flash.slots[0] = id;
                    }
                    let storage = toyseal_storage {
                        ctx: (&mut *s.flash as *mut Flash).cast(),
                        load: if null_callbacks { None } else { Some(load) },
                        store: Some(store),
                    };
                    let code = code.unwrap_or_else(|| CODE.as_bytes().to_vec());
                    let sp = if null_storage {
                        null()
                    } else {
                        &storage as *const _
                    };
                    let out = if null_out {
                        null_mut()
                    } else {
                        &mut s.toy as *mut _
                    };
                    let r = toyseal_toy_new(sp, code.as_ptr(), code.len(), out);
                    assert!(r == toyseal_result::Ok || s.toy.is_null());
                }
                Action::Found => s.found(),
                Action::Button(t) => {
                    toyseal_toy_press_pair_button(s.toy, s.now + u64::from(t));
                }
                Action::Frame {
                    data,
                    null_ptr,
                    len,
                } => {
                    if null_ptr {
                        let r = toyseal_toy_handle_frame(s.toy, null(), usize::from(len), s.now);
                        assert!(len == 0 || r != toyseal_result::Ok);
                    } else {
                        toyseal_toy_handle_frame(s.toy, data.as_ptr(), data.len(), s.now);
                    }
                }
                Action::Timeout(t) => {
                    s.now += u64::from(t) * 100;
                    toyseal_toy_handle_timeout(s.toy, s.now);
                }
                Action::Disconnect => {
                    toyseal_toy_disconnect(s.toy);
                }
                Action::Confirm { decline } => {
                    if decline {
                        toyseal_toy_decline(s.toy, s.now);
                    } else {
                        toyseal_toy_confirm(s.toy, s.now);
                    }
                }
                Action::ConfirmationEntry { index, null_ptr } => {
                    let mut entry = toyseal_change_entry {
                        change: 0,
                        role: 0,
                        new_role: 0,
                        device_id: [0; 16],
                    };
                    let out: *mut toyseal_change_entry =
                        if null_ptr { null_mut() } else { &mut entry };
                    toyseal_toy_confirmation_entry(s.toy, u32::from(index), out);
                }
                Action::ConfirmationWindow(secs) => {
                    toyseal_toy_set_confirmation_window(s.toy, secs);
                }
                Action::Transmit {
                    cap,
                    null_buf,
                    null_len,
                } => {
                    let mut buf = vec![0u8; usize::from(cap)];
                    let bp = if null_buf {
                        null_mut()
                    } else {
                        buf.as_mut_ptr()
                    };
                    let lp = if null_len {
                        null_mut()
                    } else {
                        &mut len as *mut usize
                    };
                    let r = toyseal_toy_poll_transmit(s.toy, bp, buf.len(), lp);
                    if r == toyseal_result::Ok {
                        assert!(len <= buf.len());
                    }
                }
                Action::Event { null_ptr } => {
                    let mut e = std::mem::MaybeUninit::<toyseal_event>::uninit();
                    let p = if null_ptr { null_mut() } else { e.as_mut_ptr() };
                    toyseal_toy_poll_event(s.toy, p);
                }
                Action::DeviceId { cap, null_ptr } => {
                    let mut buf = vec![0u8; usize::from(cap)];
                    let p = if null_ptr {
                        null_mut()
                    } else {
                        buf.as_mut_ptr()
                    };
                    toyseal_toy_device_id(s.toy, p, buf.len());
                }
                Action::Send {
                    data,
                    null_ptr,
                    null_transfer,
                } => {
                    let mut t = 0u32;
                    let p = if null_ptr { null() } else { data.as_ptr() };
                    let tp = if null_transfer {
                        null_mut()
                    } else {
                        &mut t as *mut u32
                    };
                    toyseal_toy_send_envelope(s.toy, p, data.len(), s.now, tp);
                    s.pump();
                }
                Action::RosterVersion { null_ptr } => {
                    let mut v = 0u64;
                    let p = if null_ptr {
                        null_mut()
                    } else {
                        &mut v as *mut u64
                    };
                    toyseal_toy_roster_version(s.toy, p);
                }
                Action::SendBegin {
                    total,
                    null_transfer,
                } => {
                    let mut t = 0u32;
                    let tp = if null_transfer {
                        null_mut()
                    } else {
                        &mut t as *mut u32
                    };
                    toyseal_toy_send_envelope_begin(s.toy, total as usize, tp);
                }
                Action::Request { nulls } => {
                    let (mut t, mut o, mut l) = (0u32, 0usize, 0usize);
                    let tp = if nulls & 1 != 0 {
                        null_mut()
                    } else {
                        &mut t as *mut u32
                    };
                    let op = if nulls & 2 != 0 {
                        null_mut()
                    } else {
                        &mut o as *mut usize
                    };
                    let lp = if nulls & 4 != 0 {
                        null_mut()
                    } else {
                        &mut l as *mut usize
                    };
                    let r = toyseal_toy_envelope_request(s.toy, tp, op, lp);
                    if r == toyseal_result::Ok {
                        assert!(l <= u32::MAX as usize && o <= u32::MAX as usize);
                    }
                }
                Action::SendBytes {
                    as_asked,
                    transfer,
                    offset,
                    data,
                    null_ptr,
                    len,
                } => {
                    let (mut t, mut o, mut l) = (transfer, offset as usize, data.len());
                    if as_asked {
                        let r = toyseal_toy_envelope_request(s.toy, &mut t, &mut o, &mut l);
                        if r != toyseal_result::Ok {
                            continue;
                        }
                        l = l.min(data.len());
                    }
                    if null_ptr {
                        let r = toyseal_toy_send_envelope_bytes(
                            s.toy,
                            t,
                            o,
                            null(),
                            usize::from(len),
                            s.now,
                        );
                        assert!(r != toyseal_result::Ok);
                    } else {
                        let r =
                            toyseal_toy_send_envelope_bytes(s.toy, t, o, data.as_ptr(), l, s.now);
                        if as_asked && l > 0 {
                            assert!(
                                r == toyseal_result::Ok,
                                "bytes supplied as asked were refused: {r:?}"
                            );
                        }
                    }
                    s.pump();
                }
                Action::SealerNew {
                    chunk,
                    segment,
                    content_type,
                    null_options,
                    null_ct,
                } => {
                    toyseal_sealer_free(s.sealer);
                    s.sealer = null_mut();
                    let opts = toyseal_seal_options {
                        chunk_size_log2: chunk % 24,
                        segment_size_log2: segment % 26,
                        created_unix: s.now,
                        duration_ms: 0,
                        content_type: if null_ct {
                            null()
                        } else {
                            content_type.as_ptr()
                        },
                        content_type_len: content_type.len(),
                    };
                    let op = if null_options {
                        null()
                    } else {
                        &opts as *const _
                    };
                    let r = toyseal_sealer_new(s.toy, op, &mut s.sealer);
                    assert!(r == toyseal_result::Ok || s.sealer.is_null());
                }
                Action::Update {
                    data,
                    null_ptr,
                    len,
                } => {
                    if null_ptr {
                        toyseal_sealer_update(s.sealer, null(), usize::from(len));
                    } else {
                        toyseal_sealer_update(s.sealer, data.as_ptr(), data.len());
                    }
                }
                Action::Checkpoint => {
                    toyseal_sealer_checkpoint(s.sealer);
                }
                Action::Finish => {
                    toyseal_sealer_finish(s.sealer);
                }
                Action::Read {
                    cap,
                    null_buf,
                    null_written,
                } => {
                    let mut buf = vec![0u8; usize::from(cap)];
                    let bp = if null_buf {
                        null_mut()
                    } else {
                        buf.as_mut_ptr()
                    };
                    let wp = if null_written {
                        null_mut()
                    } else {
                        &mut len as *mut usize
                    };
                    let r = toyseal_sealer_read(s.sealer, bp, buf.len(), wp);
                    if r == toyseal_result::Ok {
                        assert!(len <= buf.len());
                    }
                }
                Action::FreeSealer => {
                    toyseal_sealer_free(s.sealer);
                    s.sealer = null_mut();
                }
                Action::FreeToy => {
                    toyseal_toy_free(s.toy);
                    s.toy = null_mut();
                    s.phone = None;
                }
                Action::FailStorage(fail) => s.flash.fail = fail,
                Action::ResultStr(v) => {
                    assert!(!toyseal_result_str(v).is_null());
                }
            }
        }
    }
    // SAFETY: NULL or live handles, freed once.
    unsafe {
        toyseal_sealer_free(s.sealer);
        toyseal_toy_free(s.toy);
    }
});
