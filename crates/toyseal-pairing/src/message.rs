//! Session messages: what travels inside an established Noise session
//! (docs/spec/pairing.md §Session messages). `type (1) || fields`, integers big-endian.

use crate::{Error, PairingCode};

/// Largest session message plaintext: a Noise message (65535 bytes) less its 16-byte tag.
pub const MAX_MESSAGE_LEN: usize = 65_535 - 16;
/// Largest envelope piece in one [`SessionMessage::EnvelopeChunk`].
pub const MAX_CHUNK_DATA: usize = MAX_MESSAGE_LEN - 13;

mod ty {
    pub const PING: u8 = 0x01;
    pub const PONG: u8 = 0x02;
    pub const ENVELOPE_CHUNK: u8 = 0x10;
    pub const ENVELOPE_ACK: u8 = 0x11;
    pub const ROSTER_UPDATE: u8 = 0x20;
    pub const ROSTER_PENDING: u8 = 0x21;
    pub const ROSTER_ANSWER: u8 = 0x22;
    pub const ROSTER_HEAD: u8 = 0x23;
    pub const RECOVERY_PROOF: u8 = 0x24;
    pub const RECOVERY_ANSWER: u8 = 0x25;
    pub const OPEN_PAIRING_WINDOW: u8 = 0x28;
    pub const CONTROL: u8 = 0x30;
    pub const CONTROL_ACK: u8 = 0x31;
    pub const CLOSE: u8 = 0x7f;
}

/// Most roster versions one [`SessionMessage::RosterUpdate`] carries.
pub const MAX_ROSTERS_PER_UPDATE: usize = 16;

/// A command from a phone to the toy. The toy acts on none without a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Play the envelope with this id (SHA-256 of the envelope).
    Play {
        /// Envelope id.
        envelope_id: [u8; 32],
    },
    /// Start recording.
    StartRecording,
    /// Stop recording (the toy seals and offers the envelope).
    StopRecording,
    /// Stop playing.
    Stop,
}

/// The toy's answer to a roster version a guardian in session proposed, or to its push
/// (docs/spec/pairing.md §7.1). Also what the phone reports for the founding pairing's
/// confirmation (ABORT reasons 5 and 6, CONFIRMED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToyAnswer {
    /// `0x00`: the toy's user confirmed; the toy co-signed and applied the version (it follows
    /// in a RosterUpdate).
    Confirmed,
    /// `0x01`: nobody confirmed at the toy within the window; nothing was signed.
    Expired,
    /// `0x02`: the toy's user declined; nothing was signed.
    Declined,
    /// `0x03`: the versions did not verify or did not chain; nothing changed.
    Refused,
    /// `0x04`: a version with the toy's own version number but another hash (a fork).
    Fork,
    /// `0x05`: another confirmation is pending at the toy; try again later.
    Busy,
}

impl ToyAnswer {
    fn to_byte(self) -> u8 {
        match self {
            ToyAnswer::Confirmed => 0,
            ToyAnswer::Expired => 1,
            ToyAnswer::Declined => 2,
            ToyAnswer::Refused => 3,
            ToyAnswer::Fork => 4,
            ToyAnswer::Busy => 5,
        }
    }
    fn from_byte(b: u8) -> Result<Self, Error> {
        Ok(match b {
            0 => ToyAnswer::Confirmed,
            1 => ToyAnswer::Expired,
            2 => ToyAnswer::Declined,
            3 => ToyAnswer::Refused,
            4 => ToyAnswer::Fork,
            5 => ToyAnswer::Busy,
            _ => return Err(Error::Malformed("unknown roster answer")),
        })
    }
}

/// The toy's answer to a [`SessionMessage::RecoveryProof`] (docs/spec/pairing.md §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryAnswer {
    /// `0x00`: the proof verified against the roster's recovery key; the toy's current version
    /// follows in a RosterUpdate, and the phone may push one version signed by the key.
    Proved,
    /// `0x01`: the signature does not verify (another key, or a proof made for another
    /// session): the recovery window is closed and the session ends.
    Refused,
    /// `0x02`: no recovery window is open for this session, a proof was already given in it,
    /// or a confirmation is pending.
    Closed,
}

impl RecoveryAnswer {
    fn to_byte(self) -> u8 {
        match self {
            RecoveryAnswer::Proved => 0,
            RecoveryAnswer::Refused => 1,
            RecoveryAnswer::Closed => 2,
        }
    }
    fn from_byte(b: u8) -> Result<Self, Error> {
        Ok(match b {
            0 => RecoveryAnswer::Proved,
            1 => RecoveryAnswer::Refused,
            2 => RecoveryAnswer::Closed,
            _ => return Err(Error::Malformed("unknown recovery answer")),
        })
    }
}

/// One message inside a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionMessage {
    /// Liveness check.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// A piece of an envelope being delivered (either direction).
    EnvelopeChunk {
        /// Transfer id chosen by the sender.
        transfer: u32,
        /// Total envelope length.
        total: u32,
        /// Offset of `data` in the envelope.
        offset: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Acknowledges received envelope bytes.
    EnvelopeAck {
        /// Transfer id.
        transfer: u32,
        /// Bytes received so far (all of them when equal to the total).
        received: u32,
    },
    /// Consecutive signed roster versions, oldest first (encoded by `toyseal-roster`; the
    /// receiver verifies them as a chain from the version it holds).
    RosterUpdate {
        /// The encoded versions (1 to [`MAX_ROSTERS_PER_UPDATE`]).
        rosters: Vec<Vec<u8>>,
    },
    /// Toy → guardian: the toy asks its user to confirm the version the guardian proposed
    /// (nothing is signed until then).
    RosterPending {
        /// The proposed version number.
        version: u64,
        /// The confirmation window, in seconds.
        seconds: u16,
    },
    /// Toy → guardian: what became of the versions the guardian pushed or proposed.
    RosterAnswer {
        /// The version the answer is about (the proposed one, or the toy's for a fork).
        version: u64,
        /// The answer.
        answer: ToyAnswer,
    },
    /// Toy → phone, the first message of every session: the toy's roster head (version 0 and
    /// 32 zero bytes before it has a roster).
    RosterHead {
        /// The toy's roster version.
        version: u64,
        /// SHA-256 of that signed version (`SignedRoster::hash`).
        hash: [u8; 32],
    },
    /// Phone → toy, in a session the recovery window admitted: the family's recovery key's
    /// signature over `"toyseal/v1/recovery-proof\x00" ||` this session's handshake hash
    /// (`RecoveryKey::sign_recovery_proof`, docs/spec/pairing.md §7.2).
    RecoveryProof {
        /// The Ed25519 signature.
        signature: [u8; 64],
    },
    /// Toy → phone: what the toy made of a [`SessionMessage::RecoveryProof`].
    RecoveryAnswer {
        /// The answer.
        answer: RecoveryAnswer,
    },
    /// Guardian → toy: open a pairing window for one new phone, admitted only with this
    /// one-time code (generated and shown by the guardian's phone).
    OpenPairingWindow {
        /// The one-time code.
        code: PairingCode,
    },
    /// A command.
    Control(Control),
    /// Result of a command.
    ControlAck {
        /// Whether the command was carried out.
        ok: bool,
    },
    /// Orderly end of the session.
    Close {
        /// Reason code (0: normal).
        reason: u8,
    },
}

fn take<'a, const N: usize>(b: &mut &'a [u8]) -> Result<&'a [u8; N], Error> {
    let (head, rest) = b
        .split_first_chunk::<N>()
        .ok_or(Error::Malformed("session message too short"))?;
    *b = rest;
    Ok(head)
}

impl SessionMessage {
    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        match self {
            SessionMessage::Ping { nonce } => {
                out.push(ty::PING);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            SessionMessage::Pong { nonce } => {
                out.push(ty::PONG);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            SessionMessage::EnvelopeChunk {
                transfer,
                total,
                offset,
                data,
            } => {
                out.push(ty::ENVELOPE_CHUNK);
                out.extend_from_slice(&transfer.to_be_bytes());
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(data);
            }
            SessionMessage::EnvelopeAck { transfer, received } => {
                out.push(ty::ENVELOPE_ACK);
                out.extend_from_slice(&transfer.to_be_bytes());
                out.extend_from_slice(&received.to_be_bytes());
            }
            SessionMessage::RosterUpdate { rosters } => {
                out.push(ty::ROSTER_UPDATE);
                if rosters.is_empty() || rosters.len() > MAX_ROSTERS_PER_UPDATE {
                    return Err(Error::Malformed("a roster update carries 1 to 16 versions"));
                }
                // Invariant: checked just above.
                out.push(rosters.len() as u8);
                for r in rosters {
                    let len = u16::try_from(r.len()).map_err(|_| Error::TooLarge {
                        len: r.len(),
                        limit: usize::from(u16::MAX),
                    })?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(r);
                }
            }
            SessionMessage::RosterPending { version, seconds } => {
                out.push(ty::ROSTER_PENDING);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&seconds.to_be_bytes());
            }
            SessionMessage::RosterAnswer { version, answer } => {
                out.push(ty::ROSTER_ANSWER);
                out.extend_from_slice(&version.to_be_bytes());
                out.push(answer.to_byte());
            }
            SessionMessage::RosterHead { version, hash } => {
                out.push(ty::ROSTER_HEAD);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(hash);
            }
            SessionMessage::RecoveryProof { signature } => {
                out.push(ty::RECOVERY_PROOF);
                out.extend_from_slice(signature);
            }
            SessionMessage::RecoveryAnswer { answer } => {
                out.push(ty::RECOVERY_ANSWER);
                out.push(answer.to_byte());
            }
            SessionMessage::OpenPairingWindow { code } => {
                out.push(ty::OPEN_PAIRING_WINDOW);
                // Invariant: a PairingCode has 8 to 16 digits.
                out.push(code.digits().len() as u8);
                out.extend_from_slice(code.digits().as_bytes());
            }
            SessionMessage::Control(c) => {
                out.push(ty::CONTROL);
                match c {
                    Control::Play { envelope_id } => {
                        out.push(1);
                        out.extend_from_slice(envelope_id);
                    }
                    Control::StartRecording => out.push(2),
                    Control::StopRecording => out.push(3),
                    Control::Stop => out.push(4),
                }
            }
            SessionMessage::ControlAck { ok } => {
                out.push(ty::CONTROL_ACK);
                out.push(u8::from(*ok));
            }
            SessionMessage::Close { reason } => {
                out.push(ty::CLOSE);
                out.push(*reason);
            }
        }
        if out.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge {
                len: out.len(),
                limit: MAX_MESSAGE_LEN,
            });
        }
        Ok(out)
    }

    /// Decodes a message; every field must be present and nothing may follow the fixed-size
    /// ones.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (&t, mut b) = bytes
            .split_first()
            .ok_or(Error::Malformed("empty session message"))?;
        let msg = match t {
            ty::PING => SessionMessage::Ping {
                nonce: u64::from_be_bytes(*take::<8>(&mut b)?),
            },
            ty::PONG => SessionMessage::Pong {
                nonce: u64::from_be_bytes(*take::<8>(&mut b)?),
            },
            ty::ENVELOPE_CHUNK => {
                let transfer = u32::from_be_bytes(*take::<4>(&mut b)?);
                let total = u32::from_be_bytes(*take::<4>(&mut b)?);
                let offset = u32::from_be_bytes(*take::<4>(&mut b)?);
                let data = std::mem::take(&mut b).to_vec();
                if data.is_empty() || u64::from(offset) + data.len() as u64 > u64::from(total) {
                    return Err(Error::Malformed(
                        "envelope chunk outside the declared total",
                    ));
                }
                SessionMessage::EnvelopeChunk {
                    transfer,
                    total,
                    offset,
                    data,
                }
            }
            ty::ENVELOPE_ACK => SessionMessage::EnvelopeAck {
                transfer: u32::from_be_bytes(*take::<4>(&mut b)?),
                received: u32::from_be_bytes(*take::<4>(&mut b)?),
            },
            ty::ROSTER_UPDATE => {
                let [count] = *take::<1>(&mut b)?;
                if count == 0 || usize::from(count) > MAX_ROSTERS_PER_UPDATE {
                    return Err(Error::Malformed("a roster update carries 1 to 16 versions"));
                }
                let mut rosters = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let len = usize::from(u16::from_be_bytes(*take::<2>(&mut b)?));
                    let (r, rest) = b
                        .split_at_checked(len)
                        .ok_or(Error::Malformed("session message too short"))?;
                    rosters.push(r.to_vec());
                    b = rest;
                }
                SessionMessage::RosterUpdate { rosters }
            }
            ty::ROSTER_PENDING => SessionMessage::RosterPending {
                version: u64::from_be_bytes(*take::<8>(&mut b)?),
                seconds: u16::from_be_bytes(*take::<2>(&mut b)?),
            },
            ty::ROSTER_ANSWER => SessionMessage::RosterAnswer {
                version: u64::from_be_bytes(*take::<8>(&mut b)?),
                answer: ToyAnswer::from_byte(take::<1>(&mut b)?[0])?,
            },
            ty::ROSTER_HEAD => SessionMessage::RosterHead {
                version: u64::from_be_bytes(*take::<8>(&mut b)?),
                hash: *take::<32>(&mut b)?,
            },
            ty::RECOVERY_PROOF => SessionMessage::RecoveryProof {
                signature: *take::<64>(&mut b)?,
            },
            ty::RECOVERY_ANSWER => SessionMessage::RecoveryAnswer {
                answer: RecoveryAnswer::from_byte(take::<1>(&mut b)?[0])?,
            },
            ty::OPEN_PAIRING_WINDOW => {
                let [len] = *take::<1>(&mut b)?;
                let (digits, rest) = b
                    .split_at_checked(usize::from(len))
                    .ok_or(Error::Malformed("session message too short"))?;
                b = rest;
                let digits =
                    std::str::from_utf8(digits).map_err(|_| Error::Malformed("code digits"))?;
                if !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(Error::Malformed("code digits"));
                }
                SessionMessage::OpenPairingWindow {
                    code: PairingCode::parse(digits)?,
                }
            }
            ty::CONTROL => {
                let [c] = *take::<1>(&mut b)?;
                SessionMessage::Control(match c {
                    1 => Control::Play {
                        envelope_id: *take::<32>(&mut b)?,
                    },
                    2 => Control::StartRecording,
                    3 => Control::StopRecording,
                    4 => Control::Stop,
                    _ => return Err(Error::Malformed("unknown control command")),
                })
            }
            ty::CONTROL_ACK => {
                let [ok] = *take::<1>(&mut b)?;
                if ok > 1 {
                    return Err(Error::Malformed("control ack is 0 or 1"));
                }
                SessionMessage::ControlAck { ok: ok == 1 }
            }
            ty::CLOSE => SessionMessage::Close {
                reason: take::<1>(&mut b)?[0],
            },
            _ => return Err(Error::Malformed("unknown session message type")),
        };
        if !b.is_empty() {
            return Err(Error::Malformed("trailing bytes in session message"));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_control() -> impl Strategy<Value = Control> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(|envelope_id| Control::Play { envelope_id }),
            Just(Control::StartRecording),
            Just(Control::StopRecording),
            Just(Control::Stop),
        ]
    }

    fn any_message() -> impl Strategy<Value = SessionMessage> {
        let chunk = (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..2000),
        )
            .prop_flat_map(|(transfer, extra, data)| {
                let len = data.len() as u32;
                (0..=u32::MAX - len).prop_map(move |offset| SessionMessage::EnvelopeChunk {
                    transfer,
                    total: offset + len + extra % (u32::MAX - offset - len).max(1),
                    offset,
                    data: data.clone(),
                })
            });
        prop_oneof![
            any::<u64>().prop_map(|nonce| SessionMessage::Ping { nonce }),
            any::<u64>().prop_map(|nonce| SessionMessage::Pong { nonce }),
            chunk,
            (any::<u32>(), any::<u32>()).prop_map(|(transfer, received)| {
                SessionMessage::EnvelopeAck { transfer, received }
            }),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..=16)
                .prop_map(|rosters| SessionMessage::RosterUpdate { rosters }),
            (any::<u64>(), any::<u16>())
                .prop_map(|(version, seconds)| SessionMessage::RosterPending { version, seconds }),
            (any::<u64>(), 0u8..6).prop_map(|(version, a)| SessionMessage::RosterAnswer {
                version,
                answer: ToyAnswer::from_byte(a).unwrap(),
            }),
            (any::<u64>(), any::<[u8; 32]>())
                .prop_map(|(version, hash)| SessionMessage::RosterHead { version, hash }),
            proptest::collection::vec(any::<u8>(), 64).prop_map(|s| {
                SessionMessage::RecoveryProof {
                    signature: s.try_into().unwrap(),
                }
            }),
            (0u8..3).prop_map(|a| SessionMessage::RecoveryAnswer {
                answer: RecoveryAnswer::from_byte(a).unwrap(),
            }),
            "[0-9]{8,16}".prop_filter_map("trivial code", |d| PairingCode::parse(&d)
                .ok()
                .map(|code| SessionMessage::OpenPairingWindow { code })),
            any_control().prop_map(SessionMessage::Control),
            any::<bool>().prop_map(|ok| SessionMessage::ControlAck { ok }),
            any::<u8>().prop_map(|reason| SessionMessage::Close { reason }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(m in any_message()) {
            let e = m.encode().unwrap();
            prop_assert!(e.len() <= MAX_MESSAGE_LEN);
            prop_assert_eq!(SessionMessage::decode(&e).unwrap(), m);
        }

        #[test]
        fn whatever_decodes_encodes_back_to_the_same_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            if let Ok(m) = SessionMessage::decode(&bytes) {
                prop_assert_eq!(m.encode().unwrap(), bytes);
            }
        }
    }

    #[test]
    fn round_trips_and_rejects_trailing_bytes() {
        let msgs = [
            SessionMessage::Ping { nonce: 7 },
            SessionMessage::Pong { nonce: 7 },
            SessionMessage::EnvelopeChunk {
                transfer: 1,
                total: 10,
                offset: 4,
                data: vec![1, 2, 3],
            },
            SessionMessage::EnvelopeAck {
                transfer: 1,
                received: 7,
            },
            SessionMessage::RosterUpdate {
                rosters: vec![vec![9; 5], vec![]],
            },
            SessionMessage::OpenPairingWindow {
                code: PairingCode::parse("48213957").unwrap(),
            },
            SessionMessage::RosterPending {
                version: 4,
                seconds: 30,
            },
            SessionMessage::RosterAnswer {
                version: 4,
                answer: ToyAnswer::Fork,
            },
            SessionMessage::RosterHead {
                version: 3,
                hash: [7; 32],
            },
            SessionMessage::Control(Control::Play {
                envelope_id: [3; 32],
            }),
            SessionMessage::RecoveryProof { signature: [5; 64] },
            SessionMessage::RecoveryAnswer {
                answer: RecoveryAnswer::Refused,
            },
            SessionMessage::Control(Control::StartRecording),
            SessionMessage::ControlAck { ok: true },
            SessionMessage::Close { reason: 0 },
        ];
        for m in msgs {
            let mut e = m.encode().unwrap();
            assert_eq!(SessionMessage::decode(&e).unwrap(), m);
            if !matches!(m, SessionMessage::EnvelopeChunk { .. }) {
                e.push(0);
                assert!(SessionMessage::decode(&e).is_err(), "{m:?}");
            }
        }
        assert!(SessionMessage::decode(&[0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 9]).is_err());
        // An answer code this version does not define is malformed.
        assert!(SessionMessage::decode(&[0x22, 0, 0, 0, 0, 0, 0, 0, 1, 6]).is_err());
        assert!(SessionMessage::decode(&[0x25, 3]).is_err());
        assert!(SessionMessage::decode(&[0x24; 64]).is_err());
    }
}
