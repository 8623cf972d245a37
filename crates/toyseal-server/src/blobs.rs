//! The blob store: envelope ciphertext under `envelopes/<family>/<id>`, written create-only.
//!
//! A local directory (object_store `LocalFileSystem`: each write goes to a staging file that is
//! hard-linked into place only when complete, so no partial blob is ever at a key) or an
//! S3-compatible bucket (a PUT is atomic; `If-None-Match: *` makes it create-only; objects are
//! written without any ACL header, so they stay private to the bucket owner). The server never
//! serves the store itself: every read goes through an authorized database row.
//!
//! **Staging files.** A directory write that is interrupted (the process killed between
//! creating `<key>#<n>` and linking it into place) leaves that staging file behind: up to a
//! whole envelope of ciphertext, under the family's directory. `LocalFileSystem::list` skips
//! such names, so this module walks the directory itself ([`Blobs::staging_files`]): a family
//! deletion removes every staging file under the family's prefix and the orphan sweeper every
//! old one anywhere. S3 has no equivalent: an envelope is one `PutObject` (never a multipart
//! upload: bodies are at most the configured limit and `put_opts` sends them whole), and an
//! interrupted PUT stores nothing visible or billable, so there is nothing to abort.

use crate::Error;
use crate::config::BlobConfig;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use toyseal_cloud::api::EnvelopeId;
use toyseal_core::FamilyId;

/// The blob store handle (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The root directory of a directory store (`None` for S3): walked for staging files.
    dir: Option<PathBuf>,
}

/// A blob being read piece by piece ([`Blobs::get_stream`]).
pub(crate) struct BlobStream {
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its bytes, in order.
    pub(crate) pieces: futures::stream::BoxStream<'static, object_store::Result<axum::body::Bytes>>,
}

/// What a create-only put found.
pub(crate) enum Put {
    /// Written now.
    Created,
    /// A blob was already at the key (a retry after a crash, or a concurrent upload).
    Existed,
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Creates `dir` (and parents) readable by the owner only.
pub(crate) fn create_private_dir(dir: &std::path::Path) -> Result<(), Error> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))
}

impl Blobs {
    /// Opens the configured store.
    pub(crate) fn open(cfg: &BlobConfig) -> Result<Self, Error> {
        let root = match cfg {
            BlobConfig::Dir(dir) => Some(dir.clone()),
            _ => None,
        };
        let store: Arc<dyn ObjectStore> = match cfg {
            BlobConfig::Dir(dir) => {
                create_private_dir(dir)?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(dir)
                        .map_err(|e| Error::Config(format!("blob directory: {e}")))?
                        // Remove a family's emptied directory too: its name is the family id.
                        .with_automatic_cleanup(true),
                )
            }
            BlobConfig::S3 {
                bucket,
                endpoint,
                region,
            } => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_conditional_put(S3ConditionalPut::ETagMatch);
                if let Ok(k) = std::env::var("AWS_ACCESS_KEY_ID") {
                    b = b.with_access_key_id(k);
                }
                if let Ok(k) = std::env::var("AWS_SECRET_ACCESS_KEY") {
                    b = b.with_secret_access_key(k);
                }
                if let Ok(t) = std::env::var("AWS_SESSION_TOKEN") {
                    b = b.with_token(t);
                }
                if let Some(ep) = endpoint {
                    if ep.starts_with("http://") && !is_loopback_url(ep) {
                        return Err(Error::Config(
                            "plain http:// S3 endpoints are allowed only on loopback".into(),
                        ));
                    }
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(is_loopback_url(ep))
                        .with_virtual_hosted_style_request(false);
                }
                Arc::new(
                    b.build()
                        .map_err(|e| Error::Config(format!("S3 blob store: {e}")))?,
                )
            }
        };
        Ok(Self { store, dir: root })
    }

    /// The key of an envelope.
    pub(crate) fn key(family: FamilyId, id: &EnvelopeId) -> String {
        format!("envelopes/{family}/{id}")
    }

    /// The prefix under which every envelope of the family is stored.
    pub(crate) fn family_prefix(family: FamilyId) -> String {
        format!("envelopes/{family}/")
    }

    /// Writes `bytes` at `key` only if nothing is there (T10).
    pub(crate) async fn put_create(&self, key: &str, bytes: Vec<u8>) -> Result<Put, Error> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&ObjectPath::from(key), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(Put::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Existed),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a whole blob; `None` if absent.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A blob as a stream of pieces, with its size; `None` if absent. Memory is one piece at a
    /// time whatever the blob's size (8 KiB reads from a directory; S3 bodies as they arrive),
    /// so a download of a large envelope does not hold it whole.
    pub(crate) async fn get_stream(&self, key: &str) -> Result<Option<BlobStream>, Error> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => Ok(Some(BlobStream {
                size: r.meta.size,
                pieces: r.into_stream(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a blob; absent is fine (deletes are retried).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every key under `prefix` with its age.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, Duration)>, Error> {
        let now = std::time::SystemTime::now();
        let prefix = ObjectPath::from(prefix);
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let modified = std::time::SystemTime::from(m.last_modified);
                let age = now.duration_since(modified).unwrap_or_default();
                (m.location.to_string(), age)
            })
            .collect())
    }
}

/// A staging file of the directory store: its path and its age.
#[derive(Debug)]
pub(crate) struct StagingFile {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// How long since it was last written.
    pub(crate) age: Duration,
}

/// Whether a file name is one of `LocalFileSystem`'s staging names, `<key>#<digits>` (a key of
/// this server is hex, so no stored blob's name contains `#`).
fn is_staging_name(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

/// Every staging file under `dir`, depth first. A directory that vanishes while walked (a
/// concurrent deletion's cleanup) is skipped; any other read failure is an error, so that a
/// deletion never reports "nothing left" from a scan that did not look.
fn walk_staging(
    dir: &std::path::Path,
    now: SystemTime,
    out: &mut Vec<StagingFile>,
) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            walk_staging(&entry.path(), now, out)?;
        } else if entry.file_name().to_str().is_some_and(is_staging_name) {
            let modified = match entry.metadata().and_then(|m| m.modified()) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(StagingFile {
                path: entry.path(),
                // A clock step backwards makes a file look new: it is kept, not deleted early.
                age: now.duration_since(modified).unwrap_or(Duration::ZERO),
            });
        }
    }
    Ok(())
}

impl Blobs {
    /// The staging files of the directory store under `prefix` (a key prefix such as
    /// [`family_prefix`](Self::family_prefix) or `"envelopes"`); always empty for S3 (see the
    /// module docs).
    pub(crate) async fn staging_files(&self, prefix: &str) -> Result<Vec<StagingFile>, Error> {
        let Some(root) = &self.dir else {
            return Ok(Vec::new());
        };
        let dir = root.join(prefix.trim_end_matches('/'));
        let found = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk_staging(&dir, SystemTime::now(), &mut out).map(|()| out)
        })
        .await
        .map_err(|e| Error::Internal(format!("staging scan task: {e}")))?;
        found.map_err(|e| Error::Unavailable(format!("blob store: staging scan: {e}")))
    }

    /// Removes a staging file; absent is fine (its upload finished or another sweep won).
    pub(crate) async fn remove_staging(&self, file: &StagingFile) -> Result<(), Error> {
        match tokio::fs::remove_file(&file.path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Unavailable(format!(
                "blob store: staging removal: {e}"
            ))),
        }
    }

    /// Removes the directory store's (empty) directory of `prefix`, as `LocalFileSystem`'s
    /// automatic cleanup does after a delete: its name is the family id (T15). A directory that
    /// is not empty (an upload racing the deletion just created a file) is left to the next
    /// scan.
    pub(crate) async fn remove_empty_dir(&self, prefix: &str) {
        if let Some(root) = &self.dir {
            let _ = tokio::fs::remove_dir(root.join(prefix.trim_end_matches('/'))).await;
        }
    }

    /// Whether anything at all is stored under `prefix`: a blob, a staging file, or (directory
    /// store) the prefix's directory itself.
    pub(crate) async fn anything_under(&self, prefix: &str) -> Result<bool, Error> {
        if !self.list(prefix).await?.is_empty() || !self.staging_files(prefix).await?.is_empty() {
            return Ok(true);
        }
        Ok(match &self.dir {
            Some(root) => tokio::fs::try_exists(root.join(prefix.trim_end_matches('/')))
                .await
                .map_err(|e| Error::Unavailable(format!("blob store: {e}")))?,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert!(is_staging_name("ab12#1"));
        assert!(is_staging_name("ab12#42"));
        assert!(!is_staging_name("ab12"));
        assert!(!is_staging_name("ab12#"));
        assert!(!is_staging_name("ab12#x1"));
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:9000"));
        assert!(is_loopback_url("http://localhost:9000/"));
        assert!(is_loopback_url("http://[::1]:9000"));
        assert!(!is_loopback_url("http://s3.example.com"));
        assert!(!is_loopback_url("http://10.0.0.1:9000"));
    }
}
