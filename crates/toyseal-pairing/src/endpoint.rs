//! What a transport needs from a protocol endpoint ([`crate::Toy`] or [`crate::Phone`]): the
//! quinn-proto shape. Frames, time and randomness go in; frames to send, events for the
//! application, and "drop this connection" come out. The transport (`toyseal-ble`'s one
//! generic driver, a firmware loop, a test) owns fragmentation and the link, nothing else.

use crate::{Error, Timestamp};
use std::collections::VecDeque;
use toyseal_core::CryptoRng;

/// A sans-IO protocol endpoint one transport can pump.
pub trait Endpoint {
    /// What the application must act on.
    type Event;

    /// One whole (reassembled) frame from the peer.
    fn handle_frame(&mut self, frame: &[u8], now: Timestamp, rng: &mut impl CryptoRng);

    /// Runs the timers (pairing attempt, window, idle session). Call it whenever time passed.
    fn handle_timeout(&mut self, now: Timestamp);

    /// The link dropped (or the transport dropped it): whatever ran on it ends.
    fn handle_disconnect(&mut self);

    /// The next frame to send, in order.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;

    /// The next event, in order.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// Set when the endpoint wants the connection dropped (the peer broke a rule that ends
    /// the connection, or was removed from the family); the transport disconnects and then
    /// calls [`Endpoint::handle_disconnect`].
    fn poll_close(&mut self) -> Option<Error>;

    /// Bytes the endpoint holds for the peer's unfinished messages (a partial envelope).
    fn buffered(&self) -> usize;
}

/// The queues behind [`Endpoint`]'s `poll_*` methods.
#[derive(Debug)]
pub(crate) struct Queues<E> {
    pub transmit: VecDeque<Vec<u8>>,
    pub events: VecDeque<E>,
    pub close: Option<Error>,
}

impl<E> Default for Queues<E> {
    fn default() -> Self {
        Self {
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            close: None,
        }
    }
}

impl<E> Queues<E> {
    pub fn send(&mut self, frame: Vec<u8>) {
        self.transmit.push_back(frame);
    }

    pub fn event(&mut self, event: E) {
        self.events.push_back(event);
    }

    /// Asks the transport to drop the connection (the first reason wins).
    pub fn close(&mut self, why: Error) {
        if self.close.is_none() {
            self.close = Some(why);
        }
    }
}
