//! The operator's surface: the commented example configuration (loaded verbatim, as the README
//! shows it) and the Prometheus metrics, scraped from the real server after real requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http::{self, RawRequest};
use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toyseal_server::{BlobConfig, ServeArgs};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/toyseal-server.example.toml");

#[test]
fn example_config_resolves_to_the_documented_values() {
    let args = ServeArgs {
        config: Some(PathBuf::from(EXAMPLE)),
        ..ServeArgs::default()
    };
    let cfg = args.resolve().unwrap();
    assert_eq!(cfg.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(cfg.public_names, vec!["toys.example.org".to_owned()]);
    assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/toyseal"));
    assert_eq!(cfg.database_url, None);
    assert_eq!(
        cfg.effective_database_url(),
        "sqlite:///var/lib/toyseal/toyseal.db?mode=rwc"
    );
    assert_eq!(
        cfg.blobs,
        BlobConfig::Dir(PathBuf::from("/var/lib/toyseal/blobs"))
    );
    assert_eq!(cfg.body_limit, 16 << 20);
    assert_eq!(cfg.request_timeout, Duration::from_secs(30));
    assert_eq!(cfg.header_timeout, Duration::from_secs(10));
    assert_eq!((cfg.rate_per_sec, cfg.rate_burst), (20, 40));
    assert_eq!(
        (cfg.address_rate_per_sec, cfg.address_rate_burst),
        (50, 100)
    );
    assert_eq!(
        (cfg.connections_per_address, cfg.max_connections),
        (64, 900)
    );
    assert_eq!(cfg.db_timeout, Duration::from_millis(5000));
    assert_eq!(cfg.soft_deletion_period, Duration::from_secs(30 * 86_400));
    assert_eq!(cfg.soft_deletions_per_day, 20);
    assert_eq!(cfg.cursor_key, None);
    assert_eq!(
        cfg.metrics_listen,
        Some("127.0.0.1:9464".parse::<SocketAddr>().unwrap())
    );
    // The README's operator guide shows this very file.
    let readme = include_str!("../README.md");
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    assert!(
        readme.contains(example.trim()),
        "README.md must embed toyseal-server.example.toml verbatim"
    );
}

/// One counter's value in a Prometheus text exposition (0 when absent).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_refusals_uploads() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let maddr = listener.local_addr().unwrap();
    let router = s.server.metrics_router();
    // The test's runtime serves the metrics listener for the test's lifetime.
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let scrape = || async move {
        let r = http::send(
            maddr,
            &RawRequest {
                method: "GET".into(),
                target: "/metrics".into(),
                host: maddr.to_string(),
                headers: vec![],
                body: vec![],
            },
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        r.text()
    };
    let fam = Family::new();
    fam.create(&s).await;
    for _ in 0..3 {
        assert_eq!(s.unsigned("GET", "/v1/health", b"").await.status, 200);
    }
    assert_eq!(
        s.unsigned("GET", &fam.envelopes_path(), b"").await.status,
        401
    );
    let e = fam.seal(&fam.toy, b"counted");
    let id = fam.upload(&s, &fam.toy, &e).await;
    let r = s
        .call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
        .await;
    assert_eq!(r.body, e);
    let text = scrape().await;
    assert_eq!(
        value(
            &text,
            r#"toyseal_requests_total{route="/v1/health",status="200"}"#
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"toyseal_requests_total{route="/v1/families/{family}/envelopes",status="401"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, r#"toyseal_refusals_total{kind="unauthenticated"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "toyseal_upload_bytes_total"),
        e.len() as f64,
        "{text}"
    );
    // The download finished: no live download left.
    assert_eq!(value(&text, "toyseal_downloads_in_progress"), 0.0, "{text}");
    assert!(
        text.contains("toyseal_request_duration_seconds_bucket"),
        "{text}"
    );
    // Labels are templates: no family id reaches the metrics.
    assert!(!text.contains(&fam.id.to_string()), "{text}");
    // The counters move.
    assert_eq!(s.unsigned("GET", "/v1/health", b"").await.status, 200);
    let text = scrape().await;
    assert_eq!(
        value(
            &text,
            r#"toyseal_requests_total{route="/v1/health",status="200"}"#
        ),
        4.0
    );
}
