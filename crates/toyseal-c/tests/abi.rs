//! The C ABI end to end (a Rust phone against the toy driven through the `extern "C"`
//! functions), and its boundary rules: NULLs, lengths, buffers too small, call order.

mod common;

use common::*;
use std::ffi::CStr;
use toyseal_c::*;
use toyseal_envelope::OpenOptions;
use toyseal_pairing::{EnvelopeEvent, PhoneEvent};

#[test]
fn a_c_toy_pairs_seals_while_recording_and_delivers() {
    let mut f = family();
    let recording = tone(8000 * 3);
    let mut envelope = Vec::new();
    c_seal(&mut f.toy, 10, &recording, 320, 16_000, &mut envelope).expect("sealed");
    let mut transfer = 0;
    // SAFETY: live handle; `envelope` readable; `transfer` writable.
    let r = unsafe {
        toyseal_toy_send_envelope(
            f.toy.handle,
            envelope.as_ptr(),
            envelope.len(),
            40,
            &mut transfer,
        )
    };
    assert_eq!(r, toyseal_result::Ok);
    let (pe, te) = pump(&mut f.phone, &mut f.toy, 40);
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::EnvelopeDelivered
                && e.transfer == transfer
                && e.length == envelope.len() as u64)
    );
    let received = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => Some(envelope),
            _ => None,
        })
        .expect("received");
    assert_eq!(received, envelope);
    let (content, info) = f
        .roster
        .open(&f.parent, &received, OpenOptions::default())
        .expect("opens");
    assert_eq!(content, recording);
    assert_eq!(
        info.metadata.content_type.as_deref(),
        Some("audio/L16;rate=8000")
    );
}

#[test]
fn a_c_toy_delivers_from_its_storage_streamed() {
    let mut f = family();
    let recording = tone(8000 * 3);
    let mut flash = Vec::new();
    c_seal(&mut f.toy, 10, &recording, 320, 16_000, &mut flash).expect("sealed");
    let (transfer, pe, te) = c_stream(&mut f.phone, &mut f.toy, &flash, 700, 40, &|_| {});
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::EnvelopeDelivered
                && e.transfer == transfer
                && e.length == flash.len() as u64)
    );
    let received = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => Some(envelope),
            _ => None,
        })
        .expect("received");
    assert_eq!(received, flash);
    let (content, _) = f
        .roster
        .open(&f.parent, &received, OpenOptions::default())
        .expect("opens");
    assert_eq!(content, recording);
}

#[test]
fn streamed_delivery_calls_check_their_arguments() {
    let mut f = family();
    let h = f.toy.handle;
    let flash = [7u8; 20_000];
    let (mut t, mut offset, mut len) = (0u32, 0usize, 0usize);
    // SAFETY: `h` is a live handle, NULL where the test says so; every buffer is valid for
    // the length passed.
    unsafe {
        assert_eq!(
            toyseal_toy_envelope_request(h, &mut t, &mut offset, &mut len),
            toyseal_result::Ok
        );
        assert_eq!(len, 0, "nothing needed while idle");
        assert_eq!(
            toyseal_toy_send_envelope_begin(std::ptr::null_mut(), 10, &mut t),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_send_envelope_begin(h, 10, std::ptr::null_mut()),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_send_envelope_begin(h, 0, &mut t),
            toyseal_result::InvalidArgument
        );
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            toyseal_toy_send_envelope_begin(h, 1 << 32, &mut t),
            toyseal_result::TooLarge
        );
        assert_eq!(
            toyseal_toy_send_envelope_begin(h, flash.len(), &mut t),
            toyseal_result::Ok
        );
        assert_eq!(
            toyseal_toy_send_envelope_begin(h, flash.len(), &mut t),
            toyseal_result::Busy
        );
        for (a, b, c) in [
            (
                std::ptr::null_mut(),
                &mut offset as *mut usize,
                &mut len as *mut usize,
            ),
            (
                &mut t as *mut u32,
                std::ptr::null_mut(),
                &mut len as *mut usize,
            ),
            (
                &mut t as *mut u32,
                &mut offset as *mut usize,
                std::ptr::null_mut(),
            ),
        ] {
            assert_eq!(
                toyseal_toy_envelope_request(h, a, b, c),
                toyseal_result::NullArgument
            );
        }
        assert_eq!(
            toyseal_toy_envelope_request(h, &mut t, &mut offset, &mut len),
            toyseal_result::Ok
        );
        assert_eq!((offset, len), (0, 4 * 4096), "the default window");
        let p = flash.as_ptr();
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, 0, std::ptr::null(), 10, 50),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, 0, p, 0, 50),
            toyseal_result::InvalidArgument,
            "no bytes"
        );
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, 1, p, 10, 50),
            toyseal_result::InvalidArgument,
            "wrong offset"
        );
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, 0, p, len + 1, 50),
            toyseal_result::InvalidArgument,
            "more than the window takes"
        );
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, usize::MAX, p, 10, 50),
            toyseal_result::InvalidArgument
        );
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t.wrapping_add(1), 0, p, 10, 50),
            toyseal_result::Misuse,
            "unknown transfer"
        );
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, 0, p, 10, 50),
            toyseal_result::Ok
        );
        assert_eq!(
            toyseal_toy_envelope_request(h, &mut t, &mut offset, &mut len),
            toyseal_result::Ok
        );
        assert_eq!((offset, len), (10, 4 * 4096 - 10));
        f.toy.disconnect();
        let aborted = f.toy.events();
        assert!(
            aborted
                .iter()
                .any(|e| e.kind == toyseal_event_kind::EnvelopeAborted && e.transfer == t)
        );
        assert_eq!(
            toyseal_toy_envelope_request(h, &mut t, &mut offset, &mut len),
            toyseal_result::Ok
        );
        assert_eq!(len, 0);
        assert_eq!(
            toyseal_toy_send_envelope_bytes(h, t, 10, p, 10, 50),
            toyseal_result::NoSession
        );
        assert_eq!(
            toyseal_toy_send_envelope_begin(h, 10, &mut t),
            toyseal_result::NoSession
        );
    }
}

#[test]
fn sequence_numbers_grow_and_are_stored_before_use() {
    let mut f = family();
    let mut a = Vec::new();
    let mut b = Vec::new();
    c_seal(&mut f.toy, 10, b"one", 3, 1 << 20, &mut a).expect("sealed");
    c_seal(&mut f.toy, 10, b"two", 3, 1 << 20, &mut b).expect("sealed");
    let seq = |e: &[u8]| toyseal_envelope::inspect(e).expect("header").sequence();
    assert_eq!((seq(&a), seq(&b)), (1, 2));
    // The slot holds the last sequence and its header hash (the sender state); the second
    // envelope names the first as its previous.
    let header = |e: &[u8]| toyseal_envelope::inspect(e).expect("header");
    assert_eq!(header(&a).previous(), &[0; 32]);
    assert_eq!(header(&b).previous(), &header(&a).link_hash());
    let mut slot = 2u64.to_le_bytes().to_vec();
    slot.extend_from_slice(&header(&b).link_hash());
    assert_eq!(f.toy.flash.slots[toyseal_slot::Sequence as usize], slot);
}

#[test]
fn the_identity_survives_a_reboot_and_a_bad_code_is_refused() {
    let toy = CToy::boot("48151623", Box::default()).expect("boot");
    let id = |t: &CToy| {
        let mut id = [0u8; 16];
        // SAFETY: live handle; 16 writable bytes.
        let r = unsafe { toyseal_toy_device_id(t.handle, id.as_mut_ptr(), id.len()) };
        assert_eq!(r, toyseal_result::Ok);
        id
    };
    let first = id(&toy);
    let flash = Box::new(Flash {
        slots: toy.flash.slots.clone(),
        ..Flash::default()
    });
    let again = CToy::boot("48151623", flash).expect("reboot");
    assert_eq!(id(&again), first);
    assert_eq!(
        CToy::boot("1234", Box::default()).err(),
        Some(toyseal_result::InvalidArgument)
    );
    let mut corrupt = Flash::default();
    corrupt.slots[toyseal_slot::Identity as usize] = b"not a key".to_vec();
    assert_eq!(
        CToy::boot("48151623", Box::new(corrupt)).err(),
        Some(toyseal_result::Storage)
    );
}

#[test]
fn null_arguments_and_bad_lengths_are_result_codes() {
    let mut toy = CToy::boot("48151623", Box::default()).expect("boot");
    let h = toy.handle;
    let null = std::ptr::null_mut();
    let mut len = 0usize;
    let mut buf = [0u8; 8];
    // SAFETY: every call passes NULL or valid pointers; toyseal must reject the NULLs.
    unsafe {
        assert_eq!(
            toyseal_toy_press_pair_button(null, 0),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_handle_frame(null, buf.as_ptr(), 1, 0),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_handle_frame(h, std::ptr::null(), 5, 0),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_handle_frame(h, std::ptr::null(), 0, 0),
            toyseal_result::Ok
        );
        assert_eq!(
            toyseal_toy_handle_timeout(null, 0),
            toyseal_result::NullArgument
        );
        assert_eq!(toyseal_toy_disconnect(null), toyseal_result::NullArgument);
        assert_eq!(
            toyseal_toy_poll_transmit(h, buf.as_mut_ptr(), 8, std::ptr::null_mut()),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_poll_event(h, std::ptr::null_mut()),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_device_id(h, buf.as_mut_ptr(), 8),
            toyseal_result::BufferTooSmall
        );
        assert_eq!(
            toyseal_toy_send_envelope(h, buf.as_ptr(), 8, 0, std::ptr::null_mut()),
            toyseal_result::NullArgument
        );
        let mut t = 0;
        assert_eq!(
            toyseal_toy_send_envelope(h, buf.as_ptr(), 8, 0, &mut t),
            toyseal_result::NoSession
        );
        let mut v = 0;
        assert_eq!(
            toyseal_toy_roster_version(h, &mut v),
            toyseal_result::NoRoster
        );
        let mut s = std::ptr::null_mut();
        assert_eq!(
            toyseal_sealer_new(h, std::ptr::null(), &mut s),
            toyseal_result::NoRoster
        );
        assert!(s.is_null());
        assert_eq!(
            toyseal_sealer_update(null.cast(), buf.as_ptr(), 1),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_sealer_read(null.cast(), buf.as_mut_ptr(), 8, &mut len),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_new(std::ptr::null(), buf.as_ptr(), 8, &mut s.cast()),
            toyseal_result::NullArgument
        );
        let no_callbacks = toyseal_storage {
            ctx: null.cast(),
            load: None,
            store: None,
        };
        let mut t2 = std::ptr::null_mut();
        assert_eq!(
            toyseal_toy_new(&no_callbacks, b"48151623".as_ptr(), 8, &mut t2),
            toyseal_result::NullArgument
        );
        assert!(t2.is_null());
        toyseal_toy_free(null);
        toyseal_sealer_free(null.cast());
    }
    // Garbage is the protocol's business (it answers NOT_PAIRABLE), not an error.
    assert_eq!(toy.frame(&[0xff; 40], 1), toyseal_result::Ok);
    // SAFETY: live handle; NULL buffers with the capacities given; `len` writable.
    unsafe {
        let r = toyseal_toy_poll_transmit(h, std::ptr::null_mut(), 8, &mut len);
        assert_eq!(r, toyseal_result::NullArgument);
        let r = toyseal_toy_poll_transmit(h, std::ptr::null_mut(), 0, &mut len);
        assert_eq!(r, toyseal_result::BufferTooSmall);
        assert!(len > 0);
    }
    assert!(!toy.transmit().is_empty());
}

#[test]
fn sealer_calls_out_of_order_are_misuse_and_output_must_be_read() {
    let f = family();
    let opts = toyseal_seal_options {
        chunk_size_log2: 10,
        segment_size_log2: 10,
        created_unix: 0,
        duration_ms: 0,
        content_type: std::ptr::null(),
        content_type_len: 0,
    };
    let mut s = std::ptr::null_mut();
    let big = vec![0u8; 64 * 1024];
    let mut buf = [0u8; 64];
    let mut n = 0;
    // SAFETY: valid handles and buffers throughout.
    unsafe {
        assert_eq!(
            toyseal_sealer_new(f.toy.handle, &opts, &mut s),
            toyseal_result::Ok
        );
        assert_eq!(
            toyseal_sealer_read(s, buf.as_mut_ptr(), 0, &mut n),
            toyseal_result::InvalidArgument
        );
        assert_eq!(
            toyseal_sealer_update(s, big.as_ptr(), big.len()),
            toyseal_result::Ok
        );
        // 64 KiB of unread output: the next update waits for the caller to read.
        assert_eq!(
            toyseal_sealer_update(s, big.as_ptr(), 1),
            toyseal_result::Busy
        );
        assert_eq!(toyseal_sealer_finish(s), toyseal_result::Ok);
        assert_eq!(toyseal_sealer_finish(s), toyseal_result::Misuse);
        assert_eq!(
            toyseal_sealer_update(s, big.as_ptr(), 1),
            toyseal_result::Misuse
        );
        assert_eq!(toyseal_sealer_checkpoint(s), toyseal_result::Misuse);
        let mut total = 0;
        loop {
            assert_eq!(
                toyseal_sealer_read(s, buf.as_mut_ptr(), buf.len(), &mut n),
                toyseal_result::Ok
            );
            if n == 0 {
                break;
            }
            total += n;
        }
        assert!(total > big.len());
        toyseal_sealer_free(s);
        let bad = toyseal_seal_options {
            chunk_size_log2: 9,
            ..opts
        };
        assert_eq!(
            toyseal_sealer_new(f.toy.handle, &bad, &mut s),
            toyseal_result::InvalidArgument
        );
        let bad = toyseal_seal_options {
            chunk_size_log2: 12,
            segment_size_log2: 11,
            ..opts
        };
        assert_eq!(
            toyseal_sealer_new(f.toy.handle, &bad, &mut s),
            toyseal_result::InvalidArgument
        );
    }
}

#[test]
fn factory_reset_forgets_the_family_and_the_printed_code_pairs_again() {
    let f = family();
    // SAFETY: live handle.
    unsafe {
        assert_eq!(
            toyseal_toy_press_pair_button(f.toy.handle, 40),
            toyseal_result::NotPairable
        );
        assert_eq!(toyseal_toy_factory_reset(f.toy.handle), toyseal_result::Ok);
        let mut v = 0;
        assert_eq!(
            toyseal_toy_roster_version(f.toy.handle, &mut v),
            toyseal_result::NoRoster
        );
        assert_eq!(
            toyseal_toy_press_pair_button(f.toy.handle, 50),
            toyseal_result::Ok
        );
        assert_eq!(
            toyseal_toy_factory_reset(std::ptr::null_mut()),
            toyseal_result::NullArgument
        );
    }
    assert!(f.toy.flash.slots[toyseal_slot::Founder as usize].is_empty());
    assert!(f.toy.flash.slots[toyseal_slot::Roster as usize].is_empty());
    assert_eq!(
        f.toy.flash.slots[toyseal_slot::FailureCount as usize],
        0u32.to_le_bytes()
    );
}

#[test]
fn a_failed_store_is_reported_and_no_event_is_lost() {
    let failing = Box::new(Flash {
        fail_store: Some(toyseal_slot::Identity),
        ..Flash::default()
    });
    // First boot must store the new identity: refused, and no handle.
    assert_eq!(
        CToy::boot("48151623", failing).err(),
        Some(toyseal_result::Storage)
    );

    // Pairing while the founder cannot be stored.
    let code = toyseal_pairing::PairingCode::generate(8, &mut toyseal_core::OsRng);
    let mut toy = CToy::boot(code.digits(), Box::default()).expect("boot");
    // SAFETY: live handle.
    let r = unsafe { toyseal_toy_press_pair_button(toy.handle, 0) };
    assert_eq!(r, toyseal_result::Ok);
    toy.flash.fail_store = Some(toyseal_slot::Founder);
    let parent = std::sync::Arc::new(toyseal_core::DeviceIdentity::generate(
        toyseal_core::Role::Guardian,
        &mut toyseal_core::OsRng,
    ));
    let mut phone = toyseal_pairing::Phone::new(parent);
    phone
        .pair(
            &code,
            toyseal_pairing::PairingExpectations::default(),
            &mut toyseal_core::OsRng,
        )
        .expect("pair");
    let mut results = Vec::new();
    let mut events = Vec::new();
    for _ in 0..8 {
        use toyseal_pairing::Endpoint;
        while let Some(f) = phone.poll_transmit() {
            results.push(toy.frame(&f, 1));
        }
        events.extend(toy.events());
        for f in toy.transmit() {
            phone.handle_frame(
                &f,
                toyseal_pairing::Timestamp::from_millis(1),
                &mut toyseal_core::OsRng,
            );
        }
    }
    // The founder is recorded (and stored) only on the confirmation at the toy: that call
    // reports STORAGE, and the PAIRED event is still queued.
    assert!(
        events
            .iter()
            .any(|e| e.kind == toyseal_event_kind::ConfirmationRequested)
    );
    assert!(!results.contains(&toyseal_result::Storage));
    assert_eq!(toy.confirm(2), toyseal_result::Storage);
    events.extend(toy.events());
    assert!(events.iter().any(|e| e.kind == toyseal_event_kind::Paired));
    assert!(toy.flash.slots[toyseal_slot::Founder as usize].is_empty());
}

#[test]
fn every_result_has_a_description() {
    for v in -1..20 {
        let s = toyseal_result_str(v);
        assert!(!s.is_null());
        // SAFETY: a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(s) }.to_str().expect("ascii");
        assert!(!text.is_empty());
    }
    // SAFETY: static NUL-terminated string.
    let ok = unsafe { CStr::from_ptr(toyseal_result_str(0)) };
    assert_eq!(ok.to_str().ok(), Some("ok"));
}

/// A sealer handle holds its own reference to the toy's identity: freeing the toy handle
/// (and with it the toy's `Arc`) does not end it; the envelope completes and opens.
#[test]
fn a_sealer_outlives_the_toy_handle() {
    let Family {
        toy,
        parent,
        roster,
        ..
    } = family();
    let recording = tone(5000);
    let mut s = std::ptr::null_mut();
    let mut envelope = Vec::new();
    let mut buf = [0u8; 4096];
    let mut n = 0;
    // SAFETY: valid handles and buffers throughout; the toy is freed once (by its Drop).
    unsafe {
        assert_eq!(
            toyseal_sealer_new(toy.handle, std::ptr::null(), &mut s),
            toyseal_result::Ok
        );
        drop(toy);
        assert_eq!(
            toyseal_sealer_update(s, recording.as_ptr(), recording.len()),
            toyseal_result::Ok
        );
        assert_eq!(toyseal_sealer_finish(s), toyseal_result::Ok);
        loop {
            assert_eq!(
                toyseal_sealer_read(s, buf.as_mut_ptr(), buf.len(), &mut n),
                toyseal_result::Ok
            );
            if n == 0 {
                break;
            }
            envelope.extend_from_slice(&buf[..n]);
        }
        toyseal_sealer_free(s);
    }
    let (content, _) = roster
        .open(&parent, &envelope, OpenOptions::default())
        .expect("opens");
    assert_eq!(content, recording);
}
