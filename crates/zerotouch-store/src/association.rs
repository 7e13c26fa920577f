//! Device → account associations, with an append-only audit log of every change.

use core::future::Future;

use zerotouch_core::{Instant, KeyId};

use crate::{AccountId, RegistrarId, StoreError};

/// A current association of a device with an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// The device.
    pub device: KeyId,
    /// The account.
    pub account: AccountId,
    /// Who made it.
    pub registrar: RegistrarId,
    /// When.
    pub since: Instant,
}

/// The non-secret fields of the barcode a registrar scanned. The PIN is never recorded: only
/// whether the label carried one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedLabel {
    /// The key fingerprint as printed (RFC 4648 base32, no padding).
    pub fingerprint: String,
    /// Device type.
    pub device_type: u32,
    /// Product number.
    pub product_number: String,
    /// Whether the label carried a PIN.
    pub had_pin: bool,
}

impl ScannedLabel {
    /// The recordable part of a decoded barcode.
    pub fn of(payload: &zerotouch_core::BarcodePayload) -> Self {
        ScannedLabel {
            fingerprint: data_encoding::BASE32_NOPAD.encode(payload.fingerprint.as_bytes()),
            device_type: payload.device_type,
            product_number: payload.product_number.clone(),
            had_pin: payload.pin.is_some(),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AssociationAction {
    /// Added an association (alongside any existing ones: an ambiguous key is kept).
    Add = 1,
    /// Replaced every existing association with one to a new account.
    Reassociate = 2,
    /// Removed an association.
    Remove = 3,
}

impl AssociationAction {
    /// From the stored number.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Add),
            2 => Some(Self::Reassociate),
            3 => Some(Self::Remove),
            _ => None,
        }
    }
}

/// A change a registrar asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationChange {
    /// What to do.
    pub action: AssociationAction,
    /// The device.
    pub device: KeyId,
    /// The account to add, move to, or remove from.
    pub account: AccountId,
    /// Who asks.
    pub registrar: RegistrarId,
    /// The label scanned, if the change came from a scan.
    pub label: Option<ScannedLabel>,
    /// When.
    pub at: Instant,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log, increasing.
    pub seq: u64,
    /// The change.
    pub change: AssociationChange,
    /// Accounts the device was associated with before the change.
    pub previous: Vec<AccountId>,
}

/// What applying a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Applied and logged.
    Applied {
        /// Its audit log position.
        seq: u64,
        /// Accounts the device is associated with now (more than one: ambiguous).
        now_associated: Vec<AccountId>,
    },
    /// Nothing to do (already associated, or not associated when removing); not logged.
    Unchanged,
}

/// Associations and their audit log.
pub trait AssociationStore: Send + Sync {
    /// Applies a change and appends it to the audit log, atomically. The device, account and
    /// registrar must exist. Policy (refuse an ambiguous key, require the PIN to re-associate)
    /// belongs to the server; the store records faithfully.
    fn apply_association_change(
        &self,
        change: AssociationChange,
    ) -> impl Future<Output = Result<ChangeOutcome, StoreError>> + Send;

    /// The device's current associations, oldest first.
    fn associations_of_device(
        &self,
        device: &KeyId,
    ) -> impl Future<Output = Result<Vec<Association>, StoreError>> + Send;

    /// Devices currently associated with `account`.
    fn devices_of_account(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<KeyId>, StoreError>> + Send;

    /// Audit entries with `seq > after`, in order, at most `limit`.
    fn audit_log(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// Every audit entry about one device, in order.
    fn device_history(
        &self,
        device: &KeyId,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}

/// The rows a change removes and adds, given the device's current accounts: the one rule
/// every implementation follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangePlan {
    /// Nothing to do.
    Unchanged,
    /// Remove these accounts' associations, then add one for `add` if set.
    Apply {
        remove: Vec<AccountId>,
        add: Option<AccountId>,
    },
}

pub(crate) fn plan_change(current: &[AccountId], change: &AssociationChange) -> ChangePlan {
    let has = current.contains(&change.account);
    match change.action {
        AssociationAction::Add if has => ChangePlan::Unchanged,
        AssociationAction::Add => ChangePlan::Apply {
            remove: Vec::new(),
            add: Some(change.account),
        },
        AssociationAction::Reassociate if current == [change.account] => ChangePlan::Unchanged,
        AssociationAction::Reassociate => ChangePlan::Apply {
            remove: current
                .iter()
                .copied()
                .filter(|a| *a != change.account)
                .collect(),
            add: (!has).then_some(change.account),
        },
        AssociationAction::Remove if has => ChangePlan::Apply {
            remove: vec![change.account],
            add: None,
        },
        AssociationAction::Remove => ChangePlan::Unchanged,
    }
}
