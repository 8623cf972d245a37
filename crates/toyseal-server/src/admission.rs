//! What holds before authentication (THREATS T63): connections are admitted per client address
//! and in total, each connection gets a header-read timeout, and requests are rate-limited per
//! address before any signature is looked at. A client that never finishes its request head,
//! or opens thousands of sockets, or sends thousands of unsigned requests, spends its own
//! budget and nobody else's.
//!
//! The address is the TCP peer: behind a reverse proxy every request comes from the proxy, so
//! the proxy must apply its own per-client limits (server README, operator guide).

use crate::{App, Error};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

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

/// Answers a refused connection with one complete response and closes it, without reading
/// anything from it.
pub(crate) async fn refuse(mut stream: TcpStream, why: Refusal) {
    let (status, body): (&str, &str) = match why {
        Refusal::Address => ("429 Too Many Requests", r#"{"error":"too many requests"}"#),
        Refusal::Total => (
            "503 Service Unavailable",
            r#"{"error":"service unavailable, retry later"}"#,
        ),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    // A peer that does not read cannot hold the socket: the answer is small and bounded in time.
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
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
) {
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
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
        return Error::RateLimited.into_response();
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
