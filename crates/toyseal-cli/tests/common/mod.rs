//! Helpers shared by the `toyseal` binary's integration tests: run it with stdin fed from a
//! thread, and check its documented error shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub fn toyseal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_toyseal"))
}

/// Runs `toyseal ARGS` in `dir` with `stdin` fed from a thread (no pipe deadlock).
pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = toyseal();
    cmd.current_dir(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let feeder = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // The child may stop reading early (that is what some tests check).
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout_text(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "failed: {:?}\n{}", o.status, stderr(o));
}

/// Asserts exit `code` and a one-line `toyseal: error: …` message containing `needle`.
#[track_caller]
pub fn assert_fails(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert!(lines[0].starts_with("toyseal: error: "), "{err}");
    assert!(lines[0].contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("SECRET-KEY"), "key material in {err}");
}

/// The environment variables the client commands read: removed from every test run unless the
/// test sets them, so the developer's own settings never leak in.
pub const CLIENT_ENV: [&str; 8] = [
    "TOYSEAL_SERVER",
    "TOYSEAL_KEY",
    "TOYSEAL_FAMILY",
    "TOYSEAL_CLIENT_CONFIG",
    "TOYSEAL_CONFIG",
    "TOYSEAL_TIMEOUT",
    "TOYSEAL_CONNECT_TIMEOUT",
    "TOYSEAL_TRIES",
];

/// Runs `toyseal ARGS` in `dir` with exactly the client environment `env`.
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = toyseal();
    cmd.current_dir(dir).args(args);
    for var in CLIENT_ENV {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    child.wait_with_output().unwrap()
}

/// Generates a key file `name` with `role` in `dir`; returns its public key.
pub fn keygen(dir: &Path, role: &str, name: &str) -> String {
    let o = run_in(dir, &["keygen", "--role", role, "-o", name], None);
    assert_ok(&o);
    stdout_text(&o).trim().to_owned()
}

/// The names in `dir`, sorted (to prove nothing half-written is left behind).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
