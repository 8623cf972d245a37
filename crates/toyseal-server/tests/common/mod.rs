//! Test support: storage environments (hermetic SQLite + directory by default; PostgreSQL and
//! S3 when `TOYSEAL_TEST_DATABASE_URL` / `TOYSEAL_TEST_S3_ENDPOINT` are set), servers on
//! 127.0.0.1:0 in their own runtime (so a test can crash one), families of real identities and
//! signed requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod child;
pub mod faults;
pub mod http;

use http::{RawRequest, Resp};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toyseal_cloud::{RequestTarget, sign_request};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, PublicIdentity, Role};
use toyseal_envelope::{Metadata, SealOptions};
use toyseal_roster::{
    EnvelopeErasure, FamilyDeletion, RecoveryKey, Roster, RosterProposal, SignedRoster,
};
use toyseal_server::{BlobConfig, Config, Server};

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand_core::Rng::fill_bytes(&mut OsRng, &mut b);
    hex(&b)
}

/// Where the data lives for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// `Some` when running against PostgreSQL.
    pub pg_url: Option<String>,
    /// `Some((endpoint, bucket))` when running against S3.
    pub s3: Option<(String, String)>,
}

impl Env {
    /// Real services when their env vars are set, else hermetic.
    pub async fn new() -> Self {
        Self::make(true).await
    }
    /// Always SQLite + a local blob directory (tests that touch files directly).
    pub async fn hermetic() -> Self {
        Self::make(false).await
    }

    async fn make(real: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded(dir.path().join("data"))
            .with_rate_limit(0, 0)
            .with_address_rate_limit(0, 0)
            .with_request_timeout(Duration::from_secs(10));
        let mut pg_url = None;
        let mut s3 = None;
        if real {
            if let Ok(admin) = std::env::var("TOYSEAL_TEST_DATABASE_URL") {
                let url = create_pg_database(&admin).await;
                config = config.with_database_url(url.clone());
                pg_url = Some(url);
            }
            if let Ok(endpoint) = std::env::var("TOYSEAL_TEST_S3_ENDPOINT") {
                let base = std::env::var("TOYSEAL_TEST_S3_BUCKET")
                    .unwrap_or_else(|_| "toyseal-test".into());
                let bucket = format!("{base}-{}", random_hex(6));
                create_bucket(&endpoint, &bucket).await;
                let region =
                    std::env::var("TOYSEAL_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into());
                config = config.with_blobs(s3_config(&endpoint, &bucket, &region));
                s3 = Some((endpoint, bucket));
            }
        }
        Self {
            dir,
            config,
            pg_url,
            s3,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The blob directory (hermetic only).
    pub fn blob_dir(&self) -> Option<PathBuf> {
        match &self.config.blobs {
            BlobConfig::Dir(d) => Some(d.clone()),
            _ => None,
        }
    }

    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.pg_url
            .is_none()
            .then(|| self.data_dir().join("toyseal.db"))
    }

    pub async fn start(&self) -> TestServer {
        TestServer::start(self.config.clone()).await
    }

    pub async fn start_with(&self, config: Config) -> TestServer {
        TestServer::start(config).await
    }

    /// The real server on this storage, its router inside the fault layer `faults`.
    pub async fn start_with_faults(&self, faults: &faults::Faults) -> TestServer {
        TestServer::start_with_faults(self.config.clone(), faults).await
    }

    /// A direct connection to the same database, for scans.
    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.config.effective_database_url())
            .await
            .unwrap()
    }

    /// Every cell of every table, as bytes (text as UTF-8, integers as decimal text).
    pub async fn dump_db(&self) -> Vec<(String, Vec<u8>)> {
        use sqlx::{Column, Row};
        let pool = self.db().await;
        let mut out = Vec::new();
        for table in [
            "families",
            "roster_versions",
            "devices",
            "envelopes",
            "nonces",
        ] {
            let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                .fetch_all(&pool)
                .await
                .unwrap();
            for row in rows {
                for (i, col) in row.columns().iter().enumerate() {
                    let cell = if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                        v.unwrap_or_default()
                    } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                        v.unwrap_or_default().into_bytes()
                    } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                        v.map(|v| v.to_string()).unwrap_or_default().into_bytes()
                    } else {
                        panic!("cannot read {table}.{}", col.name());
                    };
                    out.push((format!("{table}.{}", col.name()), cell));
                }
            }
        }
        pool.close().await;
        out
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        let pool = self.db().await;
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        pool.close().await;
        n
    }

    /// The raw bytes of the SQLite files (db, -wal), if hermetic.
    pub fn raw_db_files(&self) -> Vec<(String, Vec<u8>)> {
        let Some(db) = self.sqlite_file() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for suffix in ["", "-wal", "-journal"] {
            let p = PathBuf::from(format!("{}{suffix}", db.display()));
            if let Ok(b) = std::fs::read(&p) {
                out.push((p.display().to_string(), b));
            }
        }
        out
    }

    /// Every stored blob (every file under the blob directory, staging files included; or
    /// every object in the bucket).
    pub async fn dump_blobs(&self) -> Vec<(String, Vec<u8>)> {
        match &self.config.blobs {
            BlobConfig::Dir(d) => walk(d),
            BlobConfig::S3 { .. } => {
                use futures::TryStreamExt;
                use object_store::ObjectStore;
                let store = s3_store(&self.config.blobs);
                let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
                let mut out = Vec::new();
                for m in metas {
                    let b = store.get(&m.location).await.unwrap().bytes().await.unwrap();
                    out.push((m.location.to_string(), b.to_vec()));
                }
                out
            }
            _ => unreachable!(),
        }
    }
}

pub fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn s3_config(endpoint: &str, bucket: &str, region: &str) -> BlobConfig {
    let args = toyseal_server::ServeArgs {
        s3_bucket: Some(bucket.to_owned()),
        s3_endpoint: Some(endpoint.to_owned()),
        s3_region: Some(region.to_owned()),
        ..Default::default()
    };
    args.resolve().unwrap().blobs
}

pub fn s3_store(cfg: &BlobConfig) -> object_store::aws::AmazonS3 {
    let BlobConfig::S3 {
        bucket,
        endpoint,
        region,
    } = cfg
    else {
        panic!("not S3")
    };
    object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_endpoint(endpoint.clone().unwrap())
        .with_allow_http(true)
        .build()
        .unwrap()
}

async fn create_bucket(endpoint: &str, bucket: &str) {
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("TOYSEAL_TEST_S3_ENDPOINT must be http://IP:PORT");
    let r = http::send(
        addr,
        &RawRequest {
            method: "PUT".into(),
            target: format!("/{bucket}"),
            host: addr.to_string(),
            headers: vec![],
            body: vec![],
        },
    )
    .await;
    assert!(r.status < 300, "create bucket: {} {}", r.status, r.text());
}

async fn create_pg_database(admin: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("toyseal_{}", random_hex(8));
    let mut c = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A server in its own runtime: `crash` kills every task of it at once, like a SIGKILL.
pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Server,
    /// The first configured public name, if any: what requests are signed for and sent as
    /// `Host` (else the listening address).
    public_name: Option<String>,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_wrapped(config, |r| r).await
    }

    /// The real server with its router inside the fault layer `faults`.
    pub async fn start_with_faults(config: Config, faults: &faults::Faults) -> Self {
        let faults = faults.clone();
        Self::start_wrapped(config, move |r| faults.around(r)).await
    }

    /// The real server, serving its router as `wrap` returns it (more tower layers around it).
    pub async fn start_wrapped(
        config: Config,
        wrap: impl FnOnce(axum::Router) -> axum::Router + Send + 'static,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let public_name = config.public_names.first().cloned();
        rt.spawn(async move {
            let server = Server::builder(config).build().await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send((addr, server.clone())).ok();
            let router = wrap(server.router());
            server
                .serve_router(listener, router, async move {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
        let (addr, server) = rx.await.unwrap();
        Self {
            addr,
            server,
            public_name,
            rt: Some(rt),
            stop: Some(stop_tx),
        }
    }

    pub fn host(&self) -> String {
        self.public_name
            .clone()
            .unwrap_or_else(|| self.addr.to_string())
    }

    /// The base URL a `toyseal_cloud::Client` is given.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Kills the server: every task and connection dies where it is.
    pub fn crash(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    /// Signs and sends a request as `who`. `target` may carry `?query`.
    pub async fn call(
        &self,
        who: &DeviceIdentity,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Resp {
        http::send(self.addr, &self.signed(who, method, target, body)).await
    }

    /// Sends without any signature.
    pub async fn unsigned(&self, method: &str, target: &str, body: &[u8]) -> Resp {
        http::send(
            self.addr,
            &RawRequest {
                method: method.into(),
                target: target.into(),
                host: self.host(),
                headers: vec![],
                body: body.to_vec(),
            },
        )
        .await
    }

    /// A request signed now, valid 60 s.
    pub fn signed(
        &self,
        who: &DeviceIdentity,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> RawRequest {
        signed_request(who, &self.host(), method, target, body, now(), 60)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A signed request for `host`.
pub fn signed_request(
    who: &DeviceIdentity,
    host: &str,
    method: &str,
    target: &str,
    body: &[u8],
    created: u64,
    validity: u64,
) -> RawRequest {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let h = sign_request(
        who,
        &RequestTarget {
            method,
            authority: host,
            path,
            query,
        },
        body,
        created,
        validity,
        &mut OsRng,
    )
    .unwrap();
    RawRequest {
        method: method.into(),
        target: target.into(),
        host: host.into(),
        headers: vec![
            ("Content-Digest".into(), h.content_digest.into_bytes()),
            ("Signature-Input".into(), h.signature_input.into_bytes()),
            ("Signature".into(), h.signature.into_bytes()),
        ],
        body: body.to_vec(),
    }
}

/// A family of real identities with a verified roster.
pub struct Family {
    pub id: FamilyId,
    pub guardian: DeviceIdentity,
    pub toy: DeviceIdentity,
    /// The family's recovery key (every family keeps one, roster.md §1.2).
    pub recovery: RecoveryKey,
    pub extra: Vec<PublicIdentity>,
    pub roster: Roster,
    pub chain: Vec<SignedRoster>,
    /// Each sender's state (next sequence, previous header hash), as a device keeps it.
    pub senders: std::sync::Mutex<
        std::collections::HashMap<toyseal_core::DeviceId, toyseal_core::SenderState>,
    >,
}

impl Family {
    /// Guardian + toy (+ extra members, who co-sign to prove possession) in roster v1.
    pub fn new_with(extra_devices: &[&DeviceIdentity]) -> Self {
        let guardian = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
        let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
        let id = FamilyId::generate(&mut OsRng);
        let extra: Vec<PublicIdentity> = extra_devices.iter().map(|d| d.public().clone()).collect();
        let mut members = vec![guardian.public().clone(), toy.public().clone()];
        members.extend(extra.iter().cloned());
        let recovery = RecoveryKey::generate(&mut OsRng).unwrap();
        let mut v1 = RosterProposal::founding(id, members, *recovery.public())
            .unwrap()
            .sign(&guardian);
        v1.cosign(&toy);
        v1.cosign_recovery(&recovery);
        for d in extra_devices {
            v1.cosign(d);
        }
        let roster = Roster::verify_founding(v1.clone()).unwrap();
        Self {
            id,
            guardian,
            toy,
            recovery,
            extra,
            roster,
            chain: vec![v1],
            senders: Default::default(),
        }
    }

    pub fn new() -> Self {
        Self::new_with(&[])
    }

    pub fn v1(&self) -> Vec<u8> {
        self.chain[0].encode()
    }

    pub fn path(&self) -> String {
        toyseal_cloud::api::family_path(self.id)
    }
    pub fn roster_path(&self) -> String {
        toyseal_cloud::api::roster_path(self.id)
    }
    pub fn envelopes_path(&self) -> String {
        toyseal_cloud::api::envelopes_path(self.id)
    }
    pub fn envelope_path(&self, id: &str) -> String {
        format!("{}/{id}", self.envelopes_path())
    }
    pub fn deletions_path(&self) -> String {
        toyseal_cloud::api::deletions_path(self.id)
    }
    pub fn restore_path(&self, id: &str) -> String {
        format!("{}/restore", self.envelope_path(id))
    }
    pub fn erasures_path(&self) -> String {
        toyseal_cloud::api::erasures_path(self.id)
    }

    /// An envelope erasure statement (roster.md §5.1) for the current roster naming `ids`
    /// (hex), signed by the guardian and the toy: **not** a quorum for an erasure (the toy
    /// does not count); tests add signers with [`erasure_by`](Self::erasure_by).
    pub fn erasure(&self, ids: &[&str]) -> Vec<u8> {
        self.erasure_by(ids, &[&self.guardian, &self.toy])
    }

    /// An envelope erasure statement naming `ids` (hex), signed by `signers`.
    pub fn erasure_by(&self, ids: &[&str], signers: &[&DeviceIdentity]) -> Vec<u8> {
        let ids = ids.iter().map(|h| {
            let mut b = [0u8; 32];
            for (o, pair) in b.iter_mut().zip(h.as_bytes().chunks_exact(2)) {
                *o = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
            }
            b
        });
        let mut e = EnvelopeErasure::new(&self.roster, ids).unwrap();
        for s in signers {
            e.cosign(s);
        }
        e.encode()
    }

    /// A family deletion statement for the current roster, signed by the guardian and the
    /// recovery key (a deletion quorum, roster.md §5).
    pub fn deletion(&self) -> Vec<u8> {
        let mut d = FamilyDeletion::new(&self.roster);
        d.cosign(&self.guardian);
        d.cosign_recovery(&self.recovery);
        d.encode()
    }

    /// Creates the family on the server (201).
    pub async fn create(&self, s: &TestServer) {
        let r = s
            .call(&self.guardian, "POST", &self.path(), &self.v1())
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }

    /// The next roster version with `members`, signed by the guardian and the recovery key (a
    /// quorum of every class) and by the `newcomers` it adds (proof of possession); not
    /// uploaded.
    pub fn next_roster(
        &mut self,
        members: Vec<PublicIdentity>,
        newcomers: &[&DeviceIdentity],
    ) -> Vec<u8> {
        self.next_roster_with(members, newcomers, |p| p)
    }

    /// [`Family::next_roster`], the proposal first passed through `edit` (e.g. to record a
    /// removed device's last envelope).
    pub fn next_roster_with(
        &mut self,
        members: Vec<PublicIdentity>,
        newcomers: &[&DeviceIdentity],
        edit: impl FnOnce(RosterProposal) -> RosterProposal,
    ) -> Vec<u8> {
        let mut next =
            edit(RosterProposal::next(&self.roster, members).unwrap()).sign(&self.guardian);
        next.cosign_recovery(&self.recovery);
        for d in newcomers {
            next.cosign(d);
        }
        self.roster = self.roster.verify_next(next.clone()).unwrap();
        self.chain.push(next.clone());
        next.encode()
    }

    /// An envelope from `sender` (a member) to the rest of the family, on the sender's chain
    /// (the next sequence, naming its previous envelope).
    pub fn seal(&self, sender: &DeviceIdentity, content: &[u8]) -> Vec<u8> {
        let mut senders = self.senders.lock().unwrap();
        let state = senders
            .entry(sender.device_id())
            .or_insert(toyseal_core::SenderState::FIRST);
        let env = self.seal_at(sender, state.sequence, state.previous, content);
        let header = toyseal_envelope::inspect(&env).unwrap();
        *state = toyseal_core::SenderState::after(header.sequence(), header.link_hash()).unwrap();
        env
    }

    /// An envelope from `sender` with the given sequence and previous hash (its sender state
    /// untouched): what a device that re-uses or back-dates a sequence produces.
    pub fn seal_at(
        &self,
        sender: &DeviceIdentity,
        sequence: u64,
        previous: [u8; 32],
        content: &[u8],
    ) -> Vec<u8> {
        let opts = SealOptions::default()
            .with_chunk_size_log2(10)
            .unwrap()
            .with_sequence(sequence)
            .with_previous(previous)
            .with_metadata(
                Metadata::default()
                    .with_content_type("audio/wav")
                    .with_codec("pcm_s16le"),
            );
        self.roster.seal(sender, opts, content, &mut OsRng).unwrap()
    }

    /// Uploads an envelope as its sender; returns its id.
    pub async fn upload(&self, s: &TestServer, sender: &DeviceIdentity, env: &[u8]) -> String {
        let r = s.call(sender, "POST", &self.envelopes_path(), env).await;
        assert!(
            r.status == 201 || r.status == 200,
            "{} {}",
            r.status,
            r.text()
        );
        let c: toyseal_cloud::api::EnvelopeCreated = r.json();
        c.id.to_string()
    }

    /// Every envelope id, following cursors.
    pub async fn list_all(&self, s: &TestServer, who: &DeviceIdentity) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let target = match &cursor {
                Some(c) => format!("{}?limit=100&cursor={c}", self.envelopes_path()),
                None => format!("{}?limit=100", self.envelopes_path()),
            };
            let r = s.call(who, "GET", &target, b"").await;
            assert_eq!(r.status, 200, "{}", r.text());
            let page: toyseal_cloud::api::EnvelopePage = r.json();
            ids.extend(page.items.iter().map(|i| i.id.to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return ids,
            }
        }
    }
}

/// A synthetic "recording": a marker phrase and a 440 Hz PCM tone.
pub fn recording(marker: &str) -> Vec<u8> {
    let mut v = marker.as_bytes().to_vec();
    for i in 0..8000u32 {
        let s = ((i as f32 * 440.0 * 2.0 * std::f32::consts::PI / 8000.0).sin() * 12000.0) as i16;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.extend_from_slice(marker.as_bytes());
    v
}

/// The generic 404 and 401 problems (`Resp::problem_text`: no request id, keys sorted).
pub const NOT_FOUND: &str = r#"{"detail":"no such resource","status":404,"title":"not found","type":"tag:toyseal.invalid,2026:problem:not-found"}"#;
pub const UNAUTHENTICATED: &str = r#"{"detail":"the request is not signed by a device this server knows, or its signature is stale, replayed or invalid","status":401,"title":"unauthenticated","type":"tag:toyseal.invalid,2026:problem:unauthenticated"}"#;

impl Family {
    /// Guardian and toy public identities (for the next roster).
    pub fn core(&self) -> Vec<PublicIdentity> {
        vec![self.guardian.public().clone(), self.toy.public().clone()]
    }
}
