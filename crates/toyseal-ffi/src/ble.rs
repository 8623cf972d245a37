//! Framing for the app's BLE code (docs/spec/pairing.md §Fragmentation, docs/spec/gatt.md):
//! whole frames from [`crate::Phone`] are split into ATT-sized packets for GATT writes, and the
//! toy's notifications are reassembled into whole frames, in bounded memory.

use crate::ToysealError;
use std::sync::{Mutex, MutexGuard};
use toyseal_pairing::Timestamp;
use toyseal_pairing::frag;

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, ToysealError> {
    m.lock().map_err(|_| ToysealError::Internal {
        reason: "a previous call panicked".into(),
    })
}

/// Splits the phone's frames into packets for GATT writes (one per write).
#[derive(Debug, uniffi::Object)]
pub struct Fragmenter {
    inner: Mutex<frag::Fragmenter>,
}

#[uniffi::export]
impl Fragmenter {
    /// For the negotiated ATT MTU (23 to 247).
    #[uniffi::constructor]
    pub fn new(att_mtu: u32) -> Result<Self, ToysealError> {
        let inner = frag::Fragmenter::new(att_mtu as usize)?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    /// The packets of one frame, in order.
    pub fn fragment(&self, frame: Vec<u8>) -> Result<Vec<Vec<u8>>, ToysealError> {
        Ok(lock(&self.inner)?.fragment(&frame)?)
    }
}

/// Reassembles the toy's notifications into whole frames for [`crate::Phone::handle_frame`].
/// An error means the link is broken or tampered with: disconnect.
#[derive(Debug, uniffi::Object)]
pub struct Reassembler {
    inner: Mutex<frag::Reassembler>,
}

#[uniffi::export]
impl Reassembler {
    /// With the default bounds (64 KiB frames, 5 s between packets, 30 s per frame).
    #[uniffi::constructor]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(frag::Reassembler::default()),
        }
    }

    /// One notification's packet; returns the frame it completed, if any.
    pub fn push(&self, packet: Vec<u8>, now_ms: u64) -> Result<Option<Vec<u8>>, ToysealError> {
        Ok(lock(&self.inner)?.push(&packet, Timestamp::from_millis(now_ms))?)
    }

    /// Runs the stall timers (call it with the phone's `handle_timeout`).
    pub fn poll(&self, now_ms: u64) -> Result<(), ToysealError> {
        Ok(lock(&self.inner)?.poll(Timestamp::from_millis(now_ms))?)
    }
}
