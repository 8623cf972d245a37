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

/// What a sender's next envelope carries (docs/spec/envelope.md §11.2): its sequence number and
/// the header hash of the sender's previous envelope (all zero before the first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderState {
    /// The sequence number the next envelope takes (the first is 1).
    pub sequence: u64,
    /// The header hash (`Header::link_hash`) of the last envelope emitted; all zero for none.
    pub previous: [u8; 32],
}

impl SenderState {
    /// The state before a sender's first envelope: sequence 1, previous all zero.
    pub const FIRST: SenderState = SenderState {
        sequence: 1,
        previous: [0; 32],
    };

    /// The state after an envelope with `sequence` and header hash `header_hash` was emitted.
    pub fn after(sequence: u64, header_hash: [u8; 32]) -> Result<SenderState, Error> {
        Ok(SenderState {
            sequence: sequence
                .checked_add(1)
                .ok_or(Error::KeyFile("the sequence counter is exhausted"))?,
            previous: header_hash,
        })
    }
}

/// Durable sender state: every envelope a device seals carries a signed per-sender sequence and
/// the header hash of the sender's previous envelope (docs/spec/envelope.md §11.2), and a device
/// must never use a sequence twice, not even across a crash or a reinstall that keeps its keys.
/// Firmware implements this over flash, phones over their keychain or database.
///
/// Use: read [`sender_state`](Self::sender_state), seal with its sequence and previous hash, and
/// once the sealer has made the header (before the envelope's first byte leaves the device)
/// call [`record_sent`](Self::record_sent) with the envelope's header hash. A seal that fails
/// before that consumes nothing; once recorded the number is used whatever happens next.
pub trait SequenceStore {
    /// What the next envelope under `name` carries. Reading reserves nothing.
    fn sender_state(&self, name: &str) -> Result<SenderState, Error>;
    /// Records, durably before returning, that the envelope with `sequence` and `header_hash`
    /// was emitted under `name`: the next state is `sequence + 1` with `header_hash` as its
    /// previous. A sequence below the stored next one is refused (it would be re-used).
    fn record_sent(&self, name: &str, sequence: u64, header_hash: [u8; 32]) -> Result<(), Error>;
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

/// `NAME.seq` beside the key file holds the sender state (see [`read_sender_state`]), replaced
/// atomically (temporary file + fsync + rename + directory fsync). One process at a time may
/// seal under a name.
impl SequenceStore for FileKeyStore {
    fn sender_state(&self, name: &str) -> Result<SenderState, Error> {
        read_sender_state(&self.path(name)?.with_extension("seq"))
    }

    fn record_sent(&self, name: &str, sequence: u64, header_hash: [u8; 32]) -> Result<(), Error> {
        record_sent(
            &self.path(name)?.with_extension("seq"),
            sequence,
            header_hash,
        )
    }
}

/// Reads the sender state file at `path`: one line, the last emitted sequence in decimal, a
/// space and that envelope's header hash in 64 lower-case hex digits. A missing file is
/// [`SenderState::FIRST`]; a file holding only a number (the format before sender chains) is
/// that number's successor with previous all zero. What [`FileKeyStore`] and the CLI use.
pub fn read_sender_state(path: &Path) -> Result<SenderState, Error> {
    let text = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SenderState::FIRST),
        Err(e) => return Err(e.into()),
    };
    let bad = || Error::KeyFile("the sequence file does not hold a sequence and a header hash");
    let mut parts = text.split_whitespace();
    let last = parts
        .next()
        .ok_or_else(bad)?
        .parse::<u64>()
        .map_err(|_| bad())?;
    let head = match parts.next() {
        None => [0; 32],
        Some(hex) => {
            let mut out = [0u8; 32];
            if hex.len() != 64 {
                return Err(bad());
            }
            for (o, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
                let digits = std::str::from_utf8(pair).map_err(|_| bad())?;
                *o = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
            }
            out
        }
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    SenderState::after(last, head)
}

/// Records in the sender state file at `path`, durably (temporary + fsync + rename + directory
/// fsync), that the envelope with `sequence` and `header_hash` was emitted. Refuses a sequence
/// below the file's next one (it would be re-used) and sequence 0.
pub fn record_sent(path: &Path, sequence: u64, header_hash: [u8; 32]) -> Result<(), Error> {
    let state = read_sender_state(path)?;
    if sequence == 0 || sequence < state.sequence {
        return Err(Error::KeyFile(
            "this sequence number was already used by this sender",
        ));
    }
    let mut line = format!("{sequence} ");
    for b in header_hash {
        line.push_str(&format!("{b:02x}"));
    }
    line.push('\n');
    write_secret_atomically(path, line.as_bytes())
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
    fn sender_state_starts_at_one_grows_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path()).unwrap();
        assert_eq!(ks.sender_state("toy").unwrap(), SenderState::FIRST);
        // Reading reserves nothing: a seal that fails before emitting consumes no number.
        assert_eq!(ks.sender_state("toy").unwrap(), SenderState::FIRST);
        ks.record_sent("toy", 1, [1; 32]).unwrap();
        assert_eq!(
            ks.sender_state("toy").unwrap(),
            SenderState {
                sequence: 2,
                previous: [1; 32]
            }
        );
        // Never re-used.
        assert!(matches!(
            ks.record_sent("toy", 1, [9; 32]),
            Err(Error::KeyFile(_))
        ));
        assert!(matches!(
            ks.record_sent("toy", 0, [9; 32]),
            Err(Error::KeyFile(_))
        ));
        assert_eq!(ks.sender_state("other").unwrap(), SenderState::FIRST);
        let again = FileKeyStore::open(dir.path()).unwrap();
        again.record_sent("toy", 2, [0xab; 32]).unwrap();
        assert_eq!(
            again.sender_state("toy").unwrap(),
            SenderState {
                sequence: 3,
                previous: [0xab; 32]
            }
        );
        // The format before sender chains: a bare number.
        fs::write(dir.path().join("old.seq"), "41\n").unwrap();
        assert_eq!(
            again.sender_state("old").unwrap(),
            SenderState {
                sequence: 42,
                previous: [0; 32]
            }
        );
        for garbage in [
            "garbage",
            "3 abc",
            "3 zz",
            "3 00 00",
            &format!("3 {}", "g".repeat(64)),
        ] {
            fs::write(dir.path().join("toy.seq"), garbage).unwrap();
            assert!(
                matches!(again.sender_state("toy"), Err(Error::KeyFile(_))),
                "{garbage}"
            );
        }
        fs::write(
            dir.path().join("toy.seq"),
            format!("{} {}", u64::MAX, "0".repeat(64)),
        )
        .unwrap();
        assert!(matches!(again.sender_state("toy"), Err(Error::KeyFile(_))));
        assert!(matches!(again.sender_state("../x"), Err(Error::KeyName)));
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
