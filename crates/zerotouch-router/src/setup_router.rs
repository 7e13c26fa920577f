//! The engine and the kernel kept in step: every decision of `zerotouch-provisioner`'s
//! [`SetupNetwork`] becomes one `nft` transaction on the ruleset's sets.

use core::fmt;
use core::time::Duration;
use zerotouch_core::Instant;
use zerotouch_provisioner::{
    ClientMac, JoinDecision, NetworkMode, NftOptions, NftRuleset, RefuseReason, RouterInterfaces,
    SetUpdate, SetupNetwork, SetupNetworkPolicy, TimerDecision,
};

use crate::{Nft, RouterError, StationEvent};

/// What the router side did, one line each on the binary's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterAction {
    /// The client's frames now pass.
    Admitted(ClientMac),
    /// The client was cut off to make room and is banned for `banned_for`; the access point
    /// should also disassociate it.
    Evicted {
        /// The client.
        client: ClientMac,
        /// How long it stays out.
        banned_for: Duration,
    },
    /// The client stays cut off.
    Refused(ClientMac, RefuseReason),
    /// The client left by itself and was removed.
    Left(ClientMac),
    /// A ban ended.
    Unbanned(ClientMac),
    /// An ordered opening ended and the client was cut off.
    ClosedEvicting(ClientMac),
    /// An ordered opening ended.
    Closed,
    /// A new day began for the whole network's volume.
    NetworkVolumeReset,
}

impl fmt::Display for RouterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterAction::Admitted(c) => write!(f, "admitted {c}"),
            RouterAction::Evicted { client, banned_for } => {
                write!(f, "evicted {client} banned-ms {}", banned_for.as_millis())
            }
            RouterAction::Refused(c, RefuseReason::Banned { .. }) => {
                write!(f, "refused {c} banned")
            }
            RouterAction::Refused(c, RefuseReason::Full) => write!(f, "refused {c} full"),
            RouterAction::Refused(c, RefuseReason::Closed) => write!(f, "refused {c} closed"),
            RouterAction::Left(c) => write!(f, "left {c}"),
            RouterAction::Unbanned(c) => write!(f, "unbanned {c}"),
            RouterAction::ClosedEvicting(c) => write!(f, "closed-evicting {c}"),
            RouterAction::Closed => write!(f, "closed"),
            RouterAction::NetworkVolumeReset => write!(f, "network-volume-reset"),
        }
    }
}

/// The setup network's engine and its nftables ruleset on one router.
#[derive(Debug)]
pub struct SetupRouter {
    engine: SetupNetwork,
    ruleset: NftRuleset,
    nft: Nft,
}

impl SetupRouter {
    /// Loads the ruleset (replacing an earlier one, with empty sets) and starts the engine.
    pub fn start(
        policy: SetupNetworkPolicy,
        interfaces: RouterInterfaces,
        options: NftOptions,
        mode: NetworkMode,
        nft: Nft,
        now: Instant,
    ) -> Result<SetupRouter, RouterError> {
        let ruleset = NftRuleset::new(&policy, interfaces, options)?;
        let engine = SetupNetwork::new(policy, mode, now)?;
        nft.apply(&ruleset.render())?;
        Ok(SetupRouter {
            engine,
            ruleset,
            nft,
        })
    }

    /// The engine (admitted clients, policy).
    pub fn engine(&self) -> &SetupNetwork {
        &self.engine
    }

    /// The ruleset.
    pub fn ruleset(&self) -> &NftRuleset {
        &self.ruleset
    }

    /// A station event from the access point.
    pub fn station(
        &mut self,
        event: StationEvent,
        now: Instant,
    ) -> Result<Vec<RouterAction>, RouterError> {
        match event {
            StationEvent::Connected(client) => {
                let decision = self.engine.client_joined(client, now);
                self.apply(&self.ruleset.updates_for_join(client, &decision, now))?;
                Ok(match decision {
                    JoinDecision::Admitted { evicted } => evicted
                        .iter()
                        .map(|e| RouterAction::Evicted {
                            client: e.client,
                            banned_for: Duration::from_millis(
                                e.banned_until.0.saturating_sub(now.0),
                            ),
                        })
                        .chain([RouterAction::Admitted(client)])
                        .collect(),
                    JoinDecision::AlreadyAdmitted => vec![RouterAction::Admitted(client)],
                    JoinDecision::Refused(reason) => vec![RouterAction::Refused(client, reason)],
                })
            }
            StationEvent::Disconnected(client) => {
                self.engine.client_left(client);
                self.apply(&[SetUpdate::Remove(client)])?;
                Ok(vec![RouterAction::Left(client)])
            }
        }
    }

    /// When [`SetupRouter::handle_timeout`] is next due: a ban's end, an opening's end, or
    /// the next day of the network's volume.
    pub fn poll_timeout(&self) -> Instant {
        let reset = self.engine.next_volume_reset();
        self.engine.poll_timeout().map_or(reset, |t| t.min(reset))
    }

    /// Lets time pass: ends bans and openings, and resets the network's daily volume.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Vec<RouterAction>, RouterError> {
        let reset_due = now >= self.engine.next_volume_reset();
        let decisions = self.engine.handle_timeout(now);
        let mut updates: Vec<SetUpdate> = decisions
            .iter()
            .flat_map(|d| self.ruleset.updates_for_timer(d))
            .collect();
        let mut actions: Vec<RouterAction> = decisions
            .iter()
            .map(|d| match *d {
                TimerDecision::Unbanned(c) => RouterAction::Unbanned(c),
                TimerDecision::ClosedEvicting(c) => RouterAction::ClosedEvicting(c),
                TimerDecision::Closed => RouterAction::Closed,
            })
            .collect();
        if reset_due {
            // The engine's own counter rolls over when it next counts; the kernel's quota
            // object has no day of its own.
            self.engine.roll_volume_day(now);
            updates.push(SetUpdate::ResetNetworkVolume);
            actions.push(RouterAction::NetworkVolumeReset);
        }
        self.apply(&updates)?;
        Ok(actions)
    }

    /// Cuts every setup client off (the router side is stopping: fail closed). The ruleset
    /// stays loaded.
    pub fn stop(&mut self) -> Result<(), RouterError> {
        self.apply(&[SetUpdate::RemoveAll])
    }

    /// Rewrites the admitted and banned sets from the engine's state, after an `nft` failure
    /// left them unknown.
    pub fn resync(&mut self, now: Instant) -> Result<(), RouterError> {
        let mut updates = vec![SetUpdate::RemoveAll];
        updates.extend(self.engine.clients().map(SetUpdate::Admit));
        updates.extend(self.engine.bans().map(|(client, until)| SetUpdate::Ban {
            client,
            duration: Duration::from_millis(until.0.saturating_sub(now.0)),
        }));
        self.apply(&updates)
    }

    fn apply(&self, updates: &[SetUpdate]) -> Result<(), RouterError> {
        if updates.is_empty() {
            return Ok(());
        }
        self.nft.apply(&self.ruleset.render_updates(updates))
    }
}
