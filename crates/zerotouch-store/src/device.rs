//! Devices the factory made: identity, type, serial, PIN record, device secret, blocked flag.

use core::future::Future;

use zerotouch_core::{DeviceSecret, Instant, KeyId};

use crate::{PinRecord, StoreError};

/// How the server knows a device's identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceIdentity {
    /// Its X.509 certificate (DER), issued by the manufacturer CA.
    Certificate(Vec<u8>),
    /// Its bare public key (DER SubjectPublicKeyInfo), for devices without a certificate.
    PublicKey(Vec<u8>),
}

/// A device as the factory manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// SHA-256 of its identity key's SubjectPublicKeyInfo.
    pub key_id: KeyId,
    /// Its certificate or public key.
    pub identity: DeviceIdentity,
    /// Device type (selects the server key and capabilities).
    pub device_type: u32,
    /// Serial number (the type/serial map selects the server key by it).
    pub serial: u64,
    /// Product number as printed on the label.
    pub product_number: String,
    /// Hash of the PIN in the box, if it has one. Stored sealed.
    pub pin: Option<PinRecord>,
    /// The flow-2 device secret, if it has one. Stored sealed.
    pub device_secret: Option<DeviceSecret>,
    /// Blocked devices are refused (with the same error as unknown ones).
    pub blocked: bool,
    /// When it was imported.
    pub created_at: Instant,
}

/// What importing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Devices that were new.
    pub added: usize,
    /// Devices already present with identical records (imports are idempotent).
    pub unchanged: usize,
}

/// The devices the server knows.
pub trait DeviceStore: Send + Sync {
    /// Adds a batch of devices atomically: all or none. A device already present with an
    /// identical record counts as unchanged; one present with a different record fails the
    /// whole batch with [`StoreError::Conflict`].
    fn import_devices(
        &self,
        devices: Vec<DeviceRecord>,
    ) -> impl Future<Output = Result<ImportReport, StoreError>> + Send;

    /// The device with `key_id`, secrets opened.
    fn device(
        &self,
        key_id: &KeyId,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, StoreError>> + Send;

    /// Key ids of the devices whose key id starts with `prefix` (a barcode carries a prefix);
    /// at most `limit`.
    fn devices_with_key_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<KeyId>, StoreError>> + Send;

    /// Blocks or unblocks a device.
    fn set_blocked(
        &self,
        key_id: &KeyId,
        blocked: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
