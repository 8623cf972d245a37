//! The README's command blocks run as written (issue 14): every fenced block whose info string
//! is `sh runnable` runs, unchanged, under `bash -euo pipefail` in a fresh folder with the
//! built `toyseal` first on `PATH`. A block may start `toyseal serve` in the background; the
//! whole process group is killed afterwards, whatever happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The blocks of `markdown` fenced as ```` ```sh runnable ````.
fn runnable_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "```sh runnable" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unterminated runnable block");
    blocks
}

#[test]
fn the_readme_command_blocks_run_as_written() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(readme).unwrap();
    let blocks = runnable_blocks(&readme);
    assert_eq!(blocks.len(), 1, "the README's runnable blocks");

    // The block's server listens on 127.0.0.1:8080, as the README says.
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        panic!("127.0.0.1:8080 is taken: the README block's server cannot start");
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_toyseal")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for block in blocks {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("TOYSEAL_SERVER")
            .env_remove("TOYSEAL_KEY")
            .env_remove("TOYSEAL_FAMILY")
            .env_remove("TOYSEAL_CLIENT_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let out = child.wait_with_output().unwrap();
        // Nothing the block started outlives it.
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "README block failed ({:?}):\n{block}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        // What it made: the opened copy, the fetched envelope, dad's anchor, the man pages.
        for made in [
            "heard.wav",
            "got.tse",
            "dad.anchor",
            "toyseal.bash",
            "man1/toyseal.1",
        ] {
            assert!(dir.path().join(made).is_file(), "{made} missing\n{stderr}");
        }
        assert!(stderr.contains("joined family"), "{stderr}");
        // `list --json` printed the uploaded envelope (the one fetched back).
        assert!(stdout.contains("\"id\""), "{stdout}");
    }
}
