#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
mod cloud;
mod demo;
mod error;
mod files;
mod inspect;
mod invite;
mod keygen;
mod keys;
mod open;
mod pair;
mod roster;
mod seal;

pub use cli::Cli;
pub use error::{Error, Exit, Place};
pub use inspect::Report;

use clap::FromArgMatches;
use std::{io::Write, process::ExitCode};

/// Parses the process arguments, runs the command, prints any error as one line
/// (`toyseal: error: …`) and returns the documented exit code.
pub fn main() -> ExitCode {
    let parsed = cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(&cli) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            note(&format!("toyseal: error: {e}"));
            e.exit().into()
        }
    }
}

/// Runs one parsed command line.
pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        cli::Command::Keygen(a) => keygen::keygen(a),
        cli::Command::Pubkey(a) => keygen::pubkey(a),
        cli::Command::Seal(a) => seal::seal(a, !a.no_progress),
        cli::Command::Open(a) => open::open(a, !a.no_progress),
        cli::Command::Inspect(a) => inspect::inspect(a, !a.no_progress),
        cli::Command::Serve(a) => toyseal_server::run(a).map_err(|e| Error::Serve(e.to_string())),
        // A --data directory the demo may not use is a usage error (exit 2) before anything
        // runs; any other failure to prepare it is the demo's first failed check (exit 7).
        cli::Command::Demo(a) => match demo::prepare_data_dir(&a.data) {
            Err(e @ Error::Usage(_)) => Err(e),
            prepared => demo::run(a, prepared).map_err(|e| Error::Demo(e.to_string())),
        },
        cli::Command::Roster(c) => roster::run(c),
        cli::Command::Family(c) => cloud::family(c),
        cli::Command::Upload(a) => cloud::upload(a),
        cli::Command::List(a) => cloud::list(a),
        cli::Command::Fetch(a) => cloud::fetch(a),
        cli::Command::Delete(a) => cloud::delete(a),
        cli::Command::Restore(a) => cloud::restore(a),
        cli::Command::Deleted(a) => cloud::deleted(a),
        cli::Command::Erase(a) => cloud::erase(a),
        cli::Command::Invite(a) => invite::invite(a),
        cli::Command::Join(a) => cloud::join(a),
        cli::Command::Pair(a) => pair::pair(a),
        cli::Command::Completions(a) => {
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cli::command(), "toyseal", &mut script);
            write_stdout(&script)
        }
        cli::Command::Man(a) => match &a.dir {
            None => {
                let mut page = Vec::new();
                clap_mangen::Man::new(cli::command())
                    .render(&mut page)
                    .map_err(|e| Error::io(Place::Stdout, e))?;
                write_stdout(&page)
            }
            Some(dir) => man_pages(dir),
        },
    }
}

/// Writes the man page of toyseal and of every subcommand into `dir` (created if missing),
/// each atomically (as
/// `clap_mangen::generate_to` names them), and prints their paths.
fn man_pages(dir: &std::path::Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(Place::File(dir.to_path_buf()), e))?;
    fn walk(cmd: clap::Command, dir: &std::path::Path, paths: &mut String) -> Result<(), Error> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, dir, paths)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page)
            .map_err(|e| Error::io(Place::File(path.clone()), e))?;
        // Regenerating the pages is the command's job: each is replaced.
        files::write_whole(Some(&path), &page, false, files::Overwrite::Replace)?;
        paths.push_str(&format!("{}\n", path.display()));
        Ok(())
    }
    let mut cmd = cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut paths = String::new();
    walk(cmd, dir, &mut paths)?;
    write_stdout(paths.as_bytes())
}

/// Writes generated text to standard output, reporting a closed pipe as an error.
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(Place::Stdout, e))
}

/// Writes a message to standard error. A failing stderr cannot be reported anywhere, so its
/// errors are ignored (instead of `eprintln!`'s panic).
pub(crate) fn note(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
    let _ = err.flush();
}
