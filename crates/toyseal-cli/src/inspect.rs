//! `toyseal inspect`: the public header and the sender signature, without any key.

use crate::cli::InspectArgs;
use crate::error::{Error, Place};
use crate::files::{COPY_BUF, Input, ProgressReader};
use crate::keygen::print_line;
use serde::Serialize;
use std::io::{self, Read};
use toyseal_envelope::{Header, MAX_HEADER_LEN, OpenOptions, SUITE, VERSION, Verifier};

/// What `inspect` reports. Everything here is public (it is in the clear in the envelope).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The envelope's file, or `<stdin>`.
    pub file: String,
    /// Format version.
    pub version: u8,
    /// Suite id, e.g. `0x0001`.
    pub suite: String,
    /// Human-readable suite.
    pub suite_name: &'static str,
    /// The sender's public key (`toyseal1…`) as named by the header.
    pub sender: String,
    /// The sender's device id.
    pub sender_device_id: String,
    /// The sender's role.
    pub sender_role: String,
    /// The family id, if the header names one.
    pub family: Option<String>,
    /// The roster version (0: none).
    pub roster_version: u64,
    /// The sender's sequence number for this envelope.
    pub sequence: u64,
    /// The header hash of the sender's previous envelope, hex (all zero: its first).
    pub previous: String,
    /// This envelope's header hash, hex: its link on the sender's chain (what a removal
    /// records as chain head, and the sender's next envelope names as previous).
    pub header_hash: String,
    /// When the sender sealed it (Unix seconds, the sender's clock).
    pub created: u64,
    /// The key commitment, hex.
    pub key_commitment: String,
    /// Number of recipient stanzas.
    pub recipients: usize,
    /// Chunk size in bytes.
    pub chunk_size: usize,
    /// Most content bytes between two signed checkpoints.
    pub segment_size: usize,
    /// Header size in bytes.
    pub header_size: usize,
    /// Bytes read (the whole envelope, unless reading stopped at an error).
    pub total_size: u64,
    /// Whether every checkpoint signature of the sender, from the header's to the final one,
    /// verified (the whole envelope is the sender's).
    pub signature_valid: bool,
    /// Why the envelope did not verify, if it did not.
    pub error: Option<String>,
}

const SUITE_NAME: &str = "HPKE DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/ChaCha20-Poly1305; \
    STREAM ChaCha20-Poly1305; Ed25519 over SHA-256";

/// Prints the report; fails (after printing) if the signature does not verify.
pub fn inspect(args: &InspectArgs, progress: bool) -> Result<(), Error> {
    let input = Input::open(args.input.as_deref())?;
    let place = input.place.clone();
    let mut reader = ProgressReader::new(input.reader, input.size, progress);
    let mut verifier = Some(Verifier::new(
        OpenOptions::default().with_size_limit(args.max_size),
    ));
    let mut head = Vec::with_capacity(MAX_HEADER_LEN);
    let mut total = 0u64;
    let mut failure = None;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(place, e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        total += n as u64;
        let room = MAX_HEADER_LEN.saturating_sub(head.len()).min(n);
        head.extend_from_slice(chunk.get(..room).unwrap_or_default());
        if let Some(v) = verifier.as_mut()
            && let Err(e) = v.push(chunk)
        {
            failure = Some(e);
            verifier = None;
            break;
        }
    }
    reader.finish();
    let outcome = match (failure, verifier) {
        (Some(e), _) => Err(e),
        (None, Some(v)) => v.finish().map(|_| ()),
        (None, None) => Err(toyseal_envelope::Error::StreamClosed),
    };
    // The header facts are shown whenever the header parses, even if the rest is bad. If it
    // does not, the streaming error (the same parse, or "too large") is the one to report.
    let header = match toyseal_envelope::inspect(&head) {
        Ok(h) => h,
        Err(parse_error) => {
            return Err(Error::Envelope {
                place,
                source: outcome.err().unwrap_or(parse_error),
            });
        }
    };
    let report = build_report(&header, &place, total, outcome.as_ref().err());
    render(&report, args.json)?;
    outcome.map_err(|source| Error::Envelope { place, source })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn build_report(
    header: &Header,
    place: &Place,
    total: u64,
    error: Option<&toyseal_envelope::Error>,
) -> Report {
    let sender = header.sender();
    Report {
        file: place.to_string(),
        version: VERSION,
        suite: format!("0x{SUITE:04x}"),
        suite_name: SUITE_NAME,
        sender: sender.to_string(),
        sender_device_id: sender.device_id().to_string(),
        sender_role: sender.role().to_string(),
        family: header.family().map(|f| f.to_string()),
        roster_version: header.roster_version(),
        sequence: header.sequence(),
        previous: hex(header.previous()),
        header_hash: hex(&header.link_hash()),
        created: header.created(),
        key_commitment: header
            .key_commitment()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        recipients: header.stanzas().len(),
        chunk_size: header.chunk_size(),
        segment_size: header.segment_size(),
        header_size: header.encoded_len(),
        total_size: total,
        signature_valid: error.is_none(),
        error: error.map(ToString::to_string),
    }
}

fn render(r: &Report, json: bool) -> Result<(), Error> {
    let text = if json {
        serde_json::to_string_pretty(r).map_err(|e| Error::Io {
            place: Place::Stdout,
            source: io::Error::other(e),
        })?
    } else {
        let signature = match &r.error {
            None => {
                "valid (every checkpoint of the sender verified; content not decrypted)".to_owned()
            }
            Some(e) => format!("INVALID: {e}"),
        };
        [
            format!("file: {}", r.file),
            format!("version: {}", r.version),
            format!("suite: {} ({})", r.suite, r.suite_name),
            format!("sender: {}", r.sender),
            format!("sender device id: {}", r.sender_device_id),
            format!("sender role: {}", r.sender_role),
            format!("family: {}", r.family.as_deref().unwrap_or("none")),
            format!("roster version: {}", r.roster_version),
            format!("sequence: {}", r.sequence),
            format!("previous: {}", r.previous),
            format!("header hash: {}", r.header_hash),
            format!("created: {} (Unix seconds, sender's clock)", r.created),
            format!("key commitment: {}", r.key_commitment),
            format!("recipients: {}", r.recipients),
            format!("chunk size: {} bytes", r.chunk_size),
            format!("segment size: {} bytes", r.segment_size),
            format!("header size: {} bytes", r.header_size),
            format!("total size: {} bytes", r.total_size),
            format!("signature: {signature}"),
        ]
        .join("\n")
    };
    print_line(&mut io::stdout(), Place::Stdout, &text)
}
