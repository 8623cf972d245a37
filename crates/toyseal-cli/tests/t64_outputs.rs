//! THREATS T64: a user points `-o` at an existing file, a device, a FIFO or a symlink, or
//! `--data` at a directory holding their own files; a seal fails halfway. Nothing of theirs is
//! destroyed or half-written: regular files are replaced atomically and only where the command
//! says so (`--force`), special files are written through, a non-empty directory the tool did
//! not create is refused; a failed seal consumes no sequence number it does not account for.
//! Every case runs the real `toyseal` binary. All audio is synthetic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::Path;
use std::process::{Output, Stdio};

/// A directory with a toy, a guardian and a synthetic recording.
struct Home {
    dir: tempfile::TempDir,
    guardian: String,
    toy: String,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let toy = keygen(dir.path(), "toy", "toy.key");
        let guardian = keygen(dir.path(), "guardian", "mum.key");
        // Synthetic "audio": a counter pattern, no voice.
        let note: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(dir.path().join("note.raw"), note).unwrap();
        Self { dir, guardian, toy }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        run_in(self.dir.path(), args, None)
    }

    fn seal(&self, extra: &[&str]) -> Output {
        let mut a = vec!["seal", "-i", "toy.key", "-r", self.guardian.as_str()];
        a.extend(extra);
        self.run(&a)
    }

    fn open(&self, extra: &[&str]) -> Output {
        let mut a = vec!["open", "-i", "mum.key", "--from", self.toy.as_str()];
        a.extend(extra);
        self.run(&a)
    }

    fn note(&self) -> Vec<u8> {
        fs::read(self.path("note.raw")).unwrap()
    }

    /// No temporary file is left in the directory.
    #[track_caller]
    fn assert_no_partial(&self, dir: &Path) {
        for e in fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".partial"), "temporary file left: {name}");
        }
    }
}

#[test]
fn t64_existing_files_are_refused_without_force_and_replaced_whole_with_it() {
    let h = Home::new();
    assert_ok(&h.seal(&["-o", "env.tse", "note.raw"]));
    let first = fs::read(h.path("env.tse")).unwrap();

    // seal, open and roster init onto an existing file: refused, the file untouched.
    fs::write(h.path("letter.txt"), b"my own words").unwrap();
    let o = h.seal(&["-o", "letter.txt", "note.raw"]);
    assert_fails(
        &o,
        1,
        "letter.txt: already exists (use --force to replace it)",
    );
    let o = h.open(&["-o", "letter.txt", "env.tse"]);
    assert_fails(&o, 1, "letter.txt: already exists");
    let o = h.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        &h.toy,
        "--recovery-out",
        "recovery.txt",
        "-o",
        "letter.txt",
    ]);
    assert_fails(&o, 1, "letter.txt: already exists");
    assert_eq!(fs::read(h.path("letter.txt")).unwrap(), b"my own words");
    h.assert_no_partial(h.dir.path());

    // With --force: replaced whole, by a rename (a new inode), no temporary left.
    let o = h.seal(&["--force", "-o", "env.tse", "note.raw"]);
    assert_ok(&o);
    let second = fs::read(h.path("env.tse")).unwrap();
    assert_ne!(first, second, "a fresh seal differs (new file key)");
    let o = h.open(&["--force", "-o", "letter.txt", "env.tse"]);
    assert_ok(&o);
    assert_eq!(fs::read(h.path("letter.txt")).unwrap(), h.note());
    h.assert_no_partial(h.dir.path());
}

#[test]
fn t64_a_symlink_is_followed_never_replaced() {
    let h = Home::new();
    assert_ok(&h.seal(&["-o", "env.tse", "note.raw"]));
    fs::create_dir(h.path("real")).unwrap();
    fs::write(h.path("real/out.raw"), b"previous").unwrap();
    symlink("real/out.raw", h.path("link.raw")).unwrap();

    // An existing target is refused without --force, through the link too.
    let o = h.open(&["-o", "link.raw", "env.tse"]);
    assert_fails(&o, 1, "link.raw: already exists");
    assert_eq!(fs::read(h.path("real/out.raw")).unwrap(), b"previous");

    // With --force the target is replaced; the link stays a link to it.
    assert_ok(&h.open(&["--force", "-o", "link.raw", "env.tse"]));
    assert!(
        fs::symlink_metadata(h.path("link.raw"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(h.path("real/out.raw")).unwrap(), h.note());
    h.assert_no_partial(&h.path("real"));
    h.assert_no_partial(h.dir.path());

    // A dangling link is refused; nothing is created at its target.
    symlink("real/missing.raw", h.path("dangling.raw")).unwrap();
    let o = h.open(&["-o", "dangling.raw", "env.tse"]);
    assert_fails(&o, 1, "dangling.raw: ");
    assert!(!h.path("real/missing.raw").exists());

    // A link to standard output writes to the pipe; the link is still a link.
    symlink("/dev/stdout", h.path("to-stdout")).unwrap();
    let o = h.open(&["-o", "to-stdout", "env.tse"]);
    assert_ok(&o);
    assert_eq!(o.stdout, h.note());
    assert!(
        fs::symlink_metadata(h.path("to-stdout"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn t64_special_files_are_written_through() {
    let h = Home::new();
    assert_ok(&h.seal(&["-o", "env.tse", "note.raw"]));
    let before = fs::symlink_metadata("/dev/stdout").unwrap().file_type();

    // -o /dev/stdout is standard output: the bytes arrive on the pipe.
    let o = h.open(&["-o", "/dev/stdout", "env.tse"]);
    assert_ok(&o);
    assert_eq!(o.stdout, h.note(), "-o /dev/stdout wrote elsewhere");
    assert_eq!(
        fs::symlink_metadata("/dev/stdout").unwrap().file_type(),
        before
    );

    // A device: written through, still a device.
    let o = h.seal(&["-o", "/dev/null", "note.raw"]);
    assert_ok(&o);
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let o = h.open(&["-o", "/dev/null", "env.tse"]);
    assert_ok(&o);
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // A FIFO: a reader gets the whole content; the FIFO is still a FIFO.
    let fifo = h.path("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            fs::File::open(fifo).unwrap().read_to_end(&mut got).unwrap();
            got
        })
    };
    let o = toyseal()
        .current_dir(h.dir.path())
        .args([
            "open", "-i", "mum.key", "--from", &h.toy, "-o", "pipe", "env.tse",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(reader.join().unwrap(), h.note());
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    h.assert_no_partial(h.dir.path());
}

#[test]
fn t64_a_failed_seal_consumes_no_sequence_number() {
    let h = Home::new();
    fs::write(h.path("taken.tse"), b"mine").unwrap();
    fs::create_dir(h.path("a-folder")).unwrap();
    // Missing input, a directory as input, an existing output: each fails before emitting.
    assert_fails(&h.seal(&["-o", "x.tse", "missing.raw"]), 1, "missing.raw");
    assert_fails(&h.seal(&["-o", "x.tse", "a-folder"]), 1, "a-folder");
    assert_fails(
        &h.seal(&["-o", "taken.tse", "note.raw"]),
        1,
        "already exists",
    );
    assert!(
        !h.path("toy.key.seq").exists(),
        "a failed seal reserved a number"
    );

    // The first seal that succeeds carries sequence 1.
    assert_ok(&h.seal(&["-o", "one.tse", "note.raw"]));
    let o = h.run(&["inspect", "one.tse"]);
    assert_ok(&o);
    assert!(
        stdout_text(&o).contains("sequence: 1"),
        "{}",
        stdout_text(&o)
    );

    // A seal that fails after its number was reserved (a FIFO nobody reads from would block,
    // so: a device that refuses every byte) names the number it spent.
    if Path::new("/dev/full").exists() {
        let o = h.seal(&["-o", "/dev/full", "note.raw"]);
        assert_fails(&o, 1, "sequence 2 was reserved for this envelope");
        assert_ok(&h.seal(&["-o", "three.tse", "note.raw"]));
        let o = h.run(&["inspect", "three.tse"]);
        assert!(
            stdout_text(&o).contains("sequence: 3"),
            "{}",
            stdout_text(&o)
        );
    }
}

#[test]
fn t64_demo_data_refuses_a_directory_holding_the_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("mydocs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("letter.txt"), b"dear grandma").unwrap();

    let o = run_in(dir.path(), &["demo", "--data", "mydocs"], None);
    assert_fails(&o, 2, "holds files the demo did not create");
    // `--data .` in a folder with the user's files: refused too.
    let o = run_in(&docs, &["demo", "--data", "."], None);
    assert_fails(&o, 2, "holds files the demo did not create");
    // A regular file as --data.
    let o = run_in(&docs, &["demo", "--data", "letter.txt"], None);
    assert_fails(&o, 2, "not a directory");
    assert_eq!(fs::read(docs.join("letter.txt")).unwrap(), b"dear grandma");
    assert_eq!(listing(&docs), vec!["letter.txt".to_owned()]);
}
