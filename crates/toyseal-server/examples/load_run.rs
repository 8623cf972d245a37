//! Load run: N simulated toys (real identities in real rosters) upload real envelopes for T
//! seconds to in-process servers on 127.0.0.1:0, once with signature verification and once
//! with it switched off (the `bench-unverified` builder switch), and print throughput,
//! latency, errors, lost envelopes and the ratio.
//!
//! ```text
//! cargo run --release -p toyseal-server --features bench-unverified --example load_run -- [toys] [seconds] [bytes] [--instances=N]
//! ```
//! Storage: SQLite + a blob directory in a temp dir by default; PostgreSQL + S3 when
//! `TOYSEAL_TEST_DATABASE_URL` / `TOYSEAL_TEST_S3_ENDPOINT` are set (`eval "$(bash
//! scripts/ci-services.sh)"`; a fresh database and bucket per phase). With `--instances=N`
//! (1–4) the phase runs N server instances on the same storage and cursor key, as a scaled-out
//! deployment does: toy i uploads through instance i mod N, and the "lost" check lists each
//! family through **another** instance, so every stored envelope must be visible from a
//! different instance than the one that took it.
//!
//! Bounded: at most 64 toys, 30 s per phase, 4 instances, and a fixed pool of pre-sealed
//! envelopes per toy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::http::{Conn, RawRequest};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use toyseal_cloud::api::{EnvelopeCreated, EnvelopePage};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_envelope::SealOptions;
use toyseal_roster::{RecoveryKey, Roster, RosterProposal};
use toyseal_server::{CursorKey, Server};

struct Toy {
    family: FamilyId,
    guardian: DeviceIdentity,
    toy: DeviceIdentity,
    roster: Roster,
    v1: Vec<u8>,
}

/// A request signed for `host`, valid 60 s.
fn signed(
    who: &DeviceIdentity,
    host: &str,
    method: &str,
    target: &str,
    body: Vec<u8>,
) -> RawRequest {
    common::signed_request(who, host, method, target, &body, common::now(), 60)
}

struct Report {
    requests: usize,
    bytes: usize,
    errors: usize,
    lost: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Report {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

async fn phase(
    verified: bool,
    toys: &[Arc<Toy>],
    pools: &[Vec<Vec<u8>>],
    secs: u64,
    instances: usize,
) -> Report {
    // A fresh database and bucket (or temp dir) per phase; every instance shares them.
    let env = common::Env::new().await;
    // Every client is on 127.0.0.1: the per-address limits would count them as one.
    let config = env
        .config
        .clone()
        .with_rate_limit(0, 0)
        .with_address_rate_limit(0, 0)
        .with_connection_limits(0, 0)
        .with_cursor_key(CursorKey::random().unwrap());
    let mut addrs = Vec::new();
    let mut stops = Vec::new();
    let mut servings = Vec::new();
    for _ in 0..instances {
        let builder = Server::builder(config.clone());
        let builder = if verified {
            builder
        } else {
            builder.dangerous_skip_signature_verification()
        };
        let server = builder.build().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop_tx);
        servings.push(tokio::spawn(server.serve(listener, async move {
            let _ = stop_rx.await;
        })));
    }
    // Families are created through instance 0; the others see them through the shared store.
    let addr: SocketAddr = addrs[0];
    let host = addr.to_string();
    for t in toys {
        let mut c = Conn::connect(addr).await.unwrap();
        let path = toyseal_cloud::api::family_path(t.family);
        let r = c
            .send(&signed(&t.guardian, &host, "POST", &path, t.v1.clone()))
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (t, pool)) in toys.iter().zip(pools).enumerate() {
        let addr = addrs[i % instances];
        let (t, pool, host) = (t.clone(), pool.clone(), addr.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(addr).await.unwrap();
            let path = toyseal_cloud::api::envelopes_path(t.family);
            let (mut lat, mut ids, mut errors, mut bytes) = (Vec::new(), Vec::new(), 0, 0);
            for env in pool {
                if Instant::now() >= deadline {
                    break;
                }
                let len = env.len();
                let t0 = Instant::now();
                let req = signed(&t.toy, &host, "POST", &path, env);
                match c.send(&req).await {
                    Ok(r) if r.status == 201 => {
                        lat.push(t0.elapsed());
                        ids.push(r.json::<EnvelopeCreated>().id.to_string());
                        bytes += len;
                    }
                    Ok(_) | Err(_) => {
                        errors += 1;
                        c = Conn::connect(addr).await.unwrap();
                    }
                }
            }
            (lat, ids, errors, bytes)
        }));
    }
    let (mut lat, mut uploaded, mut errors, mut bytes) = (Vec::new(), Vec::new(), 0, 0);
    for task in tasks {
        let (l, i, e, b) = task.await.unwrap();
        lat.extend(l);
        uploaded.push(i);
        errors += e;
        bytes += b;
    }
    let elapsed = started.elapsed();
    // Lost: every 201 must be listed afterwards.
    let mut lost = 0;
    for (i, (t, ids)) in toys.iter().zip(&uploaded).enumerate() {
        // Listed through another instance than the one that took the uploads (when N > 1).
        let addr = addrs[(i + 1) % instances];
        let host = addr.to_string();
        let mut c = Conn::connect(addr).await.unwrap();
        let mut listed = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let base = toyseal_cloud::api::envelopes_path(t.family);
            let target = match &cursor {
                Some(cur) => format!("{base}?limit=100&cursor={cur}"),
                None => format!("{base}?limit=100"),
            };
            let r = c
                .send(&signed(&t.guardian, &host, "GET", &target, Vec::new()))
                .await
                .unwrap();
            let page: EnvelopePage = r.json();
            listed.extend(page.items.into_iter().map(|i| i.id.to_string()));
            match page.next_cursor {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        lost += ids.iter().filter(|id| !listed.contains(*id)).count();
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for serving in servings {
        let _ = serving.await;
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Report {
        requests: lat.len(),
        bytes,
        errors,
        lost,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

#[tokio::main]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<u64> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let instances = raw
        .iter()
        .find_map(|a| a.strip_prefix("--instances="))
        .map(|n| n.parse::<usize>().expect("--instances=N"))
        .unwrap_or(1)
        .clamp(1, 4);
    let toys_n = args.first().copied().unwrap_or(8).clamp(1, 64) as usize;
    let secs = args.get(1).copied().unwrap_or(5).clamp(1, 30);
    let size = args.get(2).copied().unwrap_or(8 * 1024).clamp(64, 1 << 20) as usize;
    // Enough pre-sealed envelopes that no toy runs dry in a phase on this machine, bounded in
    // memory (≈ 12,000 per pool in all).
    let per_toy = (12_000 / toys_n).clamp(200, 1500);
    let storage = match (
        std::env::var("TOYSEAL_TEST_DATABASE_URL").is_ok(),
        std::env::var("TOYSEAL_TEST_S3_ENDPOINT").is_ok(),
    ) {
        (true, true) => "PostgreSQL + S3",
        (true, false) => "PostgreSQL + blob directory",
        (false, true) => "SQLite + S3",
        (false, false) => "SQLite + blob directory",
    };
    println!(
        "load run: {toys_n} toys, {secs} s per phase, {size}-byte recordings, ≤ {per_toy} envelopes per toy, \
         {instances} instance(s) on {storage}, loopback"
    );

    let toys: Vec<Arc<Toy>> = (0..toys_n)
        .map(|_| {
            let guardian = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
            let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
            let family = FamilyId::generate(&mut OsRng);
            let recovery = RecoveryKey::generate(&mut OsRng).unwrap();
            let mut v1 = RosterProposal::founding(
                family,
                vec![guardian.public().clone(), toy.public().clone()],
                *recovery.public(),
            )
            .unwrap()
            .sign(&guardian);
            v1.cosign(&toy);
            v1.cosign_recovery(&recovery);
            let roster = Roster::verify_founding(v1.clone()).unwrap();
            Arc::new(Toy {
                family,
                guardian,
                toy,
                roster,
                v1: v1.encode(),
            })
        })
        .collect();
    let seal_pool = |t: &Toy, tag: &str| -> Vec<Vec<u8>> {
        (0..per_toy)
            .map(|i| {
                let mut content = vec![0u8; size];
                let stamp = format!("{tag} recording {i}");
                content[..stamp.len()].copy_from_slice(stamp.as_bytes());
                t.roster
                    .seal(&t.toy, SealOptions::default(), &content, &mut OsRng)
                    .unwrap()
            })
            .collect()
    };
    let t0 = Instant::now();
    let pools_a: Vec<_> = toys.iter().map(|t| seal_pool(t, "signed")).collect();
    let pools_b: Vec<_> = toys.iter().map(|t| seal_pool(t, "unsigned")).collect();
    println!(
        "sealed {} envelopes in {:.1} s (not timed)",
        2 * toys_n * per_toy,
        t0.elapsed().as_secs_f64()
    );

    let signed_run = phase(true, &toys, &pools_a, secs, instances).await;
    let unsigned_run = phase(false, &toys, &pools_b, secs, instances).await;
    println!("| run | uploads | req/s | MB/s | p50 | p99 | errors | lost |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, r) in [
        ("signed + verified", &signed_run),
        ("verification off", &unsigned_run),
    ] {
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} ms | {:.2} ms | {} | {} |",
            r.requests,
            r.rps(),
            r.mbps(),
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.errors,
            r.lost
        );
    }
    let ratio = signed_run.rps() / unsigned_run.rps();
    println!("signed/unsigned throughput ratio: {ratio:.3} (target ≥ 0.8)");
    assert_eq!(signed_run.errors + unsigned_run.errors, 0, "errors");
    assert_eq!(signed_run.lost + unsigned_run.lost, 0, "lost envelopes");
}
