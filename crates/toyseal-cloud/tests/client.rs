//! The async client's transport errors, with no server at all, a silent one, or one that
//! answers with a hostile body (raw TCP listeners). Everything that needs a server
//! (every route, retries under injected faults, the checks the client makes instead of
//! trusting the server, T60) runs against the real one: `toyseal-server`'s `tests/client.rs`
//! and `tests/t60_outbox_kill9.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use toyseal_cloud::api::ProblemKind;
use toyseal_cloud::{Client, ClientConfig, Error};
use toyseal_core::{DeviceIdentity, OsRng, Role};

#[tokio::test]
async fn transport_errors_are_typed_and_say_nothing_secret() {
    // A port nothing listens on (bound, then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ClientConfig::default();
    config.initial_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_millis(50);
    config.max_attempts = 2;
    let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let secret = toy.export_secret_key_text().unwrap();
    let c = Client::with_config(&format!("http://127.0.0.1:{port}"), toy, config).unwrap();
    let e = c.health().await.unwrap_err();
    assert!(matches!(e, Error::Transport { tries: 2, .. }), "{e:?}");
    assert!(e.is_transient());
    // The error names the URL and the tries, and nothing secret.
    let text = format!("{e} {e:?}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/v1/health")) && text.contains("2 tries"),
        "{text}"
    );
    assert!(!text.contains(secret.as_str()), "{text}");
    assert!(!format!("{c:?}").contains(secret.as_str()));
}

/// A server that accepts and never answers is abandoned at the overall deadline, with every
/// try inside it.
#[tokio::test]
async fn a_silent_server_is_abandoned_at_the_overall_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let mut config = ClientConfig::default();
    config.timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_millis(600);
    config.initial_backoff = Duration::from_millis(10);
    config.max_attempts = 10;
    let c = Client::with_config(
        &format!("http://127.0.0.1:{port}"),
        DeviceIdentity::generate(Role::Toy, &mut OsRng),
        config,
    )
    .unwrap();
    let start = Instant::now();
    let e = c.health().await.unwrap_err();
    let elapsed = start.elapsed();
    silent.abort();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    let Error::Transport { tries, timeout, .. } = &e else {
        panic!("{e:?}")
    };
    assert!((2..=4).contains(tries), "{e}");
    assert!(timeout.is_some(), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "no answer from http://127.0.0.1:{port}/v1/health within"
        )),
        "{text}"
    );
}

/// One HTTP answer on a raw socket: `head` then `body` (a server the client must not trust).
async fn answer_once(head: String, body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 4096];
        let _ = sock.read(&mut req).await;
        let _ = sock.write_all(head.as_bytes()).await;
        let _ = sock.write_all(&body).await;
        let _ = sock.shutdown().await;
    });
    port
}

#[tokio::test]
async fn a_hostile_problem_body_is_read_bounded_and_sanitized() {
    let client = |port: u16| {
        let mut config = ClientConfig::default();
        config.max_attempts = 1;
        Client::with_config(
            &format!("http://127.0.0.1:{port}"),
            DeviceIdentity::generate(Role::Toy, &mut OsRng),
            config,
        )
        .unwrap()
    };
    // 1 MB of problem JSON: past the bound the JSON is cut, so no detail, but a clear status.
    let detail = "A".repeat(1 << 20);
    let body = format!(
        r#"{{"type":"{}","title":"t","status":400,"detail":"{detail}"}}"#,
        ProblemKind::BadRequest.type_uri()
    )
    .into_bytes();
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    let e = client(answer_once(head, body).await)
        .health()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.status(), Some(400), "{e:?}");
    assert_eq!(e.detail(), None);
    assert_eq!(e.to_string(), "the server answered HTTP 400");

    // A short problem whose detail carries terminal escapes and line breaks.
    let body = format!(
        r#"{{"type":"{}","title":"t","status":403,"detail":"no\u001b[31m red\r\nFAKE OK\u0007"}}"#,
        ProblemKind::Forbidden.type_uri()
    )
    .into_bytes();
    let head = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let e = client(answer_once(head, body).await)
        .health()
        .await
        .unwrap_err();
    assert_eq!(e.problem_kind(), Some(ProblemKind::Forbidden));
    let shown = e.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    assert!(shown.contains("no [31m red FAKE OK"), "{shown:?}");

    // Not JSON at all.
    let body = b"<html>\x1b[2J gateway error</html>".to_vec();
    let head = format!(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let e = client(answer_once(head, body).await)
        .health()
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "the server answered HTTP 502");
}
