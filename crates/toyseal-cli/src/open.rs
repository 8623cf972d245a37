//! `toyseal open`: streaming decryption with [`toyseal_envelope::OpenReader`].

use crate::cli::OpenArgs;
use crate::error::{Error, Place};
use crate::files::{
    COPY_BUF, Input, Output, Overwrite, PARALLEL_SIZES, ProgressReader, named, read_all,
};
use crate::keys::{parse_public_args, read_identity, read_recipients_file};
use std::io::{self, Read, Write};
use toyseal_envelope::{OpenOptions, OpenReader, Opened};

/// Opens the envelope; the output is complete (and, for `-o`, exists) only on success.
pub fn open(args: &OpenArgs, progress: bool) -> Result<(), Error> {
    let stdin_users = [
        named(Some(&args.identity)).is_none(),
        named(args.input.as_deref()).is_none(),
        args.check_recipients
            .as_deref()
            .is_some_and(|p| named(Some(p)).is_none()),
    ];
    if stdin_users.iter().filter(|&&b| b).count() > 1 {
        return Err(Error::Usage(
            "standard input can feed only one of --identity, --check-recipients and the envelope"
                .into(),
        ));
    }
    let identity = read_identity(Some(&args.identity))?;
    let trusted = parse_public_args(&args.from, "--from")?;
    let others = match &args.check_recipients {
        Some(file) => Some(read_recipients_file(file)?),
        None => None,
    };

    let input = Input::open(args.input.as_deref())?;
    let in_place = input.place.clone();
    let size = input.size;
    let mut progress = ProgressReader::new(input.reader, input.size, progress);
    let mut output = Output::create(
        args.output.as_deref(),
        true,
        Overwrite::from_force(args.force),
    )?;
    let out_place = output.place();
    let options = OpenOptions::default().with_size_limit(args.max_size);
    if let Some(size) =
        size.filter(|s| PARALLEL_SIZES.contains(s) && *s <= args.max_size && others.is_none())
    {
        // In memory on every core: nothing reaches the output before every checkpoint verified.
        let envelope = read_all(&mut progress, size, &in_place)?;
        progress.finish();
        let (content, opened) = toyseal_envelope::open_parallel(
            &identity, &trusted, &envelope, options,
        )
        .map_err(|source| Error::Envelope {
            place: in_place.clone(),
            source,
        })?;
        output
            .write_all(&content)
            .map_err(|e| Error::io(out_place.clone(), e))?;
        output.commit()?;
        if args.verbose {
            report(&opened, &in_place)?;
        }
        return Ok(());
    }
    let mut reader = OpenReader::new(progress, &identity, &trusted, options);
    if let Some(others) = &others {
        reader = reader.check_recipients(others);
    }

    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Stop at the first error: the output (a temporary file) is dropped, hence deleted.
            Err(e) => return Err(Error::io(in_place, e)),
        };
        output
            .write_all(buf.get(..n).unwrap_or_default())
            .map_err(|e| Error::io(out_place.clone(), e))?;
    }
    // End of file from OpenReader means the envelope verified; `opened` proves it. Checked
    // anyway, so that nothing unverified is ever committed.
    let opened = reader.opened().cloned().ok_or(Error::Envelope {
        place: in_place.clone(),
        source: toyseal_envelope::Error::Truncated,
    })?;
    output.commit()?;
    if args.verbose {
        report(&opened, &in_place)?;
    }
    Ok(())
}

/// Prints what was verified to standard error.
fn report(opened: &Opened, place: &Place) -> Result<(), Error> {
    let m = &opened.metadata;
    let none = || "-".to_owned();
    let lines = [
        format!("{place}: verified"),
        format!("sender: {}", opened.sender),
        format!("sender device id: {}", opened.sender.device_id()),
        format!("sender role: {}", opened.sender.role()),
        format!(
            "family: {}",
            opened.family.map_or_else(none, |f| f.to_string())
        ),
        format!("roster version: {}", opened.roster_version),
        format!(
            "content type: {}",
            m.content_type.as_deref().map_or_else(none, printable)
        ),
        format!("codec: {}", m.codec.as_deref().map_or_else(none, printable)),
        format!(
            "duration: {}",
            m.duration_ms.map_or_else(none, |d| format!("{d} ms"))
        ),
        format!("content length: {} bytes", opened.content_len),
    ];
    crate::note(&lines.join("\n"));
    Ok(())
}

/// The sealed text fields come from the sender: escape control characters so that a field
/// cannot drive the terminal (escape sequences, fake lines).
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_in_metadata_are_escaped() {
        assert_eq!(printable("audio/wav"), "audio/wav");
        assert_eq!(printable("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        assert_eq!(printable("opus é"), "opus é");
    }
}
