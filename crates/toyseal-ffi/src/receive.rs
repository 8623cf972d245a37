//! The receive state a phone keeps per sender (docs/spec/envelope.md §11.3): every verified
//! chain link `(sequence, previous, header hash)` seen from each family device. With it,
//! `Roster.openWithState` tells new from late from replayed, refuses a member's fork, and
//! opens a removed device's earlier envelopes (the ancestors of the chain head its removal
//! recorded), not only the head itself.

use crate::roster::Roster;
use crate::{EnvelopeInfo, Identity, PublicKey, ToysealError};
use std::sync::{Arc, Mutex, MutexGuard};
use toyseal_core::DeviceId;
use toyseal_envelope::{ChainLink, OpenOptions};

/// How an opened envelope's place on its sender's chain relates to what this phone has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Freshness {
    /// Higher than every sequence seen from this sender: a new message, in order.
    New,
    /// Not seen before, but lower than one already seen: show it in its place by sequence.
    Late,
    /// This very envelope was seen before: do not present it as new.
    Replay,
    /// The sender's chain forked (another envelope at the same sequence, or two naming the
    /// same previous one): refuse it and show it.
    Fork,
    /// Sequence 0: on no chain, with no ordering guarantee.
    Unsequenced,
}

impl Freshness {
    fn of(f: toyseal_envelope::Freshness) -> Self {
        use toyseal_envelope::Freshness as F;
        match f {
            F::New => Self::New,
            F::Late => Self::Late,
            F::Replay => Self::Replay,
            F::Unsequenced => Self::Unsequenced,
            // A fork, or a verdict this version does not know: never present it as new.
            _ => Self::Fork,
        }
    }
}

/// A whole envelope opened with the receive state.
#[derive(Debug, uniffi::Record)]
pub struct ReceivedEnvelope {
    /// The content.
    pub content: Vec<u8>,
    /// What was proved about it.
    pub info: EnvelopeInfo,
    /// Its place relative to what this phone had seen from the sender (now recorded).
    pub freshness: Freshness,
}

/// Magic and format version of [`ReceiveState::encode`].
const MAGIC: &[u8; 4] = b"TSRS";
const FORMAT: u8 = 1;
/// Device id, sequence, previous, header hash.
const LINK_LEN: usize = 16 + 8 + 32 + 32;

/// The receive state (thread-safe). Persist it with `encode` after every change and restore
/// it with `decode` at start-up, so replays and forks are caught across restarts.
///
/// Encoding (version 1): `"TSRS"`, the byte `0x01`, a 4-byte big-endian link count, then per
/// link the sender's 16-byte device id, its 8-byte big-endian sequence (never 0), the 32-byte
/// previous link hash and the 32-byte header hash, in ascending order of (device id, header
/// hash). Nothing in it is secret, but it is the phone's memory of what it saw: keep it where
/// the app keeps its other state.
#[derive(uniffi::Object)]
pub struct ReceiveState {
    inner: Mutex<toyseal_envelope::ReceiveState>,
}

impl std::fmt::Debug for ReceiveState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveState").finish_non_exhaustive()
    }
}

impl ReceiveState {
    pub(crate) fn lock(
        &self,
    ) -> Result<MutexGuard<'_, toyseal_envelope::ReceiveState>, ToysealError> {
        self.inner.lock().map_err(|_| ToysealError::Internal {
            reason: "a previous call panicked".into(),
        })
    }
}

fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], ToysealError> {
    bytes
        .try_into()
        .map_err(|_| ToysealError::invalid(format!("{what} must be 32 bytes")))
}

#[uniffi::export]
impl ReceiveState {
    /// An empty state (a phone that has seen nothing yet).
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(toyseal_envelope::ReceiveState::new()),
        })
    }

    /// Restores a state saved with `encode`. Fails on anything but a whole, well-formed
    /// encoding.
    #[uniffi::constructor]
    pub fn decode(bytes: Vec<u8>) -> Result<Arc<Self>, ToysealError> {
        let bad = |why: &str| ToysealError::invalid(format!("receive state: {why}"));
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| bad("not a receive state"))?;
        let (&format, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
        if format != FORMAT {
            return Err(bad("unknown format version"));
        }
        let (count, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated"))?;
        let count = u32::from_be_bytes(*count) as usize;
        if rest.len() != count.checked_mul(LINK_LEN).ok_or_else(|| bad("too long"))? {
            return Err(bad("length does not match the link count"));
        }
        let mut state = toyseal_envelope::ReceiveState::new();
        for link in rest.chunks_exact(LINK_LEN) {
            let (device, link) = link.split_at(16);
            let (sequence, link) = link.split_at(8);
            let (previous, header_hash) = link.split_at(32);
            let device = DeviceId::from_bytes(device.try_into().map_err(|_| bad("truncated"))?);
            let sequence = u64::from_be_bytes(sequence.try_into().map_err(|_| bad("truncated"))?);
            if sequence == 0 {
                return Err(bad("a link with sequence 0"));
            }
            state.record(
                device,
                ChainLink {
                    sequence,
                    previous: hash32(previous, "previous")?,
                    header_hash: hash32(header_hash, "header hash")?,
                },
            );
        }
        if state.links().count() != count {
            return Err(bad("a link repeated"));
        }
        Ok(Arc::new(Self {
            inner: Mutex::new(state),
        }))
    }

    /// The state as bytes (see the type's documentation), for the app's store.
    pub fn encode(&self) -> Result<Vec<u8>, ToysealError> {
        let state = self.lock()?;
        let links: Vec<_> = state.links().collect();
        let count = u32::try_from(links.len())
            .map_err(|_| ToysealError::invalid("receive state: too many links"))?;
        let mut out = Vec::with_capacity(9 + links.len() * LINK_LEN);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&count.to_be_bytes());
        for (device, link) in links {
            out.extend_from_slice(device.as_bytes());
            out.extend_from_slice(&link.sequence.to_be_bytes());
            out.extend_from_slice(&link.previous);
            out.extend_from_slice(&link.header_hash);
        }
        Ok(out)
    }

    /// How many links it holds.
    pub fn link_count(&self) -> Result<u64, ToysealError> {
        Ok(self.lock()?.links().count() as u64)
    }

    /// The highest sequence seen from `sender`, if any.
    pub fn highest_sequence(&self, sender: Arc<PublicKey>) -> Result<Option<u64>, ToysealError> {
        Ok(self
            .lock()?
            .highest(sender.inner.device_id())
            .map(|l| l.sequence))
    }

    /// Where the walk back from `head` (a 32-byte header hash) along `sender`'s chain stops
    /// for lack of a known link: the header hash of the first envelope this state does not
    /// know (fetch that envelope and `recordEnvelope` it), or none when the walk reaches the
    /// sender's first envelope.
    pub fn gap(
        &self,
        sender: Arc<PublicKey>,
        head: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, ToysealError> {
        let head = hash32(&head, "head")?;
        Ok(self
            .lock()?
            .gap(sender.inner.device_id(), &head)
            .map(|h| h.to_vec()))
    }
}

#[uniffi::export]
impl Roster {
    /// [`Roster::open`] with this phone's receive state: a member's fork and an unsequenced
    /// envelope (sequence 0) are refused (`recordEnvelope` reports which); a
    /// removed device's envelope opens if it is the chain head its removal recorded or an
    /// ancestor of it through links the state knows (record the ones in between with
    /// `recordEnvelope`). The opened envelope's link is recorded; `freshness` says whether it
    /// was new, late or a replay.
    pub fn open_with_state(
        &self,
        me: Arc<Identity>,
        envelope: Vec<u8>,
        state: Arc<ReceiveState>,
    ) -> Result<ReceivedEnvelope, ToysealError> {
        let mut chains = state.lock()?;
        let (content, opened) =
            self.inner
                .open_with_chains(&me.inner, &chains, &envelope, OpenOptions::default())?;
        let freshness = Freshness::of(chains.observe(opened.sender.device_id(), opened.link()));
        Ok(ReceivedEnvelope {
            content,
            info: EnvelopeInfo::of(&opened),
            freshness,
        })
    }

    /// Verifies a whole envelope's signatures (no decryption: it need not be addressed to this
    /// phone) from a device of this family — a member, or one this version records as removed
    /// — and records its link in `state`, so that a removed device's older envelopes connect
    /// to the chain head its removal recorded. Returns how it relates to what was seen.
    pub fn record_envelope(
        &self,
        envelope: Vec<u8>,
        state: Arc<ReceiveState>,
    ) -> Result<Freshness, ToysealError> {
        let header = toyseal_envelope::verify(&envelope, OpenOptions::default())?;
        if header.family() != Some(self.inner.family()) {
            return Err(toyseal_roster::Error::WrongFamily.into());
        }
        let sender = header.sender();
        let known = self.inner.contains(sender)
            || self.inner.departed().iter().any(|d| d.identity() == sender);
        if !known {
            return Err(ToysealError::invalid(
                "the sender is not a device of this family",
            ));
        }
        let link = header.chain_link();
        Ok(Freshness::of(
            state.lock()?.observe(sender.device_id(), link),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trips_and_rejects_damage() {
        let s = ReceiveState::new();
        {
            let mut st = s.lock().unwrap();
            for (d, q, p, h) in [(1u8, 1u64, 0u8, 1u8), (1, 2, 1, 2), (2, 5, 9, 7)] {
                st.record(
                    DeviceId::from_bytes([d; 16]),
                    ChainLink {
                        sequence: q,
                        previous: [p; 32],
                        header_hash: [h; 32],
                    },
                );
            }
        }
        let bytes = s.encode().unwrap();
        assert_eq!(bytes.len(), 9 + 3 * LINK_LEN);
        let back = ReceiveState::decode(bytes.clone()).unwrap();
        assert_eq!(*back.lock().unwrap(), *s.lock().unwrap());
        assert_eq!(back.encode().unwrap(), bytes);
        assert!(ReceiveState::decode(bytes[..bytes.len() - 1].to_vec()).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(ReceiveState::decode(extra).is_err());
        let mut zero = bytes.clone();
        zero[9 + 16..9 + 24].fill(0);
        assert!(ReceiveState::decode(zero).is_err());
        let mut magic = bytes;
        magic[0] = b'X';
        assert!(ReceiveState::decode(magic).is_err());
        assert_eq!(
            ReceiveState::decode(ReceiveState::new().encode().unwrap())
                .unwrap()
                .link_count()
                .unwrap(),
            0
        );
    }
}
