//! Anchored joining (docs/spec/roster.md §6): a device that joins an existing family learns,
//! over an authenticated channel (a QR code on the inviting guardian's screen, or the toy's
//! BLE session), the family id and the hash of the roster version that adds it — its
//! **anchor** — and follows only chains that pass through that version. A server that
//! fabricates a family (its own "guardian" and "toy") cannot produce a chain through the anchor
//! without a second preimage of SHA-256.

use crate::{Error, Roster, SignedRoster};
use std::{fmt, str::FromStr};
use toyseal_core::FamilyId;

const INVITE_PREFIX: &str = "toyseal-invite:1:";
/// Longest server URL an invitation carries.
const MAX_SERVER_LEN: usize = 256;

/// The roster version a device trusts without the server: the one that added it (or, for the
/// founding devices, version 1). Keep it with the device's keys: a reinstalled app re-anchors
/// with it. Text form: `family (32 hex) ":" version (decimal) ":" hash (64 hex)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Anchor {
    family: FamilyId,
    version: u64,
    hash: [u8; 32],
}

impl Anchor {
    /// The anchor naming `signed` (family, version, hash of its body).
    pub fn of(signed: &SignedRoster) -> Self {
        Self {
            family: signed.proposal().family(),
            version: signed.proposal().version(),
            hash: signed.hash(),
        }
    }
    /// The family.
    pub fn family(&self) -> FamilyId {
        self.family
    }
    /// The anchored version.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The anchored version's hash (roster.md §2).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
    /// Whether `signed` is the anchored version.
    pub fn names(&self, signed: &SignedRoster) -> bool {
        *self == Self::of(signed)
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.family, self.version)?;
        self.hash.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Anchor({self})")
    }
}

fn lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl FromStr for Anchor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = Error::Malformed("an anchor is family:version:hash in lower-case hex");
        let mut parts = s.split(':');
        let (Some(family), Some(version), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad);
        };
        let family = lower_hex::<16>(family).ok_or(Error::Malformed("anchor family id"))?;
        if family == [0; 16] {
            return Err(Error::Malformed("zero family id"));
        }
        // Canonical decimal: no sign, no leading zero, at least 1.
        if version.is_empty()
            || version.starts_with('0')
            || !version.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Error::Malformed("anchor version"));
        }
        let version: u64 = version
            .parse()
            .map_err(|_| Error::Malformed("anchor version"))?;
        let hash = lower_hex::<32>(hash).ok_or(Error::Malformed("anchor hash"))?;
        Ok(Self {
            family: FamilyId::from_bytes(family),
            version,
            hash,
        })
    }
}

/// What a guardian shows (as a QR code) or the toy hands over its session to a device that
/// joins: the anchor, and optionally the server to fetch the chain from.
/// Text form: `toyseal-invite:1:` anchor [`:` server URL].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    anchor: Anchor,
    server: Option<String>,
}

impl Invitation {
    /// An invitation to the version `adding` (which lists the invited device), with an
    /// optional server URL (printable ASCII, no spaces, at most 256 bytes).
    pub fn new(adding: &SignedRoster, server: Option<&str>) -> Result<Self, Error> {
        if let Some(s) = server {
            check_server(s)?;
        }
        Ok(Self {
            anchor: Anchor::of(adding),
            server: server.map(str::to_owned),
        })
    }
    /// The anchor.
    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }
    /// The server URL, if the invitation names one. It is a hint, not a trust anchor: the
    /// chain is verified through the anchor whatever server serves it.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }
}

fn check_server(s: &str) -> Result<(), Error> {
    if s.is_empty() || s.len() > MAX_SERVER_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Malformed(
            "an invitation's server is 1 to 256 printable ASCII characters",
        ));
    }
    Ok(())
}

impl fmt::Display for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{INVITE_PREFIX}{}", self.anchor)?;
        match &self.server {
            Some(s) => write!(f, ":{s}"),
            None => Ok(()),
        }
    }
}

impl FromStr for Invitation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let rest = s
            .strip_prefix(INVITE_PREFIX)
            .ok_or(Error::Malformed("not a toyseal invitation"))?;
        // The anchor has exactly three ':'-separated fields; the server URL (which may contain
        // ':') is everything after the fourth separator.
        let mut fields = rest.splitn(4, ':');
        let anchor = [fields.next(), fields.next(), fields.next()]
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::Malformed("invitation anchor"))?
            .join(":")
            .parse()?;
        let server = fields.next().map(str::to_owned);
        if let Some(s) = &server {
            check_server(s)?;
        }
        Ok(Self { anchor, server })
    }
}

/// Follows a family's chain version by version (as a client fetches it in bounded pages) and
/// accepts it only through its anchor: version 1 is verified by the founding rules, each later
/// one against the one before, and the version at the anchor's number must be the anchored
/// one. Memory is bounded by one roster whatever the chain's length.
#[derive(Clone, Debug)]
pub struct ChainFollower {
    anchor: Anchor,
    current: Option<Roster>,
    anchored: Option<Roster>,
}

impl ChainFollower {
    /// Starts from nothing (a new or reinstalled device).
    pub fn new(anchor: Anchor) -> Self {
        Self {
            anchor,
            current: None,
            anchored: None,
        }
    }

    /// The version to ask for versions after (0 before version 1).
    pub fn since(&self) -> u64 {
        self.current.as_ref().map_or(0, Roster::version)
    }

    /// Verifies the next version of the chain.
    pub fn push(&mut self, next: SignedRoster) -> Result<(), Error> {
        if next.proposal().family() != self.anchor.family {
            return Err(Error::WrongFamily);
        }
        let verified = match &self.current {
            None => Roster::verify_founding(next)?,
            Some(cur) => cur.verify_next(next)?,
        };
        if verified.version() == self.anchor.version {
            if !self.anchor.names(verified.signed()) {
                return Err(Error::NotAnchored);
            }
            self.anchored = Some(verified.clone());
        }
        self.current = Some(verified);
        Ok(())
    }

    /// The anchored version, once the chain has passed it.
    pub fn anchored(&self) -> Option<&Roster> {
        self.anchored.as_ref()
    }

    /// The newest verified version, provided the chain passed through the anchor.
    pub fn finish(self) -> Result<Roster, Error> {
        match (self.anchored, self.current) {
            (Some(_), Some(current)) => Ok(current),
            _ => Err(Error::NotAnchored),
        }
    }
}

impl Roster {
    /// Verifies a whole chain from version 1 that must pass through `anchor`; returns its last
    /// version.
    pub fn verify_anchored_chain(chain: &[SignedRoster], anchor: &Anchor) -> Result<Self, Error> {
        let mut f = ChainFollower::new(*anchor);
        for v in chain {
            f.push(v.clone())?;
        }
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::RosterProposal;
    use toyseal_core::{DeviceIdentity, OsRng, Role};

    fn v1() -> SignedRoster {
        let mum = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
        let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
        let fam = FamilyId::generate(&mut OsRng);
        let recovery = crate::RecoveryKey::generate(&mut OsRng).unwrap();
        let mut v1 = RosterProposal::founding(
            fam,
            vec![mum.public().clone(), toy.public().clone()],
            *recovery.public(),
        )
        .unwrap()
        .sign(&mum);
        v1.cosign(&toy);
        v1.cosign_recovery(&recovery);
        v1
    }

    #[test]
    fn text_forms_round_trip() {
        let v1 = v1();
        let inv = Invitation::new(&v1, Some("https://api.example:8443")).unwrap();
        let text = inv.to_string();
        assert!(text.starts_with("toyseal-invite:1:"));
        let back: Invitation = text.parse().unwrap();
        assert_eq!(back, inv);
        assert_eq!(back.server(), Some("https://api.example:8443"));
        assert!(back.anchor().names(&v1));
        let bare = Invitation::new(&v1, None).unwrap();
        assert_eq!(bare.to_string().parse::<Invitation>().unwrap(), bare);
        let anchor = *inv.anchor();
        assert_eq!(anchor.to_string().parse::<Anchor>().unwrap(), anchor);
    }

    #[test]
    fn malformed_text_is_refused() {
        let good = Invitation::new(&v1(), None).unwrap().to_string();
        let anchor = good.strip_prefix(INVITE_PREFIX).unwrap();
        let (fam, rest) = anchor.split_once(':').unwrap();
        let (_, hash) = rest.split_once(':').unwrap();
        for bad in [
            String::new(),
            "toyseal-invite:2:".to_owned() + anchor,
            good.to_uppercase(),
            format!("{INVITE_PREFIX}{fam}:01:{hash}"),
            format!("{INVITE_PREFIX}{fam}:0:{hash}"),
            format!("{INVITE_PREFIX}{fam}:+1:{hash}"),
            format!("{INVITE_PREFIX}{fam}:1:{}", &hash[1..]),
            format!("{INVITE_PREFIX}{}:1:{hash}", "0".repeat(32)),
            format!("{good}:"),
            format!("{good}:has space"),
        ] {
            assert!(bad.parse::<Invitation>().is_err(), "{bad}");
        }
    }
}
