//! Authentication and authorization, in the order every route applies them:
//!
//! 1. parse the RFC 9421 signature (profile of `toyseal_cloud::signing`) over `Host` as
//!    `@authority`, the raw path and query, and the Content-Digest of the body → else 401;
//! 2. look up the key: the registry is the union of the **current** members of all stored
//!    rosters (for family creation: the roster in the body) → unknown or removed key: 401;
//! 3. verify the Ed25519 signature and the digest → else 401;
//! 4. per-device rate limit → 429;
//! 5. record the nonce in the database (unique per device, shared by all instances) →
//!    replay: 401;
//! 6. the device must be in the current roster of the path's family → else 404, identical to a
//!    family that does not exist;
//! 7. the role (guardian for deletes and roster updates) → 403;
//! 8. the object must belong to that family → else 404.
//!
//! A device removed from family B that is still a member of family A passes 1–5 and gets 404
//! on B's routes; a device removed from its only family is unknown to the registry: 401.

use crate::db::Membership;
use crate::{App, Error};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use toyseal_cloud::{ReceivedRequest, RequestTarget, UnverifiedRequest, VerifiedRequest};
use toyseal_core::{DeviceId, FamilyId, PublicIdentity, Role};

/// An authenticated device and the family it is authorized for.
#[derive(Debug)]
pub(crate) struct Caller {
    pub device: DeviceId,
    pub identity: PublicIdentity,
}

/// Where the key of the signing device comes from.
pub(crate) enum KeySource<'a> {
    /// The registry in the database.
    Registry,
    /// The members of a roster in the request body (family creation).
    Roster(&'a [PublicIdentity]),
}

/// Unix seconds now.
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, Error> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Error::bad(format!("header {name} is not valid visible ASCII/UTF-8"))),
    }
}

/// Steps 1–5: who signed this request.
pub(crate) async fn authenticate(
    app: &App,
    parts: &Parts,
    body: &[u8],
    keys: KeySource<'_>,
) -> Result<Caller, Error> {
    let headers = &parts.headers;
    let authority = match header(headers, "host")? {
        Some(h) => h,
        None => parts.uri.authority().map(|a| a.as_str()).unwrap_or(""),
    };
    let received = ReceivedRequest {
        target: RequestTarget {
            method: parts.method.as_str(),
            authority,
            path: parts.uri.path(),
            query: parts.uri.query(),
        },
        content_digest: header(headers, "content-digest")?,
        signature_input: header(headers, "signature-input")?,
        signature: header(headers, "signature")?,
    };
    let now = now_unix();
    let unverified = UnverifiedRequest::parse(&received, now).map_err(Error::unauthenticated)?;
    let device = unverified.key_id();
    tracing::Span::current().record("device", tracing::field::display(device));
    let identity = match keys {
        KeySource::Registry => {
            let bytes = app
                .db
                .registry_key(&device.to_string())
                .await?
                .ok_or_else(|| Error::unauthenticated("unknown device"))?;
            PublicIdentity::from_bytes(&bytes)
                .map_err(|e| Error::Internal(format!("stored key unreadable: {e}")))?
        }
        KeySource::Roster(members) => members
            .iter()
            .find(|m| m.device_id() == device)
            .cloned()
            .ok_or_else(|| Error::unauthenticated("signer not in the roster"))?,
    };
    let verified = if app.verify_signatures {
        unverified
            .verify(&identity, body)
            .map_err(Error::unauthenticated)?
    } else {
        unverified_for_benchmarks(&received, device, body, now)?
    };
    if !app.limiter.allow(verified.device) {
        return Err(Error::RateLimited);
    }
    let expires = i64::try_from(verified.expires).unwrap_or(i64::MAX);
    if !app
        .db
        .record_nonce(&device.to_string(), &verified.nonce, expires)
        .await?
    {
        return Err(Error::unauthenticated("replayed nonce"));
    }
    Ok(Caller { device, identity })
}

/// The benchmark path (`bench-unverified`): everything but the Ed25519 check — the digest is
/// still compared, and a per-request unique value stands in for the nonce so that the database
/// work is the same as in the verified path.
fn unverified_for_benchmarks(
    received: &ReceivedRequest<'_>,
    device: DeviceId,
    body: &[u8],
    now: u64,
) -> Result<VerifiedRequest, Error> {
    if received.content_digest.map(str::trim) != Some(toyseal_cloud::content_digest(body).as_str())
    {
        return Err(Error::unauthenticated("digest"));
    }
    let sig = received.signature.unwrap_or("");
    let h = ring_like_hash(sig.as_bytes());
    Ok(VerifiedRequest {
        device,
        nonce: h,
        expires: now + toyseal_cloud::signing::MAX_VALIDITY_SECS,
    })
}

fn ring_like_hash(b: &[u8]) -> String {
    // The signature bytes are unique per request; their id-hash is a fine stand-in nonce.
    toyseal_cloud::api::EnvelopeId::of(b).to_string()
}

/// Step 6 (and 7 when `guardian_only`): the caller's current membership in `family`.
pub(crate) async fn authorize(
    app: &App,
    caller: &Caller,
    family: FamilyId,
    guardian_only: bool,
) -> Result<Membership, Error> {
    let m = app
        .db
        .membership(&family.to_string(), &caller.device.to_string())
        .await?
        .ok_or(Error::NotFound)?;
    if m.public_key != caller.identity.to_bytes() {
        return Err(Error::NotFound);
    }
    if guardian_only && m.role != Role::Guardian.as_str() {
        return Err(Error::Forbidden(
            "this action needs a guardian of the family",
        ));
    }
    Ok(m)
}
