//! The key-file format: the secret key line plus comments a person can read.
//!
//! ```text
//! # toyseal device identity: keep this file secret.
//! # role: toy
//! # device id: 5f0c…
//! # public key: toyseal1q…
//! TOYSEAL-SECRET-KEY-1…
//! ```
//!
//! Lines starting with `#` and blank lines are ignored; exactly one secret-key line is required.

use crate::{DeviceIdentity, Error};
use zeroize::Zeroizing;

impl DeviceIdentity {
    /// Renders the identity as a key file (secret). Zeroizes on drop.
    pub fn to_key_file(&self) -> Result<Zeroizing<String>, Error> {
        let secret = self.export_secret_key_text()?;
        let mut out = Zeroizing::new(String::with_capacity(secret.len() + 256));
        out.push_str("# toyseal device identity: keep this file secret.\n");
        out.push_str(&format!("# role: {}\n", self.role()));
        out.push_str(&format!("# device id: {}\n", self.device_id()));
        out.push_str(&format!("# public key: {}\n", self.public()));
        out.push_str(&secret);
        out.push('\n');
        Ok(out)
    }

    /// Parses a key file written by [`to_key_file`](Self::to_key_file).
    pub fn from_key_file(contents: &str) -> Result<Self, Error> {
        let mut found = None;
        for line in contents.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if found.is_some() {
                return Err(Error::KeyFile("more than one secret key line"));
            }
            found = Some(line);
        }
        let line = found.ok_or(Error::KeyFile("no secret key line"))?;
        DeviceIdentity::from_secret_key_text(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn key_file_round_trips_and_names_the_public_key() {
        let id = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([3; 32]));
        let file = id.to_key_file().unwrap();
        assert!(file.contains(&id.public().to_string()));
        let back = DeviceIdentity::from_key_file(&file).unwrap();
        assert_eq!(back.public(), id.public());
    }

    #[test]
    fn key_file_errors_are_typed() {
        assert!(matches!(
            DeviceIdentity::from_key_file("# only a comment\n"),
            Err(Error::KeyFile(_))
        ));
        let id = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([3; 32]));
        let s = id.export_secret_key_text().unwrap();
        let doubled = format!("{}\n{}\n", *s, *s);
        assert!(matches!(
            DeviceIdentity::from_key_file(&doubled),
            Err(Error::KeyFile(_))
        ));
    }
}
