//! Where a device keeps its identity. Firmware implements [`KeyStore`] over its secure element
//! or flash; phones over the platform keychain; [`FileKeyStore`] is the desktop/server default.

use crate::{DeviceIdentity, Error};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

/// Storage for named device identities.
pub trait KeyStore {
    /// Loads the identity stored under `name`, or `None` if there is none.
    fn load(&self, name: &str) -> Result<Option<DeviceIdentity>, Error>;
    /// Stores `identity` under `name`, replacing any previous one atomically: a reader sees
    /// either the old identity or the new one, never a mix or an empty file.
    fn store(&self, name: &str, identity: &DeviceIdentity) -> Result<(), Error>;
    /// Removes the identity under `name`; returns whether there was one.
    fn delete(&self, name: &str) -> Result<bool, Error>;
}

/// Durable sender sequence numbers: every envelope a device seals carries a signed per-sender
/// sequence (docs/spec/envelope.md §3.1), and a device must never use one twice, not even across
/// a crash or a reinstall that keeps its keys. Firmware implements this over flash (a counter
/// written before the envelope leaves), phones over their keychain or database.
pub trait SequenceStore {
    /// Reserves the next sequence number for the identity stored under `name` and makes the
    /// reservation durable before returning it. The first number is 1; numbers only grow. A
    /// crash after the reservation leaves a gap, never a repeat.
    fn next_sequence(&self, name: &str) -> Result<u64, Error>;
}

/// A directory of key files (`NAME.key`), each readable by the owner only (mode 0600 on Unix),
/// written with write-to-temporary + fsync + rename + fsync of the directory.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    /// Opens (and creates, mode 0700 on Unix) the directory `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(Error::KeyName);
        }
        Ok(self.dir.join(format!("{name}.key")))
    }
}

/// Writes `contents` to `path` atomically with owner-only permissions.
///
/// `tempfile` creates the temporary file with mode 0600 in the same directory, so the rename is
/// atomic and the secret is never world-readable, not even for an instant.
pub(crate) fn write_secret_atomically(path: &Path, contents: &[u8]) -> Result<(), Error> {
    // `Path::parent` of a bare file name is `Some("")`: that means the current directory.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| Error::Io(e.error))?;
    #[cfg(unix)]
    {
        // Make the rename itself durable.
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl KeyStore for FileKeyStore {
    fn load(&self, name: &str) -> Result<Option<DeviceIdentity>, Error> {
        let path = self.path(name)?;
        match fs::read_to_string(&path) {
            Ok(s) => {
                let s = zeroize::Zeroizing::new(s);
                DeviceIdentity::from_key_file(&s).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn store(&self, name: &str, identity: &DeviceIdentity) -> Result<(), Error> {
        let path = self.path(name)?;
        write_secret_atomically(&path, identity.to_key_file()?.as_bytes())
    }

    fn delete(&self, name: &str) -> Result<bool, Error> {
        let path = self.path(name)?;
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// `NAME.seq` beside the key file holds the last reserved number in decimal, replaced atomically
/// (temporary file + fsync + rename + directory fsync) before the new number is returned. One
/// process at a time may seal under a name.
impl SequenceStore for FileKeyStore {
    fn next_sequence(&self, name: &str) -> Result<u64, Error> {
        reserve_sequence(&self.path(name)?.with_extension("seq"))
    }
}

/// Reserves the next sender sequence number in the counter file at `path` (decimal text; a
/// missing file counts as 0), durably: the file is replaced atomically (temporary + fsync +
/// rename + directory fsync) before the number is returned. What [`FileKeyStore`] and the CLI
/// use; one process at a time may use a counter file.
pub fn reserve_sequence(path: &Path) -> Result<u64, Error> {
    {
        let last = match fs::read_to_string(path) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::KeyFile("the sequence file does not hold a number"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        let next = last
            .checked_add(1)
            .ok_or(Error::KeyFile("the sequence counter is exhausted"))?;
        write_secret_atomically(path, format!("{next}\n").as_bytes())?;
        Ok(next)
    }
}

/// Writes a key file to an arbitrary path with the same guarantees as [`FileKeyStore`].
impl DeviceIdentity {
    /// Writes this identity's key file to `path`: owner-only permissions, atomic replace.
    pub fn write_key_file(&self, path: &Path) -> Result<(), Error> {
        write_secret_atomically(path, self.to_key_file()?.as_bytes())
    }

    /// Reads a key file from `path`.
    pub fn read_key_file(path: &Path) -> Result<Self, Error> {
        let s = zeroize::Zeroizing::new(fs::read_to_string(path)?);
        DeviceIdentity::from_key_file(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn store_load_replace_delete() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path().join("keys")).unwrap();
        assert!(ks.load("toy").unwrap().is_none());
        let a = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([1; 32]));
        let b = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([2; 32]));
        ks.store("toy", &a).unwrap();
        assert_eq!(ks.load("toy").unwrap().unwrap().public(), a.public());
        ks.store("toy", &b).unwrap();
        assert_eq!(ks.load("toy").unwrap().unwrap().public(), b.public());
        assert!(ks.delete("toy").unwrap());
        assert!(!ks.delete("toy").unwrap());
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("keys")).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path()).unwrap();
        let a = DeviceIdentity::generate(Role::Guardian, &mut ChaCha20Rng::from_seed([1; 32]));
        ks.store("phone", &a).unwrap();
        let mode = fs::metadata(dir.path().join("phone.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn write_key_file_accepts_a_bare_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let before = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let a = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([4; 32]));
        let r = a.write_key_file(Path::new("bare.key"));
        std::env::set_current_dir(before).unwrap();
        r.unwrap();
        let back = DeviceIdentity::read_key_file(&dir.path().join("bare.key")).unwrap();
        assert_eq!(back.public(), a.public());
    }

    #[test]
    fn sequences_start_at_one_grow_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path()).unwrap();
        assert_eq!(ks.next_sequence("toy").unwrap(), 1);
        assert_eq!(ks.next_sequence("toy").unwrap(), 2);
        assert_eq!(ks.next_sequence("other").unwrap(), 1);
        let again = FileKeyStore::open(dir.path()).unwrap();
        assert_eq!(again.next_sequence("toy").unwrap(), 3);
        fs::write(dir.path().join("toy.seq"), "garbage").unwrap();
        assert!(matches!(again.next_sequence("toy"), Err(Error::KeyFile(_))));
        assert!(matches!(again.next_sequence("../x"), Err(Error::KeyName)));
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path()).unwrap();
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(matches!(ks.load(bad), Err(Error::KeyName)), "{bad}");
        }
    }
}
