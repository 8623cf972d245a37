//! A loopback test server for the client and T60 tests: the routes of `api.rs` over axum,
//! with real signature verification (`UnverifiedRequest`), a nonce store, membership and role
//! checks, sender verification of envelopes, and content-addressed create-only blob storage
//! in a directory that counts every create. Not the reference server (`toyseal-server`): just
//! enough of one, plus fault injection (answer 503/429 first, forge rosters, corrupt
//! downloads).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use toyseal_cloud::api::{
    EnvelopeCreated, EnvelopeId, EnvelopePage, EnvelopeSummary, ErrorBody, Health, RosterChain,
};
use toyseal_cloud::{ReceivedRequest, RequestTarget, UnverifiedRequest};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_roster::{FamilyDeletion, Roster, RosterProposal, SignedRoster};

/// Ways the server misbehaves on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    #[default]
    None,
    /// The roster chain gets an extra version adding the server's own key.
    RosterAddsServer,
    /// Downloads return other bytes.
    WrongBytes,
}

pub struct Family {
    pub chain: Vec<SignedRoster>,
    pub roster: Roster,
    /// (id, size, sender, received_at), in upload order.
    pub envelopes: Vec<(EnvelopeId, u64, DeviceId, u64)>,
}

#[derive(Default)]
pub struct State {
    pub families: HashMap<FamilyId, Family>,
    pub nonces: HashSet<(DeviceId, String)>,
    /// Creates per envelope id: a duplicate store would count twice.
    pub creates: HashMap<EnvelopeId, u32>,
    /// Uploads answered 200 (already stored).
    pub already_stored: u64,
    /// Every request that reached the handler.
    pub requests: u64,
    /// Statuses to answer, in order, before handling anything.
    pub fail_next: Vec<u16>,
    pub tamper: Tamper,
}

pub struct TestServer {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    pub blobs: PathBuf,
    _blob_dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

struct Shared {
    state: Arc<Mutex<State>>,
    blobs: PathBuf,
    server_key: DeviceIdentity,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn err(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::to_vec(&ErrorBody {
            error: msg.to_owned(),
        })
        .unwrap(),
    )
        .into_response()
}

fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::to_vec(v).unwrap(),
    )
        .into_response()
}

impl TestServer {
    /// Starts on 127.0.0.1 with an OS-chosen port, inside the current tokio runtime.
    pub async fn start() -> Self {
        let blob_dir = tempfile::tempdir().unwrap();
        let blobs = blob_dir.path().to_path_buf();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::new(Shared {
            state: state.clone(),
            blobs: blobs.clone(),
            server_key: DeviceIdentity::generate(Role::Guardian, &mut toyseal_core::OsRng),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            state,
            blobs,
            _blob_dir: blob_dir,
            _task: task,
        }
    }

    /// Registers a family directly (as if created earlier).
    pub fn add_family(&self, founding: SignedRoster) {
        let roster = Roster::verify_founding(founding.clone()).unwrap();
        self.state.lock().unwrap().families.insert(
            roster.family(),
            Family {
                chain: vec![founding],
                roster,
                envelopes: Vec::new(),
            },
        );
    }
}

/// A family of one guardian and one toy, version 1 signed by both.
pub fn founding(family: FamilyId, guardian: &DeviceIdentity, toy: &DeviceIdentity) -> SignedRoster {
    let mut r = RosterProposal::founding(
        family,
        vec![guardian.public().clone(), toy.public().clone()],
    )
    .unwrap()
    .sign(guardian);
    r.cosign(toy);
    r
}

enum Route {
    Family(FamilyId),
    Roster(FamilyId),
    Envelopes(FamilyId),
    Envelope(FamilyId, EnvelopeId),
}

fn route(path: &str) -> Result<Route, &'static str> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let fam = |s: &str| s.parse::<FamilyId>().map_err(|_| "bad family id");
    match segs.as_slice() {
        ["v1", "families", f] => Ok(Route::Family(fam(f)?)),
        ["v1", "families", f, "roster"] => Ok(Route::Roster(fam(f)?)),
        ["v1", "families", f, "envelopes"] => Ok(Route::Envelopes(fam(f)?)),
        ["v1", "families", f, "envelopes", id] => Ok(Route::Envelope(
            fam(f)?,
            id.parse().map_err(|_| "bad envelope id")?,
        )),
        _ => Err("no such route"),
    }
}

async fn handle(
    AxState(s): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    {
        let mut st = s.state.lock().unwrap();
        st.requests += 1;
    }
    if method == Method::GET && uri.path() == "/v1/health" {
        return json(
            StatusCode::OK,
            &Health {
                status: "ok".into(),
            },
        );
    }
    // ---- authentication: one generic 401 for every failure ----
    let unauthorized = || err(StatusCode::UNAUTHORIZED, "unauthorized");
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let Some(host) = h("host") else {
        return unauthorized();
    };
    let req = ReceivedRequest {
        target: RequestTarget {
            method: method.as_str(),
            authority: host,
            path: uri.path(),
            query: uri.query(),
        },
        content_digest: h("content-digest"),
        signature_input: h("signature-input"),
        signature: h("signature"),
    };
    let Ok(parsed) = UnverifiedRequest::parse(&req, now()) else {
        return unauthorized();
    };
    let Ok(route) = route(uri.path()) else {
        return err(StatusCode::NOT_FOUND, "not found");
    };
    let key_id = parsed.key_id();
    // Registry: members of current rosters; for family creation, the founding roster's.
    let founding = match (&method, &route) {
        (&Method::POST, Route::Family(_)) => SignedRoster::decode(&body)
            .ok()
            .and_then(|r| Roster::verify_founding(r).ok()),
        _ => None,
    };
    let key: Option<PublicIdentity> = {
        let st = s.state.lock().unwrap();
        st.families
            .values()
            .find_map(|f| f.roster.member(key_id).cloned())
            .or_else(|| founding.as_ref().and_then(|r| r.member(key_id).cloned()))
    };
    let Some(key) = key else {
        return unauthorized();
    };
    let Ok(verified) = parsed.verify(&key, &body) else {
        return unauthorized();
    };
    let mut st = s.state.lock().unwrap();
    if !st
        .nonces
        .insert((verified.device(), verified.nonce().to_owned()))
    {
        return unauthorized();
    }
    // Injected failures come after the nonce is recorded: a client that retried with the
    // same signature would then be refused as a replay.
    if !st.fail_next.is_empty() {
        let code = st.fail_next.remove(0);
        let status = StatusCode::from_u16(code).unwrap();
        return (status, [("retry-after", "0")], "").into_response();
    }
    let device = verified.device();
    let is_guardian = key.role() == Role::Guardian;

    // ---- family creation ----
    if let Route::Family(f) = route
        && method == Method::POST
    {
        let Some(r) = founding else {
            return err(StatusCode::BAD_REQUEST, "invalid founding roster");
        };
        if r.family() != f || !is_guardian {
            return err(StatusCode::BAD_REQUEST, "roster does not match the path");
        }
        if st.families.contains_key(&f) {
            return err(StatusCode::CONFLICT, "family exists");
        }
        st.families.insert(
            f,
            Family {
                chain: vec![r.signed().clone()],
                roster: r,
                envelopes: Vec::new(),
            },
        );
        return StatusCode::CREATED.into_response();
    }

    // ---- authorization: non-members see "does not exist" ----
    let f = match &route {
        Route::Family(f) | Route::Roster(f) | Route::Envelopes(f) | Route::Envelope(f, _) => *f,
    };
    let not_found = || err(StatusCode::NOT_FOUND, "not found");
    let member = st
        .families
        .get(&f)
        .is_some_and(|fam| fam.roster.member(device).is_some());
    if !member {
        return not_found();
    }
    let forbidden = || err(StatusCode::FORBIDDEN, "forbidden");
    match (method.clone(), route) {
        (Method::DELETE, Route::Family(_)) => {
            if !is_guardian {
                return forbidden();
            }
            // A family deletion statement signed by a quorum (roster.md §5).
            let quorum = FamilyDeletion::decode(&body)
                .ok()
                .is_some_and(|d| st.families[&f].roster.verify_deletion(&d).is_ok());
            if !quorum {
                return forbidden();
            }
            let fam = st.families.remove(&f).unwrap();
            for (id, ..) in fam.envelopes {
                let _ = std::fs::remove_file(s.blobs.join(id.to_string()));
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, Route::Roster(_)) => {
            let fam = &st.families[&f];
            let since: u64 = uri
                .query()
                .and_then(|q| q.strip_prefix("since="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut chain = fam.chain.clone();
            if st.tamper == Tamper::RosterAddsServer {
                let mut members = fam.roster.members().to_vec();
                members.push(s.server_key.public().clone());
                chain.push(
                    RosterProposal::next(&fam.roster, members)
                        .unwrap()
                        .sign(&s.server_key),
                );
            }
            let b64 = base64::engine::general_purpose::STANDARD;
            json(
                StatusCode::OK,
                &RosterChain {
                    versions: chain
                        .iter()
                        .filter(|r| r.proposal().version() > since)
                        .map(|r| b64.encode(r.encode()))
                        .collect(),
                    more: false,
                },
            )
        }
        (Method::POST, Route::Roster(_)) => {
            if !is_guardian {
                return forbidden();
            }
            let fam = st.families.get_mut(&f).unwrap();
            let next = match SignedRoster::decode(&body)
                .map_err(|_| ())
                .and_then(|n| fam.roster.verify_next(n).map_err(|_| ()))
            {
                Ok(n) => n,
                Err(()) => return err(StatusCode::BAD_REQUEST, "roster does not verify"),
            };
            fam.chain.push(next.signed().clone());
            fam.roster = next;
            StatusCode::OK.into_response()
        }
        (Method::POST, Route::Envelopes(_)) => {
            let header = match toyseal_envelope::verify(&body, Default::default()) {
                Ok(h) => h,
                Err(_) => return err(StatusCode::BAD_REQUEST, "invalid envelope"),
            };
            if header.sender().device_id() != device || header.family() != Some(f) {
                return err(StatusCode::BAD_REQUEST, "sender or family mismatch");
            }
            let id = EnvelopeId::of(&body);
            let answer = EnvelopeCreated {
                id,
                size: body.len() as u64,
            };
            // Create-only, content-addressed: write a temp file, then link it to the id's
            // name, which fails if the id exists.
            let path = s.blobs.join(id.to_string());
            let tmp = s.blobs.join(format!(".tmp-{id}-{}", st.requests));
            std::fs::write(&tmp, &body).unwrap();
            let created = std::fs::hard_link(&tmp, &path).is_ok();
            std::fs::remove_file(&tmp).unwrap();
            if created {
                *st.creates.entry(id).or_default() += 1;
                st.families.get_mut(&f).unwrap().envelopes.push((
                    id,
                    body.len() as u64,
                    device,
                    now(),
                ));
                json(StatusCode::CREATED, &answer)
            } else {
                st.already_stored += 1;
                json(StatusCode::OK, &answer)
            }
        }
        (Method::GET, Route::Envelopes(_)) => {
            let mut cursor = 0usize;
            let mut limit = toyseal_cloud::api::DEFAULT_PAGE as usize;
            for kv in uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|s| !s.is_empty())
            {
                match kv.split_once('=') {
                    Some(("cursor", c)) => match c.parse() {
                        Ok(c) => cursor = c,
                        Err(_) => return err(StatusCode::BAD_REQUEST, "bad cursor"),
                    },
                    Some(("limit", l)) => match l.parse::<usize>() {
                        Ok(l) if l >= 1 => limit = l.min(toyseal_cloud::api::MAX_PAGE as usize),
                        _ => return err(StatusCode::BAD_REQUEST, "limit must be 1..=100"),
                    },
                    _ => return err(StatusCode::BAD_REQUEST, "unknown query parameter"),
                }
            }
            let all = &st.families[&f].envelopes;
            let items: Vec<EnvelopeSummary> = all
                .iter()
                .skip(cursor)
                .take(limit)
                .map(|(id, size, sender, at)| EnvelopeSummary {
                    id: *id,
                    size: *size,
                    sender: sender.to_string(),
                    roster_version: 1,
                    received_at: *at,
                })
                .collect();
            let end = cursor + items.len();
            json(
                StatusCode::OK,
                &EnvelopePage {
                    items,
                    next_cursor: (end < all.len()).then(|| end.to_string()),
                },
            )
        }
        (Method::GET, Route::Envelope(_, id)) => {
            if !st.families[&f].envelopes.iter().any(|e| e.0 == id) {
                return not_found();
            }
            let mut bytes = std::fs::read(s.blobs.join(id.to_string())).unwrap();
            if st.tamper == Tamper::WrongBytes {
                bytes.push(0);
            }
            (StatusCode::OK, bytes).into_response()
        }
        (Method::DELETE, Route::Envelope(_, id)) => {
            if !is_guardian {
                return forbidden();
            }
            let fam = st.families.get_mut(&f).unwrap();
            let before = fam.envelopes.len();
            fam.envelopes.retain(|e| e.0 != id);
            if fam.envelopes.len() == before {
                return not_found();
            }
            let _ = std::fs::remove_file(s.blobs.join(id.to_string()));
            StatusCode::NO_CONTENT.into_response()
        }
        _ => err(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}
