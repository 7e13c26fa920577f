//! Drives a real device session (`zerotouch-device`) against the setup service.

use super::*;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::*;
use zerotouch_device::*;
use zerotouch_server::*;
use zerotouch_store::Store;
use zerotouch_store_suite::fixtures;

pub type Device = DeviceSession<SoftwareSigner, MemoryDeviceState>;

pub fn device(w_pinned: &PinnedKeys, pin: Option<&str>) -> Device {
    let key = SoftwareSigner::new(fixtures::device_key(1));
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
        pin: pin.map(|p| Pin::new(p).unwrap()),
        radio_bands: 3,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry: RetryPolicy::default(),
    };
    DeviceSession::new(config, w_pinned.clone(), key, MemoryDeviceState::new()).unwrap()
}

pub fn scan() -> Vec<ReportedNetwork> {
    vec![
        seen("home-2g", 55, 1, 1),
        seen("home", 40, 2, 2),
        seen("cafe", 30, 1, 1),
    ]
}

/// Runs the device against the service until `stop` says so, feeding scans and join results
/// (`join` decides each), advancing the clock to the next timer when nothing else moves.
pub async fn drive<St: Store>(
    service: &SetupService<St, SoftwareSigner>,
    device: &mut Device,
    clock: &mut Instant,
    join: &mut dyn FnMut(&[u8]) -> JoinResult,
    stop: &dyn Fn(&Event) -> bool,
) -> Vec<Event> {
    let mut seen_events = Vec::new();
    for _ in 0..500 {
        let mut moved = false;
        while let Some(t) = device.poll_transmit() {
            moved = true;
            let from = match t.path {
                Path::Setup => TransportIdentity::Direct {
                    transport: Transport::Dns,
                    client_key: None,
                },
                Path::Home => TransportIdentity::Direct {
                    transport: Transport::Https,
                    client_key: None,
                },
            };
            let answer = service.handle(&t.bytes, &from, *clock, &mut fresh()).await;
            device.handle_incoming(*clock, t.path, &answer, &mut fresh());
        }
        while let Some(ev) = device.poll_event() {
            moved = true;
            match &ev {
                Event::ScanRequested => device.scan_complete(*clock, scan(), &mut fresh()),
                Event::Join { ssid, .. } => {
                    let r = join(ssid);
                    device.join_result(*clock, r, &mut fresh());
                }
                _ => {}
            }
            let done = stop(&ev);
            seen_events.push(ev);
            if done {
                return seen_events;
            }
        }
        if !moved {
            let Some(t) = device.poll_timeout() else {
                panic!("stuck without a timer: {seen_events:?}");
            };
            *clock = Instant(t.0.max(clock.0));
            device.handle_timeout(*clock, &mut fresh());
        }
    }
    panic!("did not finish: {seen_events:?}");
}

pub fn complete(ev: &Event) -> bool {
    matches!(ev, Event::Complete { .. } | Event::GaveUp { .. })
}

pub fn joined_ssids(events: &[Event]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Joined { ssid } => Some(ssid.clone()),
            _ => None,
        })
        .collect()
}
