//! The route table ([`ROUTES`]: the single list the router is built from, whose access column
//! the authentication gate and the authorization read, and which the T07 matrix test
//! iterates) and the handlers.

use crate::auth::{
    Caller, KeySource, authenticate, authorize, authorize_founder, now_unix, signed_request_gate,
};
use crate::blobs::{BlobStream, Blobs, Put};
use crate::db::{DeviceRow, EnvelopeRow};
use crate::{App, Error};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::TryStreamExt;
use serde::Deserialize;
use std::sync::Arc;
use toyseal_cloud::api::{
    DEFAULT_PAGE, EnvelopeCreated, EnvelopeId, EnvelopePage, EnvelopeSummary, Health, MAX_PAGE,
    MAX_ROSTER_PAGE, RosterChain,
};
use toyseal_core::FamilyId;
use toyseal_envelope::OpenOptions;
use toyseal_roster::{FamilyDeletion, Roster, SignedRoster};

/// What a route does; one handler each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteId {
    /// `GET /v1/health`.
    Health,
    /// `GET /openapi.json`.
    OpenApi,
    /// `POST /v1/families/{family}`: create from roster v1.
    CreateFamily,
    /// `DELETE /v1/families/{family}`.
    DeleteFamily,
    /// `GET /v1/families/{family}/roster`.
    GetRoster,
    /// `POST /v1/families/{family}/roster`.
    UpdateRoster,
    /// `POST /v1/families/{family}/envelopes`.
    UploadEnvelope,
    /// `GET /v1/families/{family}/envelopes`.
    ListEnvelopes,
    /// `GET /v1/families/{family}/envelopes/{id}`.
    GetEnvelope,
    /// `DELETE /v1/families/{family}/envelopes/{id}`.
    DeleteEnvelope,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Anyone (no signature).
    Public,
    /// A guardian member of the roster in the body.
    FoundingGuardian,
    /// Any current member of the path's family.
    Member,
    /// A current guardian of the path's family.
    Guardian,
}

/// One row of the route table.
#[derive(Clone, Debug)]
pub struct Route {
    /// What it does.
    pub id: RouteId,
    /// HTTP method.
    pub method: Method,
    /// Path template (axum syntax, same as `toyseal_cloud::api`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Every route the server serves. The router is built from this list, and the T07 test
/// refuses to pass unless it has a cross-family case for each entry.
pub static ROUTES: &[Route] = &[
    Route {
        id: RouteId::Health,
        method: Method::GET,
        path: "/v1/health",
        access: Access::Public,
    },
    Route {
        id: RouteId::OpenApi,
        method: Method::GET,
        path: "/openapi.json",
        access: Access::Public,
    },
    Route {
        id: RouteId::CreateFamily,
        method: Method::POST,
        path: "/v1/families/{family}",
        access: Access::FoundingGuardian,
    },
    Route {
        id: RouteId::DeleteFamily,
        method: Method::DELETE,
        path: "/v1/families/{family}",
        access: Access::Guardian,
    },
    Route {
        id: RouteId::GetRoster,
        method: Method::GET,
        path: "/v1/families/{family}/roster",
        access: Access::Member,
    },
    Route {
        id: RouteId::UpdateRoster,
        method: Method::POST,
        path: "/v1/families/{family}/roster",
        access: Access::Guardian,
    },
    Route {
        id: RouteId::UploadEnvelope,
        method: Method::POST,
        path: "/v1/families/{family}/envelopes",
        access: Access::Member,
    },
    Route {
        id: RouteId::ListEnvelopes,
        method: Method::GET,
        path: "/v1/families/{family}/envelopes",
        access: Access::Member,
    },
    Route {
        id: RouteId::GetEnvelope,
        method: Method::GET,
        path: "/v1/families/{family}/envelopes/{id}",
        access: Access::Member,
    },
    Route {
        id: RouteId::DeleteEnvelope,
        method: Method::DELETE,
        path: "/v1/families/{family}/envelopes/{id}",
        access: Access::Guardian,
    },
];

/// The OpenAPI 3.1 document, hand-written (tests check it names every route of [`ROUTES`]).
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

type Shared = State<Arc<App>>;

/// Builds the router from [`ROUTES`]: each route's handler gets its table row as an
/// extension (the authorization reads its access rule there), and every route whose access is
/// not [`Access::Public`] runs the authentication gate before its handler reads the body.
pub(crate) fn router(app: Arc<App>) -> Result<Router, Error> {
    let mut r = Router::new();
    for route in ROUTES {
        let filter = MethodFilter::try_from(route.method.clone()).map_err(|_| {
            Error::Internal(format!("route table: method {} not routable", route.method))
        })?;
        let handler = match route.id {
            RouteId::Health => on(filter, health),
            RouteId::OpenApi => on(filter, openapi),
            RouteId::CreateFamily => on(filter, create_family),
            RouteId::DeleteFamily => on(filter, delete_family),
            RouteId::GetRoster => on(filter, get_roster),
            RouteId::UpdateRoster => on(filter, update_roster),
            RouteId::UploadEnvelope => on(filter, upload_envelope),
            RouteId::ListEnvelopes => on(filter, list_envelopes),
            RouteId::GetEnvelope => on(filter, get_envelope),
            RouteId::DeleteEnvelope => on(filter, delete_envelope),
        };
        let handler = match route.access {
            Access::Public => handler,
            Access::FoundingGuardian | Access::Member | Access::Guardian => handler.layer(
                axum::middleware::from_fn_with_state(app.clone(), signed_request_gate),
            ),
        };
        r = r.route(route.path, handler.layer(Extension(route)));
    }
    Ok(r.with_state(app))
}

/// The table row of the route a request was routed to (set by [`router`]).
pub(crate) fn route_of(parts: &Parts) -> Result<&'static Route, Error> {
    parts
        .extensions
        .get::<&'static Route>()
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

/// The `n`-th path segment (0-based after the leading `/`), parsed as a family id.
fn family_at(parts: &Parts, n: usize) -> Result<FamilyId, Error> {
    let seg = parts.uri.path().split('/').nth(n + 1).unwrap_or("");
    let ok = seg.len() == 32 && seg.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !ok {
        return Err(Error::bad("family id must be 32 lower-case hex digits"));
    }
    seg.parse()
        .map_err(|_| Error::bad("family id must be 32 lower-case hex digits"))
}

fn envelope_at(parts: &Parts, n: usize) -> Result<EnvelopeId, Error> {
    let seg = parts.uri.path().split('/').nth(n + 1).unwrap_or("");
    seg.parse()
        .map_err(|_| Error::bad("envelope id must be 64 lower-case hex digits"))
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

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn members_rows(roster: &Roster) -> Vec<DeviceRow> {
    roster
        .members()
        .iter()
        .map(|m| DeviceRow {
            device_id: m.device_id().to_string(),
            public_key: m.to_bytes().to_vec(),
            role: m.role().as_str().to_owned(),
        })
        .collect()
}

async fn chain(app: &App, family: &str) -> Result<(Vec<Vec<u8>>, Roster), Error> {
    let versions = app.db.roster_chain(family).await?;
    let signed = versions
        .iter()
        .map(|b| SignedRoster::decode(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("stored roster unreadable: {e}")))?;
    let roster = Roster::verify_chain(&signed)
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

async fn create_family(State(app): Shared, req: Request) -> Result<Response, Error> {
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > ROSTER_BODY_LIMIT)
    {
        return Err(Error::TooLarge);
    }
    let (parts, body) = read(req).await?;
    if body.len() > ROSTER_BODY_LIMIT {
        return Err(Error::TooLarge);
    }
    // The founding request is signed by a key listed in the roster it carries: the digest,
    // the signature under that member's key and the nonce are checked before any roster rule,
    // and every failure up to there is the generic 401 (no parser detail before
    // authentication).
    let caller = authenticate(&app, &parts, &body, KeySource::FoundingRoster).await?;
    let family = family_at(&parts, 2)?;
    no_query(&parts)?;
    let signed = SignedRoster::decode(&body)
        .map_err(|e| Error::bad(format!("body is not a roster: {e}")))?;
    let roster = Roster::verify_founding(signed)
        .map_err(|e| Error::bad(format!("roster version 1 does not verify: {e}")))?;
    authorize_founder(&caller, &parts)?;
    if roster.family() != family {
        return Err(Error::bad("the roster's family id differs from the path's"));
    }
    let fam = family.to_string();
    let created = app
        .db
        .create_family(
            &fam,
            &body,
            &roster.signed().hash(),
            &members_rows(&roster),
            to_i64(now_unix()),
        )
        .await?;
    if !created {
        return Err(Error::Conflict("the family already exists"));
    }
    tracing::info!(family = %fam, "family created");
    Ok((
        StatusCode::CREATED,
        Json(chain_json(&[body.to_vec()], false)),
    )
        .into_response())
}

async fn delete_family(State(app): Shared, req: Request) -> Result<StatusCode, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    let fam = family.to_string();
    // T17: one guardian's key is not enough. The body is a family deletion statement signed by
    // a quorum of the current roster (roster.md §5); nothing is erased unless it verifies.
    let deletion = FamilyDeletion::decode(&body)
        .map_err(|e| Error::bad(format!("body is not a family deletion statement: {e}")))?;
    let (_, current) = chain(&app, &fam).await?;
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
    // the job; then every orphan under the family's prefix (from crashed uploads); then the
    // rows, in one transaction (T15).
    for key in app.db.family_blob_keys(&fam).await? {
        app.blobs.delete(&key).await?;
    }
    for (key, _) in app.blobs.list(&Blobs::key(&fam, "")).await? {
        app.blobs.delete(&key).await?;
    }
    app.db.delete_family(&fam).await?;
    tracing::info!(family = %fam, "family deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn get_roster(State(app): Shared, req: Request) -> Result<Json<RosterChain>, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
    no_body(&body)?;
    let Query(q) = Query::<RosterQuery>::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad(format!("query: {}", e.body_text())))?;
    // Versions are u64 on the wire and stored as i64: a `since` above i64::MAX is after every
    // stored version, so its page is empty (not a 400: it is a valid version number, spec §6).
    let since = i64::try_from(q.since.unwrap_or(0)).unwrap_or(i64::MAX);
    authorize(&app, &caller, family, &parts).await?;
    // Bounded whatever the chain's length: one page, and whether more follow.
    let page = i64::try_from(MAX_ROSTER_PAGE).unwrap_or(i64::MAX);
    let mut versions = app
        .db
        .roster_page(&family.to_string(), since, page + 1)
        .await?;
    let more = versions.len() > MAX_ROSTER_PAGE as usize;
    versions.truncate(MAX_ROSTER_PAGE as usize);
    Ok(Json(chain_json(&versions, more)))
}

async fn update_roster(State(app): Shared, req: Request) -> Result<Json<RosterChain>, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    let next = SignedRoster::decode(&body)
        .map_err(|e| Error::bad(format!("body is not a roster: {e}")))?;
    let fam = family.to_string();
    let (_, current) = chain(&app, &fam).await?;
    let next = current.verify_next(next).map_err(|e| match e {
        toyseal_roster::Error::NotNextVersion { .. } => {
            Error::Conflict("the roster is not the version after the current one")
        }
        other => Error::bad(format!("the roster version does not verify: {other}")),
    })?;
    let version = to_i64(next.version());
    if !app
        .db
        .update_roster(
            &fam,
            version,
            &body,
            &next.signed().hash(),
            &members_rows(&next),
        )
        .await?
    {
        return Err(Error::Conflict("the roster changed concurrently"));
    }
    tracing::info!(family = %fam, version, "roster updated");
    Ok(Json(chain_json(&[body.to_vec()], false)))
}

async fn upload_envelope(State(app): Shared, req: Request) -> Result<Response, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
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
    let id = EnvelopeId::of(&body);
    let size = body.len() as u64;
    let (fam, ids) = (family.to_string(), id.to_string());
    let answer = |status| (status, Json(EnvelopeCreated { id, size }));
    if app.db.envelope(&fam, &ids).await?.is_some() {
        return Ok(answer(StatusCode::OK));
    }
    let key = Blobs::key(&fam, &ids);
    if let Put::Existed = app.blobs.put_create(&key, body.to_vec()).await? {
        // An orphan from a crash between blob and row, or a concurrent identical upload:
        // content-addressed, so it is reusable if its bytes hash to the id.
        let intact = app
            .blobs
            .get(&key)
            .await?
            .is_some_and(|b| EnvelopeId::of(&b) == id);
        if !intact {
            app.blobs.delete(&key).await?;
            app.blobs.put_create(&key, body.to_vec()).await?;
        }
    }
    let row = EnvelopeRow {
        seq: 0,
        id: ids,
        sender: caller.device.to_string(),
        size: to_i64(size),
        roster_version: to_i64(header.roster_version()),
        received_at: to_i64(now_unix()),
        blob_key: key,
    };
    if app.db.insert_envelope(&fam, &row).await? {
        tracing::info!(family = %fam, size, "envelope stored");
        Ok(answer(StatusCode::CREATED))
    } else {
        Ok(answer(StatusCode::OK))
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

async fn list_envelopes(State(app): Shared, req: Request) -> Result<Json<EnvelopePage>, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
    no_body(&body)?;
    let Query(q) = Query::<ListQuery>::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad(format!("query: {}", e.body_text())))?;
    let after = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => app.cursors.open(family, c)?,
    };
    // T11: a huge limit is capped, never an error and never an unbounded query; 0 asks for
    // nothing and is refused.
    let limit = match q.limit {
        None => DEFAULT_PAGE,
        Some(0) => return Err(Error::bad("limit must be at least 1 (above 100 is capped)")),
        // Beyond u32 is beyond MAX_PAGE too: capped like any large value.
        Some(n) => u32::try_from(n).map_or(MAX_PAGE, |n| n.min(MAX_PAGE)),
    };
    authorize(&app, &caller, family, &parts).await?;
    let mut rows = app
        .db
        .list_envelopes(&family.to_string(), after, i64::from(limit) + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = match rows.last() {
        Some(last) if more => Some(app.cursors.seal(family, last.seq)?),
        _ => None,
    };
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(EnvelopeSummary {
                id: r
                    .id
                    .parse()
                    .map_err(|_| Error::Internal("stored envelope id unreadable".into()))?,
                size: u64::try_from(r.size).unwrap_or(0),
                sender: r.sender,
                roster_version: u64::try_from(r.roster_version).unwrap_or(0),
                received_at: u64::try_from(r.received_at).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Json(EnvelopePage { items, next_cursor }))
}

async fn get_envelope(State(app): Shared, req: Request) -> Result<Response, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
    let id = envelope_at(&parts, 4)?;
    no_body(&body)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    let row = app
        .db
        .envelope(&family.to_string(), &id.to_string())
        .await?
        .ok_or(Error::NotFound)?;
    let blob = app
        .blobs
        .get_stream(&row.blob_key)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(streamed_octets(blob))
}

/// A 200 whose body is the blob's pieces as the store hands them over (bounded memory). A
/// store failure after the head was sent cuts the connection: the client sees a short body,
/// never a complete-looking wrong one (and checks the hash anyway).
fn streamed_octets(blob: BlobStream) -> Response {
    let pieces = blob.pieces.map_err(|e| {
        tracing::error!(error = %e, "blob read failed mid-download");
        std::io::Error::other("blob read failed")
    });
    let mut resp = (StatusCode::OK, Body::from_stream(pieces)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    resp
}

async fn delete_envelope(State(app): Shared, req: Request) -> Result<StatusCode, Error> {
    let (parts, body) = read(req).await?;
    let caller = authenticate(&app, &parts, &body, KeySource::Registry).await?;
    let family = family_at(&parts, 2)?;
    let id = envelope_at(&parts, 4)?;
    no_body(&body)?;
    no_query(&parts)?;
    authorize(&app, &caller, family, &parts).await?;
    let (fam, ids) = (family.to_string(), id.to_string());
    let row = app.db.envelope(&fam, &ids).await?.ok_or(Error::NotFound)?;
    // Blob first: if that fails the row survives and the retry finds it (T15).
    app.blobs.delete(&row.blob_key).await?;
    app.db.delete_envelope(&fam, &ids).await?;
    tracing::info!(family = %fam, "envelope deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Answers unknown paths and methods with the same JSON 404 as a missing resource.
pub(crate) async fn fallback() -> Response {
    Error::NotFound.into_response()
}
