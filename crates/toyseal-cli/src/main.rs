//! The `toyseal` binary; everything lives in the `toyseal_cli` library.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

fn main() -> std::process::ExitCode {
    toyseal_cli::main()
}
