#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "btleplug")]
pub mod btleplug;
#[cfg(feature = "central")]
pub mod central;
pub mod driver;
mod error;
pub mod gatt;
pub mod link;
pub mod memory;
pub mod peripheral;

pub use driver::{
    Driver, DriverConfig, DriverEvent, PhoneDriver, Pumped, ToyDriver, run_until_idle,
};
pub use error::Error;
pub use link::{Direction, Link};
pub use memory::{MemoryEnd, MemoryLink, MemoryLinkConfig};
pub use peripheral::{GattPeripheral, PeripheralLink};
