//! The cloud commands against a real `toyseal serve` (spawned on 127.0.0.1:0, SQLite and a
//! blob directory in a temporary directory): family create → upload → list → fetch → open →
//! delete, roster updates, invite → join, family deletion by a quorum, the settings'
//! precedence (flag > environment > config file), and the refusals (unauthorized device, wrong
//! role, unknown envelope, unreachable server) with their documented exit codes. Keys and
//! audio are generated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A `toyseal serve` child process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path) -> Self {
        let mut cmd = toyseal();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for var in CLIENT_ENV {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server stopped before listening")
                .unwrap();
            if line.contains("listening")
                && let Some((_, rest)) = line.split_once("listen=")
            {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mum, dad, the toy and an outsider, a roster v1 {mum, toy}, and a running server.
struct World {
    dir: tempfile::TempDir,
    server: Server,
    toy: String,
    dad: String,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("server-data"));
        let home = dir.path();
        keygen(home, "guardian", "mum.key");
        let dad = keygen(home, "guardian", "dad.key");
        let toy = keygen(home, "toy", "toy.key");
        keygen(home, "guardian", "outsider.key");
        let o = run_in(
            home,
            &[
                "roster",
                "init",
                "-i",
                "mum.key",
                "-m",
                &toy,
                "--recovery-out",
                "recovery.txt",
                "-o",
                "v1.tsr",
            ],
            None,
        );
        assert_ok(&o);
        assert_ok(&run_in(
            home,
            &["roster", "cosign", "-i", "toy.key", "v1.tsr"],
            None,
        ));
        fs::write(home.join("note.wav"), synthetic_audio()).unwrap();
        Self {
            dir,
            server,
            toy,
            dad,
        }
    }
    fn home(&self) -> &Path {
        self.dir.path()
    }
    /// Runs with `--server` given as a flag.
    fn run(&self, args: &[&str]) -> Output {
        let mut a = args.to_vec();
        a.extend(["--server", &self.server.url]);
        run_env(self.home(), &a, &[], None)
    }
    fn env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_env(self.home(), args, env, None)
    }
    fn file(&self, name: &str) -> Vec<u8> {
        fs::read(self.home().join(name)).unwrap()
    }
}

/// Two seconds of generated tones as raw 16-bit samples (no real voice).
fn synthetic_audio() -> Vec<u8> {
    (0..32_000u32)
        .flat_map(|i| {
            let v = ((f64::from(i) * 0.07).sin() * 12_000.0) as i16;
            v.to_le_bytes()
        })
        .collect()
}

#[test]
fn create_upload_list_fetch_open_delete_against_a_real_server() {
    let w = World::new();
    let url = w.server.url.clone();

    // A version 1 the toy has not signed is refused before it is sent (exit 8).
    let o = run_in(
        w.home(),
        &[
            "roster",
            "init",
            "-i",
            "mum.key",
            "-m",
            &w.toy,
            "--recovery-out",
            "half-recovery.txt",
            "-o",
            "half.tsr",
        ],
        None,
    );
    assert_ok(&o);
    let o = w.run(&["family", "create", "-i", "mum.key", "half.tsr"]);
    assert_fails(
        &o,
        8,
        "family create half.tsr: roster refused: the roster lacks a required signature",
    );
    // Standard input cannot feed both the key and the envelope.
    let o = w.run(&["upload", "-i", "-"]);
    assert_fails(&o, 2, "standard input can feed only one");

    // family create: prints the family id.
    let o = w.run(&["family", "create", "-i", "mum.key", "v1.tsr"]);
    assert_ok(&o);
    let family = stdout_text(&o).trim().to_owned();
    assert_eq!(family.len(), 32);
    assert!(stderr(&o).contains("anchor of version 1: "));
    // Twice is a refusal (HTTP 4xx): exit 9.
    let o = w.run(&["family", "create", "-i", "mum.key", "v1.tsr"]);
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));

    // The toy seals a note to mum for this family and uploads it, settings from the
    // environment.
    let o = run_in(w.home(), &["roster", "show", "--json", "v1.tsr"], None);
    let v1: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mum_pub = v1["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "guardian")
        .unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = run_in(
        w.home(),
        &[
            "seal",
            "-i",
            "toy.key",
            "-r",
            &mum_pub,
            "--family",
            &family,
            "--roster-version",
            "1",
            "-o",
            "note.tse",
            "note.wav",
        ],
        None,
    );
    assert_ok(&o);
    let env = [("TOYSEAL_SERVER", url.as_str()), ("TOYSEAL_KEY", "toy.key")];
    let o = w.env(&["upload", "note.tse"], &env);
    assert_ok(&o);
    let id = stdout_text(&o).trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    // Idempotent: the same id again; and from standard input.
    let o = run_env(w.home(), &["upload"], &env, Some(&w.file("note.tse")));
    assert_ok(&o);
    assert_eq!(stdout_text(&o).trim(), id);

    // list, settings from a config file (relative key path from the file's directory).
    fs::create_dir(w.home().join("conf")).unwrap();
    fs::write(
        w.home().join("conf/client.json"),
        format!(r#"{{"server": "{url}", "key": "../mum.key", "family": "{family}"}}"#),
    )
    .unwrap();
    let cfg = [("TOYSEAL_CLIENT_CONFIG", "conf/client.json")];
    let o = w.env(&["list"], &cfg);
    assert_ok(&o);
    let line = stdout_text(&o);
    assert!(line.starts_with(&id), "{line}");
    let o = w.env(&["list", "--json"], &cfg);
    assert_ok(&o);
    let items: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["roster_version"], 1);
    let toy_id = stdout_text(&run_in(
        w.home(),
        &["pubkey", "--device-id", "toy.key"],
        None,
    ));
    assert_eq!(items[0]["sender"], toy_id.trim());

    // fetch to a file (atomic) and to stdout; both are the uploaded bytes and open.
    let o = w.run(&[
        "fetch", "-i", "mum.key", "--family", &family, "-o", "got.tse", &id,
    ]);
    assert_ok(&o);
    assert_eq!(w.file("got.tse"), w.file("note.tse"));
    let o = w.run(&["fetch", "-i", "mum.key", "--family", &family, &id]);
    assert_ok(&o);
    assert_eq!(o.stdout, w.file("note.tse"));
    let o = run_in(
        w.home(),
        &["open", "-i", "mum.key", "--from", &w.toy, "got.tse"],
        None,
    );
    assert_ok(&o);
    assert_eq!(o.stdout, synthetic_audio());

    // Refusals: an outsider (401), the toy deleting (403), an unknown envelope (404) — exit 9,
    // one line, no output file.
    let before = listing(w.home());
    let o = w.run(&["list", "-i", "outsider.key", "--family", &family]);
    assert_fails(&o, 9, "list: the server answered HTTP 401");
    let o = w.run(&[
        "fetch",
        "-i",
        "outsider.key",
        "--family",
        &family,
        "-o",
        "stolen.tse",
        &id,
    ]);
    assert_fails(&o, 9, "the server answered HTTP 4");
    // Pending deletions are for guardians.
    let o = w.run(&["deleted", "-i", "toy.key", "--family", &family]);
    assert_fails(&o, 9, "deleted: the server answered HTTP 403");
    let unknown = "0".repeat(64);
    let o = w.run(&[
        "fetch", "-i", "mum.key", "--family", &family, "-o", "x.tse", &unknown,
    ]);
    assert_fails(&o, 9, "the server answered HTTP 404");
    let o = w.run(&[
        "fetch", "-i", "mum.key", "--family", &family, "-o", "x.tse", "xyz",
    ]);
    assert_fails(&o, 2, "is not an envelope id");
    assert_eq!(
        listing(w.home()),
        before,
        "a refused fetch left a file behind"
    );

    // Mum's deletion of the toy's note is soft (T36): hidden, listed by `deleted`, restorable.
    let o = w.run(&["delete", "-i", "mum.key", "--family", &family, &id]);
    assert_ok(&o);
    assert!(stderr(&o).contains("deleted softly"), "{}", stderr(&o));
    let o = w.env(&["list"], &cfg);
    assert_ok(&o);
    assert!(o.stdout.is_empty());
    let o = w.run(&["deleted", "-i", "mum.key", "--family", &family, "--json"]);
    assert_ok(&o);
    let pending: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pending[0]["id"], id.as_str());
    assert_eq!(
        pending[0]["erase_at"].as_u64().unwrap(),
        pending[0]["deleted_at"].as_u64().unwrap() + 30 * 86_400
    );
    assert_ok(&w.run(&["restore", "-i", "mum.key", "--family", &family, &id]));
    let o = w.env(&["list"], &cfg);
    assert!(stdout_text(&o).contains(&id));
    // Its sender, the toy, erases it at once; the listing is then empty.
    let o = w.run(&["delete", "-i", "toy.key", "--family", &family, &id]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains(&format!("{id}: erased")),
        "{}",
        stderr(&o)
    );
    let o = w.env(&["list"], &cfg);
    assert_ok(&o);
    assert!(o.stdout.is_empty());
    let o = w.run(&["restore", "-i", "mum.key", "--family", &family, &id]);
    assert_fails(&o, 9, "the server answered HTTP 404");
}

#[test]
fn settings_precedence_and_missing_or_bad_settings() {
    let w = World::new();
    let url = w.server.url.clone();
    let o = w.run(&["family", "create", "-i", "mum.key", "v1.tsr"]);
    assert_ok(&o);
    let family = stdout_text(&o).trim().to_owned();
    let dead = "http://127.0.0.1:9";
    fs::write(
        w.home().join("dead.json"),
        format!(r#"{{"server": "{dead}", "key": "outsider.key", "family": "{family}"}}"#),
    )
    .unwrap();
    // flag > environment > file, for each setting.
    let o = w.env(
        &[
            "list",
            "--config",
            "dead.json",
            "--server",
            &url,
            "-i",
            "mum.key",
        ],
        &[("TOYSEAL_SERVER", dead), ("TOYSEAL_KEY", "outsider.key")],
    );
    assert_ok(&o);
    let o = w.env(
        &["list", "--config", "dead.json"],
        &[("TOYSEAL_SERVER", &url), ("TOYSEAL_KEY", "mum.key")],
    );
    assert_ok(&o);
    let o = w.env(
        &["list", "--config", "dead.json", "--family", &"1".repeat(32)],
        &[("TOYSEAL_SERVER", &url), ("TOYSEAL_KEY", "mum.key")],
    );
    assert_fails(&o, 9, "HTTP 4");

    // Missing settings are usage errors naming every way to give them.
    let o = w.env(&["list", "-i", "mum.key", "--family", &family], &[]);
    assert_fails(&o, 2, "no server: give --server URL, set TOYSEAL_SERVER");
    let o = w.env(&["list", "--server", &url, "--family", &family], &[]);
    assert_fails(&o, 2, "no key file");
    let o = w.env(&["list", "--server", &url, "-i", "mum.key"], &[]);
    assert_fails(&o, 2, "no family");
    let o = w.env(
        &[
            "list", "--server", "ftp://x", "-i", "mum.key", "--family", &family,
        ],
        &[],
    );
    assert_fails(&o, 2, "--server: ");

    // A bad config file: unknown key, not JSON, bad family; unreadable is an I/O error.
    for (text, needle) in [
        (r#"{"sever": "x"}"#, "unknown field"),
        ("server = 1", "invalid client config"),
        (r#"{"family": "nope"}"#, "\"family\" is not a family id"),
    ] {
        fs::write(w.home().join("bad.json"), text).unwrap();
        let o = w.env(&["list", "--config", "bad.json"], &[]);
        assert_fails(&o, 2, needle);
    }
    let o = w.env(&["list", "--config", "missing.json"], &[]);
    assert_fails(&o, 1, "missing.json");

    // An unreachable server: exit 10 (after the client's retries).
    let o = w.env(
        &[
            "list", "--server", dead, "-i", "mum.key", "--family", &family,
        ],
        &[],
    );
    assert_fails(
        &o,
        10,
        "list: could not connect to http://127.0.0.1:9/v1/families/",
    );

    // upload refuses a non-envelope before any request, and an envelope with no family.
    fs::write(w.home().join("junk.tse"), b"not an envelope").unwrap();
    let o = w.run(&["upload", "-i", "mum.key", "junk.tse"]);
    assert_fails(&o, 4, "junk.tse: ");
    let o = run_in(
        w.home(),
        &[
            "seal",
            "-i",
            "toy.key",
            "-r",
            &w.dad,
            "-o",
            "nofam.tse",
            "note.wav",
        ],
        None,
    );
    assert_ok(&o);
    let o = w.run(&["upload", "-i", "toy.key", "nofam.tse"]);
    assert_fails(&o, 2, "the envelope names no family");
}

#[test]
fn roster_updates_invite_join_and_family_deletion_by_a_quorum() {
    let w = World::new();
    let url = w.server.url.clone();
    let o = w.run(&["family", "create", "-i", "mum.key", "v1.tsr"]);
    assert_ok(&o);
    let family = stdout_text(&o).trim().to_owned();

    // Not yet a member: dad cannot read the roster.
    let o = w.run(&["family", "show", "-i", "dad.key", "--roster", "v1.tsr"]);
    assert_fails(&o, 9, "family show: the server answered HTTP 401");

    // v2 adds dad; an incomplete v2 is refused by the server (and first by nothing local).
    let home = w.home();
    assert_ok(&run_in(
        home,
        &[
            "roster", "propose", "-i", "mum.key", "--add", &w.dad, "-o", "v2.tsr", "v1.tsr",
        ],
        None,
    ));
    let o = w.run(&["family", "update", "-i", "mum.key", "v2.tsr"]);
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
    // The server's reason is shown, not only its status.
    let err = stderr(&o);
    assert!(
        err.contains("family update v2.tsr: the server answered HTTP 4") && err.contains("): "),
        "{err}"
    );
    assert_ok(&run_in(
        home,
        &["roster", "cosign", "--recovery", "recovery.txt", "v2.tsr"],
        None,
    ));
    assert_ok(&run_in(
        home,
        &["roster", "cosign", "-i", "dad.key", "v2.tsr"],
        None,
    ));
    assert_ok(&w.run(&["family", "update", "-i", "mum.key", "v2.tsr"]));

    // family show: verified through mum's anchor (version 1), latest version 2.
    let o = w.run(&[
        "family",
        "show",
        "-i",
        "mum.key",
        "--roster",
        "v1.tsr",
        "--json",
        "-o",
        "latest.tsr",
    ]);
    assert_ok(&o);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["family"], family.as_str());
    assert_eq!(w.file("latest.tsr"), w.file("v2.tsr"));

    // invite → join: dad anchors at version 2 through the invitation (server from it).
    let o = run_in(
        home,
        &["invite", "--no-qr", "--server", &url, "v1.tsr", "v2.tsr"],
        None,
    );
    assert_ok(&o);
    let invitation = o.stdout;
    let o = run_env(
        home,
        &["join", "-i", "dad.key", "-o", "dad.anchor", "-"],
        &[],
        Some(&invitation),
    );
    assert_ok(&o);
    assert!(stderr(&o).contains("anchored at version 2, latest verified version 2 (3 members)"));
    let anchor = String::from_utf8(w.file("dad.anchor")).unwrap();
    assert_eq!(anchor.trim(), shown["anchor"].as_str().unwrap());
    let o = w.run(&["family", "show", "-i", "dad.key", "--anchor", anchor.trim()]);
    assert_ok(&o);
    assert!(stdout_text(&o).contains("verified:      yes"));
    // The outsider cannot join with dad's invitation; a garbled invitation is a roster error.
    let text = String::from_utf8(invitation).unwrap();
    let o = w.env(&["join", "-i", "outsider.key", text.trim()], &[]);
    assert_fails(&o, 9, "join: the server answered HTTP 401");
    let o = w.env(&["join", "-i", "dad.key", "toyseal-invite:1:nonsense"], &[]);
    assert_fails(&o, 8, "the invitation: malformed roster");
    // A forged anchor (right family, wrong hash) is refused: the chain does not pass through it.
    let forged = format!("{}:2:{}", family, "ab".repeat(32));
    let o = w.run(&["family", "show", "-i", "dad.key", "--anchor", &forged]);
    assert_fails(
        &o,
        8,
        "family show: roster refused: the roster chain does not pass through",
    );

    // Erasing envelopes at once needs two guardians: mum and the toy are refused before
    // anything is sent; mum and dad are accepted.
    let some_id = "ab".repeat(32);
    let o = w.run(&[
        "erase", "-i", "mum.key", "--cosign", "toy.key", "--roster", "v1.tsr", &some_id,
    ]);
    assert_fails(
        &o,
        8,
        "the erasure statement: the roster lacks a required signature",
    );
    let o = w.run(&[
        "erase", "-i", "mum.key", "--cosign", "dad.key", "--roster", "v1.tsr", &some_id,
    ]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains(&format!("family {family}")),
        "{}",
        stderr(&o)
    );

    // Deleting the family needs a quorum: mum alone is refused before anything is sent.
    let o = w.run(&[
        "family", "delete", "-i", "mum.key", "--cosign", "mum.key", "--roster", "v1.tsr",
    ]);
    assert_fails(
        &o,
        8,
        "the deletion statement: the roster lacks a required signature",
    );
    let o = w.run(&["family", "delete", "-i", "mum.key", "--roster", "v1.tsr"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--cosign or --recovery is required"
    );
    // The toy never counts for a deletion (T35).
    let o = w.run(&[
        "family", "delete", "-i", "mum.key", "--cosign", "toy.key", "--roster", "v1.tsr",
    ]);
    assert_fails(
        &o,
        8,
        "the deletion statement: the roster lacks a required signature: deleting the family",
    );
    let o = w.run(&[
        "family",
        "delete",
        "-i",
        "mum.key",
        "--recovery",
        "recovery.txt",
        "--roster",
        "v1.tsr",
    ]);
    assert_ok(&o);
    assert!(stderr(&o).contains(&format!("family {family} deleted")));
    let o = w.run(&["list", "-i", "mum.key", "--family", &family]);
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
}

/// A server that accepts connections and never answers.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for sock in listener.incoming().flatten() {
            held.push(sock);
        }
    });
    port
}

#[test]
fn a_silent_server_is_abandoned_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "guardian", "mum.key");
    let port = silent_server();
    let server = format!("http://127.0.0.1:{port}");
    let family = "ab".repeat(16);
    let start = Instant::now();
    let o = run_env(
        dir.path(),
        &[
            "list",
            "-i",
            "mum.key",
            "--family",
            &family,
            "--server",
            &server,
            "--timeout",
            "2",
        ],
        &[],
        None,
    );
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}");
    assert_fails(
        &o,
        10,
        &format!("list: no answer from {server}/v1/families/{family}/envelopes within 2 s (1 try)"),
    );
    // The same from the environment and from the config file, with several tries.
    fs::write(
        dir.path().join("client.json"),
        format!(r#"{{"server": "{server}", "key": "mum.key", "timeout": 2, "tries": 4}}"#),
    )
    .unwrap();
    let start = Instant::now();
    let o = run_env(
        dir.path(),
        &["family", "show", "--roster", "none.tsr", "--anchor", "x"],
        &[
            ("TOYSEAL_CLIENT_CONFIG", "client.json"),
            ("TOYSEAL_TIMEOUT", "1"),
        ],
        None,
    );
    // (The anchor is checked first: a usage error, no request.)
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_env(
        dir.path(),
        &["list", "--family", &family],
        &[
            ("TOYSEAL_CLIENT_CONFIG", "client.json"),
            ("TOYSEAL_TIMEOUT", "1"),
        ],
        None,
    );
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert_fails(&o, 10, "within 1 s (1 try)");
    // Tries are made when failures are quick: a port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run_env(
        dir.path(),
        &[
            "list",
            "--family",
            &family,
            "--server",
            &format!("http://127.0.0.1:{closed}"),
        ],
        &[("TOYSEAL_CLIENT_CONFIG", "client.json")],
        None,
    );
    assert_fails(
        &o,
        10,
        &format!("http://127.0.0.1:{closed}/v1/families/{family}/envelopes (4 tries)"),
    );
}

/// A stand-in server on a raw socket: answers `GET /v1/health` with `max_body_bytes`, any
/// other request with 413 and the problem's `limit` = `refuse_above`; counts every byte it
/// receives.
fn limit_server(
    max_body_bytes: u64,
    refuse_above: u64,
) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (bytes, posts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b, p) = (bytes.clone(), posts.clone());
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            serve_one(sock, max_body_bytes, refuse_above, &b, &p);
        }
    });
    (port, bytes, posts)
}

fn serve_one(
    mut sock: TcpStream,
    max_body: u64,
    limit: u64,
    bytes: &AtomicUsize,
    posts: &AtomicUsize,
) {
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                bytes.fetch_add(n, Ordering::SeqCst);
                head.extend_from_slice(&buf[..n]);
            }
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let (status, ctype, body) = if text.starts_with("GET /v1/health ") {
        (
            "200 OK",
            "application/json",
            format!(
                r#"{{"status":"ok","limits":{{"max_body_bytes":{max_body},"request_timeout_secs":30}}}}"#
            ),
        )
    } else {
        posts.fetch_add(1, Ordering::SeqCst);
        (
            "413 Payload Too Large",
            "application/problem+json",
            format!(
                r#"{{"type":"tag:toyseal.invalid,2026:problem:too-large","title":"request body too large","status":413,"detail":"the body exceeds {limit} bytes","limit":{limit}}}"#
            ),
        )
    };
    let _ = write!(
        sock,
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A sealed envelope of the generated note, with its size.
fn sealed_note(home: &Path) -> u64 {
    let mum = keygen(home, "guardian", "mum.key");
    keygen(home, "toy", "toy.key");
    fs::write(home.join("note.wav"), synthetic_audio()).unwrap();
    let family = "cd".repeat(16);
    assert_ok(&run_in(
        home,
        &[
            "seal", "-i", "toy.key", "-r", &mum, "--family", &family, "-o", "note.tse", "note.wav",
        ],
        None,
    ));
    fs::metadata(home.join("note.tse")).unwrap().len()
}

#[test]
fn an_oversized_envelope_is_refused_before_a_byte_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let size = sealed_note(dir.path());
    let (port, received, posts) = limit_server(1000, 1000);
    let server = format!("http://127.0.0.1:{port}");
    let o = run_env(
        dir.path(),
        &["upload", "-i", "toy.key", "--server", &server, "note.tse"],
        &[],
        None,
    );
    assert_fails(
        &o,
        4,
        &format!("upload note.tse: {size} bytes is larger than the server's limit of 1000 bytes"),
    );
    // Only the health request arrived: no upload, not a byte of the envelope.
    assert_eq!(posts.load(Ordering::SeqCst), 0);
    assert!(
        received.load(Ordering::SeqCst) < 1000,
        "{}",
        received.load(Ordering::SeqCst)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn a_server_side_413_names_the_servers_limit() {
    let dir = tempfile::tempdir().unwrap();
    let size = sealed_note(dir.path());
    // The health answer allows it; the upload is answered 413 with a smaller limit.
    let (port, _, posts) = limit_server(1 << 30, 1000);
    let server = format!("http://127.0.0.1:{port}");
    let o = run_env(
        dir.path(),
        &["upload", "-i", "toy.key", "--server", &server, "note.tse"],
        &[],
        None,
    );
    assert_fails(
        &o,
        4,
        &format!("upload note.tse: {size} bytes is larger than the server's limit of 1000 bytes"),
    );
    // Not retried: a 413 is final.
    assert_eq!(posts.load(Ordering::SeqCst), 1);
}

#[test]
fn a_removed_device_is_told_it_was_removed_and_a_stranger_is_not() {
    let w = World::new();
    let home = w.home();
    let o = w.run(&["family", "create", "-i", "mum.key", "v1.tsr"]);
    assert_ok(&o);
    let family = stdout_text(&o).trim().to_owned();
    // v2 adds dad (mum + the recovery key, dad proves possession); v3 removes him (a
    // guardian's removal is a grant too: mum + the recovery key).
    for (args, cosigners) in [
        (
            vec![
                "roster", "propose", "-i", "mum.key", "--add", &w.dad, "-o", "v2.tsr", "v1.tsr",
            ],
            [["--recovery", "recovery.txt"], ["-i", "dad.key"]].as_slice(),
        ),
        (
            vec![
                "roster", "propose", "-i", "mum.key", "--remove", &w.dad, "-o", "v3.tsr", "v1.tsr",
                "v2.tsr",
            ],
            [["--recovery", "recovery.txt"]].as_slice(),
        ),
    ] {
        assert_ok(&run_in(home, &args, None));
        let file = args[args.iter().position(|a| *a == "-o").unwrap() + 1];
        for [flag, key] in cosigners {
            assert_ok(&run_in(home, &["roster", "cosign", flag, key, file], None));
        }
        assert_ok(&w.run(&["family", "update", "-i", "mum.key", file]));
    }
    // Dad, removed: exit 12 and the version that removed him.
    let o = w.run(&["list", "-i", "dad.key", "--family", &family]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed from the family at roster version 3"),
        "{}",
        stderr(&o)
    );
    // A stranger learns nothing of the family: the generic 401, exit 9.
    let o = w.run(&["list", "-i", "outsider.key", "--family", &family]);
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
    assert!(!stderr(&o).contains("removed"), "{}", stderr(&o));
}
