//! Replay and reordering detection over the signed per-sender sequence numbers
//! (docs/spec/envelope.md §3.1): what a phone keeps so that a server cannot hand it an old
//! message as new, or a sender's messages out of order without it noticing (THREATS T51).

use crate::ChainLink;
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
    /// ([`ReceiveState`] only.) The sender's chain forked: another envelope with the same
    /// sequence but another header, two envelopes naming the same previous one, or a previous
    /// link that does not go back in sequence. A sender never does this; a copied key or a
    /// removed device back-dating content does. Refuse it and show it.
    Fork,
    /// ([`ReceiveState`] only.) Sequence 0: an unsequenced envelope, on no chain and carrying
    /// no ordering guarantee.
    Unsequenced,
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

/// What one sender's chain looks like from here: the verified links, by link hash and by
/// sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SenderChain {
    /// header_hash → (sequence, previous).
    by_hash: BTreeMap<[u8; 32], (u64, [u8; 32])>,
    /// sequence → header_hash (the first seen at that sequence).
    by_sequence: BTreeMap<u64, [u8; 32]>,
}

/// The receive state per sender (DESIGN "Device state"; docs/spec/envelope.md §11.3): every
/// verified chain link `(sequence, previous, header_hash)` this device has seen from each
/// sender. It tells new from late from replayed, detects forks, and answers whether an
/// envelope is an ancestor of a chain head through links it can check — what a roster needs to
/// admit a departed device's earlier envelopes ([`ReceiveState::connects`]).
///
/// Feed it only headers whose checkpoint 0 verified ([`crate::Opened`], [`crate::verify`],
/// [`crate::Verifier`]): a link is keyed by its own header hash, so a forged header cannot
/// attach itself to a real chain (that would take a SHA-256 preimage), but it would make a
/// sequence look used. Sans-IO: persist it with [`links`](Self::links) and rebuild it with
/// [`record`](Self::record). Memory: 72 bytes per link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveState {
    senders: BTreeMap<DeviceId, SenderChain>,
}

impl ReceiveState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies a verified link from `sender` and remembers it (a fork's link is remembered
    /// too, as evidence; the first link seen at a sequence stays the one
    /// [`link_at`](Self::link_at) returns).
    pub fn observe(&mut self, sender: DeviceId, link: ChainLink) -> Freshness {
        if link.sequence == 0 {
            return Freshness::Unsequenced;
        }
        let verdict = self.classify(sender, &link);
        self.record(sender, link);
        verdict
    }

    /// What [`observe`](Self::observe) would answer, without remembering anything.
    pub fn classify(&self, sender: DeviceId, link: &ChainLink) -> Freshness {
        if link.sequence == 0 {
            return Freshness::Unsequenced;
        }
        let Some(chain) = self.senders.get(&sender) else {
            return Freshness::New;
        };
        if chain.by_hash.contains_key(&link.header_hash) {
            return Freshness::Replay;
        }
        if self.is_fork(sender, link) {
            return Freshness::Fork;
        }
        match chain.by_sequence.last_key_value() {
            Some((&highest, _)) if link.sequence < highest => Freshness::Late,
            _ => Freshness::New,
        }
    }

    /// Whether `link` contradicts what is known of `sender`'s chain: another header at its
    /// sequence; another known envelope naming the same (non-zero) previous one; a known
    /// previous envelope whose sequence is not lower; or a known envelope naming this one as
    /// previous with a sequence not higher.
    pub fn is_fork(&self, sender: DeviceId, link: &ChainLink) -> bool {
        let Some(chain) = self.senders.get(&sender) else {
            return false;
        };
        if chain
            .by_sequence
            .get(&link.sequence)
            .is_some_and(|h| *h != link.header_hash)
        {
            return true;
        }
        if let Some((seq, _)) = chain.by_hash.get(&link.previous)
            && *seq >= link.sequence
        {
            return true;
        }
        chain.by_hash.iter().any(|(h, (seq, prev))| {
            *h != link.header_hash
                && ((link.previous != [0; 32] && *prev == link.previous)
                    || (*prev == link.header_hash && *seq <= link.sequence))
        })
    }

    /// Remembers a verified link without classifying it (restoring saved state). Sequence 0
    /// links are ignored: they are on no chain.
    pub fn record(&mut self, sender: DeviceId, link: ChainLink) {
        if link.sequence == 0 {
            return;
        }
        let chain = self.senders.entry(sender).or_default();
        chain
            .by_hash
            .insert(link.header_hash, (link.sequence, link.previous));
        chain
            .by_sequence
            .entry(link.sequence)
            .or_insert(link.header_hash);
    }

    /// The known link with the highest sequence from `sender`.
    pub fn highest(&self, sender: DeviceId) -> Option<ChainLink> {
        let chain = self.senders.get(&sender)?;
        let (_, hash) = chain.by_sequence.last_key_value()?;
        self.link(sender, hash)
    }

    /// The known link with this header hash from `sender`.
    pub fn link(&self, sender: DeviceId, header_hash: &[u8; 32]) -> Option<ChainLink> {
        let (sequence, previous) = *self.senders.get(&sender)?.by_hash.get(header_hash)?;
        Some(ChainLink {
            sequence,
            previous,
            header_hash: *header_hash,
        })
    }

    /// The (first) known link at this sequence from `sender`.
    pub fn link_at(&self, sender: DeviceId, sequence: u64) -> Option<ChainLink> {
        let hash = self.senders.get(&sender)?.by_sequence.get(&sequence)?;
        self.link(sender, hash)
    }

    /// Whether `link` is on `sender`'s chain ending at `head` (the header hash of the
    /// envelope with sequence `head_sequence`): it is the head itself, or an ancestor reached
    /// from the head through `previous` links this state knows, each going strictly back in
    /// sequence. An unknown link on the way is a gap: the answer is `false` until the missing
    /// header is fed in ([`gap`](Self::gap) names it).
    pub fn connects(
        &self,
        sender: DeviceId,
        link: &ChainLink,
        head_sequence: u64,
        head: &[u8; 32],
    ) -> bool {
        if link.sequence == 0 || link.sequence > head_sequence || *head == [0; 32] {
            return false;
        }
        if link.sequence == head_sequence {
            return link.header_hash == *head;
        }
        let Some(chain) = self.senders.get(&sender) else {
            return false;
        };
        let (mut at_sequence, mut at) = (head_sequence, *head);
        loop {
            if at == link.header_hash {
                return at_sequence == link.sequence;
            }
            match chain.by_hash.get(&at) {
                Some(&(sequence, previous)) if sequence == at_sequence => {
                    let Some(&(prev_sequence, _)) = chain.by_hash.get(&previous) else {
                        // The previous envelope is unknown: it may be `link` itself.
                        return previous == link.header_hash && link.sequence < sequence;
                    };
                    if prev_sequence >= sequence || prev_sequence < link.sequence {
                        return false;
                    }
                    (at_sequence, at) = (prev_sequence, previous);
                }
                _ => return false,
            }
        }
    }

    /// Where the walk back from `head` stops for lack of a known link: the header hash of the
    /// first envelope on the chain this state does not know (fetch and verify that header to
    /// extend the walk), or `None` when the walk reaches the sender's first envelope.
    pub fn gap(&self, sender: DeviceId, head: &[u8; 32]) -> Option<[u8; 32]> {
        let chain = self.senders.get(&sender);
        let mut at = *head;
        let mut steps = 0usize;
        loop {
            if at == [0; 32] {
                return None;
            }
            match chain.and_then(|c| c.by_hash.get(&at)) {
                Some(&(_, previous)) => at = previous,
                None => return Some(at),
            }
            steps += 1;
            if steps > chain.map_or(0, |c| c.by_hash.len()) {
                // A cycle needs a SHA-256 collision; stop anyway.
                return Some(at);
            }
        }
    }

    /// Every `(sender, link)` remembered, for persistence.
    pub fn links(&self) -> impl Iterator<Item = (DeviceId, ChainLink)> + '_ {
        self.senders.iter().flat_map(|(d, c)| {
            c.by_hash.iter().map(move |(h, (sequence, previous))| {
                (
                    *d,
                    ChainLink {
                        sequence: *sequence,
                        previous: *previous,
                        header_hash: *h,
                    },
                )
            })
        })
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

    fn link(sequence: u64, previous: u8, hash: u8) -> ChainLink {
        ChainLink {
            sequence,
            previous: if previous == 0 {
                [0; 32]
            } else {
                [previous; 32]
            },
            header_hash: [hash; 32],
        }
    }

    #[test]
    fn receive_state_classifies_and_detects_forks() {
        let a = DeviceId::from_bytes([1; 16]);
        let mut s = ReceiveState::new();
        assert_eq!(s.observe(a, link(0, 0, 9)), Freshness::Unsequenced);
        assert_eq!(s.observe(a, link(1, 0, 1)), Freshness::New);
        assert_eq!(s.observe(a, link(3, 2, 3)), Freshness::New);
        assert_eq!(s.observe(a, link(2, 1, 2)), Freshness::Late);
        assert_eq!(s.observe(a, link(2, 1, 2)), Freshness::Replay);
        // Same sequence, another header.
        assert_eq!(s.classify(a, &link(2, 1, 7)), Freshness::Fork);
        // A new sequence naming an already-named previous.
        assert_eq!(s.classify(a, &link(4, 2, 8)), Freshness::Fork);
        // A previous that is not earlier.
        assert_eq!(s.classify(a, &link(2, 3, 8)), Freshness::Fork);
        assert_eq!(s.observe(a, link(5, 3, 5)), Freshness::New);
        let mut restored = ReceiveState::new();
        for (d, l) in s.links() {
            restored.record(d, l);
        }
        assert_eq!(restored, s);
        assert_eq!(restored.highest(a), Some(link(5, 3, 5)));
    }

    #[test]
    fn connects_only_through_known_links() {
        let a = DeviceId::from_bytes([1; 16]);
        let mut s = ReceiveState::new();
        // Chain 1 <- 2 <- 4 (sequence 3 was reserved and never emitted: a gap in numbers,
        // not in links).
        s.record(a, link(4, 2, 4));
        let head = [4u8; 32];
        assert!(s.connects(a, &link(4, 2, 4), 4, &head));
        // The head's previous is admitted even before it is known.
        assert!(s.connects(a, &link(2, 1, 2), 4, &head));
        // Its predecessor is not, until the link through 2 is known.
        assert!(!s.connects(a, &link(1, 0, 1), 4, &head));
        assert_eq!(s.gap(a, &head), Some([2; 32]));
        s.record(a, link(2, 1, 2));
        assert!(s.connects(a, &link(1, 0, 1), 4, &head));
        assert_eq!(s.gap(a, &head), Some([1; 32]));
        s.record(a, link(1, 0, 1));
        assert_eq!(s.gap(a, &head), None);
        // Back-dated: an unused sequence below the head, or a re-used one, with another hash.
        assert!(!s.connects(a, &link(3, 2, 33), 4, &head));
        assert!(!s.connects(a, &link(2, 1, 34), 4, &head));
        assert!(!s.connects(a, &link(5, 4, 35), 4, &head));
        // Right hash, wrong sequence claimed.
        assert!(!s.connects(a, &link(3, 1, 2), 4, &head));
        // Nothing connects to a zero head.
        assert!(!s.connects(a, &link(1, 0, 1), 1, &[0; 32]));
    }
}
