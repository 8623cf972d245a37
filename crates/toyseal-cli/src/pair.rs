//! `toyseal pair --as toy|phone`: the pairing protocol (docs/spec/pairing.md) between two
//! processes over TCP, for trying it on one machine (loopback) without Bluetooth. The protocol
//! is `toyseal-pairing`'s sans-IO endpoints; this module only moves their frames, each
//! prefixed with its length (u32, big-endian), and reads the clock.

use crate::cli::{PairArgs, PairSide};
use crate::error::{Error, Place};
use crate::files::{Input, Overwrite, named, write_whole};
use crate::keygen::print_line;
use crate::keys::read_identity;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use toyseal_core::{OsRng, Role};
use toyseal_pairing::frag::DEFAULT_MAX_FRAME;
use toyseal_pairing::{
    FailureStore, PairingCode, PairingExpectations, Phone, PhoneEvent, PhoneFailure, Timestamp,
    Toy, ToyAnswer, ToyEvent,
};

/// Runs one side of a pairing; prints the peer's public key on standard output when paired.
pub fn pair(args: &PairArgs) -> Result<(), Error> {
    let identity = Arc::new(read_identity(Some(&args.identity))?);
    let want = match args.side {
        PairSide::Toy => Role::Toy,
        PairSide::Phone => Role::Guardian,
    };
    if identity.role() != want {
        return Err(Error::Usage(format!(
            "{}: --as {} needs a {} key",
            args.identity.display(),
            args.side.name(),
            want
        )));
    }
    if args.side == PairSide::Toy && args.code_file.as_os_str() == "-" {
        return Err(Error::Usage(
            "--as toy reads its user's confirmation from standard input: give the code in a file"
                .into(),
        ));
    }
    let code = read_code(&args.code_file)?;
    let timeout = Duration::from_secs(args.timeout);
    let peer = match args.side {
        PairSide::Toy => run_toy(args, identity, code, timeout)?,
        PairSide::Phone => run_phone(args, identity, &code, timeout)?,
    };
    print_line(&mut io::stdout(), Place::Stdout, &peer)
}

/// The code from a file (or standard input), never from the command line, where other users
/// of the machine could read it. Read into one buffer allocated at full size and zeroized on
/// drop (no reallocation leaves a copy behind), like a key file.
fn read_code(path: &Path) -> Result<PairingCode, Error> {
    const LIMIT: usize = 256;
    let input = Input::open(named(Some(path)))?;
    let place = input.place;
    let mut buf = toyseal_core::Zeroizing::new(Vec::with_capacity(LIMIT + 1));
    input
        .reader
        .take(LIMIT as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(place.clone(), e))?;
    let text = std::str::from_utf8(&buf)
        .ok()
        .filter(|_| buf.len() <= LIMIT)
        .ok_or_else(|| Error::Usage(format!("{place}: not a pairing code")))?;
    PairingCode::parse(text.trim()).map_err(|e| Error::Usage(format!("{place}: {e}")))
}

fn run_toy(
    args: &PairArgs,
    identity: Arc<toyseal_core::DeviceIdentity>,
    code: PairingCode,
    timeout: Duration,
) -> Result<String, Error> {
    let store = FileFailureStore::beside(&args.identity);
    let mut toy = Toy::builder(identity, code, store)
        .build()
        .map_err(pairing("starting the toy"))?;
    let listener = TcpListener::bind(args.listen).map_err(net("listening"))?;
    let addr = listener.local_addr().map_err(net("listening"))?;
    crate::note(&format!("toyseal pair: toy listening on {addr}"));
    let (mut stream, _) = listener.accept().map_err(net("accepting the phone"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(net("the connection"))?;
    let clock = Instant::now();
    let now =
        || Timestamp::from_millis(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
    toy.press_pair_button(now())
        .map_err(pairing("opening the pairing window"))?;
    let mut out = toyseal_pairing::ToyOutput::default();
    loop {
        for reply in &out.replies {
            write_frame(&mut stream, reply)?;
        }
        let mut next = None;
        for event in std::mem::take(&mut out.events) {
            match event {
                ToyEvent::Sas(sas) => crate::note(&format!(
                    "toyseal pair: SAS {sas} (the phone must show the same number)"
                )),
                // The toy records its founder only on its user's confirmation (T37). Here the
                // gesture is typing `yes` at the toy's terminal once the numbers matched.
                ToyEvent::ConfirmationRequested { .. } => {
                    crate::note(
                        "toyseal pair: confirm at the toy: type yes and Enter if the phone shows                          the same number (anything else declines)",
                    );
                    let mut line = String::new();
                    let yes = io::stdin().read_line(&mut line).is_ok() && line.trim() == "yes";
                    // A late confirmation fails: the window expired (the phone is told).
                    let _ = if yes {
                        toy.confirm(now())
                    } else {
                        toy.decline(now())
                    };
                    next = Some(toy.poll(now()));
                }
                // CONFIRMED (or the ABORT) went to the phone above.
                ToyEvent::Paired { phone, .. } => return Ok(phone.to_string()),
                ToyEvent::ConfirmationExpired | ToyEvent::ConfirmationDeclined => {
                    return Err(Error::Pairing(
                        "not confirmed at the toy: no founder recorded".into(),
                    ));
                }
                ToyEvent::PairingFailed => {
                    return Err(Error::Pairing(
                        "the phone did not prove the code (wrong code, or tampering)".into(),
                    ));
                }
                _ => {}
            }
        }
        out = match next {
            Some(o) => o,
            None => {
                let frame = read_frame(&mut stream)?;
                toy.handle(&frame, now(), &mut OsRng)
            }
        };
    }
}

fn run_phone(
    args: &PairArgs,
    identity: Arc<toyseal_core::DeviceIdentity>,
    code: &PairingCode,
    timeout: Duration,
) -> Result<String, Error> {
    let addr = args
        .connect
        .ok_or_else(|| Error::Usage("--as phone needs --connect ADDR".into()))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(net("connecting to the toy"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(net("the connection"))?;
    let clock = Instant::now();
    let now =
        || Timestamp::from_millis(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut phone = Phone::new(identity);
    phone
        .pair(code, PairingExpectations::default(), &mut OsRng)
        .map_err(pairing("starting the pairing"))?;
    let mut out = phone.drain();
    let mut paired = None;
    loop {
        for frame in &out.frames {
            write_frame(&mut stream, frame)?;
        }
        for event in out.events {
            match event {
                PhoneEvent::Sas(sas) => crate::note(&format!(
                    "toyseal pair: SAS {sas} (the toy must say the same number)"
                )),
                PhoneEvent::Paired(toy) => paired = Some(toy.identity.to_string()),
                PhoneEvent::AwaitingConfirmation { seconds, .. } => crate::note(&format!(
                    "toyseal pair: waiting for the confirmation at the toy (up to {seconds} s)"
                )),
                PhoneEvent::ToyAnswered {
                    version: None,
                    answer,
                } => {
                    return match (answer, paired.take()) {
                        (ToyAnswer::Confirmed, Some(toy)) => Ok(toy),
                        (ToyAnswer::Declined, _) => Err(Error::Pairing(
                            "declined at the toy: it recorded no founder".into(),
                        )),
                        _ => Err(Error::Pairing(
                            "not confirmed at the toy in time: it recorded no founder".into(),
                        )),
                    };
                }
                PhoneEvent::PairingFailed(why) => {
                    return Err(Error::Pairing(phone_failure(why).into()));
                }
                _ => {}
            }
        }
        let frame = read_frame(&mut stream)?;
        out = phone.handle(&frame, now());
    }
}

/// What a failed pairing means, for the person at the phone.
fn phone_failure(why: PhoneFailure) -> &'static str {
    match why {
        PhoneFailure::NotPairable => "the toy is not pairable now (hold its pairing button)",
        PhoneFailure::Busy => "the toy is busy with another phone",
        PhoneFailure::Authentication => {
            "the code did not match (a wrong code, or someone in the middle)"
        }
        PhoneFailure::WrongPeer => "the peer is not the expected toy",
        _ => "the toy left or answered out of turn",
    }
}

/// One frame: its length (u32, big-endian, at most the protocol's frame limit), then it.
fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, Error> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(net("reading from the peer"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > DEFAULT_MAX_FRAME {
        return Err(Error::Pairing(format!(
            "the peer sent a {len}-byte frame (at most {DEFAULT_MAX_FRAME})"
        )));
    }
    let mut frame = vec![0u8; len];
    stream
        .read_exact(&mut frame)
        .map_err(net("reading from the peer"))?;
    Ok(frame)
}

fn write_frame(stream: &mut TcpStream, frame: &[u8]) -> Result<(), Error> {
    let len = u32::try_from(frame.len())
        .map_err(|_| Error::Pairing("a frame too large to send".into()))?;
    stream
        .write_all(&len.to_be_bytes())
        .and_then(|()| stream.write_all(frame))
        .and_then(|()| stream.flush())
        .map_err(net("writing to the peer"))
}

/// A network failure: the peer left or went silent during pairing (exit 11), or the
/// connection could not be made at all (exit 1, like any I/O error).
fn net(what: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| match source.kind() {
        io::ErrorKind::UnexpectedEof => Error::Pairing(format!(
            "{what}: the peer closed the connection before pairing finished"
        )),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            Error::Pairing(format!("{what}: no answer within --timeout"))
        }
        _ => Error::Network { what, source },
    }
}

fn pairing(what: &'static str) -> impl Fn(toyseal_pairing::Error) -> Error {
    move |e| Error::Pairing(format!("{what}: {e}"))
}

/// The toy's lifetime count of failed pairing guesses (pairing.md: at most 100 per
/// lifetime), durably in `KEYFILE.pairing-failures` beside the key file: a decimal number,
/// replaced atomically.
struct FileFailureStore {
    path: PathBuf,
}

impl FileFailureStore {
    fn beside(key: &Path) -> Self {
        let mut path = key.as_os_str().to_owned();
        path.push(".pairing-failures");
        Self {
            path: PathBuf::from(path),
        }
    }
}

impl FailureStore for FileFailureStore {
    fn load(&self) -> Result<u32, toyseal_pairing::Error> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                toyseal_pairing::Error::Store(format!("{}: not a count", self.path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(toyseal_pairing::Error::Store(format!(
                "{}: {e}",
                self.path.display()
            ))),
        }
    }

    fn store(&mut self, count: u32) -> Result<(), toyseal_pairing::Error> {
        write_whole(
            Some(&self.path),
            format!("{count}\n").as_bytes(),
            false,
            Overwrite::Replace,
        )
        .map_err(|e| toyseal_pairing::Error::Store(e.to_string()))
    }
}
