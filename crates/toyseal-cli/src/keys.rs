//! Reading identities (key files) and public keys from the command line and from files.
//!
//! Public keys are taken as plain strings and parsed here rather than by clap, so that a
//! mistaken argument (for instance a secret key pasted after `-r`) is never echoed back in an
//! error message.

use crate::error::{Error, Place};
use crate::files::{Input, read_secret, read_small_text};
use std::path::Path;
use toyseal_core::{DeviceIdentity, PublicIdentity};

/// Largest key file accepted (a real one is about 400 bytes).
const MAX_KEY_FILE: usize = 64 * 1024;
/// Largest recipients file accepted.
const MAX_RECIPIENTS_FILE: usize = 1 << 20;
/// How a secret key's text form starts (compared case-insensitively).
const SECRET_KEY_PREFIX: &str = "toyseal-secret-key-1";

/// Reads a key file (`None` or `-`: standard input).
pub(crate) fn read_identity(path: Option<&Path>) -> Result<DeviceIdentity, Error> {
    let input = Input::open(path)?;
    let place = input.place.clone();
    let bytes = read_secret(input.reader, MAX_KEY_FILE, &place)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::KeyFile {
        place: place.clone(),
        source: toyseal_core::Error::KeyFile("not UTF-8 text"),
    })?;
    DeviceIdentity::from_key_file(text).map_err(|source| Error::KeyFile { place, source })
}

/// Reads a family recovery key's printed form (`TOYSEAL-RECOVERY-1…`) from a file (`None` or
/// `-`: standard input). The text is never echoed in an error.
pub(crate) fn read_recovery_key(path: Option<&Path>) -> Result<toyseal_roster::RecoveryKey, Error> {
    let input = Input::open(path)?;
    let place = input.place.clone();
    let bytes = read_secret(input.reader, MAX_KEY_FILE, &place)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::KeyFile {
        place: place.clone(),
        source: toyseal_core::Error::KeyFile("not UTF-8 text"),
    })?;
    toyseal_roster::RecoveryKey::from_printable(text).map_err(|source| Error::Roster {
        what: place.to_string(),
        source,
    })
}

/// Parses one public key; `what` names where it came from (never the key itself).
pub(crate) fn parse_public(
    text: &str,
    what: impl FnOnce() -> String,
) -> Result<PublicIdentity, Error> {
    let text = text.trim();
    let looks_secret = text
        .get(..SECRET_KEY_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(SECRET_KEY_PREFIX));
    if looks_secret {
        return Err(Error::PublicKey {
            what: what(),
            reason: "this is a SECRET key, not a public key (share the output of \
                     `toyseal pubkey KEYFILE` instead; keep the secret key private)"
                .into(),
        });
    }
    text.parse()
        .map_err(|e: toyseal_core::Error| Error::PublicKey {
            what: what(),
            reason: format!("not a valid toyseal public key: {e}"),
        })
}

/// Parses the `-r`/`--from` style arguments; `flag` names the option in messages.
pub(crate) fn parse_public_args(args: &[String], flag: &str) -> Result<Vec<PublicIdentity>, Error> {
    args.iter()
        .enumerate()
        .map(|(i, a)| parse_public(a, || format!("{flag} #{}", i + 1)))
        .collect()
}

/// Reads a recipients file: one `toyseal1…` key per line; blank lines and `#` comments skipped.
pub(crate) fn read_recipients_file(path: &Path) -> Result<Vec<PublicIdentity>, Error> {
    let (place, text) = read_small_text(Some(path), MAX_RECIPIENTS_FILE)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_public(line, || describe_line(&place, n + 1))?);
    }
    if out.is_empty() {
        return Err(Error::PublicKey {
            what: place.to_string(),
            reason: "the recipients file lists no public key".into(),
        });
    }
    Ok(out)
}

fn describe_line(place: &Place, line: usize) -> String {
    format!("{place} line {line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use toyseal_core::{OsRng, Role};

    #[test]
    fn a_secret_key_given_as_public_key_is_refused_without_echoing_it() {
        let id = DeviceIdentity::generate(Role::Toy, &mut OsRng);
        let secret = id.export_secret_key_text().unwrap();
        let err = parse_public(&secret, || "-r #1".into()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("SECRET"), "{msg}");
        assert!(!msg.contains(&secret[20..]), "{msg}");
        assert_eq!(err.exit() as u8, 3);
    }

    #[test]
    fn public_keys_parse_and_garbage_is_a_key_error() {
        let id = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
        let text = format!("  {}\n", id.public());
        assert_eq!(&parse_public(&text, String::new).unwrap(), id.public());
        let err = parse_public("toyseal1notakey", || "--from #2".into()).unwrap_err();
        assert!(err.to_string().starts_with("--from #2: "), "{err}");
    }
}
