//! `toyseal keygen` and `toyseal pubkey`.

use crate::cli::{KeygenArgs, PubkeyArgs};
use crate::error::{Error, Place};
use crate::files::named;
use crate::keys::read_identity;
use std::io::{self, Write};
use std::path::Path;
use toyseal_core::{DeviceIdentity, OsRng, Role};

/// Generates an identity; writes the key file to `-o` (0600, atomic) or standard output.
pub fn keygen(args: &KeygenArgs) -> Result<(), Error> {
    let identity = DeviceIdentity::generate(Role::from(args.role), &mut OsRng);
    let public = identity.public().to_string();
    match named(args.output.as_deref()) {
        Some(path) => {
            // Checked before writing, because `write_key_file` replaces atomically. A file
            // created between this check and the rename is replaced (documented limitation).
            if !args.force && path.symlink_metadata().is_ok() {
                return Err(Error::Exists(path.to_path_buf()));
            }
            let place = Place::File(path.to_path_buf());
            // `write_key_file` fsyncs `path.parent()`, which is "" for a bare file name and
            // cannot be opened: name the current directory explicitly.
            let path = match path.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new(".").join(path),
                _ => path.to_path_buf(),
            };
            identity.write_key_file(&path).map_err(|e| match e {
                toyseal_core::Error::Io(source) => Error::Io { place, source },
                other => Error::KeyFile {
                    place,
                    source: other,
                },
            })?;
            print_line(&mut io::stdout(), Place::Stdout, &public)
        }
        None => {
            let file = identity.to_key_file().map_err(|source| Error::KeyFile {
                place: Place::Stdout,
                source,
            })?;
            let mut out = io::stdout().lock();
            out.write_all(file.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Error::io(Place::Stdout, e))?;
            crate::note(&format!("Public key: {public}"));
            Ok(())
        }
    }
}

/// Prints the public key (or device id) of a key file.
pub fn pubkey(args: &PubkeyArgs) -> Result<(), Error> {
    let identity = read_identity(args.keyfile.as_deref())?;
    let line = if args.device_id {
        identity.device_id().to_string()
    } else {
        identity.public().to_string()
    };
    print_line(&mut io::stdout(), Place::Stdout, &line)
}

/// Writes one line, reporting a failed write (e.g. a closed pipe) as an error, not a panic.
pub(crate) fn print_line(w: &mut impl Write, place: Place, line: &str) -> Result<(), Error> {
    writeln!(w, "{line}")
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(place, e))
}
