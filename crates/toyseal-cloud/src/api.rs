//! The HTTP API (docs/spec/signed-requests.md §API): the endpoints ([`Endpoint`]: method, path
//! template, access rule), path builders, JSON bodies, limits. Shared by the client and the
//! reference server so they cannot drift; the server's tests check `openapi.json` against
//! [`Endpoint::ALL`]. JSON answers reject unknown fields.
//!
//! | method | path | body | auth | answer |
//! |---|---|---|---|---|
//! | GET | `/v1/health` | — | none | 200 [`Health`] (with the [`ServerLimits`]) |
//! | GET | `/openapi.json` | — | none | 200 OpenAPI 3.1 |
//! | POST | `/v1/families/{family}` | roster v1 (octet-stream) | a guardian in it | 201 |
//! | GET | `/v1/families/{family}/roster?since=` | — | member | 200 [`RosterChain`] (≤ [`MAX_ROSTER_PAGE`] versions after `since`) |
//! | POST | `/v1/families/{family}/roster` | next roster version | guardian | 200 [`RosterChain`] (the new version) |
//! | DELETE | `/v1/families/{family}` | family deletion statement (roster.md §5) | guardian, with a quorum in the body | 204 |
//! | POST | `/v1/families/{family}/envelopes` | envelope (octet-stream) | member = sender | 201 / 200 [`EnvelopeCreated`] |
//! | GET | `/v1/families/{family}/envelopes?cursor=&limit=` | — | member | 200 [`EnvelopePage`] |
//! | GET | `/v1/families/{family}/envelopes/{id}` | — | member | 200 octet-stream |
//! | DELETE | `/v1/families/{family}/envelopes/{id}` | — | its sender: erased, 204; another guardian: soft-deleted, 202 [`PendingDeletion`] | 204 / 202 |
//! | GET | `/v1/families/{family}/deletions?cursor=&limit=` | — | guardian | 200 [`DeletionPage`] |
//! | POST | `/v1/families/{family}/envelopes/{id}/restore` | — | guardian | 204 |
//! | POST | `/v1/families/{family}/erasures` | envelope erasure statement (roster.md §5.1) | guardian, with a quorum in the body | 204 |
//!
//! Anything not authorized for the authenticated device (other family, unknown id) is a 404
//! indistinguishable from "does not exist"; a device in the family without the role gets 403;
//! no or bad signature gets a generic 401. Every error answer is a [`Problem`] (RFC 9457).

use serde::{Deserialize, Serialize};
use toyseal_core::FamilyId;

/// Most envelopes in one page.
pub const MAX_PAGE: u32 = 100;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: u32 = 50;
/// Most roster versions in one `GET …/roster` answer: a fetch is bounded whatever the chain's
/// length (a client pages with `since`).
pub const MAX_ROSTER_PAGE: u64 = 64;

/// Who may call an endpoint (docs/spec/signed-requests.md §Authorization).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Anyone (no signature).
    Public,
    /// A guardian member of the roster in the body (family creation: the founding request is
    /// signed by a key the body's roster lists).
    FoundingGuardian,
    /// Any current member of the path's family.
    Member,
    /// A current guardian of the path's family.
    Guardian,
}

/// Every operation of the API. This one definition is what the client's path builders expand,
/// what the reference server builds its router and authorization from
/// (`toyseal_server::router`), and what the server's tests compare `openapi.json` with (each
/// documented operation is exactly one of these: method, path template, `operationId`,
/// security).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /v1/health`.
    Health,
    /// `GET /openapi.json`.
    OpenApi,
    /// `POST /v1/families/{family}`: create the family from its roster version 1.
    CreateFamily,
    /// `DELETE /v1/families/{family}`: erase the family (a quorum-signed statement).
    DeleteFamily,
    /// `GET /v1/families/{family}/roster?since=`.
    GetRoster,
    /// `POST /v1/families/{family}/roster`: append the next roster version.
    UpdateRoster,
    /// `POST /v1/families/{family}/envelopes`.
    UploadEnvelope,
    /// `GET /v1/families/{family}/envelopes?cursor=&limit=`.
    ListEnvelopes,
    /// `GET /v1/families/{family}/envelopes/{id}`.
    GetEnvelope,
    /// `DELETE /v1/families/{family}/envelopes/{id}`: its sender erases it at once; a
    /// guardian deletes another device's envelope softly (hidden, restorable, erased after the
    /// server's period; THREATS T36).
    DeleteEnvelope,
    /// `GET /v1/families/{family}/deletions?cursor=&limit=`: the pending soft deletions.
    ListDeletions,
    /// `POST /v1/families/{family}/envelopes/{id}/restore`: undo a soft deletion.
    RestoreEnvelope,
    /// `POST /v1/families/{family}/erasures`: erase envelopes at once (a quorum-signed
    /// statement, roster.md §5.1).
    EraseEnvelopes,
}

/// Path template of a family (axum and OpenAPI syntax).
const FAMILY: &str = "/v1/families/{family}";
/// Path template of a family's roster.
const ROSTER: &str = "/v1/families/{family}/roster";
/// Path template of a family's envelope collection.
const ENVELOPES: &str = "/v1/families/{family}/envelopes";
/// Path template of one envelope.
const ENVELOPE: &str = "/v1/families/{family}/envelopes/{id}";
/// Path template of a family's pending soft deletions.
const DELETIONS: &str = "/v1/families/{family}/deletions";
/// Path template of the restore action on one envelope.
const RESTORE: &str = "/v1/families/{family}/envelopes/{id}/restore";
/// Path template of a family's erasures.
const ERASURES: &str = "/v1/families/{family}/erasures";

impl Endpoint {
    /// Every endpoint, in the order of the spec's table.
    pub const ALL: [Endpoint; 13] = [
        Endpoint::Health,
        Endpoint::OpenApi,
        Endpoint::CreateFamily,
        Endpoint::DeleteFamily,
        Endpoint::GetRoster,
        Endpoint::UpdateRoster,
        Endpoint::UploadEnvelope,
        Endpoint::ListEnvelopes,
        Endpoint::GetEnvelope,
        Endpoint::DeleteEnvelope,
        Endpoint::ListDeletions,
        Endpoint::RestoreEnvelope,
        Endpoint::EraseEnvelopes,
    ];

    /// The HTTP method.
    pub fn method(self) -> http::Method {
        use http::Method;
        match self {
            Endpoint::Health
            | Endpoint::OpenApi
            | Endpoint::GetRoster
            | Endpoint::ListEnvelopes
            | Endpoint::GetEnvelope
            | Endpoint::ListDeletions => Method::GET,
            Endpoint::CreateFamily
            | Endpoint::UpdateRoster
            | Endpoint::UploadEnvelope
            | Endpoint::RestoreEnvelope
            | Endpoint::EraseEnvelopes => Method::POST,
            Endpoint::DeleteFamily | Endpoint::DeleteEnvelope => Method::DELETE,
        }
    }

    /// The path template: `{family}` is a [`FamilyId`], `{id}` an [`EnvelopeId`], both in
    /// lower-case hex.
    pub fn template(self) -> &'static str {
        match self {
            Endpoint::Health => "/v1/health",
            Endpoint::OpenApi => "/openapi.json",
            Endpoint::CreateFamily | Endpoint::DeleteFamily => FAMILY,
            Endpoint::GetRoster | Endpoint::UpdateRoster => ROSTER,
            Endpoint::UploadEnvelope | Endpoint::ListEnvelopes => ENVELOPES,
            Endpoint::GetEnvelope | Endpoint::DeleteEnvelope => ENVELOPE,
            Endpoint::ListDeletions => DELETIONS,
            Endpoint::RestoreEnvelope => RESTORE,
            Endpoint::EraseEnvelopes => ERASURES,
        }
    }

    /// Who may call it.
    pub fn access(self) -> Access {
        match self {
            Endpoint::Health | Endpoint::OpenApi => Access::Public,
            Endpoint::CreateFamily => Access::FoundingGuardian,
            Endpoint::GetRoster
            | Endpoint::UploadEnvelope
            | Endpoint::ListEnvelopes
            | Endpoint::GetEnvelope
            // Its sender erases its own; deleting another device's needs a guardian (the
            // handler checks which, T36).
            | Endpoint::DeleteEnvelope => Access::Member,
            Endpoint::DeleteFamily
            | Endpoint::UpdateRoster
            | Endpoint::ListDeletions
            | Endpoint::RestoreEnvelope
            | Endpoint::EraseEnvelopes => Access::Guardian,
        }
    }

    /// The operation's `operationId` in `openapi.json`.
    pub fn operation_id(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::OpenApi => "openapi",
            Endpoint::CreateFamily => "createFamily",
            Endpoint::DeleteFamily => "deleteFamily",
            Endpoint::GetRoster => "getRoster",
            Endpoint::UpdateRoster => "updateRoster",
            Endpoint::UploadEnvelope => "uploadEnvelope",
            Endpoint::ListEnvelopes => "listEnvelopes",
            Endpoint::GetEnvelope => "getEnvelope",
            Endpoint::DeleteEnvelope => "deleteEnvelope",
            Endpoint::ListDeletions => "listDeletions",
            Endpoint::RestoreEnvelope => "restoreEnvelope",
            Endpoint::EraseEnvelopes => "eraseEnvelopes",
        }
    }

    /// The endpoint that serves `method` on `path` (no query), with the ids in the path: what
    /// a server routes by and a proxy or auditor can classify with. Ids must be lower-case
    /// hex, as the builders below write them.
    pub fn recognize(method: &http::Method, path: &str) -> Option<(Endpoint, PathIds)> {
        let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let family = |s: &str| parse_family(s).ok();
        let (template, ids) = match segs.as_slice() {
            ["v1", "health"] => (Endpoint::Health.template(), PathIds::default()),
            ["openapi.json"] => (Endpoint::OpenApi.template(), PathIds::default()),
            ["v1", "families", f] => (FAMILY, PathIds::family(family(f)?)),
            ["v1", "families", f, "roster"] => (ROSTER, PathIds::family(family(f)?)),
            ["v1", "families", f, "envelopes"] => (ENVELOPES, PathIds::family(family(f)?)),
            ["v1", "families", f, "envelopes", id] => (
                ENVELOPE,
                PathIds {
                    family: Some(family(f)?),
                    id: Some(id.parse().ok()?),
                },
            ),
            ["v1", "families", f, "envelopes", id, "restore"] => (
                RESTORE,
                PathIds {
                    family: Some(family(f)?),
                    id: Some(id.parse().ok()?),
                },
            ),
            ["v1", "families", f, "deletions"] => (DELETIONS, PathIds::family(family(f)?)),
            ["v1", "families", f, "erasures"] => (ERASURES, PathIds::family(family(f)?)),
            _ => return None,
        };
        Endpoint::ALL
            .into_iter()
            .find(|e| e.template() == template && e.method() == method)
            .map(|e| (e, ids))
    }
}

/// The ids a concrete path carries (which are present depends on the template).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathIds {
    /// `{family}`.
    pub family: Option<FamilyId>,
    /// `{id}`.
    pub id: Option<EnvelopeId>,
}

impl PathIds {
    fn family(family: FamilyId) -> Self {
        Self {
            family: Some(family),
            id: None,
        }
    }
}

/// Expands a template's `{family}` and `{id}`.
fn expand(template: &str, family: FamilyId, id: Option<&EnvelopeId>) -> String {
    let path = template.replace("{family}", &family.to_string());
    match id {
        Some(id) => path.replace("{id}", &id.to_string()),
        None => path,
    }
}

/// Path of a family ([`Endpoint::CreateFamily`], [`Endpoint::DeleteFamily`]).
pub fn family_path(family: FamilyId) -> String {
    expand(FAMILY, family, None)
}
/// Path of a family's roster ([`Endpoint::GetRoster`], [`Endpoint::UpdateRoster`]).
pub fn roster_path(family: FamilyId) -> String {
    expand(ROSTER, family, None)
}
/// Path of a family's envelope collection ([`Endpoint::UploadEnvelope`],
/// [`Endpoint::ListEnvelopes`]).
pub fn envelopes_path(family: FamilyId) -> String {
    expand(ENVELOPES, family, None)
}
/// Path of one envelope ([`Endpoint::GetEnvelope`], [`Endpoint::DeleteEnvelope`]).
pub fn envelope_path(family: FamilyId, id: &EnvelopeId) -> String {
    expand(ENVELOPE, family, Some(id))
}

/// Path of a family's pending soft deletions ([`Endpoint::ListDeletions`]).
pub fn deletions_path(family: FamilyId) -> String {
    expand(DELETIONS, family, None)
}
/// Path of the restore action on one envelope ([`Endpoint::RestoreEnvelope`]).
pub fn restore_path(family: FamilyId, id: &EnvelopeId) -> String {
    expand(RESTORE, family, Some(id))
}
/// Path of a family's erasures ([`Endpoint::EraseEnvelopes`]).
pub fn erasures_path(family: FamilyId) -> String {
    expand(ERASURES, family, None)
}

/// A family id in a path: exactly 32 lower-case hex digits (one spelling per family, so a
/// path, a log line and a database key agree).
fn parse_family(s: &str) -> Result<FamilyId, crate::Error> {
    let lower_hex = s.len() == 32 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex {
        return Err(crate::Error::Malformed("family id"));
    }
    s.parse().map_err(|_| crate::Error::Malformed("family id"))
}

/// Path parameters of the `/v1/families/{family}…` endpoints without an envelope id: what the
/// server's typed path extractor deserializes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyPathParams {
    /// `{family}`.
    #[serde(deserialize_with = "de_family")]
    pub family: FamilyId,
}

/// Path parameters of `/v1/families/{family}/envelopes/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopePathParams {
    /// `{family}`.
    #[serde(deserialize_with = "de_family")]
    pub family: FamilyId,
    /// `{id}`.
    pub id: EnvelopeId,
}

fn de_family<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FamilyId, D::Error> {
    let s = std::borrow::Cow::<str>::deserialize(d)?;
    parse_family(&s).map_err(serde::de::Error::custom)
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

/// `GET /v1/health`: liveness, and the limits a client checks before it sends
/// (docs/spec/signed-requests.md §Limits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `"ok"`.
    pub status: String,
    /// The server's limits.
    pub limits: ServerLimits,
}

/// The limits a server enforces, advertised by `GET /v1/health` so a client refuses an
/// oversized request before sending a byte of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLimits {
    /// Largest request body in bytes (an envelope upload, a roster version, a deletion
    /// statement); a larger `Content-Length` is answered 413 before the body is read.
    pub max_body_bytes: u64,
    /// Seconds the server allows for a whole request, body included (408 beyond).
    pub request_timeout_secs: u64,
}

/// The media type of every error answer (RFC 9457 §3).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The prefix of every [`Problem::kind`] URI: `type` is this followed by the [`ProblemKind`]
/// slug (`tag:` URI, RFC 4151; RFC 9457 §3.1.1 allows a type URI that does not resolve).
pub const PROBLEM_TYPE_PREFIX: &str = "tag:toyseal.invalid,2026:problem:";

/// Every error answer, as RFC 9457 problem details (`application/problem+json`).
///
/// `detail` says why, for a person; it never names a resource the caller may not see (401,
/// 404 and 5xx details are generic: T01, T07, T62). Extension members carry the limit or the
/// rule that refused, where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// [`PROBLEM_TYPE_PREFIX`] + slug (RFC 9457 §3.1.1).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, fixed summary of the kind (RFC 9457 §3.1.3).
    pub title: String,
    /// The HTTP status code (RFC 9457 §3.1.2).
    pub status: u16,
    /// Why this request was refused, for a person (RFC 9457 §3.1.4).
    pub detail: String,
    /// The server's id of this request, as it appears in the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The limit that refused the request (bytes for `too-large`, requests per second for
    /// `rate-limited`, seconds for `timeout`, soft deletions per 24 hours for
    /// `deletion-limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// For `removed`: the roster version that removed the requesting device. Only told to a
    /// requester whose signature verifies under the removed device's own key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at_version: Option<u64>,
}

impl Problem {
    /// The kind, if `type` is one of this API's.
    pub fn kind(&self) -> Option<ProblemKind> {
        let slug = self.kind.strip_prefix(PROBLEM_TYPE_PREFIX)?;
        ProblemKind::ALL.iter().copied().find(|k| k.slug() == slug)
    }
}

/// The kinds of refusal, each one problem `type` (docs/spec/signed-requests.md §Errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// 401: no, bad, stale or replayed signature, or an unknown key (generic detail).
    Unauthenticated,
    /// 401: the signature verifies under a key the family's roster removed.
    Removed,
    /// 403: the device is in the family but the rule refuses (role, sender ≠ signer).
    Forbidden,
    /// 404: does not exist for this caller.
    NotFound,
    /// 400: malformed request; the detail says how.
    BadRequest,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: conflicts with stored state (family exists, roster raced).
    Conflict,
    /// 409: the envelope breaks its sender's chain (docs/spec/envelope.md §11.4): sequence 0, a
    /// sequence the sender already used for another envelope, or a `previous` that is not the
    /// header hash of the sender's stored envelope with the next lower sequence.
    SenderChain,
    /// 409: a roster version this family already holds, with another hash: a fork (a change
    /// made without the family, docs/spec/roster.md §3.6). Shown to the user, never adopted.
    RosterFork,
    /// 410: the family was deleted.
    Gone,
    /// 413: the body exceeds `limit` bytes.
    TooLarge,
    /// 429: too many requests; `Retry-After` says when.
    RateLimited,
    /// 408: the request took longer than `limit` seconds.
    Timeout,
    /// 431: the request head is too large.
    HeadersTooLarge,
    /// 503: storage unavailable; retry later.
    Unavailable,
    /// 429: the device made its day's soft deletions of others' envelopes (`limit` of them
    /// in 24 hours); an erasure statement signed by a quorum (roster.md §5.1) is the way past
    /// it, waiting is the other. Not retried by clients.
    DeletionLimit,
    /// 500: the server failed.
    Internal,
}

impl ProblemKind {
    /// Every kind.
    pub const ALL: [ProblemKind; 17] = [
        Self::Unauthenticated,
        Self::Removed,
        Self::Forbidden,
        Self::NotFound,
        Self::BadRequest,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::SenderChain,
        Self::Gone,
        Self::TooLarge,
        Self::RateLimited,
        Self::Timeout,
        Self::HeadersTooLarge,
        Self::Unavailable,
        Self::Internal,
        Self::DeletionLimit,
        Self::RosterFork,
    ];

    /// The slug after [`PROBLEM_TYPE_PREFIX`].
    pub const fn slug(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Removed => "removed",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::BadRequest => "bad-request",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::SenderChain => "sender-chain",
            Self::RosterFork => "roster-fork",
            Self::Gone => "gone",
            Self::TooLarge => "too-large",
            Self::RateLimited => "rate-limited",
            Self::Timeout => "timeout",
            Self::HeadersTooLarge => "headers-too-large",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::DeletionLimit => "deletion-limit",
        }
    }

    /// The `title` (RFC 9457 §3.1.3): fixed per kind.
    pub const fn title(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Removed => "device removed from this family",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not found",
            Self::BadRequest => "bad request",
            Self::MethodNotAllowed => "method not allowed",
            Self::Conflict => "conflict",
            Self::SenderChain => "the envelope breaks its sender's chain",
            Self::RosterFork => "the family's roster forked",
            Self::Gone => "family deleted",
            Self::TooLarge => "request body too large",
            Self::RateLimited => "too many requests",
            Self::Timeout => "request timeout",
            Self::HeadersTooLarge => "request header fields too large",
            Self::Unavailable => "service unavailable, retry later",
            Self::Internal => "internal error",
            Self::DeletionLimit => "daily soft-deletion limit reached",
        }
    }

    /// The `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.slug())
    }
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
    /// The sender's signed sequence number (docs/spec/envelope.md §11); 0 for an envelope
    /// stored before the server tracked sender chains.
    #[serde(default)]
    pub sequence: u64,
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

/// One pending soft deletion: hidden from listings and downloads, restorable by any guardian
/// until `erase_at`, when the server erases it (THREATS T36).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingDeletion {
    /// The envelope's id.
    pub id: EnvelopeId,
    /// The envelope's sender (device id).
    pub sender: String,
    /// The guardian that deleted it (device id).
    pub deleted_by: String,
    /// When (Unix seconds).
    pub deleted_at: u64,
    /// When the server erases it unless a guardian restores it first (Unix seconds).
    pub erase_at: u64,
}

/// A page of pending soft deletions, in the envelopes' upload order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionPage {
    /// The pending deletions.
    pub items: Vec<PendingDeletion>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path every client builder writes is recognized as its endpoint with the same ids,
    /// for every endpoint of the table; other spellings are not.
    #[test]
    fn builders_and_recognizer_agree_on_every_endpoint() {
        let family = FamilyId::from_bytes([0xab; 16]);
        let id = EnvelopeId::of(b"x");
        let mut seen = 0;
        for e in Endpoint::ALL {
            let path = match e {
                Endpoint::Health | Endpoint::OpenApi => e.template().to_owned(),
                Endpoint::CreateFamily | Endpoint::DeleteFamily => family_path(family),
                Endpoint::GetRoster | Endpoint::UpdateRoster => roster_path(family),
                Endpoint::UploadEnvelope | Endpoint::ListEnvelopes => envelopes_path(family),
                Endpoint::GetEnvelope | Endpoint::DeleteEnvelope => envelope_path(family, &id),
                Endpoint::ListDeletions => deletions_path(family),
                Endpoint::RestoreEnvelope => restore_path(family, &id),
                Endpoint::EraseEnvelopes => erasures_path(family),
            };
            let (got, ids) = Endpoint::recognize(&e.method(), &path).unwrap();
            assert_eq!(got, e, "{path}");
            let expected_family = e.template().contains("{family}").then_some(family);
            let expected_id = e.template().contains("{id}").then_some(id);
            assert_eq!(
                ids,
                PathIds {
                    family: expected_family,
                    id: expected_id
                }
            );
            // Each template has exactly the placeholders the builder filled.
            assert!(!path.contains('{'), "{path}");
            seen += 1;
        }
        assert_eq!(seen, 13);
        // (method, template) pairs are unique.
        for a in Endpoint::ALL {
            let twins = Endpoint::ALL
                .iter()
                .filter(|b| b.method() == a.method() && b.template() == a.template())
                .count();
            assert_eq!(twins, 1, "{a:?}");
        }
        let upper = family_path(family)
            .to_uppercase()
            .replace("/V1/FAMILIES", "/v1/families");
        assert!(Endpoint::recognize(&http::Method::POST, &upper).is_none());
        assert!(Endpoint::recognize(&http::Method::PUT, &family_path(family)).is_none());
        assert!(Endpoint::recognize(&http::Method::GET, "/v1/families").is_none());
        assert!(
            Endpoint::recognize(&http::Method::GET, &format!("{}/", roster_path(family))).is_none()
        );
    }

    #[test]
    fn path_params_deserialize_strictly() {
        let ok: EnvelopePathParams = serde_json::from_str(&format!(
            "{{\"family\":\"{}\",\"id\":\"{}\"}}",
            "ab".repeat(16),
            EnvelopeId::of(b"x")
        ))
        .unwrap();
        assert_eq!(ok.family, FamilyId::from_bytes([0xab; 16]));
        for bad in ["AB".repeat(16), "ab".repeat(15), "zz".repeat(16)] {
            let json = format!("{{\"family\":\"{bad}\"}}");
            assert!(
                serde_json::from_str::<FamilyPathParams>(&json).is_err(),
                "{bad}"
            );
        }
    }

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
