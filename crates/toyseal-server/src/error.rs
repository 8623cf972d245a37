//! The one error type of `toyseal-server`, and the only place that maps errors to HTTP
//! answers.
//!
//! Bodies are always RFC 9457 problem details ([`Problem`]) with a short detail. Messages for 401, 404 and 503 are
//! generic on purpose (T01, T02, T07, T62): the variant's detail goes to the log, never to the
//! client.

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
    /// The resource does not exist *for this caller* (other family, unknown id): 404.
    #[error("not found")]
    NotFound,
    /// The caller is in the family but lacks the role (a toy deleting): 403.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The request is malformed; the message says how: 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request conflicts with stored state (family exists, roster version raced): 409.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The family was deleted while this request was being served (an upload racing the
    /// family's deletion): 410.
    #[error("gone: the family was deleted")]
    Gone,
    /// The body exceeds the configured limit: 413.
    #[error("request body too large")]
    TooLarge,
    /// The device exceeded its request rate: 429.
    #[error("rate limited")]
    RateLimited,
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
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Gone => StatusCode::GONE,
            Error::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
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
            Error::NotFound => ProblemKind::NotFound,
            Error::Forbidden(_) => ProblemKind::Forbidden,
            Error::BadRequest(_) => ProblemKind::BadRequest,
            Error::Conflict(_) => ProblemKind::Conflict,
            Error::Gone => ProblemKind::Gone,
            Error::TooLarge => ProblemKind::TooLarge,
            Error::RateLimited => ProblemKind::RateLimited,
            Error::Timeout => ProblemKind::Timeout,
            Error::Unavailable(_) => ProblemKind::Unavailable,
            Error::Internal(_) | Error::Config(_) | Error::Io(_) => ProblemKind::Internal,
        }
    }

    /// The message the client sees: generic where detail would leak (401, 404, 5xx).
    pub fn public_message(&self) -> String {
        match self {
            Error::Unauthenticated(_) => "unauthenticated".to_owned(),
            Error::NotFound => "not found".to_owned(),
            Error::Forbidden(m) => format!("forbidden: {m}"),
            Error::BadRequest(m) => format!("bad request: {m}"),
            Error::Conflict(m) => format!("conflict: {m}"),
            Error::Gone => "family deleted".to_owned(),
            Error::TooLarge => "request body too large".to_owned(),
            Error::RateLimited => "too many requests".to_owned(),
            Error::Timeout => "request timeout".to_owned(),
            Error::Unavailable(_) => "service unavailable, retry later".to_owned(),
            Error::Internal(_) | Error::Config(_) | Error::Io(_) => "internal error".to_owned(),
        }
    }

    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub(crate) fn unauthenticated(e: impl std::fmt::Display) -> Self {
        Error::Unauthenticated(e.to_string())
    }
}

/// The problem-details answer (RFC 9457) of `kind` with `status` and `detail`.
pub(crate) fn error_response(kind: ProblemKind, status: StatusCode, detail: String) -> Response {
    let problem = Problem {
        kind: kind.type_uri(),
        title: kind.title().to_owned(),
        status: status.as_u16(),
        detail,
        request_id: None,
        limit: None,
        removed_at_version: None,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    resp
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Error::Unavailable(_) | Error::Internal(_) | Error::Config(_) | Error::Io(_) => {
                tracing::error!(error = %self, "request failed");
            }
            Error::Unauthenticated(_) => tracing::info!(error = %self, "request refused"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let mut resp = error_response(self.kind(), status, self.public_message());
        if matches!(self, Error::RateLimited) {
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
