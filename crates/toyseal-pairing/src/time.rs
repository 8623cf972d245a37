//! Time comes in from the caller (sans-IO): a monotonic millisecond count from any origin.

use std::time::Duration;

/// A point on the caller's monotonic clock, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp `ms` milliseconds after the clock's origin.
    pub fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    /// Milliseconds since the clock's origin.
    pub fn as_millis(self) -> u64 {
        self.0
    }
    /// This timestamp plus `d` (saturating).
    pub fn after(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}
