//! The command line, as clap derive types. Help texts live here; behaviour lives in the
//! command modules.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use toyseal_core::{FamilyId, Role};
use toyseal_envelope::{DEFAULT_CHUNK_SIZE_LOG2, DEFAULT_SEGMENT_LOG2, DEFAULT_SIZE_LIMIT};

/// The exit-status table, shared by the long help of every command and the README.
macro_rules! exit_status {
    () => {
        "Exit status:
  0  success
  1  I/O error: a file or pipe could not be read or written, or the output file exists
  2  usage error: invalid or inconsistent arguments
  3  invalid key file, public key or recipient
  4  not a valid toyseal envelope: bad format, truncated, or larger than --max-size or
     than the server's limit (named with both sizes, before anything is sent)
  5  decryption or authentication failed: the content or the sender signature was tampered with
  6  untrusted sender (not given with --from), or this identity is not a recipient
  7  toyseal demo failed, or a property it checks did not hold
  8  invalid roster, roster chain or invitation: malformed, a signature or quorum missing,
     not the next version, not through the anchor
  9  the server refused the request (HTTP 4xx: not signed by a member, not allowed for this
     role, unknown family or envelope, already exists); the server's reason is shown
 10  the server could not be reached or failed (connection, no answer within --timeout,
     HTTP 5xx, an answer that failed the client's integrity checks)
 11  toyseal pair failed: wrong code, not pairable, or the peer left or went silent
 12  this device was removed from the family (HTTP 401 \"removed\", with the roster version)
 13  the family was deleted from the server (HTTP 410)"
    };
}

/// Where the cloud commands find the server, the key and the family.
macro_rules! settings_help {
    () => {
        "Server, key and family come from the flags (--server, -i, --family), else the \
        environment (TOYSEAL_SERVER, TOYSEAL_KEY, TOYSEAL_FAMILY), else the client config file \
        (--config or TOYSEAL_CLIENT_CONFIG): a JSON object such as {\"server\": \
        \"https://toys.example\", \"key\": \"mum.key\", \"family\": \"<32 hex digits>\"}, \
        unknown keys refused, a relative key path taken from the file's directory. \
        The time-outs and tries likewise: --timeout, TOYSEAL_TIMEOUT, \"timeout\" (seconds for \
        the whole operation, every try and wait included; default 30); --connect-timeout, \
        TOYSEAL_CONNECT_TIMEOUT, \"connect_timeout\" (default 10); --tries, TOYSEAL_TRIES, \
        \"tries\" (tries of a retryable request, default 5). \
        (TOYSEAL_CONFIG is `toyseal serve`'s server config and is not read here.)"
    };
}

/// The top-level examples.
macro_rules! top_examples {
    () => {
        "Examples:
  toyseal keygen --role toy -o toy.key
  toyseal keygen --role guardian -o mum.key > mum.pub
  toyseal seal -i toy.key -r \"$(cat mum.pub)\" -o note.tse note.wav
  toyseal open -i mum.key --from \"$(toyseal pubkey toy.key)\" -o note.wav note.tse
  cat note.wav | toyseal seal -i toy.key -R family.txt \\
    | toyseal open -i mum.key --from \"$(cat toy.pub)\" > copy.wav
  toyseal inspect --json note.tse
  toyseal roster init -i mum.key -m \"$(cat toy.pub)\" -o v1.tsr && toyseal roster cosign -i toy.key v1.tsr
  toyseal family create -i mum.key --server http://127.0.0.1:8080 v1.tsr
  toyseal upload -i toy.key note.tse && toyseal list -i mum.key --json"
    };
}

/// `toyseal`: seal a child's voice recordings end to end, age-style.
#[derive(Debug, Parser)]
#[command(
    name = "toyseal",
    version,
    about = "Seal, open and inspect end-to-end-encrypted, signed toyseal voice envelopes",
    long_about = "Seal, open and inspect end-to-end-encrypted, signed toyseal voice envelopes.\n\n\
        Every command reads standard input and writes standard output when no file is given \
        (or the file is `-`), so it fits in pipelines. Files given with -o are written to a \
        temporary file beside the destination and renamed only when the command succeeded.",
    after_help = top_examples!(),
    after_long_help = concat!(top_examples!(), "\n\n", exit_status!()),
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a device identity (key file) and print its public key.
    #[command(
        long_about = "Generate a device identity: an Ed25519 signing key and an X25519 key, \
            with the device's role.\n\n\
            With -o, the key file is written with owner-only permissions (0600), atomically, \
            and the public key (toyseal1…) is printed on standard output. Without -o, the key \
            file goes to standard output and the public key to standard error, like age-keygen.",
        after_help = "Examples:
  toyseal keygen --role toy -o toy.key
  toyseal keygen --role guardian -o mum.key > mum.pub
  toyseal keygen --role guardian > dad.key",
        after_long_help = concat!("Examples:
  toyseal keygen --role toy -o toy.key
  toyseal keygen --role guardian -o mum.key > mum.pub
  toyseal keygen --role guardian > dad.key", "\n\n", exit_status!())
    )]
    Keygen(KeygenArgs),

    /// Print the public key (or device id) of a key file.
    #[command(
        after_help = "Examples:
  toyseal pubkey toy.key
  toyseal pubkey --device-id toy.key
  toyseal keygen --role toy | toyseal pubkey",
        after_long_help = concat!("Examples:
  toyseal pubkey toy.key
  toyseal pubkey --device-id toy.key
  toyseal keygen --role toy | toyseal pubkey", "\n\n", exit_status!())
    )]
    Pubkey(PubkeyArgs),

    /// Encrypt to recipients and sign as the sender (streaming).
    #[command(
        long_about = "Encrypt IN (or standard input) to every recipient given with -r / -R, and \
            sign the whole envelope with the --identity key, streaming in bounded memory.\n\n\
            The content type, codec and duration travel encrypted inside the envelope; the \
            envelope's length is padded. With -o the envelope is written to a temporary file \
            and renamed to OUT only after it is complete.",
        after_help = "Examples:
  toyseal seal -i toy.key -r toyseal1... -r toyseal1... -o note.tse note.wav
  toyseal seal -i toy.key -R family.txt --content-type audio/wav --codec pcm_s16le < note.wav > note.tse
  arecord -f S16_LE | toyseal seal -i toy.key -R family.txt -o live.tse",
        after_long_help = concat!("Examples:
  toyseal seal -i toy.key -r toyseal1... -r toyseal1... -o note.tse note.wav
  toyseal seal -i toy.key -R family.txt --content-type audio/wav --codec pcm_s16le < note.wav > note.tse
  arecord -f S16_LE | toyseal seal -i toy.key -R family.txt -o live.tse", "\n\n", exit_status!())
    )]
    Seal(SealArgs),

    /// Decrypt and verify an envelope from a trusted sender.
    #[command(
        long_about = "Decrypt IN (or standard input) with the --identity key, accepting it only \
            from a sender given with --from, and only if the sender's signature over the whole \
            envelope verifies.\n\n\
            On any failure the exit status is non-zero and no complete output exists: with -o \
            the content goes to a temporary file that is renamed to OUT only after the envelope \
            fully verified (and deleted otherwise); on standard output the last chunk of \
            content is withheld until the signature verified, so a failed open never writes \
            the whole content.",
        after_help = "Examples:
  toyseal open -i mum.key --from toyseal1... -o note.wav note.tse
  toyseal open -i mum.key --from \"$(cat toy.pub)\" --verbose < note.tse > note.wav",
        after_long_help = concat!("Examples:
  toyseal open -i mum.key --from toyseal1... -o note.wav note.tse
  toyseal open -i mum.key --from \"$(cat toy.pub)\" --verbose < note.tse > note.wav", "\n\n", exit_status!())
    )]
    Open(OpenArgs),

    /// Show an envelope's public header and check its sender signature, without keys.
    #[command(
        long_about = "Show the public facts of an envelope without decrypting it: version, \
            suite, sender (public key, device id, role), family, roster version, number of \
            recipients, chunk size and total size; and check the sender's Ed25519 signature \
            over the whole envelope (no key needed).\n\n\
            The facts are printed whenever the header parses; the exit status is 0 only if \
            the signature is valid.",
        after_help = "Examples:
  toyseal inspect note.tse
  toyseal inspect --json < note.tse | jq .signature_valid",
        after_long_help = concat!("Examples:
  toyseal inspect note.tse
  toyseal inspect --json < note.tse | jq .signature_valid", "\n\n", exit_status!())
    )]
    Inspect(InspectArgs),

    /// Run the reference server (SQLite + a blob directory under --data by default).
    #[command(
        long_about = "Run the toyseal reference server: signed requests only, roster-checked \
            authorization, envelopes stored create-only. By default everything lives under \
            --data (an SQLite file and a blob directory); use --database-url for PostgreSQL \
            and --s3-bucket for S3. Stops gracefully on ctrl-c or SIGTERM.",
        after_help = "Examples:
  toyseal serve --data ./toyseal-data
  toyseal serve --listen 0.0.0.0:8080 --database-url postgres://toyseal@db/toyseal --s3-bucket voices"
    )]
    Serve(toyseal_server::ServeArgs),

    /// Run the whole story on embedded defaults and print what it proves.
    #[command(
        long_about = "Run toyseal end to end on one machine, on embedded defaults: a toy and two \
            parents' phones, the reference server on an SQLite file and a blob directory under \
            --data, and an in-memory BLE link. The toy is paired with its printed code, the \
            family roster is signed and uploaded, the toy seals a synthetic recording and uploads \
            it, a phone downloads and opens it, a parent's reply goes to the toy over BLE, the \
            attacks that matter are tried, the storage is scanned for plaintext, and a deletion \
            is verified. Every step is a check: narrated as it runs (`✓ blocked: unsigned \
            request → 401 unauthenticated`), or, with --json, one JSON document on stdout with \
            each check's name, what was attempted, the outcome, the evidence and ok. Exits 0 \
            only if every check held, 7 otherwise.",
        after_help = "Examples:\n  toyseal demo --data ./toyseal-demo\n  toyseal demo --json | jq '.checks[] | select(.ok | not)'"
    )]
    Demo(DemoArgs),

    /// Make, sign, show and verify family roster versions (files in the roster wire format).
    #[command(
        subcommand,
        long_about = "Family rosters as files (.tsr, the wire format of docs/spec/roster.md), \
            offline: found version 1, propose the next version, co-sign a version, show one, \
            verify a chain. A version counts only once the rules are met: version 1 signed by \
            every member and the recovery key (the founding guardian and the toy among them), a \
            later version by a quorum of the previous one for its class (removing members or \
            toys: two guardians, a guardian and the recovery key, or a guardian and the toy; \
            anything else: two guardians, a guardian and the recovery key, or the recovery key \
            and the toy) and by every member it adds.",
        after_help = "Examples:
  toyseal roster init -i mum.key -m \"$(cat toy.pub)\" --recovery-out recovery.txt -o v1.tsr
  toyseal roster cosign -i toy.key v1.tsr
  toyseal roster propose -i mum.key --add \"$(cat dad.pub)\" -o v2.tsr v1.tsr
  toyseal roster cosign --recovery recovery.txt v2.tsr && toyseal roster cosign -i dad.key v2.tsr
  toyseal roster verify v1.tsr v2.tsr"
    )]
    Roster(RosterCommand),

    /// Create, update, show or delete the family on a server (signed requests).
    #[command(
        subcommand,
        long_about = concat!("Create, update, show or delete the family on a toyseal server. \
            Every request is signed with the device key; the client verifies every roster the \
            server returns from version 1 through this device's anchor.\n\n", settings_help!()),
        after_help = "Examples:
  toyseal family create -i mum.key v1.tsr
  toyseal family update -i mum.key v2.tsr
  toyseal family show -i mum.key --roster v1.tsr
  toyseal family delete -i mum.key --cosign toy.key --roster v1.tsr"
    )]
    Family(FamilyCommand),

    /// Upload envelopes to the family's storage on the server.
    #[command(
        long_about = concat!("Upload each envelope (.tse) to the family's storage on the \
            server. The envelope is verified first (format and the sender's signature over the \
            whole envelope, no key needed); its family is the one its header names, or \
            --family. Prints each envelope's id (SHA-256, 64 hex digits); uploading the same \
            envelope twice is harmless.\n\n", settings_help!()),
        after_help = "Examples:
  toyseal upload -i toy.key note.tse
  toyseal seal -i toy.key -R family.txt --family $FAMILY < note.wav | toyseal upload -i toy.key"
    )]
    Upload(UploadArgs),

    /// List the family's stored envelopes.
    #[command(
        long_about = concat!("List the family's envelopes on the server, oldest first: id, \
            size, sender device id, roster version, time received (Unix seconds). No content \
            or metadata: the server has none.\n\n", settings_help!()),
        after_help = "Examples:
  toyseal list -i mum.key --family $FAMILY
  toyseal list -i mum.key --json | jq -r '.[].id'"
    )]
    List(ListArgs),

    /// Download one envelope, verify it, and write it to a file or standard output.
    #[command(
        long_about = concat!("Download the envelope ID from the family's storage. Its bytes \
            must hash to ID and it must be a valid envelope of this family, signed by its \
            sender over its whole length; only then is it written: to -o OUT (a temporary \
            file renamed into place) or standard output. Open it with `toyseal open`.\n\n",
            settings_help!()),
        after_help = "Examples:
  toyseal fetch -i mum.key -o note.tse 3f2a…
  toyseal fetch -i mum.key 3f2a… | toyseal open -i mum.key --from \"$(cat toy.pub)\" > note.wav"
    )]
    Fetch(FetchArgs),

    /// Delete envelopes: your own at once, others' softly (guardians; restorable 30 days).
    #[command(
        long_about = concat!("Delete each envelope ID from the family's storage on the server. \
            An envelope this device sent is erased at once. A guardian's deletion of another \
            device's envelope is soft: hidden from listings and downloads, listed by `toyseal \
            deleted`, restorable by any guardian with `toyseal restore` until the server \
            erases it (30 days by default). Other members cannot delete others' envelopes. \
            One device may soft-delete 20 envelopes a day; beyond, or to erase at once, use \
            `toyseal erase` with a second guardian's (or the recovery key's) signature.\n\n",
            settings_help!()),
        after_help = "Example:\n  toyseal delete -i mum.key 3f2a…"
    )]
    Delete(DeleteArgs),

    /// Undo soft deletions (guardians).
    #[command(
        long_about = concat!("Restore each soft-deleted envelope ID: listed and downloadable \
            again. Any guardian may restore any pending deletion, whoever made it.\n\n",
            settings_help!()),
        after_help = "Example:\n  toyseal restore -i dad.key 3f2a…"
    )]
    Restore(DeleteArgs),

    /// List the family's pending soft deletions (guardians).
    #[command(
        long_about = concat!("List the envelopes guardians deleted softly and the server has \
            not erased yet: id, sender, the device that deleted it, when (Unix seconds), and \
            when the server erases it unless a guardian restores it.\n\n", settings_help!()),
        after_help = "Examples:
  toyseal deleted -i mum.key --family $FAMILY
  toyseal deleted -i mum.key --json | jq -r '.[].id' | xargs toyseal restore -i mum.key"
    )]
    Deleted(ListArgs),

    /// Erase envelopes at once, with a second guardian's signature (a quorum statement).
    #[command(
        long_about = concat!("Erase each envelope ID at once, pending soft deletions \
            included. The erasure statement (docs/spec/roster.md §5.1) names the current \
            roster version (fetched and verified through the anchor) and needs two guardians, \
            or a guardian and the recovery key: the -i key and the --cosign keys (the toy's \
            signature does not count). It is checked here before anything is sent; the \
            server erases nothing unless it verifies. At most 64 ids per statement.\n\n",
            settings_help!()),
        after_help = "Example:\n  toyseal erase -i mum.key --cosign dad.key --roster v1.tsr 3f2a… 9b1c…"
    )]
    Erase(EraseArgs),

    /// Print an invitation (QR code and text) for a device a roster version adds.
    #[command(
        long_about = "Print the anchored invitation (docs/spec/roster.md §6) for the device \
            that the last version of CHAIN adds: the family id, that version's number and \
            hash, and optionally the server. Show the QR code to the new phone's camera, or \
            pass the text line to `toyseal join`. The chain (versions 1 to N) is verified \
            first. The server named is --server, TOYSEAL_SERVER or the client config file's, \
            if any.\n\n\
            The QR code (Unicode half blocks, light on dark) is printed on standard output, \
            followed by the text line; --no-qr prints only the text line.",
        after_help = "Examples:
  toyseal invite --server https://toys.example v1.tsr v2.tsr
  toyseal invite --no-qr v1.tsr > invitation.txt"
    )]
    Invite(InviteArgs),

    /// Join a family from an invitation: fetch and verify its roster through the anchor.
    #[command(
        long_about = concat!("Join a family with an invitation (the text of `toyseal invite`): \
            fetch the family's roster chain from the server, verify it from version 1 through \
            the invitation's anchor, and check that the anchored version lists this device. \
            Prints the anchor (keep it with the key: `family show --anchor` trusts only it), \
            or writes it atomically to -o FILE. The server is --server, else TOYSEAL_SERVER, \
            else the invitation's, else the config file's.\n\n", settings_help!()),
        after_help = "Examples:
  toyseal join -i dad.key -o dad.anchor \"$(cat invitation.txt)\"
  toyseal invite --no-qr v1.tsr v2.tsr | toyseal join -i dad.key -"
    )]
    Join(JoinArgs),

    /// Pair a toy and a phone over TCP (the pairing protocol without Bluetooth).
    #[command(
        long_about = "Run one side of the pairing protocol (docs/spec/pairing.md: SPAKE2 with \
            the code printed on the toy, a short authentication string) over TCP, e.g. two \
            terminals on one machine. `--as toy` listens (it prints the address on standard \
            error) and opens its pairing window as if its button were held; `--as phone` \
            connects. Both read the code from --code-file (never from the command line, where \
            other users could see it) and print the SAS on standard error: the two numbers must \
            match. When paired, each prints the other's public key on standard output.\n\n\
            The toy counts failed guesses durably in KEYFILE.pairing-failures (at most 100 in \
            its lifetime).",
        after_help = "Examples:
  toyseal pair --as toy -i toy.key --code-file tag.txt --listen 127.0.0.1:7878 > phone.pub
  toyseal pair --as phone -i mum.key --code-file tag.txt --connect 127.0.0.1:7878 > toy.pub"
    )]
    Pair(PairArgs),

    /// Print a shell completion script.
    #[command(after_help = "Examples:
  toyseal completions bash > ~/.local/share/bash-completion/completions/toyseal
  toyseal completions zsh > ~/.zfunc/_toyseal
  toyseal completions fish > ~/.config/fish/completions/toyseal.fish")]
    Completions(CompletionsArgs),

    /// Print the man page (roff) of toyseal, or write every command's page to a directory.
    #[command(
        long_about = "Print the man page of toyseal (roff, section 1) on standard output; with \
            --dir, write the pages of toyseal and of every subcommand (toyseal-roster-init.1, \
            …) into DIR instead, each atomically, and print their paths.",
        after_help = "Examples:
  toyseal man > toyseal.1 && man ./toyseal.1
  toyseal man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

/// Arguments of `toyseal demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's server data (SQLite file, blobs) and the toy's outbox: a new
    /// or empty directory, which the demo marks as its own (`.toyseal-demo`); a later run
    /// replaces only the demo's own folders there. A directory holding anything else is
    /// refused, never emptied.
    #[arg(long, default_value = "toyseal-demo")]
    pub data: std::path::PathBuf,
    /// Print one JSON document on stdout instead of the narration (which goes to stderr):
    /// `{"checks": [{"name", "kind", "attempted", "outcome", "evidence", "ok"}, …], "total",
    /// "held", "ok"}`.
    #[arg(long)]
    pub json: bool,
}

/// `toyseal roster …`.
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Found version 1 of a new family, signed by its founding guardian.
    #[command(
        long_about = "Found version 1 of a family: the guardian of -i and every -m member, \
            signed by the guardian, with the family's new recovery key. Each member's role is \
            the one inside its public key (`toyseal keygen --role`). Every family keeps a \
            recovery key: it is generated here, signs version 1, and its printed form \
            (TOYSEAL-RECOVERY-1…) is written once to --recovery-out (mode 0600; an existing \
            file is refused) for the family to print and keep offline — it is the second \
            authority that adds a phone or replaces a lost one. Version 1 counts only once \
            every member has co-signed it (`toyseal roster cosign`), the toy among them. The \
            family id is random unless --family gives one.",
        after_help = "Examples:
  toyseal roster init -i mum.key -m \"$(cat toy.pub)\" --recovery-out recovery.txt -o v1.tsr
  toyseal roster init -i mum.key -m \"$(cat toy.pub)\" -m \"$(cat dad.pub)\" --recovery-out recovery.txt > v1.tsr"
    )]
    Init(RosterInitArgs),
    /// Propose the next version (add or remove members), signed by one member.
    #[command(
        long_about = "Propose version N+1 of the family whose verified chain is CHAIN (versions \
            1 to N, in order): the members of version N, plus every --add, minus every \
            --remove. Signed by the -i key, which must be a member of version N, or by the \
            family's printed recovery key (--recovery). It counts once a quorum of version N \
            for its class signed it and every device it adds did (`toyseal roster cosign`): \
            removing a member or a toy needs two guardians, a guardian and the recovery key, \
            or a guardian and the toy; adding anyone or changing a guardian, a toy or a role \
            needs two guardians, a guardian and the recovery key, or the recovery key and the \
            toy (never a guardian and the toy).\n\n\
            A removed device's envelopes stay openable up to the last envelope of it given \
            with --last-envelope (its sequence and header hash become the device's chain head: \
            that envelope and its ancestors on the device's sender chain stay openable, \
            nothing it seals later does, whatever sequence it claims). Without one, none.",
        after_help = "Examples:
  toyseal roster propose -i mum.key --add \"$(cat dad.pub)\" -o v2.tsr v1.tsr
  toyseal roster propose -i mum.key --remove \"$(cat old-phone.pub)\" --last-envelope last-from-old-phone.tse -o v3.tsr v1.tsr v2.tsr"
    )]
    Propose(RosterProposeArgs),
    /// Add a signature to a roster version.
    #[command(
        long_about = "Sign the roster version in FILE with the -i key, or with the family's \
            printed recovery key (--recovery FILE holding TOYSEAL-RECOVERY-1…), replacing an \
            earlier signature of the same key, and write it back atomically, or to -o OUT.",
        after_help = "Examples:
  toyseal roster cosign -i toy.key v1.tsr
  toyseal roster cosign -i dad.key -o v2-signed.tsr v2.tsr
  toyseal roster cosign --recovery recovery.txt v2.tsr"
    )]
    Cosign(RosterCosignArgs),
    /// Show a roster version: family, version, hash, members, signers.
    #[command(
        long_about = "Show what one roster version says: family id, version, its hash and the \
            previous one's, the members (role, device id, public key), departed devices, and \
            who signed it. Nothing is verified here: use `toyseal roster verify` on the chain.",
        after_help = "Examples:
  toyseal roster show v2.tsr
  toyseal roster show --json < v2.tsr | jq -r '.members[].public_key'"
    )]
    Show(RosterShowArgs),
    /// Verify a chain of roster versions, from version 1.
    #[command(
        long_about = "Verify CHAIN, the roster versions 1 to N in order, by the rules of \
            docs/spec/roster.md §3 (with --anchor: it must also pass through that version). \
            Prints the verified last version's family, number and hash; exit status 0 only if \
            the whole chain verified.",
        after_help = "Examples:
  toyseal roster verify v1.tsr v2.tsr v3.tsr
  toyseal roster verify --anchor \"$(cat dad.anchor)\" v1.tsr v2.tsr"
    )]
    Verify(RosterVerifyArgs),
}

/// `toyseal roster init`.
#[derive(Debug, Args)]
pub struct RosterInitArgs {
    /// The founding guardian's key file.
    #[arg(short, long, value_name = "KEYFILE")]
    pub identity: PathBuf,
    /// Another member's public key (toyseal1…, its role inside); repeatable.
    #[arg(short = 'm', long = "member", value_name = "PUBKEY")]
    pub members: Vec<String>,
    /// Family id (32 hex digits) [default: random].
    #[arg(long, value_name = "FAMILY_ID")]
    pub family: Option<FamilyId>,
    /// Write the new recovery key's printed form (a secret: print it, keep it offline) to
    /// FILE, mode 0600; an existing file is refused. `-`: standard output (only with -o).
    #[arg(long, value_name = "FILE")]
    pub recovery_out: PathBuf,
    /// Write the roster to OUT (atomically) instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
}

/// `toyseal roster propose`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["identity", "recovery"])))]
pub struct RosterProposeArgs {
    /// The proposing member's key file (a member of the last version of CHAIN).
    #[arg(short, long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// Sign with the family's printed recovery key instead (a file holding
    /// TOYSEAL-RECOVERY-1…; `-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub recovery: Option<PathBuf>,
    /// A device to add (its public key, toyseal1…); repeatable.
    #[arg(long = "add", value_name = "PUBKEY")]
    pub add: Vec<String>,
    /// A member to remove (its public key or device id); repeatable.
    #[arg(long = "remove", value_name = "PUBKEY|DEVICE_ID")]
    pub remove: Vec<String>,
    /// The newest envelope of a removed device that the family accepts (verified; its sender
    /// must be one of the --remove devices): its sequence and header hash are recorded as the
    /// device's chain head. Repeatable, at most one per removed device.
    #[arg(long = "last-envelope", value_name = "ENVELOPE", requires = "remove")]
    pub last_envelope: Vec<PathBuf>,
    /// Write the new version to OUT (atomically) instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
    /// The verified chain so far: roster files of versions 1 to N, in order.
    #[arg(value_name = "CHAIN", required = true)]
    pub chain: Vec<PathBuf>,
}

/// `toyseal roster cosign`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["identity", "recovery"])))]
pub struct RosterCosignArgs {
    /// The co-signing device's key file.
    #[arg(short, long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// Sign with the family's printed recovery key instead (a file holding
    /// TOYSEAL-RECOVERY-1…; `-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub recovery: Option<PathBuf>,
    /// Write to OUT instead of replacing FILE (`-`: standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT (when given) if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
    /// The roster version; `-`: standard input (then the result goes to standard output).
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
}

/// `toyseal roster show`.
#[derive(Debug, Args)]
pub struct RosterShowArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// The roster version; `-` or absent: standard input.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// `toyseal roster verify`.
#[derive(Debug, Args)]
pub struct RosterVerifyArgs {
    /// The chain must pass through this anchor (family:version:hash, from `toyseal join`).
    #[arg(long, value_name = "ANCHOR")]
    pub anchor: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Roster files of versions 1 to N, in order.
    #[arg(value_name = "CHAIN", required = true)]
    pub chain: Vec<PathBuf>,
}

/// How the cloud commands reach the server and sign: flags, else environment, else the
/// client config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientArgs {
    /// Server base URL, e.g. `https://toys.example` or `http://127.0.0.1:8080`.
    #[arg(long, env = "TOYSEAL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// This device's key file: it signs every request.
    #[arg(short, long, env = "TOYSEAL_KEY", value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// Client config file (JSON: "server", "key", "family", "timeout", "connect_timeout",
    /// "tries").
    #[arg(long, env = "TOYSEAL_CLIENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Give up after SECS for the whole operation, every try and wait included [default: 30].
    #[arg(long, env = "TOYSEAL_TIMEOUT", value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
    /// Give up connecting after SECS [default: 10].
    #[arg(long, env = "TOYSEAL_CONNECT_TIMEOUT", value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub connect_timeout: Option<u64>,
    /// Tries of a request that may be repeated safely (reads, uploads, deletes) [default: 5].
    #[arg(long, env = "TOYSEAL_TRIES", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub tries: Option<u32>,
}

/// The family the command is about: flag, else environment, else the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct FamilyArg {
    /// Family id (32 hex digits) [default: the envelope's, for upload].
    #[arg(long, env = "TOYSEAL_FAMILY", value_name = "FAMILY_ID")]
    pub family: Option<FamilyId>,
}

/// Which roster version this device trusts without the server.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TrustArgs {
    /// This device's anchor (family:version:hash, from `toyseal join`).
    #[arg(long, value_name = "ANCHOR")]
    pub anchor: Option<String>,
    /// A roster version file this device signed or verified itself (e.g. v1.tsr): the anchor.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
}

/// `toyseal family …`.
#[derive(Debug, Subcommand)]
pub enum FamilyCommand {
    /// Create the family on the server with its version 1.
    #[command(
        long_about = "Create the family on the server with roster version 1 (FILE), which \
            must verify first: signed by every member, the guardian and the toy among them. \
            Prints the family id and the anchor of version 1.",
        after_help = "Example:\n  toyseal family create -i mum.key --server http://127.0.0.1:8080 v1.tsr"
    )]
    Create {
        /// Server and key.
        #[command(flatten)]
        client: ClientArgs,
        /// Roster version 1 (`-`: standard input).
        #[arg(value_name = "FILE")]
        roster: PathBuf,
    },
    /// Upload the next roster version.
    #[command(
        long_about = "Upload the next roster version (FILE) of the family to the server, \
            which checks it against the version it holds (a quorum of it must have signed).",
        after_help = "Example:\n  toyseal family update -i mum.key v2.tsr"
    )]
    Update {
        /// Server and key.
        #[command(flatten)]
        client: ClientArgs,
        /// The next roster version (`-`: standard input).
        #[arg(value_name = "FILE")]
        roster: PathBuf,
    },
    /// Fetch the family's roster, verify it through the anchor and show the latest version.
    #[command(
        long_about = "Fetch the family's roster chain from the server, verify it from version \
            1 through this device's anchor (--anchor, or --roster: a version file it trusts), \
            and show the latest version as `toyseal roster show` does. With -o, also save \
            that version's file atomically.",
        after_help = "Examples:
  toyseal family show -i mum.key --roster v1.tsr
  toyseal family show -i dad.key --anchor \"$(cat dad.anchor)\" --json -o latest.tsr"
    )]
    Show {
        /// Server and key.
        #[command(flatten)]
        client: ClientArgs,
        /// The trusted version.
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the latest verified version to OUT (atomically).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Replace OUT if it is an existing regular file (atomically: the old or the whole new
        /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
        /// written through, a symbolic link is followed.
        #[arg(long)]
        force: bool,
    },
    /// Delete the family, its roster and every envelope from the server.
    #[command(
        long_about = "Delete the family from the server: its roster chain and every stored \
            envelope. The deletion statement names the current roster version (fetched and \
            verified through the anchor) and needs a deletion quorum: the -i key (a guardian) \
            and a second guardian's key (--cosign) or the family's printed recovery key \
            (--recovery). The toy never counts for a deletion. The server erases nothing unless \
            the statement verifies.",
        after_help = "Examples:\n  toyseal family delete -i mum.key --cosign dad.key --roster v1.tsr\n  \
            toyseal family delete -i mum.key --recovery recovery.txt --roster v1.tsr"
    )]
    #[command(group(clap::ArgGroup::new("second").required(true).multiple(true).args(["cosign", "recovery"])))]
    Delete {
        /// Server and key.
        #[command(flatten)]
        client: ClientArgs,
        /// The trusted version.
        #[command(flatten)]
        trust: TrustArgs,
        /// Another member's key file that co-signs the deletion; repeatable.
        #[arg(long = "cosign", value_name = "KEYFILE")]
        cosign: Vec<PathBuf>,
        /// The family's printed recovery key (a file holding TOYSEAL-RECOVERY-1…) co-signs.
        #[arg(long, value_name = "FILE")]
        recovery: Option<PathBuf>,
    },
}

/// `toyseal upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Server and key.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The family.
    #[command(flatten)]
    pub family: FamilyArg,
    /// Refuse envelopes larger than this many bytes [default: the server's limit, from its
    /// health answer]; the server's limit applies too.
    #[arg(long, value_name = "BYTES")]
    pub max_size: Option<u64>,
    /// Never draw a progress indicator (one is drawn on stderr only when it is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Envelope files; `-` or none: standard input.
    #[arg(value_name = "ENVELOPE")]
    pub inputs: Vec<PathBuf>,
}

/// `toyseal list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Server and key.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The family.
    #[command(flatten)]
    pub family: FamilyArg,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `toyseal fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Server and key.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The family.
    #[command(flatten)]
    pub family: FamilyArg,
    /// Write the envelope to OUT (atomically, once verified) instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
    /// Refuse envelopes larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SIZE_LIMIT)]
    pub max_size: u64,
    /// Never draw a progress bar (one is drawn on stderr only when it is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// The envelope's id (64 hex digits, from `toyseal list` or `upload`).
    #[arg(value_name = "ID")]
    pub id: String,
}

/// `toyseal delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Server and key.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The family.
    #[command(flatten)]
    pub family: FamilyArg,
    /// The envelopes' ids.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

/// `toyseal erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// Server and key.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The trusted version (its family is the family).
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Another guardian's key file that co-signs the erasure; repeatable.
    #[arg(long = "cosign", value_name = "KEYFILE", required = true)]
    pub cosign: Vec<PathBuf>,
    /// The envelopes' ids (1 to 64).
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

/// `toyseal invite`.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// Server URL the invitation names (a hint where to fetch the roster).
    #[arg(long, env = "TOYSEAL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Client config file, for its "server".
    #[arg(long, env = "TOYSEAL_CLIENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print only the invitation's text line, no QR code.
    #[arg(long)]
    pub no_qr: bool,
    /// Roster files of versions 1 to N, in order; the invitation names version N.
    #[arg(value_name = "CHAIN", required = true)]
    pub chain: Vec<PathBuf>,
}

/// `toyseal join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Server and key.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Write the anchor to FILE (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
    /// The invitation text (toyseal-invite:1:…); `-`: read it from standard input.
    #[arg(value_name = "INVITATION")]
    pub invitation: String,
}

/// `toyseal pair`.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// Which side this process plays.
    #[arg(long = "as", value_enum, value_name = "SIDE")]
    pub side: PairSide,
    /// This device's key file (a toy's for `--as toy`, a guardian's for `--as phone`).
    #[arg(short, long, value_name = "KEYFILE")]
    pub identity: PathBuf,
    /// File holding the pairing code (the digits on the toy's tag); `-`: standard input
    /// (phone only: the toy reads its operator's confirmation, `yes`, from standard input).
    #[arg(long, value_name = "FILE")]
    pub code_file: PathBuf,
    /// Toy: the address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Phone: the toy's address.
    #[arg(long, value_name = "ADDR", required_if_eq("side", "phone"))]
    pub connect: Option<std::net::SocketAddr>,
    /// Give up when the peer is silent this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// The side `toyseal pair` plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PairSide {
    /// The toy: listens, opens its pairing window.
    Toy,
    /// A guardian's phone: connects.
    Phone,
}

impl PairSide {
    /// The value's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PairSide::Toy => "toy",
            PairSide::Phone => "phone",
        }
    }
}

/// `toyseal man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write toyseal.1 and one page per subcommand into DIR (which must exist).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `toyseal completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// A device role on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// A toy: records and plays.
    Toy,
    /// A guardian's phone.
    Guardian,
    /// A non-governing member's phone (e.g. a grandparent's): receives and sends messages,
    /// never counts in a roster quorum.
    Member,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Toy => Role::Toy,
            RoleArg::Guardian => Role::Guardian,
            RoleArg::Member => Role::Member,
        }
    }
}

/// `toyseal keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The device's role.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Write the key file to KEYFILE (mode 0600, atomic) instead of standard output.
    #[arg(short, long, value_name = "KEYFILE")]
    pub output: Option<PathBuf>,
    /// Replace KEYFILE if it already exists (the old identity is lost).
    #[arg(long)]
    pub force: bool,
}

/// `toyseal pubkey`.
#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// The key file; `-` or absent: standard input.
    #[arg(value_name = "KEYFILE")]
    pub keyfile: Option<PathBuf>,
    /// Print the device id (32 hex digits) instead of the public key.
    #[arg(long)]
    pub device_id: bool,
}

/// `toyseal seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// Never draw a progress bar (one is drawn on stderr only when stderr is a terminal and
    /// the input is larger than 8 MiB).
    #[arg(long)]
    pub no_progress: bool,
    /// The sender's key file (`-`: standard input).
    #[arg(short, long, value_name = "KEYFILE")]
    pub identity: PathBuf,
    /// A recipient's public key (toyseal1…); repeat for several recipients.
    #[arg(short = 'r', long = "recipient", value_name = "PUBKEY")]
    pub recipients: Vec<String>,
    /// A file of recipients' public keys, one per line (`#` comments allowed); repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
    /// Media type sealed inside the envelope, e.g. audio/wav (at most 64 bytes).
    #[arg(long, value_name = "TYPE", value_parser = short_text)]
    pub content_type: Option<String>,
    /// Codec sealed inside the envelope, e.g. pcm_s16le or opus (at most 64 bytes).
    #[arg(long, value_name = "CODEC", value_parser = short_text)]
    pub codec: Option<String>,
    /// Duration in milliseconds, sealed inside the envelope.
    #[arg(long, value_name = "N")]
    pub duration_ms: Option<u32>,
    /// Chunk size 2^N bytes, 10..=20 (1 KiB to 1 MiB).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CHUNK_SIZE_LOG2,
          value_parser = clap::value_parser!(u8).range(10..=20))]
    pub chunk_size_log2: u8,
    /// Content bytes between two signed checkpoints, 2^N, from the chunk size to 24 (16 MiB).
    /// Openers hold back at most this much before releasing proved content.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SEGMENT_LOG2,
          value_parser = clap::value_parser!(u8).range(10..=24))]
    pub segment_size_log2: u8,
    /// The sender's sequence number for this envelope. Default: the next one from the sender
    /// state file KEYFILE.seq beside the key file (the last sequence and header hash; created
    /// at the first seal, advanced durably once the header exists, before any byte is
    /// written). Required when the key comes from standard input.
    #[arg(long, value_name = "N")]
    pub sequence: Option<u64>,
    /// With --sequence: the header hash (64 hex digits) of this sender's previous envelope
    /// (default: all zero, a first envelope).
    #[arg(long, value_name = "HEX", requires = "sequence", value_parser = hash_hex)]
    pub previous: Option<[u8; 32]>,
    /// Family id (32 hex digits) the recipients belong to, recorded in the public header.
    #[arg(long, value_name = "FAMILY_ID")]
    pub family: Option<FamilyId>,
    /// Roster version the recipients were taken from (needs --family).
    #[arg(long, value_name = "N", requires = "family", default_value_t = 0)]
    pub roster_version: u64,
    /// Write the envelope to OUT (atomically) instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
    /// The content to seal; `-` or absent: standard input.
    #[arg(value_name = "IN")]
    pub input: Option<PathBuf>,
}

/// `toyseal open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Never draw a progress bar (one is drawn on stderr only when stderr is a terminal and
    /// the input is larger than 8 MiB).
    #[arg(long)]
    pub no_progress: bool,
    /// The recipient's key file (`-`: standard input).
    #[arg(short, long, value_name = "KEYFILE")]
    pub identity: PathBuf,
    /// A sender public key (toyseal1…) to accept; repeatable. Envelopes from anyone else fail.
    #[arg(long = "from", value_name = "SENDER_PUBKEY", required = true)]
    pub from: Vec<String>,
    /// A file of the other recipients' public keys (one per line, `#` comments; e.g. the
    /// family's members): proves they all received the same file key as this identity (the
    /// re-encryption check), so a sender cannot show different recipients different content.
    #[arg(long = "check-recipients", value_name = "FILE")]
    pub check_recipients: Option<PathBuf>,
    /// Write the content to OUT, only once the envelope fully verified.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it is an existing regular file (atomically: the old or the whole new
    /// file, never a mix). Without it an existing file is refused; devices and FIFOs are
    /// written through, a symbolic link is followed.
    #[arg(long)]
    pub force: bool,
    /// Refuse envelopes larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SIZE_LIMIT)]
    pub max_size: u64,
    /// Print the verified sender and the sealed metadata to standard error.
    #[arg(short, long)]
    pub verbose: bool,
    /// The envelope; `-` or absent: standard input.
    #[arg(value_name = "IN")]
    pub input: Option<PathBuf>,
}

/// `toyseal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Never draw a progress bar (one is drawn on stderr only when stderr is a terminal and
    /// the input is larger than 8 MiB).
    #[arg(long)]
    pub no_progress: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Refuse envelopes larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SIZE_LIMIT)]
    pub max_size: u64,
    /// The envelope; `-` or absent: standard input.
    #[arg(value_name = "IN")]
    pub input: Option<PathBuf>,
}

/// A 32-byte hash in 64 hex digits.
fn hash_hex(s: &str) -> Result<[u8; 32], String> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("64 hex digits (got {})", bytes.len()));
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digits = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
        *o = u8::from_str_radix(digits, 16).map_err(|_| "not hex".to_string())?;
    }
    Ok(out)
}

/// The metadata text fields are limited to 64 bytes by the envelope format.
fn short_text(s: &str) -> Result<String, String> {
    if s.len() > 64 {
        Err(format!("at most 64 bytes (got {})", s.len()))
    } else {
        Ok(s.to_owned())
    }
}

/// The whole command line, with the exit-status table appended to the long help of every
/// (sub)command that has examples but no long epilogue of its own. `main`, the completions and
/// the man page all use this.
pub fn command() -> clap::Command {
    fn complete(cmd: clap::Command) -> clap::Command {
        let long = match (cmd.get_after_help(), cmd.get_after_long_help()) {
            (Some(short), None) => Some(format!("{short}\n\n{}", exit_status!())),
            _ => None,
        };
        let cmd = match long {
            Some(long) => cmd.after_long_help(long),
            None => cmd,
        };
        cmd.mut_subcommands(complete)
    }
    complete(<Cli as clap::CommandFactory>::command())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_command_has_examples_and_the_exit_table() {
        fn walk(cmd: &clap::Command, path: &str) {
            let name = format!("{path} {}", cmd.get_name());
            if cmd.get_name() != "help" {
                let short = cmd.get_after_help().map(ToString::to_string);
                assert!(
                    short.is_some_and(|t| t.starts_with("Example")),
                    "{name}: no examples"
                );
                let long = cmd.get_after_long_help().map(ToString::to_string);
                assert!(
                    long.is_some_and(|t| t.contains("Exit status:") && t.contains(" 11  ")),
                    "{name}: no exit table"
                );
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &name);
            }
        }
        walk(&command(), "");
    }
}
