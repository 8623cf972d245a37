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
        cli::Command::Demo(a) => demo::run(a).map_err(|e| Error::Demo(e.to_string())),
        cli::Command::Roster(c) => roster::run(c),
        cli::Command::Family(c) => cloud::family(c),
        cli::Command::Upload(a) => cloud::upload(a),
        cli::Command::List(a) => cloud::list(a),
        cli::Command::Fetch(a) => cloud::fetch(a),
        cli::Command::Delete(a) => cloud::delete(a),
        cli::Command::Invite(a) => invite::invite(a),
        cli::Command::Join(a) => cloud::join(a),
    }
}

/// Writes a message to standard error. A failing stderr cannot be reported anywhere, so its
/// errors are ignored (instead of `eprintln!`'s panic).
pub(crate) fn note(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
    let _ = err.flush();
}
