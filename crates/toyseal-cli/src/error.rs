//! The CLI's one error type, and the exit code of every failure.
//!
//! Messages name the file (or `<stdin>` / `<stdout>`) and the cause on one line; they never
//! contain key material: key arguments are named by position, not echoed.

use std::{fmt, io, path::PathBuf, process::ExitCode};

/// Where bytes came from or went to, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Standard input.
    Stdin,
    /// Standard output.
    Stdout,
    /// A named file.
    File(PathBuf),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Stdin => f.write_str("<stdin>"),
            Place::Stdout => f.write_str("<stdout>"),
            Place::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The documented exit codes (also in `toyseal --help` and the crate README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: reading or writing a file or pipe failed, or an output file already exists.
    Io = 1,
    /// 2: the command line is wrong (clap's usage errors use 2 as well).
    Usage = 2,
    /// 3: a key file, public key or recipient is invalid.
    Key = 3,
    /// 4: the input is not a valid toyseal envelope, is truncated, or is too large.
    Envelope = 4,
    /// 5: decryption or authentication failed (tampered content or a bad sender signature).
    Auth = 5,
    /// 6: the sender is not trusted (`--from`), or this identity is not a recipient.
    Untrusted = 6,
    /// 7: `toyseal demo` failed, or a property it checks did not hold.
    Demo = 7,
    /// 8: a roster, roster chain or invitation is invalid or does not verify.
    Roster = 8,
    /// 9: the server refused the request (HTTP 4xx).
    Refused = 9,
    /// 10: the server could not be reached, failed (HTTP 5xx), or its answer failed a check.
    Server = 10,
    /// 11: `toyseal pair` failed: wrong code, not pairable, or the peer left or went silent.
    Pairing = 11,
    /// 12: this device was removed from the family (HTTP 401 `removed`).
    Removed = 12,
    /// 13: the family was deleted from the server (HTTP 410 `gone`).
    FamilyDeleted = 13,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Everything the `toyseal` command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing `place` failed.
    #[error("{place}: {source}")]
    Io {
        /// The file or stream.
        place: Place,
        /// The cause.
        source: io::Error,
    },
    /// The output file exists and `--force` was not given.
    #[error("{0}: already exists (use --force to replace it)")]
    Exists(PathBuf),
    /// The command line is inconsistent in a way clap cannot check.
    #[error("{0}")]
    Usage(String),
    /// A key file could not be parsed.
    #[error("{place}: not a valid toyseal key file: {source}")]
    KeyFile {
        /// The key file.
        place: Place,
        /// The cause.
        source: toyseal_core::Error,
    },
    /// A public key given on the command line or in a recipients file is invalid.
    #[error("{what}: {reason}")]
    PublicKey {
        /// Which argument or line, e.g. `-r #2` or `family.txt line 3` (never the key itself).
        what: String,
        /// The cause.
        reason: String,
    },
    /// The sender's sequence counter file could not be read or advanced.
    #[error("{place}: cannot reserve the next sequence number: {source}")]
    Sequence {
        /// The counter file.
        place: Place,
        /// The cause.
        source: toyseal_core::Error,
    },
    /// The recipients or sealing options were refused by the envelope library.
    #[error("cannot seal: {0}")]
    Seal(toyseal_envelope::Error),
    /// A seal failed after its sequence number was reserved (THREATS T64): the number is
    /// named, so the gap recipients will see there is accounted for.
    #[error(
        "{source} (sequence {sequence} was reserved for this envelope and is not re-used{})",
        if *emitted { "; part of it may already have been written out" } else { ": nothing was written" }
    )]
    SealFailed {
        /// The reserved sequence number.
        sequence: u64,
        /// Whether bytes may have left (standard output, a device or FIFO).
        emitted: bool,
        /// The cause.
        source: Box<Error>,
    },
    /// `toyseal serve` could not start or stopped with an error.
    #[error("serve: {0}")]
    Serve(String),
    /// `toyseal demo` failed.
    #[error("demo: {0}")]
    Demo(String),
    /// A roster version, chain, anchor or invitation is malformed or does not verify.
    #[error("{what}: {source}")]
    Roster {
        /// The file, argument or chain concerned.
        what: String,
        /// The cause.
        source: toyseal_roster::Error,
    },
    /// A request to the server failed.
    #[error("{what}: {source}{}", hint(source))]
    Cloud {
        /// The operation, e.g. `upload note.tse`.
        what: String,
        /// The cause.
        source: toyseal_cloud::Error,
    },
    /// The client config file is not valid.
    #[error("{place}: invalid client config: {reason}")]
    Config {
        /// The config file.
        place: Place,
        /// The cause (never a value from the file).
        reason: String,
    },
    /// `toyseal pair` failed.
    #[error("pairing failed: {0}")]
    Pairing(String),
    /// A TCP connection (`toyseal pair`) could not be made or used.
    #[error("{what}: {source}")]
    Network {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// Reading the envelope in `place` failed.
    #[error("{place}: {source}")]
    Envelope {
        /// The envelope's file or stream.
        place: Place,
        /// The cause.
        source: toyseal_envelope::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit(&self) -> Exit {
        use toyseal_envelope::Error as E;
        match self {
            Error::Io { .. } | Error::Exists(_) | Error::Serve(_) => Exit::Io,
            Error::Demo(_) => Exit::Demo,
            Error::Usage(_) => Exit::Usage,
            Error::KeyFile { .. } | Error::PublicKey { .. } => Exit::Key,
            Error::Sequence { .. } => Exit::Io,
            Error::SealFailed { source, .. } => source.exit(),
            Error::Seal(e) => match e {
                E::Metadata(_) | E::ChunkSize(_) | E::SegmentSize(_) => Exit::Usage,
                E::TooLarge { .. } => Exit::Envelope,
                _ => Exit::Key,
            },
            Error::Envelope { source, .. } => envelope_exit(source),
            Error::Roster { .. } => Exit::Roster,
            Error::Pairing(_) => Exit::Pairing,
            Error::Network { .. } => Exit::Io,
            Error::Config { .. } => Exit::Usage,
            Error::Cloud { source, .. } => {
                use toyseal_cloud::Error as C;
                use toyseal_cloud::api::ProblemKind as K;
                match source {
                    C::Status { .. } if source.problem_kind() == Some(K::Removed) => Exit::Removed,
                    C::Status { .. } if source.problem_kind() == Some(K::Gone) => {
                        Exit::FamilyDeleted
                    }
                    C::Status { status: 410, .. } => Exit::FamilyDeleted,
                    C::TooLarge { .. } => Exit::Envelope,
                    C::Status { .. } if source.status().is_some_and(|s| s < 500) => Exit::Refused,
                    C::Roster(_) => Exit::Roster,
                    C::Envelope(e) => envelope_exit(e),
                    C::Key(_) => Exit::Key,
                    _ => Exit::Server,
                }
            }
        }
    }

    /// An I/O error at `place`; an envelope error carried inside an `io::Error` (as the
    /// envelope crate's `Read`/`Write` adapters report them) becomes [`Error::Envelope`].
    pub(crate) fn io(place: Place, source: io::Error) -> Self {
        match envelope_error(source) {
            Ok(e) => Error::Envelope { place, source: e },
            Err(source) => Error::Io { place, source },
        }
    }
}

/// The exit code of an envelope that does not verify.
fn envelope_exit(e: &toyseal_envelope::Error) -> Exit {
    use toyseal_envelope::Error as E;
    match e {
        E::Decrypt | E::Signature => Exit::Auth,
        E::UntrustedSender | E::NotARecipient => Exit::Untrusted,
        _ => Exit::Envelope,
    }
}

/// What a refusal most likely means, for the statuses the API documents.
fn hint(e: &toyseal_cloud::Error) -> &'static str {
    use toyseal_cloud::api::ProblemKind as K;
    match e.problem_kind() {
        Some(K::Removed) => {
            return " (a guardian removed this device from the family; to rejoin, it needs a \
                     new invitation)";
        }
        Some(K::Gone) => return "",
        _ => {}
    }
    match e.status() {
        Some(401) => {
            " (is this device a member of the family, and the server URL the one it \
                      signs for?)"
        }
        Some(403) if e.detail().is_none() => " (this device's role may not do that)",
        Some(404) => " (no such family or envelope, or not visible to this device)",
        Some(409) if e.detail().is_none() => " (it exists already)",
        _ => "",
    }
}

/// Takes the envelope error out of an `io::Error`, or gives the `io::Error` back.
pub(crate) fn envelope_error(e: io::Error) -> Result<toyseal_envelope::Error, io::Error> {
    let is_envelope = e
        .get_ref()
        .is_some_and(|inner| inner.is::<toyseal_envelope::Error>());
    if !is_envelope {
        return Err(e);
    }
    match e
        .into_inner()
        .map(|b| b.downcast::<toyseal_envelope::Error>())
    {
        Some(Ok(b)) => Ok(*b),
        // Unreachable after the check above; report a generic I/O error rather than panic.
        _ => Err(io::Error::other(
            "internal error while reporting an envelope error",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_inside_io_errors_are_recovered() {
        let io = io::Error::new(
            io::ErrorKind::InvalidData,
            toyseal_envelope::Error::Signature,
        );
        let e = Error::io(Place::Stdin, io);
        assert_eq!(e.exit(), Exit::Auth);
        assert_eq!(
            e.to_string(),
            "<stdin>: a checkpoint signature of the sender is invalid"
        );
        let plain = Error::io(Place::Stdout, io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(plain.exit(), Exit::Io);
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        use toyseal_envelope::Error as E;
        let env = |source| Error::Envelope {
            place: Place::Stdin,
            source,
        };
        assert_eq!(env(E::BadMagic).exit() as u8, 4);
        assert_eq!(env(E::Truncated).exit() as u8, 4);
        assert_eq!(env(E::TooLarge { limit: 1 }).exit() as u8, 4);
        assert_eq!(env(E::Decrypt).exit() as u8, 5);
        assert_eq!(env(E::Signature).exit() as u8, 5);
        assert_eq!(env(E::UntrustedSender).exit() as u8, 6);
        assert_eq!(env(E::NotARecipient).exit() as u8, 6);
        assert_eq!(Error::Seal(E::DuplicateRecipient).exit() as u8, 3);
        assert_eq!(Error::Usage(String::new()).exit() as u8, 2);
        let roster = Error::Roster {
            what: "v2.tsr".into(),
            source: toyseal_roster::Error::BrokenChain,
        };
        assert_eq!(roster.exit() as u8, 8);
        let cloud = |source| Error::Cloud {
            what: "list".into(),
            source,
        };
        use toyseal_cloud::Error as C;
        let transport = C::Transport {
            cause: "connect",
            url: "http://127.0.0.1:1/v1/health".into(),
            tries: 3,
            timeout: None,
        };
        assert_eq!(cloud(transport).exit() as u8, 10);
        let too_large = cloud(C::TooLarge {
            size: 20_000_000,
            limit: 16 << 20,
        });
        assert_eq!(too_large.exit() as u8, 4);
        assert_eq!(
            too_large.to_string(),
            "list: 20000000 bytes is larger than the server's limit of 16777216 bytes"
        );
        assert_eq!(cloud(C::Integrity("x")).exit() as u8, 10);
        assert_eq!(
            cloud(C::Roster(toyseal_roster::Error::NotAnchored)).exit() as u8,
            8
        );
        assert_eq!(cloud(C::Envelope(E::Signature)).exit() as u8, 5);
        assert_eq!(Error::Pairing(String::new()).exit() as u8, 11);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let network = Error::Network {
            what: "connecting to the toy",
            source: refused,
        };
        assert_eq!(network.exit() as u8, 1);
        // HTTP statuses (9 for 4xx, 10 for 5xx) are checked against the real server in
        // tests/cloud.rs: `Status` cannot be built outside toyseal-cloud.
    }
}
