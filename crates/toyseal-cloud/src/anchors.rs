//! Where a device keeps its roster anchors (docs/spec/roster.md §6) beside its keys, so a
//! reinstalled app re-anchors without trusting the server: one file per family,
//! `DIR/<family id>.anchor`, holding the anchor's text form, written atomically (temporary
//! file, fsync, rename, fsync of the directory). On phones the same text goes into the
//! keychain item that holds the device's keys.

use crate::Error;
use crate::outbox::{random_hex8, replace_durably};
use std::fs;
use std::path::{Path, PathBuf};
use toyseal_core::FamilyId;
use toyseal_roster::Anchor;

const EXTENSION: &str = "anchor";

/// A directory of anchors, one per family.
#[derive(Clone, Debug)]
pub struct AnchorStore {
    dir: PathBuf,
}

impl AnchorStore {
    /// Opens (and creates) the directory `dir` — typically the device's key directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, family: FamilyId) -> PathBuf {
        self.dir.join(format!("{family}.{EXTENSION}"))
    }

    /// Stores (or replaces) the anchor of its family.
    pub fn store(&self, anchor: &Anchor) -> Result<(), Error> {
        let path = self.path(anchor.family());
        let tmp = self.dir.join(format!(
            ".{}.{}",
            anchor.family(),
            random_hex8(&mut toyseal_core::OsRng)
        ));
        replace_durably(&self.dir, &tmp, &path, anchor.to_string().as_bytes())
    }

    /// The anchor kept for `family`, if any. A file that does not hold a well-formed anchor of
    /// that family is an error, never silently ignored.
    pub fn load(&self, family: FamilyId) -> Result<Option<Anchor>, Error> {
        let text = match fs::read_to_string(self.path(family)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let anchor: Anchor = text.trim_end().parse()?;
        if anchor.family() != family {
            return Err(Error::Integrity("an anchor file names another family"));
        }
        Ok(Some(anchor))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn store_then_load_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let family = FamilyId::from_bytes([3; 16]);
        let anchor: Anchor = format!("{family}:2:{}", "cd".repeat(32)).parse().unwrap();
        let store = AnchorStore::open(dir.path()).unwrap();
        assert_eq!(store.load(family).unwrap(), None);
        store.store(&anchor).unwrap();
        let reopened = AnchorStore::open(dir.path()).unwrap();
        assert_eq!(reopened.load(family).unwrap(), Some(anchor));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A tampered file is an error.
        fs::write(dir.path().join(format!("{family}.anchor")), "garbage").unwrap();
        assert!(reopened.load(family).is_err());
    }
}
