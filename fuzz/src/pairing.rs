//! Fixed synthetic devices for the pairing fuzz targets.

use std::sync::LazyLock;
use toyseal_core::{DeviceIdentity, Role};
use toyseal_pairing::{
    MemoryFailureStore, PairingCode, PairingWindow, SessionConfig, Toy, WindowPolicy,
};

/// The toy, a phone already pinned on it, and the toy's printed code.
pub struct Pairing {
    /// The toy's identity.
    pub toy_identity: DeviceIdentity,
    /// A guardian's phone (pinned on the toy).
    pub phone: DeviceIdentity,
    /// The code on the toy's tag.
    pub code: PairingCode,
}

/// Built once from a fixed seed.
pub static PAIRING: LazyLock<Pairing> = LazyLock::new(|| {
    let mut r = crate::rng(0x7041);
    Pairing {
        toy_identity: DeviceIdentity::generate(Role::Toy, &mut r),
        phone: DeviceIdentity::generate(Role::Guardian, &mut r),
        code: PairingCode::generate(8, &mut r),
    }
});

/// A fresh toy endpoint with the fixed identity and code, the phone pinned.
pub fn toy() -> Toy<MemoryFailureStore> {
    let p = &*PAIRING;
    let identity = p
        .toy_identity
        .export_secret_key_text()
        .ok()
        .and_then(|t| DeviceIdentity::from_secret_key_text(&t).ok())
        .unwrap_or_else(|| DeviceIdentity::generate(Role::Toy, &mut crate::rng(1)));
    Toy::new(
        identity,
        p.code.clone(),
        None,
        vec![p.phone.public().clone()],
        PairingWindow::new(WindowPolicy::default(), MemoryFailureStore::default()),
        SessionConfig::default(),
    )
}
