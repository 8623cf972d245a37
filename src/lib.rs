#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use toyseal_ble as ble;
pub use toyseal_cloud as cloud;
pub use toyseal_core as core;
pub use toyseal_envelope as envelope;
pub use toyseal_pairing as pairing;
pub use toyseal_roster as roster;
