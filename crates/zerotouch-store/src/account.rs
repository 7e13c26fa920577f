//! Accounts and the home networks they own.

use core::future::Future;

use zerotouch_core::{Instant, Passphrase};

use crate::StoreError;

/// An account's id, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// A home network's id, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub i64);

/// An owner of devices and networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// A name for operators (not used by the protocol).
    pub name: String,
    /// When it was created.
    pub created_at: Instant,
}

/// How a network authenticates joiners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SecurityType {
    /// WPA2-Personal (PSK).
    Wpa2Personal = 1,
    /// WPA3-Personal (SAE).
    Wpa3Personal = 2,
    /// WPA2/WPA3 transition mode: SAE and PSK with one passphrase.
    Wpa2Wpa3Transition = 3,
}

impl SecurityType {
    /// The stored number.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// From the stored number.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Wpa2Personal),
            2 => Some(Self::Wpa3Personal),
            3 => Some(Self::Wpa2Wpa3Transition),
            _ => None,
        }
    }
}

/// The radio bands a network is on, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bands(u8);

impl Bands {
    /// 2.4 GHz.
    pub const GHZ_2_4: Bands = Bands(1);
    /// 5 GHz.
    pub const GHZ_5: Bands = Bands(2);
    /// 6 GHz.
    pub const GHZ_6: Bands = Bands(4);
    const ALL: u8 = 7;

    /// From the stored bits; `None` if unknown bits are set or none is.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits != 0 && bits & !Self::ALL == 0).then_some(Bands(bits))
    }

    /// The stored bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: Bands) -> Bands {
        Bands(self.0 | other.0)
    }

    /// Whether the sets share a band.
    pub fn intersects(self, other: Bands) -> bool {
        self.0 & other.0 != 0
    }
}

/// A home network to add to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNetwork {
    /// The account that owns it.
    pub account: AccountId,
    /// The SSID, 1 to 32 bytes.
    pub ssid: Vec<u8>,
    /// Its passphrase. Stored sealed under the data key.
    pub passphrase: Passphrase,
    /// How it authenticates.
    pub security: SecurityType,
    /// The bands it is on.
    pub bands: Bands,
}

impl NewNetwork {
    /// Checks the fields a store cannot hold otherwise.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.ssid.is_empty() || self.ssid.len() > 32 {
            return Err(StoreError::InvalidInput("an SSID is 1 to 32 bytes"));
        }
        Ok(())
    }
}

/// A stored home network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Its id.
    pub id: NetworkId,
    /// The account that owns it.
    pub account: AccountId,
    /// The SSID.
    pub ssid: Vec<u8>,
    /// Its passphrase.
    pub passphrase: Passphrase,
    /// How it authenticates.
    pub security: SecurityType,
    /// The bands it is on.
    pub bands: Bands,
    /// When it was added.
    pub created_at: Instant,
}

/// Accounts and their networks.
pub trait AccountStore: Send + Sync {
    /// Creates an account.
    fn create_account(
        &self,
        name: &str,
        now: Instant,
    ) -> impl Future<Output = Result<AccountId, StoreError>> + Send;

    /// The account with `id`.
    fn account(
        &self,
        id: AccountId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// Adds a network to an existing account.
    fn add_network(
        &self,
        network: NewNetwork,
        now: Instant,
    ) -> impl Future<Output = Result<NetworkId, StoreError>> + Send;

    /// Every network of `account`, oldest first, passphrases opened.
    fn networks_of_account(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<Network>, StoreError>> + Send;

    /// Removes a network; `false` if it did not exist.
    fn remove_network(
        &self,
        id: NetworkId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
