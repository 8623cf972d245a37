//! Configuration: the resolved [`Config`] the server runs with, and [`ServeArgs`], the
//! `toyseal serve` command line (flags, then environment variables, then a TOML config file,
//! then defaults — in that order of precedence). The config file's keys are the flags' names in
//! snake_case; `toyseal-server.example.toml` beside this crate's manifest is a commented
//! example that the tests load verbatim.

use crate::Error;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory (SQLite file `toyseal.db` and blob directory `blobs/`).
pub const DEFAULT_DATA_DIR: &str = "./toyseal-data";
/// Default request body limit (bytes): 16 MiB, a few minutes of compressed voice.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;
/// Default per-device request rate (requests per second).
pub const DEFAULT_RATE_PER_SEC: u32 = 20;
/// Default per-device burst.
pub const DEFAULT_RATE_BURST: u32 = 40;
/// Default timeout for a whole request, body included (seconds).
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Default database timeout: pool acquire and SQLite busy wait (milliseconds).
pub const DEFAULT_DB_TIMEOUT_MS: u64 = 5000;
/// Default time a client has to send a complete request head (seconds; T63).
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default open connections per client address (T63).
pub const DEFAULT_CONNECTIONS_PER_ADDRESS: u32 = 64;
/// Default open connections in total, kept below the usual 1024 file descriptors (T63).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 900;
/// Default requests per second per client address, signed or not (T63).
pub const DEFAULT_ADDRESS_RATE_PER_SEC: u32 = 50;
/// Default burst per client address.
pub const DEFAULT_ADDRESS_RATE_BURST: u32 = 100;
/// Days a guardian's soft deletion of another device's envelope stays restorable before the
/// purge erases it (DESIGN "Deletion", THREATS T36).
pub const DEFAULT_SOFT_DELETION_DAYS: u32 = 30;
/// Soft deletions one device may make in 24 hours without an erasure statement (T36).
pub const DEFAULT_SOFT_DELETIONS_PER_DAY: u32 = 20;

/// The server's key for listing cursors (`next_cursor`): 32 bytes. Cursors are sealed under it
/// (ChaCha20-Poly1305, bound to the family), so a cursor reveals nothing and only works for the
/// family it was given for. Instances behind one load balancer need the same key. Zeroized
/// on drop; its `Debug` prints no key bytes.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    /// A fresh random key (cursors then do not survive a restart or cross instances).
    pub fn random() -> Result<Self, Error> {
        let mut k = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
            .map_err(|_| Error::Config("no randomness for the cursor key".into()))?;
        Ok(Self(k))
    }

    /// From 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut k)
            .map_err(|_| Error::Config("cursor key must be 64 hex digits".into()))?;
        Ok(Self(k))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorKey").finish_non_exhaustive()
    }
}

/// Where envelope blobs live.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobConfig {
    /// A local directory (object_store `LocalFileSystem`: temp file, then rename).
    Dir(PathBuf),
    /// An S3-compatible bucket; credentials from `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Endpoint URL (`None`: AWS). Plain `http://` is allowed only for a loopback host.
        endpoint: Option<String>,
        /// Region.
        region: String,
    },
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// The resolved configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on (used by [`run`](crate::run); an embedder brings its own
    /// listener).
    pub listen: SocketAddr,
    /// Data directory; holds the SQLite file when `database_url` is `None`.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; `None`: `sqlite:<data_dir>/toyseal.db`.
    pub database_url: Option<String>,
    /// Blob store.
    pub blobs: BlobConfig,
    /// Largest accepted request body, in bytes (413 beyond).
    pub body_limit: usize,
    /// Per-device sustained rate (requests per second); 0 disables rate limiting.
    pub rate_per_sec: u32,
    /// Per-device burst.
    pub rate_burst: u32,
    /// Timeout for a whole request including its body (408 beyond).
    pub request_timeout: Duration,
    /// Database pool acquire timeout and SQLite busy timeout.
    pub db_timeout: Duration,
    /// Largest number of pooled database connections.
    pub db_max_connections: u32,
    /// Time a client has to send a complete request head; the connection is closed after it.
    pub header_timeout: Duration,
    /// Open connections per client IP address (0: unlimited); more are answered 429 and
    /// closed at once.
    pub connections_per_address: u32,
    /// Open connections in total (0: unlimited); more are answered 503 and closed at once.
    pub max_connections: u32,
    /// Requests per second per client IP address, before authentication (0: off).
    pub address_rate_per_sec: u32,
    /// Per-address burst.
    pub address_rate_burst: u32,
    /// The authorities (`host` or `host:port`, lower case) clients sign as `@authority`;
    /// a request signed for any other is refused with 401. Empty: the listening address's
    /// forms (`127.0.0.1:8080`, and `localhost:8080` on loopback).
    pub public_names: Vec<String>,
    /// Key sealing listing cursors; `None`: a random key per process.
    pub cursor_key: Option<CursorKey>,
    /// Where [`run`](crate::run) serves `GET /metrics` (Prometheus); `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// How long a soft-deleted envelope stays restorable before the purge erases it.
    pub soft_deletion_period: Duration,
    /// Soft deletions one device may make in 24 hours; beyond, a quorum's erasure statement.
    pub soft_deletions_per_day: u32,
}

impl Config {
    /// Embedded defaults under `data_dir`: SQLite file and blob directory inside it.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            blobs: BlobConfig::Dir(data_dir.join("blobs")),
            data_dir,
            database_url: None,
            body_limit: DEFAULT_BODY_LIMIT,
            rate_per_sec: DEFAULT_RATE_PER_SEC,
            rate_burst: DEFAULT_RATE_BURST,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            db_timeout: Duration::from_millis(DEFAULT_DB_TIMEOUT_MS),
            db_max_connections: 8,
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            connections_per_address: DEFAULT_CONNECTIONS_PER_ADDRESS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            address_rate_per_sec: DEFAULT_ADDRESS_RATE_PER_SEC,
            address_rate_burst: DEFAULT_ADDRESS_RATE_BURST,
            public_names: Vec::new(),
            cursor_key: None,
            metrics_listen: None,
            soft_deletion_period: days(DEFAULT_SOFT_DELETION_DAYS),
            soft_deletions_per_day: DEFAULT_SOFT_DELETIONS_PER_DAY,
        }
    }

    /// The database URL in force.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("toyseal.db").display()
            ),
        }
    }

    /// Sets the soft-deletion period and the daily soft-deletion limit per device.
    pub fn with_soft_deletion(mut self, period: Duration, per_day: u32) -> Self {
        self.soft_deletion_period = period;
        self.soft_deletions_per_day = per_day;
        self
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
    /// Sets the database URL.
    pub fn with_database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }
    /// Sets the blob store.
    pub fn with_blobs(mut self, blobs: BlobConfig) -> Self {
        self.blobs = blobs;
        self
    }
    /// Sets the body limit.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
    /// Sets the per-device rate limit (0: off).
    pub fn with_rate_limit(mut self, per_sec: u32, burst: u32) -> Self {
        self.rate_per_sec = per_sec;
        self.rate_burst = burst;
        self
    }
    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }
    /// Sets the database timeout.
    pub fn with_db_timeout(mut self, t: Duration) -> Self {
        self.db_timeout = t;
        self
    }
    /// Sets the header-read timeout.
    pub fn with_header_timeout(mut self, t: Duration) -> Self {
        self.header_timeout = t;
        self
    }
    /// Sets the connection limits: per client address and in total (0: unlimited).
    pub fn with_connection_limits(mut self, per_address: u32, total: u32) -> Self {
        self.connections_per_address = per_address;
        self.max_connections = total;
        self
    }
    /// Sets the per-address request rate (0: off).
    pub fn with_address_rate_limit(mut self, per_sec: u32, burst: u32) -> Self {
        self.address_rate_per_sec = per_sec;
        self.address_rate_burst = burst;
        self
    }
    /// Sets the public names clients sign as `@authority`.
    pub fn with_public_names(mut self, names: Vec<String>) -> Self {
        self.public_names = names;
        self
    }
    /// Sets the cursor key.
    pub fn with_cursor_key(mut self, key: CursorKey) -> Self {
        self.cursor_key = Some(key);
        self
    }
    /// Sets the metrics listener of [`run`](crate::run).
    pub fn with_metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }
}

/// A metrics address: `HOST:PORT`, or a bare `PORT` meaning `127.0.0.1:PORT` (loopback unless
/// said otherwise).
pub fn parse_metrics_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is neither PORT nor HOST:PORT"))
}

/// `toyseal serve`: command-line flags, each also readable from an environment variable.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML config file with any of the keys below (the flag names in snake_case, e.g.
    /// `body_limit = 16777216`, `public_names = ["api.example.org"]`); unknown keys are
    /// refused; flags and environment variables override it.
    #[arg(long, env = "TOYSEAL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TOYSEAL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory: the SQLite file and the blob directory [default: ./toyseal-data].
    #[arg(long, env = "TOYSEAL_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Database URL: `sqlite:…` or `postgres://…` [default: SQLite file under --data].
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Blob directory [default: DATA/blobs]; ignored with --s3-bucket.
    #[arg(long, env = "TOYSEAL_BLOB_DIR", value_name = "DIR")]
    pub blob_dir: Option<PathBuf>,
    /// Store blobs in this S3 bucket (credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "TOYSEAL_S3_BUCKET", value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL (http:// only for a loopback host).
    #[arg(long, env = "TOYSEAL_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long, env = "TOYSEAL_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Largest request body in bytes [default: 16777216].
    #[arg(long, env = "TOYSEAL_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Per-device requests per second, per server instance; 0 disables [default: 20].
    #[arg(long, env = "TOYSEAL_RATE_PER_SEC", value_name = "N")]
    pub rate_per_sec: Option<u32>,
    /// Per-device burst [default: 40].
    #[arg(long, env = "TOYSEAL_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u32>,
    /// Whole-request timeout in seconds, body included [default: 30].
    #[arg(long, env = "TOYSEAL_REQUEST_TIMEOUT", value_name = "SECS")]
    pub request_timeout: Option<u64>,
    /// Database acquire / busy timeout in milliseconds [default: 5000].
    #[arg(long, env = "TOYSEAL_DB_TIMEOUT_MS", value_name = "MS")]
    pub db_timeout_ms: Option<u64>,
    /// Seconds a client has to send a complete request head [default: 10].
    #[arg(long, env = "TOYSEAL_HEADER_TIMEOUT", value_name = "SECS")]
    pub header_timeout: Option<u64>,
    /// Open connections per client address; 0 = unlimited [default: 64].
    #[arg(long, env = "TOYSEAL_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub connections_per_address: Option<u32>,
    /// Open connections in total; 0 = unlimited [default: 900].
    #[arg(long, env = "TOYSEAL_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,
    /// Requests per second per client address, before authentication; 0 disables [default: 50].
    #[arg(long, env = "TOYSEAL_ADDRESS_RATE_PER_SEC", value_name = "N")]
    pub address_rate_per_sec: Option<u32>,
    /// Per-address burst [default: 100].
    #[arg(long, env = "TOYSEAL_ADDRESS_RATE_BURST", value_name = "N")]
    pub address_rate_burst: Option<u32>,
    /// A name clients sign as `@authority` (`host` or `host:port`); repeat or separate with
    /// commas [default: the listen address, and localhost:PORT on loopback].
    #[arg(
        long = "public-name",
        env = "TOYSEAL_PUBLIC_NAMES",
        value_name = "AUTHORITY",
        value_delimiter = ','
    )]
    pub public_names: Vec<String>,
    /// 64 hex digits sealing listing cursors; the same on every instance [default: random
    /// per process].
    #[arg(
        long,
        env = "TOYSEAL_CURSOR_KEY",
        value_name = "HEX",
        hide_env_values = true
    )]
    pub cursor_key: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, apart from the API: `PORT`
    /// (on 127.0.0.1) or `HOST:PORT` [default: off].
    #[arg(
        long,
        env = "TOYSEAL_METRICS_LISTEN",
        value_name = "ADDR",
        value_parser = parse_metrics_listen
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// Days a guardian's soft deletion of another device's envelope stays restorable before
    /// it is erased, at least 1 [default: 30].
    #[arg(long, env = "TOYSEAL_SOFT_DELETION_DAYS", value_name = "DAYS")]
    pub soft_deletion_days: Option<u32>,
    /// Soft deletions one device may make in 24 hours without a quorum's erasure statement
    /// [default: 20].
    #[arg(long, env = "TOYSEAL_SOFT_DELETIONS_PER_DAY", value_name = "N")]
    pub soft_deletions_per_day: Option<u32>,
}

/// The config file: the same keys as the flags, all optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    #[serde(alias = "data_dir")]
    data: Option<PathBuf>,
    database_url: Option<String>,
    blob_dir: Option<PathBuf>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    body_limit: Option<usize>,
    rate_per_sec: Option<u32>,
    rate_burst: Option<u32>,
    request_timeout: Option<u64>,
    db_timeout_ms: Option<u64>,
    header_timeout: Option<u64>,
    connections_per_address: Option<u32>,
    max_connections: Option<u32>,
    address_rate_per_sec: Option<u32>,
    address_rate_burst: Option<u32>,
    #[serde(alias = "public_name")]
    public_names: Option<Vec<String>>,
    cursor_key: Option<String>,
    metrics_listen: Option<String>,
    soft_deletion_days: Option<u32>,
    soft_deletions_per_day: Option<u32>,
}

fn read_file_config(path: &Path) -> Result<FileConfig, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    parse_file_config(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn parse_file_config(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

impl ServeArgs {
    /// Resolves flags, environment (already folded in by clap), config file and defaults.
    pub fn resolve(&self) -> Result<Config, Error> {
        let file = match &self.config {
            Some(p) => read_file_config(p)?,
            None => FileConfig::default(),
        };
        let data = self
            .data
            .clone()
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut cfg = Config::embedded(&data);
        if let Some(l) = self.listen.or(file.listen) {
            cfg.listen = l;
        }
        cfg.database_url = self.database_url.clone().or(file.database_url);
        let bucket = self.s3_bucket.clone().or(file.s3_bucket);
        cfg.blobs = match bucket {
            Some(bucket) => BlobConfig::S3 {
                bucket,
                endpoint: self.s3_endpoint.clone().or(file.s3_endpoint),
                region: self
                    .s3_region
                    .clone()
                    .or(file.s3_region)
                    .unwrap_or_else(|| "us-east-1".to_owned()),
            },
            None => BlobConfig::Dir(
                self.blob_dir
                    .clone()
                    .or(file.blob_dir)
                    .unwrap_or_else(|| data.join("blobs")),
            ),
        };
        if let Some(v) = self.body_limit.or(file.body_limit) {
            cfg.body_limit = v;
        }
        if let Some(v) = self.rate_per_sec.or(file.rate_per_sec) {
            cfg.rate_per_sec = v;
        }
        if let Some(v) = self.rate_burst.or(file.rate_burst) {
            cfg.rate_burst = v;
        }
        if let Some(v) = self.request_timeout.or(file.request_timeout) {
            cfg.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.db_timeout_ms.or(file.db_timeout_ms) {
            cfg.db_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.header_timeout.or(file.header_timeout) {
            cfg.header_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self
            .connections_per_address
            .or(file.connections_per_address)
        {
            cfg.connections_per_address = v;
        }
        if let Some(v) = self.max_connections.or(file.max_connections) {
            cfg.max_connections = v;
        }
        if let Some(v) = self.address_rate_per_sec.or(file.address_rate_per_sec) {
            cfg.address_rate_per_sec = v;
        }
        if let Some(v) = self.address_rate_burst.or(file.address_rate_burst) {
            cfg.address_rate_burst = v;
        }
        if !self.public_names.is_empty() {
            cfg.public_names = self.public_names.clone();
        } else if let Some(v) = file.public_names {
            cfg.public_names = v;
        }
        cfg.public_names = cfg
            .public_names
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        if let Some(k) = self.cursor_key.as_deref().or(file.cursor_key.as_deref()) {
            cfg.cursor_key = Some(CursorKey::from_hex(k)?);
        }
        cfg.metrics_listen = match (self.metrics_listen, file.metrics_listen.as_deref()) {
            (Some(a), _) => Some(a),
            (None, Some(text)) => Some(
                parse_metrics_listen(text)
                    .map_err(|e| Error::Config(format!("metrics_listen: {e}")))?,
            ),
            (None, None) => None,
        };
        if let Some(v) = self.soft_deletion_days.or(file.soft_deletion_days) {
            cfg.soft_deletion_period = days(v);
        }
        if let Some(v) = self.soft_deletions_per_day.or(file.soft_deletions_per_day) {
            cfg.soft_deletions_per_day = v;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Config {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.body_limit == 0 {
            return Err(Error::Config("body_limit must be positive".into()));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::Config("request_timeout must be positive".into()));
        }
        if self.rate_per_sec > 0 && self.rate_burst == 0 {
            return Err(Error::Config("rate_burst must be positive".into()));
        }
        if self.address_rate_per_sec > 0 && self.address_rate_burst == 0 {
            return Err(Error::Config("address_rate_burst must be positive".into()));
        }
        if self.header_timeout.is_zero() {
            return Err(Error::Config("header_timeout must be positive".into()));
        }
        // A soft deletion must stay restorable for a while: a zero period would be the
        // immediate erasure that T36 refuses to one guardian.
        if self.soft_deletion_period < Duration::from_secs(86_400) {
            return Err(Error::Config(
                "soft_deletion_days must be at least 1".into(),
            ));
        }
        if let Some(bad) = self.public_names.iter().find(|n| {
            n.is_empty()
                || n.bytes().any(|b| {
                    !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:[]".contains(&b))
                })
        }) {
            return Err(Error::Config(format!(
                "public name {bad:?} is not a lower-case host or host:port"
            )));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(Error::Config(
                "database URL must start with sqlite: or postgres://".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_override_file_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nbody_limit = 1000\nrate_per_sec = 5\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            body_limit: Some(2000),
            ..ServeArgs::default()
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.listen.port(), 9999);
        assert_eq!(cfg.body_limit, 2000);
        assert_eq!(cfg.rate_per_sec, 5);
        assert_eq!(cfg.rate_burst, DEFAULT_RATE_BURST);
        assert_eq!(
            cfg.blobs,
            BlobConfig::Dir(PathBuf::from(DEFAULT_DATA_DIR).join("blobs"))
        );
        let rest = "header_timeout = 3\nconnections_per_address = 5\nmax_connections = 50\n\
                    address_rate_per_sec = 7\naddress_rate_burst = 9\n\
                    public_names = [\"API.Example.org\"]\n";
        std::fs::write(&file, format!("{rest}cursor_key = \"ab\"\n")).unwrap();
        assert!(
            matches!(args.resolve(), Err(Error::Config(_))),
            "short cursor key"
        );
        std::fs::write(
            &file,
            format!("{rest}cursor_key = \"{}\"\n", "0f".repeat(32)),
        )
        .unwrap();
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.header_timeout, Duration::from_secs(3));
        assert_eq!((cfg.connections_per_address, cfg.max_connections), (5, 50));
        assert_eq!((cfg.address_rate_per_sec, cfg.address_rate_burst), (7, 9));
        assert_eq!(cfg.public_names, vec!["api.example.org".to_owned()]);
        assert_eq!(cfg.cursor_key, Some(CursorKey([0x0f; 32])));
        assert!(
            !format!("{cfg:?}").contains("15, 15"),
            "no key bytes in Debug"
        );
        let flags = ServeArgs {
            public_names: vec!["a.example".into(), "b.example:8443".into()],
            ..args.clone()
        };
        assert_eq!(flags.resolve().unwrap().public_names.len(), 2);
        std::fs::write(&file, "lisen = \"127.0.0.1:9999\"\n").unwrap();
        assert!(
            matches!(args.resolve(), Err(Error::Config(_))),
            "unknown key"
        );
        std::fs::write(
            &file,
            "public_name = [\"a.example\"]\nmetrics_listen = \"9464\"\n",
        )
        .unwrap();
        let cfg = args.resolve().unwrap();
        assert_eq!(
            cfg.public_names,
            vec!["a.example".to_owned()],
            "the flag's spelling"
        );
        assert_eq!(
            cfg.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
    }

    /// The soft-deletion period and daily limit (T36) come from the file or the flags; a
    /// period under a day is refused (it would be the immediate erasure one guardian may not
    /// do).
    #[test]
    fn soft_deletion_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "soft_deletion_days = 7
soft_deletions_per_day = 5
",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.soft_deletion_period, Duration::from_secs(7 * 86_400));
        assert_eq!(cfg.soft_deletions_per_day, 5);
        let flags = ServeArgs {
            soft_deletion_days: Some(2),
            ..args.clone()
        };
        assert_eq!(
            flags.resolve().unwrap().soft_deletion_period,
            Duration::from_secs(2 * 86_400)
        );
        std::fs::write(
            &file,
            "soft_deletion_days = 0
",
        )
        .unwrap();
        assert!(matches!(args.resolve(), Err(Error::Config(_))));
        let defaults = Config::embedded("x");
        assert_eq!(
            defaults.soft_deletion_period,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(defaults.soft_deletions_per_day, 20);
    }
}
