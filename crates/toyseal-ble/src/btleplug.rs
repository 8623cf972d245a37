//! [`GattClient`] over btleplug (BlueZ through D-Bus on Linux, CoreBluetooth on Apple
//! platforms, WinRT on Windows). Feature `btleplug`.
//!
//! **Not exercised here**: the build machines have no Bluetooth controller and no kernel
//! Bluetooth support, so this module is compiled and linted but never run in CI. Everything
//! above it is tested against a fake [`GattClient`] (see `central.rs`). On Linux, building
//! needs `libdbus-1-dev` and `pkg-config`.
//!
//! ```no_run
//! use toyseal_ble::btleplug::BtleplugClient;
//! use toyseal_ble::central::{CentralConfig, CentralLink};
//!
//! let link = CentralLink::scan_and_connect(CentralConfig::default(), BtleplugClient::first_adapter)?;
//! # Ok::<(), toyseal_ble::Error>(())
//! ```

use crate::Error;
use crate::central::{GattClient, NotificationSink};
use crate::gatt::{SERVICE_UUID, Uuid128};
use btleplug::api::{
    Central as _, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::StreamExt;
use std::time::Duration;

/// A btleplug adapter as a [`GattClient`].
#[derive(Clone, Debug)]
pub struct BtleplugClient {
    adapter: Adapter,
}

fn gatt(e: btleplug::Error) -> Error {
    Error::Gatt(e.to_string())
}

fn to_uuid(u: Uuid128) -> uuid::Uuid {
    uuid::Uuid::from_u128(u.as_u128())
}

fn characteristic(device: &Peripheral, which: Uuid128) -> Result<Characteristic, Error> {
    device
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == to_uuid(which) && c.service_uuid == to_uuid(SERVICE_UUID))
        .ok_or(Error::Profile("a characteristic is missing"))
}

impl BtleplugClient {
    /// The first Bluetooth adapter of the system (call inside a tokio runtime, as
    /// [`crate::central::CentralLink::scan_and_connect`] does).
    pub async fn first_adapter() -> Result<Self, Error> {
        let manager = Manager::new().await.map_err(gatt)?;
        let adapter = manager
            .adapters()
            .await
            .map_err(gatt)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Gatt("no Bluetooth adapter".into()))?;
        Ok(Self { adapter })
    }

    /// A client over a given adapter.
    pub fn new(adapter: Adapter) -> Self {
        Self { adapter }
    }
}

impl GattClient for BtleplugClient {
    type Device = Peripheral;

    async fn scan(&self, service: Uuid128, timeout: Duration) -> Result<Vec<Peripheral>, Error> {
        let wanted = to_uuid(service);
        let filter = ScanFilter {
            services: vec![wanted],
        };
        self.adapter.start_scan(filter).await.map_err(gatt)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let found = loop {
            let mut found = Vec::new();
            for p in self.adapter.peripherals().await.map_err(gatt)? {
                if let Ok(Some(props)) = p.properties().await
                    && props.services.contains(&wanted)
                {
                    found.push(p);
                }
            }
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let _ = self.adapter.stop_scan().await;
        Ok(found)
    }

    async fn connect(&self, device: &Peripheral) -> Result<(), Error> {
        device.connect().await.map_err(gatt)
    }

    async fn discover(&self, device: &Peripheral, service: Uuid128) -> Result<Vec<Uuid128>, Error> {
        device.discover_services().await.map_err(gatt)?;
        Ok(device
            .characteristics()
            .into_iter()
            .filter(|c| c.service_uuid == to_uuid(service))
            .map(|c| Uuid128::from_u128(c.uuid.as_u128()))
            .collect())
    }

    async fn read(&self, device: &Peripheral, which: Uuid128) -> Result<Vec<u8>, Error> {
        let c = characteristic(device, which)?;
        device.read(&c).await.map_err(gatt)
    }

    async fn subscribe(
        &self,
        device: &Peripheral,
        which: Uuid128,
        sink: NotificationSink,
    ) -> Result<(), Error> {
        let c = characteristic(device, which)?;
        // Take the streams first so no early notification or disconnect is missed.
        let mut notifications = device.notifications().await.map_err(gatt)?;
        let mut events = self.adapter.events().await.map_err(gatt)?;
        device.subscribe(&c).await.map_err(gatt)?;
        let want = c.uuid;
        let forward = sink.clone();
        tokio::spawn(async move {
            while let Some(n) = notifications.next().await {
                if n.uuid == want && !forward.deliver(n.value) {
                    break;
                }
            }
            forward.close();
        });
        let id = device.id();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                if matches!(&ev, CentralEvent::DeviceDisconnected(d) if *d == id) {
                    sink.close();
                    break;
                }
            }
        });
        Ok(())
    }

    async fn write_without_response(
        &self,
        device: &Peripheral,
        which: Uuid128,
        value: &[u8],
    ) -> Result<(), Error> {
        let c = characteristic(device, which)?;
        device
            .write(&c, value, WriteType::WithoutResponse)
            .await
            .map_err(gatt)
    }

    fn att_mtu(&self, device: &Peripheral) -> usize {
        usize::from(device.mtu())
    }

    async fn disconnect(&self, device: &Peripheral) -> Result<(), Error> {
        device.disconnect().await.map_err(gatt)
    }
}
