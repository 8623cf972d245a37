//! The one error type of `toyseal-server`, and the only place that maps errors to HTTP
//! answers.
//!
//! Bodies are always RFC 9457 problem details ([`Problem`], docs/spec/signed-requests.md
//! §Errors): the `detail` names the rule that refused, `limit` the limit that did. Details of
//! 401, 404 and 5xx are generic on purpose (T01, T02, T07, T62): the variant's reason goes to
//! the log (with the request id), never to the client. The request id itself is added by the
//! outermost layer ([`crate::answers`]), which reads the [`Problem`] this module leaves in the
//! response's extensions.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use toyseal_cloud::api::{PROBLEM_CONTENT_TYPE, Problem, ProblemKind};

/// Everything the server can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No, malformed, stale, replayed or unverifiable signature, or an unknown key: 401.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The request's signature verifies under a key that the family's roster removed at roster
    /// `version`: 401 `removed`. Only answered once that signature verified, so only the holder
    /// of the removed key learns it.
    #[error("removed from the family at roster version {version}")]
    Removed {
        /// The roster version that removed the device.
        version: u64,
    },
    /// The resource does not exist *for this caller* (other family, unknown id): 404.
    #[error("not found")]
    NotFound,
    /// The caller is in the family but the rule refuses (role, sender ≠ signer): 403.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The request is malformed; the message says how: 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request conflicts with stored state (family exists, roster version raced): 409.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The envelope breaks its sender's chain (sequence 0, a re-used sequence, a `previous`
    /// that is not the stored predecessor's header hash): 409 `sender-chain`.
    #[error("sender chain: {0}")]
    SenderChain(&'static str),
    /// 409 `roster-fork`: the family already holds this roster version with another hash.
    #[error("roster fork at version {version}")]
    RosterFork {
        /// The version number held twice.
        version: u64,
    },
    /// The family was deleted while this request was being served (an upload racing the
    /// family's deletion): 410.
    #[error("gone: the family was deleted")]
    Gone,
    /// The body exceeds the configured body limit: 413 (the answer names the limit).
    #[error("request body too large")]
    TooLarge,
    /// The body exceeds a route's own, smaller limit (`limit` bytes): 413.
    #[error("request body larger than {limit} bytes")]
    TooLargeFor {
        /// The route's limit in bytes.
        limit: u64,
    },
    /// The device or the client address exceeded its request rate (`per_sec`): 429.
    #[error("rate limited ({scope}: {per_sec} requests per second)")]
    RateLimited {
        /// Whose budget ran out: `"device"` or `"address"`.
        scope: &'static str,
        /// The sustained rate allowed.
        per_sec: u32,
    },
    /// The device made `limit` soft deletions of others' envelopes in the last 24 hours: 429
    /// `deletion-limit` (T36). No `Retry-After`: a quorum's erasure statement is the way past.
    #[error("daily soft-deletion limit ({limit}) reached")]
    DeletionLimit {
        /// Soft deletions allowed per device in 24 hours.
        limit: u32,
    },
    /// The request (headers and body) took longer than the configured timeout: 408.
    #[error("request timeout")]
    Timeout,
    /// The database or the blob store failed or is unreachable: 503.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored state contradicts an invariant (e.g. a stored roster chain no longer verifies):
    /// 500.
    #[error("internal error: {0}")]
    Internal(String),
    /// The configuration is invalid (startup only).
    #[error("configuration: {0}")]
    Config(String),
    /// Binding or serving the listener failed (startup and shutdown only).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthenticated(_) | Error::Removed { .. } => StatusCode::UNAUTHORIZED,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) | Error::SenderChain(_) | Error::RosterFork { .. } => {
                StatusCode::CONFLICT
            }
            Error::Gone => StatusCode::GONE,
            Error::TooLarge | Error::TooLargeFor { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited { .. } | Error::DeletionLimit { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::Timeout => StatusCode::REQUEST_TIMEOUT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) | Error::Config(_) | Error::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The problem kind of this error.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Error::Unauthenticated(_) => ProblemKind::Unauthenticated,
            Error::Removed { .. } => ProblemKind::Removed,
            Error::NotFound => ProblemKind::NotFound,
            Error::Forbidden(_) => ProblemKind::Forbidden,
            Error::BadRequest(_) => ProblemKind::BadRequest,
            Error::Conflict(_) => ProblemKind::Conflict,
            Error::SenderChain(_) => ProblemKind::SenderChain,
            Error::RosterFork { .. } => ProblemKind::RosterFork,
            Error::Gone => ProblemKind::Gone,
            Error::TooLarge | Error::TooLargeFor { .. } => ProblemKind::TooLarge,
            Error::RateLimited { .. } => ProblemKind::RateLimited,
            Error::DeletionLimit { .. } => ProblemKind::DeletionLimit,
            Error::Timeout => ProblemKind::Timeout,
            Error::Unavailable(_) => ProblemKind::Unavailable,
            Error::Internal(_) | Error::Config(_) | Error::Io(_) => ProblemKind::Internal,
        }
    }

    /// The `detail` the client sees: the rule that refused, generic where more would leak
    /// (401 `unauthenticated`, 404, 5xx).
    pub fn public_message(&self) -> String {
        match self {
            Error::Unauthenticated(_) => "the request is not signed by a device this server \
                                          knows, or its signature is stale, replayed or invalid"
                .to_owned(),
            Error::Removed { version } => {
                format!("this device was removed from the family at roster version {version}")
            }
            Error::NotFound => "no such resource".to_owned(),
            Error::RosterFork { version } => format!(
                "the family already holds roster version {version} with another hash: the \
                 roster forked (a change made without this family's devices); refused"
            ),
            Error::Forbidden(m) | Error::Conflict(m) | Error::SenderChain(m) => (*m).to_owned(),
            Error::BadRequest(m) => m.clone(),
            Error::Gone => "the family was deleted".to_owned(),
            Error::TooLarge => "the request body exceeds the server's body limit".to_owned(),
            Error::TooLargeFor { limit } => {
                format!("the request body exceeds this route's limit of {limit} bytes")
            }
            Error::RateLimited { scope, per_sec } => {
                format!("more than {per_sec} requests per second from this {scope}; retry later")
            }
            Error::DeletionLimit { limit } => format!(
                "this device made {limit} soft deletions of others' envelopes in the last 24 \
                 hours; erasing or deleting more needs an erasure statement signed by two \
                 guardians, or a guardian and the recovery key"
            ),
            Error::Timeout => "the request was not received within the server's timeout".to_owned(),
            Error::Unavailable(_) => "storage is unavailable, retry later".to_owned(),
            Error::Internal(_) | Error::Config(_) | Error::Io(_) => "internal error".to_owned(),
        }
    }

    /// The problem details of this error (no request id yet; the limit where the error itself
    /// knows it).
    pub(crate) fn problem(&self) -> Problem {
        let mut p = problem(self.kind(), self.status(), self.public_message());
        match self {
            Error::TooLargeFor { limit } => p.limit = Some(*limit),
            Error::RateLimited { per_sec, .. } => p.limit = Some(u64::from(*per_sec)),
            Error::DeletionLimit { limit } => p.limit = Some(u64::from(*limit)),
            Error::Removed { version } => p.removed_at_version = Some(*version),
            _ => {}
        }
        p
    }

    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub(crate) fn unauthenticated(e: impl std::fmt::Display) -> Self {
        Error::Unauthenticated(e.to_string())
    }
}

/// A bare problem of `kind` with `status` and `detail`.
pub(crate) fn problem(kind: ProblemKind, status: StatusCode, detail: String) -> Problem {
    Problem {
        kind: kind.type_uri(),
        title: kind.title().to_owned(),
        status: status.as_u16(),
        detail,
        request_id: None,
        limit: None,
        removed_at_version: None,
    }
}

/// The problem body as bytes. Serializing a struct of strings and integers cannot fail; were
/// it to, the answer still has the right status and content type.
pub(crate) fn problem_bytes(p: &Problem) -> Vec<u8> {
    serde_json::to_vec(p).unwrap_or_else(|_| b"{}".to_vec())
}

/// The problem-details answer (RFC 9457) for `problem`; the [`Problem`] also rides in the
/// response's extensions so that the outermost layer can add the request id and the limit.
pub(crate) fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, problem_bytes(&problem)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    resp.extensions_mut().insert(problem);
    resp
}

/// The problem-details answer of `kind` with `status` and `detail`.
pub(crate) fn error_response(kind: ProblemKind, status: StatusCode, detail: String) -> Response {
    problem_response(problem(kind, status, detail))
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The reason (with the request id of the enclosing span) goes to the log; the client
        // gets the public detail.
        match &self {
            Error::Unavailable(_) | Error::Internal(_) | Error::Config(_) | Error::Io(_) => {
                tracing::error!(error = %self, "request failed");
            }
            _ => tracing::info!(
                kind = self.kind().slug(),
                reason = %self,
                detail = %self.public_message(),
                "request refused"
            ),
        }
        let mut resp = problem_response(self.problem());
        if matches!(self, Error::RateLimited { .. }) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        // Every database failure the handlers do not expect (unreachable, locked, pool closed
        // or timed out, I/O) is "unavailable": the client retries, nothing was half-written
        // because every multi-row write is one transaction.
        Error::Unavailable(format!("database: {e}"))
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Unavailable(format!("blob store: {e}"))
    }
}
