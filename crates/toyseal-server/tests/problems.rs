//! Every error answer is an RFC 9457 problem with a request id (docs/spec/signed-requests.md
//! §Errors), including the answers hyper's parser makes itself; a body over the limit is a
//! 413 naming the limit, every time, before the body is read (§Limits). Real server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http;
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use toyseal_cloud::api::{Health, PROBLEM_CONTENT_TYPE, Problem, ProblemKind};

/// Sends raw bytes, reads to EOF (the server closes after these answers): the response.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> http::Resp {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut r = tokio::io::BufReader::new(tcp);
    tokio::time::timeout(Duration::from_secs(10), http::read_response(&mut r, false))
        .await
        .expect("answered in time")
        .unwrap()
}

fn problem(r: &http::Resp) -> Problem {
    assert_eq!(
        r.header("content-type"),
        Some(PROBLEM_CONTENT_TYPE),
        "{}",
        r.text()
    );
    let p: Problem = r.json();
    assert_eq!(p.status, r.status);
    let id = p.request_id.clone().expect("a request id");
    assert_eq!(r.header("x-request-id"), Some(id.as_str()));
    assert_eq!(id.len(), 16);
    p
}

#[tokio::test]
async fn parser_errors_are_problems() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let host = s.host();
    let cases: Vec<(&str, Vec<u8>, u16, ProblemKind)> = vec![
        (
            "bad Content-Length",
            format!("POST /v1/health HTTP/1.1\r\nHost: {host}\r\nContent-Length: 12x\r\n\r\n")
                .into_bytes(),
            400,
            ProblemKind::BadRequest,
        ),
        (
            "two different Content-Lengths",
            format!(
                "POST /v1/health HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\n\
                 Content-Length: 2\r\n\r\nab"
            )
            .into_bytes(),
            400,
            ProblemKind::BadRequest,
        ),
        (
            "bad request line",
            b"GET /v1/health\x01 HTTP/1.1\r\n\r\n".to_vec(),
            400,
            ProblemKind::BadRequest,
        ),
        (
            "header too large",
            format!(
                "GET /v1/health HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
                "a".repeat(600_000)
            )
            .into_bytes(),
            431,
            ProblemKind::HeadersTooLarge,
        ),
    ];
    let mut ids = std::collections::HashSet::new();
    for (what, bytes, status, kind) in cases {
        let r = raw(s.addr, &bytes).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let p = problem(&r);
        assert_eq!(p.kind(), Some(kind), "{what}");
        assert!(!p.detail.is_empty(), "{what}");
        if kind == ProblemKind::HeadersTooLarge {
            assert!(p.limit.is_some_and(|l| l > 8192), "{what}: {:?}", p.limit);
        }
        assert!(
            ids.insert(p.request_id.unwrap()),
            "{what}: ids are per request"
        );
    }
}

#[tokio::test]
async fn refusals_name_their_rule() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    // Mum uploading the toy's envelope: the rule is sender ≠ signer, not the role.
    let e = fam.seal(&fam.toy, b"hello");
    let r = s
        .call(&fam.guardian, "POST", &fam.envelopes_path(), &e)
        .await;
    assert_eq!(r.status, 403);
    let p = problem(&r);
    assert_eq!(p.kind(), Some(ProblemKind::Forbidden));
    assert!(p.detail.contains("sender"), "{}", p.detail);
    // A malformed query says what is wrong.
    let r = s
        .call(
            &fam.guardian,
            "GET",
            &format!("{}?limit=0", fam.envelopes_path()),
            b"",
        )
        .await;
    let p = problem(&r);
    assert_eq!((r.status, p.kind()), (400, Some(ProblemKind::BadRequest)));
    assert!(p.detail.contains("limit"), "{}", p.detail);
    // 404 and 401 stay generic, and carry an id too.
    let r = s.unsigned("GET", "/v1/nothing-here", b"").await;
    assert_eq!(
        (r.status, problem(&r).kind()),
        (404, Some(ProblemKind::NotFound))
    );
    let r = s.unsigned("GET", &fam.envelopes_path(), b"").await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    problem(&r);
    // Success answers carry the request id header too.
    let r = s.unsigned("GET", "/v1/health", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id").map(str::len), Some(16));
}

#[tokio::test]
async fn oversized_body_is_413_with_the_limit_every_time() {
    let env = Env::hermetic().await;
    let limit: usize = 1 << 20;
    let config = env
        .config
        .clone()
        .with_body_limit(limit)
        .with_request_timeout(Duration::from_secs(7))
        .with_rate_limit(0, 0)
        .with_address_rate_limit(0, 0);
    let s = env.start_with(config).await;
    // The health route advertises the configured limits.
    let r = s.unsigned("GET", "/v1/health", b"").await;
    let h: Health = r.json();
    assert_eq!(h.limits.max_body_bytes, limit as u64);
    assert_eq!(h.limits.request_timeout_secs, 7);
    let fam = Family::new();
    fam.create(&s).await;
    let body = vec![0x5au8; 20 * 1000 * 1000];
    for round in 0..20 {
        let req = s.signed(&fam.toy, "POST", &fam.envelopes_path(), &body);
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let (mut rd, mut wr) = tcp.split();
        // Write the whole 20 MB while reading: the answer comes before the body was read, and
        // the server drains instead of resetting, so the writer finishes and the answer stays.
        let head = req.encode_head(true);
        let write = async {
            wr.write_all(&head).await?;
            wr.write_all(&body).await?;
            wr.shutdown().await
        };
        let read = async {
            let mut buf = Vec::new();
            rd.read_to_end(&mut buf).await.map(|_| buf)
        };
        let (w, answer) =
            tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(write, read) })
                .await
                .expect("round within 30 s");
        w.unwrap_or_else(|e| panic!("round {round}: the upload was cut: {e}"));
        let answer = answer.unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut reader = tokio::io::BufReader::new(&answer[..]);
        let r = read_from_bytes(&mut reader).await;
        assert_eq!(r.status, 413, "round {round}: {}", r.text());
        assert_eq!(r.header("connection"), Some("close"), "round {round}");
        let p = problem(&r);
        assert_eq!(p.kind(), Some(ProblemKind::TooLarge), "round {round}");
        assert_eq!(p.limit, Some(limit as u64), "round {round}");
    }
}

/// Parses one response out of bytes already read.
async fn read_from_bytes(r: &mut tokio::io::BufReader<&[u8]>) -> http::Resp {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body).await.unwrap();
    http::Resp {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn family_creation_names_its_own_smaller_limit() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let fam = Family::new();
    // Far below the server's body limit (16 MiB), above the founding roster's 64 KiB.
    let big = vec![3u8; 100 * 1024];
    let r = s.call(&fam.guardian, "POST", &fam.path(), &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let p = problem(&r);
    assert_eq!(
        (p.kind(), p.limit),
        (Some(ProblemKind::TooLarge), Some(64 * 1024))
    );
    // Nothing was created: the real founding request still succeeds.
    fam.create(&s).await;
}
