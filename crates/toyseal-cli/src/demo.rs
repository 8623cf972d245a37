//! The whole story on one machine, on embedded defaults: a toy and two parents' phones, the
//! reference server on a SQLite file and a blob directory, and an in-memory BLE link.
//!
//! 1. factory: the toy's identity, its printed pairing code and the maker's attestation;
//! 2. mum's phone pairs with the toy over BLE (SPAKE2 with the code), then reconnects (Noise KK);
//! 3. the family roster: v1 signed by mum and co-signed by the toy over the session, uploaded;
//!    v2 adds dad, signed by mum; the toy follows the chain;
//! 4. the toy records a synthetic voice note, seals it to the family, queues it in its outbox and
//!    uploads it with signed requests;
//! 5. dad's phone lists, downloads, verifies the roster chain and opens it;
//! 6. mum's reply travels to the toy over the BLE session, sealed;
//! 7. the attacks that matter are tried and fail; the storage is scanned for plaintext;
//! 8. mum deletes the message and the storage is scanned again.
//!
//! Run: `toyseal demo` (from a checkout: `cargo run -p toyseal-cli -- demo`).

use crate::cli::DemoArgs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toyseal_ble::{
    DriverConfig, DriverEvent, MemoryLink, MemoryLinkConfig, PhoneDriver, ToyDriver, run_until_idle,
};
use toyseal_cloud::{Client, api::EnvelopeId, outbox::Outbox};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_envelope::{Metadata, OpenOptions, SealOptions};
use toyseal_pairing::{
    EnvelopeEvent, MakerKey, MemoryFailureStore, PairingCode, PairingExpectations, Phone,
    PhoneEvent, QrPayload, Toy, ToyEvent,
};
use toyseal_roster::{Invitation, Roster, RosterProposal};
use toyseal_server::{Config, Server};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// When the demo's envelopes say they were sealed (Unix seconds; a fixed synthetic time).
const DEMO_TIME: u64 = 1_767_225_600;

/// Prints a line; a closed stdout is not an error worth failing the demo for.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

const MARKER: &[u8] = b"MARKER: goodnight from the synthetic bear";

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

/// Runs the demo; any failed step or property is an error.
pub(crate) fn run(args: &DemoArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(story(&args.data))
}

async fn story(data: &Path) -> Result<()> {
    let mut rng = OsRng;
    let data = data.to_path_buf();
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;

    // ── The reference server on embedded defaults: a SQLite file and a blob directory. ──
    let server = Server::builder(Config::embedded(data.join("server")))
        .build()
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    say!("server: {base}, data in {}", data.join("server").display());

    // ── 1. Factory. ──
    let maker = MakerKey::generate(&mut rng)?;
    let toy_id = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
    let attestation = maker.attest(toy_id.public());
    let code = PairingCode::generate(8, &mut rng);
    let qr = QrPayload {
        code: code.clone(),
        fingerprint: toy_id.device_id(),
    };
    let toy_public = toy_id.public().clone();
    let mut toy = ToyDriver::new(
        Toy::builder(toy_id.clone(), code, MemoryFailureStore::default())
            .attestation(attestation)
            .build()?,
        DriverConfig::default(),
    );
    let mum = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
    let mut mums_phone = PhoneDriver::new(Phone::new(mum.clone()), DriverConfig::default());
    say!(
        "toy {} (maker-attested, QR on the tag)",
        toy_public.device_id()
    );
    say!("mum {} / dad {}", mum.device_id(), dad.device_id());

    // ── 2. Pairing over BLE, then a Noise KK session. ──
    let link_config = MemoryLinkConfig::default().with_att_mtu(247);
    let (central, peripheral) = MemoryLink::pair(link_config.clone());
    let link = central.medium();
    mums_phone.connect(central);
    toy.connect(peripheral);
    toy.endpoint_mut().press_pair_button(link.now())?;
    let scanned = QrPayload::parse(&qr.to_qr_text())?;
    let expect = PairingExpectations {
        fingerprint: Some(scanned.fingerprint),
        maker_roots: vec![maker.public_key()],
        require_attestation: true,
    };
    mums_phone
        .endpoint_mut()
        .pair(&scanned.code, expect, &mut rng)?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &link, &mut rng)?;
    let paired = p
        .phone
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Paired(t)) => Some(t.clone()),
            _ => None,
        })
        .ok_or("pairing failed")?;
    say!(
        "paired over BLE: toy identity matches its QR code, maker attestation valid: {}",
        paired.attested
    );
    mums_phone.disconnect();
    toy.disconnect();
    let (central, peripheral) = MemoryLink::pair(link_config);
    let link = central.medium();
    mums_phone.connect(central);
    toy.connect(peripheral);
    mums_phone
        .endpoint_mut()
        .open_session(&paired.identity, &mut rng)?;
    run_until_idle(&mut mums_phone, &mut toy, &link, &mut rng)?;
    say!("reconnected: Noise KK session with the pinned keys");

    // ── 3. The roster. v1 {mum, toy}: mum signs, the toy co-signs over the session. ──
    let family = FamilyId::generate(&mut rng);
    let v1 = RosterProposal::founding(family, vec![mum.public().clone(), toy_public.clone()])?
        .sign(&mum);
    // The toy co-signs version 1 (its rule, in toyseal-pairing) and sends it back.
    mums_phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v1), link.now())?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &link, &mut rng)?;
    let cosigned = p
        .phone
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Rosters(r)) => r.first().cloned(),
            _ => None,
        })
        .ok_or("no co-signed roster came back")?;
    let v1 = cosigned;
    let mums_client = Client::new(&base, mum.clone())?;
    let roster_v1 = mums_client.create_family(&v1).await?;
    say!("family {family} created on the server from roster v1 (mum + toy, both signed)");

    // v2 adds dad: mum signs, dad proves possession of his key, and the toy co-signs over
    // mum's live session (physical presence: one phone alone changes nothing). The toy sends
    // the co-signed version back; mum publishes it; server and toy verify the chain.
    let mut v2 = RosterProposal::next(
        &roster_v1,
        vec![
            mum.public().clone(),
            dad.public().clone(),
            toy_public.clone(),
        ],
    )?
    .sign(&mum);
    v2.cosign(&dad);
    mums_phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v2), link.now())?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &link, &mut rng)?;
    let v2 = p
        .phone
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Rosters(r)) => {
                r.iter().find(|r| r.proposal().version() == 2).cloned()
            }
            _ => None,
        })
        .ok_or("the toy did not co-sign roster v2")?;
    mums_client.update_roster(&v2).await?;
    // Mum's screen shows dad a QR code: the invitation anchors him at v2.
    let invitation = Invitation::new(&v2, Some(&base))?.to_string();
    let toys_roster = Roster::verify_founding(v1.clone())?.verify_next(v2.clone())?;
    mums_phone
        .endpoint_mut()
        .set_rosters(vec![v1.clone(), v2.clone()]);
    if toy.endpoint().roster() != Some(&toys_roster) {
        return Err("the toy did not follow the chain".into());
    }
    say!(
        "roster v2 adds dad (signed by mum and the toy, and by dad); toy and server follow the chain"
    );

    // ── 4. The toy records, seals to the family, queues and uploads. ──
    let recording = synthetic_voice_wav(3);
    let metadata = Metadata::default()
        .with_content_type("audio/wav")
        .with_codec("pcm_s16le")
        .with_duration_ms(3000);
    // The toy's first envelope: sequence 1 (a real toy takes it from its SequenceStore).
    let envelope = toys_roster.seal(
        &toy_id,
        SealOptions::default()
            .with_metadata(metadata)
            .with_sequence(1)
            .with_created(DEMO_TIME),
        &recording,
        &mut rng,
    )?;
    let outbox = Outbox::open(data.join("toy-outbox"))?;
    outbox.enqueue(family, &envelope)?;
    let toys_client = Client::new(&base, toy_id.clone())?;
    let report = outbox.upload_all(&toys_client).await?;
    say!(
        "toy sealed {} bytes of audio into a {}-byte envelope for {} devices; uploaded: {report:?}",
        recording.len(),
        envelope.len(),
        toys_roster.members().len() - 1
    );
    let id = EnvelopeId::of(&envelope);

    // ── 5. Dad's phone: list, download, verify the roster chain, open. ──
    let dads_client = Client::new(&base, dad.clone())?;
    // Verified chain through dad's anchor, not trusted.
    let invitation: Invitation = invitation.parse()?;
    let dads_roster = dads_client.roster(invitation.anchor()).await?;
    let page = dads_client.list(family, None, None).await?;
    let first = page.items.first().ok_or("the family's listing is empty")?;
    let downloaded = dads_client.download(family, &first.id).await?;
    let (played, opened) = dads_roster.open(&dad, &downloaded, OpenOptions::default())?;
    say!(
        "dad's phone opened it: {} bytes, identical: {}, {:?}, {} ms, sender is the toy: {}",
        played.len(),
        played == recording,
        opened.metadata.content_type.as_deref().unwrap_or("?"),
        opened.metadata.duration_ms.unwrap_or(0),
        opened.sender == toy_public
    );

    // ── 6. Mum replies to the toy over the BLE session. ──
    let reply = toys_roster.seal(
        &mum,
        SealOptions::default()
            .with_sequence(1)
            .with_created(DEMO_TIME + 60),
        b"Goodnight, sleep tight!",
        &mut rng,
    )?;
    mums_phone.endpoint_mut().send_envelope(reply, link.now())?;
    let p = run_until_idle(&mut mums_phone, &mut toy, &link, &mut rng)?;
    let received = p
        .toy
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(ToyEvent::Envelope(EnvelopeEvent::Received {
                envelope, ..
            })) => Some(envelope.clone()),
            _ => None,
        })
        .ok_or("the reply did not arrive")?;
    let (words, _) = toys_roster.open(&toy_id, &received, OpenOptions::default())?;
    say!(
        "the toy opened mum's reply: {:?}",
        String::from_utf8_lossy(&words)
    );

    // ── 7. Attacks. ──
    say!();
    let anonymous = reqwest_get(&format!("{base}/v1/families/{family}/envelopes")).await?;
    say!("anonymous GET of the family's envelopes: HTTP {anonymous}");
    let stranger = Client::new(&base, DeviceIdentity::generate(Role::Guardian, &mut rng))?;
    say!(
        "a stranger's signed list: {}",
        outcome(stranger.list(family, None, None).await)
    );
    let outsider_family = FamilyId::generate(&mut rng);
    say!(
        "dad asks for another family's envelopes: {}",
        outcome(dads_client.list(outsider_family, None, None).await)
    );
    say!(
        "the toy tries to delete the message (toys may not): {}",
        outcome(toys_client.delete_envelope(family, &id).await)
    );
    let evil = RosterProposal::next(&dads_roster, vec![mum.public().clone(), toy_public.clone()])?
        .sign(&toy_id);
    say!(
        "the toy uploads a roster without a guardian's signature (no quorum): {}",
        outcome(toys_client.update_roster(&evil).await)
    );
    let stored = files(&data.join("server"));
    let leaked = stored.iter().any(|(_, bytes)| {
        contains(bytes, MARKER)
            || contains(bytes, recording.get(1000..1064).unwrap_or_default())
            || contains(bytes, b"Goodnight")
    });
    let outbox_leak = files(&data.join("toy-outbox"))
        .iter()
        .any(|(_, b)| contains(b, MARKER));
    say!(
        "scanned {} files of the server's database and blob store: plaintext or marker found: {leaked}; in the outbox: {outbox_leak}",
        stored.len()
    );

    // ── 8. Deletion. ──
    mums_client.delete_envelope(family, &id).await?;
    let hex = id.to_string();
    let remaining = files(&data.join("server"))
        .iter()
        .filter(|(p, b)| {
            p.to_string_lossy().contains(&hex)
                || contains(b, envelope.get(..256).unwrap_or_default())
        })
        .count();
    say!("mum deleted the message: files still holding it: {remaining}");
    say!(
        "dad downloads it again: {}",
        outcome(dads_client.download(family, &id).await)
    );

    let _ = stop.send(());
    serving.await??;
    if leaked || outbox_leak || remaining != 0 || played != recording || anonymous != 401 {
        return Err("a property failed".into());
    }
    say!(
        "\nproved: only the family's devices read the recording; the toy is genuine and paired \
         with the code; the server holds ciphertext it cannot read, change or forge, refuses \
         strangers and other families, and forgets what a guardian deletes."
    );
    Ok(())
}

async fn reqwest_get(url: &str) -> Result<u16> {
    Ok(reqwest::get(url).await?.status().as_u16())
}

fn outcome<T>(r: std::result::Result<T, toyseal_cloud::Error>) -> String {
    match r {
        Ok(_) => "ACCEPTED (this would be a bug)".into(),
        Err(e) => format!("refused ({e})"),
    }
}
