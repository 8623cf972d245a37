//! Helpers shared by the FFI integration tests: an in-memory key store, a device with its own
//! store, and a family {mum, dad, toy} with its recovery key at roster version 1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use toyseal_ffi::{
    Identity, KeyStore, RecoveryKey, Role, Roster, RosterProposal, ToysealError, generate_family_id,
};

#[derive(Default)]
pub struct MemoryKeyStore(Mutex<HashMap<String, String>>);

impl KeyStore for MemoryKeyStore {
    fn load_secret_key_text(&self, name: String) -> Result<Option<String>, ToysealError> {
        Ok(self.0.lock().unwrap().get(&name).cloned())
    }
    fn store_secret_key_text(&self, name: String, text: String) -> Result<(), ToysealError> {
        self.0.lock().unwrap().insert(name, text);
        Ok(())
    }
    fn delete(&self, name: String) -> Result<bool, ToysealError> {
        Ok(self.0.lock().unwrap().remove(&name).is_some())
    }
}

pub fn device(role: Role) -> Arc<Identity> {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::default());
    Identity::load_or_generate(store, "key".into(), role).unwrap()
}

pub struct Family {
    pub mum: Arc<Identity>,
    pub dad: Arc<Identity>,
    pub toy: Arc<Identity>,
    pub recovery: Arc<RecoveryKey>,
    pub v1: Arc<Roster>,
}

pub fn family() -> Family {
    let (mum, dad, toy) = (
        device(Role::Guardian),
        device(Role::Guardian),
        device(Role::Toy),
    );
    let recovery = RecoveryKey::generate().unwrap();
    let v1 = RosterProposal::founding(
        generate_family_id(),
        vec![mum.public_key(), dad.public_key(), toy.public_key()],
        recovery.clone(),
    )
    .unwrap()
    .sign(mum.clone())
    .cosign(dad.clone())
    .cosign(toy.clone())
    .cosign_recovery(recovery.clone());
    Family {
        mum,
        dad,
        toy,
        recovery,
        v1: Roster::verify_founding(v1).unwrap(),
    }
}
