//! The toy's pairing window: when pairing is possible at all, and how failures are counted.
//!
//! A window opens only by an explicit call (the toy's button before it has a guardian, or a
//! guardian's session message) and lasts 3 minutes by default. One attempt runs at a time, for
//! at most 60 s. Only a real guess counts: the toy counts an attempt as a failure in the
//! persistent counter when PAIR_CONFIRM arrives, **before** it checks it, and un-counts it only
//! when it succeeds, so cutting the connection (or the power) after sending the guess still
//! costs it. An attempt that ends before PAIR_CONFIRM (ABORT, disconnect, timeout) tested no
//! guess (PAIR_RESPONSE reveals nothing about the code) and costs nothing but its time.
//! 20 failures close the window; 100 in the toy's life disable pairing until factory reset.

use crate::{Error, Timestamp};
use std::time::Duration;

/// Limits of the pairing window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowPolicy {
    /// How long a window stays open (default 180 s).
    pub duration: Duration,
    /// How long one attempt may take (default 60 s).
    pub attempt_timeout: Duration,
    /// Failures that close a window (default 20).
    pub max_failures_per_window: u32,
    /// Failures over the toy's life that disable pairing (default 100).
    pub max_failures_total: u32,
}

impl Default for WindowPolicy {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(180),
            attempt_timeout: Duration::from_secs(60),
            max_failures_per_window: 20,
            max_failures_total: 100,
        }
    }
}

/// Persistent storage for the toy's lifetime failure counter (flash, EEPROM, a file).
/// `store` must be durable when it returns.
pub trait FailureStore {
    /// The stored count (0 if never written).
    fn load(&self) -> Result<u32, Error>;
    /// Durably stores `count`.
    fn store(&mut self, count: u32) -> Result<(), Error>;
}

/// A [`FailureStore`] in memory, for tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct MemoryFailureStore(pub u32);

impl FailureStore for MemoryFailureStore {
    fn load(&self) -> Result<u32, Error> {
        Ok(self.0)
    }
    fn store(&mut self, count: u32) -> Result<(), Error> {
        self.0 = count;
        Ok(())
    }
}

/// The window state machine.
#[derive(Debug)]
pub struct PairingWindow<S: FailureStore> {
    policy: WindowPolicy,
    store: S,
    closes_at: Option<Timestamp>,
    failures_in_window: u32,
    attempt_deadline: Option<Timestamp>,
    guessed: bool,
}

impl<S: FailureStore> PairingWindow<S> {
    /// A closed window over `store`.
    pub fn new(policy: WindowPolicy, store: S) -> Self {
        Self {
            policy,
            store,
            closes_at: None,
            failures_in_window: 0,
            attempt_deadline: None,
            guessed: false,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &WindowPolicy {
        &self.policy
    }

    /// Lifetime failures so far.
    pub fn total_failures(&self) -> Result<u32, Error> {
        self.store.load()
    }

    /// Failures in the current window.
    pub fn failures_in_window(&self) -> u32 {
        self.failures_in_window
    }

    /// Opens a window (the button was held). Refused once pairing is disabled.
    pub fn open(&mut self, now: Timestamp) -> Result<(), Error> {
        if self.store.load()? >= self.policy.max_failures_total {
            return Err(Error::PairingDisabled);
        }
        self.closes_at = Some(now.after(self.policy.duration));
        self.failures_in_window = 0;
        self.attempt_deadline = None;
        Ok(())
    }

    /// Closes the window now.
    pub fn close(&mut self) {
        self.closes_at = None;
        self.attempt_deadline = None;
    }

    /// Whether a new attempt could start now.
    pub fn is_open(&mut self, now: Timestamp) -> bool {
        self.poll(now).is_ok() && self.closes_at.is_some()
    }

    /// Whether an attempt is running.
    pub fn attempt_in_progress(&self) -> bool {
        self.attempt_deadline.is_some()
    }

    /// Expires the window and a stalled attempt (which counts as a failure).
    pub fn poll(&mut self, now: Timestamp) -> Result<(), Error> {
        if let Some(deadline) = self.attempt_deadline
            && now >= deadline
        {
            // A stalled attempt ends; it counts only if it had tested a guess.
            self.attempt_deadline = None;
            if std::mem::take(&mut self.guessed) {
                self.after_failure()?;
            }
        }
        if let Some(closes) = self.closes_at
            && now >= closes
            && self.attempt_deadline.is_none()
        {
            self.closes_at = None;
        }
        Ok(())
    }

    /// Starts an attempt (PAIR_REQUEST). Nothing is counted yet: no guess was tested.
    pub fn begin_attempt(&mut self, now: Timestamp) -> Result<(), Error> {
        self.poll(now)?;
        let total = self.store.load()?;
        if total >= self.policy.max_failures_total {
            self.close();
            return Err(Error::PairingDisabled);
        }
        if self.closes_at.is_none() {
            return Err(Error::NotPairable);
        }
        if self.attempt_deadline.is_some() {
            return Err(Error::Busy);
        }
        self.attempt_deadline = Some(now.after(self.policy.attempt_timeout));
        self.guessed = false;
        Ok(())
    }

    /// The peer sent its guess (PAIR_CONFIRM): counts it as failed durably before the toy
    /// checks it.
    pub fn record_guess(&mut self) -> Result<(), Error> {
        if self.attempt_deadline.is_none() || self.guessed {
            return Err(Error::UnexpectedMessage);
        }
        let total = self.store.load()?;
        self.store.store(total.saturating_add(1))?;
        self.guessed = true;
        Ok(())
    }

    /// The running attempt ended (ABORT, disconnect): a failure if it had tested a guess,
    /// nothing otherwise.
    pub fn abandon_attempt(&mut self) -> Result<(), Error> {
        if self.attempt_deadline.take().is_some() && std::mem::take(&mut self.guessed) {
            self.after_failure()?;
        }
        Ok(())
    }

    /// The running attempt failed (a wrong guess, or a malformed message).
    pub fn fail_attempt(&mut self) -> Result<(), Error> {
        if self.attempt_deadline.take().is_some() {
            self.guessed = false;
            self.after_failure()?;
        }
        Ok(())
    }

    fn after_failure(&mut self) -> Result<(), Error> {
        self.failures_in_window = self.failures_in_window.saturating_add(1);
        if self.failures_in_window >= self.policy.max_failures_per_window
            || self.store.load()? >= self.policy.max_failures_total
        {
            self.close();
        }
        Ok(())
    }

    /// The running attempt succeeded: un-count it and close the window (one pairing per press).
    pub fn succeed_attempt(&mut self) -> Result<(), Error> {
        if self.attempt_deadline.take().is_some() && std::mem::take(&mut self.guessed) {
            let total = self.store.load()?;
            self.store.store(total.saturating_sub(1))?;
        }
        self.close();
        Ok(())
    }

    /// The phone rejected a pairing that had succeeded (its parent said the SAS differs):
    /// counts it as a failed attempt, in the window and durably in the lifetime counter.
    pub fn record_rejection(&mut self) -> Result<(), Error> {
        let total = self.store.load()?;
        self.store.store(total.saturating_add(1))?;
        self.after_failure()
    }

    /// Factory reset: clears the lifetime counter.
    pub fn factory_reset(&mut self) -> Result<(), Error> {
        self.close();
        self.failures_in_window = 0;
        self.store.store(0)
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn closed_until_opened_and_expires() {
        let mut w = PairingWindow::new(WindowPolicy::default(), MemoryFailureStore::default());
        assert!(matches!(w.begin_attempt(t(0)), Err(Error::NotPairable)));
        w.open(t(0)).unwrap();
        assert!(w.is_open(t(179)));
        assert!(!w.is_open(t(180)));
        assert!(matches!(w.begin_attempt(t(181)), Err(Error::NotPairable)));
    }

    #[test]
    fn one_attempt_at_a_time_and_timeouts_count() {
        let mut w = PairingWindow::new(WindowPolicy::default(), MemoryFailureStore::default());
        w.open(t(0)).unwrap();
        w.begin_attempt(t(1)).unwrap();
        assert!(matches!(w.begin_attempt(t(2)), Err(Error::Busy)));
        assert_eq!(w.total_failures().unwrap(), 0, "no guess yet");
        w.record_guess().unwrap();
        assert_eq!(w.total_failures().unwrap(), 1, "counted before checking");
        // The attempt stalls after its guess: after 60 s it is a failure.
        w.begin_attempt(t(62)).unwrap();
        assert_eq!(w.failures_in_window(), 1);
        w.abandon_attempt().unwrap();
        assert_eq!(
            w.failures_in_window(),
            1,
            "an abandoned request costs nothing"
        );
        w.begin_attempt(t(63)).unwrap();
        w.record_guess().unwrap();
        w.succeed_attempt().unwrap();
        assert_eq!(
            w.total_failures().unwrap(),
            1,
            "only the stalled guess stays counted"
        );
        assert!(!w.is_open(t(64)), "success closes the window");
    }

    #[test]
    fn twenty_failures_close_and_hundred_disable() {
        let mut w = PairingWindow::new(WindowPolicy::default(), MemoryFailureStore::default());
        let mut now = 0;
        for window in 0..5 {
            w.open(t(now)).unwrap();
            for _ in 0..20 {
                w.begin_attempt(t(now)).unwrap();
                w.record_guess().unwrap();
                w.fail_attempt().unwrap();
                now += 1;
            }
            assert!(!w.is_open(t(now)), "window {window} closed after 20");
        }
        assert_eq!(w.total_failures().unwrap(), 100);
        assert!(matches!(w.open(t(now)), Err(Error::PairingDisabled)));
        w.factory_reset().unwrap();
        w.open(t(now)).unwrap();
    }
}
