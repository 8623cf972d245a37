//! The whole story on one machine, on embedded defaults: a toy, two parents' phones and a
//! grandparent's, the reference server on a SQLite file and a blob directory, and an
//! in-memory BLE link with an eavesdropper's tap.
//!
//! The story: the toy's printed code (and its QR), pairing with the short authentication
//! string shown on both sides, a Noise KK reconnect, roster v1 co-signed by the toy in
//! session, the second parent and a grandparent invited by anchor, a synthetic recording
//! sealed and uploaded through the outbox, playback while downloading, a reply to the toy.
//! Then every attack, live, against the real component, each refusal asserted: the BLE
//! eavesdropper, wrong codes until the window closes, the printed code after the first
//! guardian, an unsigned, a cross-family and a replayed request, a server-fabricated roster, a
//! stolen phone acting alone, the stolen phone at the door (in session with the toy), the
//! removed phone at the toy and at a new message, forged and truncated streams, and a scan of
//! the storage for plaintext; then soft deletion and erasure of the messages, a one-parent
//! family next door that loses its only phone and recovers with its recovery key and the toy,
//! and the deletion of the whole family.
//!
//! Every step is a [`Check`]: what was attempted, the outcome, the evidence (the value or
//! error the component returned) and whether it held. Narration goes to stdout (stderr with
//! `--json`, where stdout carries one JSON document). Exit 0 only if every check held, 7
//! otherwise.
//!
//! Run: `toyseal demo` (from a checkout: `cargo run -p toyseal-cli -- demo`).

use crate::cli::DemoArgs;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toyseal_ble::{
    DriverConfig, DriverEvent, MemoryEnd, MemoryLink, MemoryLinkConfig, PhoneDriver, Pumped,
    ToyDriver, run_until_idle,
};
use toyseal_cloud::api::{self, EnvelopeId};
use toyseal_cloud::{Client, Deletion, RequestTarget, outbox::Outbox, sign_request};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, PublicIdentity, Role};
use toyseal_envelope::{Metadata, OpenOptions, SealOptions};
use toyseal_pairing::{
    EnvelopeEvent, MakerKey, MemoryFailureStore, PairingCode, PairingExpectations, Phone,
    PhoneEvent, PhoneFailure, QrPayload, Toy, ToyEvent,
};
use toyseal_roster::{
    EnvelopeErasure, FamilyDeletion, Invitation, RecoveryKey, Roster, RosterProposal, SignedRoster,
};
use toyseal_server::{Config, Server};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
type ToyEnd = ToyDriver<MemoryFailureStore, MemoryEnd>;
type PhoneEnd = PhoneDriver<MemoryEnd>;
type Events = Pumped<PhoneEvent, ToyEvent>;

/// When the demo's envelopes say they were sealed (Unix seconds; a fixed synthetic time).
const DEMO_TIME: u64 = 1_767_225_600;

const MARKER: &[u8] = b"MARKER: goodnight from the synthetic bear";
const REPLY: &[u8] = b"Goodnight, sleep tight! (a synthetic reply)";
const SECOND_NOTE: &[u8] = b"MARKER-2: a note sealed after the stolen phone was removed";

/// One step of the story or one attack, as the demo observed it.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    /// Stable step name (the test asserts the list).
    name: &'static str,
    /// `story` or `attack`.
    kind: Kind,
    /// What was attempted, in words.
    attempted: String,
    /// What happened, in words (for an attack: how it was refused).
    outcome: String,
    /// The values or errors the components returned.
    evidence: String,
    /// Whether the property held.
    ok: bool,
}

/// What a check is: a step of the family's story, or an attack that must be refused.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// A step of the story; it held if it did what the family needed.
    Story,
    /// An attack; it held if the component refused it (narrated as "blocked").
    Attack,
}

/// The JSON document `demo --json` prints: every check, and the tally.
#[derive(Serialize)]
struct Document<'a> {
    /// Every check, in the order it ran.
    checks: &'a [Check],
    /// How many checks ran.
    total: usize,
    /// How many held.
    held: usize,
    /// Whether all held (the exit code is 0 exactly then).
    ok: bool,
}

/// The demo's narrator and its record of checks.
struct Narrator {
    json: bool,
    checks: Vec<Check>,
}

impl Narrator {
    /// A line of narration: stdout, or stderr in `--json` mode (stdout is the document's).
    fn say(&self, line: &str) {
        let r = if self.json {
            writeln!(std::io::stderr().lock(), "{line}")
        } else {
            writeln!(std::io::stdout().lock(), "{line}")
        };
        // A closed pipe is not worth failing the demo for; the exit code still tells.
        let _ = r;
    }

    /// Records a check and narrates it.
    fn check(
        &mut self,
        name: &'static str,
        kind: Kind,
        attempted: impl Into<String>,
        ok: bool,
        outcome: impl Into<String>,
        evidence: impl Into<String>,
    ) {
        let outcome = if ok {
            outcome.into()
        } else {
            format!("did not hold (expected: {})", outcome.into())
        };
        let c = Check {
            name,
            kind,
            attempted: attempted.into(),
            outcome,
            evidence: evidence.into(),
            ok,
        };
        let line = match (kind, ok) {
            (Kind::Story, true) => format!("✓ {}", c.outcome),
            (Kind::Attack, true) => format!("✓ blocked: {} → {}", c.attempted, c.outcome),
            (Kind::Story, false) => format!("✗ FAILED: {} → {}", c.attempted, c.outcome),
            (Kind::Attack, false) => format!("✗ NOT BLOCKED: {} → {}", c.attempted, c.outcome),
        };
        self.say(&line);
        if !c.evidence.is_empty() {
            self.say(&format!("    evidence: {}", c.evidence));
        }
        self.checks.push(c);
    }

    /// A step that could not even run (an error before its check): a check that did not hold.
    fn abort(&mut self, error: &str) {
        self.say(&format!("✗ FAILED: the demo stopped early: {error}"));
        self.checks.push(Check {
            name: "aborted",
            kind: Kind::Story,
            attempted: "run the rest of the story".into(),
            outcome: "the demo stopped early".into(),
            evidence: error.into(),
            ok: false,
        });
    }

    fn held(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }
}

/// Runs the demo; the error says how many checks held when one did not.
pub(crate) fn run(args: &DemoArgs, prepared: std::result::Result<(), crate::Error>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut n = Narrator {
        json: args.json,
        checks: Vec::new(),
    };
    let outcome = match prepared {
        Ok(()) => rt.block_on(story(&args.data, &mut n)),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = &outcome {
        n.abort(&e.to_string());
    }
    let (total, held) = (n.checks.len(), n.held());
    n.say(&format!("\n{total} checks, {held} held"));
    if n.json {
        let doc = Document {
            checks: &n.checks,
            total,
            held,
            ok: total == held,
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    }
    if total == held {
        Ok(())
    } else {
        Err(format!("{total} checks, {held} held").into())
    }
}

/// The file that marks a `--data` directory as the demo's own.
pub(crate) const DATA_MARKER: &str = ".toyseal-demo";
/// The entries the demo creates in its `--data` directory, and the only ones it ever removes.
const DATA_ENTRIES: [&str; 2] = ["server", "toy-outbox"];

/// Makes `data` ready for a run without destroying anything of the user's (THREATS T64): a
/// missing or empty directory becomes the demo's (marked with [`DATA_MARKER`]); in a directory
/// the demo marked, only the demo's own entries from an earlier run are removed; any other
/// directory, or a path that is not a directory, is refused.
pub(crate) fn prepare_data_dir(data: &Path) -> std::result::Result<(), crate::Error> {
    use crate::{Error, Place};
    let place = || Place::File(data.to_path_buf());
    let io = |e: std::io::Error| Error::Io {
        place: place(),
        source: e,
    };
    match std::fs::metadata(data) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data).map_err(io)?;
        }
        Err(e) => return Err(io(e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::Usage(format!(
                "--data {}: not a directory; give a new or empty directory for the demo",
                data.display()
            )));
        }
        Ok(_) if data.join(DATA_MARKER).is_file() => {
            for entry in DATA_ENTRIES {
                let path = data.join(entry);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Io {
                            place: Place::File(path),
                            source: e,
                        });
                    }
                }
            }
            return Ok(());
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(data).map_err(io)?;
            if entries.next().is_some() {
                return Err(Error::Usage(format!(
                    "--data {}: the directory holds files the demo did not create; give a new \
                     or empty directory (the demo never deletes anything it did not make)",
                    data.display()
                )));
            }
        }
    }
    std::fs::write(
        data.join(DATA_MARKER),
        "This directory was created by `toyseal demo`; a later run replaces its `server` and \
         `toy-outbox` folders and touches nothing else.\n",
    )
    .map_err(io)
}

#[allow(clippy::too_many_lines)]
async fn story(data: &Path, n: &mut Narrator) -> Result<()> {
    let mut rng = OsRng;
    let data = data.to_path_buf();
    let server_dir = data.join("server");

    // ── The reference server on embedded defaults: a SQLite file and a blob directory. ──
    let config = Config::embedded(server_dir.clone());
    let database_url = config.effective_database_url();
    let server = Server::builder(config).build().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    n.say(&format!(
        "toyseal demo: server {base}, data in {} (SQLite file + blob directory)\n",
        server_dir.display()
    ));

    // ════════════════════════════ The story ════════════════════════════
    // ── 1. Factory: identity, printed code, QR, maker's attestation. ──
    let maker = MakerKey::generate(&mut rng)?;
    let toy_id = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
    let toy_public = toy_id.public().clone();
    let code = PairingCode::generate(8, &mut rng);
    let qr = QrPayload {
        code: code.clone(),
        fingerprint: toy_id.device_id(),
    };
    let qr_text = qr.to_qr_text();
    n.say(&format!(
        "The toy's tag: pairing code {} and this QR code:",
        code.digits()
    ));
    n.say(&crate::invite::qr(&qr_text)?);
    let scanned = QrPayload::parse(&qr_text)?;
    let mut toy: ToyEnd = ToyDriver::new(
        Toy::builder(toy_id.clone(), code.clone(), MemoryFailureStore::default())
            .attestation(maker.attest(toy_id.public()))
            .build()?,
        DriverConfig::default(),
    );
    n.check(
        "provisioning",
        Kind::Story,
        "print the toy's pairing code and its QR (code + key fingerprint)",
        scanned.code == code && scanned.fingerprint == toy_id.device_id(),
        format!(
            "factory: toy {} has an 8-digit printed code and a QR that scans back to it",
            toy_public.device_id()
        ),
        format!("QR text of {} bytes", qr_text.len()),
    );

    // ── 2. Mum's phone pairs over BLE (SPAKE2 with the code), SAS on both sides. ──
    let mum = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let grandma = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut mums_phone: PhoneEnd =
        PhoneDriver::new(Phone::new(mum.clone()), DriverConfig::default());
    let mut dads_phone: PhoneEnd =
        PhoneDriver::new(Phone::new(dad.clone()), DriverConfig::default());
    let pairing_air = connect(&mut mums_phone, &mut toy);
    toy.endpoint_mut().press_pair_button(pairing_air.now())?;
    let expect = PairingExpectations {
        fingerprint: Some(scanned.fingerprint),
        maker_roots: vec![maker.public_key()],
        require_attestation: true,
    };
    mums_phone
        .endpoint_mut()
        .pair(&scanned.code, expect, &mut rng)?;
    let p = confirmed_at_toy(&mut mums_phone, &mut toy, &pairing_air, &mut rng)?;
    let (phone_sas, toy_sas) = sas_of(&p);
    let paired = p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::Paired(t)) => Some(t.clone()),
        _ => None,
    });
    let paired_ok = paired
        .as_ref()
        .is_some_and(|t| t.identity == toy_public && t.attested);
    let sas_ok = phone_sas.is_some() && phone_sas == toy_sas;
    n.check(
        "pairing",
        Kind::Story,
        "pair mum's phone with the printed code over BLE (SPAKE2)",
        paired_ok && sas_ok,
        format!(
            "paired: the toy says {} and mum's phone shows {} (mum sees they match and holds \
             the toy's button: only then does the toy record her as its founder); \
             the toy's key matches its QR, maker attestation valid",
            toy_sas.as_deref().unwrap_or("nothing"),
            phone_sas.as_deref().unwrap_or("nothing")
        ),
        format!(
            "SAS equal: {sas_ok}; identity pinned: {}",
            paired
                .as_ref()
                .map_or("none".into(), |t| t.identity.device_id().to_string())
        ),
    );
    let paired = paired.ok_or("pairing failed")?;
    mums_phone.disconnect();
    toy.disconnect();

    // ── 3. Reconnect with Noise KK; roster v1 signed by mum, co-signed by the toy. ──
    let session_air = connect(&mut mums_phone, &mut toy);
    mums_phone
        .endpoint_mut()
        .open_session(&paired.identity, &mut rng)?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &session_air, &mut rng)?;
    let opened = session_opened(&p);
    n.check(
        "reconnect",
        Kind::Story,
        "reconnect mum's phone to the toy",
        opened,
        "reconnected: Noise KK session, both static keys pinned",
        format!("session opened: {opened}"),
    );

    let family = FamilyId::generate(&mut rng);
    // Every family keeps a printed recovery key (roster.md §1.2): mum's phone generates it,
    // it signs version 1, and the family prints it.
    let recovery = RecoveryKey::generate(&mut rng)?;
    let mut v1 = RosterProposal::founding(
        family,
        vec![mum.public().clone(), toy_public.clone()],
        *recovery.public(),
    )?
    .sign(&mum);
    v1.cosign_recovery(&recovery);
    mums_phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v1), session_air.now())?;
    let p = confirmed_at_toy(&mut mums_phone, &mut toy, &session_air, &mut rng)?;
    let v1 = returned_roster(&p, 1).ok_or("the toy did not co-sign roster v1")?;
    let toy_signed = v1.signers().any(|s| s == toy_id.device_id());
    let mums_client = Client::new(&base, mum.clone())?;
    let roster_v1 = mums_client.create_family(&v1).await?;
    n.check(
        "roster_v1",
        Kind::Story,
        "found the family: roster v1 {mum, toy}",
        toy_signed && roster_v1.version() == 1,
        format!("family {family}: roster v1 signed by mum and the new recovery key, co-signed by the toy in session after mum confirmed at the toy, verified by the server"),
        format!("signers: {}; server answered 201", signer_count(&v1)),
    );

    // ── 4. v2 adds dad and grandma; invitations anchored at v2. ──
    let mut v2 = RosterProposal::next(
        &roster_v1,
        vec![
            mum.public().clone(),
            dad.public().clone(),
            grandma.public().clone(),
            toy_public.clone(),
        ],
    )?
    .sign(&mum);
    // Adding phones is a grant: mum and the printed recovery key sign (mum scans it), the new
    // members prove possession of their keys, and mum's phone hands the complete version to
    // the toy over her session (the toy's signature would not count for a grant).
    v2.cosign_recovery(&recovery);
    v2.cosign(&dad);
    v2.cosign(&grandma);
    mums_phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v2), session_air.now())?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &session_air, &mut rng)?;
    let toy_at_v2 = toy.endpoint().roster().is_some_and(|r| r.signed() == &v2);
    if !toy_at_v2 || returned_roster(&p, 2).is_some() {
        return Err("the toy did not apply roster v2 as signed".into());
    }
    mums_client.update_roster(&v2).await?;
    mums_phone
        .endpoint_mut()
        .set_rosters(vec![v1.clone(), v2.clone()]);
    let invitation_text = Invitation::new(&v2, Some(&base))?.to_string();
    n.say("Mum's screen shows the invitation (dad and grandma scan it):");
    n.say(&crate::invite::qr(&invitation_text)?);
    let invitation: Invitation = invitation_text.parse()?;
    let dads_client = Client::new(&base, dad.clone())?;
    let grandmas_client = Client::new(&base, grandma.clone())?;
    let dads_roster = dads_client.roster(invitation.anchor()).await?;
    let grandmas_roster = grandmas_client.roster(invitation.anchor()).await?;
    let toys_roster = toy
        .endpoint()
        .roster()
        .cloned()
        .ok_or("the toy has no roster")?;
    let same = dads_roster == toys_roster && grandmas_roster == toys_roster;
    n.check(
        "invitations",
        Kind::Story,
        "invite dad (second parent) and grandma (grandparent) by an anchored invitation",
        same && toys_roster.version() == 2 && toys_roster.contains(dad.public()),
        "roster v2 adds dad and grandma (mum and the printed recovery key sign, they prove \
         their keys, the toy applies it); \
         both phones follow the chain through their anchor",
        format!(
            "anchor: version {} of family {}; dad's, grandma's and the toy's verified rosters agree: {same}",
            invitation.anchor().version(),
            invitation.anchor().family()
        ),
    );

    // ── 5. The toy records (a synthetic tone), seals to the family, uploads via its outbox. ──
    let recording = synthetic_voice_wav(3);
    let envelope = toys_roster.seal(
        &toy_id,
        SealOptions::default()
            .with_metadata(
                Metadata::default()
                    .with_content_type("audio/wav")
                    .with_codec("pcm_s16le")
                    .with_duration_ms(3000),
            )
            .with_sequence(1)
            .with_created(DEMO_TIME),
        &recording,
        &mut rng,
    )?;
    let id = EnvelopeId::of(&envelope);
    let recipients = toys_roster.members().len() - 1;
    n.check(
        "recording",
        Kind::Story,
        "record and seal a voice note on the toy",
        !contains(&envelope, MARKER) && envelope.len() > recording.len(),
        format!(
            "the toy recorded 3 s of a synthetic tone ({} bytes) and sealed it to the {recipients} family phones",
            recording.len()
        ),
        format!("envelope {id}, {} bytes, signed by the toy", envelope.len()),
    );
    let outbox = Outbox::open(data.join("toy-outbox"))?;
    let queued = outbox.enqueue(family, &envelope)?;
    let toys_client = Client::new(&base, toy_id.clone())?;
    let report = outbox.upload_all(&toys_client).await?;
    let pending = outbox.pending()?.len();
    n.check(
        "upload",
        Kind::Story,
        "upload through the toy's outbox with signed requests",
        queued == id && report.created == 1 && report.refused.is_empty() && pending == 0,
        format!(
            "uploaded: {} stored now, {} already stored, {} refused",
            report.created,
            report.already_stored,
            report.refused.len()
        ),
        format!(
            "the server answered 201 (it checks the request's and the envelope's signatures \
             before storing); left in the outbox: {pending}"
        ),
    );

    // ── 6. Dad's phone plays it while it downloads: only signed content is released. ──
    let page = dads_client.list(family, None, None).await?;
    let listed = page.items.iter().any(|i| i.id == id);
    let mut played = Vec::new();
    let mut pieces = 0usize;
    let opener = dads_roster.opener(Arc::clone(&dad), OpenOptions::default());
    let opened = dads_client
        .download_open(family, &id, opener, |c| {
            pieces += 1;
            played.extend_from_slice(c);
        })
        .await?;
    n.check(
        "playback",
        Kind::Story,
        "dad's phone lists, downloads and plays the note",
        listed && played == recording && opened.sender == toy_public,
        format!(
            "dad's phone played {} bytes, streamed from the download into the player, released only \
             once the toy's signature over them verified",
            played.len()
        ),
        format!(
            "identical to the recording: {}; sender is the toy: {}; {} released in {pieces} piece(s); {} ms of {}",
            played == recording,
            opened.sender == toy_public,
            played.len(),
            opened.metadata.duration_ms.unwrap_or(0),
            opened.metadata.content_type.as_deref().unwrap_or("?")
        ),
    );

    // ── 7. Mum replies to the toy over the BLE session. ──
    let reply = toys_roster.seal(
        &mum,
        SealOptions::default()
            .with_sequence(1)
            .with_created(DEMO_TIME + 60),
        REPLY,
        &mut rng,
    )?;
    mums_phone
        .endpoint_mut()
        .send_envelope(reply.clone(), session_air.now())?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &session_air, &mut rng)?;
    let received = p.toy.iter().find_map(|e| match e {
        DriverEvent::Endpoint(ToyEvent::Envelope(EnvelopeEvent::Received { envelope, .. })) => {
            Some(envelope.clone())
        }
        _ => None,
    });
    let words = match &received {
        Some(r) => toys_roster.open(&toy_id, r, OpenOptions::default()).ok(),
        None => None,
    };
    n.check(
        "reply",
        Kind::Story,
        "mum replies to the toy over the BLE session",
        words
            .as_ref()
            .is_some_and(|(w, o)| w == REPLY && o.sender == *mum.public()),
        format!(
            "the toy opened mum's reply: {:?}",
            words
                .as_ref()
                .map_or("nothing".into(), |(w, _)| String::from_utf8_lossy(w)
                    .into_owned())
        ),
        format!("{} sealed bytes over the Noise session", reply.len()),
    );

    // ════════════════════════════ The attacks ════════════════════════════
    n.say("\nNow the attacks, each against the real component:");

    eavesdropper(
        n,
        &[&pairing_air, &session_air],
        &code,
        &toy_id,
        &mum,
        &reply,
    )?;
    wrong_codes(n, &mut toy, &mut mums_phone, &session_air)?;
    printed_code_after_guardian(n, &mut toy, &code)?;
    let http = reqwest::Client::new();
    let list_url = format!("{base}{}", api::envelopes_path(family));
    unsigned_request(n, &http, &list_url, &id).await?;
    let theirs = cross_family_read(n, &base, &dads_client, family).await?;
    replayed_request(n, &http, &list_url, &addr.to_string(), &dad, family).await?;

    // ── A server-fabricated roster for a new phone. The operator's own "guardian" and "toy"
    //    found the same family id, and version 2 adds the operator's device. ──
    let fake_guardian = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let fake_toy = DeviceIdentity::generate(Role::Toy, &mut rng);
    let fake_recovery = RecoveryKey::generate(&mut rng)?;
    let mut f1 = RosterProposal::founding(
        family,
        vec![fake_guardian.public().clone(), fake_toy.public().clone()],
        *fake_recovery.public(),
    )?
    .sign(&fake_guardian);
    f1.cosign(&fake_toy);
    f1.cosign_recovery(&fake_recovery);
    let fr1 = Roster::verify_founding(f1.clone())?;
    // Version 2 adds the operator's own device, which proves its key: a chain that verifies.
    // (Grandma cannot be listed in it: her proof of possession is missing.)
    let operator = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let mut f2 = RosterProposal::next(
        &fr1,
        vec![
            fake_guardian.public().clone(),
            fake_toy.public().clone(),
            operator.public().clone(),
        ],
    )?
    .sign(&fake_guardian);
    f2.cosign_recovery(&fake_recovery);
    f2.cosign(&operator);
    let fabricated = [f1, f2];
    let [f1, f2] = &fabricated;
    let verifies_alone = Roster::verify_founding(f1.clone())
        .and_then(|v1| v1.verify_next(f2.clone()))
        .is_ok();
    // The operator rewrites the family's chain in its own database (the real server's SQLite
    // file, while it runs); the server now serves it to every member who asks.
    let db = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await?;
    rewrite_chain(&db, family, &fabricated).await?;
    // Proof that the server serves it: it continues the fake version 1 to the fake version 2.
    let served = grandmas_client.roster_update(&fr1).await?;
    let served_ok = served.version() == 2 && served.contains(operator.public());
    // What grandma's new phone does with the chain: it follows it only through its anchor.
    let refused = grandmas_client.roster(invitation.anchor()).await;
    // The operator puts the real chain back; the same phone accepts it.
    rewrite_chain(&db, family, &[v1.clone(), v2.clone()]).await?;
    db.close().await;
    let restored = grandmas_client.roster(invitation.anchor()).await;
    n.check(
        "fabricated_roster",
        Kind::Attack,
        "the server hands grandma's new phone a fabricated chain for her family (its own guardian, toy and device)",
        verifies_alone
            && served_ok
            && matches!(
                refused,
                Err(toyseal_cloud::Error::Roster(
                    toyseal_roster::Error::NotAnchored
                ))
            )
            && restored.as_ref().is_ok_and(|r| *r == toys_roster),
        "refused by the phone's anchor check",
        format!(
            "the fake chain verifies by itself: {verifies_alone}; the server serves it (fake v2 \
             listing the operator's device): {served_ok}; grandma's phone through her anchor: {}; \
             with the real chain back: {}",
            refused.as_ref().err().map_or("ACCEPTED".into(), ToString::to_string),
            restored.as_ref().map_or_else(ToString::to_string, |r| format!("accepted version {}", r.version()))
        ),
    );

    // ── A stolen phone: mum's phone alone removes dad. ──
    let steal = RosterProposal::next(
        &toys_roster,
        vec![
            mum.public().clone(),
            grandma.public().clone(),
            toy_public.clone(),
        ],
    )?
    .sign(&mum);
    let local = toys_roster.verify_next(steal.clone());
    let upload = status_of(mums_client.update_roster(&steal).await);
    let mut alone = FamilyDeletion::new(&toys_roster);
    alone.cosign(&mum);
    let deleted = status_of(mums_client.delete_family(&alone).await);
    let still = dads_client.roster_update(&dads_roster).await?;
    let kept = dads_client.list(family, None, None).await?.items.len();
    n.check(
        "stolen_phone_quorum",
        Kind::Attack,
        "a thief with mum's phone removes dad from the family, and deletes the family, alone",
        local.is_err()
            && upload == Some(400)
            && deleted == Some(403)
            && still.contains(dad.public())
            && still.version() == 2
            && kept == 1,
        "refused: one guardian is not a quorum",
        format!(
            "roster check: {}; server: {}; family deletion signed by mum alone: {}; \
             the family's roster is still version {} with dad, its message still there: {}",
            local
                .as_ref()
                .err()
                .map_or("ACCEPTED".into(), ToString::to_string),
            status_words(upload),
            status_words(deleted),
            still.version(),
            kept == 1
        ),
    );

    // ── The stolen phone at the door: the thief, with mum's still-valid key, reaches the toy
    //    over Bluetooth and opens a session (T35). ──
    stolen_phone_at_the_door(
        n,
        &mut mums_phone,
        &mut toy,
        (&mum, &dad, &toy_public),
        &toys_roster,
    )?;

    // ── The family answers: dad, with the printed recovery key, removes the stolen phone (a
    //    guardian's removal is a grant: dad and the toy alone could not); dad's phone hands
    //    it to the toy over his session. ──
    let dads_air = connect(&mut dads_phone, &mut toy);
    dads_phone
        .endpoint_mut()
        .open_session(&toy_public, &mut rng)?;
    let p = run_until_idle(&mut dads_phone, &mut toy, &dads_air, &mut rng)?;
    let dad_in = session_opened(&p);
    let mut v3 = RosterProposal::next(
        &toys_roster,
        vec![
            dad.public().clone(),
            grandma.public().clone(),
            toy_public.clone(),
        ],
    )?
    .sign(&dad);
    v3.cosign_recovery(&recovery);
    dads_phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v3), dads_air.now())?;
    let p = run_until_idle(&mut dads_phone, &mut toy, &dads_air, &mut rng)?;
    if !toy.endpoint().roster().is_some_and(|r| r.signed() == &v3)
        || returned_roster(&p, 3).is_some()
    {
        return Err("the toy did not apply roster v3 as signed".into());
    }
    dads_client.update_roster(&v3).await?;
    let toys_roster = toy
        .endpoint()
        .roster()
        .cloned()
        .ok_or("the toy has no roster")?;
    let dads_roster = dads_client.roster_update(&dads_roster).await?;
    n.check(
        "removal",
        Kind::Story,
        "dad removes the stolen phone with the printed recovery key; the toy applies it over his session",
        dad_in
            && toys_roster.version() == 3
            && !toys_roster.contains(mum.public())
            && dads_roster == toys_roster,
        "roster v3 without mum's stolen phone: signed by dad and the recovery key (dad and the toy are no quorum for it), applied by the toy, accepted by the server",
        format!(
            "dad's Noise KK session (admitted by the roster, never paired): {dad_in}; toy and server at version {}",
            dads_roster.version()
        ),
    );

    // ── The removed phone connects to the toy. ──
    let stolen_air = connect(&mut mums_phone, &mut toy);
    mums_phone
        .endpoint_mut()
        .open_session(&toy_public, &mut rng)?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &stolen_air, &mut rng)?;
    let failure = p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::SessionFailed(f)) => Some(*f),
        _ => None,
    });
    let cloud = status_of(mums_client.list(family, None, None).await);
    n.check(
        "removed_phone_ble",
        Kind::Attack,
        "the stolen phone connects to the toy with its still-valid key",
        failure == Some(PhoneFailure::NotPairable)
            && !session_opened(&p)
            && toy.endpoint().admitted(mum.device_id()).is_none()
            && cloud == Some(401),
        "refused by the toy's allow-list (its verified roster)",
        format!(
            "session: {}; the same key at the server: {}",
            failure_words(failure),
            status_words(cloud)
        ),
    );

    // ── A new message after the removal: the stolen phone is not a recipient. ──
    // The toy's second envelope, on its sender chain: it names the first one's header hash.
    let second = toys_roster.seal(
        &toy_id,
        SealOptions::default()
            .with_sequence(2)
            .with_previous(toyseal_envelope::inspect(&envelope)?.link_hash())
            .with_created(DEMO_TIME + 120),
        SECOND_NOTE,
        &mut rng,
    )?;
    let second_id = EnvelopeId::of(&second);
    outbox.enqueue(family, &second)?;
    let report2 = outbox.upload_all(&toys_client).await?;
    let for_thief = toyseal_envelope::open(
        &mum,
        std::slice::from_ref(&toy_public),
        &second,
        OpenOptions::default(),
    );
    let for_dad = dads_roster.open(&dad, &second, OpenOptions::default());
    n.check(
        "removed_phone_not_recipient",
        Kind::Attack,
        "the stolen phone opens a message sealed after its removal (bytes leaked to it)",
        matches!(for_thief, Err(toyseal_envelope::Error::NotARecipient))
            && report2.created == 1
            && for_dad.as_ref().is_ok_and(|(c, _)| c == SECOND_NOTE),
        "refused: not a recipient",
        format!(
            "stolen phone: {}; dad opens it: {}",
            for_thief
                .as_ref()
                .err()
                .map_or("OPENED".into(), ToString::to_string),
            for_dad.is_ok()
        ),
    );

    forged_stream(n, &dad, &dads_roster, &recording, &envelope, &toy_public)?;
    storage_scan(
        n,
        &server_dir,
        &data.join("toy-outbox"),
        &recording,
        &envelope,
    )?;

    // ── A verified deletion. Dad deletes both of the toy's messages: softly (T36: hidden,
    //    restorable by any guardian for 30 days, one guardian cannot erase the archive). Then
    //    dad and grandma (two guardians: a quorum) erase them at once with an erasure
    //    statement: the blobs go and the rows leave the database file (secure_delete zeroes
    //    them) and its write-ahead log (the server checkpoints after every deletion, so no
    //    earlier page image keeps them). ──
    let blob_dir = server_dir.join("blobs");
    let blobs_before = files(&blob_dir).len();
    let soft = [
        dads_client.delete_envelope(family, &id).await?,
        dads_client.delete_envelope(family, &second_id).await?,
    ];
    let hidden = soft.iter().all(|d| matches!(d, Deletion::Pending(_)))
        && files(&blob_dir).len() == blobs_before;
    let mut erasure = EnvelopeErasure::new(&dads_roster, [*id.as_bytes(), *second_id.as_bytes()])?;
    erasure.cosign(&dad);
    erasure.cosign(&grandma);
    dads_client.erase(&erasure).await?;
    let stored = files(&server_dir);
    let is_log = |p: &Path| {
        p.file_name().is_some_and(|f| {
            f.to_string_lossy().ends_with("-wal") || f.to_string_lossy().ends_with("-shm")
        })
    };
    let blobs = stored
        .iter()
        .filter(|(p, _)| p.starts_with(&blob_dir))
        .count();
    let mut remains = Vec::new();
    for (eid, bytes) in [(&id, &envelope), (&second_id, &second)] {
        let hex = eid.to_string();
        for (p, b) in &stored {
            let holds = p.to_string_lossy().contains(&hex)
                || contains(b, hex.as_bytes())
                || contains(b, eid.as_bytes())
                || contains(b, head(bytes));
            if holds {
                remains.push(p.display().to_string());
            }
        }
    }
    let logs = stored.iter().filter(|(p, _)| is_log(p)).count();
    let again = status_of(dads_client.download(family, &id).await);
    let left = dads_client.list(family, None, None).await?.items.len();
    n.check(
        "deletion",
        Kind::Story,
        "dad deletes both messages (softly), then dad and grandma erase them",
        hidden
            && remains.is_empty()
            && blobs_before >= blobs + 2
            && again == Some(404)
            && left == 0,
        "hidden and kept until two guardians erased them: blobs gone, rows gone from the \
         database file and its write-ahead log",
        format!(
            "dad's deletions soft, blobs kept: {hidden}; \
             blob files before {blobs_before}, after {blobs}; files still holding either \
             message (blobs, the database file, its {logs} log files): {}; download again: {}; \
             listing: {left} items",
            if remains.is_empty() {
                "none".into()
            } else {
                remains.join(", ")
            },
            status_words(again)
        ),
    );

    // ── The lost only phone (T39): a one-parent family next door recovers with its printed
    //    recovery key and the toy. ──
    lost_only_phone(n, &base).await?;

    // ── Then dad and grandma (two guardians: a quorum) delete the whole family; every byte of
    //    storage is scanned, the database file and its write-ahead log included. ──
    let mut deletion = FamilyDeletion::new(&dads_roster);
    deletion.cosign(&dad);
    deletion.cosign(&grandma);
    dads_client.delete_family(&deletion).await?;
    let family_hex = family.to_string();
    let mut needles: Vec<(&str, Vec<u8>)> = vec![
        ("the family id", family_hex.clone().into_bytes()),
        ("the family id's bytes", family.as_bytes().to_vec()),
        ("the first message's id", id.to_string().into_bytes()),
        ("the first message's id bytes", id.as_bytes().to_vec()),
        (
            "the second message's id",
            second_id.to_string().into_bytes(),
        ),
        ("the first message's ciphertext", head(&envelope).to_vec()),
        ("the second message's ciphertext", head(&second).to_vec()),
        ("roster v1", head(&v1.encode()).to_vec()),
        ("the toy's key", toy_public.to_bytes().to_vec()),
        ("dad's key", dad.public().to_bytes().to_vec()),
        ("grandma's key", grandma.public().to_bytes().to_vec()),
    ];
    needles.retain(|(_, b)| !b.is_empty());
    let everything = files(&server_dir);
    let scanned: usize = everything.iter().map(|(_, b)| b.len()).sum();
    let remains: Vec<String> = everything
        .iter()
        .flat_map(|(p, b)| {
            let name = p.display().to_string();
            let in_name = name.contains(&family_hex);
            needles
                .iter()
                .filter(move |(_, s)| in_name || contains(b, s))
                .map(move |(what, _)| format!("{what} in {name}"))
        })
        .collect();
    let neighbours_kept = everything.iter().any(|(_, b)| contains(b, head(&theirs)));
    let gone = status_of(dads_client.list(family, None, None).await);
    n.check(
        "family_deletion",
        Kind::Story,
        "dad and grandma delete the family",
        remains.is_empty() && neighbours_kept && gone == Some(401),
        "deleted: nothing of the family remains in the database, its log or the blob store",
        format!(
            "{} files / {scanned} bytes scanned for the family id, message ids, ciphertext, roster and keys: {}; \
             the neighbours' envelope is still stored: {neighbours_kept}; dad's key now: {}",
            everything.len(),
            if remains.is_empty() { "none found".into() } else { remains.join(", ") },
            status_words(gone)
        ),
    );

    let _ = stop.send(());
    serving.await??;
    Ok(())
}

/// The BLE eavesdropper: the tap of `links` (the pairing and the session) holds nothing
/// readable.
fn eavesdropper(
    n: &mut Narrator,
    links: &[&MemoryLink],
    code: &PairingCode,
    toy_id: &DeviceIdentity,
    mum: &DeviceIdentity,
    reply: &[u8],
) -> Result<()> {
    let air: Vec<u8> = links.iter().flat_map(|l| l.tap().all_bytes()).collect();
    let packets: usize = links.iter().map(|l| l.tap().packets().len()).sum();
    let mut secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the printed code", code.digits().as_bytes().to_vec()),
        ("the recording's marker", MARKER.to_vec()),
        ("the reply's words", REPLY.to_vec()),
        (
            "the toy's X25519 secret",
            toy_id.expose_x25519_secret().to_vec(),
        ),
        ("mum's X25519 secret", mum.expose_x25519_secret().to_vec()),
        (
            "the toy's secret key text",
            toy_id.export_secret_key_text()?.as_bytes().to_vec(),
        ),
        (
            "mum's secret key text",
            mum.export_secret_key_text()?.as_bytes().to_vec(),
        ),
    ];
    // Not even the (already encrypted) envelope crosses the air in the clear.
    secrets.extend(
        reply
            .chunks(12)
            .filter(|c| c.len() == 12)
            .map(|c| ("12 bytes of the sealed reply", c.to_vec())),
    );
    let found: Vec<&str> = secrets
        .iter()
        .filter(|(_, s)| contains(&air, s))
        .map(|(what, _)| *what)
        .collect();
    n.check(
        "ble_eavesdropper",
        Kind::Attack,
        "an eavesdropper records the BLE pairing and session",
        found.is_empty() && packets > 10,
        "nothing readable on the air",
        format!(
            "{packets} packets / {} bytes tapped; searched for the code, the marker, the reply, \
             the toy's and mum's secret keys and every 12-byte run of the sealed reply: found {}",
            air.len(),
            if found.is_empty() {
                "none".into()
            } else {
                found.join(", ")
            }
        ),
    );
    Ok(())
}

/// Wrong codes until the window closes: mum opens a window for a new phone (a fresh one-time
/// code on her screen); a neighbour guesses.
fn wrong_codes(
    n: &mut Narrator,
    toy: &mut ToyEnd,
    mums_phone: &mut PhoneEnd,
    session_air: &MemoryLink,
) -> Result<()> {
    let mut rng = OsRng;
    let one_time = mums_phone
        .endpoint_mut()
        .open_pairing_window(session_air.now(), &mut rng)?;
    let p = run_until_idle(mums_phone, toy, session_air, &mut rng)?;
    let window_opened = p
        .phone
        .iter()
        .any(|e| matches!(e, DriverEvent::Endpoint(PhoneEvent::PairingWindowAck(true))));
    let neighbour = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut neighbours_phone: PhoneEnd =
        PhoneDriver::new(Phone::new(neighbour.clone()), DriverConfig::default());
    let guess_air = connect(&mut neighbours_phone, toy);
    let mut refused_guesses = 0u32;
    let policy = *toy.endpoint().window().policy();
    for _ in 0..policy.max_failures_per_window {
        let guess = loop {
            let g = PairingCode::generate(one_time.digits().len(), &mut rng);
            if g != one_time {
                break g;
            }
        };
        // An attacker's phone ignores the limit an honest phone puts on its own tries.
        neighbours_phone.endpoint_mut().reset_pairing_attempts();
        neighbours_phone
            .endpoint_mut()
            .pair(&guess, PairingExpectations::default(), &mut rng)?;
        let p = run_until_idle(&mut neighbours_phone, toy, &guess_air, &mut rng)?;
        if pairing_failure(&p) == Some(PhoneFailure::Authentication) && paired_with(&p).is_none() {
            refused_guesses += 1;
        }
    }
    // The window is closed: now even the right one-time code is refused.
    neighbours_phone.endpoint_mut().reset_pairing_attempts();
    neighbours_phone
        .endpoint_mut()
        .pair(&one_time, PairingExpectations::default(), &mut rng)?;
    let p = run_until_idle(&mut neighbours_phone, toy, &guess_air, &mut rng)?;
    let right_code = pairing_failure(&p);
    let total_failures = toy.endpoint().window().total_failures()?;
    n.check(
        "wrong_codes_lockout",
        Kind::Attack,
        format!(
            "a neighbour guesses {} wrong codes while mum's pairing window is open",
            policy.max_failures_per_window
        ),
        window_opened
            && refused_guesses == policy.max_failures_per_window
            && total_failures == policy.max_failures_per_window
            && right_code.is_some()
            && paired_with(&p).is_none(),
        "window closed after the last wrong code",
        format!(
            "{refused_guesses} guesses refused (authentication failed); then even the right one-time code: {}; \
             toy's lifetime failure counter {total_failures}/{}",
            failure_words(right_code),
            policy.max_failures_total
        ),
    );
    Ok(())
}

/// The stolen phone at the door (T35): the thief holds mum's key (still on the roster) and opens
/// a Bluetooth session with the toy. He pushes a version adding a toy-role key he holds (a
/// standing quorum from anywhere), then one removing dad. A guardian and the toy can never add
/// anyone or remove a guardian (roster.md §3.3), so the toy refuses both at once, without even
/// asking its user; the one change they may make together (removing a member's phone or a
/// toy) would still wait for a deliberate gesture at the toy (the T35 tests). Nothing is
/// signed; the toy stays at its version.
fn stolen_phone_at_the_door(
    n: &mut Narrator,
    thief: &mut PhoneEnd,
    toy: &mut ToyEnd,
    (mum, dad, toy_public): (&DeviceIdentity, &DeviceIdentity, &PublicIdentity),
    current: &Roster,
) -> Result<()> {
    let mut rng = OsRng;
    let air = connect(thief, toy);
    thief.endpoint_mut().open_session(toy_public, &mut rng)?;
    let p = run_until_idle(thief, toy, &air, &mut rng)?;
    let in_session = session_opened(&p);
    let phantom = DeviceIdentity::generate(Role::Toy, &mut rng);
    let mut with_phantom = current.members().to_vec();
    with_phantom.push(phantom.public().clone());
    let mut add_phantom = RosterProposal::next(current, with_phantom)?.sign(mum);
    add_phantom.cosign(&phantom);
    let without_dad: Vec<PublicIdentity> = current
        .members()
        .iter()
        .filter(|m| m.device_id() != dad.device_id())
        .cloned()
        .collect();
    let remove_dad = RosterProposal::next(current, without_dad)?.sign(mum);
    let (mut asked, mut refused, mut signed_back) = (0, 0, false);
    for attempt in [add_phantom, remove_dad] {
        thief
            .endpoint_mut()
            .push_rosters(std::slice::from_ref(&attempt), air.now())?;
        let p = run_until_idle(thief, toy, &air, &mut rng)?;
        // Wait out any confirmation window: nobody at the toy makes the gesture.
        air.advance(std::time::Duration::from_secs(31));
        let later = run_until_idle(thief, toy, &air, &mut rng)?;
        let toy_events = p.toy.iter().chain(later.toy.iter());
        let phone_events: Vec<_> = p.phone.iter().chain(later.phone.iter()).collect();
        asked += toy_events
            .filter(|e| {
                matches!(
                    e,
                    DriverEvent::Endpoint(ToyEvent::ConfirmationRequested { .. })
                )
            })
            .count();
        refused += phone_events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    DriverEvent::Endpoint(PhoneEvent::ToyAnswered {
                        answer: toyseal_pairing::ToyAnswer::Refused,
                        ..
                    })
                )
            })
            .count();
        signed_back |= returned_roster(&p, current.version() + 1).is_some()
            || returned_roster(&later, current.version() + 1).is_some();
    }
    let unchanged = toy.endpoint().roster() == Some(current);
    n.check(
        "stolen_phone_at_the_door",
        Kind::Attack,
        "the thief takes mum's phone to the toy, opens a session and pushes a phantom toy key he holds, then dad's removal",
        in_session && asked == 0 && refused == 2 && !signed_back && unchanged,
        "refused at once, nothing signed: a guardian and the toy never add anyone or remove a guardian, and the toy signs nothing without a gesture at the toy",
        format!(
            "session opened: {in_session}; confirmations asked: {asked}; refusals: {refused} of 2; \
             toy signature returned: {signed_back}; toy still at version {}: {unchanged}",
            current.version()
        ),
    );
    Ok(())
}

/// The lost only phone (T39): the most common family, one parent's phone and a toy, with the
/// recovery key printed at founding. The phone is lost. A new phone is refused until the long
/// press opens the toy's recovery window; then it pairs with the printed code, proves the
/// scanned recovery key over its session, and pushes version 2 (itself as guardian, the lost
/// phone removed) signed by the key; the toy co-signs only after a second gesture at the toy,
/// and the new phone publishes it. The lost phone is then refused by the toy
/// and by the server; the new phone governs.
async fn lost_only_phone(n: &mut Narrator, base: &str) -> Result<()> {
    let mut rng = OsRng;
    let toy_id = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
    let code = PairingCode::generate(8, &mut rng);
    let mut toy: ToyEnd = ToyDriver::new(
        Toy::builder(toy_id.clone(), code.clone(), MemoryFailureStore::default()).build()?,
        DriverConfig::default(),
    );
    // The family: the parent pairs (confirmed at the toy), founds with a recovery key that is
    // printed and then forgotten by the phone.
    let parent = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut lost: PhoneEnd = PhoneDriver::new(Phone::new(parent.clone()), DriverConfig::default());
    let air = connect(&mut lost, &mut toy);
    toy.endpoint_mut().press_pair_button(air.now())?;
    lost.endpoint_mut()
        .pair(&code, PairingExpectations::default(), &mut rng)?;
    confirmed_at_toy(&mut lost, &mut toy, &air, &mut rng)?;
    lost.disconnect();
    toy.disconnect();
    let air = connect(&mut lost, &mut toy);
    lost.endpoint_mut()
        .open_session(toy_id.public(), &mut rng)?;
    run_until_idle(&mut lost, &mut toy, &air, &mut rng)?;
    let printed = {
        let recovery = RecoveryKey::generate(&mut rng)?;
        let mut v1 = RosterProposal::founding(
            FamilyId::generate(&mut rng),
            vec![parent.public().clone(), toy_id.public().clone()],
            *recovery.public(),
        )?
        .sign(&parent);
        v1.cosign_recovery(&recovery);
        lost.endpoint_mut()
            .push_rosters(std::slice::from_ref(&v1), air.now())?;
        recovery.export_printable()?
    };
    let p = confirmed_at_toy(&mut lost, &mut toy, &air, &mut rng)?;
    let v1 = returned_roster(&p, 1).ok_or("the toy did not co-sign the neighbours' v1")?;
    let family = v1.proposal().family();
    Client::new(base, parent.clone())?
        .create_family(&v1)
        .await?;
    lost.disconnect();
    toy.disconnect();

    // The phone is lost. A new phone, before the long press: the printed code admits no one.
    let new_id = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut found: PhoneEnd = PhoneDriver::new(Phone::new(new_id.clone()), DriverConfig::default());
    let air = connect(&mut found, &mut toy);
    found
        .endpoint_mut()
        .pair(&code, PairingExpectations::default(), &mut rng)?;
    let p = run_until_idle(&mut found, &mut toy, &air, &mut rng)?;
    let refused_before = pairing_failure(&p) == Some(PhoneFailure::NotPairable);
    found.disconnect();
    toy.disconnect();

    // The long press opens the recovery window; the new phone pairs with the printed code.
    let air = connect(&mut found, &mut toy);
    toy.endpoint_mut().open_recovery_window(air.now())?;
    found
        .endpoint_mut()
        .pair(&code, PairingExpectations::default(), &mut rng)?;
    let p = run_until_idle(&mut found, &mut toy, &air, &mut rng)?;
    let paired = paired_with(&p).as_ref() == Some(new_id.public());
    found.disconnect();
    toy.disconnect();
    let air = connect(&mut found, &mut toy);
    found
        .endpoint_mut()
        .open_session(toy_id.public(), &mut rng)?;
    run_until_idle(&mut found, &mut toy, &air, &mut rng)?;
    // The parent scans the printed key; the phone proves it over this session, then forgets it.
    let v2 = {
        let scanned = RecoveryKey::from_printable(&printed)?;
        found.endpoint_mut().prove_recovery(&scanned, air.now())?;
        let p = run_until_idle(&mut found, &mut toy, &air, &mut rng)?;
        let proved = p.phone.iter().any(|e| {
            matches!(
                e,
                DriverEvent::Endpoint(PhoneEvent::RecoveryAnswered(
                    toyseal_pairing::RecoveryAnswer::Proved
                ))
            )
        });
        if !proved {
            return Err("the toy did not accept the recovery key's proof".into());
        }
        // The toy hands over its head; the new phone builds version 2 on it.
        let head = returned_roster(&p, 1).ok_or("the toy did not hand over its roster")?;
        let held = Roster::verify_founding(head)?;
        let mut v2 = RosterProposal::next(
            &held,
            vec![new_id.public().clone(), toy_id.public().clone()],
        )?
        .sign_with_recovery(&scanned);
        v2.cosign(&new_id);
        v2
    };
    found
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v2), air.now())?;
    run_until_idle(&mut found, &mut toy, &air, &mut rng)?;
    let asked = toy.endpoint().pending_confirmation().is_some();
    let unsigned_before = toy.endpoint().roster().map(Roster::version) == Some(1);
    // The second gesture at the toy.
    toy.endpoint_mut().confirm(air.now())?;
    let p = run_until_idle(&mut found, &mut toy, &air, &mut rng)?;
    let v2 = returned_roster(&p, 2).ok_or("the toy did not co-sign the recovery version")?;
    let toy_at_2 = toy
        .endpoint()
        .roster()
        .is_some_and(|r| r.version() == 2 && r.contains(new_id.public()));
    // The new phone publishes it: the server takes a roster update from a phone the version
    // makes a guardian when it verifies as the next version (signed-requests.md §6). The new
    // phone now reads the family; the lost phone is refused by the server and by the toy.
    Client::new(base, new_id.clone())?
        .update_roster(&v2)
        .await?;
    let new_reads = Client::new(base, new_id.clone())?
        .list(family, None, None)
        .await
        .is_ok();
    let lost_server = status_of(
        Client::new(base, parent.clone())?
            .list(family, None, None)
            .await,
    );
    found.disconnect();
    toy.disconnect();
    let air = connect(&mut lost, &mut toy);
    lost.endpoint_mut()
        .open_session(toy_id.public(), &mut rng)?;
    let p = run_until_idle(&mut lost, &mut toy, &air, &mut rng)?;
    let lost_at_toy = !session_opened(&p);
    n.check(
        "lost_only_phone",
        Kind::Story,
        "a one-parent family loses its only phone and recovers with the printed recovery key and the toy",
        refused_before && paired && asked && unsigned_before && toy_at_2 && new_reads
            && lost_server == Some(401) && lost_at_toy,
        "recovered: the long press opened the recovery window, the new phone proved the printed key, the toy co-signed version 2 after a second gesture; the lost phone is out",
        format!(
            "printed code before the long press: {}; paired in the window: {paired}; \
             confirmation asked and nothing signed before it: {}; toy at v2 with the new phone: \
             {toy_at_2}; the server accepts v2 from the new phone, which reads the family: \
             {new_reads}; the lost phone at the server: {}, at the toy: {}",
            if refused_before { "refused" } else { "ACCEPTED" },
            asked && unsigned_before,
            status_words(lost_server),
            if lost_at_toy { "refused" } else { "ADMITTED" }
        ),
    );
    Ok(())
}

/// The printed code after the toy has a guardian (the babysitter read the tag): refused.
fn printed_code_after_guardian(
    n: &mut Narrator,
    toy: &mut ToyEnd,
    code: &PairingCode,
) -> Result<()> {
    let mut rng = OsRng;
    let babysitter = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut sitters_phone: PhoneEnd =
        PhoneDriver::new(Phone::new(babysitter), DriverConfig::default());
    let sitter_air = connect(&mut sitters_phone, toy);
    let button = toy.endpoint_mut().press_pair_button(sitter_air.now());
    let button_refused = matches!(button, Err(toyseal_pairing::Error::NotPairable));
    sitters_phone
        .endpoint_mut()
        .pair(code, PairingExpectations::default(), &mut rng)?;
    let p = run_until_idle(&mut sitters_phone, toy, &sitter_air, &mut rng)?;
    let sitter = pairing_failure(&p);
    n.check(
        "printed_code_after_guardian",
        Kind::Attack,
        "the babysitter pairs with the printed code from the tag",
        button_refused && sitter == Some(PhoneFailure::NotPairable) && paired_with(&p).is_none(),
        "refused: the toy has a guardian",
        format!(
            "pair button: {}; pairing with the printed code: {}",
            match &button {
                Ok(()) => "window opened".to_string(),
                Err(e) => e.to_string(),
            },
            failure_words(sitter)
        ),
    );
    Ok(())
}

/// An unsigned request for the family's envelopes: 401.
async fn unsigned_request(
    n: &mut Narrator,
    http: &reqwest::Client,
    list_url: &str,
    id: &EnvelopeId,
) -> Result<()> {
    let r = http.get(list_url).send().await?;
    let (status, body) = (r.status().as_u16(), r.text().await?);
    n.check(
        "unsigned_request",
        Kind::Attack,
        "unsigned request for the family's envelopes",
        status == 401 && !body.contains(&id.to_string()),
        format!("{status} {}", error_word(&body)),
        format!("body {body}"),
    );
    Ok(())
}

/// A cross-family read: the neighbours' family exists on the same server; dad asks for its
/// envelope. Returns that envelope (it must survive our family's deletion).
async fn cross_family_read(
    n: &mut Narrator,
    base: &str,
    dads_client: &Client,
    family: FamilyId,
) -> Result<Vec<u8>> {
    let mut rng = OsRng;
    let ng = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let nt = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
    let their_recovery = RecoveryKey::generate(&mut rng)?;
    let mut nv1 = RosterProposal::founding(
        FamilyId::generate(&mut rng),
        vec![ng.public().clone(), nt.public().clone()],
        *their_recovery.public(),
    )?
    .sign(&ng);
    nv1.cosign(&nt);
    nv1.cosign_recovery(&their_recovery);
    let neighbours = Client::new(base, ng)?.create_family(&nv1).await?;
    let theirs = neighbours.seal(
        &nt,
        SealOptions::default()
            .with_sequence(1)
            .with_created(DEMO_TIME),
        b"the neighbours' synthetic note",
        &mut rng,
    )?;
    let their_id = Client::new(base, nt.clone())?
        .upload(neighbours.family(), &theirs)
        .await?
        .id;
    let nonexistent = EnvelopeId::of(b"no such envelope");
    let read = status_of(dads_client.download(neighbours.family(), &their_id).await);
    let listed = status_of(dads_client.list(neighbours.family(), None, None).await);
    let missing = status_of(dads_client.download(family, &nonexistent).await);
    n.check(
        "cross_family_read",
        Kind::Attack,
        "dad (signed, a real member of his own family) reads the neighbours' envelope",
        read == Some(404) && listed == Some(404) && missing == Some(404),
        "404 not found, the same answer as for an id that does not exist",
        format!(
            "their envelope: {}; their listing: {}; a non-existent id: {}",
            status_words(read),
            status_words(listed),
            status_words(missing)
        ),
    );
    Ok(theirs)
}

/// A replayed request: dad's signed listing, captured and sent again: 401.
async fn replayed_request(
    n: &mut Narrator,
    http: &reqwest::Client,
    list_url: &str,
    host: &str,
    dad: &DeviceIdentity,
    family: FamilyId,
) -> Result<()> {
    let mut rng = OsRng;
    let path = api::envelopes_path(family);
    let h = sign_request(
        dad,
        &RequestTarget {
            method: "GET",
            authority: host,
            path: &path,
            query: None,
        },
        b"",
        unix_now(),
        60,
        &mut rng,
    )?;
    let send = || {
        http.get(list_url)
            .header("Content-Digest", &h.content_digest)
            .header("Signature-Input", &h.signature_input)
            .header("Signature", &h.signature)
            .send()
    };
    let first = send().await?.status().as_u16();
    let r = send().await?;
    let (replayed, body) = (r.status().as_u16(), r.text().await?);
    n.check(
        "replayed_request",
        Kind::Attack,
        "an attacker replays dad's captured signed request",
        first == 200 && replayed == 401,
        format!("{replayed} {}", error_word(&body)),
        format!("first delivery: {first}; the replay (same nonce): {replayed} {body}"),
    );
    Ok(())
}

/// Forged and truncated streams to dad's player: zero bytes released. The outsider's stream
/// names the toy as its sender (the toy's public key where the stranger's was); the others
/// are the toy's genuine envelope, one bit flipped or cut in half.
fn forged_stream(
    n: &mut Narrator,
    dad: &Arc<DeviceIdentity>,
    dads_roster: &Roster,
    recording: &[u8],
    envelope: &[u8],
    toy_public: &PublicIdentity,
) -> Result<()> {
    let mut rng = OsRng;
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let mut forged = toyseal_envelope::seal(
        &stranger,
        dads_roster.members(),
        &SealOptions::default().with_family(dads_roster.family(), dads_roster.version()),
        recording,
        &mut rng,
    )?;
    // The outsider names the toy as the sender: its public key where the stranger's was.
    let swapped = replace_all(
        &mut forged,
        stranger.public().signing_key(),
        toy_public.signing_key(),
    );
    let mut tampered = envelope.to_vec();
    let middle = tampered.len() / 2;
    if let Some(b) = tampered.get_mut(middle) {
        *b ^= 0x01;
    }
    let (half, _) = envelope.split_at(envelope.len() / 2);
    let truncated = half.to_vec();
    let mut results = Vec::new();
    let mut zero = swapped > 0;
    for (what, bytes) in [
        ("an outsider's stream naming the toy", &forged),
        ("one bit flipped", &tampered),
        ("cut in half", &truncated),
    ] {
        let (released, r) = play(dad, dads_roster, bytes);
        zero &= released == 0 && r.is_err();
        results.push(format!(
            "{what}: {released} bytes released, {}",
            r.err().map_or("COMPLETE".into(), |e| e.to_string())
        ));
    }
    n.check(
        "forged_stream",
        Kind::Attack,
        "forged, tampered and truncated streams played on dad's phone",
        zero,
        "zero bytes released to the player",
        results.join("; "),
    );
    Ok(())
}

/// A scan of the server's database file, its log and the blob directory (and the toy's
/// outbox) for the recording's plaintext: none, while the ciphertext is there.
fn storage_scan(
    n: &mut Narrator,
    server_dir: &Path,
    outbox: &Path,
    recording: &[u8],
    envelope: &[u8],
) -> Result<()> {
    let stored = files(server_dir);
    let stored_bytes: usize = stored.iter().map(|(_, b)| b.len()).sum();
    let mut needles: Vec<(&str, Vec<u8>)> = vec![
        ("the recording's marker", MARKER.to_vec()),
        ("the second note", SECOND_NOTE.to_vec()),
        ("the reply", REPLY.to_vec()),
    ];
    needles.extend(
        // 16 runs of samples (the first 64 bytes hold the WAV header).
        recording
            .chunks_exact(64)
            .skip(1)
            .take(16)
            .map(|c| ("64 bytes of audio", c.to_vec())),
    );
    let mut leaks: Vec<String> = stored
        .iter()
        .flat_map(|(p, b)| {
            needles
                .iter()
                .filter(|(_, s)| contains(b, s))
                .map(move |(what, _)| format!("{what} in {}", p.display()))
        })
        .collect();
    let outbox_files = files(outbox);
    leaks.extend(
        outbox_files
            .iter()
            .filter(|(_, b)| contains(b, MARKER) || contains(b, SECOND_NOTE))
            .map(|(p, _)| format!("plaintext in {}", p.display())),
    );
    let has_envelope = stored.iter().any(|(_, b)| contains(b, head(envelope)));
    n.check(
        "storage_scan",
        Kind::Attack,
        "dump the server's database file and blob directory (and the toy's outbox)",
        leaks.is_empty() && has_envelope && stored.len() >= 2,
        "no plaintext found: ciphertext only",
        format!(
            "{} files / {stored_bytes} bytes scanned for the markers, the reply and 16 runs of audio: {}; \
             the sealed envelope is there (ciphertext): {has_envelope}",
            stored.len() + outbox_files.len(),
            if leaks.is_empty() { "none found".into() } else { leaks.join(", ") }
        ),
    );
    Ok(())
}

/// The operator's attack on its own database: replaces `family`'s roster chain with `chain`
/// (the server's schema: one row per version, its bytes and hash).
async fn rewrite_chain(
    db: &sqlx::SqlitePool,
    family: FamilyId,
    chain: &[SignedRoster],
) -> Result<()> {
    let family = family.to_string();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM roster_versions WHERE family = $1")
        .bind(&family)
        .execute(&mut *tx)
        .await?;
    for (version, v) in (1i64..).zip(chain) {
        sqlx::query(
            "INSERT INTO roster_versions (family, version, bytes, hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(&family)
        .bind(version)
        .bind(v.encode())
        .bind(v.hash().to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs the link until idle; if the toy then asks its user for a confirmation (recording its
/// founder, co-signing a roster version), the parent makes the deliberate gesture at the toy
/// (a long hold: the demo's toy application calls `Toy::confirm`) and the link runs again.
fn confirmed_at_toy(
    phone: &mut PhoneEnd,
    toy: &mut ToyEnd,
    air: &MemoryLink,
    rng: &mut impl toyseal_core::CryptoRng,
) -> std::result::Result<Events, toyseal_ble::Error> {
    let mut p = run_until_idle(phone, toy, air, rng)?;
    if toy.endpoint().pending_confirmation().is_some() {
        let now = air.now();
        if toy.endpoint_mut().confirm(now).is_ok() {
            let more = run_until_idle(phone, toy, air, rng)?;
            p.phone.extend(more.phone);
            p.toy.extend(more.toy);
        }
    }
    Ok(p)
}

/// A fresh in-memory link between `phone` and `toy` (the toy drops whoever it was connected
/// to); returns the medium, which carries the eavesdropper's tap.
fn connect(phone: &mut PhoneEnd, toy: &mut ToyEnd) -> MemoryLink {
    let (central, peripheral) = MemoryLink::pair(MemoryLinkConfig::default().with_att_mtu(247));
    let medium = central.medium();
    phone.connect(central);
    toy.connect(peripheral);
    medium
}

fn sas_of(p: &Events) -> (Option<String>, Option<String>) {
    let phone = p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::Sas(s)) => Some(s.to_string()),
        _ => None,
    });
    let toy = p.toy.iter().find_map(|e| match e {
        DriverEvent::Endpoint(ToyEvent::Sas(s)) => Some(s.to_string()),
        _ => None,
    });
    (phone, toy)
}

fn session_opened(p: &Events) -> bool {
    p.phone
        .iter()
        .any(|e| matches!(e, DriverEvent::Endpoint(PhoneEvent::SessionOpened(_))))
}

fn pairing_failure(p: &Events) -> Option<PhoneFailure> {
    p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(f)) => Some(*f),
        _ => None,
    })
}

fn paired_with(p: &Events) -> Option<PublicIdentity> {
    p.toy.iter().find_map(|e| match e {
        DriverEvent::Endpoint(ToyEvent::Paired { phone, .. }) => Some(phone.clone()),
        _ => None,
    })
}

/// The version `version` the toy sent back co-signed.
fn returned_roster(p: &Events, version: u64) -> Option<SignedRoster> {
    p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::Rosters(r)) => r
            .iter()
            .find(|r| r.proposal().version() == version)
            .cloned(),
        _ => None,
    })
}

fn signer_count(v: &SignedRoster) -> usize {
    v.signers().count()
}

fn failure_words(f: Option<PhoneFailure>) -> &'static str {
    match f {
        None => "no failure reported",
        Some(PhoneFailure::NotPairable) => "not pairable",
        Some(PhoneFailure::Busy) => "busy",
        Some(PhoneFailure::Authentication) => "authentication failed",
        Some(PhoneFailure::WrongPeer) => "wrong peer",
        Some(PhoneFailure::Interrupted) => "interrupted",
        Some(_) => "refused",
    }
}

/// The HTTP status a client call ended with: `None` if it succeeded (or failed otherwise).
fn status_of<T>(r: std::result::Result<T, toyseal_cloud::Error>) -> Option<u16> {
    match r {
        Err(toyseal_cloud::Error::Status { status, .. }) => Some(status),
        _ => None,
    }
}

fn status_words(s: Option<u16>) -> String {
    match s {
        Some(401) => "401 unauthenticated".into(),
        Some(403) => "403 forbidden".into(),
        Some(404) => "404 not found".into(),
        Some(400) => "400 refused".into(),
        Some(other) => format!("HTTP {other}"),
        None => "ACCEPTED".into(),
    }
}

/// The problem kind (its slug, e.g. `unauthenticated`) of the server's problem-details
/// error body (RFC 9457).
fn error_word(body: &str) -> String {
    serde_json::from_str::<toyseal_cloud::api::Problem>(body)
        .ok()
        .and_then(|p| p.kind())
        .map(|k| k.slug().to_owned())
        .unwrap_or_default()
}

/// Plays `bytes` as a phone's player does: piece by piece into an opener; returns how many
/// content bytes it released and how it ended.
fn play(
    me: &Arc<DeviceIdentity>,
    roster: &Roster,
    bytes: &[u8],
) -> (usize, std::result::Result<(), toyseal_envelope::Error>) {
    let mut opener = roster.opener(Arc::clone(me), OpenOptions::default());
    let mut released = 0usize;
    for piece in bytes.chunks(4096) {
        if let Err(e) = opener.push_with(piece, |c| released += c.len()) {
            return (released, Err(e));
        }
    }
    (released, opener.finish().map(|_| ()))
}

fn replace_all(haystack: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    let mut count = 0;
    if from.is_empty() || from.len() != to.len() {
        return 0;
    }
    let mut i = 0;
    while i + from.len() <= haystack.len() {
        if haystack.get(i..i + from.len()) == Some(from) {
            if let Some(w) = haystack.get_mut(i..i + from.len()) {
                w.copy_from_slice(to);
            }
            count += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    count
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A synthetic "voice": 16 kHz mono PCM WAV of gliding tones in syllable-like bursts, with a
/// marker phrase appended so the storage scan has something unmistakable to look for.
fn synthetic_voice_wav(seconds: u32) -> Vec<u8> {
    let rate = 16_000u32;
    let samples = rate * seconds;
    let mut wav = Vec::with_capacity(44 + samples as usize * 2 + MARKER.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for v in [
        16u32.to_le_bytes().as_slice(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
    ] {
        wav.extend_from_slice(v);
    }
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples * 2).to_le_bytes());
    for n in 0..samples {
        let t = f64::from(n) / f64::from(rate);
        let pitch = 180.0 + 60.0 * (t * 1.3).sin();
        let envelope = (t * 4.0 * std::f64::consts::PI).sin().abs();
        let v = (t * pitch * 2.0 * std::f64::consts::PI).sin() * envelope * 12_000.0;
        wav.extend_from_slice(&(v as i16).to_le_bytes());
    }
    wav.extend_from_slice(MARKER);
    wav
}

/// The first 256 bytes (an envelope's header and first ciphertext: unique to it).
fn head(bytes: &[u8]) -> &[u8] {
    bytes.get(..256).unwrap_or(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t64_data_dir_is_marked_and_only_the_demos_own_entries_are_ever_removed() {
        let root = tempfile::tempdir().unwrap();
        // A new directory: created and marked.
        let data = root.path().join("new");
        prepare_data_dir(&data).unwrap();
        assert!(data.join(DATA_MARKER).is_file());
        // An earlier run's folders go; a file the user put there since stays.
        std::fs::create_dir_all(data.join("server/blobs")).unwrap();
        std::fs::create_dir_all(data.join("toy-outbox")).unwrap();
        std::fs::write(data.join("notes.txt"), b"kept").unwrap();
        prepare_data_dir(&data).unwrap();
        assert!(!data.join("server").exists() && !data.join("toy-outbox").exists());
        assert_eq!(std::fs::read(data.join("notes.txt")).unwrap(), b"kept");
        // An empty directory is taken and marked.
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        prepare_data_dir(&empty).unwrap();
        assert!(empty.join(DATA_MARKER).is_file());
        // An unmarked directory with anything in it is refused and left as it was.
        let mine = root.path().join("mine");
        std::fs::create_dir_all(mine.join("server")).unwrap();
        let e = prepare_data_dir(&mine).unwrap_err();
        assert_eq!(e.exit() as u8, 2, "{e}");
        assert!(mine.join("server").is_dir() && !mine.join(DATA_MARKER).exists());
    }
}
