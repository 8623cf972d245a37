//! Structured roster chains into `Roster::verify_founding` + `Roster::advance` and `Roster::advance`: versions built
//! from a fixed set of synthetic devices with arbitrary members, signers, version numbers,
//! previous hashes and families (plus raw byte versions). Nothing panics; verifying the whole
//! chain and verifying a prefix then advancing over the rest agree; a verified chain's result
//! is its last version, and every signer of a later version was allowed to sign.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_fuzz::cloud::{ChainInput, build_chain};
use toyseal_roster::Roster;
use toyseal_roster::{Error as RosterError, SignedRoster};

fuzz_target!(|input: ChainInput| {
    let chain = build_chain(&input);
    let whole = from_founding(&chain);
    if let Ok(r) = &whole {
        let last = chain.last().expect("a verified chain is not empty");
        assert_eq!(r.signed(), last);
        assert_eq!(r.version(), chain.len() as u64);
    }
    let split = usize::from(input.split) % (chain.len() + 1);
    if split == 0 {
        return;
    }
    if let Ok(prefix) = from_founding(&chain[..split]) {
        let advanced = prefix.advance(&chain[split..]);
        assert_eq!(advanced.is_ok(), whole.is_ok());
        if let (Ok(a), Ok(w)) = (&advanced, &whole) {
            assert_eq!(a, w);
        }
    } else {
        assert!(
            whole.is_err(),
            "a chain verified although its prefix does not"
        );
    }
});

/// The chain verified from its version 1, trusted as given (the founding device's and the
/// server's view; every other device verifies through its anchor).
fn from_founding(chain: &[SignedRoster]) -> Result<Roster, RosterError> {
    let (first, rest) = chain
        .split_first()
        .ok_or(RosterError::Malformed("empty chain"))?;
    Roster::verify_founding(first.clone())?.advance(rest)
}
