//! Link frames: the units the toy and the phone exchange over the GATT link, after
//! reassembly (docs/spec/pairing.md §Frames).

use crate::Error;
use toyseal_core::DeviceId;

/// Frame kind bytes.
pub(crate) mod kind {
    pub const PAIR_REQUEST: u8 = 0x01;
    pub const PAIR_RESPONSE: u8 = 0x02;
    pub const PAIR_CONFIRM: u8 = 0x03;
    pub const PAIR_DONE: u8 = 0x04;
    pub const ABORT: u8 = 0x05;
    pub const NOT_PAIRABLE: u8 = 0x06;
    pub const CONFIRMATION_PENDING: u8 = 0x07;
    pub const CONFIRMED: u8 = 0x08;
    pub const HANDSHAKE_INIT: u8 = 0x10;
    pub const HANDSHAKE_RESP: u8 = 0x11;
    pub const TRANSPORT: u8 = 0x20;
}

/// Protocol version carried in the Noise prologue and the GATT version characteristic.
pub const PROTOCOL_VERSION: u8 = 1;
/// Pairing protocol version carried in PAIR_REQUEST and bound into the pairing transcript.
/// Version 2 added the committed SAS nonces (docs/spec/pairing.md §5.3, T37); version 3 the
/// confirmation at the toy (CONFIRMATION_PENDING, CONFIRMED, ABORT 5 and 6, and the session
/// messages RosterPending, RosterAnswer and RosterHead: §5.4 step 7, §7.1, T35).
pub const PAIRING_VERSION: u8 = 3;

/// SPAKE2 message length (side byte + Ed25519 group element).
pub(crate) const SPAKE_MSG_LEN: usize = 33;
/// Key confirmation MAC length (HMAC-SHA256).
pub(crate) const CONFIRM_LEN: usize = 32;
/// SAS nonce length (`Na`, `Nb`) and the toy's commitment length (`Cb`, SHA-256).
pub(crate) const NONCE_LEN: usize = 32;
/// Noise KK handshake message length with an empty payload (e, 32 + tag, 16).
pub(crate) const HANDSHAKE_LEN: usize = 48;

/// Why a peer aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// Key confirmation or a signature failed.
    Authentication,
    /// Another attempt is running.
    Busy,
    /// The message did not fit the state.
    Unexpected,
    /// The peer's identity was not acceptable.
    WrongPeer,
    /// Toy → phone after PAIR_DONE: nobody confirmed the pairing at the toy within its
    /// confirmation window; no founder was recorded.
    NotConfirmed,
    /// Toy → phone after PAIR_DONE: the toy's user declined the pairing at the toy.
    Declined,
    /// A reason this version does not know.
    Other(u8),
}

impl AbortReason {
    fn to_byte(self) -> u8 {
        match self {
            AbortReason::Authentication => 1,
            AbortReason::Busy => 2,
            AbortReason::Unexpected => 3,
            AbortReason::WrongPeer => 4,
            AbortReason::NotConfirmed => 5,
            AbortReason::Declined => 6,
            AbortReason::Other(b) => b,
        }
    }
    fn from_byte(b: u8) -> Self {
        match b {
            1 => AbortReason::Authentication,
            2 => AbortReason::Busy,
            3 => AbortReason::Unexpected,
            4 => AbortReason::WrongPeer,
            5 => AbortReason::NotConfirmed,
            6 => AbortReason::Declined,
            b => AbortReason::Other(b),
        }
    }
}

/// A decoded link frame. Borrowed from the input.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// Phone → toy: start pairing.
    PairRequest {
        /// Protocol version.
        version: u8,
        /// The phone's SPAKE2 message.
        spake: &'a [u8; SPAKE_MSG_LEN],
    },
    /// Toy → phone: the toy's SPAKE2 message and its commitment to its SAS nonce.
    PairResponse {
        /// The toy's SPAKE2 message.
        spake: &'a [u8; SPAKE_MSG_LEN],
        /// `Cb`: SHA-256 commitment to the toy's SAS nonce `Nb`, bound to the transcript.
        commit: &'a [u8; NONCE_LEN],
    },
    /// Phone → toy: phone's key confirmation, its SAS nonce, sealed phone identity.
    PairConfirm {
        /// HMAC proving the phone derived the same key (over the commitment and `Na`).
        confirm: &'a [u8; CONFIRM_LEN],
        /// `Na`: the phone's SAS nonce, revealed only after the toy committed.
        nonce: &'a [u8; NONCE_LEN],
        /// AEAD-sealed phone identity block.
        sealed: &'a [u8],
    },
    /// Toy → phone: the toy's key confirmation, its SAS nonce and sealed identity.
    PairDone {
        /// HMAC proving the toy derived the same key (bound to the phone's sealed block and
        /// both nonces).
        confirm: &'a [u8; CONFIRM_LEN],
        /// `Nb`: the toy's SAS nonce, opening the commitment of PAIR_RESPONSE.
        nonce: &'a [u8; NONCE_LEN],
        /// AEAD-sealed toy identity block.
        sealed: &'a [u8],
    },
    /// Either side gives up.
    Abort(AbortReason),
    /// The toy's only answer outside a window and without a session.
    NotPairable,
    /// Toy → phone right after PAIR_DONE with the printed code: the toy records the phone as
    /// its founding guardian only once its user confirms at the toy (§5.4 step 7).
    ConfirmationPending {
        /// The confirmation window, in seconds.
        seconds: u16,
    },
    /// Toy → phone: the toy's user confirmed; the founding guardian is recorded.
    Confirmed,
    /// Phone → toy: Noise KK message 1.
    HandshakeInit {
        /// The initiator's device id (selects the pinned static key).
        initiator: DeviceId,
        /// The Noise message.
        noise: &'a [u8; HANDSHAKE_LEN],
    },
    /// Toy → phone: Noise KK message 2.
    HandshakeResp {
        /// The Noise message.
        noise: &'a [u8; HANDSHAKE_LEN],
    },
    /// Either way: a Noise transport message carrying one session message.
    Transport {
        /// The Noise ciphertext.
        noise: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// Decodes a frame.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let (&k, body) = bytes.split_first().ok_or(Error::Malformed("empty frame"))?;
        let fixed = |n: usize| -> Result<&'a [u8], Error> {
            if body.len() == n {
                Ok(body)
            } else {
                Err(Error::Malformed("wrong frame length"))
            }
        };
        Ok(match k {
            kind::PAIR_REQUEST => {
                let b = fixed(1 + SPAKE_MSG_LEN)?;
                let (&version, spake) = b.split_first().ok_or(Error::Malformed("short"))?;
                Frame::PairRequest {
                    version,
                    spake: spake.try_into().map_err(|_| Error::Malformed("spake"))?,
                }
            }
            kind::PAIR_RESPONSE => {
                let b = fixed(SPAKE_MSG_LEN + NONCE_LEN)?;
                let (spake, commit) = b
                    .split_first_chunk::<SPAKE_MSG_LEN>()
                    .ok_or(Error::Malformed("short"))?;
                Frame::PairResponse {
                    spake,
                    commit: commit.try_into().map_err(|_| Error::Malformed("commit"))?,
                }
            }
            kind::PAIR_CONFIRM => {
                let (confirm, rest) = body
                    .split_first_chunk::<CONFIRM_LEN>()
                    .ok_or(Error::Malformed("short pair confirm"))?;
                let (nonce, sealed) = rest
                    .split_first_chunk::<NONCE_LEN>()
                    .ok_or(Error::Malformed("short pair confirm"))?;
                Frame::PairConfirm {
                    confirm,
                    nonce,
                    sealed,
                }
            }
            kind::PAIR_DONE => {
                let (confirm, rest) = body
                    .split_first_chunk::<CONFIRM_LEN>()
                    .ok_or(Error::Malformed("short pair done"))?;
                let (nonce, sealed) = rest
                    .split_first_chunk::<NONCE_LEN>()
                    .ok_or(Error::Malformed("short pair done"))?;
                Frame::PairDone {
                    confirm,
                    nonce,
                    sealed,
                }
            }
            kind::ABORT => Frame::Abort(AbortReason::from_byte(
                *fixed(1)?.first().ok_or(Error::Malformed("short"))?,
            )),
            kind::NOT_PAIRABLE => {
                fixed(0)?;
                Frame::NotPairable
            }
            kind::CONFIRMATION_PENDING => {
                let b = fixed(2)?;
                let seconds: [u8; 2] = b.try_into().map_err(|_| Error::Malformed("short"))?;
                Frame::ConfirmationPending {
                    seconds: u16::from_be_bytes(seconds),
                }
            }
            kind::CONFIRMED => {
                fixed(0)?;
                Frame::Confirmed
            }
            kind::HANDSHAKE_INIT => {
                let b = fixed(DeviceId::LEN + HANDSHAKE_LEN)?;
                let (id, noise) = b
                    .split_first_chunk::<{ DeviceId::LEN }>()
                    .ok_or(Error::Malformed("short"))?;
                Frame::HandshakeInit {
                    initiator: DeviceId::from_bytes(*id),
                    noise: noise.try_into().map_err(|_| Error::Malformed("noise"))?,
                }
            }
            kind::HANDSHAKE_RESP => Frame::HandshakeResp {
                noise: fixed(HANDSHAKE_LEN)?
                    .try_into()
                    .map_err(|_| Error::Malformed("noise"))?,
            },
            kind::TRANSPORT => {
                if body.len() < 16 {
                    return Err(Error::Malformed("transport frame shorter than a tag"));
                }
                Frame::Transport { noise: body }
            }
            _ => return Err(Error::Malformed("unknown frame kind")),
        })
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Frame::PairRequest { version, spake } => {
                out.push(kind::PAIR_REQUEST);
                out.push(*version);
                out.extend_from_slice(&spake[..]);
            }
            Frame::PairResponse { spake, commit } => {
                out.push(kind::PAIR_RESPONSE);
                out.extend_from_slice(&spake[..]);
                out.extend_from_slice(&commit[..]);
            }
            Frame::PairConfirm {
                confirm,
                nonce,
                sealed,
            } => {
                out.push(kind::PAIR_CONFIRM);
                out.extend_from_slice(&confirm[..]);
                out.extend_from_slice(&nonce[..]);
                out.extend_from_slice(sealed);
            }
            Frame::PairDone {
                confirm,
                nonce,
                sealed,
            } => {
                out.push(kind::PAIR_DONE);
                out.extend_from_slice(&confirm[..]);
                out.extend_from_slice(&nonce[..]);
                out.extend_from_slice(sealed);
            }
            Frame::Abort(r) => {
                out.push(kind::ABORT);
                out.push(r.to_byte());
            }
            Frame::NotPairable => out.push(kind::NOT_PAIRABLE),
            Frame::ConfirmationPending { seconds } => {
                out.push(kind::CONFIRMATION_PENDING);
                out.extend_from_slice(&seconds.to_be_bytes());
            }
            Frame::Confirmed => out.push(kind::CONFIRMED),
            Frame::HandshakeInit { initiator, noise } => {
                out.push(kind::HANDSHAKE_INIT);
                out.extend_from_slice(initiator.as_bytes());
                out.extend_from_slice(&noise[..]);
            }
            Frame::HandshakeResp { noise } => {
                out.push(kind::HANDSHAKE_RESP);
                out.extend_from_slice(&noise[..]);
            }
            Frame::Transport { noise } => {
                out.push(kind::TRANSPORT);
                out.extend_from_slice(noise);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame of each kind, its variable parts drawn by the strategy.
    fn any_frame_bytes() -> impl Strategy<Value = Vec<u8>> {
        let bytes = |n: std::ops::Range<usize>| proptest::collection::vec(any::<u8>(), n);
        (
            0u8..11,
            any::<[u8; SPAKE_MSG_LEN]>(),
            any::<[u8; CONFIRM_LEN]>(),
            any::<[u8; 16]>(),
            any::<[u8; HANDSHAKE_LEN]>(),
            bytes(16..600),
            any::<u8>(),
        )
            .prop_map(|(k, spake, confirm, id, noise, body, b)| match k {
                0 => Frame::PairRequest {
                    version: b,
                    spake: &spake,
                }
                .encode(),
                1 => Frame::PairResponse {
                    spake: &spake,
                    commit: &confirm,
                }
                .encode(),
                2 => Frame::PairConfirm {
                    confirm: &confirm,
                    nonce: &confirm,
                    sealed: &body,
                }
                .encode(),
                3 => Frame::PairDone {
                    confirm: &confirm,
                    nonce: &confirm,
                    sealed: &body,
                }
                .encode(),
                4 => Frame::Abort(AbortReason::from_byte(b)).encode(),
                5 => Frame::NotPairable.encode(),
                6 => Frame::HandshakeInit {
                    initiator: DeviceId::from_bytes(id),
                    noise: &noise,
                }
                .encode(),
                7 => Frame::HandshakeResp { noise: &noise }.encode(),
                8 => Frame::ConfirmationPending {
                    seconds: u16::from_be_bytes([b, id[0]]),
                }
                .encode(),
                9 => Frame::Confirmed.encode(),
                _ => Frame::Transport { noise: &body }.encode(),
            })
    }

    proptest! {
        #[test]
        fn every_frame_round_trips(bytes in any_frame_bytes()) {
            let frame = Frame::decode(&bytes).unwrap();
            prop_assert_eq!(frame.encode(), bytes);
        }

        #[test]
        fn whatever_decodes_encodes_back_to_the_same_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Ok(frame) = Frame::decode(&bytes) {
                prop_assert_eq!(frame.encode(), bytes);
            }
        }
    }
}
