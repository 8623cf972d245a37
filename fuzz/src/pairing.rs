//! Fixed synthetic devices for the pairing fuzz targets.

use std::sync::{Arc, LazyLock};
use toyseal_core::{DeviceIdentity, Role};
use toyseal_pairing::{MemoryFailureStore, PairingCode, Toy};

/// The toy, a phone already paired with it (its founder), and the toy's printed code.
pub struct Pairing {
    /// The toy's identity.
    pub toy_identity: Arc<DeviceIdentity>,
    /// A guardian's phone (the toy's founder).
    pub phone: DeviceIdentity,
    /// The code on the toy's tag.
    pub code: PairingCode,
}

/// Built once from a fixed seed.
pub static PAIRING: LazyLock<Pairing> = LazyLock::new(|| {
    let mut r = crate::rng(0x7041);
    Pairing {
        toy_identity: Arc::new(DeviceIdentity::generate(Role::Toy, &mut r)),
        phone: DeviceIdentity::generate(Role::Guardian, &mut r),
        code: PairingCode::generate(8, &mut r),
    }
});

/// A fresh toy endpoint with the fixed identity and code, the phone as its founder (admitted
/// to sessions, and to re-pairing with the printed code until roster version 1 exists).
pub fn toy() -> Toy<MemoryFailureStore> {
    let p = &*PAIRING;
    let builder = Toy::builder(
        p.toy_identity.clone(),
        p.code.clone(),
        MemoryFailureStore::default(),
    );
    match builder.founder(p.phone.public().clone()).build() {
        Ok(toy) => toy,
        // Invariant: a toy identity and a guardian founder always build.
        Err(e) => panic!("fixed fuzz toy: {e}"),
    }
}
