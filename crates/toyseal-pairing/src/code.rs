//! The pairing code printed on the toy's tag, and the QR payload that can carry it.

use crate::Error;
use std::fmt;
use toyseal_core::{CryptoRng, DeviceId};
use zeroize::Zeroizing;

/// A pairing code: 8 to 16 decimal digits, not trivial.
///
/// Trivial codes are refused: all digits equal (`77777777`), or each digit one more
/// (`12345678`, `78901234`) or one less (`87654321`) than the one before, wrapping 9↔0.
/// The code is a secret until pairing is done: it zeroizes on drop and `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(Zeroizing<String>);

impl PairingCode {
    /// Fewest digits allowed.
    pub const MIN_DIGITS: usize = 8;
    /// Most digits allowed.
    pub const MAX_DIGITS: usize = 16;

    /// Parses a code typed by a person: digits, optionally grouped with spaces or dashes.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut digits = Zeroizing::new(String::with_capacity(s.len()));
        for c in s.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(Error::Code("only digits, spaces and dashes are allowed")),
            }
        }
        if digits.len() < Self::MIN_DIGITS {
            return Err(Error::Code("at least 8 digits are required"));
        }
        if digits.len() > Self::MAX_DIGITS {
            return Err(Error::Code("at most 16 digits are allowed"));
        }
        if is_trivial(digits.as_bytes()) {
            return Err(Error::Code(
                "trivial codes (repeated, ascending, descending) are refused",
            ));
        }
        Ok(Self(digits))
    }

    /// Generates a random, non-trivial code of `digits` digits (clamped to 8..=16), as a
    /// factory would when printing the tag.
    pub fn generate(digits: usize, rng: &mut impl CryptoRng) -> Self {
        let n = digits.clamp(Self::MIN_DIGITS, Self::MAX_DIGITS);
        loop {
            let mut s = Zeroizing::new(String::with_capacity(n));
            while s.len() < n {
                let mut b = [0u8; 1];
                rng.fill_bytes(&mut b);
                // Rejection sampling keeps the digits uniform (250 = 25 * 10).
                if b[0] < 250 {
                    s.push(char::from(b'0' + b[0] % 10));
                }
            }
            if !is_trivial(s.as_bytes()) {
                return Self(s);
            }
        }
    }

    /// The digits, ungrouped. This is the PAKE password.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// Number of possible codes of this length, excluding trivial ones (for the guessing bound).
    pub fn keyspace(digits: usize) -> u64 {
        let total = 10u64.saturating_pow(u32::try_from(digits).unwrap_or(u32::MAX));
        // 10 repeated + 10 ascending + 10 descending starting digits.
        total.saturating_sub(30)
    }
}

fn is_trivial(d: &[u8]) -> bool {
    let steps = |delta: u8| {
        d.windows(2)
            .all(|w| (w[0] - b'0' + delta) % 10 == w[1] - b'0')
    };
    steps(0) || steps(1) || steps(9)
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(<redacted>)")
    }
}

/// What a toy's QR code carries: the pairing code and the toy's device id, so the phone also
/// checks it paired with *this* toy.
///
/// Text form (QR alphanumeric mode): `TS1:<digits>:<device id, 32 upper-case hex digits>`.
#[derive(Clone, PartialEq, Eq)]
pub struct QrPayload {
    /// The pairing code.
    pub code: PairingCode,
    /// The toy's device id.
    pub fingerprint: DeviceId,
}

impl QrPayload {
    /// Renders the QR text. It contains the code: treat it as the code itself.
    pub fn to_qr_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "TS1:{}:{}",
            self.code.digits(),
            self.fingerprint.to_string().to_uppercase()
        ))
    }

    /// Parses QR text.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut parts = s.trim().split(':');
        if parts.next() != Some("TS1") {
            return Err(Error::QrPayload("must start with TS1:"));
        }
        let code = PairingCode::parse(parts.next().ok_or(Error::QrPayload("no code"))?)?;
        let fingerprint = parts
            .next()
            .ok_or(Error::QrPayload("no fingerprint"))?
            .parse::<DeviceId>()
            .map_err(|_| Error::QrPayload("fingerprint is not a device id"))?;
        if parts.next().is_some() {
            return Err(Error::QrPayload("trailing fields"));
        }
        Ok(Self { code, fingerprint })
    }
}

impl fmt::Debug for QrPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrPayload")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(PairingCode::parse("4821-3957").is_ok());
        assert!(PairingCode::parse("4821 3957 0").is_ok());
        for bad in [
            "1234567",
            "12345678",
            "78901234",
            "87654321",
            "10987654",
            "00000000",
            "99999999",
            "1234567x",
            "12345678901234567",
        ] {
            assert!(PairingCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_codes_are_valid_and_vary() {
        let mut rng = OsRngForTests;
        let a = PairingCode::generate(8, &mut rng);
        let b = PairingCode::generate(8, &mut rng);
        assert!(PairingCode::parse(a.digits()).is_ok());
        assert_eq!(a.digits().len(), 8);
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "PairingCode(<redacted>)");
    }

    #[test]
    fn qr_round_trip() {
        let q = QrPayload {
            code: PairingCode::parse("48213957").unwrap(),
            fingerprint: DeviceId::from_bytes([0xab; 16]),
        };
        let t = q.to_qr_text();
        assert!(t.starts_with("TS1:48213957:ABAB"));
        assert_eq!(QrPayload::parse(&t).unwrap(), q);
        assert!(QrPayload::parse("TS2:48213957:00").is_err());
        assert!(!format!("{q:?}").contains("4821"));
    }

    use toyseal_core::OsRng as OsRngForTests;
}
