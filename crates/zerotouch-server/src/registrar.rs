//! The registrar policy: a barcode scan plus an account, from an authenticated registrar,
//! records which account a device belongs to.
//!
//! Reading a box label is not ownership, so a device already on another account moves only
//! with proof: the in-box PIN (on the label inside the box, or typed by the buyer), or the
//! current owner's consent. Wrong PINs are counted per device and lock out, so a registrar
//! cannot guess one online.

use tracing::{info, warn};
use zerotouch_core::{BarcodePayload, Instant, Pin, Signer};
use zerotouch_store::{
    AccountId, AssociationAction, AssociationChange, ChangeOutcome, CounterKey, CounterScope,
    RegistrarId, ScannedLabel, Store,
};

use crate::{ServerError, SetupService};

/// What lets a registrar move a device another account owns.
#[derive(Debug)]
pub enum ReassociationProof {
    /// Nothing beyond the scan (enough only for a device nobody owns).
    None,
    /// The in-box PIN, when the scanned label did not carry it.
    Pin(Pin),
    /// The current owner agreed (the caller authenticated that owner).
    OwnerConsent {
        /// The consenting account: it must own the device now.
        owner: AccountId,
    },
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The device now belongs to the account.
    Added,
    /// It already did; nothing changed.
    AlreadyRegistered,
    /// It moved from the listed accounts.
    Reassociated {
        /// The accounts it left.
        from: Vec<AccountId>,
    },
}

impl<St: Store, S: Signer> SetupService<St, S> {
    /// Registers the device a scanned `label` names to `account`, on behalf of `registrar`.
    pub async fn register_device(
        &self,
        registrar: RegistrarId,
        label: &BarcodePayload,
        account: AccountId,
        proof: ReassociationProof,
        now: Instant,
    ) -> Result<Registration, ServerError> {
        let store = self.store();
        let allowed = store
            .registrar(registrar)
            .await?
            .is_some_and(|r| !r.disabled);
        if !allowed {
            return Err(ServerError::RegistrarNotAllowed);
        }
        if store.account(account).await?.is_none() {
            return Err(ServerError::UnknownAccount);
        }
        let matches = store
            .devices_with_key_prefix(label.fingerprint.as_bytes(), 2)
            .await?;
        let key_id = match matches.as_slice() {
            [] => return Err(ServerError::UnknownDevice),
            [one] => *one,
            _ => return Err(ServerError::AmbiguousLabel),
        };
        let device = store
            .device(&key_id)
            .await?
            .ok_or(ServerError::UnknownDevice)?;
        if device.device_type != label.device_type || device.product_number != label.product_number
        {
            return Err(ServerError::LabelMismatch);
        }
        let current: Vec<AccountId> = store
            .associations_of_device(&key_id)
            .await?
            .into_iter()
            .map(|a| a.account)
            .collect();
        let action = if current.is_empty() {
            AssociationAction::Add
        } else if current == [account] {
            return Ok(Registration::AlreadyRegistered);
        } else {
            let pin = match &proof {
                ReassociationProof::Pin(p) => Some(p),
                _ => label.pin.as_ref(),
            };
            match (&proof, pin) {
                (ReassociationProof::OwnerConsent { owner }, _) => {
                    if !current.contains(owner) {
                        return Err(ServerError::ConsentNotFromOwner);
                    }
                }
                (_, Some(pin)) => {
                    let counter = CounterKey::new(CounterScope::RegistrarClaims, key_id.0.to_vec());
                    let state = store.attempt_state(counter.clone()).await?;
                    if let Some(until) = state.locked_until.filter(|_| state.is_locked(now)) {
                        return Err(ServerError::Locked { until_ms: until.0 });
                    }
                    if !device.pin.as_ref().is_some_and(|r| r.verify(pin)) {
                        let after = store
                            .record_failure(counter, self.config().registrar_lockout, now)
                            .await?;
                        warn!(
                            registrar = registrar.0,
                            failures = after.failures,
                            "re-association with a wrong PIN"
                        );
                        return Err(ServerError::WrongPin);
                    }
                    store.clear_failures(counter).await?;
                }
                (_, None) => return Err(ServerError::ReassociationNeedsProof),
            }
            AssociationAction::Reassociate
        };
        let outcome = store
            .apply_association_change(AssociationChange {
                action,
                device: key_id,
                account,
                registrar,
                label: Some(ScannedLabel::of(label)),
                at: now,
            })
            .await?;
        info!(
            registrar = registrar.0,
            account = account.0,
            ?action,
            "device registered"
        );
        Ok(match (action, outcome) {
            (_, ChangeOutcome::Unchanged) => Registration::AlreadyRegistered,
            (AssociationAction::Reassociate, _) => Registration::Reassociated { from: current },
            _ => Registration::Added,
        })
    }
}
