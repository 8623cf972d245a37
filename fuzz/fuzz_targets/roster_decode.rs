//! Raw bytes into `SignedRoster::decode`: never panics; whatever decodes encodes back to the
//! same bytes (one roster, one encoding), decodes again to an equal value, and verifying it as
//! a founding roster never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_roster::{Roster, SignedRoster};

fuzz_target!(|data: &[u8]| {
    let Ok(roster) = SignedRoster::decode(data) else {
        return;
    };
    let encoded = roster.encode();
    assert_eq!(encoded, data, "decode accepted a non-canonical encoding");
    let again = SignedRoster::decode(&encoded).expect("re-decoding its own encoding");
    assert_eq!(again, roster);
    assert_eq!(again.hash(), roster.hash());
    let _ = Roster::verify_founding(roster);
});
