//! A tiny HTTP/1.1 client over a raw TCP stream: full control over headers (invalid UTF-8,
//! a replayed `Host`), slow or cut-off bodies, and keep-alive for the load run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A request, as bytes on the wire.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// Path and query, e.g. `/v1/families/…/envelopes?limit=5`.
    pub target: String,
    /// `Host` header value.
    pub host: String,
    /// Extra headers (name, raw value bytes).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn encode_head(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(
            format!(
                "{} {} HTTP/1.1\r\nHost: {}\r\n",
                self.method, self.target, self.host
            )
            .as_bytes(),
        );
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// A response.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body {:?}: {e}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A problem body without its (per-request) `request_id`, keys sorted: what two answers
    /// that must be indistinguishable are compared by. Any other body: its text.
    pub fn problem_text(&self) -> String {
        match serde_json::from_slice::<std::collections::BTreeMap<String, serde_json::Value>>(
            &self.body,
        ) {
            Ok(mut m) => {
                m.remove("request_id");
                serde_json::to_string(&m).unwrap()
            }
            Err(_) => self.text(),
        }
    }
}

/// One keep-alive connection.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(s),
        })
    }

    pub async fn send(&mut self, req: &RawRequest) -> std::io::Result<Resp> {
        let mut bytes = req.encode_head(true);
        bytes.extend_from_slice(&req.body);
        self.stream.get_mut().write_all(&bytes).await?;
        let mut r = read_response(&mut self.stream, req.method == "HEAD").await?;
        if req.method == "HEAD" {
            r.body.clear();
        }
        Ok(r)
    }
}

/// Reads one response (Content-Length bodies, or to EOF).
pub async fn read_response(r: &mut BufReader<TcpStream>, head: bool) -> std::io::Result<Resp> {
    let mut line = String::new();
    r.read_line(&mut line).await?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    let len = if head || status == 204 || status == 304 || (100..200).contains(&status) {
        Some(0)
    } else {
        len
    };
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).await?;
        }
        None => {
            r.read_to_end(&mut body).await?;
        }
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// One request on a fresh connection.
pub async fn send(addr: SocketAddr, req: &RawRequest) -> Resp {
    let mut c = Conn::connect(addr).await.unwrap();
    c.send(req).await.unwrap()
}
