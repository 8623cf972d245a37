//! The family's signed deletion statements (docs/spec/roster.md §5): erasing named envelopes
//! at once ([`EnvelopeErasure`]) and deleting the whole family ([`FamilyDeletion`]). Both are
//! decided under one roster version and need two guardians, or a guardian and the recovery
//! key (THREATS T36); the toy's signature never counts. Build one, have each signer cosign
//! it (on their own device, passing the encoded bytes between them), check it with
//! `verify`, then send it with `CloudClient.erase` / `CloudClient.deleteFamily`.

use crate::roster::{RecoveryKey, Roster};
use crate::{Identity, ToysealError};
use std::sync::Arc;
use toyseal_cloud::api::EnvelopeId;

/// "Erase these envelopes now", under one roster version, with its signatures.
#[derive(Clone, Debug, uniffi::Object)]
pub struct EnvelopeErasure {
    pub(crate) inner: toyseal_roster::EnvelopeErasure,
}

#[uniffi::export]
impl EnvelopeErasure {
    /// An unsigned statement erasing these envelopes (ids as the server names them: 64
    /// lower-case hex digits) under `roster`'s version. Sorted and de-duplicated; none, or
    /// more than 64, is an error (erase more with several statements).
    #[uniffi::constructor]
    pub fn new(roster: Arc<Roster>, envelope_ids: Vec<String>) -> Result<Arc<Self>, ToysealError> {
        let ids = envelope_ids
            .iter()
            .map(|id| {
                id.trim()
                    .parse::<EnvelopeId>()
                    .map(|id| *id.as_bytes())
                    .map_err(|_| {
                        ToysealError::invalid("an envelope id is 64 lower-case hex digits")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Self {
            inner: toyseal_roster::EnvelopeErasure::new(&roster.inner, ids)?,
        }))
    }

    /// Parses the wire form (structure only: `verify` decides trust).
    #[uniffi::constructor]
    pub fn decode(bytes: Vec<u8>) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::EnvelopeErasure::decode(&bytes)?,
        }))
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.inner.encode()
    }

    /// The family id (32 hex digits).
    pub fn family_id(&self) -> String {
        self.inner.family().to_string()
    }

    /// The envelope ids it erases (64 hex digits each), ascending.
    pub fn envelope_ids(&self) -> Vec<String> {
        self.inner
            .envelopes()
            .iter()
            .map(|id| EnvelopeId::from_bytes(*id).to_string())
            .collect()
    }

    /// The signers' ids (devices, or the recovery key's signer id), ascending.
    pub fn signers(&self) -> Vec<String> {
        self.inner.signers().map(|d| d.to_string()).collect()
    }

    /// A copy with `signer`'s signature added.
    pub fn cosign(&self, signer: Arc<Identity>) -> Arc<Self> {
        let mut inner = self.inner.clone();
        inner.cosign(&signer.inner);
        Arc::new(Self { inner })
    }

    /// A copy with the recovery key's signature added.
    pub fn cosign_recovery(&self, key: Arc<RecoveryKey>) -> Arc<Self> {
        let mut inner = self.inner.clone();
        inner.cosign_recovery(&key.inner);
        Arc::new(Self { inner })
    }

    /// Checks it against `roster` (the version it names, and a quorum of two guardians or a
    /// guardian and the recovery key): what the server checks before erasing.
    pub fn verify(&self, roster: Arc<Roster>) -> Result<(), ToysealError> {
        Ok(roster.inner.verify_erasure(&self.inner)?)
    }
}

/// "Delete this family and everything it stored", under one roster version, with its
/// signatures.
#[derive(Clone, Debug, uniffi::Object)]
pub struct FamilyDeletion {
    pub(crate) inner: toyseal_roster::FamilyDeletion,
}

#[uniffi::export]
impl FamilyDeletion {
    /// An unsigned statement deleting the family under `roster`'s version.
    #[uniffi::constructor]
    pub fn new(roster: Arc<Roster>) -> Arc<Self> {
        Arc::new(Self {
            inner: toyseal_roster::FamilyDeletion::new(&roster.inner),
        })
    }

    /// Parses the wire form (structure only: `verify` decides trust).
    #[uniffi::constructor]
    pub fn decode(bytes: Vec<u8>) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::FamilyDeletion::decode(&bytes)?,
        }))
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.inner.encode()
    }

    /// The family id (32 hex digits).
    pub fn family_id(&self) -> String {
        self.inner.family().to_string()
    }

    /// The signers' ids, ascending.
    pub fn signers(&self) -> Vec<String> {
        self.inner.signers().map(|d| d.to_string()).collect()
    }

    /// A copy with `signer`'s signature added.
    pub fn cosign(&self, signer: Arc<Identity>) -> Arc<Self> {
        let mut inner = self.inner.clone();
        inner.cosign(&signer.inner);
        Arc::new(Self { inner })
    }

    /// A copy with the recovery key's signature added.
    pub fn cosign_recovery(&self, key: Arc<RecoveryKey>) -> Arc<Self> {
        let mut inner = self.inner.clone();
        inner.cosign_recovery(&key.inner);
        Arc::new(Self { inner })
    }

    /// Checks it against `roster` (the version it names, and its quorum): what the server
    /// checks before deleting the family.
    pub fn verify(&self, roster: Arc<Roster>) -> Result<(), ToysealError> {
        Ok(roster.inner.verify_deletion(&self.inner)?)
    }
}
