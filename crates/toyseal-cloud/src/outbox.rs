//! A crash-safe outbox: sealed envelopes queued in a directory until they are uploaded
//! (T60). The directory part is plain `std::fs`; [`Outbox::upload_all`] needs the `client`
//! feature.
//!
//! Layout: `<dir>/<family id>/<envelope id>.tse`, each file a complete envelope whose name is
//! the SHA-256 of its bytes.
//!
//! Guarantees:
//! - **No plaintext**: [`Outbox::enqueue`] accepts only bytes that verify as a complete
//!   envelope with a valid sender signature (`toyseal_envelope::verify`, no key needed), so a
//!   recording that was never sealed cannot be queued by mistake.
//! - **All or nothing**: an envelope is written to a temporary file (`.tmp-…`), fsynced,
//!   renamed to its final name, and the directory fsynced. A crash at any point leaves either
//!   the complete file or no queued file; [`Outbox::open`] deletes leftover temporary files.
//! - **Exactly once**: names are content hashes, so enqueueing the same bytes twice is a no-op,
//!   and uploads are idempotent on the server (201 or 200). A file is removed only after the
//!   server confirmed it stored exactly these bytes; a crash between the two re-uploads it
//!   later, which changes nothing.

use crate::Error;
use crate::api::EnvelopeId;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use toyseal_core::FamilyId;

/// Extension of a queued envelope.
pub const EXTENSION: &str = "tse";
const TEMP_PREFIX: &str = ".tmp-";

/// A directory of sealed envelopes waiting for upload.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
}

/// One queued envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The family it goes to.
    pub family: FamilyId,
    /// Its id (the SHA-256 of its bytes; also its file name).
    pub id: EnvelopeId,
    /// Its file.
    pub path: PathBuf,
}

/// What [`Outbox::upload_all`] did.
#[cfg(feature = "client")]
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct UploadReport {
    /// Envelopes the server stored now (201).
    pub created: usize,
    /// Envelopes the server already had (200): an earlier upload whose removal did not happen.
    pub already_stored: usize,
    /// Envelopes the server refused for good (e.g. 400, 403, 404); they stay queued.
    pub refused: Vec<(EnvelopeId, Error)>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir` and deletes temporary files left by a
    /// crash.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let outbox = Self { dir };
        for family_dir in outbox.family_dirs()? {
            let mut removed = false;
            for entry in fs::read_dir(&family_dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    fs::remove_file(entry.path())?;
                    removed = true;
                }
            }
            if removed {
                sync_dir(&family_dir)?;
            }
        }
        Ok(outbox)
    }

    /// The outbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `envelope` for `family`; returns its id. Refuses anything that is not a
    /// complete, validly signed envelope (so never plaintext), and an envelope whose header
    /// names another family. Queueing the same bytes again does nothing.
    pub fn enqueue(&self, family: FamilyId, envelope: &[u8]) -> Result<EnvelopeId, Error> {
        let header = toyseal_envelope::verify(envelope, toyseal_envelope::OpenOptions::default())?;
        if header.family().is_some_and(|f| f != family) {
            return Err(Error::Integrity("the envelope names another family"));
        }
        let id = EnvelopeId::of(envelope);
        let family_dir = self.dir.join(family.to_string());
        if !family_dir.is_dir() {
            fs::create_dir_all(&family_dir)?;
            sync_dir(&self.dir)?;
        }
        let path = family_dir.join(format!("{id}.{EXTENSION}"));
        if path.exists() {
            // Only complete files ever carry this name, and the name is the content's hash.
            return Ok(id);
        }
        let tmp = family_dir.join(format!(
            "{TEMP_PREFIX}{id}-{}",
            random_hex8(&mut toyseal_core::OsRng)
        ));
        replace_durably(&family_dir, &tmp, &path, envelope)?;
        Ok(id)
    }

    /// Every queued envelope, oldest first (then by id).
    pub fn pending(&self) -> Result<Vec<Queued>, Error> {
        let mut out = Vec::new();
        for family_dir in self.family_dirs()? {
            let Some(family) = family_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<FamilyId>().ok())
            else {
                continue;
            };
            for entry in fs::read_dir(&family_dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(&format!(".{EXTENSION}")).map(str::to_owned))
                    .and_then(|n| n.parse::<EnvelopeId>().ok())
                else {
                    continue;
                };
                let modified = entry.metadata()?.modified()?;
                out.push((
                    modified,
                    Queued {
                        family,
                        id,
                        path: entry.path(),
                    },
                ));
            }
        }
        out.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then(a.id.cmp(&b.id)));
        Ok(out.into_iter().map(|(_, q)| q).collect())
    }

    /// Reads a queued envelope, checking it still hashes to its name.
    pub fn read(&self, queued: &Queued) -> Result<Vec<u8>, Error> {
        let bytes = fs::read(&queued.path)?;
        if EnvelopeId::of(&bytes) != queued.id {
            return Err(Error::Integrity("queued file does not hash to its name"));
        }
        Ok(bytes)
    }

    /// Removes a queued envelope (after the server confirmed it) durably.
    pub fn remove(&self, queued: &Queued) -> Result<(), Error> {
        match fs::remove_file(&queued.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if let Some(parent) = queued.path.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Uploads every queued envelope with `client`, removing each once the server confirmed
    /// it (201 or 200 with the right id). Stops at the first transient failure (server or
    /// network down: the rest stays queued for the next call); envelopes the server refuses
    /// for good stay queued and are reported.
    #[cfg(feature = "client")]
    pub async fn upload_all(&self, client: &crate::Client) -> Result<UploadReport, Error> {
        let mut report = UploadReport::default();
        for queued in self.pending()? {
            let bytes = self.read(&queued)?;
            match client.upload(queued.family, &bytes).await {
                Ok(up) => {
                    self.remove(&queued)?;
                    if up.created {
                        report.created += 1;
                    } else {
                        report.already_stored += 1;
                    }
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e @ Error::Status { .. }) => report.refused.push((queued.id, e)),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    fn family_dirs(&self) -> Result<Vec<PathBuf>, Error> {
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        Ok(dirs)
    }
}

/// Writes `bytes` to the new file `tmp` in `dir`, fsyncs it, renames it to `path` and makes
/// the rename durable: a reader sees the old file or the whole new one, never a part.
pub(crate) fn replace_durably(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<(), Error> {
    let written = (|| -> Result<(), Error> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    fs::rename(tmp, path)?;
    sync_dir(dir)
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = (dir, File::open); // Directory handles cannot be fsynced here.
    Ok(())
}

/// A random suffix, so two writers of the same envelope never share a temporary file.
pub(crate) fn random_hex8(rng: &mut impl toyseal_core::CryptoRng) -> String {
    let mut b = [0u8; 8];
    rng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use toyseal_core::{DeviceIdentity, OsRng, Role};
    use toyseal_envelope::SealOptions;

    fn envelope(family: FamilyId, content: &[u8]) -> Vec<u8> {
        let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
        let phone = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
        toyseal_envelope::seal(
            &toy,
            &[phone.public().clone()],
            &SealOptions::default().with_family(family, 1),
            content,
            &mut OsRng,
        )
        .unwrap()
    }

    #[test]
    fn enqueue_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let family = FamilyId::from_bytes([1; 16]);
        let env = envelope(family, b"hello");
        let id = outbox.enqueue(family, &env).unwrap();
        assert_eq!(id, EnvelopeId::of(&env));
        assert_eq!(outbox.enqueue(family, &env).unwrap(), id);
        let pending = outbox.pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].family, family);
        assert_eq!(outbox.read(&pending[0]).unwrap(), env);
        outbox.remove(&pending[0]).unwrap();
        assert!(outbox.pending().unwrap().is_empty());
    }

    #[test]
    fn refuses_plaintext_truncation_and_other_families() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let family = FamilyId::from_bytes([1; 16]);
        let env = envelope(family, b"hello");
        assert!(matches!(
            outbox.enqueue(family, b"RIFF....WAVE plaintext audio"),
            Err(Error::Envelope(_))
        ));
        assert!(matches!(
            outbox.enqueue(family, &env[..env.len() - 1]),
            Err(Error::Envelope(_))
        ));
        let mut flipped = env.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            outbox.enqueue(family, &flipped),
            Err(Error::Envelope(_))
        ));
        assert!(matches!(
            outbox.enqueue(FamilyId::from_bytes([2; 16]), &env),
            Err(Error::Integrity(_))
        ));
        assert!(outbox.pending().unwrap().is_empty());
    }

    #[test]
    fn open_removes_leftover_temp_files_and_ignores_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let family = FamilyId::from_bytes([1; 16]);
        let fdir = dir.path().join(family.to_string());
        fs::create_dir_all(&fdir).unwrap();
        fs::write(fdir.join(".tmp-partial"), b"toyseal\x01 half an envelope").unwrap();
        fs::write(fdir.join("notes.txt"), b"x").unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        assert!(!fdir.join(".tmp-partial").exists());
        assert!(outbox.pending().unwrap().is_empty());
    }
}
