//! The commands that talk to a toyseal server through the signed async client
//! (`toyseal_cloud::Client`): `family create|update|show|delete`, `upload`, `list`, `fetch`,
//! `delete`, `restore`, `deleted`, `erase` and `join`.
//!
//! Settings: each of server URL, key file, family, overall time-out, connect time-out and
//! tries comes from its flag, else its environment variable (clap folds both in), else the
//! client config file (`--config` / `TOYSEAL_CLIENT_CONFIG`, JSON), else the default (30 s,
//! 10 s, 5 tries). `TOYSEAL_CONFIG` is the server's (`toyseal serve`), whose
//! file refuses unknown keys, so one variable cannot serve both.

use crate::cli::{
    ClientArgs, DeleteArgs, EraseArgs, FamilyArg, FamilyCommand, FetchArgs, JoinArgs, ListArgs,
    TrustArgs, UploadArgs,
};
use crate::error::{Error, Place};
use crate::files::{Input, Overwrite, named, read_small_text, write_whole};
use crate::keygen::print_line;
use crate::keys::read_identity;
use crate::roster::{View, json, parse_anchor, read_roster, render};
use serde::Deserialize;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toyseal_cloud::api::{EnvelopeId, EnvelopeSummary, PendingDeletion};
use toyseal_cloud::{Client, ClientConfig, Deletion};
use toyseal_core::FamilyId;
use toyseal_envelope::OpenOptions;
use toyseal_roster::{Anchor, EnvelopeErasure, FamilyDeletion, Invitation, MAX_ERASURE_IDS};

/// Largest client config file accepted.
const MAX_CONFIG_FILE: usize = 64 * 1024;

/// The client config file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    key: Option<PathBuf>,
    family: Option<String>,
    timeout: Option<u64>,
    connect_timeout: Option<u64>,
    tries: Option<u32>,
}

/// Server, key and family after flag > environment > config file.
#[derive(Debug, Default)]
struct Settings {
    server: Option<String>,
    key: Option<PathBuf>,
    family: Option<FamilyId>,
    /// The config file's server alone (`join` ranks the invitation's above it).
    file_server: Option<String>,
    /// Time-outs and tries.
    config: ClientConfig,
}

impl Settings {
    fn resolve(client: &ClientArgs, family: Option<&FamilyArg>) -> Result<Self, Error> {
        let (file, dir) = match &client.config {
            Some(path) => (read_config(path)?, path.parent().map(Path::to_path_buf)),
            None => (FileConfig::default(), None),
        };
        let place = || Place::File(client.config.clone().unwrap_or_default());
        let file_family = file
            .family
            .as_deref()
            .map(|f| {
                f.parse::<FamilyId>().map_err(|_| Error::Config {
                    place: place(),
                    reason: "\"family\" is not a family id (32 hex digits)".into(),
                })
            })
            .transpose()?;
        // A relative key path in the file is relative to the file, not to the working directory.
        let file_key = file.key.map(|k| match &dir {
            Some(d) if k.is_relative() => d.join(k),
            _ => k,
        });
        let mut config = ClientConfig::default();
        let secs = |flag: Option<u64>, file: Option<u64>, key: &str| match flag.or(file) {
            Some(0) => Err(Error::Config {
                place: place(),
                reason: format!("\"{key}\" must be at least 1 second"),
            }),
            Some(s) => Ok(Some(Duration::from_secs(s))),
            None => Ok(None),
        };
        if let Some(t) = secs(client.timeout, file.timeout, "timeout")? {
            // A try may take the whole operation's time (a large upload on a slow link).
            config.timeout = t;
            config.request_timeout = t;
        }
        if let Some(t) = secs(
            client.connect_timeout,
            file.connect_timeout,
            "connect_timeout",
        )? {
            config.connect_timeout = t;
        }
        match client.tries.or(file.tries) {
            Some(0) => {
                return Err(Error::Config {
                    place: place(),
                    reason: "\"tries\" must be at least 1".into(),
                });
            }
            Some(n) => config.max_attempts = n,
            None => {}
        }
        Ok(Self {
            server: client.server.clone().or_else(|| file.server.clone()),
            key: client.identity.clone().or(file_key),
            family: family.and_then(|f| f.family).or(file_family),
            file_server: file.server,
            config,
        })
    }

    /// The signing client for the resolved server and key.
    fn client(&self) -> Result<Client, Error> {
        let server = self.server.as_deref().ok_or_else(|| {
            Error::Usage(
                "no server: give --server URL, set TOYSEAL_SERVER, or put \"server\" in the \
                 client config file"
                    .into(),
            )
        })?;
        client_for(server, self.key.as_deref(), &self.config)
    }

    fn family(&self) -> Result<FamilyId, Error> {
        self.family.ok_or_else(|| {
            Error::Usage(
                "no family: give --family ID, set TOYSEAL_FAMILY, or put \"family\" in the \
                 client config file"
                    .into(),
            )
        })
    }
}

fn read_config(path: &Path) -> Result<FileConfig, Error> {
    let (place, text) = read_small_text(Some(path), MAX_CONFIG_FILE)?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        place,
        reason: e.to_string(),
    })
}

fn client_for(server: &str, key: Option<&Path>, config: &ClientConfig) -> Result<Client, Error> {
    let key = key.ok_or_else(|| {
        Error::Usage(
            "no key file: give -i KEYFILE, set TOYSEAL_KEY, or put \"key\" in the client \
             config file"
                .into(),
        )
    })?;
    let identity = read_identity(Some(key))?;
    Client::with_config(server, identity, config.clone())
        .map_err(|e| Error::Usage(format!("--server: {e}")))
}

/// Runs `fut` on a small single-threaded runtime: one command, one request at a time.
fn block_on<F: Future>(fut: F) -> Result<F::Output, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Cloud {
            what: "starting the async runtime".into(),
            source: toyseal_cloud::Error::Io(e),
        })?;
    Ok(rt.block_on(fut))
}

/// Maps a client error, naming the operation.
fn cloud(what: impl Into<String>) -> impl FnOnce(toyseal_cloud::Error) -> Error {
    let what = what.into();
    move |source| Error::Cloud { what, source }
}

/// Runs one `toyseal family` subcommand.
pub fn family(cmd: &FamilyCommand) -> Result<(), Error> {
    match cmd {
        FamilyCommand::Create { client, roster } => {
            let client = Settings::resolve(client, None)?.client()?;
            let (place, signed) = read_roster(named(Some(roster)))?;
            let created = block_on(client.create_family(&signed))?
                .map_err(cloud(format!("family create {place}")))?;
            crate::note(&format!(
                "family {} created; anchor of version 1: {}",
                created.family(),
                Anchor::of(created.signed())
            ));
            print_line(
                &mut io::stdout(),
                Place::Stdout,
                &created.family().to_string(),
            )
        }
        FamilyCommand::Update { client, roster } => {
            let client = Settings::resolve(client, None)?.client()?;
            let (place, signed) = read_roster(named(Some(roster)))?;
            block_on(client.update_roster(&signed))?
                .map_err(cloud(format!("family update {place}")))?;
            crate::note(&format!(
                "family {}: version {} stored",
                signed.proposal().family(),
                signed.proposal().version()
            ));
            Ok(())
        }
        FamilyCommand::Show {
            client,
            trust,
            json,
            output,
            force,
        } => {
            let client = Settings::resolve(client, None)?.client()?;
            let anchor = trusted_anchor(trust)?;
            let roster = block_on(client.roster(&anchor))?.map_err(cloud("family show"))?;
            if let Some(out) = named(output.as_deref()) {
                write_whole(
                    Some(out),
                    &roster.signed().encode(),
                    true,
                    Overwrite::from_force(*force),
                )?;
            }
            render(&View::of(roster.signed(), true), *json)
        }
        FamilyCommand::Delete {
            client,
            trust,
            cosign,
            recovery,
        } => {
            let client = Settings::resolve(client, None)?.client()?;
            let anchor = trusted_anchor(trust)?;
            let mut cosigners = Vec::with_capacity(cosign.len());
            for key in cosign {
                cosigners.push(read_identity(Some(key))?);
            }
            let recovery = recovery
                .as_deref()
                .map(|p| crate::keys::read_recovery_key(Some(p)))
                .transpose()?;
            block_on(async {
                let roster = client
                    .roster(&anchor)
                    .await
                    .map_err(cloud("family delete"))?;
                let mut deletion = FamilyDeletion::new(&roster);
                deletion.cosign(client.identity());
                for c in &cosigners {
                    deletion.cosign(c);
                }
                if let Some(k) = &recovery {
                    deletion.cosign_recovery(k);
                }
                // Checked here first, so a missing quorum is named before anything is sent.
                roster
                    .verify_deletion(&deletion)
                    .map_err(|source| Error::Roster {
                        what: "the deletion statement".into(),
                        source,
                    })?;
                client
                    .delete_family(&deletion)
                    .await
                    .map_err(cloud("family delete"))?;
                crate::note(&format!("family {} deleted", roster.family()));
                Ok::<(), Error>(())
            })?
        }
    }
}

/// The anchor a `--anchor` text or a `--roster` file names.
fn trusted_anchor(trust: &TrustArgs) -> Result<Anchor, Error> {
    match (&trust.anchor, &trust.roster) {
        (Some(text), _) => parse_anchor(text),
        (None, Some(file)) => Ok(Anchor::of(&read_roster(named(Some(file)))?.1)),
        (None, None) => Err(Error::Usage("give --anchor ANCHOR or --roster FILE".into())),
    }
}

/// `toyseal upload`.
pub fn upload(args: &UploadArgs) -> Result<(), Error> {
    let settings = Settings::resolve(&args.client, Some(&args.family))?;
    let inputs: Vec<Option<&Path>> = if args.inputs.is_empty() {
        vec![None]
    } else {
        args.inputs.iter().map(|p| named(Some(p))).collect()
    };
    let key_from_stdin = settings
        .key
        .as_deref()
        .is_some_and(|k| named(Some(k)).is_none());
    if inputs.iter().filter(|i| i.is_none()).count() + usize::from(key_from_stdin) > 1 {
        return Err(Error::Usage(
            "standard input can feed only one of the key file and one envelope".into(),
        ));
    }
    let client = settings.client()?;
    // The server's limit first (one unsigned request): an envelope over it is refused before a
    // byte of it is sent, with both sizes named.
    let server_limit = block_on(client.server_limits())?
        .map_err(cloud("upload: asking the server's limits"))?
        .max_body_bytes;
    let local_limit = args.max_size.unwrap_or(server_limit);
    // Every envelope is read and verified before the first upload: a bad file in the list
    // uploads nothing.
    let mut envelopes = Vec::with_capacity(inputs.len());
    for input in inputs {
        if let Some(path) = input
            && let Ok(meta) = std::fs::metadata(path)
            && meta.len() > server_limit
        {
            let size = meta.len();
            return Err(Error::Cloud {
                what: format!("upload {}", path.display()),
                source: toyseal_cloud::Error::TooLarge {
                    size,
                    limit: server_limit,
                },
            });
        }
        let (place, bytes) = read_envelope(input, local_limit)?;
        let header =
            toyseal_envelope::verify(&bytes, OpenOptions::default().with_size_limit(local_limit))
                .map_err(|source| Error::Envelope {
                place: place.clone(),
                source,
            })?;
        let family = match (header.header().family(), settings.family) {
            (Some(named), Some(given)) if named != given => {
                return Err(Error::Usage(format!(
                    "{place}: the envelope is sealed for family {named}, not {given}"
                )));
            }
            (Some(named), _) => named,
            (None, Some(given)) => given,
            (None, None) => {
                return Err(Error::Usage(format!(
                    "{place}: the envelope names no family: give --family ID"
                )));
            }
        };
        envelopes.push((place, family, bytes));
    }
    block_on(async {
        for (place, family, bytes) in &envelopes {
            let progress = Progress::upload(
                !args.no_progress,
                format!("uploading {place}"),
                bytes.len() as u64,
            );
            let bar = progress.0.clone();
            let up = client
                .upload_with_progress(
                    *family,
                    bytes,
                    std::sync::Arc::new(move |sent| bar.set_position(sent)),
                )
                .await
                .map_err(cloud(format!("upload {place}")));
            progress.finish();
            print_line(&mut io::stdout(), Place::Stdout, &up?.id.to_string())?;
        }
        Ok::<(), Error>(())
    })?
}

/// Reads a whole envelope of at most `limit` bytes.
fn read_envelope(path: Option<&Path>, limit: u64) -> Result<(Place, Vec<u8>), Error> {
    let input = Input::open(path)?;
    let place = input.place.clone();
    let mut bytes = Vec::new();
    input
        .reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(place.clone(), e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Envelope {
            place,
            source: toyseal_envelope::Error::TooLarge { limit },
        });
    }
    Ok((place, bytes))
}

/// `toyseal list`: every page, oldest first.
pub fn list(args: &ListArgs) -> Result<(), Error> {
    let settings = Settings::resolve(&args.client, Some(&args.family))?;
    let family = settings.family()?;
    let client = settings.client()?;
    let items: Vec<EnvelopeSummary> = block_on(async {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = client
                .list(family, cursor.as_deref(), None)
                .await
                .map_err(cloud("list"))?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok::<_, Error>(items),
            }
        }
    })??;
    let text = if args.json {
        json(&items)?
    } else {
        items
            .iter()
            .map(|e| {
                format!(
                    "{}  {:>10}  {}  #{}  v{}  {}",
                    e.id, e.size, e.sender, e.sequence, e.roster_version, e.received_at
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if text.is_empty() {
        return Ok(());
    }
    print_line(&mut io::stdout(), Place::Stdout, &text)
}

fn parse_id(text: &str) -> Result<EnvelopeId, Error> {
    text.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "{text:?} is not an envelope id (64 lower-case hex digits, from `toyseal list`)"
        ))
    })
}

/// `toyseal fetch`: download (hash-checked by the client), verify, then write atomically.
pub fn fetch(args: &FetchArgs) -> Result<(), Error> {
    let settings = Settings::resolve(&args.client, Some(&args.family))?;
    let id = parse_id(&args.id)?;
    let family = settings.family()?;
    let client = settings.client()?;
    let what = format!("fetch {id}");
    let progress = Progress::bytes(!args.no_progress, format!("fetching {id}"));
    let mut bytes = Vec::new();
    let got = block_on(client.download_with(family, &id, |piece| {
        if bytes.len() as u64 + piece.len() as u64 > args.max_size {
            return Err(toyseal_cloud::Error::Envelope(
                toyseal_envelope::Error::TooLarge {
                    limit: args.max_size,
                },
            ));
        }
        bytes.extend_from_slice(piece);
        progress.advance(piece.len());
        Ok(())
    }))?;
    progress.finish();
    got.map_err(cloud(what.clone()))?;
    let header = toyseal_envelope::verify(
        &bytes,
        OpenOptions::default().with_size_limit(args.max_size),
    )
    .map_err(|e| Error::Cloud {
        what: what.clone(),
        source: toyseal_cloud::Error::Envelope(e),
    })?;
    if header.header().family() != Some(family) {
        return Err(Error::Cloud {
            what,
            source: toyseal_cloud::Error::Integrity("the envelope names another family"),
        });
    }
    write_whole(
        named(args.output.as_deref()),
        &bytes,
        true,
        Overwrite::from_force(args.force),
    )
}

/// `toyseal delete`.
pub fn delete(args: &DeleteArgs) -> Result<(), Error> {
    let settings = Settings::resolve(&args.client, Some(&args.family))?;
    let ids = args
        .ids
        .iter()
        .map(|t| parse_id(t))
        .collect::<Result<Vec<_>, _>>()?;
    let family = settings.family()?;
    let client = settings.client()?;
    block_on(async {
        for id in &ids {
            match client
                .delete_envelope(family, id)
                .await
                .map_err(cloud(format!("delete {id}")))?
            {
                Deletion::Pending(p) => crate::note(&format!(
                    "{id}: deleted softly; any guardian can `toyseal restore` it until {} \
                     (Unix seconds), when the server erases it",
                    p.erase_at
                )),
                _ => crate::note(&format!("{id}: erased")),
            }
        }
        Ok::<(), Error>(())
    })?
}

/// `toyseal restore`.
pub fn restore(args: &DeleteArgs) -> Result<(), Error> {
    let settings = Settings::resolve(&args.client, Some(&args.family))?;
    let ids = args
        .ids
        .iter()
        .map(|t| parse_id(t))
        .collect::<Result<Vec<_>, _>>()?;
    let family = settings.family()?;
    let client = settings.client()?;
    block_on(async {
        for id in &ids {
            client
                .restore_envelope(family, id)
                .await
                .map_err(cloud(format!("restore {id}")))?;
            crate::note(&format!("{id}: restored"));
        }
        Ok::<(), Error>(())
    })?
}

/// `toyseal deleted`: every page of pending soft deletions.
pub fn deleted(args: &ListArgs) -> Result<(), Error> {
    let settings = Settings::resolve(&args.client, Some(&args.family))?;
    let family = settings.family()?;
    let client = settings.client()?;
    let items: Vec<PendingDeletion> = block_on(async {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = client
                .deletions(family, cursor.as_deref(), None)
                .await
                .map_err(cloud("deleted"))?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok::<_, Error>(items),
            }
        }
    })??;
    let text = if args.json {
        json(&items)?
    } else {
        items
            .iter()
            .map(|p| {
                format!(
                    "{}  from {}  deleted by {} at {}  erased at {}",
                    p.id, p.sender, p.deleted_by, p.deleted_at, p.erase_at
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if text.is_empty() {
        return Ok(());
    }
    print_line(&mut io::stdout(), Place::Stdout, &text)
}

/// `toyseal erase`: an erasure statement under the current (verified) roster, signed by `-i`
/// and the co-signers, checked here, then submitted.
pub fn erase(args: &EraseArgs) -> Result<(), Error> {
    let client = Settings::resolve(&args.client, None)?.client()?;
    let anchor = trusted_anchor(&args.trust)?;
    let ids = args
        .ids
        .iter()
        .map(|t| parse_id(t))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > MAX_ERASURE_IDS {
        return Err(Error::Usage(format!(
            "at most {MAX_ERASURE_IDS} ids per erasure statement (run `toyseal erase` again \
             for the rest)"
        )));
    }
    let mut cosigners = Vec::with_capacity(args.cosign.len());
    for key in &args.cosign {
        cosigners.push(read_identity(Some(key))?);
    }
    block_on(async {
        let roster = client.roster(&anchor).await.map_err(cloud("erase"))?;
        let statement = |source| Error::Roster {
            what: "the erasure statement".into(),
            source,
        };
        let mut erasure = EnvelopeErasure::new(&roster, ids.iter().map(|id| *id.as_bytes()))
            .map_err(statement)?;
        erasure.cosign(client.identity());
        for c in &cosigners {
            erasure.cosign(c);
        }
        // Checked here first, so a missing quorum is named before anything is sent.
        roster.verify_erasure(&erasure).map_err(statement)?;
        client.erase(&erasure).await.map_err(cloud("erase"))?;
        crate::note(&format!(
            "family {}: the {} envelope(s) named are erased",
            roster.family(),
            ids.len()
        ));
        Ok::<(), Error>(())
    })?
}

/// `toyseal join`: follow the family's chain through the invitation's anchor.
pub fn join(args: &JoinArgs) -> Result<(), Error> {
    let text = if args.invitation == "-" {
        read_small_text(None, 4096)?.1
    } else {
        args.invitation.clone()
    };
    let invitation: Invitation = text.trim().parse().map_err(|source| Error::Roster {
        what: "the invitation".into(),
        source,
    })?;
    let settings = Settings::resolve(&args.client, None)?;
    // Flag and environment first, then the invitation's hint, then the config file.
    let server = args
        .client
        .server
        .as_deref()
        .or(invitation.server())
        .or(settings.file_server.as_deref())
        .ok_or_else(|| {
            Error::Usage(
                "no server: the invitation names none; give --server URL or set TOYSEAL_SERVER"
                    .into(),
            )
        })?;
    let client = client_for(server, settings.key.as_deref(), &settings.config)?;
    let anchor = *invitation.anchor();
    let roster = block_on(client.roster(&anchor))?.map_err(cloud("join"))?;
    crate::note(&format!(
        "joined family {}: anchored at version {}, latest verified version {} ({} members)",
        roster.family(),
        anchor.version(),
        roster.version(),
        roster.members().len()
    ));
    let line = format!("{anchor}\n");
    write_whole(
        named(args.output.as_deref()),
        line.as_bytes(),
        false,
        Overwrite::from_force(args.force),
    )
}

/// A progress indicator on standard error: drawn only when standard error is a terminal and
/// progress was not turned off (`--no-progress`), so logs and pipes stay clean.
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn target(enabled: bool) -> indicatif::ProgressDrawTarget {
        use std::io::IsTerminal;
        if enabled && io::stderr().is_terminal() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        }
    }

    /// A bar of `total` bytes sent, with the rate and the time left.
    fn upload(enabled: bool, message: String, total: u64) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), Self::target(enabled));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(message);
        Self(bar)
    }

    /// Bytes received, with the rate.
    fn bytes(enabled: bool, message: String) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(None, Self::target(enabled));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {msg} {bytes} ({bytes_per_sec}) {elapsed}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(message);
        Self(bar)
    }

    fn advance(&self, n: usize) {
        self.0.inc(n as u64);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
