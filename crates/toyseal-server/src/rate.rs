//! Token buckets per device (T11, after authentication) and per client address (T63, before
//! it). State lives in this instance's memory: with N instances
//! behind a load balancer a device gets up to N times the rate. That is deliberate (no shared
//! state on the hot path); the replay cache, which must be exact, is in the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets beyond this many are pruned (full buckets first) to bound memory.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token-bucket limiter keyed by device or by address.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    /// The configured rate, as told to a refused client (`limit`).
    rate: u32,
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// `per_sec` tokens per second up to `burst`; `per_sec == 0` disables the limiter.
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            rate: per_sec,
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The sustained rate in requests per second (0: off).
    pub(crate) fn per_sec(&self) -> u32 {
        self.rate
    }

    /// Takes one token for `key`; `false` if its bucket is empty.
    pub(crate) fn allow(&self, key: K) -> bool {
        if self.per_sec <= 0.0 {
            return true;
        }
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update; the map is still a
        // valid map of buckets.
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() >= MAX_TRACKED {
            let (per_sec, burst) = (self.per_sec, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.per_sec;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toyseal_core::DeviceId;

    #[test]
    fn burst_then_refuse() {
        let l = RateLimiter::new(1, 3);
        let d = DeviceId::from_bytes([1; 16]);
        assert!(l.allow(d) && l.allow(d) && l.allow(d));
        assert!(!l.allow(d));
        assert!(l.allow(DeviceId::from_bytes([2; 16])));
        assert!(RateLimiter::new(0, 0).allow(d));
    }
}
