//! The phone's (or a desktop's) side of GATT: an async BLE central bridged to the sync
//! [`Link`], so [`crate::PhoneDriver`] runs over a real radio.
//!
//! The Bluetooth stack sits behind the narrow [`GattClient`] trait (scan, connect, discover,
//! read, subscribe, write without response, MTU, disconnect); the `btleplug` feature
//! implements it with btleplug (`btleplug::BtleplugClient`). Everything above the
//! trait — the connection procedure of docs/spec/gatt.md with its timeouts, the profile and
//! version checks, the MTU clamp, the bounded notification queue and the async→sync bridge —
//! is here and unit-tested against a fake client.
//!
//! **No radio here.** The machines that build and test toyseal have no Bluetooth controller
//! or kernel Bluetooth support; the btleplug client is compiled (feature `btleplug`) but only
//! exercised on real hardware. The tests stop at the [`GattClient`] trait.
//!
//! [`CentralLink`] owns a small tokio runtime (one worker) that drives the client; call it
//! from ordinary threads, not from inside another async runtime (it refuses, rather than
//! panic).

use crate::Error;
use crate::gatt::{
    RX_UUID, SERVICE_UUID, TX_UUID, Uuid128, VERSION_UUID, VERSION_VALUE, clamp_mtu,
};
use crate::link::{Link, check_packet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::Duration;

/// A BLE central's operations, as the toyseal profile needs them. Implemented by
/// `btleplug::BtleplugClient` (feature `btleplug`), and by fakes in tests.
pub trait GattClient: Send + Sync + 'static {
    /// A discovered peripheral.
    type Device: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// Scans for peripherals advertising `service`; returns those found (possibly none) by
    /// `timeout`.
    fn scan(
        &self,
        service: Uuid128,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Self::Device>, Error>> + Send;

    /// Connects (the stack exchanges the ATT MTU as part of it, or right after).
    fn connect(&self, device: &Self::Device) -> impl Future<Output = Result<(), Error>> + Send;

    /// Discovers services; returns the characteristic UUIDs found under `service`.
    fn discover(
        &self,
        device: &Self::Device,
        service: Uuid128,
    ) -> impl Future<Output = Result<Vec<Uuid128>, Error>> + Send;

    /// Reads a characteristic of the toyseal service.
    fn read(
        &self,
        device: &Self::Device,
        characteristic: Uuid128,
    ) -> impl Future<Output = Result<Vec<u8>, Error>> + Send;

    /// Enables notifications (writes the CCCD) and forwards every notification value of
    /// `characteristic`, in order, to `sink`, until `sink.deliver` returns `false`; calls
    /// `sink.close()` when the connection ends.
    fn subscribe(
        &self,
        device: &Self::Device,
        characteristic: Uuid128,
        sink: NotificationSink,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// ATT Write Without Response (Write Command) to a characteristic of the service.
    fn write_without_response(
        &self,
        device: &Self::Device,
        characteristic: Uuid128,
        value: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The negotiated ATT MTU.
    fn att_mtu(&self, device: &Self::Device) -> usize;

    /// Disconnects.
    fn disconnect(&self, device: &Self::Device) -> impl Future<Output = Result<(), Error>> + Send;
}

#[derive(Debug, Default)]
struct SinkState {
    overflowed: AtomicBool,
    closed: AtomicBool,
}

/// Where a [`GattClient`] puts `tx` notifications: a bounded queue the [`CentralLink`] reads.
/// If it is full a packet would be lost, so the link is marked broken instead.
#[derive(Clone, Debug)]
pub struct NotificationSink {
    tx: SyncSender<Vec<u8>>,
    state: Arc<SinkState>,
}

impl NotificationSink {
    /// Hands one notification value over. `false`: stop forwarding (the link is gone or
    /// broken).
    pub fn deliver(&self, packet: Vec<u8>) -> bool {
        if self.state.closed.load(Ordering::Acquire) {
            return false;
        }
        match self.tx.try_send(packet) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.state.overflowed.store(true, Ordering::Release);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// The connection ended.
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::Release);
    }
}

/// Timeouts and bounds of a central connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CentralConfig {
    /// How long to scan for a toy (default 10 s).
    pub scan_timeout: Duration,
    /// How long connecting may take (default 10 s).
    pub connect_timeout: Duration,
    /// How long discovery, a read, the subscription or one write may take (default 5 s).
    pub op_timeout: Duration,
    /// Notifications queued before the link counts as broken (default 1024).
    pub notification_capacity: usize,
}

impl Default for CentralConfig {
    fn default() -> Self {
        Self {
            scan_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(5),
            notification_capacity: 1024,
        }
    }
}

impl CentralConfig {
    /// With this scan timeout.
    pub fn with_scan_timeout(mut self, d: Duration) -> Self {
        self.scan_timeout = d;
        self
    }
    /// With this connect timeout.
    pub fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// With this per-operation timeout.
    pub fn with_op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }
    /// With this notification queue bound.
    pub fn with_notification_capacity(mut self, packets: usize) -> Self {
        self.notification_capacity = packets.max(1);
        self
    }
}

/// A connected toy, through a [`GattClient`], as a [`Link`].
pub struct CentralLink<C: GattClient> {
    runtime: Option<tokio::runtime::Runtime>,
    client: Arc<C>,
    device: C::Device,
    att_mtu: usize,
    inbox: Receiver<Vec<u8>>,
    sink: Arc<SinkState>,
    connected: bool,
    config: CentralConfig,
}

async fn within<T>(
    d: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(d, fut)
        .await
        .map_err(|_| Error::Timeout(what))?
}

impl<C: GattClient> CentralLink<C> {
    /// Builds the client with `make_client` (inside the link's runtime), then follows
    /// docs/spec/gatt.md §Connection: scan for the toyseal service, connect to the first toy
    /// found, discover and check the three characteristics, read and check `version`, take
    /// the negotiated MTU (clamped to 247), subscribe to `tx`. Every step has a timeout; on any
    /// failure after connecting, it disconnects.
    pub fn scan_and_connect<F, Fut>(config: CentralConfig, make_client: F) -> Result<Self, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Error>>,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Gatt(
                "CentralLink runs its own runtime: use it outside async code".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::Gatt(e.to_string()))?;
        let (tx, inbox) = sync_channel(config.notification_capacity.max(1));
        let sink = NotificationSink {
            tx,
            state: Arc::new(SinkState::default()),
        };
        let state = sink.state.clone();
        let (client, device, att_mtu) = runtime.block_on(async {
            let client = make_client().await?;
            let found = within(
                config.scan_timeout.saturating_add(config.op_timeout),
                "scan",
                client.scan(SERVICE_UUID, config.scan_timeout),
            )
            .await?;
            let device = found.into_iter().next().ok_or(Error::NotFound)?;
            within(config.connect_timeout, "connect", client.connect(&device)).await?;
            match Self::set_up(&client, &device, &config, sink).await {
                Ok(mtu) => Ok((client, device, mtu)),
                Err(e) => {
                    let _ =
                        within(config.op_timeout, "disconnect", client.disconnect(&device)).await;
                    Err(e)
                }
            }
        })?;
        Ok(Self {
            runtime: Some(runtime),
            client: Arc::new(client),
            device,
            att_mtu,
            inbox,
            sink: state,
            connected: true,
            config,
        })
    }

    async fn set_up(
        client: &C,
        device: &C::Device,
        config: &CentralConfig,
        sink: NotificationSink,
    ) -> Result<usize, Error> {
        let t = config.op_timeout;
        let found = within(t, "discover", client.discover(device, SERVICE_UUID)).await?;
        for needed in [RX_UUID, TX_UUID, VERSION_UUID] {
            if !found.contains(&needed) {
                return Err(Error::Profile("a characteristic is missing"));
            }
        }
        let version = within(t, "read version", client.read(device, VERSION_UUID)).await?;
        if version != VERSION_VALUE {
            return Err(Error::Profile("unsupported protocol version"));
        }
        let att_mtu = clamp_mtu(client.att_mtu(device))?;
        within(t, "subscribe", client.subscribe(device, TX_UUID, sink)).await?;
        Ok(att_mtu)
    }

    /// The connected device.
    pub fn device(&self) -> &C::Device {
        &self.device
    }

    /// The client.
    pub fn client(&self) -> &C {
        &self.client
    }

    fn block<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let rt = self.runtime.as_ref().ok_or(Error::Disconnected)?;
        rt.block_on(within(self.config.op_timeout, what, fut))
    }
}

impl<C: GattClient> Link for CentralLink<C> {
    fn att_mtu(&self) -> usize {
        self.att_mtu
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), Error> {
        if !self.is_connected() {
            return Err(Error::Disconnected);
        }
        check_packet(packet, self.att_mtu)?;
        let r = self.block(
            "write",
            self.client
                .write_without_response(&self.device, RX_UUID, packet),
        );
        if r.is_err() {
            // A write that may or may not have gone out breaks the packet stream.
            self.disconnect();
        }
        r
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if !self.connected {
            return Err(Error::Disconnected);
        }
        if self.sink.overflowed.load(Ordering::Acquire) {
            self.disconnect();
            return Err(Error::Overflow);
        }
        match self.inbox.try_recv() {
            Ok(p) => Ok(Some(p)),
            Err(TryRecvError::Empty) if !self.sink.closed.load(Ordering::Acquire) => Ok(None),
            Err(_) => {
                self.connected = false;
                Err(Error::Disconnected)
            }
        }
    }

    fn is_connected(&self) -> bool {
        self.connected && !self.sink.closed.load(Ordering::Acquire)
    }

    fn disconnect(&mut self) {
        if self.connected {
            self.connected = false;
            self.sink.closed.store(true, Ordering::Release);
            let _ = self.block("disconnect", self.client.disconnect(&self.device));
        }
    }
}

impl<C: GattClient> Drop for CentralLink<C> {
    fn drop(&mut self) {
        self.disconnect();
        if let Some(rt) = self.runtime.take() {
            // Does not block and does not panic inside another runtime.
            rt.shutdown_background();
        }
    }
}

impl<C: GattClient> std::fmt::Debug for CentralLink<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentralLink")
            .field("device", &self.device)
            .field("att_mtu", &self.att_mtu)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Fake {
        devices: usize,
        chars: Vec<Uuid128>,
        version: Vec<u8>,
        mtu: usize,
        connect_delay: Duration,
        log: Arc<Mutex<Vec<String>>>,
        sink: Arc<Mutex<Option<NotificationSink>>>,
        written: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    fn good() -> Fake {
        Fake {
            devices: 1,
            chars: vec![VERSION_UUID, TX_UUID, RX_UUID],
            version: VERSION_VALUE.to_vec(),
            mtu: 185,
            ..Default::default()
        }
    }

    impl Fake {
        fn log(&self, s: String) {
            self.log.lock().unwrap().push(s);
        }
        fn sink(&self) -> NotificationSink {
            self.sink.lock().unwrap().clone().unwrap()
        }
    }

    impl GattClient for Fake {
        type Device = u8;
        fn scan(
            &self,
            service: Uuid128,
            _timeout: Duration,
        ) -> impl Future<Output = Result<Vec<u8>, Error>> + Send {
            self.log(format!("scan {service}"));
            let n = self.devices as u8;
            async move { Ok((0..n).collect()) }
        }
        fn connect(&self, d: &u8) -> impl Future<Output = Result<(), Error>> + Send {
            self.log(format!("connect {d}"));
            let delay = self.connect_delay;
            async move {
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
        fn discover(
            &self,
            _d: &u8,
            service: Uuid128,
        ) -> impl Future<Output = Result<Vec<Uuid128>, Error>> + Send {
            self.log(format!("discover {service}"));
            let c = self.chars.clone();
            async move { Ok(c) }
        }
        fn read(&self, _d: &u8, c: Uuid128) -> impl Future<Output = Result<Vec<u8>, Error>> + Send {
            self.log(format!("read {c}"));
            let v = self.version.clone();
            async move { Ok(v) }
        }
        fn subscribe(
            &self,
            _d: &u8,
            c: Uuid128,
            sink: NotificationSink,
        ) -> impl Future<Output = Result<(), Error>> + Send {
            self.log(format!("subscribe {c}"));
            *self.sink.lock().unwrap() = Some(sink);
            async { Ok(()) }
        }
        fn write_without_response(
            &self,
            _d: &u8,
            c: Uuid128,
            value: &[u8],
        ) -> impl Future<Output = Result<(), Error>> + Send {
            assert_eq!(c, RX_UUID);
            self.written.lock().unwrap().push(value.to_vec());
            async { Ok(()) }
        }
        fn att_mtu(&self, _d: &u8) -> usize {
            self.mtu
        }
        fn disconnect(&self, d: &u8) -> impl Future<Output = Result<(), Error>> + Send {
            self.log(format!("disconnect {d}"));
            async { Ok(()) }
        }
    }

    fn connect(fake: &Fake, config: CentralConfig) -> Result<CentralLink<Fake>, Error> {
        let f = fake.clone();
        CentralLink::scan_and_connect(config, move || async move { Ok(f) })
    }

    #[test]
    fn connection_procedure_in_spec_order() {
        let fake = good();
        let link = connect(&fake, CentralConfig::default()).unwrap();
        assert_eq!(link.att_mtu(), 185);
        assert_eq!(
            *fake.log.lock().unwrap(),
            vec![
                format!("scan {SERVICE_UUID}"),
                "connect 0".to_string(),
                format!("discover {SERVICE_UUID}"),
                format!("read {VERSION_UUID}"),
                format!("subscribe {TX_UUID}"),
            ]
        );
        drop(link);
        assert_eq!(fake.log.lock().unwrap().last().unwrap(), "disconnect 0");
    }

    #[test]
    fn refuses_wrong_profiles_and_disconnects() {
        let mut f = good();
        f.chars.retain(|c| *c != TX_UUID);
        assert!(matches!(
            connect(&f, CentralConfig::default()),
            Err(Error::Profile(_))
        ));
        assert_eq!(f.log.lock().unwrap().last().unwrap(), "disconnect 0");
        let mut f = good();
        f.version = vec![2];
        assert!(matches!(
            connect(&f, CentralConfig::default()),
            Err(Error::Profile(_))
        ));
        let mut f = good();
        f.mtu = 20;
        assert!(matches!(
            connect(&f, CentralConfig::default()),
            Err(Error::Mtu(20))
        ));
        let mut f = good();
        f.devices = 0;
        assert!(matches!(
            connect(&f, CentralConfig::default()),
            Err(Error::NotFound)
        ));
        let mut f = good();
        f.mtu = 517;
        assert_eq!(
            connect(&f, CentralConfig::default()).unwrap().att_mtu(),
            247
        );
    }

    #[test]
    fn connect_timeout() {
        let mut f = good();
        f.connect_delay = Duration::from_secs(30);
        let r = connect(
            &f,
            CentralConfig::default().with_connect_timeout(Duration::from_millis(50)),
        );
        assert!(matches!(r, Err(Error::Timeout("connect"))), "{r:?}");
    }

    #[test]
    fn packets_both_ways_in_order_and_bounded() {
        let fake = good();
        let mut link = connect(
            &fake,
            CentralConfig::default().with_notification_capacity(3),
        )
        .unwrap();
        link.send(&[1, 2, 3]).unwrap();
        link.send(&[4; 182]).unwrap();
        assert!(matches!(
            link.send(&[0; 183]),
            Err(Error::PacketTooLarge { len: 183, max: 182 })
        ));
        assert_eq!(
            *fake.written.lock().unwrap(),
            vec![vec![1, 2, 3], vec![4; 182]]
        );
        assert_eq!(link.recv().unwrap(), None);
        let sink = fake.sink();
        assert!(sink.deliver(vec![9]));
        assert!(sink.deliver(vec![8]));
        assert_eq!(link.recv().unwrap(), Some(vec![9]));
        assert_eq!(link.recv().unwrap(), Some(vec![8]));
        // Overflow: four notifications into a queue of three breaks the link.
        for i in 0..3 {
            assert!(sink.deliver(vec![i]));
        }
        assert!(!sink.deliver(vec![3]));
        assert!(matches!(link.recv(), Err(Error::Overflow)));
        assert!(!link.is_connected());
        assert!(matches!(link.send(&[1]), Err(Error::Disconnected)));
    }

    #[test]
    fn peer_disconnect_is_seen() {
        let fake = good();
        let mut link = connect(&fake, CentralConfig::default()).unwrap();
        let sink = fake.sink();
        assert!(sink.deliver(vec![1]));
        sink.close();
        assert!(!link.is_connected());
        assert_eq!(
            link.recv().unwrap(),
            Some(vec![1]),
            "what arrived is still read"
        );
        assert!(matches!(link.recv(), Err(Error::Disconnected)));
    }

    #[test]
    fn refuses_to_nest_runtimes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fake = good();
        let r = rt.block_on(async { connect(&fake, CentralConfig::default()) });
        assert!(matches!(r, Err(Error::Gatt(_))));
    }
}
