//! What holds before authentication (THREATS T63): connections are admitted per client address
//! and in total, each connection gets a header-read timeout, and requests are rate-limited per
//! address before any signature is looked at. A client that never finishes its request head,
//! or opens thousands of sockets, or sends thousands of unsigned requests, spends its own
//! budget and nobody else's.
//!
//! The address is the TCP peer: behind a reverse proxy every request comes from the proxy, so
//! the proxy must apply its own per-client limits (server README, operator guide).

use crate::error;
use crate::metrics::Metrics;
use crate::{App, Error, RequestId};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;
use toyseal_cloud::api::{PROBLEM_CONTENT_TYPE, ProblemKind};

/// Largest request head (request line and header lines) hyper buffers: beyond it, 431. Set
/// explicitly (it is hyper's default) so that the answer can name it.
pub(crate) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// After the server closes its side, at most this long is spent reading and discarding what
/// the client still sends (a body the answer refused), so that the close does not reset the
/// connection and destroy the answer before the client read it (RFC 9112 §9.6).
const LINGER: Duration = Duration::from_secs(5);
/// At most this many bytes are discarded while lingering.
const LINGER_BYTES: u64 = 64 << 20;

/// Open connections, per address and in total.
#[derive(Debug)]
pub(crate) struct Connections {
    per_address: u32,
    total: u32,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    by_address: HashMap<IpAddr, u32>,
    total: u32,
}

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This address holds its share already: 429.
    Address,
    /// The server holds its share already: 503.
    Total,
}

/// A held connection slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    connections: Arc<Connections>,
    address: IpAddr,
}

impl Connections {
    /// `per_address` and `total` open connections at most (0: unlimited).
    pub(crate) fn new(per_address: u32, total: u32) -> Arc<Self> {
        Arc::new(Self {
            per_address,
            total,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // A poisoned lock only means a holder panicked; the counts are still counts.
        match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Takes a slot for a connection from `address`.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refusal> {
        let mut open = self.lock();
        if self.total > 0 && open.total >= self.total {
            return Err(Refusal::Total);
        }
        let n = open.by_address.entry(address).or_insert(0);
        if self.per_address > 0 && *n >= self.per_address {
            return Err(Refusal::Address);
        }
        *n += 1;
        open.total += 1;
        Ok(Slot {
            connections: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Answers a refused connection with one complete problem-details response and closes it,
/// without reading anything from it.
pub(crate) async fn refuse(mut stream: TcpStream, why: Refusal, metrics: Arc<Metrics>) {
    let (kind, status, detail) = match why {
        Refusal::Address => (
            ProblemKind::RateLimited,
            StatusCode::TOO_MANY_REQUESTS,
            "this address holds its share of open connections; retry later",
        ),
        Refusal::Total => (
            ProblemKind::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "the server holds its share of open connections; retry later",
        ),
    };
    let id = RequestId::new();
    tracing::info!(request_id = %id, reason = ?why, "connection refused");
    metrics.refusal(kind);
    let answer = raw_problem(kind, status, detail.to_owned(), None, &id);
    let write = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    };
    // A peer that does not read cannot hold the socket: the answer is small and bounded in time.
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// A whole `Connection: close` HTTP/1.1 answer carrying a problem, for the answers written
/// outside the router (connection refusals, errors of hyper's own parser).
fn raw_problem(
    kind: ProblemKind,
    status: StatusCode,
    detail: String,
    limit: Option<u64>,
    id: &RequestId,
) -> Vec<u8> {
    let mut p = error::problem(kind, status, detail);
    p.limit = limit;
    p.request_id = Some(id.to_string());
    let body = error::problem_bytes(&p);
    let retry = if matches!(kind, ProblemKind::RateLimited | ProblemKind::Unavailable) {
        "retry-after: 1\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_CONTENT_TYPE}\r\nx-request-id: {id}\r\n\
         {retry}content-length: {}\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Serves one admitted connection: HTTP/1.1 with a header-read timeout; on `stop`, finishes the
/// request in flight and closes.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    slot: Slot,
    metrics: Arc<Metrics>,
) {
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let io = ConnectionIo::new(stream, metrics);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let stopping = async move {
        // The Ref of wait_for must not live across an await (it is not Send).
        let _ = stop.wait_for(|stopping| *stopping).await.map(|_| ());
    };
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(slot);
}

/// The connection's socket as hyper sees it. Two jobs:
///
/// - hyper answers a request it cannot parse (bad request line, bad `Content-Length`, a head
///   over [`MAX_HEAD_BYTES`]) itself, with an empty 400 / 414 / 431; those answers never reach
///   the router. Such a head (a 4xx whose header block has no `content-type`, which every
///   answer of the router has) is replaced on its way out by the same answer with a problem
///   body and a request id.
/// - closing is lingering: the write side is shut first, then whatever the client still sends
///   is read and discarded (at most [`LINGER`] and [`LINGER_BYTES`]), so that a refused body
///   still in flight does not make the kernel reset the connection before the client read the
///   answer.
pub(crate) struct ConnectionIo {
    inner: TcpStream,
    metrics: Arc<Metrics>,
    /// A replacement answer still to be written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
    /// Set once the write side is shut: the end of the lingering read.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    discarded: u64,
}

impl ConnectionIo {
    fn new(inner: TcpStream, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            metrics,
            pending: Vec::new(),
            written: 0,
            linger: None,
            discarded: 0,
        }
    }

    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// The problem answer that replaces `buf`, if `buf` is hyper's own answer to a request it
    /// could not parse.
    fn parser_answer(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let status = parser_error_status(buf)?;
        let (kind, detail, limit) = match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                ProblemKind::HeadersTooLarge,
                format!(
                    "the request head exceeds {MAX_HEAD_BYTES} bytes or has more than 100 \
                     header lines"
                ),
                Some(MAX_HEAD_BYTES as u64),
            ),
            StatusCode::URI_TOO_LONG => (
                ProblemKind::BadRequest,
                "the request target is too long".to_owned(),
                None,
            ),
            _ => (
                ProblemKind::BadRequest,
                "the request is not valid HTTP/1.1: its request line, a header line or its \
                 Content-Length is malformed"
                    .to_owned(),
                None,
            ),
        };
        let id = RequestId::new();
        tracing::info!(
            request_id = %id,
            status = status.as_u16(),
            kind = kind.slug(),
            "request refused by the HTTP parser"
        );
        self.metrics.refusal(kind);
        self.metrics.request("unparsed", status.as_u16());
        Some(raw_problem(kind, status, detail, limit, &id))
    }
}

/// The status of `buf` if it is the head of an answer hyper wrote for a parse error: a 400,
/// 414 or 431 whose header block has no `content-type`.
fn parser_error_status(buf: &[u8]) -> Option<StatusCode> {
    let rest = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    if !matches!(status.as_u16(), 400 | 414 | 431) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = buf.get(..end)?.to_ascii_lowercase();
    let typed = head
        .windows(b"\r\ncontent-type:".len())
        .any(|w| w == b"\r\ncontent-type:");
    (!typed).then_some(status)
}

impl AsyncRead for ConnectionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = this.parser_answer(buf) {
            this.pending = answer;
            // Taken whole: what is left is written by the next write, flush or shutdown.
            // Written, pending or failed: the next write, flush or shutdown finishes it (or
            // reports the failure).
            let _ = this.poll_pending(cx);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.linger.is_none() {
            ready!(this.poll_pending(cx))?;
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let mut scratch = [0u8; 8192];
        loop {
            if let Some(deadline) = this.linger.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len() as u64;
                    this.discarded = this.discarded.saturating_add(n);
                    if this.discarded > LINGER_BYTES {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

/// A request whose `Content-Length` exceeds the body limit is answered 413 before its body is
/// read; the answer names the limit and closes the connection (lingering, [`ConnectionIo`]).
pub(crate) async fn content_length_limit(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared
        && n > app.body_limit as u64
    {
        tracing::info!(
            content_length = n,
            limit = app.body_limit,
            "body over the limit"
        );
        return Error::TooLarge.into_response();
    }
    next.run(req).await
}

/// Per-address request limit (T63), before authentication and before the body is read. Needs
/// the peer address ([`ConnectInfo`]); an embedder that serves the router without it gets no
/// per-address limit.
pub(crate) async fn address_rate_limit(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && !app.address_limiter.allow(peer.ip())
    {
        return Error::RateLimited {
            scope: "address",
            per_sec: app.address_limiter.per_sec(),
        }
        .into_response();
    }
    next.run(req).await
}

/// The authorities a server listening on `addr` answers to when no public name is configured:
/// `ip:port`, and `localhost:port` on loopback.
pub(crate) fn default_authorities(addr: SocketAddr) -> Result<Vec<String>, Error> {
    if addr.ip().is_unspecified() {
        return Err(Error::Config(format!(
            "listening on {addr} needs the names clients use (--public-name api.example.org)"
        )));
    }
    let mut names = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        names.push(format!("localhost:{}", addr.port()));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slots_per_address_and_total() {
        let c = Connections::new(2, 3);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let s1 = c.admit(a).unwrap();
        let _s2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).unwrap_err(), Refusal::Address);
        let _s3 = c.admit(b).unwrap();
        assert_eq!(c.admit(b).unwrap_err(), Refusal::Total);
        drop(s1);
        assert!(c.admit(b).is_ok());
    }
}
