//! The HTTP API (docs/spec/signed-requests.md §API): paths, JSON bodies, limits. Shared by the
//! client and the reference server so they cannot drift. JSON bodies reject unknown fields.
//!
//! | method | path | body | auth | answer |
//! |---|---|---|---|---|
//! | GET | `/v1/health` | — | none | 200 [`Health`] |
//! | GET | `/openapi.json` | — | none | 200 OpenAPI 3.1 |
//! | POST | `/v1/families/{family}` | roster v1 (octet-stream) | a guardian in it | 201 |
//! | GET | `/v1/families/{family}/roster?since=` | — | member | 200 [`RosterChain`] (≤ [`MAX_ROSTER_PAGE`] versions after `since`) |
//! | POST | `/v1/families/{family}/roster` | next roster version | guardian | 200 [`RosterChain`] (the new version) |
//! | DELETE | `/v1/families/{family}` | family deletion statement (roster.md §5) | guardian, with a quorum in the body | 204 |
//! | POST | `/v1/families/{family}/envelopes` | envelope (octet-stream) | member = sender | 201 / 200 [`EnvelopeCreated`] |
//! | GET | `/v1/families/{family}/envelopes?cursor=&limit=` | — | member | 200 [`EnvelopePage`] |
//! | GET | `/v1/families/{family}/envelopes/{id}` | — | member | 200 octet-stream |
//! | DELETE | `/v1/families/{family}/envelopes/{id}` | — | guardian | 204 |
//!
//! Anything not authorized for the authenticated device (other family, unknown id) is a 404
//! indistinguishable from "does not exist"; a device in the family without the role gets 403;
//! no or bad signature gets a generic 401.

use serde::{Deserialize, Serialize};
use toyseal_core::FamilyId;

/// Most envelopes in one page.
pub const MAX_PAGE: u32 = 100;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: u32 = 50;
/// Most roster versions in one `GET …/roster` answer: a fetch is bounded whatever the chain's
/// length (a client pages with `since`).
pub const MAX_ROSTER_PAGE: u64 = 64;

/// Path of a family.
pub fn family_path(family: FamilyId) -> String {
    format!("/v1/families/{family}")
}
/// Path of a family's roster.
pub fn roster_path(family: FamilyId) -> String {
    format!("/v1/families/{family}/roster")
}
/// Path of a family's envelope collection.
pub fn envelopes_path(family: FamilyId) -> String {
    format!("/v1/families/{family}/envelopes")
}
/// Path of one envelope.
pub fn envelope_path(family: FamilyId, id: &EnvelopeId) -> String {
    format!("/v1/families/{family}/envelopes/{id}")
}

/// An envelope's id: SHA-256 of its bytes, 64 lower-case hex digits. Content addressing makes
/// uploads idempotent and overwrites impossible.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EnvelopeId([u8; 32]);

impl EnvelopeId {
    /// The id of `envelope`.
    pub fn of(envelope: &[u8]) -> Self {
        let mut id = [0u8; 32];
        id.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, envelope).as_ref());
        Self(id)
    }
    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// From raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
}

impl std::fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for EnvelopeId {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        let b = s.as_bytes();
        if b.len() != 64 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(crate::Error::Malformed("envelope id"));
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let hex = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
            *o = (hex(pair[0]) << 4) | hex(pair[1]);
        }
        Ok(Self(out))
    }
}

impl Serialize for EnvelopeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EnvelopeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `"ok"`.
    pub status: String,
}

/// `GET …/roster`: every version of the family's roster, oldest first, each the base64 of its
/// wire form (docs/spec/roster.md). Clients verify the chain themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterChain {
    /// Base64 (RFC 4648 §4) roster versions, consecutive, oldest first.
    pub versions: Vec<String>,
    /// Whether later versions exist than the last one here (ask again with `since` = it).
    #[serde(default)]
    pub more: bool,
}

/// Answer to an envelope upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeCreated {
    /// The envelope's id.
    pub id: EnvelopeId,
    /// Its size in bytes.
    pub size: u64,
}

/// One envelope in a listing: routing facts only, never content or metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSummary {
    /// The envelope's id.
    pub id: EnvelopeId,
    /// Size in bytes (already padded by the envelope format).
    pub size: u64,
    /// The verified sender's device id.
    pub sender: String,
    /// The roster version named in the envelope header, as its sender signed it (the server
    /// does not compare it with the stored roster).
    pub roster_version: u64,
    /// When the server stored it (Unix seconds).
    pub received_at: u64,
}

/// A page of envelopes, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopePage {
    /// The envelopes.
    pub items: Vec<EnvelopeSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page. Opaque and bound to
    /// this family's listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Every error answer: a short, generic message. Never names a resource that the caller may
/// not see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong, for a developer.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_id_text_and_json() {
        let id = EnvelopeId::of(b"x");
        let s = id.to_string();
        assert_eq!(s.parse::<EnvelopeId>().unwrap(), id);
        assert!("ABC".parse::<EnvelopeId>().is_err());
        assert!(s.to_uppercase().parse::<EnvelopeId>().is_err());
        let json = serde_json::to_string(&EnvelopeCreated { id, size: 1 }).unwrap();
        assert!(serde_json::from_str::<EnvelopeCreated>(&json).is_ok());
        let extra = json.replace('}', ",\"x\":1}");
        assert!(serde_json::from_str::<EnvelopeCreated>(&extra).is_err());
    }
}
