//! The peripheral: the GATT application a device or a joiner serves, and the bearer of the
//! central that subscribes to it.

use std::collections::VecDeque;

use bluer::adv::{Advertisement, AdvertisementHandle, Type};
use bluer::gatt::WriteOp;
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicNotifier, CharacteristicNotify,
    CharacteristicNotifyMethod, CharacteristicRead, CharacteristicWrite, CharacteristicWriteMethod,
    ReqError, Service,
};
use bluer::{Adapter, AdapterEvent, Address, DeviceEvent, DeviceProperty, Session};
use futures_util::future::{self, FutureExt};
use futures_util::stream::{BoxStream, SelectAll, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{keep_while_waiting, powered_adapter, session, stack, uuid};
use crate::profile::{
    INDICATE_CHARACTERISTIC_UUID, INFO_CHARACTERISTIC_UUID, SERVICE_UUID, WRITE_CHARACTERISTIC_UUID,
};
use crate::{BearerEvent, Error, GattBearer, MIN_ATT_MTU, ServiceInfo};

/// How many of the central's operations wait in the queue before BlueZ's calls wait too
/// (a write is only answered once queued, which is the flow control).
const QUEUE: usize = 16;

/// What BlueZ told the application, in the order it told it.
enum Incoming {
    /// The central wrote a segment (answered with a Write Response once queued).
    Write {
        bytes: Vec<u8>,
        mtu: u16,
        from: Address,
    },
    /// The central subscribed to the indicate characteristic.
    Subscribed(CharacteristicNotifier),
    /// The central read the info characteristic.
    InfoRead,
    /// A device's connection changed.
    Connection { device: Address, connected: bool },
}

/// Stops a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The provisioning service, registered and advertised on one adapter.
///
/// Dropping it (or the [`PeripheralBearer`] it becomes) stops the advertisement and
/// unregisters the application.
pub struct BlePeripheral {
    adapter: Adapter,
    incoming: mpsc::Receiver<Incoming>,
    // Field order is drop order: the application and advertisement go before the session.
    _application: ApplicationHandle,
    _advertisement: AdvertisementHandle,
    _watcher: AbortOnDrop,
    _session: Session,
}

impl std::fmt::Debug for BlePeripheral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlePeripheral")
            .field("adapter", &self.adapter.name())
            .finish_non_exhaustive()
    }
}

impl BlePeripheral {
    /// Powers the adapter (the default one when `adapter_name` is `None`), registers the
    /// service with its three characteristics and advertises it with `local_name`.
    ///
    /// The write characteristic takes Write Requests only (each one answered, so it is the
    /// acknowledgement [`GattBearer::send_segment`] waits for on the central), the indicate
    /// characteristic only indicates, and the info characteristic reads `info.encode()`.
    ///
    /// # Errors
    /// [`Error::Stack`] when the D-Bus bus, the adapter, the registration or the
    /// advertisement fails.
    pub async fn start(
        adapter_name: Option<&str>,
        local_name: &str,
        info: ServiceInfo,
    ) -> Result<BlePeripheral, Error> {
        let session = session().await?;
        let adapter = powered_adapter(&session, adapter_name).await?;
        let (tx, incoming) = mpsc::channel(QUEUE);
        let watcher = AbortOnDrop(tokio::spawn(watch_connections(adapter.clone(), tx.clone())));
        let application = adapter
            .serve_gatt_application(application(info, tx))
            .await
            .map_err(|e| stack("registering the GATT application", e))?;
        let advertisement = adapter
            .advertise(Advertisement {
                advertisement_type: Type::Peripheral,
                service_uuids: [uuid(SERVICE_UUID)].into(),
                local_name: Some(local_name.to_owned()),
                discoverable: Some(true),
                ..Default::default()
            })
            .await
            .map_err(|e| stack("advertising", e))?;
        tracing::debug!(adapter = adapter.name(), "BLE peripheral advertising");
        Ok(BlePeripheral {
            adapter,
            incoming,
            _application: application,
            _advertisement: advertisement,
            _watcher: watcher,
            _session: session,
        })
    }

    /// The adapter's name (`hci0`, …).
    pub fn adapter_name(&self) -> &str {
        self.adapter.name()
    }

    /// Waits for a central to subscribe to the indicate characteristic and then read the info
    /// (or write), and gives its bearer.
    ///
    /// The read after the subscription is how the peripheral knows the central listens: BlueZ
    /// acknowledges a subscription before a `bluer` central has set up the D-Bus match for
    /// the values (its `notify` subscribes first, then listens), so an indication sent at once
    /// could be confirmed by BlueZ and never reach the application. [`BleCentral`] subscribes,
    /// then reads the info.
    ///
    /// It takes the peripheral: one central at a time is served, and its later disconnects
    /// and reconnects are [`BearerEvent`]s of that bearer. Writes that arrive before are kept
    /// for [`GattBearer::next_event`].
    ///
    /// [`BleCentral`]: super::BleCentral
    ///
    /// # Errors
    /// [`Error::Stack`] when the application was unregistered under us.
    pub async fn accept(self) -> Result<PeripheralBearer, Error> {
        let mut bearer = PeripheralBearer {
            peripheral: self,
            notifier: None,
            subscribing: None,
            central: None,
            mtu: MIN_ATT_MTU,
            connected: false,
            pending: VecDeque::new(),
        };
        loop {
            let incoming = bearer.peripheral.incoming.recv().await;
            match bearer.take(incoming)? {
                Some(BearerEvent::Reconnected) => return Ok(bearer),
                Some(event) => bearer.pending.push_back(event),
                None => {}
            }
        }
    }
}

fn application_gone() -> Error {
    Error::Stack("the GATT application is no longer registered".into())
}

/// The service: write, indicate and info characteristics feeding `tx`.
fn application(info: ServiceInfo, tx: mpsc::Sender<Incoming>) -> Application {
    let (writes, reads) = (tx.clone(), tx.clone());
    let write = Characteristic {
        uuid: uuid(WRITE_CHARACTERISTIC_UUID),
        write: Some(CharacteristicWrite {
            // bluer's `write` is BlueZ's "write" flag, Write Request (its rustdoc has the two
            // swapped); no Write Command: a segment must be acknowledged.
            write: true,
            write_without_response: false,
            method: CharacteristicWriteMethod::Fun(Box::new(move |bytes, request| {
                let writes = writes.clone();
                async move {
                    // One write is one whole segment: a long write (Prepare Write, then a
                    // value at an offset) is outside the profile.
                    if request.offset != 0 {
                        return Err(ReqError::InvalidOffset);
                    }
                    if request.op_type == WriteOp::Reliable || request.prepare_authorize {
                        return Err(ReqError::NotSupported);
                    }
                    let write = Incoming::Write {
                        bytes,
                        mtu: request.mtu,
                        from: request.device_address,
                    };
                    writes.send(write).await.map_err(|_| ReqError::Failed)
                }
                .boxed()
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let indicate = Characteristic {
        uuid: uuid(INDICATE_CHARACTERISTIC_UUID),
        notify: Some(CharacteristicNotify {
            // Indicate only: bluer then waits for each confirmation in `notify`.
            notify: false,
            indicate: true,
            method: CharacteristicNotifyMethod::Fun(Box::new(move |notifier| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(Incoming::Subscribed(notifier)).await;
                }
                .boxed()
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let value = info.encode().to_vec();
    let info = Characteristic {
        uuid: uuid(INFO_CHARACTERISTIC_UUID),
        read: Some(CharacteristicRead {
            read: true,
            fun: Box::new(move |request| {
                let value = value.get(usize::from(request.offset)..).map(<[u8]>::to_vec);
                let reads = reads.clone();
                async move {
                    let _ = reads.send(Incoming::InfoRead).await;
                    value.ok_or(ReqError::InvalidOffset)
                }
                .boxed()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Application {
        services: vec![Service {
            uuid: uuid(SERVICE_UUID),
            primary: true,
            characteristics: vec![write, indicate, info],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Follows the `Connected` property of every device the adapter knows or learns of, which is
/// where BlueZ reports a central's disconnect.
async fn watch_connections(adapter: Adapter, tx: mpsc::Sender<Incoming>) {
    let Ok(mut adapter_events) = adapter.events().await else {
        return;
    };
    let mut devices = SelectAll::new();
    for address in adapter.device_addresses().await.unwrap_or_default() {
        devices.extend(device_events(&adapter, address).await);
    }
    loop {
        tokio::select! {
            event = adapter_events.next() => match event {
                Some(AdapterEvent::DeviceAdded(address)) => {
                    devices.extend(device_events(&adapter, address).await);
                }
                Some(_) => {}
                None => return,
            },
            Some((device, event)) = devices.next() => {
                if let DeviceEvent::PropertyChanged(DeviceProperty::Connected(connected)) = event
                    && tx.send(Incoming::Connection { device, connected }).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// The property changes of one device, tagged with its address.
async fn device_events(
    adapter: &Adapter,
    address: Address,
) -> Option<BoxStream<'static, (Address, DeviceEvent)>> {
    let events = adapter.device(address).ok()?.events().await.ok()?;
    Some(events.map(move |event| (address, event)).boxed())
}

/// The peripheral's side of the connection to one central: indications out, writes in.
///
/// [`mtu`](GattBearer::mtu) is the MTU of the central's latest write (BlueZ passes it with
/// each one), [`MIN_ATT_MTU`] before the first. The central unsubscribing or disconnecting is
/// [`BearerEvent::Disconnected`]; its next subscription, once followed by a read or a write,
/// is [`BearerEvent::Reconnected`].
pub struct PeripheralBearer {
    peripheral: BlePeripheral,
    notifier: Option<CharacteristicNotifier>,
    /// A subscription of a central that has not read or written since (see
    /// [`BlePeripheral::accept`]).
    subscribing: Option<CharacteristicNotifier>,
    central: Option<Address>,
    mtu: u16,
    connected: bool,
    pending: VecDeque<BearerEvent>,
}

impl std::fmt::Debug for PeripheralBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeripheralBearer")
            .field("adapter", &self.peripheral.adapter_name())
            .field("central", &self.central)
            .field("mtu", &self.mtu)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl PeripheralBearer {
    /// The central's address, once it wrote.
    pub fn central(&self) -> Option<Address> {
        self.central
    }

    /// The peripheral, to accept another central once this one is done.
    pub fn into_peripheral(self) -> BlePeripheral {
        self.peripheral
    }

    /// Turns what BlueZ said into what the peer did (`None`: nothing to report).
    fn take(&mut self, incoming: Option<Incoming>) -> Result<Option<BearerEvent>, Error> {
        Ok(match incoming.ok_or_else(application_gone)? {
            Incoming::Write { bytes, mtu, from } => {
                self.mtu = mtu;
                self.central = Some(from);
                let segment = BearerEvent::Segment { bytes, mtu };
                match self.listening() {
                    Some(reconnected) => {
                        self.pending.push_back(segment);
                        Some(reconnected)
                    }
                    None => Some(segment),
                }
            }
            Incoming::InfoRead => self.listening(),
            // A central already connected that subscribes again is listening already.
            Incoming::Subscribed(notifier) if self.connected => {
                self.notifier = Some(notifier);
                None
            }
            Incoming::Subscribed(notifier) => {
                self.subscribing = Some(notifier);
                None
            }
            Incoming::Connection { device, connected } => {
                let ours = self.central.is_none_or(|central| central == device);
                (ours && !connected).then(|| self.lost()).flatten()
            }
        })
    }

    /// The central that subscribed read or wrote since: it listens (`Reconnected` once).
    fn listening(&mut self) -> Option<BearerEvent> {
        let notifier = self.subscribing.take()?;
        self.notifier = Some(notifier);
        (!std::mem::replace(&mut self.connected, true)).then_some(BearerEvent::Reconnected)
    }

    /// The central went away: `Disconnected` once.
    fn lost(&mut self) -> Option<BearerEvent> {
        self.notifier = None;
        self.subscribing = None;
        std::mem::replace(&mut self.connected, false).then_some(BearerEvent::Disconnected)
    }
}

impl GattBearer for PeripheralBearer {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    async fn send_segment(&mut self, segment: Vec<u8>) -> Result<(), Error> {
        let Some(mut notifier) = self.notifier.take() else {
            return Err(Error::Disconnected);
        };
        let confirmed = {
            let indication = notifier.notify(segment);
            tokio::pin!(indication);
            loop {
                tokio::select! {
                    biased;
                    incoming = self.peripheral.incoming.recv() => {
                        let event = self.take(incoming)?;
                        keep_while_waiting(&mut self.pending, event)?;
                    }
                    confirmed = &mut indication => break confirmed,
                }
            }
        };
        match confirmed {
            Ok(()) => {
                // Keep the session unless the central subscribed anew meanwhile.
                if self.connected && self.notifier.is_none() {
                    self.notifier = Some(notifier);
                }
                Ok(())
            }
            // The session stopped (the central unsubscribed or went away) before the
            // confirmation.
            Err(_) => {
                let lost = self.lost();
                self.pending.extend(lost);
                Err(Error::Disconnected)
            }
        }
    }

    async fn next_event(&mut self) -> Result<BearerEvent, Error> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            // Every operation of the central is taken before its unsubscription is believed.
            let stopped = match &self.notifier {
                Some(notifier) => notifier.stopped().left_future(),
                None => future::pending().right_future(),
            };
            tokio::select! {
                biased;
                incoming = self.peripheral.incoming.recv() => {
                    if let Some(event) = self.take(incoming)? {
                        return Ok(event);
                    }
                }
                () = stopped => {
                    if let Some(event) = self.lost() {
                        return Ok(event);
                    }
                }
            }
        }
    }
}
