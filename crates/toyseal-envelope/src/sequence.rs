//! Replay and reordering detection over the signed per-sender sequence numbers
//! (docs/spec/envelope.md §3.1): what a phone keeps so that a server cannot hand it an old
//! message as new, or a sender's messages out of order without it noticing (THREATS T51).

use std::collections::{BTreeMap, BTreeSet};
use toyseal_core::DeviceId;

/// How an opened envelope's sequence number relates to what this device has seen from the same
/// sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// Higher than every sequence seen from this sender: a new message, in order.
    New,
    /// Not seen before, but lower than one already seen: delivered out of order (show it in its
    /// place by sequence, not as the newest).
    Late,
    /// Already seen from this sender: a replay (or a second envelope under a reused number).
    /// Do not present it as a new message.
    Replay,
}

/// The sequence numbers seen per sender. Sans-IO: persist it with [`seen`](Self::seen) and
/// rebuild it with [`record`](Self::record) across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequenceTracker {
    seen: BTreeMap<DeviceId, BTreeSet<u64>>,
}

impl SequenceTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies `sequence` from `sender` and remembers it. Call it only for envelopes that
    /// opened (their sequence is signed); an unverified header proves nothing.
    pub fn observe(&mut self, sender: DeviceId, sequence: u64) -> Freshness {
        let seen = self.seen.entry(sender).or_default();
        let newest = seen.last().copied();
        if !seen.insert(sequence) {
            return Freshness::Replay;
        }
        match newest {
            Some(n) if sequence < n => Freshness::Late,
            _ => Freshness::New,
        }
    }

    /// Remembers `sequence` from `sender` without classifying it (restoring saved state).
    pub fn record(&mut self, sender: DeviceId, sequence: u64) {
        self.seen.entry(sender).or_default().insert(sequence);
    }

    /// Every (sender, sequence) seen, for persistence.
    pub fn seen(&self) -> impl Iterator<Item = (DeviceId, u64)> + '_ {
        self.seen
            .iter()
            .flat_map(|(d, s)| s.iter().map(move |q| (*d, *q)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_late_and_replay() {
        let a = DeviceId::from_bytes([1; 16]);
        let b = DeviceId::from_bytes([2; 16]);
        let mut t = SequenceTracker::new();
        assert_eq!(t.observe(a, 1), Freshness::New);
        assert_eq!(t.observe(a, 3), Freshness::New);
        assert_eq!(t.observe(a, 2), Freshness::Late);
        assert_eq!(t.observe(a, 3), Freshness::Replay);
        assert_eq!(t.observe(b, 1), Freshness::New);
        let mut restored = SequenceTracker::new();
        for (d, q) in t.seen() {
            restored.record(d, q);
        }
        assert_eq!(restored, t);
        assert_eq!(restored.observe(a, 1), Freshness::Replay);
    }
}
