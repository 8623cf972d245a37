//! The router, built from the API's one definition ([`Endpoint::ALL`] in
//! `toyseal_cloud::api`: method, path template, access rule — the list the client's path
//! builders expand, whose access rule the authentication gate and the authorization read, and
//! which the T07 matrix test iterates), and the handlers. Path ids reach the handlers through
//! typed extractors ([`FamilyPathParams`], [`EnvelopePathParams`]), looked at only after the
//! request authenticated.

use crate::auth::{
    Caller, KeySource, authenticate, authorize, authorize_founder, now_unix, signed_request_gate,
};
use crate::blobs::{BlobStream, Blobs, Put};
use crate::db::{DeviceRow, EnvelopeRow, Inserted, Marked, SenderLink, SoftDeletion};
use crate::{App, Error};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::TryStreamExt;
use serde::Deserialize;
use std::sync::Arc;
use toyseal_cloud::api::{
    Access, DEFAULT_PAGE, DeletionPage, Endpoint, EnvelopeCreated, EnvelopeId, EnvelopePage,
    EnvelopePathParams, EnvelopeSummary, FamilyPathParams, Health, MAX_PAGE, MAX_ROSTER_PAGE,
    PendingDeletion, RosterChain, ServerLimits,
};
use toyseal_core::{FamilyId, Role};
use toyseal_envelope::OpenOptions;
use toyseal_roster::{EnvelopeErasure, FamilyDeletion, Roster, SignedRoster};

/// The OpenAPI 3.1 document, hand-written; the tests check that its operations are exactly
/// [`Endpoint::ALL`] (method, path, `operationId`, security).
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

type Shared = State<Arc<App>>;

/// Builds the router from [`Endpoint::ALL`]: each route's handler gets its endpoint as an
/// extension (the authorization reads its access rule there), and every route whose access is
/// not [`Access::Public`] runs the authentication gate before its handler reads the body.
pub(crate) fn router(app: Arc<App>) -> Result<Router, Error> {
    // Endpoints that share a path template share one axum route (one `MethodRouter` per path).
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<App>>)> = Vec::new();
    for endpoint in Endpoint::ALL {
        let filter = MethodFilter::try_from(endpoint.method())
            .map_err(|_| Error::Internal(format!("endpoint {endpoint:?}: method not routable")))?;
        let handler = match endpoint {
            Endpoint::Health => on(filter, health),
            Endpoint::OpenApi => on(filter, openapi),
            Endpoint::CreateFamily => on(filter, create_family),
            Endpoint::DeleteFamily => on(filter, delete_family),
            Endpoint::GetRoster => on(filter, get_roster),
            Endpoint::UpdateRoster => on(filter, update_roster),
            Endpoint::UploadEnvelope => on(filter, upload_envelope),
            Endpoint::ListEnvelopes => on(filter, list_envelopes),
            Endpoint::GetEnvelope => on(filter, get_envelope),
            Endpoint::DeleteEnvelope => on(filter, delete_envelope),
            Endpoint::ListDeletions => on(filter, list_deletions),
            Endpoint::RestoreEnvelope => on(filter, restore_envelope),
            Endpoint::EraseEnvelopes => on(filter, erase_envelopes),
            other => {
                return Err(Error::Internal(format!(
                    "endpoint {other:?} has no handler in this server"
                )));
            }
        };
        let handler = match endpoint.access() {
            Access::Public => handler,
            _ => handler.layer(axum::middleware::from_fn_with_state(
                app.clone(),
                signed_request_gate,
            )),
        };
        let handler = handler.layer(Extension(endpoint));
        match by_path.iter_mut().find(|(p, _)| *p == endpoint.template()) {
            Some((_, routes)) => *routes = std::mem::take(routes).merge(handler),
            None => by_path.push((endpoint.template(), handler)),
        }
    }
    let r = by_path
        .into_iter()
        .fold(Router::new(), |r, (path, routes)| r.route(path, routes));
    Ok(r.with_state(app))
}

/// The endpoint a request was routed to (set by [`router`]).
pub(crate) fn route_of(parts: &Parts) -> Result<Endpoint, Error> {
    parts
        .extensions
        .get::<Endpoint>()
        .copied()
        .ok_or_else(|| Error::Internal("request reached a handler outside the route table".into()))
}

// --- request plumbing ---

/// Largest roster body accepted at family creation: a roster has at most 32 members
/// (`toyseal_roster::MAX_MEMBERS`) and a few signatures, far below this.
const ROSTER_BODY_LIMIT: usize = 64 * 1024;

/// Splits the request and reads the whole body under the configured limit.
async fn read(req: Request) -> Result<(Parts, Bytes), Error> {
    let (parts, body) = req.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|e| match e {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                Error::TooLarge
            }
            other => Error::bad(format!("could not read the body: {}", other.body_text())),
        })?;
    Ok((parts, bytes))
}

/// The path's ids, looked at only once the request authenticated (so an unsigned request with
/// a bad path is the generic 401, like any other). Ids are lower-case hex: one spelling each.
fn ids<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Error> {
    path.map(|Path(p)| p).map_err(|_| {
        Error::bad("path: a family id is 32 and an envelope id 64 lower-case hex digits")
    })
}

/// Refuses a body on routes that take none (it would be signed but ignored).
fn no_body(body: &[u8]) -> Result<(), Error> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(Error::bad("this route takes no body"))
    }
}

/// Refuses a query on routes that take none.
fn no_query(parts: &Parts) -> Result<(), Error> {
    match parts.uri.query() {
        None | Some("") => Ok(()),
        Some(_) => Err(Error::bad("this route takes no query parameters")),
    }
}

fn members_rows(roster: &Roster) -> Vec<DeviceRow> {
    roster
        .members()
        .iter()
        .map(|m| DeviceRow {
            device_id: m.device_id(),
            public_key: m.to_bytes().to_vec(),
            role: m.role(),
        })
        .collect()
}

async fn chain(app: &App, family: FamilyId) -> Result<(Vec<Vec<u8>>, Roster), Error> {
    let versions = app.db.roster_chain(family).await?;
    let signed = versions
        .iter()
        .map(|b| SignedRoster::decode(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("stored roster unreadable: {e}")))?;
    // The server admitted version 1 itself (family creation): it trusts it as the founder does.
    let (first, rest) = signed
        .split_first()
        .ok_or_else(|| Error::Internal("stored roster chain is empty".to_owned()))?;
    let roster = Roster::verify_founding(first.clone())
        .and_then(|v1| v1.advance(rest))
        .map_err(|e| Error::Internal(format!("stored roster chain does not verify: {e}")))?;
    Ok((versions, roster))
}

fn chain_json(versions: &[Vec<u8>], more: bool) -> RosterChain {
    RosterChain {
        versions: versions.iter().map(|v| STANDARD.encode(v)).collect(),
        more,
    }
}

// --- handlers ---

async fn health(State(app): Shared) -> Result<Json<Health>, Error> {
    app.db.ping().await?;
    Ok(Json(Health {
        status: "ok".to_owned(),
        limits: ServerLimits {
            max_body_bytes: app.body_limit as u64,
            request_timeout_secs: app.request_timeout.as_secs(),
        },
    }))
}

async fn openapi() -> Response {
    let mut resp = OPENAPI_JSON.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Reads a roster body (family creation, roster update), refused over [`ROSTER_BODY_LIMIT`]
/// from its declared length before a byte is read, and again by what arrived: both routes may
/// take a key from the body, so no unknown key makes the server buffer more.
async fn read_roster(req: Request) -> Result<(Parts, Bytes), Error> {
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > ROSTER_BODY_LIMIT)
    {
        return Err(Error::TooLargeFor {
            limit: ROSTER_BODY_LIMIT as u64,
        });
    }
    let (parts, body) = read(req).await?;
    if body.len() > ROSTER_BODY_LIMIT {
        return Err(Error::TooLargeFor {
            limit: ROSTER_BODY_LIMIT as u64,
        });
    }
    Ok((parts, body))
}

async fn create_family(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<Response, Error> {
    let (parts, body) = read_roster(req).await?;
    // The founding request is signed by a key listed in the roster it carries: the digest,
    // the signature under that member's key and the nonce are checked before any roster rule,
    // and every failure up to there is the generic 401 (no parser detail before
    // authentication).
    let caller = authenticate(&app, &parts, &body, KeySource::FoundingRoster).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_query(&parts)?;
    let signed = SignedRoster::decode(&body)
        .map_err(|e| Error::bad(format!("body is not a roster: {e}")))?;
    let roster = Roster::verify_founding(signed)
        .map_err(|e| Error::bad(format!("roster version 1 does not verify: {e}")))?;
    authorize_founder(&caller, &parts)?;
    if roster.family() != family {
        return Err(Error::bad("the roster's family id differs from the path's"));
    }
    let created = app
        .db
        .create_family(
            family,
            &body,
            &roster.signed().hash(),
            &members_rows(&roster),
            now_unix(),
        )
        .await?;
    if !created {
        return Err(Error::Conflict("the family already exists"));
    }
    tracing::info!(%family, "family created");
    Ok((
        StatusCode::CREATED,
        Json(chain_json(&[body.to_vec()], false)),
    )
        .into_response())
}

async fn delete_family(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<StatusCode, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    // T17: one guardian's key is not enough. The body is a family deletion statement signed by
    // a quorum of the current roster (roster.md §5); nothing is erased unless it verifies.
    let deletion = FamilyDeletion::decode(&body)
        .map_err(|e| Error::bad(format!("body is not a family deletion statement: {e}")))?;
    let (_, current) = chain(&app, family).await?;
    current.verify_deletion(&deletion).map_err(|e| match e {
        toyseal_roster::Error::NotCurrentRoster => {
            Error::Conflict("the deletion was signed under an older roster version")
        }
        toyseal_roster::Error::Unauthorized(_) | toyseal_roster::Error::Signature => {
            Error::Forbidden(
                "deleting a family needs two guardians, or a guardian and the toy \
                 (or the recovery key)",
            )
        }
        other => Error::bad(format!("the family deletion does not verify: {other}")),
    })?;
    // Blobs first: if one delete fails the rows still point at the rest and a retry finishes
    // the job; then the orphans under the family's prefix; then the rows, in one transaction
    // under the family's lock (T15). Staging files only after the rows: removing one fails
    // the write in progress, which must then find the family gone (410), not present (503).
    for key in app.db.family_blob_keys(family).await? {
        app.blobs.delete(&key).await?;
    }
    for (key, _) in app.blobs.list(&Blobs::family_prefix(family)).await? {
        app.blobs.delete(&key).await?;
    }
    app.db.delete_family(family).await?;
    // An upload authorized before the rows went may have written its blob since: it will find
    // the family gone at its row commit and remove the blob itself (410), but the answer here
    // says "nothing left", so it is only given once a scan finds nothing under the prefix.
    for _ in 0..ERASE_SCANS {
        erase_prefix(&app, family).await?;
        if !app
            .blobs
            .anything_under(&Blobs::family_prefix(family))
            .await?
        {
            tracing::info!(%family, "family deleted");
            return Ok(StatusCode::NO_CONTENT);
        }
        tokio::time::sleep(ERASE_SCAN_PAUSE).await;
    }
    Err(Error::Unavailable(
        "family rows erased but blobs keep appearing under its prefix; the orphan sweeper \
         removes them"
            .into(),
    ))
}

/// How many times a family deletion scans its prefix for blobs written by racing uploads.
const ERASE_SCANS: usize = 20;
/// The pause between two such scans.
const ERASE_SCAN_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Deletes every blob and staging file under the family's prefix, and its emptied directory.
async fn erase_prefix(app: &App, family: FamilyId) -> Result<(), Error> {
    let prefix = Blobs::family_prefix(family);
    for (key, _) in app.blobs.list(&prefix).await? {
        app.blobs.delete(&key).await?;
    }
    for file in app.blobs.staging_files(&prefix).await? {
        app.blobs.remove_staging(&file).await?;
    }
    app.blobs.remove_empty_dir(&prefix).await;
    Ok(())
}

async fn get_roster(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<Json<RosterChain>, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_body(&body)?;
    let Query(q) = Query::<RosterQuery>::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad(format!("query: {}", e.body_text())))?;
    // Versions are u64 on the wire; a `since` after every stored version (even above i64::MAX,
    // the store's range: the database layer saturates) gives an empty page, not a 400: it is
    // a valid version number (spec §6).
    let since = q.since.unwrap_or(0);
    authorize(&app, &caller, family, &parts).await?;
    // Bounded whatever the chain's length: one page, and whether more follow.
    let mut versions = app
        .db
        .roster_page(family, since, MAX_ROSTER_PAGE + 1)
        .await?;
    let more = versions.len() > MAX_ROSTER_PAGE as usize;
    versions.truncate(MAX_ROSTER_PAGE as usize);
    Ok(Json(chain_json(&versions, more)))
}

async fn update_roster(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<Json<RosterChain>, Error> {
    let (parts, body) = read_roster(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::RegistryOrNextRoster).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_query(&parts)?;
    // A guardian of the family; or a phone this very version makes a guardian (a family that
    // lost its only phone publishing its recovery, signed by the recovery key and the toy). The
    // second is accepted only if the body verifies as the next version, and every failure on
    // that path is the 404 of a family that does not exist (T07: no existence oracle).
    let newcomer = match authorize(&app, &caller, family, &parts).await {
        Ok(_) => false,
        Err(Error::NotFound) => true,
        Err(e) => return Err(e),
    };
    let next = SignedRoster::decode(&body).map_err(|e| {
        if newcomer {
            Error::NotFound
        } else {
            Error::bad(format!("body is not a roster: {e}"))
        }
    })?;
    let (versions, current) = chain(&app, family).await.map_err(|e| match e {
        _ if newcomer => Error::NotFound,
        other => other,
    })?;
    // A version number the family already holds, with another hash, is a fork (roster.md
    // §3.6): reported as such to a member, never adopted.
    let number = next.proposal().version();
    if !newcomer
        && let Some(held) = number
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| versions.get(i))
    {
        let held = SignedRoster::decode(held)
            .map_err(|e| Error::Internal(format!("stored roster unreadable: {e}")))?;
        if held.check_same(&next).is_err() {
            return Err(Error::RosterFork { version: number });
        }
    }
    let next = current.verify_next(next).map_err(|e| match e {
        _ if newcomer => Error::NotFound,
        toyseal_roster::Error::NotNextVersion { .. } => {
            Error::Conflict("the roster is not the version after the current one")
        }
        other => Error::bad(format!("the roster version does not verify: {other}")),
    })?;
    if newcomer
        && !next
            .guardians()
            .any(|g| g.device_id() == caller.device && *g == caller.identity)
    {
        return Err(Error::NotFound);
    }
    let version = next.version();
    if !app
        .db
        .update_roster(
            family,
            version,
            &body,
            &next.signed().hash(),
            &members_rows(&next),
        )
        .await?
    {
        return Err(Error::Conflict("the roster changed concurrently"));
    }
    tracing::info!(%family, version, "roster updated");
    Ok(Json(chain_json(&[body.to_vec()], false)))
}

async fn upload_envelope(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<Response, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    let created = store_envelope(&app, &caller, family, body).await?;
    Ok(created.into_response())
}

/// T09/T10: verify, then create-only blob, then the row. Nothing is written before every check
/// passed.
async fn store_envelope(
    app: &App,
    caller: &Caller,
    family: FamilyId,
    body: Bytes,
) -> Result<(StatusCode, Json<EnvelopeCreated>), Error> {
    let limit = u64::try_from(app.body_limit).unwrap_or(u64::MAX);
    let header = toyseal_envelope::verify(&body, OpenOptions::default().with_size_limit(limit))
        .map_err(|e| Error::bad(format!("not a valid, signed envelope: {e}")))?;
    if header.sender() != &caller.identity {
        return Err(Error::Forbidden(
            "the envelope's sender is not the authenticated device",
        ));
    }
    if header.family() != Some(family) {
        return Err(Error::bad("the envelope's family differs from the path's"));
    }
    // Sender chains (docs/spec/envelope.md §11.4): no unsequenced envelope is stored.
    if header.sequence() == 0 {
        return Err(Error::SenderChain(
            "sequence 0: an unsequenced envelope is on no sender chain",
        ));
    }
    let link = SenderLink {
        sequence: header.sequence(),
        header_hash: header.link_hash(),
        previous: *header.previous(),
    };
    let id = EnvelopeId::of(&body);
    let size = body.len() as u64;
    let answer = |status| (status, Json(EnvelopeCreated { id, size }));
    if app.db.envelope(family, &id).await?.is_some() {
        return Ok(answer(StatusCode::OK));
    }
    let key = Blobs::key(family, &id);
    let row = EnvelopeRow {
        seq: 0,
        id,
        sender: caller.device,
        size,
        roster_version: header.roster_version(),
        received_at: now_unix(),
        blob_key: key.clone(),
        deleted: None,
        sender_sequence: header.sequence(),
    };
    // Nothing is written before the sender-chain rules passed (checked again under the lock).
    match app.db.sender_chain_conflict(family, &row, &link).await? {
        Some(Inserted::Existed) => return Ok(answer(StatusCode::OK)),
        Some(Inserted::ChainBroken(why)) => return Err(Error::SenderChain(why)),
        Some(Inserted::Created | Inserted::FamilyDeleted) | None => {}
    }
    if let Err(e) = put_envelope_blob(app, &key, &id, &body).await {
        // A deletion of the family removes staging files and blobs under its prefix, which
        // can fail this write: that is the deletion's answer, not an outage.
        return Err(refused_if_deleted(app, family, &key, e).await);
    }
    match app.db.insert_envelope(family, &row, &link).await {
        Ok(Inserted::Created) => {
            tracing::info!(%family, size, "envelope stored");
            Ok(answer(StatusCode::CREATED))
        }
        Ok(Inserted::Existed) => Ok(answer(StatusCode::OK)),
        // The blob is this upload's (content-addressed, no row names it): remove it.
        Ok(Inserted::ChainBroken(why)) => {
            if !app.db.blob_referenced(&row.blob_key).await? {
                app.blobs.delete(&row.blob_key).await?;
            }
            tracing::info!(%family, why, "upload refused: sender chain");
            Err(Error::SenderChain(why))
        }
        // The family was deleted after this upload was authorized: its blob is this upload's
        // to remove (the deletion may have scanned before it was written), and the answer is
        // 410, not "retry later" (T15).
        Ok(Inserted::FamilyDeleted) => {
            app.blobs.delete(&row.blob_key).await?;
            tracing::info!(%family, "upload refused: the family was deleted meanwhile");
            Err(Error::Gone)
        }
        Err(e) => Err(refused_if_deleted(app, family, &row.blob_key, e).await),
    }
}

/// The create-only write of an envelope's blob (T10).
async fn put_envelope_blob(
    app: &App,
    key: &str,
    id: &EnvelopeId,
    body: &Bytes,
) -> Result<(), Error> {
    if let Put::Existed = app.blobs.put_create(key, body.to_vec()).await? {
        // An orphan from a crash between blob and row, or a concurrent identical upload:
        // content-addressed, so it is reusable if its bytes hash to the id.
        let intact = app
            .blobs
            .get(key)
            .await?
            .is_some_and(|b| EnvelopeId::of(&b) == *id);
        if !intact {
            app.blobs.delete(key).await?;
            app.blobs.put_create(key, body.to_vec()).await?;
        }
    }
    Ok(())
}

/// `error` of an upload to `family`, unless the family was deleted meanwhile: then its blob is
/// removed (best effort: what is left is an orphan for the sweeper) and the answer is 410.
async fn refused_if_deleted(app: &App, family: FamilyId, key: &str, error: Error) -> Error {
    match app.db.family_exists(family).await {
        Ok(false) => {
            if let Err(e) = app.blobs.delete(key).await {
                tracing::warn!(error = %e, "blob of a refused upload left for the sweeper");
            }
            Error::Gone
        }
        Ok(true) | Err(_) => error,
    }
}

/// `?since=` (a roster version); unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterQuery {
    since: Option<u64>,
}

/// `?cursor=&limit=`; unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    cursor: Option<String>,
    /// Any u64: above [`MAX_PAGE`] is capped, not refused (spec §6).
    limit: Option<u64>,
}

/// T11: a huge limit is capped, never an error and never an unbounded query; 0 asks for
/// nothing and is refused.
fn page_limit(limit: Option<u64>) -> Result<u32, Error> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(0) => Err(Error::bad("limit must be at least 1 (above 100 is capped)")),
        // Beyond u32 is beyond MAX_PAGE too: capped like any large value.
        Some(n) => Ok(u32::try_from(n).map_or(MAX_PAGE, |n| n.min(MAX_PAGE))),
    }
}

async fn list_envelopes(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<Json<EnvelopePage>, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_body(&body)?;
    let Query(q) = Query::<ListQuery>::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad(format!("query: {}", e.body_text())))?;
    let limit = page_limit(q.limit)?;
    authorize(&app, &caller, family, &parts).await?;
    // The cursor is opened only once the caller is a member (T07): a non-member gets the same
    // 404 whatever cursor it presents to whichever family, so a captured cursor does not tell
    // which family it belongs to; a member gets the same 400 for another family's cursor as
    // for a forged one.
    let after = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => app.cursors.open(family, c)?,
    };
    let mut rows = app
        .db
        .list_envelopes(family, after, u64::from(limit) + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = match rows.last() {
        Some(last) if more => Some(app.cursors.seal(family, last.seq)?),
        _ => None,
    };
    let items = rows
        .into_iter()
        .map(|r| EnvelopeSummary {
            id: r.id,
            size: r.size,
            sender: r.sender.to_string(),
            roster_version: r.roster_version,
            received_at: r.received_at,
            sequence: r.sender_sequence,
        })
        .collect();
    Ok(Json(EnvelopePage { items, next_cursor }))
}

async fn get_envelope(
    State(app): Shared,
    path: Result<Path<EnvelopePathParams>, PathRejection>,
    req: Request,
) -> Result<Response, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let EnvelopePathParams { family, id } = ids(path)?;
    no_body(&body)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    let row = app.db.envelope(family, &id).await?.ok_or(Error::NotFound)?;
    // A soft-deleted envelope answers exactly as a missing one (T36): hidden until a guardian
    // restores it.
    if row.deleted.is_some() {
        return Err(Error::NotFound);
    }
    let blob = app
        .blobs
        .get_stream(&row.blob_key)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(streamed_octets(blob))
}

/// Largest body frame of a download.
const DOWNLOAD_FRAME: usize = 64 * 1024;

/// A 200 whose body is the blob's pieces as the store hands them over, in frames of at most
/// [`DOWNLOAD_FRAME`] bytes (bounded memory). A store failure after the head was sent cuts
/// the connection: the client sees a short body, never a complete-looking wrong one (and
/// checks the hash anyway).
fn streamed_octets(blob: BlobStream) -> Response {
    // The store's pieces are cut into frames of at most DOWNLOAD_FRAME bytes (zero-copy
    // slices), so a client sees the same bounded pieces whatever the store hands over (a
    // directory reads 64 KiB at a time, an S3 response arrives in pieces of up to ~512 KiB).
    let pieces = blob
        .pieces
        .map_err(|e| {
            tracing::error!(error = %e, "blob read failed mid-download");
            std::io::Error::other("blob read failed")
        })
        .map_ok(|piece: Bytes| {
            let frames = (0..piece.len()).step_by(DOWNLOAD_FRAME).map(move |at| {
                Ok::<_, std::io::Error>(piece.slice(at..(at + DOWNLOAD_FRAME).min(piece.len())))
            });
            futures::stream::iter(frames)
        })
        .try_flatten();
    let mut resp = (StatusCode::OK, Body::from_stream(pieces)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    resp
}

async fn delete_envelope(
    State(app): Shared,
    path: Result<Path<EnvelopePathParams>, PathRejection>,
    req: Request,
) -> Result<Response, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let EnvelopePathParams { family, id } = ids(path)?;
    no_body(&body)?;
    no_query(&parts)?;
    let member = authorize(&app, &caller, family, &parts).await?;
    let row = app.db.envelope(family, &id).await?.ok_or(Error::NotFound)?;
    // T36: a sender retracts its own envelope at once; a guardian's deletion of another
    // device's envelope is soft (hidden, restorable by any guardian, erased after the period);
    // nobody else deletes others' envelopes.
    if row.sender == caller.device {
        erase_envelope(&app, family, &row).await?;
        tracing::info!(%family, "envelope erased by its sender");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if member.role != Role::Guardian {
        return Err(Error::Forbidden(
            "only its sender or a guardian deletes an envelope",
        ));
    }
    if let Some(d) = &row.deleted {
        return Ok(pending_answer(&row, d));
    }
    let now = now_unix();
    let deletion = SoftDeletion {
        by: caller.device,
        at: now,
        erase_at: now.saturating_add(app.soft_deletion_period.as_secs()),
    };
    match app
        .db
        .mark_deleted(
            family,
            &id,
            &deletion,
            now.saturating_sub(DELETION_WINDOW_SECS),
            app.soft_deletions_per_day,
        )
        .await?
    {
        Marked::Now => {
            tracing::info!(%family, "envelope soft-deleted");
            Ok(pending_answer(&row, &deletion))
        }
        Marked::LimitReached => Err(Error::DeletionLimit {
            limit: app.soft_deletions_per_day,
        }),
        // A concurrent deletion marked or erased it first: answer with what is stored now.
        Marked::Unchanged => match app.db.envelope(family, &id).await? {
            Some(EnvelopeRow {
                deleted: Some(ref d),
                ..
            }) => Ok(pending_answer(&row, d)),
            _ => Err(Error::NotFound),
        },
    }
}

/// The window of the daily soft-deletion limit: 24 hours.
const DELETION_WINDOW_SECS: u64 = 86_400;

/// 202 with the pending deletion of `row`.
fn pending_answer(row: &EnvelopeRow, d: &SoftDeletion) -> Response {
    (StatusCode::ACCEPTED, Json(pending_deletion(row, d))).into_response()
}

fn pending_deletion(row: &EnvelopeRow, d: &SoftDeletion) -> PendingDeletion {
    PendingDeletion {
        id: row.id,
        sender: row.sender.to_string(),
        deleted_by: d.by.to_string(),
        deleted_at: d.at,
        erase_at: d.erase_at,
    }
}

/// Erases one envelope: blob first (if that fails the row survives and a retry finds it),
/// then the row (T15).
async fn erase_envelope(app: &App, family: FamilyId, row: &EnvelopeRow) -> Result<(), Error> {
    app.blobs.delete(&row.blob_key).await?;
    app.db.delete_envelope(family, &row.id).await
}

async fn list_deletions(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<Json<DeletionPage>, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_body(&body)?;
    let Query(q) = Query::<ListQuery>::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad(format!("query: {}", e.body_text())))?;
    let limit = page_limit(q.limit)?;
    authorize(&app, &caller, family, &parts).await?;
    let after = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => app.cursors.open(family, c)?,
    };
    let mut rows = app
        .db
        .list_deletions(family, after, u64::from(limit) + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = match rows.last() {
        Some(last) if more => Some(app.cursors.seal(family, last.seq)?),
        _ => None,
    };
    let items = rows
        .iter()
        .filter_map(|r| r.deleted.as_ref().map(|d| pending_deletion(r, d)))
        .collect();
    Ok(Json(DeletionPage { items, next_cursor }))
}

async fn restore_envelope(
    State(app): Shared,
    path: Result<Path<EnvelopePathParams>, PathRejection>,
    req: Request,
) -> Result<StatusCode, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let EnvelopePathParams { family, id } = ids(path)?;
    no_body(&body)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    if !app.db.restore_envelope(family, &id).await? {
        return Err(Error::NotFound);
    }
    tracing::info!(%family, "envelope restored");
    Ok(StatusCode::NO_CONTENT)
}

async fn erase_envelopes(
    State(app): Shared,
    path: Result<Path<FamilyPathParams>, PathRejection>,
    req: Request,
) -> Result<StatusCode, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let FamilyPathParams { family } = ids(path)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    // T36: erasing others' envelopes at once needs two guardians, or a guardian and the
    // recovery key, of the current roster (roster.md §5.1); the toy does not count.
    let erasure = EnvelopeErasure::decode(&body)
        .map_err(|e| Error::bad(format!("body is not an envelope erasure statement: {e}")))?;
    let (_, current) = chain(&app, family).await?;
    current.verify_erasure(&erasure).map_err(|e| match e {
        toyseal_roster::Error::NotCurrentRoster => {
            Error::Conflict("the erasure was signed under an older roster version")
        }
        toyseal_roster::Error::Unauthorized(_) | toyseal_roster::Error::Signature => {
            Error::Forbidden(
                "erasing envelopes at once needs two guardians, or a guardian and the \
                 recovery key",
            )
        }
        other => Error::bad(format!("the erasure does not verify: {other}")),
    })?;
    let mut erased = 0usize;
    for id in erasure.envelopes() {
        let id = EnvelopeId::from_bytes(*id);
        if let Some(row) = app.db.envelope(family, &id).await? {
            erase_envelope(&app, family, &row).await?;
            erased += 1;
        }
    }
    tracing::info!(%family, erased, "envelopes erased by a quorum's statement");
    Ok(StatusCode::NO_CONTENT)
}

/// Answers unknown paths and methods with the same JSON 404 as a missing resource.
pub(crate) async fn fallback() -> Response {
    Error::NotFound.into_response()
}
