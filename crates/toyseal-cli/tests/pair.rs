//! `toyseal pair --as toy|phone` over TCP loopback: two processes run the real pairing
//! protocol (SPAKE2 with the printed code, SAS), each ends with the other's public key; a wrong
//! code fails on both sides with exit 11 and is counted durably by the toy. Keys are generated;
//! the codes are made up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

/// Starts `toyseal pair --as toy` and returns it with the address it listens on.
fn start_toy(
    dir: &Path,
    code_file: &str,
    confirmation: &str,
) -> (Child, String, std::process::ChildStderr) {
    let mut child = toyseal()
        .current_dir(dir)
        .args([
            "pair",
            "--as",
            "toy",
            "-i",
            "toy.key",
            "--code-file",
            code_file,
        ])
        .args(["--timeout", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The operator at the toy confirms (the toy reads it only once the SAS is shown).
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(confirmation.as_bytes()).unwrap();
    }
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("toyseal pair: toy listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (child, addr, err.into_inner())
}

fn sas(stderr: &str) -> String {
    let at = stderr
        .find("SAS ")
        .unwrap_or_else(|| panic!("no SAS in {stderr}"));
    stderr[at + 4..at + 10].to_owned()
}

#[test]
fn a_toy_and_a_phone_pair_over_loopback_and_learn_each_others_keys() {
    let dir = tempfile::tempdir().unwrap();
    let toy_pub = keygen(dir.path(), "toy", "toy.key");
    let mum_pub = keygen(dir.path(), "guardian", "mum.key");
    fs::write(dir.path().join("tag.txt"), "3141 5926 53\n").unwrap();

    let (toy, addr, mut toy_err) = start_toy(dir.path(), "tag.txt", "yes\n");
    let phone = run_in(
        dir.path(),
        &[
            "pair",
            "--as",
            "phone",
            "-i",
            "mum.key",
            "--code-file",
            "-",
            "--connect",
            &addr,
        ],
        Some(b"3141592653"),
    );
    let toy = toy.wait_with_output().unwrap();
    let mut toy_stderr = String::new();
    toy_err.read_to_string(&mut toy_stderr).unwrap();
    assert_ok(&phone);
    assert!(toy.status.success(), "{toy_stderr}");
    assert_eq!(stdout_text(&phone).trim(), toy_pub);
    assert_eq!(String::from_utf8(toy.stdout).unwrap().trim(), mum_pub);
    // Both sides show the same short authentication string.
    assert_eq!(sas(&stderr(&phone)), sas(&toy_stderr));
}

#[test]
fn a_wrong_code_fails_on_both_sides_and_the_toy_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "toy", "toy.key");
    keygen(dir.path(), "guardian", "mum.key");
    fs::write(dir.path().join("tag.txt"), "3141592653").unwrap();
    fs::write(dir.path().join("guess.txt"), "2718281828").unwrap();

    let (toy, addr, mut toy_err) = start_toy(dir.path(), "tag.txt", "yes\n");
    let phone = run_in(
        dir.path(),
        &[
            "pair",
            "--as",
            "phone",
            "-i",
            "mum.key",
            "--code-file",
            "guess.txt",
            "--connect",
            &addr,
        ],
        None,
    );
    let toy = toy.wait_with_output().unwrap();
    let mut toy_stderr = String::new();
    toy_err.read_to_string(&mut toy_stderr).unwrap();
    // The phone shows its SAS (derived from its own side of the exchange) before the toy's
    // refusal arrives; then one error line.
    assert_eq!(phone.status.code(), Some(11), "{}", stderr(&phone));
    let last = stderr(&phone).lines().last().unwrap().to_owned();
    assert_eq!(
        last,
        "toyseal: error: pairing failed: the code did not match (a wrong code, or someone in \
         the middle)"
    );
    assert!(phone.stdout.is_empty());
    assert_eq!(toy.status.code(), Some(11), "{toy_stderr}");
    assert!(
        toy_stderr.contains("toyseal: error: pairing failed: "),
        "{toy_stderr}"
    );
    assert!(toy.stdout.is_empty());
    let failures = fs::read_to_string(dir.path().join("toy.key.pairing-failures")).unwrap();
    assert_eq!(failures.trim(), "1");
    // Neither code reached an output or a message.
    assert!(!stderr(&phone).contains("2718281828") && !toy_stderr.contains("3141592653"));
}

#[test]
fn a_pairing_declined_at_the_toy_fails_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "toy", "toy.key");
    keygen(dir.path(), "guardian", "mum.key");
    fs::write(dir.path().join("tag.txt"), "3141592653").unwrap();
    let (toy, addr, mut toy_err) = start_toy(dir.path(), "tag.txt", "no\n");
    let phone = run_in(
        dir.path(),
        &[
            "pair",
            "--as",
            "phone",
            "-i",
            "mum.key",
            "--code-file",
            "tag.txt",
            "--connect",
            &addr,
        ],
        None,
    );
    let toy = toy.wait_with_output().unwrap();
    let mut toy_stderr = String::new();
    toy_err.read_to_string(&mut toy_stderr).unwrap();
    assert_eq!(phone.status.code(), Some(11), "{}", stderr(&phone));
    assert!(
        stderr(&phone).contains("declined at the toy"),
        "{}",
        stderr(&phone)
    );
    assert!(phone.stdout.is_empty());
    assert_eq!(toy.status.code(), Some(11), "{toy_stderr}");
    assert!(
        toy_stderr.contains("not confirmed at the toy"),
        "{toy_stderr}"
    );
    assert!(toy.stdout.is_empty());
}

#[test]
fn bad_pair_arguments_are_refused_with_the_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "toy", "toy.key");
    keygen(dir.path(), "guardian", "mum.key");
    fs::write(dir.path().join("tag.txt"), "3141592653").unwrap();
    fs::write(dir.path().join("short.txt"), "1234").unwrap();
    let base = ["pair", "--code-file", "tag.txt"];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        run_in(dir.path(), &a, None)
    };
    let o = run(&["--as", "toy", "-i", "mum.key"]);
    assert_fails(&o, 2, "--as toy needs a toy key");
    let o = run_in(
        dir.path(),
        &["pair", "--as", "toy", "-i", "toy.key", "--code-file", "-"],
        Some(b"3141592653"),
    );
    assert_fails(&o, 2, "reads its user's confirmation from standard input");
    let o = run(&["--as", "phone", "-i", "toy.key", "--connect", "127.0.0.1:9"]);
    assert_fails(&o, 2, "--as phone needs a guardian key");
    let o = run(&["--as", "phone", "-i", "mum.key"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--connect is required for a phone"
    );
    let o = run_in(
        dir.path(),
        &[
            "pair",
            "--as",
            "phone",
            "-i",
            "mum.key",
            "--code-file",
            "short.txt",
            "--connect",
            "127.0.0.1:9",
        ],
        None,
    );
    assert_fails(&o, 2, "short.txt: ");
    let o = run_in(
        dir.path(),
        &[
            "pair",
            "--as",
            "phone",
            "-i",
            "mum.key",
            "--code-file",
            "none.txt",
            "--connect",
            "127.0.0.1:9",
        ],
        None,
    );
    assert_fails(&o, 1, "none.txt");
    // Nobody listening: an I/O error.
    let o = run(&["--as", "phone", "-i", "mum.key", "--connect", "127.0.0.1:9"]);
    assert_fails(&o, 1, "connecting to the toy: ");
}
