//! `toyseal roster init|propose|cosign|show|verify` and `toyseal invite`, offline: a family is
//! founded, grows and shrinks through roster files; every rule the CLI relies on shows as the
//! documented exit code, and a failed command leaves no file behind. Keys are generated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Mum (founding guardian), dad (guardian), the toy and an outsider, with key files.
struct Keys {
    dir: tempfile::TempDir,
    mum: String,
    dad: String,
    toy: String,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mum = keygen(dir.path(), "guardian", "mum.key");
        let dad = keygen(dir.path(), "guardian", "dad.key");
        let toy = keygen(dir.path(), "toy", "toy.key");
        keygen(dir.path(), "guardian", "outsider.key");
        Self { dir, mum, dad, toy }
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        run_in(self.dir.path(), args, None)
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    /// v1 = {mum, toy} + the recovery key (in recovery.txt), signed by all three.
    fn v1(&self) {
        assert_ok(&self.run(&[
            "roster",
            "init",
            "-i",
            "mum.key",
            "-m",
            &self.toy,
            "--recovery-out",
            "recovery.txt",
            "-o",
            "v1.tsr",
        ]));
        assert_ok(&self.run(&["roster", "cosign", "-i", "toy.key", "v1.tsr"]));
    }
    /// v2 = v1 + dad (a grant), signed by mum, the recovery key and dad.
    fn v2(&self) {
        let o = self.run(&[
            "roster", "propose", "-i", "mum.key", "--add", &self.dad, "-o", "v2.tsr", "v1.tsr",
        ]);
        assert_ok(&o);
        assert_ok(&self.run(&["roster", "cosign", "--recovery", "recovery.txt", "v2.tsr"]));
        assert_ok(&self.run(&["roster", "cosign", "-i", "dad.key", "v2.tsr"]));
    }
    fn show_json(&self, file: &str) -> serde_json::Value {
        let o = self.run(&["roster", "show", "--json", file]);
        assert_ok(&o);
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

#[test]
fn a_family_is_founded_grows_and_shrinks_through_roster_files() {
    let k = Keys::new();
    // Version 1 signed by mum and the new recovery key is not a roster yet: the toy must
    // co-sign it. The recovery key's printed form is written once, mode 0600.
    let init = [
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        &k.toy,
        "--recovery-out",
        "recovery.txt",
        "-o",
        "v1.tsr",
    ];
    let o = k.run(&init);
    assert_ok(&o);
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("recovery key is in recovery.txt"),
        "{}",
        stderr(&o)
    );
    let printed = fs::read_to_string(k.path().join("recovery.txt")).unwrap();
    assert!(printed.starts_with("TOYSEAL-RECOVERY-1"), "{printed}");
    assert_eq!(printed.trim_end().len(), 76);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(k.path().join("recovery.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second init never replaces the kept key (nor writes a roster).
    let v1_before = fs::read(k.path().join("v1.tsr")).unwrap();
    let o = k.run(&[&init[..8], &["-o", "other.tsr"]].concat());
    assert_fails(&o, 1, "recovery.txt");
    assert_eq!(
        fs::read_to_string(k.path().join("recovery.txt")).unwrap(),
        printed
    );
    assert!(!k.path().join("other.tsr").exists());
    assert_eq!(fs::read(k.path().join("v1.tsr")).unwrap(), v1_before);
    let o = k.run(&["roster", "verify", "v1.tsr"]);
    assert_fails(
        &o,
        8,
        "v1.tsr: the roster lacks a required signature: version 1 must be co-signed by the toy",
    );
    assert_ok(&k.run(&["roster", "cosign", "-i", "toy.key", "v1.tsr"]));
    let o = k.run(&["roster", "verify", "v1.tsr"]);
    assert_ok(&o);
    let text = stdout_text(&o);
    assert!(text.starts_with("verified: family "), "{text}");
    assert!(text.contains("version 1, 2 members"), "{text}");

    // show: text and JSON agree with the keys.
    let o = k.run(&["roster", "show", "v1.tsr"]);
    assert_ok(&o);
    let text = stdout_text(&o);
    assert!(text.contains("version:       1"), "{text}");
    assert!(text.contains(&k.mum) && text.contains(&k.toy), "{text}");
    assert!(text.contains("previous hash: none (version 1)"), "{text}");
    assert!(text.contains("verified:      no"), "{text}");
    let v1 = k.show_json("v1.tsr");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["verified"], false);
    assert_eq!(v1["members"].as_array().unwrap().len(), 2);
    // Mum, the recovery key and the toy.
    assert_eq!(v1["signers"].as_array().unwrap().len(), 3);
    assert!(
        v1["signers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["who"] == "recovery key")
    );
    assert_eq!(v1["recovery_key"].as_str().unwrap().len(), 64);
    let family = v1["family"].as_str().unwrap().to_owned();
    assert_eq!(family.len(), 32);
    let roles: Vec<&str> = v1["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"guardian") && roles.contains(&"toy"),
        "{roles:?}"
    );

    // v2 adds dad (a grant): mum alone is no quorum, nor mum and the toy; mum and the printed
    // recovery key are; then dad must prove possession of his key.
    let o = k.run(&[
        "roster", "propose", "-i", "mum.key", "--add", &k.dad, "-o", "v2.tsr", "v1.tsr",
    ]);
    assert_ok(&o);
    let o = k.run(&["roster", "verify", "v1.tsr", "v2.tsr"]);
    let grant = "v2.tsr: the roster lacks a required signature: adding a device or changing a \
                 guardian, a toy, a role or the recovery key needs";
    assert_fails(&o, 8, grant);
    assert_ok(&k.run(&["roster", "cosign", "-i", "toy.key", "v2.tsr"]));
    let o = k.run(&["roster", "verify", "v1.tsr", "v2.tsr"]);
    assert_fails(&o, 8, grant);
    assert_ok(&k.run(&["roster", "cosign", "--recovery", "recovery.txt", "v2.tsr"]));
    let o = k.run(&["roster", "verify", "v1.tsr", "v2.tsr"]);
    assert_fails(
        &o,
        8,
        "v2.tsr: a member or recovery key added by this version did not sign it",
    );
    assert_ok(&k.run(&["roster", "cosign", "-i", "dad.key", "v2.tsr"]));
    let o = k.run(&["roster", "verify", "--json", "v1.tsr", "v2.tsr"]);
    assert_ok(&o);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["version"], 2);
    assert_eq!(summary["members"], 3);
    assert_eq!(summary["family"], family.as_str());
    let v2 = k.show_json("v2.tsr");
    assert_eq!(v2["previous_hash"], v1["hash"]);
    assert_eq!(summary["hash"], v2["hash"]);

    // v3 removes the toy (a removal: dad proposes, mum co-signs), keeping its envelopes up to #5: its
    // last envelope's sequence and header hash become its chain head.
    fs::write(k.path().join("note.raw"), b"goodnight").unwrap();
    let o = k.run(&[
        "seal",
        "-i",
        "toy.key",
        "-r",
        &k.mum,
        "--sequence",
        "5",
        "-o",
        "toy5.tse",
        "note.raw",
    ]);
    assert_ok(&o);
    let o = k.run(&[
        "roster",
        "propose",
        "-i",
        "dad.key",
        "--remove",
        &k.toy,
        "--last-envelope",
        "toy5.tse",
        "-o",
        "v3.tsr",
        "v1.tsr",
        "v2.tsr",
    ]);
    assert_ok(&o);
    assert_ok(&k.run(&["roster", "cosign", "-i", "mum.key", "v3.tsr"]));
    let o = k.run(&["roster", "verify", "v1.tsr", "v2.tsr", "v3.tsr"]);
    assert_ok(&o);
    assert!(stdout_text(&o).contains("version 3, 2 members"));
    let v3 = k.show_json("v3.tsr");
    assert_eq!(v3["departed"][0]["public_key"], k.toy.as_str());
    assert_eq!(v3["departed"][0]["last_sequence"], 5);
    let inspected = k.run(&["inspect", "--json", "toy5.tse"]);
    assert_ok(&inspected);
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(v3["departed"][0]["chain_head"], inspected["header_hash"]);

    // Anchored: the chain must pass through the anchor (here: version 2).
    let anchor = v2["anchor"].as_str().unwrap();
    assert!(anchor.starts_with(&format!("{family}:2:")), "{anchor}");
    assert_ok(&k.run(&[
        "roster", "verify", "--anchor", anchor, "v1.tsr", "v2.tsr", "v3.tsr",
    ]));
    let o = k.run(&["roster", "verify", "--anchor", anchor, "v1.tsr"]);
    assert_fails(
        &o,
        8,
        "the chain: the roster chain does not pass through this device's anchor",
    );
    let o = k.run(&["roster", "verify", "--anchor", "nonsense", "v1.tsr"]);
    assert_fails(&o, 8, "--anchor: malformed roster");

    // v4 adds grandma's phone as a `member` (it receives, never governs), proposed with the
    // printed recovery key and co-signed by dad.
    let gran = keygen(k.path(), "member", "gran.key");
    assert!(gran.starts_with("toyseal1"), "{gran}");
    assert_ok(&k.run(&[
        "roster",
        "propose",
        "--recovery",
        "recovery.txt",
        "--add",
        &gran,
        "-o",
        "v4.tsr",
        "v1.tsr",
        "v2.tsr",
        "v3.tsr",
    ]));
    assert_ok(&k.run(&["roster", "cosign", "-i", "dad.key", "v4.tsr"]));
    assert_ok(&k.run(&["roster", "cosign", "-i", "gran.key", "v4.tsr"]));
    assert_ok(&k.run(&["roster", "verify", "v1.tsr", "v2.tsr", "v3.tsr", "v4.tsr"]));
    let v4 = k.show_json("v4.tsr");
    assert!(
        v4["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "member" && m["public_key"] == gran.as_str())
    );
    // A mistyped recovery key (its checksum fails) is refused, and nothing is written.
    fs::write(
        k.path().join("other-recovery.txt"),
        "TOYSEAL-RECOVERY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
    )
    .unwrap();
    let o = k.run(&[
        "roster",
        "propose",
        "--recovery",
        "other-recovery.txt",
        "--add",
        &k.mum,
        "-o",
        "x.tsr",
        "v1.tsr",
    ]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(!k.path().join("x.tsr").exists());
}

#[test]
fn rosters_flow_through_standard_input_and_output() {
    let k = Keys::new();
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        &k.toy,
        "--recovery-out",
        "r1.txt",
    ]);
    assert_ok(&o);
    let unsigned = o.stdout;
    // The roster and the key cannot both go to standard output.
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        &k.toy,
        "--recovery-out",
        "-",
    ]);
    assert_fails(&o, 2, "--recovery-out - needs -o OUT");
    let o = run_in(
        k.path(),
        &["roster", "cosign", "-i", "toy.key", "-"],
        Some(&unsigned),
    );
    assert_ok(&o);
    assert!(o.stdout.len() > unsigned.len(), "a signature was added");
    let o2 = run_in(k.path(), &["roster", "show", "--json"], Some(&o.stdout));
    assert_ok(&o2);
    let v: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(v["signers"].as_array().unwrap().len(), 3);
    // cosign -o writes elsewhere and leaves the input alone.
    fs::write(k.path().join("in.tsr"), &unsigned).unwrap();
    assert_ok(&k.run(&[
        "roster", "cosign", "-i", "toy.key", "-o", "out.tsr", "in.tsr",
    ]));
    assert_eq!(fs::read(k.path().join("in.tsr")).unwrap(), unsigned);
    assert_ok(&k.run(&["roster", "verify", "out.tsr"]));
    // --family fixes the family id.
    let fam = "00112233445566778899aabbccddeeff";
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        &k.toy,
        "--family",
        fam,
        "--recovery-out",
        "r2.txt",
        "-o",
        "f.tsr",
    ]);
    assert_ok(&o);
    assert_eq!(k.show_json("f.tsr")["family"], fam);
}

#[test]
fn bad_roster_input_fails_with_the_documented_codes_and_writes_nothing() {
    let k = Keys::new();
    k.v1();
    k.v2();
    let before = listing(k.path());

    // Not a guardian, a bad member key, a secret key as a member: nothing written.
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "toy.key",
        "-m",
        &k.mum,
        "--recovery-out",
        "x.txt",
        "-o",
        "x.tsr",
    ]);
    assert_fails(&o, 2, "the founding key must be a guardian's");
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        "toyseal1garbage",
        "--recovery-out",
        "x.txt",
        "-o",
        "x.tsr",
    ]);
    assert_fails(&o, 3, "-m #1: not a valid toyseal public key");
    let secret = fs::read_to_string(k.path().join("toy.key")).unwrap();
    let secret_line = secret
        .lines()
        .find(|l| l.starts_with("TOYSEAL-SECRET-KEY"))
        .unwrap();
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        secret_line,
        "--recovery-out",
        "x.txt",
        "-o",
        "x.tsr",
    ]);
    assert_fails(&o, 3, "this is a SECRET key");
    assert!(!stderr(&o).contains(&secret_line[20..]));
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "--recovery-out",
        "x.txt",
        "-o",
        "x.tsr",
    ]);
    assert_fails(&o, 2, "add the toy with -m");
    // A roster path that cannot be written: the recovery key is not written either.
    let o = k.run(&[
        "roster",
        "init",
        "-i",
        "mum.key",
        "-m",
        &k.toy,
        "--recovery-out",
        "x.txt",
        "-o",
        "no/such/dir/x.tsr",
    ]);
    assert_fails(&o, 1, "no/such/dir/x.tsr");
    // Without --recovery-out: a usage error.
    let o = k.run(&[
        "roster", "init", "-i", "mum.key", "-m", &k.toy, "-o", "x.tsr",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // Proposals: an outsider, nothing to do, an existing member, a non-member to remove, a
    // chain that does not verify.
    let o = k.run(&[
        "roster",
        "propose",
        "-i",
        "outsider.key",
        "--add",
        &k.dad,
        "-o",
        "x.tsr",
        "v1.tsr",
    ]);
    assert_fails(
        &o,
        8,
        "outsider.key: proposing version 2: the device is not a member",
    );
    let o = k.run(&[
        "roster", "propose", "-i", "mum.key", "-o", "x.tsr", "v1.tsr",
    ]);
    assert_fails(&o, 2, "nothing to propose");
    let o = k.run(&[
        "roster", "propose", "-i", "mum.key", "--add", &k.toy, "-o", "x.tsr", "v1.tsr",
    ]);
    assert_fails(&o, 2, "--add #1: already a member of version 1");
    let o = k.run(&[
        "roster", "propose", "-i", "mum.key", "--remove", &k.dad, "-o", "x.tsr", "v1.tsr",
    ]);
    assert_fails(&o, 2, "--remove #1: not a member of version 1");
    let o = k.run(&[
        "roster", "propose", "-i", "mum.key", "--add", &k.dad, "-o", "x.tsr", "v2.tsr",
    ]);
    assert_fails(&o, 8, "v2.tsr: roster version 2 does not follow version 0");

    // Chains out of order, replayed, or not rosters at all.
    let o = k.run(&["roster", "verify", "v1.tsr", "v1.tsr"]);
    assert_fails(&o, 8, "v1.tsr: roster version 1 does not follow version 1");
    fs::write(k.path().join("garbage.tsr"), b"hello, not a roster").unwrap();
    let o = k.run(&["roster", "verify", "v1.tsr", "garbage.tsr"]);
    assert_fails(&o, 8, "garbage.tsr: malformed roster");
    let o = k.run(&["roster", "show", "garbage.tsr"]);
    assert_fails(&o, 8, "garbage.tsr: malformed roster");
    let o = k.run(&["roster", "cosign", "-i", "dad.key", "garbage.tsr"]);
    assert_fails(&o, 8, "garbage.tsr: malformed roster");
    assert_eq!(
        fs::read(k.path().join("garbage.tsr")).unwrap(),
        b"hello, not a roster"
    );
    fs::remove_file(k.path().join("garbage.tsr")).unwrap();
    let o = k.run(&["roster", "verify", "missing.tsr"]);
    assert_fails(&o, 1, "missing.tsr: ");
    let o = k.run(&["roster", "verify"]);
    assert_eq!(o.status.code(), Some(2));

    // A tampered byte in a signed version breaks it.
    let mut v2 = fs::read(k.path().join("v2.tsr")).unwrap();
    let last = v2.len() - 1;
    v2[last] ^= 1;
    fs::write(k.path().join("v2.tsr"), &v2).unwrap();
    let o = k.run(&["roster", "verify", "v1.tsr", "v2.tsr"]);
    assert_fails(&o, 8, "v2.tsr: a roster signature is invalid");

    assert_eq!(
        listing(k.path()),
        before,
        "a failed command left a file behind"
    );
}

#[test]
fn invite_prints_a_qr_code_and_the_anchored_invitation() {
    let k = Keys::new();
    k.v1();
    k.v2();
    let v2 = k.show_json("v2.tsr");
    let anchor = v2["anchor"].as_str().unwrap();

    let o = k.run(&[
        "invite",
        "--server",
        "http://127.0.0.1:8080",
        "v1.tsr",
        "v2.tsr",
    ]);
    assert_ok(&o);
    let text = stdout_text(&o);
    let lines: Vec<&str> = text.lines().collect();
    let last = *lines.last().unwrap();
    assert_eq!(
        last,
        format!("toyseal-invite:1:{anchor}:http://127.0.0.1:8080")
    );
    // Above it, a QR code of Unicode half blocks: square-ish, every row the same width.
    let qr = &lines[..lines.len() - 1];
    assert!(qr.len() > 15, "{text}");
    assert!(
        qr.iter().all(|l| l.chars().all(|c| " █▀▄".contains(c))),
        "{text}"
    );
    let width = qr[0].chars().count();
    assert!(qr.iter().all(|l| l.chars().count() == width));
    assert!((width as f64 / (2 * qr.len()) as f64 - 1.0).abs() < 0.1);

    let o = k.run(&["invite", "--no-qr", "v1.tsr"]);
    assert_ok(&o);
    let v1 = k.show_json("v1.tsr");
    assert_eq!(
        stdout_text(&o),
        format!("toyseal-invite:1:{}\n", v1["anchor"].as_str().unwrap())
    );

    // The server named may come from the client config file.
    fs::write(
        k.path().join("c.json"),
        r#"{"server": "https://toys.example"}"#,
    )
    .unwrap();
    let o = k.run(&["invite", "--no-qr", "--config", "c.json", "v1.tsr"]);
    assert_ok(&o);
    assert!(
        stdout_text(&o)
            .trim_end()
            .ends_with(":https://toys.example")
    );

    // Not a verified chain, or a server an invitation cannot carry.
    let o = k.run(&["invite", "v2.tsr"]);
    assert_fails(&o, 8, "v2.tsr: roster version 2 does not follow version 0");
    let o = k.run(&["invite", "--server", "has space", "v1.tsr"]);
    assert_fails(&o, 8, "--server: malformed roster");
    assert!(o.stdout.is_empty());
}
