//! Arbitrary UTF-8 into every text parser of `toyseal-core`: public keys, secret keys, key
//! files, device ids and family ids. Nothing may panic; whatever parses must round-trip through
//! its own text form to an equal value, and a key's text form must be canonical: the parser
//! accepts only the string `Display` / export would write (up to case and surrounding
//! whitespace), so one key never has two spellings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity};

fuzz_target!(|s: &str| {
    if let Ok(public) = s.parse::<PublicIdentity>() {
        let text = public.to_string();
        let back: PublicIdentity = text.parse().expect("Display output must parse");
        assert_eq!(back, public);
        assert_eq!(back.to_string(), text);
        assert_eq!(back.device_id(), public.device_id());
        assert_eq!(
            text,
            s.trim().to_ascii_lowercase(),
            "non-canonical key text accepted"
        );
    }

    if let Ok(id) = DeviceIdentity::from_secret_key_text(s) {
        round_trip_secret(&id);
        let text = id.export_secret_key_text().expect("export");
        assert_eq!(
            *text,
            s.trim().to_ascii_uppercase(),
            "non-canonical key text accepted"
        );
    }
    if let Ok(id) = DeviceIdentity::from_key_file(s) {
        round_trip_secret(&id);
    }

    if let Ok(id) = s.parse::<DeviceId>() {
        assert_eq!(id.to_string(), s.to_ascii_lowercase());
        assert_eq!(id.to_string().parse::<DeviceId>().ok(), Some(id));
    }
    if let Ok(id) = s.parse::<FamilyId>() {
        assert_eq!(id.to_string(), s.to_ascii_lowercase());
        assert_eq!(id.to_string().parse::<FamilyId>().ok(), Some(id));
    }
});

fn round_trip_secret(id: &DeviceIdentity) {
    let text = id.export_secret_key_text().expect("export");
    let back = DeviceIdentity::from_secret_key_text(&text).expect("exported text must parse");
    assert_eq!(back.public(), id.public());
    let file = id.to_key_file().expect("key file");
    let back = DeviceIdentity::from_key_file(&file).expect("written key file must parse");
    assert_eq!(back.public(), id.public());
    let public = id.public().to_string();
    assert_eq!(
        public.parse::<PublicIdentity>().ok().as_ref(),
        Some(id.public())
    );
}
