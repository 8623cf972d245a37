//! Inputs, outputs and the progress bar: `-` is standard input/output, a file output is written
//! to a temporary file beside it and renamed only when the command succeeded; an existing file
//! is replaced only where the command says so, special files are written through ([`Output`]).

use crate::error::{Error, Place};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::{
    fs::File,
    io::{self, BufWriter, IsTerminal, Read, Write},
    path::{Path, PathBuf},
};

/// Inputs larger than this get a progress bar (when stderr is a terminal).
pub(crate) const PROGRESS_THRESHOLD: u64 = 8 << 20;
/// Size of the copy buffer between input and output.
pub(crate) const COPY_BUF: usize = 64 * 1024;
/// Regular files between these sizes are sealed and opened in memory on every core
/// (`toyseal_envelope::seal_parallel` / `open_parallel`, same bytes and same checks as the
/// streaming path); smaller ones gain nothing, larger ones and pipes stream in bounded memory.
pub(crate) const PARALLEL_SIZES: std::ops::RangeInclusive<u64> = (4 << 20)..=(256 << 20);

/// Reads all of `reader` (of known `size`) into memory, for the parallel path.
pub(crate) fn read_all(mut reader: impl Read, size: u64, place: &Place) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    reader
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(place.clone(), e))?;
    Ok(buf)
}

/// `None` for standard input/output (`-` or no path), else the path.
pub(crate) fn named(path: Option<&Path>) -> Option<&Path> {
    path.filter(|p| p.as_os_str() != "-")
}

/// An input being read: a file or standard input, with its size when known.
pub(crate) struct Input {
    /// Where it comes from, for messages.
    pub place: Place,
    /// Its length, when it is a regular file (or standard input redirected from one).
    pub size: Option<u64>,
    /// The bytes.
    pub reader: Box<dyn Read>,
}

impl Input {
    /// Opens `path` (`None` or `-`: standard input).
    pub(crate) fn open(path: Option<&Path>) -> Result<Self, Error> {
        match named(path) {
            Some(p) => {
                let place = Place::File(p.to_path_buf());
                let file = File::open(p).map_err(|e| Error::io(place.clone(), e))?;
                let meta = file.metadata().map_err(|e| Error::io(place.clone(), e))?;
                if meta.is_dir() {
                    return Err(Error::Io {
                        place,
                        source: io::Error::new(io::ErrorKind::InvalidInput, "is a directory"),
                    });
                }
                Ok(Self {
                    place,
                    size: meta.is_file().then_some(meta.len()),
                    reader: Box::new(file),
                })
            }
            None => Ok(Self {
                place: Place::Stdin,
                size: stdin_file_size(),
                reader: Box::new(io::stdin()),
            }),
        }
    }
}

/// The size of standard input when it is redirected from a regular file (`< big.wav`).
#[cfg(unix)]
fn stdin_file_size() -> Option<u64> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let meta = File::from(fd).metadata().ok()?;
    meta.is_file().then_some(meta.len())
}

#[cfg(not(unix))]
fn stdin_file_size() -> Option<u64> {
    None
}

/// Reads at most `limit` bytes of `reader` into a buffer that zeroizes on drop (key files).
///
/// The buffer is allocated once at full size, so no reallocation leaves a copy behind.
pub(crate) fn read_secret(
    mut reader: impl Read,
    limit: usize,
    place: &Place,
) -> Result<toyseal_core::Zeroizing<Vec<u8>>, Error> {
    let mut buf = toyseal_core::Zeroizing::new(Vec::with_capacity(limit + 1));
    reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(place.clone(), e))?;
    if buf.len() > limit {
        return Err(Error::KeyFile {
            place: place.clone(),
            source: toyseal_core::Error::KeyFile("file too large to be a key file"),
        });
    }
    Ok(buf)
}

/// Reads a small file (roster version, recipients list) of at most `limit` bytes.
pub(crate) fn read_small(path: Option<&Path>, limit: usize) -> Result<(Place, Vec<u8>), Error> {
    let mut input = Input::open(path)?;
    let mut buf = Vec::new();
    input
        .reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(input.place.clone(), e))?;
    if buf.len() > limit {
        return Err(Error::Io {
            place: input.place,
            source: io::Error::new(io::ErrorKind::InvalidData, "file too large"),
        });
    }
    Ok((input.place, buf))
}

/// Reads a small UTF-8 text file of at most `limit` bytes.
pub(crate) fn read_small_text(path: Option<&Path>, limit: usize) -> Result<(Place, String), Error> {
    let (place, buf) = read_small(path, limit)?;
    match String::from_utf8(buf) {
        Ok(text) => Ok((place, text)),
        Err(_) => Err(Error::Io {
            place,
            source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
        }),
    }
}

/// Writes `bytes` to `path` or, for `None` / `-`, standard output, as [`Output::create`] does;
/// `binary` refuses a terminal as standard output.
pub(crate) fn write_whole(
    path: Option<&Path>,
    bytes: &[u8],
    binary: bool,
    overwrite: Overwrite,
) -> Result<(), Error> {
    let mut output = Output::create(path, !binary, overwrite)?;
    let place = output.place();
    output.write_all(bytes).map_err(|e| Error::io(place, e))?;
    output.commit()
}

/// What a command may do to an existing regular file at its output path (T64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overwrite {
    /// Refuse it ([`Error::Exists`]): the default of every `-o`.
    Refuse,
    /// Replace it atomically: `--force`, or a command whose job is to update the file.
    Replace,
}

impl Overwrite {
    /// `--force` given or not.
    pub(crate) fn from_force(force: bool) -> Self {
        if force { Self::Replace } else { Self::Refuse }
    }
}

/// Where a command's main output goes (THREATS T64: nothing of the user's is destroyed).
///
/// - a new path, or an existing regular file when [`Overwrite::Replace`]: a temporary file
///   (mode 0600) in the destination's directory until [`commit`](Self::commit) renames it into
///   place, so a failed command leaves no output file behind and a replaced file is either the
///   old or the whole new one. Without `Replace` an existing file is refused, also one created
///   while the command ran (the rename does not clobber).
/// - a symbolic link is followed: its target gets the treatment of its kind, the link stays.
/// - a special file (a device such as `/dev/null`, a FIFO, a socket) is opened and written
///   through, never replaced; `/dev/stdout` (and `/dev/fd/1`, `/proc/self/fd/1`) is standard
///   output itself.
/// - a directory is refused.
pub(crate) enum Output {
    /// Standard output.
    Stdout(BufWriter<io::Stdout>),
    /// A temporary file that becomes `path` on commit.
    File {
        /// The temporary file.
        tmp: BufWriter<tempfile::NamedTempFile>,
        /// The final name (a symbolic link's target, resolved).
        path: PathBuf,
        /// Whether an existing file at `path` may be replaced.
        overwrite: Overwrite,
        /// The name the user gave, for messages.
        given: PathBuf,
    },
    /// A special file, written through.
    Special {
        /// The open file.
        file: BufWriter<File>,
        /// The name the user gave.
        given: PathBuf,
    },
}

/// The cause of a temporary file's failure without the temporary file's name (an internal
/// path the user never gave; the message names the user's path instead).
fn without_path(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::from(e.kind()),
    }
}

/// Names of this process's standard output.
const STDOUT_NAMES: [&str; 3] = ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"];

impl Output {
    /// Creates the output for `path` (`None` or `-`: standard output); see the type's rules.
    ///
    /// `binary_to_tty` false refuses to write to standard output when it is a terminal unless
    /// `-` was given explicitly (an envelope on a terminal is garbage and may upset it).
    pub(crate) fn create(
        path: Option<&Path>,
        binary_to_tty: bool,
        overwrite: Overwrite,
    ) -> Result<Self, Error> {
        let Some(p) = named(path) else {
            if !binary_to_tty && path.is_none() && io::stdout().is_terminal() {
                return Err(Error::Usage(
                    "refusing to write a binary envelope to a terminal: use -o FILE, \
                     redirect standard output, or give -o - to force it"
                        .into(),
                ));
            }
            return Ok(Output::Stdout(BufWriter::with_capacity(
                COPY_BUF,
                io::stdout(),
            )));
        };
        if STDOUT_NAMES.iter().any(|n| p == Path::new(n)) {
            return Ok(Output::Stdout(BufWriter::with_capacity(
                COPY_BUF,
                io::stdout(),
            )));
        }
        let place = Place::File(p.to_path_buf());
        let refuse = |why: &str| Error::Io {
            place: place.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
        };
        // `symlink_metadata` says what the name is; `metadata` what it leads to.
        let target = match p.symlink_metadata() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => p.to_path_buf(),
            Err(e) => return Err(Error::io(place, e)),
            Ok(link) => {
                let meta = match std::fs::metadata(p) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(refuse(
                            "a symbolic link to a file that does not exist (not followed)",
                        ));
                    }
                    Err(e) => return Err(Error::io(place, e)),
                };
                if meta.is_dir() {
                    return Err(refuse("is a directory"));
                }
                if !meta.is_file() {
                    // A device, FIFO or socket: written through, never replaced.
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)
                        .map_err(|e| Error::io(place, e))?;
                    return Ok(Output::Special {
                        file: BufWriter::with_capacity(COPY_BUF, file),
                        given: p.to_path_buf(),
                    });
                }
                if overwrite == Overwrite::Refuse {
                    return Err(Error::Exists(p.to_path_buf()));
                }
                if link.file_type().is_symlink() {
                    // Replace the link's target, keep the link.
                    std::fs::canonicalize(p).map_err(|e| Error::io(place.clone(), e))?
                } else {
                    p.to_path_buf()
                }
            }
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".toyseal-")
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| Error::io(place, without_path(e)))?;
        Ok(Output::File {
            tmp: BufWriter::with_capacity(COPY_BUF, tmp),
            path: target,
            overwrite,
            given: p.to_path_buf(),
        })
    }

    /// Where the output goes, for messages.
    pub(crate) fn place(&self) -> Place {
        match self {
            Output::Stdout(_) => Place::Stdout,
            Output::File { given, .. } | Output::Special { given, .. } => {
                Place::File(given.clone())
            }
        }
    }

    /// Whether bytes written so far may already have left this process (standard output, a
    /// special file) — a failed command cannot take them back.
    pub(crate) fn is_streamed(&self) -> bool {
        !matches!(self, Output::File { .. })
    }

    /// Flushes and, for a file, syncs and renames the temporary file into place.
    pub(crate) fn commit(self) -> Result<(), Error> {
        let place = self.place();
        match self {
            Output::Stdout(mut w) => w.flush().map_err(|e| Error::io(place, e)),
            Output::Special { mut file, .. } => file.flush().map_err(|e| Error::io(place, e)),
            Output::File {
                tmp,
                path,
                overwrite,
                given,
            } => {
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| Error::io(place.clone(), e.into_error()))?;
                tmp.as_file()
                    .sync_all()
                    .map_err(|e| Error::io(place.clone(), e))?;
                match overwrite {
                    Overwrite::Replace => {
                        tmp.persist(&path)
                            .map_err(|e| Error::io(place, without_path(e.error)))?;
                    }
                    Overwrite::Refuse => match tmp.persist_noclobber(&path) {
                        Ok(_) => {}
                        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                            return Err(Error::Exists(given));
                        }
                        Err(e) => return Err(Error::io(place, without_path(e.error))),
                    },
                }
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { tmp, .. } => tmp.write(buf),
            Output::Special { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::File { tmp, .. } => tmp.write_all(buf),
            Output::Special { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { tmp, .. } => tmp.flush(),
            Output::Special { file, .. } => file.flush(),
        }
    }
}

/// A reader that advances a progress bar. With an unknown size the bar stays hidden until
/// [`PROGRESS_THRESHOLD`] bytes have passed.
pub(crate) struct ProgressReader<R> {
    inner: R,
    bar: ProgressBar,
    reveal_at: Option<u64>,
}

impl<R: Read> ProgressReader<R> {
    /// Wraps `inner`, whose total size is `size` if known; `enabled` false never draws.
    pub(crate) fn new(inner: R, size: Option<u64>, enabled: bool) -> Self {
        let enabled = enabled && io::stderr().is_terminal();
        let (bar, reveal_at) = match size {
            _ if !enabled => (ProgressBar::hidden(), None),
            Some(n) if n > PROGRESS_THRESHOLD => {
                let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                (bar, None)
            }
            Some(_) => (ProgressBar::hidden(), None),
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
                let style =
                    ProgressStyle::with_template("{spinner} {binary_bytes} {binary_bytes_per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                (bar, Some(PROGRESS_THRESHOLD))
            }
        };
        Self {
            inner,
            bar,
            reveal_at,
        }
    }

    /// Removes the bar from the terminal.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        if let Some(at) = self.reveal_at
            && self.bar.position() > at
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.reveal_at = None;
        }
        Ok(n)
    }
}

impl<R> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        // Never leave a half-drawn bar above an error message.
        self.bar.finish_and_clear();
    }
}
