//! A real server in a child process (`examples/serve_dir.rs`) on a test's data directory, and
//! a SIGKILL of it in the middle of a blob write (T15, T61).

use super::http::RawRequest;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `serve_dir` example binary, built by `cargo test -p toyseal-server` (which builds
/// examples); built here if a test was selected alone.
pub fn serve_dir_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    let bin = profile_dir
        .join("examples")
        .join(format!("serve_dir{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "toyseal-server", "--example", "serve_dir"])
            .status()
            .unwrap();
        assert!(status.success(), "building the serve_dir example failed");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// Starts the server on `data_dir` and waits for the address it prints.
pub fn spawn_server(data_dir: &Path) -> (Child, SocketAddr) {
    let mut process = Command::new(serve_dir_binary())
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(process.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("address? {line:?}"));
    (process, addr)
}

/// Whether a file name is an object_store staging name (`<key>#<digits>`).
pub fn is_staging(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The staging files in `dir` (not recursive).
pub fn staging_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| is_staging(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// One attempt: a child server on `data_dir`, the uploads `requests(host)` sent to it at once,
/// and a SIGKILL (`Child::kill`) the moment a staging file appears in `family_dir`. Returns the
/// staging files left behind: none if every write finished (or had not begun) when the kill
/// landed.
pub async fn kill9_during_blob_write(
    data_dir: &Path,
    family_dir: &Path,
    requests: impl FnOnce(&str) -> Vec<RawRequest>,
) -> Vec<PathBuf> {
    let (mut process, addr) = spawn_server(data_dir);
    let mut senders = Vec::new();
    for req in requests(&addr.to_string()) {
        senders.push(tokio::spawn(async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut bytes = req.encode_head(false);
            bytes.extend_from_slice(&req.body);
            let _ = tcp.write_all(&bytes).await;
            let mut answer = Vec::new();
            let _ = tcp.read_to_end(&mut answer).await;
        }));
    }
    let dir = family_dir.to_owned();
    // A thread of its own, spinning: the write of a few MiB takes a millisecond or so.
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && staging_files(&dir).is_empty() {
            std::hint::spin_loop();
        }
        process.kill().unwrap();
        process.wait().unwrap();
    });
    tokio::task::spawn_blocking(move || watcher.join().unwrap())
        .await
        .unwrap();
    for sender in senders {
        let _ = tokio::time::timeout(Duration::from_secs(5), sender).await;
    }
    staging_files(family_dir)
}
