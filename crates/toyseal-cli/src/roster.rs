//! `toyseal roster init|propose|cosign|show|verify`: family roster versions as files in their
//! wire format (docs/spec/roster.md §1), offline. Trust comes only from `verify` (and from the
//! chain a `propose` starts from): `show` reports what one file says.

use crate::cli::{
    RosterCommand, RosterCosignArgs, RosterInitArgs, RosterProposeArgs, RosterShowArgs,
    RosterVerifyArgs,
};
use crate::error::{Error, Place};
use crate::files::{Output, Overwrite, named, read_small, write_whole};
use crate::keygen::print_line;
use crate::keys::{parse_public, parse_public_args, read_identity, read_recovery_key};
use serde::Serialize;
use std::io;
use std::io::Write;
use std::path::{Path, PathBuf};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, OsRng, PublicIdentity, Role, Zeroizing};
use toyseal_roster::{Anchor, ChainFollower, RecoveryKey, Roster, RosterProposal, SignedRoster};

/// Largest roster file accepted: 32 members, 32 departed records and 255 signatures take
/// about 25 KiB (roster.md §8).
const MAX_ROSTER_FILE: usize = 64 * 1024;

/// Runs one `toyseal roster` subcommand.
pub fn run(cmd: &RosterCommand) -> Result<(), Error> {
    match cmd {
        RosterCommand::Init(a) => init(a),
        RosterCommand::Propose(a) => propose(a),
        RosterCommand::Cosign(a) => cosign(a),
        RosterCommand::Show(a) => show(a),
        RosterCommand::Verify(a) => verify(a),
    }
}

fn init(args: &RosterInitArgs) -> Result<(), Error> {
    let guardian = read_identity(Some(&args.identity))?;
    if guardian.role() != Role::Guardian {
        return Err(Error::Usage(format!(
            "{}: the founding key must be a guardian's (toyseal keygen --role guardian); \
             add the toy with -m",
            args.identity.display()
        )));
    }
    let mut members = vec![guardian.public().clone()];
    members.extend(parse_public_args(&args.members, "-m")?);
    if !members.iter().any(|m| m.role() == Role::Toy) {
        return Err(Error::Usage(
            "a family is founded with its toy, which co-signs version 1: add the toy with -m"
                .into(),
        ));
    }
    let family = args
        .family
        .unwrap_or_else(|| FamilyId::generate(&mut OsRng));
    let roster_out = named(args.output.as_deref());
    let recovery_out = named(Some(&args.recovery_out));
    if roster_out.is_none() && recovery_out.is_none() {
        return Err(Error::Usage(
            "--recovery-out - needs -o OUT: the roster and the recovery key cannot both go \
             to standard output"
                .into(),
        ));
    }
    let init_error = |source| Error::Roster {
        what: "roster init".into(),
        source,
    };
    // Every family keeps a recovery key (roster.md §1.2): generated here, it signs version 1
    // (proof of possession) and leaves this process only in its printed form.
    let recovery = RecoveryKey::generate(&mut OsRng).map_err(init_error)?;
    let proposal =
        RosterProposal::founding(family, members, *recovery.public()).map_err(init_error)?;
    let mut signed = proposal.sign(&guardian);
    signed.cosign_recovery(&recovery);
    let printed = recovery.export_printable().map_err(init_error)?;
    let mut line = Zeroizing::new(String::with_capacity(printed.len() + 1));
    line.push_str(&printed);
    line.push('\n');
    // Both outputs are staged before either is committed (a missing directory or an
    // existing key file leaves nothing behind); the key is committed first and never replaces
    // a file: a version 1 whose recovery key was not kept would be worse than none.
    let mut key_file = Output::create(recovery_out, true, Overwrite::Refuse)?;
    let mut roster_file = Output::create(roster_out, false, Overwrite::from_force(args.force))?;
    let (key_place, roster_place) = (key_file.place(), roster_file.place());
    key_file
        .write_all(line.as_bytes())
        .map_err(|e| Error::io(key_place, e))?;
    roster_file
        .write_all(&signed.encode())
        .map_err(|e| Error::io(roster_place, e))?;
    key_file.commit()?;
    roster_file.commit()?;
    if let Some(path) = recovery_out {
        crate::note(&format!(
            "The family's recovery key is in {}: print it, keep it offline, and delete the file.",
            path.display()
        ));
    }
    Ok(())
}

/// Who signs a roster version on the command line: a device's key file, or the family's
/// printed recovery key.
enum RosterSigner {
    Device(DeviceIdentity),
    Recovery(RecoveryKey),
}

impl RosterSigner {
    fn read(identity: Option<&Path>, recovery: Option<&Path>) -> Result<Self, Error> {
        match (identity, recovery) {
            (Some(i), None) => Ok(Self::Device(read_identity(Some(i))?)),
            (None, Some(r)) => Ok(Self::Recovery(read_recovery_key(Some(r))?)),
            _ => Err(Error::Usage(
                "give exactly one of -i KEYFILE and --recovery FILE".into(),
            )),
        }
    }

    fn cosign(&self, signed: &mut SignedRoster) {
        match self {
            Self::Device(d) => signed.cosign(d),
            Self::Recovery(k) => signed.cosign_recovery(k),
        }
    }
}

fn propose(args: &RosterProposeArgs) -> Result<(), Error> {
    let signer = RosterSigner::read(args.identity.as_deref(), args.recovery.as_deref())?;
    let current = verify_files(&args.chain, None)?;
    match &signer {
        RosterSigner::Device(d) if !current.contains(d.public()) => {
            return Err(Error::Roster {
                what: format!(
                    "{}: proposing version {}",
                    args.identity
                        .as_deref()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    current.version() + 1
                ),
                source: toyseal_roster::Error::NotAMember,
            });
        }
        RosterSigner::Recovery(k) if k.public() != current.recovery_key() => {
            return Err(Error::Usage(format!(
                "--recovery: not the recovery key of version {}",
                current.version()
            )));
        }
        _ => {}
    }
    if args.add.is_empty() && args.remove.is_empty() {
        return Err(Error::Usage(
            "nothing to propose: give --add PUBKEY or --remove PUBKEY|DEVICE_ID".into(),
        ));
    }
    let mut members = current.members().to_vec();
    for (i, text) in args.add.iter().enumerate() {
        let what = || format!("--add #{}", i + 1);
        let device = parse_public(text, what)?;
        if members.iter().any(|m| m.device_id() == device.device_id()) {
            return Err(Error::Usage(format!(
                "{}: already a member of version {}",
                what(),
                current.version()
            )));
        }
        members.push(device);
    }
    let mut removed = Vec::new();
    for (i, text) in args.remove.iter().enumerate() {
        let what = || format!("--remove #{}", i + 1);
        let id = device_id_of(text, what)?;
        if !members.iter().any(|m| m.device_id() == id) {
            return Err(Error::Usage(format!(
                "{}: not a member of version {}",
                what(),
                current.version()
            )));
        }
        members.retain(|m| m.device_id() != id);
        removed.push(id);
    }
    let roster_error = |source| Error::Roster {
        what: format!("proposing version {}", current.version() + 1),
        source,
    };
    let mut proposal = RosterProposal::next(&current, members).map_err(roster_error)?;
    let mut recorded = Vec::new();
    for path in &args.last_envelope {
        let place = crate::error::Place::File(path.clone());
        let bytes = std::fs::read(path).map_err(|e| Error::io(place.clone(), e))?;
        let header = toyseal_envelope::verify(&bytes, toyseal_envelope::OpenOptions::default())
            .map_err(|source| Error::Envelope {
                place: place.clone(),
                source,
            })?;
        let id = header.sender().device_id();
        if !removed.contains(&id) || recorded.contains(&id) {
            return Err(Error::Usage(format!(
                "--last-envelope {}: its sender {id} is not a --remove device, or has two",
                path.display()
            )));
        }
        recorded.push(id);
        proposal = proposal
            .with_last_envelope(id, header.sequence(), header.link_hash())
            .map_err(roster_error)?;
    }
    let signed = match &signer {
        RosterSigner::Device(d) => proposal.sign(d),
        RosterSigner::Recovery(k) => proposal.sign_with_recovery(k),
    };
    write_whole(
        named(args.output.as_deref()),
        &signed.encode(),
        true,
        Overwrite::from_force(args.force),
    )
}

/// A device named by its public key or its device id (32 hex digits).
fn device_id_of(text: &str, what: impl Fn() -> String) -> Result<DeviceId, Error> {
    let text = text.trim();
    if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return text
            .parse()
            .map_err(|e: toyseal_core::Error| Error::PublicKey {
                what: what(),
                reason: format!("not a valid device id: {e}"),
            });
    }
    Ok(parse_public(text, what)?.device_id())
}

fn cosign(args: &RosterCosignArgs) -> Result<(), Error> {
    let input = named(Some(&args.input));
    let key_from_stdin = [args.identity.as_deref(), args.recovery.as_deref()]
        .into_iter()
        .flatten()
        .any(|p| named(Some(p)).is_none());
    if input.is_none() && key_from_stdin {
        return Err(Error::Usage(
            "standard input can feed only one of --identity/--recovery and FILE".into(),
        ));
    }
    let signer = RosterSigner::read(args.identity.as_deref(), args.recovery.as_deref())?;
    let (_, mut signed) = read_roster(input)?;
    signer.cosign(&mut signed);
    // -o wins; else FILE is replaced atomically; a roster from standard input goes to
    // standard output.
    // Updating FILE in place is the command's job; another OUT is replaced only with --force.
    let (out, overwrite) = match &args.output {
        Some(o) => (named(Some(o)), Overwrite::from_force(args.force)),
        None => (input, Overwrite::Replace),
    };
    write_whole(out, &signed.encode(), true, overwrite)
}

fn show(args: &RosterShowArgs) -> Result<(), Error> {
    let (_, signed) = read_roster(named(args.input.as_deref()))?;
    render(&View::of(&signed, false), args.json)
}

fn verify(args: &RosterVerifyArgs) -> Result<(), Error> {
    let anchor = args.anchor.as_deref().map(parse_anchor).transpose()?;
    let roster = verify_files(&args.chain, anchor.as_ref())?;
    let signed = roster.signed();
    let summary = Verified {
        verified: true,
        family: roster.family().to_string(),
        version: roster.version(),
        hash: hex(&signed.hash()),
        anchor: Anchor::of(signed).to_string(),
        members: roster.members().len(),
    };
    let line = if args.json {
        json(&summary)?
    } else {
        format!(
            "verified: family {}, version {}, {} members, hash {}",
            summary.family, summary.version, summary.members, summary.hash
        )
    };
    print_line(&mut io::stdout(), Place::Stdout, &line)
}

/// What `verify` prints.
#[derive(Serialize)]
struct Verified {
    verified: bool,
    family: String,
    version: u64,
    hash: String,
    anchor: String,
    members: usize,
}

/// Parses an anchor given on the command line.
pub(crate) fn parse_anchor(text: &str) -> Result<Anchor, Error> {
    text.trim().parse().map_err(|source| Error::Roster {
        what: "--anchor".into(),
        source,
    })
}

/// Reads and decodes one roster version (`None`: standard input); structure only.
pub(crate) fn read_roster(path: Option<&Path>) -> Result<(Place, SignedRoster), Error> {
    let (place, bytes) = read_small(path, MAX_ROSTER_FILE)?;
    let signed = SignedRoster::decode(&bytes).map_err(|source| Error::Roster {
        what: place.to_string(),
        source,
    })?;
    Ok((place, signed))
}

/// Verifies the chain in `files` (versions 1 to N), naming the file that fails; with an
/// anchor, the chain must pass through it.
pub(crate) fn verify_files(files: &[PathBuf], anchor: Option<&Anchor>) -> Result<Roster, Error> {
    let mut current: Option<Roster> = None;
    let mut follower = anchor.map(|a| ChainFollower::new(*a));
    for file in files {
        let (place, signed) = read_roster(named(Some(file)))?;
        let what = || place.to_string();
        if let Some(f) = follower.as_mut() {
            f.push(signed.clone()).map_err(|source| Error::Roster {
                what: what(),
                source,
            })?;
        }
        let next = match &current {
            None => Roster::verify_founding(signed),
            Some(cur) => cur.verify_next(signed),
        };
        current = Some(next.map_err(|source| Error::Roster {
            what: what(),
            source,
        })?);
    }
    if let Some(f) = follower {
        f.finish().map_err(|source| Error::Roster {
            what: "the chain".into(),
            source,
        })?;
    }
    current.ok_or_else(|| Error::Usage("no roster files given".into()))
}

/// What one roster version says, for `show` and `family show`.
#[derive(Serialize)]
pub(crate) struct View {
    /// Whether this version was verified (through its chain) before being shown.
    verified: bool,
    family: String,
    version: u64,
    hash: String,
    previous_hash: Option<String>,
    anchor: String,
    members: Vec<Member>,
    recovery_key: String,
    departed: Vec<Departed>,
    signers: Vec<Signer>,
}

#[derive(Serialize)]
struct Member {
    role: String,
    device_id: String,
    public_key: String,
}

#[derive(Serialize)]
struct Departed {
    role: String,
    device_id: String,
    public_key: String,
    last_sequence: u64,
    chain_head: String,
}

#[derive(Serialize)]
struct Signer {
    id: String,
    /// `guardian`, `toy`, `recovery key`, or `not in this version` (e.g. a removed guardian
    /// of the previous version).
    who: String,
}

impl View {
    pub(crate) fn of(signed: &SignedRoster, verified: bool) -> Self {
        let p = signed.proposal();
        let member = |m: &PublicIdentity| Member {
            role: m.role().to_string(),
            device_id: m.device_id().to_string(),
            public_key: m.to_string(),
        };
        let who = |id: DeviceId| {
            if let Some(m) = p.members().iter().find(|m| m.device_id() == id) {
                m.role().to_string()
            } else if p.recovery_key().id() == id {
                "recovery key".to_owned()
            } else {
                "not in this version".to_owned()
            }
        };
        Self {
            verified,
            family: p.family().to_string(),
            version: p.version(),
            hash: hex(&signed.hash()),
            previous_hash: (p.version() > 1).then(|| hex(p.previous_hash())),
            anchor: Anchor::of(signed).to_string(),
            members: p.members().iter().map(member).collect(),
            recovery_key: hex(p.recovery_key().as_bytes()),
            departed: p
                .departed()
                .iter()
                .map(|d| Departed {
                    role: d.identity().role().to_string(),
                    device_id: d.identity().device_id().to_string(),
                    public_key: d.identity().to_string(),
                    last_sequence: d.last_sequence(),
                    chain_head: hex(d.chain_head()),
                })
                .collect(),
            signers: signed
                .signers()
                .map(|id| Signer {
                    id: id.to_string(),
                    who: who(id),
                })
                .collect(),
        }
    }

    fn text(&self) -> String {
        let mut t = format!(
            "family:        {}\nversion:       {}\nhash:          {}\nprevious hash: {}\n\
             anchor:        {}\nverified:      {}\nmembers ({}):\n",
            self.family,
            self.version,
            self.hash,
            self.previous_hash.as_deref().unwrap_or("none (version 1)"),
            self.anchor,
            if self.verified {
                "yes, through the chain"
            } else {
                "no (this file alone; use `toyseal roster verify` on the chain)"
            },
            self.members.len(),
        );
        for m in &self.members {
            t.push_str(&format!(
                "  {:<8}  {}  {}\n",
                m.role, m.device_id, m.public_key
            ));
        }
        t.push_str(&format!("recovery key:  {}\n", self.recovery_key));
        t.push_str(&format!("departed ({}):\n", self.departed.len()));
        for d in &self.departed {
            t.push_str(&format!(
                "  {:<8}  {}  last sequence {}  chain head {}  {}\n",
                d.role, d.device_id, d.last_sequence, d.chain_head, d.public_key
            ));
        }
        t.push_str(&format!("signed by ({}):\n", self.signers.len()));
        for s in &self.signers {
            t.push_str(&format!("  {}  {}\n", s.id, s.who));
        }
        t
    }
}

/// Prints a view as text or JSON on standard output.
pub(crate) fn render(view: &View, as_json: bool) -> Result<(), Error> {
    let text = if as_json {
        json(view)?
    } else {
        view.text().trim_end().to_owned()
    };
    print_line(&mut io::stdout(), Place::Stdout, &text)
}

/// Pretty JSON; serializing these plain structs cannot fail, but a failure is reported, not
/// panicked on.
pub(crate) fn json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Io {
        place: Place::Stdout,
        source: io::Error::other(e),
    })
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
