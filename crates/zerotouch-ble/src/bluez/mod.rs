//! The BlueZ backend: the profile served and used over BlueZ's D-Bus API, through `bluer`.
//!
//! - [`BlePeripheral`] (a device or a joiner runs it) powers an adapter, advertises
//!   [`SERVICE_UUID`](crate::SERVICE_UUID) and registers the GATT application; its
//!   [`accept`](BlePeripheral::accept) gives the [`PeripheralBearer`] of the central that
//!   subscribes.
//! - [`BleCentral`] (a provisioner or a sponsor runs it) scans for the service, connects,
//!   reads the [`ServiceInfo`](crate::ServiceInfo) and subscribes; the connection is a
//!   [`CentralBearer`].
//! - [`bluezoo`] starts the BlueZoo simulator on a private D-Bus, for tests and examples on
//!   machines without Bluetooth.
//!
//! Both bearers move single segments (one attribute value each) and report what the peer did;
//! [`BleChannel`](crate::BleChannel) does the framing. `bluer` talks to the D-Bus system bus
//! named by `DBUS_SYSTEM_BUS_ADDRESS` (the real BlueZ when unset).

pub mod bluezoo;
mod central;
mod peripheral;

use std::collections::VecDeque;

use bluer::{Adapter, Session};
use uuid::Uuid;

use crate::{BearerEvent, Error};

/// The `bluer` this backend is built on, to name the types its bearers expose.
pub use bluer;
pub use central::{BleCentral, CentralBearer};
pub use peripheral::{BlePeripheral, PeripheralBearer};

/// A BlueZ or D-Bus failure, as the crate's error.
fn stack(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Stack(format!("{what}: {error}"))
}

/// A profile UUID as `bluer` takes it.
fn uuid(value: u128) -> Uuid {
    Uuid::from_u128(value)
}

/// Opens the named adapter (the default one when `None`) and powers it on.
async fn powered_adapter(session: &Session, name: Option<&str>) -> Result<Adapter, Error> {
    let adapter = match name {
        Some(name) => session
            .adapter(name)
            .map_err(|e| stack(&format!("adapter {name}"), e))?,
        None => session
            .default_adapter()
            .await
            .map_err(|e| stack("default adapter", e))?,
    };
    adapter
        .set_powered(true)
        .await
        .map_err(|e| stack(&format!("powering {}", adapter.name()), e))?;
    Ok(adapter)
}

/// A new D-Bus session with BlueZ.
async fn session() -> Result<Session, Error> {
    Session::new()
        .await
        .map_err(|e| stack("D-Bus system bus (is DBUS_SYSTEM_BUS_ADDRESS right?)", e))
}

/// Keeps what the peer did while a segment's acknowledgement is awaited, for
/// [`next_event`](crate::GattBearer::next_event); a disconnect ends the wait with
/// [`Error::Disconnected`].
fn keep_while_waiting(
    pending: &mut VecDeque<BearerEvent>,
    event: Option<BearerEvent>,
) -> Result<(), Error> {
    let Some(event) = event else {
        return Ok(());
    };
    let lost = event == BearerEvent::Disconnected;
    pending.push_back(event);
    if lost {
        return Err(Error::Disconnected);
    }
    Ok(())
}
