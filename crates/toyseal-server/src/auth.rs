//! Authentication and authorization, in the order every signed route applies them:
//!
//! 0. the gate, before the body is read ([`signed_request_gate`]): exactly one `Host`,
//!    `Content-Digest`, `Signature-Input` and `Signature` line (more → 400), a `Host` (none →
//!    400, RFC 9112 §3.2), an `@authority` that is one of this server's public names (else
//!    401), signature headers that parse and are fresh (else 401), and on registry routes a
//!    `keyid` the registry knows (else 401), so nobody without a key makes it read a body;
//! 1. parse the RFC 9421 signature (profile of `toyseal_cloud::signing`) over `Host` as
//!    `@authority`, the raw path and query, and the Content-Digest of the body → else 401;
//! 2. look up the key: the registry is the union of the **current** members of all stored
//!    rosters → unknown or removed key: 401. For family creation the key is that of a member
//!    listed in the roster in the body, looked up only after the body matched the signed
//!    digest; a body that is no roster is the same generic 401;
//! 3. verify the Ed25519 signature and the digest → else 401;
//! 4. per-device rate limit → 429;
//! 5. record the nonce in the database (unique per device, shared by all instances) →
//!    replay: 401;
//! 6. the device must be in the current roster of the path's family → else 404, identical to a
//!    family that does not exist;
//! 7. the role the route's [`Access`] rule names (guardian for deletes and roster updates) →
//!    403;
//! 8. the object must belong to that family → else 404.
//!
//! A device removed from family B that is still a member of family A passes 1–5 and gets 401
//! `removed` (with the roster version) on B's routes; a device removed from its only family is
//! unknown to the registry, but when its request verifies under the removed key it gets the
//! same 401 `removed` (decided before the body is read, its nonce spent). A key in no roster
//! at all gets the generic 401.

use crate::db::Membership;
use crate::routes::route_of;
use crate::{App, Error};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use toyseal_cloud::api::{Access, Endpoint};
use toyseal_cloud::{ReceivedRequest, RequestTarget, UnverifiedRequest};
use toyseal_core::{DeviceId, FamilyId, PublicIdentity, Role};
use toyseal_roster::SignedRoster;

/// An authenticated device and the family it is authorized for.
#[derive(Debug)]
pub(crate) struct Caller {
    pub device: DeviceId,
    pub identity: PublicIdentity,
}

/// Where the key of the signing device comes from.
pub(crate) enum KeySource {
    /// The registry in the database.
    Registry,
    /// The members of the founding roster in the request body (family creation).
    FoundingRoster,
    /// The registry; for a device it does not know, the **guardians** of the roster version in
    /// the request body (a roster update by a phone that version adds: the recovery of a family
    /// that lost its only phone, docs/spec/signed-requests.md §6). The route then accepts the
    /// body only if it verifies as the family's next version (a quorum of the current one).
    RegistryOrNextRoster,
}

/// The headers a signed request carries exactly once (RFC 9112 §3.2 for `Host`; for the
/// others a second line would be a parser differential with any proxy that takes the last).
const SINGLE_LINE: [&str; 4] = ["host", "content-digest", "signature-input", "signature"];

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

/// The request's authority: `Host`, or the target's authority (absolute-form); neither is a
/// 400 (RFC 9112 §3.2).
fn authority(parts: &Parts) -> Result<&str, Error> {
    match header(&parts.headers, "host")? {
        Some(h) => Ok(h),
        None => parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .ok_or_else(|| Error::bad("missing Host header")),
    }
}

/// RFC 9112 §3.2.2: in absolute-form (`GET http://name/v1/…`) the target's authority wins over
/// `Host`. A request whose two authorities differ, or whose target names a server this one is
/// not, is refused (400) rather than served under one of them.
fn absolute_form(parts: &Parts, accepted: &[String]) -> Result<(), Error> {
    let Some(target) = parts.uri.authority() else {
        return Ok(());
    };
    let target = target.as_str().to_ascii_lowercase();
    let host = header(&parts.headers, "host")?.map(str::to_ascii_lowercase);
    if host.as_deref() == Some(target.as_str()) && accepted.contains(&target) {
        Ok(())
    } else {
        Err(Error::bad(
            "an absolute-form target must name this server, as the Host header does",
        ))
    }
}

/// The signed components and headers as received.
fn received(parts: &Parts) -> Result<ReceivedRequest<'_>, Error> {
    let headers = &parts.headers;
    for name in SINGLE_LINE {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(Error::bad(format!("more than one {name} header")));
        }
    }
    Ok(ReceivedRequest {
        target: RequestTarget {
            method: parts.method.as_str(),
            authority: authority(parts)?,
            path: parts.uri.path(),
            query: parts.uri.query(),
        },
        content_digest: header(headers, "content-digest")?,
        signature_input: header(headers, "signature-input")?,
        signature: header(headers, "signature")?,
    })
}

/// Step 0, before the handler reads the body: single header lines and `Host` (400), an
/// authority this server answers to and parseable, fresh signature headers (401). An unsigned
/// or mis-addressed request is refused without reading its body.
pub(crate) async fn signed_request_gate(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    match check_before_body(&app, &parts).await {
        Ok(Some(key)) => {
            parts.extensions.insert(key);
        }
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A registry key the gate looked up for the request's `keyid` (so that the handler's
/// authentication does not query it again).
#[derive(Clone, Debug)]
struct RegisteredKey(PublicIdentity);

async fn check_before_body(app: &App, parts: &Parts) -> Result<Option<RegisteredKey>, Error> {
    let received = received(parts)?;
    absolute_form(parts, &app.authorities())?;
    let authority = received.target.authority.to_ascii_lowercase();
    if !app.authorities().contains(&authority) {
        return Err(Error::unauthenticated("signed for another authority"));
    }
    let unverified =
        UnverifiedRequest::parse(&received, now_unix()).map_err(Error::unauthenticated)?;
    // Routes whose key is in the registry: an unknown key is refused before its body is read
    // (T63: nobody without a registered key makes the server buffer a large body). Family
    // creation finds its key in the body, so it can only be checked after.
    // A roster update is the exception among registry routes: a phone the new version makes a
    // guardian (a family's recovery) is not registered yet, so its key is found in the body;
    // that body is bounded by the roster limit (64 KiB) before it is read.
    let endpoint = route_of(parts)?;
    match endpoint.access() {
        Access::Member | Access::Guardian => {
            match app.db.registry_key(unverified.key_id()).await? {
                Some(bytes) => Ok(Some(RegisteredKey(stored_key(&bytes)?))),
                None => match removed_or_unknown(app, unverified, &received).await? {
                    Error::Unauthenticated(_) if endpoint == Endpoint::UpdateRoster => Ok(None),
                    refusal => Err(refusal),
                },
            }
        }
        _ => Ok(None),
    }
}

/// A key in no current roster: [`Error::Removed`] if the request's signature verifies under a
/// key some roster removed (its holder learns the version that removed it; the nonce is spent
/// so that a captured request replayed tells nobody else), else the generic 401. Decided before
/// the body is read: the signature covers the `Content-Digest` header, so it is verified
/// against the digest the request claims, and the body is never looked at.
async fn removed_or_unknown(
    app: &App,
    unverified: UnverifiedRequest,
    received: &ReceivedRequest<'_>,
) -> Result<Error, Error> {
    let unknown = || Error::unauthenticated("unknown device");
    let Some((bytes, version)) = app.db.removed_key(unverified.key_id()).await? else {
        return Ok(unknown());
    };
    let key = stored_key(&bytes)?;
    let Some(claimed) = received.content_digest.and_then(claimed_sha256) else {
        return Ok(unknown());
    };
    let Ok(verified) = unverified.verify_with_body_digest(&key, &claimed) else {
        return Ok(Error::unauthenticated(
            "unknown device (a removed key, bad signature)",
        ));
    };
    if !app
        .db
        .record_nonce(verified.device(), verified.nonce(), verified.expires())
        .await?
    {
        return Ok(Error::unauthenticated("replayed nonce"));
    }
    Ok(Error::Removed { version })
}

/// The SHA-256 a `Content-Digest: sha-256=:…:` value claims (already checked to parse by
/// [`UnverifiedRequest::parse`]).
fn claimed_sha256(value: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let b64 = value.trim().strip_prefix("sha-256=:")?.strip_suffix(':')?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn stored_key(bytes: &[u8]) -> Result<PublicIdentity, Error> {
    PublicIdentity::from_bytes(bytes)
        .map_err(|e| Error::Internal(format!("stored key unreadable: {e}")))
}

/// The registered key of `device`; an unknown device is a 401.
async fn registry_key(app: &App, device: DeviceId) -> Result<PublicIdentity, Error> {
    let bytes = app
        .db
        .registry_key(device)
        .await?
        .ok_or_else(|| Error::unauthenticated("unknown device"))?;
    stored_key(&bytes)
}

/// Steps 1–5: who signed this request.
pub(crate) async fn authenticate(
    app: &App,
    parts: &Parts,
    body: &[u8],
    keys: KeySource,
) -> Result<Caller, Error> {
    let received = received(parts)?;
    let now = now_unix();
    let unverified = UnverifiedRequest::parse(&received, now).map_err(Error::unauthenticated)?;
    let device = unverified.key_id();
    tracing::Span::current().record("device", tracing::field::display(device));
    let identity = match keys {
        KeySource::Registry => match parts.extensions.get::<RegisteredKey>() {
            Some(RegisteredKey(key)) if key.device_id() == device => key.clone(),
            _ => registry_key(app, device).await?,
        },
        KeySource::FoundingRoster => {
            // The body is looked at only once it is the one that was signed, and what is wrong
            // with it stays in the log until the signature verified.
            unverified
                .check_body(body)
                .map_err(Error::unauthenticated)?;
            let roster = SignedRoster::decode(body)
                .map_err(|e| Error::unauthenticated(format!("founding body: {e}")))?;
            roster
                .proposal()
                .members()
                .iter()
                .find(|m| m.device_id() == device)
                .cloned()
                .ok_or_else(|| Error::unauthenticated("signer not in the roster"))?
        }
        KeySource::RegistryOrNextRoster => match app.db.registry_key(device).await? {
            Some(bytes) => stored_key(&bytes)?,
            None => {
                unverified
                    .check_body(body)
                    .map_err(Error::unauthenticated)?;
                let roster = SignedRoster::decode(body)
                    .map_err(|e| Error::unauthenticated(format!("roster body: {e}")))?;
                roster
                    .proposal()
                    .members()
                    .iter()
                    .find(|m| m.device_id() == device && m.role() == Role::Guardian)
                    .cloned()
                    .ok_or_else(|| Error::unauthenticated("unknown device"))?
            }
        },
    };
    let (nonce, expires) = if app.verify_signatures {
        let verified = unverified
            .verify(&identity, body)
            .map_err(Error::unauthenticated)?;
        (verified.nonce().to_owned(), verified.expires())
    } else {
        unverified_for_benchmarks(&received, body, now)?
    };
    if !app.limiter.allow(device) {
        return Err(Error::RateLimited {
            scope: "device",
            per_sec: app.limiter.per_sec(),
        });
    }
    if !app.db.record_nonce(device, &nonce, expires).await? {
        return Err(Error::unauthenticated("replayed nonce"));
    }
    Ok(Caller { device, identity })
}

/// The benchmark path (`bench-unverified`): everything but the Ed25519 check — the digest is
/// still compared, and a per-request unique value stands in for the nonce so that the database
/// work is the same as in the verified path. Returns (nonce, expires).
fn unverified_for_benchmarks(
    received: &ReceivedRequest<'_>,
    body: &[u8],
    now: u64,
) -> Result<(String, u64), Error> {
    if received.content_digest.map(str::trim) != Some(toyseal_cloud::content_digest(body).as_str())
    {
        return Err(Error::unauthenticated("digest"));
    }
    // The signature bytes are unique per request; their hash is a fine stand-in nonce.
    let sig = received.signature.unwrap_or("");
    let nonce = toyseal_cloud::api::EnvelopeId::of(sig.as_bytes()).to_string();
    Ok((nonce, now + toyseal_cloud::signing::MAX_VALIDITY_SECS))
}

/// Steps 6–7 for the route the request was routed to: the caller's current membership in
/// `family`, with the role the route's [`Access`] rule names.
pub(crate) async fn authorize(
    app: &App,
    caller: &Caller,
    family: FamilyId,
    parts: &Parts,
) -> Result<Membership, Error> {
    let needs_guardian = match route_of(parts)?.access() {
        Access::Member => false,
        Access::Guardian => true,
        _ => {
            return Err(Error::Internal(
                "membership asked for on a route without a membership rule".into(),
            ));
        }
    };
    let Some(m) = app.db.membership(family, caller.device).await? else {
        // The signature verified: a device this family's roster removed (same key) learns
        // that it was removed, and at which version; anyone else gets the 404 of a family
        // that does not exist.
        return Err(
            match app
                .db
                .removed_from(family, caller.device, &caller.identity.to_bytes())
                .await?
            {
                Some(version) => Error::Removed { version },
                None => Error::NotFound,
            },
        );
    };
    if m.public_key != caller.identity.to_bytes() {
        return Err(Error::NotFound);
    }
    if needs_guardian && m.role != Role::Guardian {
        return Err(Error::Forbidden(
            "this action needs a guardian of the family",
        ));
    }
    Ok(m)
}

/// Step 7 for family creation ([`Access::FoundingGuardian`]): the signer, a member of the
/// founding roster, must be one of its guardians.
pub(crate) fn authorize_founder(caller: &Caller, parts: &Parts) -> Result<(), Error> {
    match route_of(parts)?.access() {
        Access::FoundingGuardian if caller.identity.role() == Role::Guardian => Ok(()),
        Access::FoundingGuardian => Err(Error::Forbidden(
            "a family is created by a guardian in its roster",
        )),
        _ => Err(Error::Internal(
            "founder check on a route that is not family creation".into(),
        )),
    }
}
