//! The blob store: envelope ciphertext under `envelopes/<family>/<id>`, written create-only.
//!
//! A local directory (object_store `LocalFileSystem`: each write goes to a staging file that is
//! hard-linked into place only when complete, so no partial blob is ever at a key) or an
//! S3-compatible bucket (a PUT is atomic; `If-None-Match: *` makes it create-only; objects are
//! written without any ACL header, so they stay private to the bucket owner). The server never
//! serves the store itself: every read goes through an authorized database row.

use crate::Error;
use crate::config::BlobConfig;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use std::sync::Arc;
use std::time::Duration;
use toyseal_cloud::api::EnvelopeId;
use toyseal_core::FamilyId;

/// The blob store handle (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Blobs {
    store: Arc<dyn ObjectStore>,
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
        Ok(Self { store })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:9000"));
        assert!(is_loopback_url("http://localhost:9000/"));
        assert!(is_loopback_url("http://[::1]:9000"));
        assert!(!is_loopback_url("http://s3.example.com"));
        assert!(!is_loopback_url("http://10.0.0.1:9000"));
    }
}
