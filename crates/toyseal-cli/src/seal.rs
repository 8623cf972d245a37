//! `toyseal seal`: streaming encryption with [`toyseal_envelope::SealWriter`].

use crate::cli::SealArgs;
use crate::error::{Error, Place, envelope_error};
use crate::files::{
    COPY_BUF, Input, Output, Overwrite, PARALLEL_SIZES, ProgressReader, named, read_all,
};
use crate::keys::{parse_public_args, read_identity, read_recipients_file};
use std::io::{self, Read, Write};
use toyseal_core::OsRng;
use toyseal_envelope::{Metadata, SealOptions, SealWriter};

/// Seals the input to the recipients, signed by `--identity`.
pub fn seal(args: &SealArgs, progress: bool) -> Result<(), Error> {
    let stdin_users = [
        named(Some(&args.identity)).is_none(),
        named(args.input.as_deref()).is_none(),
    ]
    .into_iter()
    .chain(
        args.recipients_files
            .iter()
            .map(|p| named(Some(p)).is_none()),
    )
    .filter(|&b| b)
    .count();
    if stdin_users > 1 {
        return Err(Error::Usage(
            "standard input can feed only one of --identity, -R and the input".into(),
        ));
    }

    let identity = read_identity(Some(&args.identity))?;
    let mut recipients = parse_public_args(&args.recipients, "-r")?;
    for file in &args.recipients_files {
        recipients.extend(read_recipients_file(file)?);
    }
    if recipients.is_empty() {
        return Err(Error::Usage(
            "no recipients: give at least one -r PUBKEY or -R FILE".into(),
        ));
    }

    let mut metadata = Metadata::default();
    if let Some(t) = &args.content_type {
        metadata = metadata.with_content_type(t.clone());
    }
    if let Some(c) = &args.codec {
        metadata = metadata.with_codec(c.clone());
    }
    if let Some(d) = args.duration_ms {
        metadata = metadata.with_duration_ms(d);
    }
    // The input and the output are opened before the sender state is touched, and the state
    // advances only once the header exists: a seal that fails before emitting consumes no
    // sequence number (THREATS T64).
    let input = Input::open(args.input.as_deref())?;
    let output = Output::create(
        args.output.as_deref(),
        false,
        Overwrite::from_force(args.force),
    )?;
    // The sender state file beside the key (`KEY.seq`: last sequence and header hash), unless
    // the caller gives the sequence (and previous hash) itself.
    let (state, counter) = match (args.sequence, named(Some(&args.identity))) {
        (Some(n), _) => (
            toyseal_core::SenderState {
                sequence: n,
                previous: args.previous.unwrap_or([0; 32]),
            },
            None,
        ),
        (None, Some(key)) => {
            let mut counter = key.as_os_str().to_owned();
            counter.push(".seq");
            let counter = std::path::PathBuf::from(counter);
            let state =
                toyseal_core::read_sender_state(&counter).map_err(|source| Error::Sequence {
                    place: Place::File(counter.clone()),
                    source,
                })?;
            (state, Some(counter))
        }
        (None, None) => {
            return Err(Error::Usage(
                "give --sequence N when the key file comes from standard input".into(),
            ));
        }
    };
    let sequence = state.sequence;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut options = SealOptions::default()
        .with_chunk_size_log2(args.chunk_size_log2)
        .map_err(Error::Seal)?
        .with_segment_size_log2(args.segment_size_log2)
        .map_err(Error::Seal)?
        .with_sequence(sequence)
        .with_previous(state.previous)
        .with_created(created)
        .with_metadata(metadata);
    if let Some(family) = args.family {
        options = options.with_family(family, args.roster_version);
    }
    // Once the header exists the number is spent (recorded before any byte leaves): a later
    // failure says which, so the gap recipients will see at this sequence is accounted for.
    let streamed = output.is_streamed();
    let recorded = std::cell::Cell::new(false);
    let record = |link: toyseal_envelope::ChainLink| -> Result<(), Error> {
        if let Some(counter) = &counter {
            toyseal_core::record_sent(counter, link.sequence, link.header_hash).map_err(
                |source| Error::Sequence {
                    place: Place::File(counter.clone()),
                    source,
                },
            )?;
        }
        recorded.set(true);
        Ok(())
    };
    seal_to(
        &identity,
        &recipients,
        &options,
        input,
        output,
        progress,
        &record,
    )
    .map_err(|e| {
        if recorded.get() {
            Error::SealFailed {
                sequence,
                emitted: streamed,
                source: Box::new(e),
            }
        } else {
            e
        }
    })
}

/// Seals `input` into `output` with `options`, calling `record` with the envelope's chain link
/// once its header exists and before any byte of it is written.
fn seal_to(
    identity: &toyseal_core::DeviceIdentity,
    recipients: &[toyseal_core::PublicIdentity],
    options: &SealOptions,
    input: Input,
    mut output: Output,
    progress: bool,
    record: &dyn Fn(toyseal_envelope::ChainLink) -> Result<(), Error>,
) -> Result<(), Error> {
    let in_place = input.place.clone();
    let size = input.size;
    let mut reader = ProgressReader::new(input.reader, input.size, progress);
    if let Some(size) = size.filter(|s| PARALLEL_SIZES.contains(s)) {
        let content = read_all(&mut reader, size, &in_place)?;
        reader.finish();
        let envelope =
            toyseal_envelope::seal_parallel(identity, recipients, options, &content, &mut OsRng)
                .map_err(Error::Seal)?;
        record(
            toyseal_envelope::inspect(&envelope)
                .map_err(Error::Seal)?
                .chain_link(),
        )?;
        let out_place = output.place();
        output
            .write_all(&envelope)
            .map_err(|e| Error::io(out_place, e))?;
        return output.commit();
    }
    let out_place = output.place();
    // An envelope error inside an io::Error is the sealer's (e.g. too large); anything else
    // is the output's.
    let write_err = |e: io::Error| match envelope_error(e) {
        Ok(e) => Error::Seal(e),
        Err(source) => Error::Io {
            place: out_place.clone(),
            source,
        },
    };

    let mut writer = SealWriter::new(&mut output, identity, recipients, options, &mut OsRng)
        .map_err(Error::Seal)?;
    record(writer.link())?;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(in_place, e)),
        };
        writer
            .write_all(buf.get(..n).unwrap_or_default())
            .map_err(write_err)?;
    }
    writer.finish().map_err(write_err)?;
    reader.finish();
    output.commit()
}
