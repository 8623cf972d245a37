//! End-to-end tests of the `toyseal` binary: key generation, seal/open round trips through files
//! and pipes, tampering and truncation, trust, inspect, help. All audio is synthetic.

// clippy.toml allows these inside `#[test]` functions; the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::fs;
use std::path::PathBuf;
use std::process::{Output, Stdio};

/// A synthetic 16-bit mono PCM WAV file: a few seconds of generated tones (no real voice).
fn synthetic_wav(seconds: u32) -> Vec<u8> {
    const RATE: u32 = 16_000;
    let samples = RATE * seconds;
    let data_len = samples * 2;
    let mut w = Vec::with_capacity(44 + data_len as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVE");
    w.extend_from_slice(b"fmt ");
    w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&RATE.to_le_bytes());
    w.extend_from_slice(&(RATE * 2).to_le_bytes()); // byte rate
    w.extend_from_slice(&2u16.to_le_bytes()); // block align
    w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(RATE);
        // A little melody: the pitch steps every quarter second, with a quieter overtone.
        let step = f64::from(i / (RATE / 4) % 8);
        let f = 220.0 * 2f64.powf(step / 12.0);
        let v = 0.5 * (2.0 * std::f64::consts::PI * f * t).sin()
            + 0.2 * (2.0 * std::f64::consts::PI * 3.0 * f * t).sin();
        let s = (v * 16_000.0) as i16;
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

/// A toy and three guardians with key files in a temporary directory.
struct Family {
    dir: tempfile::TempDir,
    toy_pub: String,
    guardian_pubs: Vec<String>,
    wav: Vec<u8>,
}

impl Family {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keygen = |role: &str, name: &str| {
            let o = run_in(dir.path(), &["keygen", "--role", role, "-o", name], None);
            assert_ok(&o);
            let public = stdout_text(&o).trim().to_owned();
            assert!(public.starts_with("toyseal1"), "{public}");
            public
        };
        let toy_pub = keygen("toy", "toy.key");
        let guardian_pubs = (1..=3)
            .map(|i| keygen("guardian", &format!("g{i}.key")))
            .collect();
        let wav = synthetic_wav(6);
        fs::write(dir.path().join("note.wav"), &wav).unwrap();
        Self {
            dir,
            toy_pub,
            guardian_pubs,
            wav,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run_in(self.dir.path(), args, stdin)
    }

    /// `seal` arguments for the first `n` guardians.
    fn seal_args(&self, n: usize) -> Vec<&str> {
        let mut a = vec!["seal", "-i", "toy.key", "--content-type", "audio/wav"];
        for p in &self.guardian_pubs[..n] {
            a.extend(["-r", p.as_str()]);
        }
        a
    }

    /// Seals note.wav to the first `n` guardians into `out`; returns the envelope.
    fn seal_file(&self, n: usize, out: &str) -> Vec<u8> {
        let mut a = self.seal_args(n);
        a.extend([
            "--codec",
            "pcm_s16le",
            "--duration-ms",
            "6000",
            "-o",
            out,
            "note.wav",
        ]);
        let o = self.run(&a, None);
        assert_ok(&o);
        assert!(o.stdout.is_empty());
        fs::read(self.path(out)).unwrap()
    }

    /// Opens envelope bytes from stdin as guardian `g` (1-based), writing to `-o out`.
    fn open_to_file(&self, g: usize, envelope: &[u8], out: &str) -> Output {
        let key = format!("g{g}.key");
        self.run(
            &["open", "-i", &key, "--from", &self.toy_pub, "-o", out],
            Some(envelope),
        )
    }

    /// Opens envelope bytes from stdin to stdout as guardian `g`.
    fn open_to_stdout(&self, g: usize, envelope: &[u8]) -> Output {
        let key = format!("g{g}.key");
        self.run(
            &["open", "-i", &key, "--from", &self.toy_pub],
            Some(envelope),
        )
    }

    /// The directory holds exactly `names` (no output file, no temporary left behind).
    #[track_caller]
    fn assert_dir_is(&self, extra: &[&str]) {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        // The toy's sequence counter appears once it has sealed.
        names.retain(|n| n != "toy.key.seq");
        names.sort();
        let mut want: Vec<String> = ["g1.key", "g2.key", "g3.key", "note.wav", "toy.key"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        want.sort();
        assert_eq!(names, want);
    }

    /// A failed open: the documented code, a clear message, no output file, and stdout
    /// (tried separately) never holds the whole content.
    #[track_caller]
    fn assert_open_fails(&self, g: usize, envelope: &[u8], code: i32, needle: &str) {
        let o = self.open_to_file(g, envelope, "out.wav");
        assert_fails(&o, code, needle);
        assert!(o.stdout.is_empty());
        assert!(!self.path("out.wav").exists(), "output file left behind");
        self.assert_dir_is(&["env.tse"]);

        let o = self.open_to_stdout(g, envelope);
        assert_fails(&o, code, needle);
        assert!(
            o.stdout.len() < self.wav.len(),
            "the whole content reached stdout"
        );
        // Whatever was released was authenticated content, in order.
        assert!(
            self.wav.starts_with(&o.stdout),
            "unauthenticated bytes on stdout"
        );
    }
}

fn flip(envelope: &[u8], pos: usize) -> Vec<u8> {
    let mut e = envelope.to_vec();
    e[pos] ^= 0x01;
    e
}

// --- keygen and pubkey --------------------------------------------------------------------

#[test]
fn keygen_writes_an_owner_only_key_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(
        dir.path(),
        &["keygen", "--role", "toy", "-o", "toy.key"],
        None,
    );
    assert_ok(&o);
    let public = stdout_text(&o).trim().to_owned();
    assert!(public.starts_with("toyseal1"));
    let key_path = dir.path().join("toy.key");
    let before = fs::read(&key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // No overwrite without --force: same file, exit 1, clear message.
    let o = run_in(
        dir.path(),
        &["keygen", "--role", "toy", "-o", "toy.key"],
        None,
    );
    assert_fails(&o, 1, "toy.key: already exists (use --force");
    assert_eq!(fs::read(&key_path).unwrap(), before);

    // pubkey prints what keygen printed; --device-id the id, also from stdin.
    let o = run_in(dir.path(), &["pubkey", "toy.key"], None);
    assert_ok(&o);
    assert_eq!(stdout_text(&o).trim(), public);
    let o = run_in(dir.path(), &["pubkey", "--device-id", "-"], Some(&before));
    assert_ok(&o);
    let id = stdout_text(&o).trim().to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(String::from_utf8(before).unwrap().contains(&id));

    // --force replaces it with a new identity.
    let o = run_in(
        dir.path(),
        &["keygen", "--role", "guardian", "-o", "toy.key", "--force"],
        None,
    );
    assert_ok(&o);
    assert_ne!(stdout_text(&o).trim(), public);
    let o = run_in(dir.path(), &["pubkey", "toy.key"], None);
    assert_ne!(stdout_text(&o).trim(), public);
    // No temporary files left beside it.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn keygen_without_output_writes_the_key_file_to_stdout_and_the_public_key_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), &["keygen", "--role", "guardian"], None);
    assert_ok(&o);
    let key_file = o.stdout.clone();
    assert!(stdout_text(&o).contains("TOYSEAL-SECRET-KEY-1"));
    let err = stderr(&o);
    let public = err.trim().strip_prefix("Public key: ").unwrap();
    assert!(!err.contains("SECRET"));
    let o = run_in(dir.path(), &["pubkey"], Some(&key_file));
    assert_ok(&o);
    assert_eq!(stdout_text(&o).trim(), public);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn pubkey_of_an_invalid_key_file_is_a_key_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.key"), "# nothing here\n").unwrap();
    let o = run_in(dir.path(), &["pubkey", "bad.key"], None);
    assert_fails(&o, 3, "bad.key: not a valid toyseal key file");
    let o = run_in(dir.path(), &["pubkey", "missing.key"], None);
    assert_fails(&o, 1, "missing.key: ");
}

// --- round trips --------------------------------------------------------------------------

#[test]
fn seal_and_open_through_files_for_one_and_three_recipients() {
    let fam = Family::new();
    assert!(fam.wav.len() > 150_000);
    for n in [1, 3] {
        let env = fam.seal_file(n, "env.tse");
        assert!(env.len() > fam.wav.len());
        for g in 1..=n {
            let key = format!("g{g}.key");
            let o = fam.run(
                &[
                    "open",
                    "-i",
                    &key,
                    "--from",
                    &fam.toy_pub,
                    "-o",
                    "out.wav",
                    "--verbose",
                    "env.tse",
                ],
                None,
            );
            assert_ok(&o);
            assert!(o.stdout.is_empty());
            assert_eq!(
                fs::read(fam.path("out.wav")).unwrap(),
                fam.wav,
                "guardian {g}"
            );
            let err = stderr(&o);
            assert!(err.contains(&format!("sender: {}", fam.toy_pub)), "{err}");
            assert!(err.contains("content type: audio/wav"), "{err}");
            assert!(err.contains("codec: pcm_s16le"), "{err}");
            assert!(err.contains("duration: 6000 ms"), "{err}");
            fs::remove_file(fam.path("out.wav")).unwrap();
        }
        // Guardians beyond the first n are not recipients.
        if n == 1 {
            fam.assert_open_fails(2, &env, 6, "not a recipient");
        }
        fs::remove_file(fam.path("env.tse")).unwrap();
    }
}

#[test]
fn seal_and_open_through_stdin_and_stdout_for_one_and_three_recipients() {
    let fam = Family::new();
    for n in [1, 3] {
        let o = fam.run(&fam.seal_args(n), Some(&fam.wav));
        assert_ok(&o);
        let env = o.stdout;
        for g in 1..=n {
            let o = fam.open_to_stdout(g, &env);
            assert_ok(&o);
            assert_eq!(o.stdout, fam.wav, "guardian {g} of {n}");
            assert!(o.stderr.is_empty());
        }
    }
}

#[test]
fn a_real_pipeline_seal_into_open_works() {
    // cat note.wav | toyseal seal … | toyseal open … > out
    let fam = Family::new();
    let wav_file = fs::File::open(fam.path("note.wav")).unwrap();
    let mut seal = toyseal()
        .current_dir(fam.dir.path())
        .args(fam.seal_args(3))
        .args(["--chunk-size-log2", "12"])
        .stdin(wav_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let open = toyseal()
        .current_dir(fam.dir.path())
        .args(["open", "-i", "g3.key", "--from", &fam.toy_pub])
        .stdin(seal.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(seal.wait().unwrap().success());
    assert_ok(&open);
    assert_eq!(open.stdout, fam.wav);
}

#[test]
fn recipients_files_with_comments_are_accepted() {
    let fam = Family::new();
    let list = format!(
        "# the family\n{}\n\n  {}  \n# grandma\n{}\n",
        fam.guardian_pubs[0], fam.guardian_pubs[1], fam.guardian_pubs[2]
    );
    fs::write(fam.path("family.txt"), list).unwrap();
    let o = fam.run(
        &[
            "seal",
            "-i",
            "toy.key",
            "-R",
            "family.txt",
            "-o",
            "env.tse",
            "note.wav",
        ],
        None,
    );
    assert_ok(&o);
    let o = fam.run(&["inspect", "--json", "env.tse"], None);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["recipients"], 3);
    let o = fam.run(
        &["open", "-i", "g2.key", "--from", &fam.toy_pub, "env.tse"],
        None,
    );
    assert_ok(&o);
    assert_eq!(o.stdout, fam.wav);
}

// --- failures -----------------------------------------------------------------------------

#[test]
fn every_flipped_byte_fails_with_the_documented_code_and_no_output() {
    let fam = Family::new();
    let env = fam.seal_file(3, "env.tse");
    // Envelope v3 layout (docs/spec/envelope.md §3): 201-byte fixed header, 72-byte stanzas,
    // the header checkpoint (65 bytes), then chunk records (4-byte record header) and checkpoints.
    let header_len = 201 + 3 * 72;
    let first_chunk = header_len + 65;
    let chunk_record = 4 + (1 << 16) + 16;
    let len = env.len();
    // (what, position, exit code, message) — opened by guardian 1, whose stanza is the first.
    // Every header byte is covered by checkpoint 0, so a change there is a signature failure
    // found before any key is used or any content released.
    let cases: &[(&str, usize, i32, &str)] = &[
        ("magic", 0, 4, "not a toyseal envelope"),
        ("version", 7, 4, "unsupported envelope version"),
        ("sender role", 134, 4, "unknown device role"),
        ("sequence", 44, 5, "signature"),
        ("previous", 50, 5, "signature"),
        ("payload nonce", 87, 5, "signature"),
        ("key commitment", 112, 5, "signature"),
        ("own stanza key id", 201, 5, "signature"),
        ("own stanza enc", 201 + 8 + 3, 5, "signature"),
        ("another's stanza", 201 + 72 + 20, 5, "signature"),
        ("header checkpoint", header_len + 10, 5, "signature"),
        (
            "first record type",
            first_chunk,
            5,
            "could not be decrypted",
        ),
        ("first chunk", first_chunk + 9, 5, "could not be decrypted"),
        (
            "middle chunk",
            first_chunk + chunk_record + 1000,
            5,
            "could not be decrypted",
        ),
        ("last chunk", len - 65 - 10, 5, "could not be decrypted"),
        ("final checkpoint", len - 1, 5, "signature"),
        ("final checkpoint start", len - 64, 5, "signature"),
    ];
    for &(what, pos, code, needle) in cases {
        eprintln!("case: {what} at {pos}");
        fam.assert_open_fails(1, &flip(&env, pos), code, needle);
    }
}

#[test]
fn t50_an_outsiders_envelope_naming_the_toy_streams_zero_bytes_to_stdout() {
    // The outsider knows only public keys: it seals its own content to guardian 1 with its own
    // key, then names the toy as the sender (the toy's public identity, copied from any
    // envelope the toy sealed).
    let fam = Family::new();
    let genuine = fam.seal_file(1, "env.tse");
    assert_ok(&fam.run(&["keygen", "--role", "toy", "-o", "stranger.key"], None));
    let stranger_content = vec![0x5a; 262_144];
    fs::write(fam.path("stranger.raw"), &stranger_content).unwrap();
    let o = fam.run(
        &[
            "seal",
            "-i",
            "stranger.key",
            "-r",
            &fam.guardian_pubs[0],
            "-o",
            "forged.tse",
            "stranger.raw",
        ],
        None,
    );
    assert_ok(&o);
    let mut forged = fs::read(fam.path("forged.tse")).unwrap();
    forged[101..167].copy_from_slice(&genuine[101..167]);
    fs::write(fam.path("forged.tse"), &forged).unwrap();
    let o = fam.open_to_stdout(1, &forged);
    assert_fails(&o, 5, "signature");
    assert_eq!(o.stdout.len(), 0, "forged bytes reached stdout");
    let o = fam.run(&["inspect", "forged.tse"], None);
    assert_fails(&o, 5, "signature");
}

#[test]
fn truncated_envelopes_fail_and_never_release_the_whole_content() {
    let fam = Family::new();
    let env = fam.seal_file(1, "env.tse");
    let header_len = 169 + 72;
    let len = env.len();
    // In the header: always "truncated" (4).
    for cut in [0, 10, 168, 200, header_len, header_len + 64] {
        eprintln!("cut to {cut}");
        fam.assert_open_fails(1, &env[..cut], 4, "truncated");
    }
    // In the body: the opener reads the last 64 bytes it got as the signature, so depending on
    // where the cut falls it is "truncated" (4) or a signature failure (5); never success.
    for cut in [header_len + 100, len / 2, len - 65, len - 64, len - 1] {
        eprintln!("cut to {cut}");
        let o = fam.open_to_file(1, &env[..cut], "out.wav");
        let code = o.status.code();
        assert!(matches!(code, Some(4 | 5)), "{code:?} {}", stderr(&o));
        let needle = if code == Some(4) {
            "truncated"
        } else {
            "signature"
        };
        fam.assert_open_fails(1, &env[..cut], code.unwrap(), needle);
    }
    // And with bytes appended.
    let mut longer = env.clone();
    longer.extend_from_slice(&[0; 100]);
    let o = fam.open_to_file(1, &longer, "out.wav");
    assert!(!o.status.success());
    assert!(!fam.path("out.wav").exists());
}

#[test]
fn a_failed_open_leaves_an_existing_output_file_untouched() {
    let fam = Family::new();
    let env = fam.seal_file(1, "env.tse");
    fs::write(fam.path("out.wav"), b"previous").unwrap();
    // Even with --force (replace it), a failed open leaves the old file as it was.
    let o = fam.run(
        &[
            "open",
            "-i",
            "g1.key",
            "--from",
            &fam.toy_pub,
            "--force",
            "-o",
            "out.wav",
        ],
        Some(&flip(&env, env.len() - 1)),
    );
    assert_fails(&o, 5, "signature");
    assert_eq!(fs::read(fam.path("out.wav")).unwrap(), b"previous");
    fam.assert_dir_is(&["env.tse", "out.wav"]);
}

#[test]
fn wrong_sender_and_non_recipient_are_refused() {
    let fam = Family::new();
    let env = fam.seal_file(1, "env.tse");
    // --from a guardian's key instead of the toy's.
    let o = fam.run(
        &[
            "open",
            "-i",
            "g1.key",
            "--from",
            &fam.guardian_pubs[1],
            "-o",
            "out.wav",
        ],
        Some(&env),
    );
    assert_fails(&o, 6, "not a trusted sender");
    assert!(!fam.path("out.wav").exists());
    // Several --from values, one of them right: accepted.
    let o = fam.run(
        &[
            "open",
            "-i",
            "g1.key",
            "--from",
            &fam.guardian_pubs[1],
            "--from",
            &fam.toy_pub,
        ],
        Some(&env),
    );
    assert_ok(&o);
    assert_eq!(o.stdout, fam.wav);
    // The toy itself is not a recipient of its own message.
    let o = fam.run(
        &[
            "open",
            "-i",
            "toy.key",
            "--from",
            &fam.toy_pub,
            "-o",
            "out.wav",
        ],
        Some(&env),
    );
    assert_fails(&o, 6, "not a recipient");
    fam.assert_open_fails(3, &env, 6, "not a recipient");
}

#[test]
fn garbage_is_not_an_envelope() {
    let fam = Family::new();
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(fam.path("env.tse"), &garbage).unwrap();
    fam.assert_open_fails(1, &garbage, 4, "not a toyseal envelope");
    // A plain WAV given to open.
    fam.assert_open_fails(1, &fam.wav, 4, "not a toyseal envelope");
    let o = fam.run(&["inspect", "env.tse"], None);
    assert_fails(&o, 4, "env.tse: not a toyseal envelope");
    assert!(o.stdout.is_empty());
    // Missing input file: I/O error naming it.
    let o = fam.run(
        &["open", "-i", "g1.key", "--from", &fam.toy_pub, "nope.tse"],
        None,
    );
    assert_fails(&o, 1, "nope.tse: ");
    // Size limit.
    fs::remove_file(fam.path("env.tse")).unwrap();
    let env = fam.seal_file(1, "env.tse");
    let o = fam.run(
        &[
            "open",
            "-i",
            "g1.key",
            "--from",
            &fam.toy_pub,
            "--max-size",
            "100000",
        ],
        Some(&env),
    );
    assert_fails(&o, 4, "exceeds the size limit");
}

#[test]
fn bad_keys_and_recipients_are_key_errors_and_never_echoed() {
    let fam = Family::new();
    let secret_line = fs::read_to_string(fam.path("g1.key"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    // A secret key pasted as a recipient.
    let o = fam.run(
        &[
            "seal",
            "-i",
            "toy.key",
            "-r",
            &secret_line,
            "-o",
            "env.tse",
            "note.wav",
        ],
        None,
    );
    assert_fails(&o, 3, "-r #1: this is a SECRET key");
    assert!(!stderr(&o).contains(&secret_line[25..]));
    assert!(!fam.path("env.tse").exists());
    // A damaged public key.
    let mut bad = fam.guardian_pubs[0].clone();
    // Change the last character (to another one: the keys are random, so it may be a 'q').
    let last = bad.pop();
    bad.push(if last == Some('q') { 'p' } else { 'q' });
    let o = fam.run(
        &[
            "seal",
            "-i",
            "toy.key",
            "-r",
            &fam.guardian_pubs[1],
            "-r",
            &bad,
            "note.wav",
            "-o",
            "-",
        ],
        None,
    );
    assert_fails(&o, 3, "-r #2: not a valid toyseal public key");
    assert!(!stderr(&o).contains(&bad));
    assert!(o.stdout.is_empty());
    // The same recipient twice.
    let p = fam.guardian_pubs[0].as_str();
    let o = fam.run(
        &[
            "seal", "-i", "toy.key", "-r", p, "-r", p, "-o", "env.tse", "note.wav",
        ],
        None,
    );
    assert_fails(&o, 3, "twice");
    assert!(!fam.path("env.tse").exists());
    // A public key where a key file belongs.
    fs::write(fam.path("pub.txt"), format!("{p}\n")).unwrap();
    let o = fam.run(
        &["seal", "-i", "pub.txt", "-r", p, "note.wav", "-o", "-"],
        None,
    );
    assert_fails(&o, 3, "pub.txt: not a valid toyseal key file");
    // A bad line in a recipients file is named by line.
    fs::write(fam.path("family.txt"), format!("# list\n{p}\nnonsense\n")).unwrap();
    let o = fam.run(
        &[
            "seal",
            "-i",
            "toy.key",
            "-R",
            "family.txt",
            "note.wav",
            "-o",
            "-",
        ],
        None,
    );
    assert_fails(&o, 3, "family.txt line 3: not a valid toyseal public key");
    // No recipients at all, and stdin used twice: usage errors.
    let o = fam.run(&["seal", "-i", "toy.key", "note.wav", "-o", "-"], None);
    assert_fails(&o, 2, "no recipients");
    let o = fam.run(&["seal", "-i", "-", "-r", p, "-o", "-"], Some(b""));
    assert_fails(&o, 2, "standard input");
    // Out-of-range chunk size: clap's usage error.
    let o = fam.run(
        &[
            "seal",
            "-i",
            "toy.key",
            "-r",
            p,
            "--chunk-size-log2",
            "30",
            "note.wav",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}

// --- inspect ------------------------------------------------------------------------------

#[test]
fn inspect_names_the_sender_and_recipients_and_checks_the_signature() {
    let fam = Family::new();
    let family_id = "00112233445566778899aabbccddeeff";
    let mut a = fam.seal_args(3);
    a.extend([
        "--family",
        family_id,
        "--roster-version",
        "7",
        "-o",
        "env.tse",
        "note.wav",
    ]);
    assert_ok(&fam.run(&a, None));
    let env = fs::read(fam.path("env.tse")).unwrap();
    let device_id = stdout_text(&fam.run(&["pubkey", "--device-id", "toy.key"], None))
        .trim()
        .to_owned();

    let o = fam.run(&["inspect", "env.tse"], None);
    assert_ok(&o);
    let text = stdout_text(&o);
    for line in [
        "version: 3".to_owned(),
        "suite: 0x0001".to_owned(),
        format!("sender: {}", fam.toy_pub),
        format!("sender device id: {device_id}"),
        "sender role: toy".to_owned(),
        format!("family: {family_id}"),
        "roster version: 7".to_owned(),
        "recipients: 3".to_owned(),
        "chunk size: 65536 bytes".to_owned(),
        format!("total size: {} bytes", env.len()),
        "signature: valid".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} not in\n{text}");
    }
    assert!(!text.contains("SECRET"));

    let o = fam.run(&["inspect", "--json"], Some(&env));
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["file"], "<stdin>");
    assert_eq!(v["version"], 3);
    assert_eq!(v["header_hash"].as_str().map(str::len), Some(64));
    assert_eq!(v["sender"], fam.toy_pub.as_str());
    assert_eq!(v["sender_device_id"], device_id.as_str());
    assert_eq!(v["sender_role"], "toy");
    assert_eq!(v["family"], family_id);
    assert_eq!(v["roster_version"], 7);
    assert_eq!(v["recipients"], 3);
    assert_eq!(v["total_size"], env.len() as u64);
    assert_eq!(v["signature_valid"], true);

    // A tampered chunk: facts still shown, signature invalid, exit 5.
    let bad = flip(&env, env.len() / 2);
    let o = fam.run(&["inspect", "--json"], Some(&bad));
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signature_valid"], false);
    assert_eq!(v["recipients"], 3);
    assert!(stderr(&o).starts_with("toyseal: error: <stdin>: "));
    let o = fam.run(&["inspect"], Some(&bad));
    assert!(stdout_text(&o).contains("signature: INVALID"));
}

// --- help ---------------------------------------------------------------------------------

#[test]
fn help_works_for_every_command_and_documents_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &[],
        &["keygen"],
        &["pubkey"],
        &["seal"],
        &["open"],
        &["inspect"],
        &["serve"],
        &["demo"],
        &["roster"],
        &["roster", "init"],
        &["roster", "propose"],
        &["roster", "cosign"],
        &["roster", "show"],
        &["roster", "verify"],
        &["family"],
        &["family", "create"],
        &["family", "update"],
        &["family", "show"],
        &["family", "delete"],
        &["upload"],
        &["list"],
        &["fetch"],
        &["delete"],
        &["invite"],
        &["join"],
        &["pair"],
        &["completions"],
        &["man"],
    ];
    for sub in commands {
        for flag in ["-h", "--help"] {
            let mut args = sub.to_vec();
            args.push(flag);
            let o = run_in(dir.path(), &args, None);
            assert_ok(&o);
            let text = stdout_text(&o);
            assert!(text.contains("Usage: toyseal"), "{args:?}: {text}");
            assert!(text.contains("Example"), "{args:?}: {text}");
            if flag == "--help" {
                assert!(text.contains("Exit status:"), "{args:?}");
                assert!(text.contains("6  untrusted sender"), "{args:?}");
                assert!(
                    text.contains(" 10  the server could not be reached"),
                    "{args:?}"
                );
            }
        }
    }
    let o = run_in(dir.path(), &["help", "open"], None);
    assert_ok(&o);
    let o = run_in(dir.path(), &["--version"], None);
    assert_ok(&o);
    assert!(stdout_text(&o).starts_with("toyseal "));
    let o = run_in(dir.path(), &["frobnicate"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = run_in(dir.path(), &["open", "-i", "x.key"], None);
    assert_eq!(o.status.code(), Some(2), "--from is required");
}

#[test]
fn no_progress_belongs_to_the_streaming_commands_only() {
    let fam = Family::new();
    let mut a = fam.seal_args(1);
    a.extend(["--no-progress", "-o", "env.tse", "note.wav"]);
    assert_ok(&fam.run(&a, None));
    let o = fam.run(&["inspect", "--no-progress", "env.tse"], None);
    assert_ok(&o);
    // Meaningless for the server and the demo: refused as a usage error, before anything runs.
    for cmd in ["serve", "demo"] {
        let o = fam.run(&[cmd, "--no-progress"], None);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--no-progress"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let o = fam.run(&["--no-progress", "keygen", "--role", "toy"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn large_files_take_the_parallel_path_with_the_same_results() {
    // 5 MiB: above the in-memory parallel threshold for named files; through pipes the same
    // bytes stream in bounded memory. Both must agree, and a tampered file must fail alike.
    let fam = Family::new();
    let big: Vec<u8> = (0..5 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    fs::write(fam.path("big.raw"), &big).unwrap();
    let mut a = vec!["seal", "-i", "toy.key", "--sequence", "7"];
    a.extend([
        "-r",
        fam.guardian_pubs[0].as_str(),
        "-o",
        "big.tse",
        "big.raw",
    ]);
    assert_ok(&fam.run(&a, None));
    let env = fs::read(fam.path("big.tse")).unwrap();
    // Parallel open (named file) and streaming open (stdin) give the same content.
    let o = fam.run(
        &[
            "open",
            "-i",
            "g1.key",
            "--from",
            &fam.toy_pub,
            "-o",
            "big.out",
            "big.tse",
        ],
        None,
    );
    assert_ok(&o);
    assert!(fs::read(fam.path("big.out")).unwrap() == big);
    let o = fam.open_to_stdout(1, &env);
    assert_ok(&o);
    assert!(o.stdout == big);
    // Sealing through a pipe (streaming) opens to the same content.
    let mut a = vec!["seal", "-i", "toy.key", "--sequence", "8"];
    a.extend(["-r", fam.guardian_pubs[0].as_str()]);
    let o = fam.run(&a, Some(&big));
    assert_ok(&o);
    fs::write(fam.path("piped.tse"), &o.stdout).unwrap();
    let o = fam.run(
        &["open", "-i", "g1.key", "--from", &fam.toy_pub, "piped.tse"],
        None,
    );
    assert_ok(&o);
    assert!(o.stdout == big);
    // A flipped byte in the middle: the parallel path fails like the streaming one, and
    // writes nothing.
    let mut bad = env.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    fs::write(fam.path("bad.tse"), &bad).unwrap();
    let o = fam.run(
        &[
            "open",
            "-i",
            "g1.key",
            "--from",
            &fam.toy_pub,
            "-o",
            "bad.out",
            "bad.tse",
        ],
        None,
    );
    assert_fails(&o, 5, "could not be decrypted");
    assert!(!fam.path("bad.out").exists());
    let o = fam.run(
        &["open", "-i", "g1.key", "--from", &fam.toy_pub, "bad.tse"],
        None,
    );
    assert_fails(&o, 5, "could not be decrypted");
    assert!(
        o.stdout.is_empty(),
        "the parallel path writes only after every checkpoint"
    );
}

#[test]
fn open_can_prove_every_family_member_got_the_same_key() {
    // The re-encryption check over the other recipients' keys: an honest envelope passes it,
    // through the streaming path (stdin) and for a named file.
    let fam = Family::new();
    let env = fam.seal_file(3, "env.tse");
    let list = format!(
        "# the family\n{}\n{}\n{}\n",
        fam.guardian_pubs[0], fam.guardian_pubs[1], fam.guardian_pubs[2]
    );
    fs::write(fam.path("family.txt"), list).unwrap();
    let args = [
        "open",
        "-i",
        "g2.key",
        "--from",
        &fam.toy_pub,
        "--check-recipients",
        "family.txt",
    ];
    let o = fam.run(&args, Some(&env));
    assert_ok(&o);
    assert_eq!(o.stdout, fam.wav);
    let mut with_file = args.to_vec();
    with_file.push("env.tse");
    let o = fam.run(&with_file, None);
    assert_ok(&o);
    assert_eq!(o.stdout, fam.wav);
    // Standard input cannot feed both the list and the envelope.
    let mut both = args.to_vec();
    both[6] = "-";
    let o = fam.run(&both, Some(&env));
    assert_fails(&o, 2, "standard input");
}

// --- completions and man page --------------------------------------------------------------

#[test]
fn completions_and_the_man_page_are_generated_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, needle) in [
        ("bash", "_toyseal()"),
        ("zsh", "#compdef toyseal"),
        ("fish", "complete -c toyseal"),
    ] {
        let o = run_in(dir.path(), &["completions", shell], None);
        assert_ok(&o);
        let text = stdout_text(&o);
        assert!(text.contains(needle), "{shell}");
        for cmd in ["roster", "family", "upload", "fetch", "invite", "join"] {
            assert!(text.contains(cmd), "{shell}: {cmd}");
        }
    }
    let o = run_in(dir.path(), &["completions", "tcsh"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = run_in(dir.path(), &["man"], None);
    assert_ok(&o);
    let page = stdout_text(&o);
    assert!(
        page.starts_with(".ie") || page.contains(".TH toyseal"),
        "{page}"
    );
    for needle in [".TH toyseal 1", "roster", "completions", "Exit status:"] {
        assert!(page.contains(needle), "{needle} missing from the man page");
    }
    // --dir: one page per command, written atomically, paths printed.
    let o = run_in(dir.path(), &["man", "--dir", "."], None);
    assert_ok(&o);
    let names = listing(dir.path());
    for page in [
        "toyseal.1",
        "toyseal-roster-init.1",
        "toyseal-family-show.1",
        "toyseal-join.1",
    ] {
        assert!(names.contains(&page.to_owned()), "{page} not in {names:?}");
    }
    assert!(names.iter().all(|n| n.ends_with(".1")), "{names:?}");
    assert_eq!(stdout_text(&o).lines().count(), names.len());
    let init = fs::read_to_string(dir.path().join("toyseal-roster-init.1")).unwrap();
    assert!(init.contains("founding guardian"), "{init}");
    // A missing folder is created; a regular file in the way is an error naming it, never
    // the internal temporary file's path.
    let o = run_in(dir.path(), &["man", "--dir", "new/man1"], None);
    assert_ok(&o);
    assert!(dir.path().join("new/man1/toyseal.1").is_file());
    fs::write(dir.path().join("plain"), b"x").unwrap();
    let o = run_in(dir.path(), &["man", "--dir", "plain"], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("plain"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(".partial"), "{}", stderr(&o));
}
