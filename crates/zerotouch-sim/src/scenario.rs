//! The household most simulations run in: an owner with two home networks, a neighbour with
//! one, and the access points in range.

use tokio::runtime::Runtime;
use zerotouch_server::ServiceConfig;
use zerotouch_store::{AccountId, Bands, MemoryStore, SecurityType, Store};
use zerotouch_store_suite::fixtures;

use crate::SimError;
use crate::air::{AccessPoint, Air};
use crate::deployment::Deployment;
use crate::sim::{DeviceSpec, Sim, SimConfig};

/// The passphrase of "home-2g".
pub const HOME_2G_PASSPHRASE: &[u8] = b"two point four only";
/// The neighbour's passphrase.
pub const NEIGHBOUR_PASSPHRASE: &[u8] = b"next door secret";

/// The accounts of [`household`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Household {
    /// Owns "home" (WPA3, both bands) and "home-2g" (WPA2, 2.4 GHz).
    pub owner: AccountId,
    /// Owns "neighbour" (WPA3, both bands).
    pub neighbour: AccountId,
}

/// A current-thread runtime for the store's futures.
pub fn runtime() -> Result<Runtime, SimError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Adds the household's accounts and networks to `deployment`, registers fixture device 1
/// to the owner and fixture device 2 to the neighbour.
pub async fn household<St: Store>(deployment: &Deployment<St>) -> Result<Household, SimError> {
    let owner = deployment.add_account("owner").await?;
    let neighbour = deployment.add_account("neighbour").await?;
    let both = Bands::GHZ_2_4.union(Bands::GHZ_5);
    deployment
        .add_network(
            owner,
            "home",
            fixtures::PASSPHRASE,
            SecurityType::Wpa3Personal,
            both,
        )
        .await?;
    deployment
        .add_network(
            owner,
            "home-2g",
            HOME_2G_PASSPHRASE,
            SecurityType::Wpa2Personal,
            Bands::GHZ_2_4,
        )
        .await?;
    deployment
        .add_network(
            neighbour,
            "neighbour",
            NEIGHBOUR_PASSPHRASE,
            SecurityType::Wpa3Personal,
            both,
        )
        .await?;
    deployment.register(1, owner).await?;
    deployment.register(2, neighbour).await?;
    Ok(Household { owner, neighbour })
}

/// What a device in the owner's flat sees: both home networks (home on both bands), the
/// neighbour's network and a café's.
pub fn household_air() -> Air {
    Air {
        access_points: vec![
            AccessPoint::new("home", 2, 2, fixtures::PASSPHRASE, 40),
            AccessPoint::new("home", 1, 2, fixtures::PASSPHRASE, 48),
            AccessPoint::new("home-2g", 1, 1, HOME_2G_PASSPHRASE, 55),
            AccessPoint::new("neighbour", 2, 2, NEIGHBOUR_PASSPHRASE, 60),
            AccessPoint::new("cafe", 1, 1, b"espresso please", 70),
        ],
    }
}

/// Fixture device 1 in the household, on an in-memory store, with `service` and `config`.
pub fn household_sim(
    config: SimConfig,
    service: ServiceConfig,
    spec: DeviceSpec,
) -> Result<(Sim<MemoryStore>, Household), SimError> {
    let rt = runtime()?;
    let deployment = rt.block_on(Deployment::new(MemoryStore::new(), service))?;
    let accounts = rt.block_on(household(&deployment))?;
    let sim = Sim::new(rt, deployment, config, spec, household_air())?;
    Ok((sim, accounts))
}
