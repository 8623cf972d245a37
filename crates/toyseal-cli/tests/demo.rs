//! The main job (`toyseal demo`) runs end to end on embedded defaults and every check it makes
//! holds: in `--json` mode stdout is one JSON document listing each step (story and attacks),
//! and the exit code is 0 only if all held (7 otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

/// Every step the demo must report, in order: the story, then each attack refused by the real
/// component, then the storage scan and the verified deletion.
const STEPS: &[(&str, &str)] = &[
    ("provisioning", "story"),
    ("pairing", "story"),
    ("reconnect", "story"),
    ("roster_v1", "story"),
    ("invitations", "story"),
    ("recording", "story"),
    ("upload", "story"),
    ("playback", "story"),
    ("reply", "story"),
    ("ble_eavesdropper", "attack"),
    ("wrong_codes_lockout", "attack"),
    ("printed_code_after_guardian", "attack"),
    ("unsigned_request", "attack"),
    ("cross_family_read", "attack"),
    ("replayed_request", "attack"),
    ("fabricated_roster", "attack"),
    ("stolen_phone_quorum", "attack"),
    ("stolen_phone_at_the_door", "attack"),
    ("removal", "story"),
    ("removed_phone_ble", "attack"),
    ("removed_phone_not_recipient", "attack"),
    ("forged_stream", "attack"),
    ("storage_scan", "attack"),
    ("deletion", "story"),
    ("lost_only_phone", "story"),
    ("family_deletion", "story"),
];

#[test]
fn demo_json_reports_every_check_held() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_toyseal"))
        .args(["demo", "--json", "--data"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "demo failed:\n{stdout}\n{stderr}"
    );
    // stdout is exactly one JSON document; the narration went to stderr.
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).expect("stdout is one JSON document");
    let checks = doc["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    let expected: Vec<&str> = STEPS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected, "{stdout}");
    for (c, (name, kind)) in checks.iter().zip(STEPS) {
        assert_eq!(c["ok"], true, "{name} did not hold: {c}");
        assert_eq!(c["kind"], *kind, "{name}");
        for field in ["attempted", "outcome", "evidence"] {
            let text = c[field].as_str().unwrap();
            assert!(!text.is_empty(), "{name}: empty {field}");
            // Narration, not Rust Debug output.
            assert!(
                !text.contains(" { ") && !text.contains("Some(") && !text.contains("Ok("),
                "{name}: Debug output in {field}: {text}"
            );
        }
    }
    assert_eq!(doc["total"], STEPS.len());
    assert_eq!(doc["held"], STEPS.len());
    assert_eq!(doc["ok"], true);
    assert!(
        stderr.contains(&format!("{n} checks, {n} held", n = STEPS.len())),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "✓ blocked: unsigned request for the family's envelopes → 401 unauthenticated"
        ),
        "{stderr}"
    );
}

#[test]
fn demo_narrates_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_toyseal"))
        .args(["demo", "--data"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("✓ blocked: ").count(),
        STEPS.iter().filter(|(_, k)| *k == "attack").count(),
        "{stdout}"
    );
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(!stdout.contains("UploadReport"), "{stdout}");
    assert!(
        stdout.contains(&format!("{n} checks, {n} held", n = STEPS.len())),
        "{stdout}"
    );
}

#[test]
fn demo_that_cannot_run_reports_a_failed_check_and_exits_7() {
    // A data directory that cannot be created (under a regular file): the story cannot start.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_toyseal"))
        .args(["demo", "--json", "--data"])
        .arg(file.join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["total"], 1);
    assert_eq!(doc["held"], 0);
    assert_eq!(doc["checks"][0]["name"], "aborted");
    assert_eq!(doc["checks"][0]["ok"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 checks, 0 held"));
}
