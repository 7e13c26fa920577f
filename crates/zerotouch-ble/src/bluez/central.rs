//! The central: finds the provisioning service, connects, and writes and receives segments.

use std::collections::VecDeque;
use std::time::Duration;

use bluer::gatt::WriteOp;
use bluer::gatt::remote::{Characteristic, CharacteristicWriteRequest};
use bluer::{Adapter, AdapterEvent, Device, DeviceEvent, DeviceProperty, Session};
use futures_util::stream::{BoxStream, StreamExt};

use super::{keep_while_waiting, powered_adapter, session, stack, uuid};
use crate::profile::{
    INDICATE_CHARACTERISTIC_UUID, INFO_CHARACTERISTIC_UUID, SERVICE_UUID, WRITE_CHARACTERISTIC_UUID,
};
use crate::{BearerEvent, Error, GattBearer, ServiceInfo, segment_capacity};

/// `bluer`'s `Characteristic::mtu` reports BlueZ's `MTU` property less 5 (a workaround for
/// its socket path, `bluer::gatt::mtu_workaround`); added back to get the ATT MTU.
const BLUER_MTU_WORKAROUND: usize = 5;

/// How often a connecting central looks whether BlueZ resolved the services, and how long it
/// waits between reconnect attempts.
const POLL: Duration = Duration::from_millis(50);
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Finds and connects to a peripheral serving the provisioning service; the connection is a
/// [`CentralBearer`].
#[derive(Debug, Clone, Copy)]
pub struct BleCentral;

impl BleCentral {
    /// Powers the adapter (the default one when `adapter_name` is `None`), scans for a device
    /// advertising [`SERVICE_UUID`](crate::SERVICE_UUID), connects, reads its
    /// [`ServiceInfo`] and subscribes to its indications, all within `timeout`.
    ///
    /// # Errors
    /// [`Error::Stack`] when nothing was found and connected within `timeout`, or D-Bus or
    /// BlueZ failed; [`Error::MalformedInfo`] or [`Error::UnsupportedVersion`] for the info
    /// value; [`Error::MtuTooSmall`] for an MTU below 23.
    pub async fn connect(
        adapter_name: Option<&str>,
        timeout: Duration,
    ) -> Result<CentralBearer, Error> {
        tokio::time::timeout(timeout, connect(adapter_name))
            .await
            .map_err(|_| {
                Error::Stack(format!(
                    "no peripheral with the provisioning service connected within {timeout:?}"
                ))
            })?
    }
}

async fn connect(adapter_name: Option<&str>) -> Result<CentralBearer, Error> {
    let session = session().await?;
    let adapter = powered_adapter(&session, adapter_name).await?;
    let device = discover(&adapter).await?;
    let link = Link::establish(&device).await?;
    tracing::debug!(
        adapter = adapter.name(),
        peripheral = %device.address(),
        mtu = link.mtu,
        "BLE central connected"
    );
    Ok(CentralBearer {
        info: link.info,
        link,
        device,
        connected: true,
        pending: VecDeque::new(),
        largest_written: 0,
        largest_received: 0,
        _session: session,
    })
}

/// Scans until a device advertises the service (discovery stops when the stream is dropped).
async fn discover(adapter: &Adapter) -> Result<Device, Error> {
    let mut discovery = adapter
        .discover_devices()
        .await
        .map_err(|e| stack("starting discovery", e))?;
    while let Some(event) = discovery.next().await {
        let AdapterEvent::DeviceAdded(address) = event else {
            continue;
        };
        let device = adapter
            .device(address)
            .map_err(|e| stack("discovered device", e))?;
        let uuids = device.uuids().await.ok().flatten().unwrap_or_default();
        if uuids.contains(&uuid(SERVICE_UUID)) {
            return Ok(device);
        }
    }
    Err(Error::Stack("discovery ended".into()))
}

/// One connection to the peripheral's service.
struct Link {
    write: Characteristic,
    indications: BoxStream<'static, Vec<u8>>,
    device_events: BoxStream<'static, DeviceEvent>,
    info: ServiceInfo,
    mtu: u16,
}

impl Link {
    /// Connects (unless connected), waits for the services, finds the three
    /// characteristics, reads the info and subscribes to indications.
    async fn establish(device: &Device) -> Result<Link, Error> {
        let bluez = |what| move |e| stack(what, e);
        let device_events = device
            .events()
            .await
            .map_err(bluez("device events"))?
            .boxed();
        if !device.is_connected().await.map_err(bluez("device"))? {
            device.connect().await.map_err(bluez("connecting"))?;
        }
        while !device
            .is_services_resolved()
            .await
            .map_err(bluez("device"))?
        {
            tokio::time::sleep(POLL).await;
        }
        let [write, indicate, info] = characteristics(device).await?;
        // Subscribe, then read: the read tells the peripheral this side listens (see
        // `BlePeripheral::accept`).
        let indications = indicate
            .notify()
            .await
            .map_err(bluez("subscribing to indications"))?
            .boxed();
        let info = ServiceInfo::decode(&info.read().await.map_err(bluez("reading info"))?)?;
        let reported = write.mtu().await.map_err(bluez("MTU"))?;
        let mtu = u16::try_from(reported + BLUER_MTU_WORKAROUND).unwrap_or(u16::MAX);
        segment_capacity(mtu)?;
        Ok(Link {
            write,
            indications,
            device_events,
            info,
            mtu,
        })
    }
}

/// The write, indicate and info characteristics of the device's provisioning service.
async fn characteristics(device: &Device) -> Result<[Characteristic; 3], Error> {
    let wanted = [
        WRITE_CHARACTERISTIC_UUID,
        INDICATE_CHARACTERISTIC_UUID,
        INFO_CHARACTERISTIC_UUID,
    ]
    .map(uuid);
    let mut found: [Option<Characteristic>; 3] = Default::default();
    for service in device.services().await.map_err(|e| stack("services", e))? {
        if service.uuid().await.ok() != Some(uuid(SERVICE_UUID)) {
            continue;
        }
        for characteristic in service
            .characteristics()
            .await
            .map_err(|e| stack("characteristics", e))?
        {
            let Ok(id) = characteristic.uuid().await else {
                continue;
            };
            if let Some(slot) = wanted
                .iter()
                .zip(found.iter_mut())
                .find_map(|(want, slot)| (*want == id).then_some(slot))
            {
                *slot = Some(characteristic);
            }
        }
    }
    match found {
        [Some(write), Some(indicate), Some(info)] => Ok([write, indicate, info]),
        _ => Err(Error::Stack(
            "the peripheral's provisioning service lacks one of its three characteristics".into(),
        )),
    }
}

/// The central's side of the connection: Write Requests out, indications in.
///
/// It checks every segment against the MTU both ways (a stack or a simulator that does not
/// enforce it cannot hide an oversized segment) and counts the largest. After the peripheral
/// disconnects it reports [`BearerEvent::Disconnected`], then connects again on the next
/// [`next_event`](GattBearer::next_event) (retrying every second until the caller gives up),
/// and reports [`BearerEvent::Reconnected`]; a peripheral whose
/// [`ServiceInfo::instance`] changed meanwhile lost its state, which is an error.
pub struct CentralBearer {
    link: Link,
    device: Device,
    info: ServiceInfo,
    connected: bool,
    pending: VecDeque<BearerEvent>,
    largest_written: usize,
    largest_received: usize,
    _session: Session,
}

impl std::fmt::Debug for CentralBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentralBearer")
            .field("peripheral", &self.device.address())
            .field("info", &self.info)
            .field("mtu", &self.link.mtu)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl CentralBearer {
    /// The info value the peripheral served when connected.
    pub fn info(&self) -> ServiceInfo {
        self.info
    }

    /// The peripheral.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The longest segment written so far (bytes of the attribute value).
    pub fn largest_segment_written(&self) -> usize {
        self.largest_written
    }

    /// The longest segment indicated by the peripheral so far.
    pub fn largest_segment_received(&self) -> usize {
        self.largest_received
    }

    /// The next indication or disconnect (`None`: nothing to report).
    async fn link_event(&mut self) -> Result<Option<BearerEvent>, Error> {
        tokio::select! {
            biased;
            value = self.link.indications.next() => {
                let bytes = value.ok_or_else(|| Error::Stack("indication session ended".into()))?;
                let max = segment_capacity(self.link.mtu)?;
                self.largest_received = self.largest_received.max(bytes.len());
                if bytes.len() > max {
                    return Err(Error::SegmentTooLong { len: bytes.len(), max });
                }
                Ok(Some(BearerEvent::Segment { bytes, mtu: self.link.mtu }))
            }
            event = self.link.device_events.next() => match event {
                Some(DeviceEvent::PropertyChanged(DeviceProperty::Connected(false))) => {
                    Ok(self.lost())
                }
                Some(_) => Ok(None),
                None => Err(Error::Stack("device events ended".into())),
            },
        }
    }

    /// The peripheral went away: `Disconnected` once.
    fn lost(&mut self) -> Option<BearerEvent> {
        std::mem::replace(&mut self.connected, false).then_some(BearerEvent::Disconnected)
    }

    /// Connects again until it works; the peripheral must not have restarted.
    async fn reconnect(&mut self) -> Result<(), Error> {
        let link = loop {
            match Link::establish(&self.device).await {
                Ok(link) => break link,
                Err(error) => {
                    tracing::debug!(%error, "BLE reconnect failed; trying again");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
        };
        if link.info.instance != self.info.instance {
            return Err(Error::Stack(
                "the peripheral restarted (its info instance changed): start a new channel".into(),
            ));
        }
        self.link = link;
        self.connected = true;
        Ok(())
    }
}

impl GattBearer for CentralBearer {
    fn mtu(&self) -> u16 {
        self.link.mtu
    }

    async fn send_segment(&mut self, segment: Vec<u8>) -> Result<(), Error> {
        // BlueZoo does not enforce the MTU, and a real stack would cut or refuse: check here.
        let max = segment_capacity(self.link.mtu)?;
        let len = segment.len();
        if len > max {
            return Err(Error::SegmentTooLong { len, max });
        }
        if !self.connected {
            return Err(Error::Disconnected);
        }
        let write = self.link.write.clone();
        let request = CharacteristicWriteRequest {
            op_type: WriteOp::Request,
            ..Default::default()
        };
        let written = write.write_ext(&segment, &request);
        tokio::pin!(written);
        let result = loop {
            tokio::select! {
                biased;
                event = self.link_event() => keep_while_waiting(&mut self.pending, event?)?,
                result = &mut written => break result,
            }
        };
        match result {
            Ok(()) => {
                self.largest_written = self.largest_written.max(len);
                Ok(())
            }
            Err(_) if !self.device.is_connected().await.unwrap_or(false) => {
                let lost = self.lost();
                self.pending.extend(lost);
                Err(Error::Disconnected)
            }
            Err(e) => Err(stack("writing a segment", e)),
        }
    }

    async fn next_event(&mut self) -> Result<BearerEvent, Error> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if !self.connected {
                self.reconnect().await?;
                return Ok(BearerEvent::Reconnected);
            }
            if let Some(event) = self.link_event().await? {
                return Ok(event);
            }
        }
    }
}
