//! The async client of the toyseal cloud API (docs/spec/signed-requests.md §6): every request
//! signed by the device key, roster chains verified through the device's anchor, envelopes
//! checked against their content hash. Async in Kotlin (`suspend`), Swift (`async`) and Python
//! (`asyncio`); the Rust side runs on a tokio runtime UniFFI provides.

use crate::roster::{Anchor, Roster, SignedRoster};
use crate::{EnvelopeErasure, FamilyDeletion, Identity, ToysealError};
use std::sync::Arc;
use toyseal_cloud::api::EnvelopeId;
use toyseal_core::FamilyId;

fn family(text: &str) -> Result<FamilyId, ToysealError> {
    text.trim()
        .parse()
        .map_err(|_| ToysealError::invalid("a family id is 32 hex digits"))
}

fn envelope_id(text: &str) -> Result<EnvelopeId, ToysealError> {
    text.trim()
        .parse()
        .map_err(|_| ToysealError::invalid("an envelope id is 64 lower-case hex digits"))
}

/// One stored envelope, as the server lists it (nothing here is proved until you open it).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EnvelopeSummary {
    /// Its id (SHA-256 of the bytes, 64 hex digits).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// The sender's device id, as the server verified it.
    pub sender: String,
    /// The roster version it was sealed under.
    pub roster_version: u64,
    /// When the server received it (Unix seconds).
    pub received_at: u64,
    /// The sender's signed sequence number (0: stored before the server tracked sender chains).
    pub sequence: u64,
}

/// One page of a family's envelopes, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EnvelopePage {
    /// The envelopes.
    pub items: Vec<EnvelopeSummary>,
    /// Pass to `list` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A pending soft deletion (THREATS T36): hidden from listings and downloads, restorable by
/// any guardian until `erase_at`, when the server erases it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PendingDeletion {
    /// The envelope's id (64 hex digits).
    pub id: String,
    /// The envelope's sender (device id).
    pub sender: String,
    /// The guardian that deleted it (device id).
    pub deleted_by: String,
    /// When (Unix seconds).
    pub deleted_at: u64,
    /// When the server erases it unless a guardian restores it (Unix seconds).
    pub erase_at: u64,
}

impl From<toyseal_cloud::api::PendingDeletion> for PendingDeletion {
    fn from(p: toyseal_cloud::api::PendingDeletion) -> Self {
        Self {
            id: p.id.to_string(),
            sender: p.sender,
            deleted_by: p.deleted_by,
            deleted_at: p.deleted_at,
            erase_at: p.erase_at,
        }
    }
}

/// One page of a family's pending soft deletions.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeletionPage {
    /// The pending deletions.
    pub items: Vec<PendingDeletion>,
    /// Pass to `deletions` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A signed-request client for one server, acting as one device.
#[derive(Debug, uniffi::Object)]
pub struct CloudClient {
    inner: toyseal_cloud::Client,
}

#[uniffi::export(async_runtime = "tokio")]
impl CloudClient {
    /// A client for `base_url` (`https://host[:port]`; `http://` only for loopback tests).
    #[uniffi::constructor]
    pub fn new(base_url: String, identity: Arc<Identity>) -> Result<Self, ToysealError> {
        Ok(Self {
            inner: toyseal_cloud::Client::new(&base_url, identity.inner.clone())?,
        })
    }

    /// Registers a new family with its verified version 1 (guardian-signed, toy co-signed).
    pub async fn create_family(
        &self,
        version1: Arc<SignedRoster>,
    ) -> Result<Arc<Roster>, ToysealError> {
        let inner = self.inner.create_family(&version1.inner).await?;
        Ok(Arc::new(Roster { inner }))
    }

    /// Fetches the family's chain and verifies it through `anchor` to its newest version.
    pub async fn roster(&self, anchor: Arc<Anchor>) -> Result<Arc<Roster>, ToysealError> {
        let inner = self.inner.roster(&anchor.inner).await?;
        Ok(Arc::new(Roster { inner }))
    }

    /// Fetches versions newer than `current` and verifies them from it.
    pub async fn roster_update(&self, current: Arc<Roster>) -> Result<Arc<Roster>, ToysealError> {
        let inner = self.inner.roster_update(&current.inner).await?;
        Ok(Arc::new(Roster { inner }))
    }

    /// Publishes the next roster version (already carrying its quorum).
    pub async fn update_roster(&self, next: Arc<SignedRoster>) -> Result<(), ToysealError> {
        Ok(self.inner.update_roster(&next.inner).await?)
    }

    /// Uploads a sealed envelope; returns its id. Idempotent (content-addressed).
    pub async fn upload(
        &self,
        family_id: String,
        envelope: Vec<u8>,
    ) -> Result<String, ToysealError> {
        let up = self.inner.upload(family(&family_id)?, &envelope).await?;
        Ok(up.id.to_string())
    }

    /// One page of the family's envelopes (`cursor`: a previous page's `next_cursor`).
    pub async fn list(
        &self,
        family_id: String,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<EnvelopePage, ToysealError> {
        let page = self
            .inner
            .list(family(&family_id)?, cursor.as_deref(), limit)
            .await?;
        Ok(EnvelopePage {
            items: page
                .items
                .into_iter()
                .map(|s| EnvelopeSummary {
                    id: s.id.to_string(),
                    size: s.size,
                    sender: s.sender,
                    roster_version: s.roster_version,
                    received_at: s.received_at,
                    sequence: s.sequence,
                })
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Downloads an envelope (checked against its id); open it with the roster.
    pub async fn download(
        &self,
        family_id: String,
        envelope_id: String,
    ) -> Result<Vec<u8>, ToysealError> {
        Ok(self
            .inner
            .download(family(&family_id)?, &self::envelope_id(&envelope_id)?)
            .await?)
    }

    /// Deletes an envelope. This device's own envelope is erased at once (`None`); a
    /// guardian's deletion of another device's envelope is soft (the pending deletion:
    /// hidden, restorable by any guardian until its `erase_at`). Other members may not delete
    /// others' envelopes (403); beyond the server's daily limit of soft deletions the error's
    /// kind is `deletion-limit`.
    pub async fn delete_envelope(
        &self,
        family_id: String,
        envelope_id: String,
    ) -> Result<Option<PendingDeletion>, ToysealError> {
        match self
            .inner
            .delete_envelope(family(&family_id)?, &self::envelope_id(&envelope_id)?)
            .await?
        {
            toyseal_cloud::Deletion::Pending(p) => Ok(Some(p.into())),
            _ => Ok(None),
        }
    }

    /// One page of the family's pending soft deletions (guardians; `cursor`: a previous
    /// page's `next_cursor`).
    pub async fn deletions(
        &self,
        family_id: String,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<DeletionPage, ToysealError> {
        let page = self
            .inner
            .deletions(family(&family_id)?, cursor.as_deref(), limit)
            .await?;
        Ok(DeletionPage {
            items: page.items.into_iter().map(PendingDeletion::from).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Restores a soft-deleted envelope (guardians): listed and downloadable again.
    pub async fn restore_envelope(
        &self,
        family_id: String,
        envelope_id: String,
    ) -> Result<(), ToysealError> {
        Ok(self
            .inner
            .restore_envelope(family(&family_id)?, &self::envelope_id(&envelope_id)?)
            .await?)
    }

    /// Erases the envelopes an erasure statement names at once, without the 30-day soft
    /// deletion (two guardians, or a guardian and the recovery key, signed it). Idempotent.
    pub async fn erase(&self, erasure: Arc<EnvelopeErasure>) -> Result<(), ToysealError> {
        Ok(self.inner.erase(&erasure.inner).await?)
    }

    /// Deletes the whole family and everything it stored, with its signed deletion statement.
    pub async fn delete_family(&self, deletion: Arc<FamilyDeletion>) -> Result<(), ToysealError> {
        Ok(self.inner.delete_family(&deletion.inner).await?)
    }
}
