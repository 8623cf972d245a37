#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admission;
mod auth;
mod blobs;
pub mod config;
mod cursor;
mod db;
mod error;
mod metrics;
mod rate;
pub mod routes;

pub use config::{BlobConfig, Config, CursorKey, ServeArgs};
pub use error::Error;
pub use routes::OPENAPI_JSON;
pub use toyseal_cloud::api::{Access, Endpoint};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use toyseal_cloud::api::{PROBLEM_CONTENT_TYPE, Problem, ProblemKind};
use tracing::{Span, field::Empty};

/// How often expired nonces are purged while serving.
pub const NONCE_PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How often the orphan-blob sweeper runs while serving.
pub const ORPHAN_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Orphan blobs younger than this are left alone: their upload may still be in flight.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);
/// How often soft-deleted envelopes past their period are erased while serving.
pub const SOFT_DELETION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Most envelopes one purge batch erases (the purge loops until none is due).
const PURGE_BATCH: u64 = 256;

/// Shared state of one server instance.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) db: db::Db,
    pub(crate) blobs: blobs::Blobs,
    pub(crate) limiter: rate::RateLimiter<toyseal_core::DeviceId>,
    pub(crate) address_limiter: rate::RateLimiter<IpAddr>,
    pub(crate) body_limit: usize,
    /// The whole-request timeout, advertised by the health route.
    pub(crate) request_timeout: std::time::Duration,
    pub(crate) verify_signatures: bool,
    /// How long a soft-deleted envelope stays restorable (T36).
    pub(crate) soft_deletion_period: Duration,
    /// Soft deletions one device may make in 24 hours (T36).
    pub(crate) soft_deletions_per_day: u32,
    /// The `@authority` values this instance answers to (lower case).
    authorities: RwLock<Arc<[String]>>,
    pub(crate) cursors: cursor::CursorSealer,
    /// This instance's Prometheus metrics.
    pub(crate) metrics: Arc<metrics::Metrics>,
}

/// The server's id of one request (16 hex digits, random): in the request's log span, the
/// `X-Request-Id` answer header and every problem's `request_id`. The server always makes its
/// own; a client's `X-Request-Id` is ignored (it could collide or inject text into logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestId(String);

impl RequestId {
    pub(crate) fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut b = [0u8; 8];
        // Unpredictability is nice, uniqueness is what matters: should the system RNG ever
        // fail, a process-wide counter mixed with the time still gives distinct ids.
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            b = (n ^ t.rotate_left(20)).to_be_bytes();
        }
        Self(hex::encode(b))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl App {
    /// The authorities requests must be signed for.
    pub(crate) fn authorities(&self) -> Arc<[String]> {
        match self.authorities.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_authorities(&self, names: Vec<String>) {
        let names: Arc<[String]> = names.into();
        match self.authorities.write() {
            Ok(mut a) => *a = names,
            Err(p) => *p.into_inner() = names,
        }
    }
}

/// Builds a [`Server`] from a [`Config`].
#[derive(Debug)]
#[must_use]
pub struct ServerBuilder {
    config: Config,
    verify_signatures: bool,
}

/// A running-ready server: its [`router`](Self::router) can be embedded, or it can
/// [`serve`](Self::serve) a listener itself.
#[derive(Clone, Debug)]
pub struct Server {
    app: Arc<App>,
    config: Config,
    /// The routes of [`Endpoint::ALL`], built once by [`ServerBuilder::build`].
    routes: Router,
}

impl Server {
    /// Starts building a server.
    pub fn builder(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            verify_signatures: true,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The axum router with every route of [`Endpoint::ALL`] and the limit, timeout and tracing
    /// layers. The per-address request limit applies when the request carries
    /// `ConnectInfo<SocketAddr>` (as [`serve`](Self::serve) adds); the connection limits and the
    /// header-read timeout are [`serve`](Self::serve)'s. Signed requests must name one of
    /// [`Config::public_names`] (or, when none is configured, `Config::listen`'s forms) as
    /// `@authority`.
    pub fn router(&self) -> Router {
        let limit = self.config.body_limit;
        // Router::layer: the last one added is the outermost.
        self.routes
            .clone()
            .fallback(routes::fallback)
            .layer(DefaultBodyLimit::max(limit))
            .layer(RequestBodyLimitLayer::new(limit))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.config.request_timeout,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                admission::address_rate_limit,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                admission::content_length_limit,
            ))
            .layer(axum::middleware::map_response(json_errors))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(make_span)
                    .on_request(())
                    .on_response(on_response)
                    .on_failure(()),
            )
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                answers,
            ))
    }

    /// The Prometheus text exposition of this instance's metrics.
    pub fn render_metrics(&self) -> String {
        self.app.metrics.render()
    }

    /// `GET /metrics` (Prometheus text format, version 0.0.4), for a listener of its own: `toyseal
    /// serve --metrics-listen ADDR` serves it there, never on the API's listener (the metrics
    /// name routes and counts, which are nobody's business on the public address).
    pub fn metrics_router(&self) -> Router {
        let metrics = self.app.metrics.clone();
        Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
    }

    /// Serves `listener` until `shutdown` completes, then finishes the requests in flight.
    /// Each connection is admitted against the per-address and total connection limits (429 /
    /// 503 and closed otherwise) and must send a complete request head within
    /// [`Config::header_timeout`] (THREATS T63). Without configured public names, requests
    /// must be signed for the listener's own address (`127.0.0.1:PORT`, `localhost:PORT`).
    /// Also purges expired nonces every [`NONCE_PURGE_INTERVAL`] and sweeps orphan blobs every
    /// [`ORPHAN_SWEEP_INTERVAL`].
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let router = self.router();
        self.serve_router(listener, router, shutdown).await
    }

    /// As [`serve`](Self::serve), with `router` answering the requests: this server's
    /// [`router`](Self::router) inside more tower layers of the embedder's (the client tests
    /// inject faults this way: dropped connections, 5xx answers, delays, answers lost after the
    /// server acted). Connection admission, the header-read timeout and housekeeping are the
    /// same as `serve`'s.
    pub async fn serve_router(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        if self.config.public_names.is_empty() {
            self.app
                .set_authorities(admission::default_authorities(listener.local_addr()?)?);
        }
        let housekeeping = {
            let this = self.clone();
            tokio::spawn(async move { this.housekeeping().await })
        };
        let connections = admission::Connections::new(
            self.config.connections_per_address,
            self.config.max_connections,
        );
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors, or a connection reset before accept:
                            // back off briefly instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    match connections.admit(peer.ip()) {
                        Ok(slot) => {
                            tasks.spawn(admission::serve_connection(
                                stream,
                                peer,
                                router.clone(),
                                self.config.header_timeout,
                                stopping.clone(),
                                slot,
                                self.app.metrics.clone(),
                            ));
                        }
                        Err(why) => {
                            tasks.spawn(admission::refuse(stream, why, self.app.metrics.clone()));
                        }
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop.send(true);
        while tasks.join_next().await.is_some() {}
        housekeeping.abort();
        self.app.db.close().await;
        Ok(())
    }

    async fn housekeeping(&self) {
        let mut purge = tokio::time::interval(NONCE_PURGE_INTERVAL);
        let mut sweep = tokio::time::interval(ORPHAN_SWEEP_INTERVAL);
        let mut erase = tokio::time::interval(SOFT_DELETION_PURGE_INTERVAL);
        loop {
            tokio::select! {
                _ = erase.tick() => {
                    if let Err(e) = self.purge_soft_deletions(std::time::SystemTime::now()).await {
                        tracing::warn!(error = %e, "soft-deletion purge failed");
                    }
                }
                _ = purge.tick() => {
                    if let Err(e) = self.purge_expired_nonces().await {
                        tracing::warn!(error = %e, "nonce purge failed");
                    }
                }
                _ = sweep.tick() => {
                    if let Err(e) = self.sweep_orphan_blobs(ORPHAN_MIN_AGE).await {
                        tracing::warn!(error = %e, "orphan sweep failed");
                    }
                }
            }
        }
    }

    /// Deletes nonces whose signatures have expired (a replay of them fails the freshness
    /// check anyway). Returns how many were deleted.
    pub async fn purge_expired_nonces(&self) -> Result<u64, Error> {
        self.app.db.purge_nonces(auth::now_unix()).await
    }

    /// Erases every soft-deleted envelope whose period has ended at `now` (THREATS T36): the
    /// row first, so that a restore racing the purge either keeps the envelope whole (the row
    /// is no longer due and stays) or finds it gone; then the blob. Should a blob delete fail
    /// after its row went, the orphan sweeper removes the blob. `now` is a parameter so that
    /// tests can run the purge at any time (the housekeeping passes the system clock). Returns
    /// how many envelopes were erased.
    pub async fn purge_soft_deletions(&self, now: std::time::SystemTime) -> Result<u64, Error> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut n = 0;
        loop {
            let due = self.app.db.due_deletions(now, PURGE_BATCH).await?;
            let batch = due.len() as u64;
            for (family, row) in due {
                if self
                    .app
                    .db
                    .delete_due_envelope(family, &row.id, now)
                    .await?
                {
                    self.app.blobs.delete(&row.blob_key).await?;
                    n += 1;
                }
            }
            if batch < PURGE_BATCH {
                break;
            }
        }
        if n > 0 {
            self.app.db.flush_erasure().await;
            tracing::info!(count = n, "soft-deleted envelopes erased");
        }
        Ok(n)
    }

    /// Deletes blobs that no row points to and that are older than `older_than` (left by a
    /// crash between the blob write and the row insert; never visible, since downloads go
    /// through rows), and the directory store's staging files older than `older_than` (left
    /// by a crash during a blob write: ciphertext that `LocalFileSystem` never lists; a live
    /// upload's staging file is seconds old, never as old as the request timeout). Returns how
    /// many were deleted.
    pub async fn sweep_orphan_blobs(&self, older_than: Duration) -> Result<u64, Error> {
        let mut n = 0;
        for (key, age) in self.app.blobs.list("envelopes").await? {
            if age >= older_than && !self.app.db.blob_referenced(&key).await? {
                self.app.blobs.delete(&key).await?;
                n += 1;
            }
        }
        for file in self.app.blobs.staging_files("envelopes").await? {
            if file.age >= older_than {
                self.app.blobs.remove_staging(&file).await?;
                n += 1;
            }
        }
        if n > 0 {
            tracing::info!(count = n, "orphan blobs deleted");
        }
        Ok(n)
    }
}

impl ServerBuilder {
    /// Opens the database (running migrations) and the blob store.
    pub async fn build(self) -> Result<Server, Error> {
        let config = self.config;
        config.validate()?;
        if config.database_url.is_none() {
            blobs::create_private_dir(&config.data_dir)?;
        }
        let db = db::Db::connect(
            &config.effective_database_url(),
            config.db_timeout,
            config.db_max_connections,
        )
        .await?;
        let blobs = blobs::Blobs::open(&config.blobs)?;
        let authorities = if config.public_names.is_empty() {
            admission::default_authorities(config.listen).unwrap_or_default()
        } else {
            config.public_names.clone()
        };
        let cursor_key = match &config.cursor_key {
            Some(k) => k.clone(),
            None => {
                tracing::info!(
                    "no cursor key configured: listing cursors are valid in this process only"
                );
                CursorKey::random()?
            }
        };
        let app = App {
            db,
            blobs,
            limiter: rate::RateLimiter::new(config.rate_per_sec, config.rate_burst),
            address_limiter: rate::RateLimiter::new(
                config.address_rate_per_sec,
                config.address_rate_burst,
            ),
            body_limit: config.body_limit,
            request_timeout: config.request_timeout,
            verify_signatures: self.verify_signatures,
            soft_deletion_period: config.soft_deletion_period,
            soft_deletions_per_day: config.soft_deletions_per_day,
            authorities: RwLock::new(authorities.into()),
            cursors: cursor::CursorSealer::new(&cursor_key)?,
            metrics: Arc::new(metrics::Metrics::new()),
        };
        let app = Arc::new(app);
        Ok(Server {
            routes: routes::router(app.clone())?,
            app,
            config,
        })
    }

    /// **DANGEROUS — benchmarks only.** Skips the Ed25519 check of request signatures (the
    /// digest, freshness, nonce and every authorization check still run), so that a load run
    /// can measure what verification costs. Exists only with the `bench-unverified` feature;
    /// no command-line flag or config key reaches it.
    #[cfg(any(test, feature = "bench-unverified"))]
    pub fn dangerous_skip_signature_verification(mut self) -> Self {
        self.verify_signatures = false;
        self
    }
}

fn make_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, RequestId::to_string);
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route,
        device = Empty,
        status = Empty,
        latency_ms = Empty,
    )
}

fn on_response(resp: &Response, latency: Duration, span: &Span) {
    span.record("status", resp.status().as_u16());
    span.record("latency_ms", latency.as_millis() as u64);
    tracing::info!("response");
}

/// Every error answer is problem details (RFC 9457), including those made by layers (408, 413,
/// 405) and by an embedder's layers.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let (kind, detail) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => (
                ProblemKind::TooLarge,
                "the request body exceeds the server's body limit",
            ),
            StatusCode::REQUEST_TIMEOUT => (
                ProblemKind::Timeout,
                "the request was not received within the server's timeout",
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                ProblemKind::MethodNotAllowed,
                "this path does not take this method",
            ),
            StatusCode::NOT_FOUND => (ProblemKind::NotFound, "no such resource"),
            StatusCode::UNAUTHORIZED => (ProblemKind::Unauthenticated, "unauthenticated"),
            StatusCode::GONE => (ProblemKind::Gone, "the family was deleted"),
            StatusCode::TOO_MANY_REQUESTS => (ProblemKind::RateLimited, "too many requests"),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                ProblemKind::HeadersTooLarge,
                "the request head is too large",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                ProblemKind::Unavailable,
                "storage is unavailable, retry later",
            ),
            s if s.is_server_error() => (ProblemKind::Internal, "internal error"),
            _ => (ProblemKind::BadRequest, "bad request"),
        };
        tracing::info!(
            kind = kind.slug(),
            status = status.as_u16(),
            "request refused by a layer"
        );
        let mut answer = error::error_response(kind, status, detail.to_owned());
        if let Some(retry) = resp.headers().get(header::RETRY_AFTER) {
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, retry.clone());
        }
        return answer;
    }
    resp
}

/// The outermost layer: gives each request its [`RequestId`] (its log span, the
/// `X-Request-Id` answer header, the problem's `request_id`), completes problems with the limit
/// that refused, closes the connection after a 413 (the refused body is not read: the
/// connection lingers instead, `admission::ConnectionIo`), and counts the answer.
async fn answers(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().clone();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let status = resp.status();
    if let Some(mut problem) = resp.extensions_mut().remove::<Problem>() {
        problem.request_id = Some(id.to_string());
        let kind = problem.kind();
        if problem.limit.is_none() {
            problem.limit = match kind {
                Some(ProblemKind::TooLarge) => Some(app.body_limit as u64),
                Some(ProblemKind::Timeout) => Some(app.request_timeout.as_secs()),
                _ => None,
            };
        }
        if let Some(kind) = kind {
            app.metrics.refusal(kind);
        }
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, Body::from(error::problem_bytes(&problem)));
    }
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    app.metrics.request(&route, status.as_u16());
    app.metrics.latency(&route, started.elapsed());
    let envelopes = Endpoint::UploadEnvelope.template();
    if method == Method::POST && route == envelopes && status.is_success() {
        app.metrics.upload(declared.unwrap_or(0));
    }
    if method == Method::GET
        && route == Endpoint::GetEnvelope.template()
        && status == StatusCode::OK
    {
        let live = app.metrics.download();
        let (parts, body) = resp.into_parts();
        let body = body.into_data_stream().map(move |chunk| {
            let _live = &live;
            chunk
        });
        resp = Response::from_parts(parts, Body::from_stream(body));
    }
    resp
}

/// `sqlite:…` / `postgres://user:password@host/db` with the password replaced, for the log.
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:REDACTED@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// What the start-up log says the blobs are stored in.
fn blob_store_text(blobs: &BlobConfig) -> String {
    match blobs {
        BlobConfig::Dir(d) => format!("directory {}", d.display()),
        BlobConfig::S3 {
            bucket,
            endpoint,
            region,
        } => format!(
            "s3 bucket {bucket} at {} ({region})",
            endpoint.as_deref().unwrap_or("AWS")
        ),
    }
}

/// Runs `toyseal serve`: logs to stderr (`RUST_LOG`, default `info`), binds
/// [`Config::listen`], serves until ctrl-c or SIGTERM, then drains.
pub fn run(args: &ServeArgs) -> Result<(), Error> {
    let config = args.resolve()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Server::builder(config).build().await?;
        let listener = TcpListener::bind(server.config().listen).await?;
        let config = server.config();
        let names = if config.public_names.is_empty() {
            admission::default_authorities(listener.local_addr()?)?
        } else {
            config.public_names.clone()
        };
        let metrics_addr = match config.metrics_listen {
            Some(addr) => {
                let metrics = TcpListener::bind(addr).await?;
                let bound = metrics.local_addr()?;
                let router = server.metrics_router();
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(metrics, router).await {
                        tracing::error!(error = %e, "metrics listener failed");
                    }
                });
                bound.to_string()
            }
            None => "off".to_owned(),
        };
        tracing::info!(
            listen = %listener.local_addr()?,
            data_dir = %config.data_dir.display(),
            database = %redacted_url(&config.effective_database_url()),
            blobs = %blob_store_text(&config.blobs),
            public_names = %names.join(","),
            body_limit = config.body_limit,
            request_timeout_secs = config.request_timeout.as_secs(),
            metrics = %metrics_addr,
            "toyseal server listening"
        );
        server.serve(listener, shutdown_signal()).await
    })
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
