//! Flow 2 under simulation: the real [`Joiner`] and [`Sponsor`] and the real
//! [`AssociationService`] on a store, on a virtual clock with seeded RNGs.
//!
//! The local link is a reliable byte stream (TCP, Wi-Fi Direct): bytes arrive in order but in
//! random chunks after random delays, and the stream may break, after which the joiner starts
//! a new handoff (new stream, session id and nonce). The sponsor's link to the server loses,
//! duplicates, delays and reorders whole messages ([`LinkConditions`]); the sponsor
//! retransmits identical bytes and the server answers an identical retransmission with its
//! stored answer.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zerotouch_core::flow2::HomeCredential;
use zerotouch_core::{
    Instant, KeyId, KeyRole, Passphrase, PinnedKey, PinnedKeys, ServerKeyRing, Signer,
    SoftwareSigner, Transport,
};
use zerotouch_peer::{
    Destination, Joiner, JoinerConfig, JoinerEvent, MemoryPeerState, Sponsor, SponsorConfig,
    SponsorEvent,
};
use zerotouch_server::{AssociationConfig, AssociationService, TransportIdentity};
use zerotouch_store::{AssociationAction, AssociationChange, RegistrarCredential, Store};
use zerotouch_store_suite::fixtures;

use crate::{EPOCH, LinkConditions, SimError, server_signer};

/// The association key's seed.
pub const ASSOCIATION_KEY_SEED: u8 = 0xa4;
/// The home network's passphrase in the handoff scenario.
pub const HANDOFF_PASSPHRASE: &[u8] = b"handed over, never typed";
/// Fixture device seeds: the sponsor and the joiner.
pub const SPONSOR_SEED: u8 = 1;
/// See [`SPONSOR_SEED`].
pub const JOINER_SEED: u8 = 2;

/// How the local byte stream behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConditions {
    /// Largest chunk the stream delivers at once (bytes); chunks are 1 to this.
    pub max_chunk: usize,
    /// Longest delay of a chunk; chunks never overtake each other.
    pub max_delay_ms: u64,
    /// Chance, per chunk, that the stream breaks, in per mille.
    pub break_per_mille: u32,
}

impl StreamConditions {
    /// Whole writes, 5 ms, never breaks.
    pub const CALM: StreamConditions = StreamConditions {
        max_chunk: usize::MAX,
        max_delay_ms: 5,
        break_per_mille: 0,
    };

    /// Chunks of 1 to 7 bytes, up to 400 ms each, and 1 % of chunks break the stream.
    pub const ROUGH: StreamConditions = StreamConditions {
        max_chunk: 7,
        max_delay_ms: 400,
        break_per_mille: 10,
    };
}

/// A handoff simulation's settings.
#[derive(Debug, Clone, Copy)]
pub struct HandoffConfig {
    /// Seeds every RNG of the run.
    pub seed: u64,
    /// The local stream between joiner and sponsor.
    pub stream: StreamConditions,
    /// The sponsor's link to the association server.
    pub server_link: LinkConditions,
    /// Handoffs the joiner starts before the run gives up.
    pub max_handoffs: u32,
}

impl HandoffConfig {
    /// Calm stream, perfect server link, 20 handoffs at most.
    pub fn new(seed: u64) -> Self {
        HandoffConfig {
            seed,
            stream: StreamConditions::CALM,
            server_link: LinkConditions::PERFECT,
            max_handoffs: 20,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffOutcome {
    /// The passphrase the joiner was told to join with, if it got one.
    pub joined_with: Option<Vec<u8>>,
    /// Handoffs the joiner started.
    pub handoffs: u32,
    /// Verification requests the sponsor sent (retransmissions included).
    pub server_requests: u32,
    /// Streams that broke.
    pub broken_streams: u32,
    /// Every sponsor event, in order.
    pub sponsor_events: Vec<SponsorEvent>,
    /// Every joiner event but the join, in order (the join's passphrase is in `joined_with`).
    pub joiner_events: Vec<JoinerEvent>,
    /// Virtual time at the end.
    pub ended_at: Instant,
}

enum Delivery {
    ToSponsor(Vec<u8>),
    ToJoiner(Vec<u8>),
    ToServer(Vec<u8>),
    FromServer(Vec<u8>),
    StartHandoff,
}

/// The harness: both roles, the service, the links and the clock.
pub struct HandoffSim<St: Store> {
    config: HandoffConfig,
    service: AssociationService<St, SoftwareSigner>,
    joiner: Joiner<MemoryPeerState>,
    sponsor: Sponsor<SoftwareSigner, MemoryPeerState>,
    rng: ChaCha20Rng,
    link_rng: ChaCha20Rng,
    now: Instant,
    queue: BTreeMap<(Instant, u64), Delivery>,
    order: u64,
    /// Last arrival per stream direction (to the sponsor, to the joiner): chunks stay in order.
    stream_tail: [Instant; 2],
    /// Bumped when a stream breaks: chunks of an older stream are dropped on arrival.
    stream_generation: u64,
    in_flight_generation: BTreeMap<u64, u64>,
}

/// The pinned association key both devices carry.
pub fn association_pinned() -> Result<PinnedKeys, SimError> {
    Ok(PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        server_signer(ASSOCIATION_KEY_SEED)?.public_key().clone(),
    )]))
}

/// Puts fixture devices 1 (sponsor) and 2 (joiner) in `store`, each associated with
/// `sponsor_account` and `joiner_account` (the same name: one account).
pub async fn handoff_store<St: Store>(
    store: &St,
    sponsor_account: &str,
    joiner_account: &str,
) -> Result<(), SimError> {
    store
        .import_devices(vec![
            fixtures::device(SPONSOR_SEED),
            fixtures::device(JOINER_SEED),
        ])
        .await?;
    let registrar = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), EPOCH)
        .await?;
    let first = store.create_account(sponsor_account, EPOCH).await?;
    let second = if joiner_account == sponsor_account {
        first
    } else {
        store.create_account(joiner_account, EPOCH).await?
    };
    for (seed, account) in [(SPONSOR_SEED, first), (JOINER_SEED, second)] {
        store
            .apply_association_change(AssociationChange {
                action: AssociationAction::Add,
                device: fixtures::device_id(seed),
                account,
                registrar,
                label: None,
                at: EPOCH,
            })
            .await?;
    }
    Ok(())
}

impl<St: Store> HandoffSim<St> {
    /// A simulation over `store` (see [`handoff_store`]).
    pub fn new(config: HandoffConfig, store: St) -> Result<Self, SimError> {
        let mut ring = ServerKeyRing::new();
        ring.add(KeyRole::Association, server_signer(ASSOCIATION_KEY_SEED)?)?;
        let service = AssociationService::new(store, ring, AssociationConfig::default());
        let pinned = association_pinned()?;
        let joiner_record = fixtures::device(JOINER_SEED);
        let secret = joiner_record
            .device_secret
            .clone()
            .ok_or(SimError::Scenario("fixture joiner has no device secret"))?;
        let joiner = Joiner::new(
            JoinerConfig::new(joiner_record.key_id, secret, pinned.clone()),
            MemoryPeerState::new(),
        )?;
        let home = HomeCredential {
            ssid: b"home".to_vec(),
            security: 2,
            passphrase: Passphrase::new(HANDOFF_PASSPHRASE)?,
        };
        let sponsor = Sponsor::new(
            SponsorConfig::new(home, pinned),
            SoftwareSigner::new(fixtures::device_key(SPONSOR_SEED)),
            MemoryPeerState::new(),
        )?;
        Ok(HandoffSim {
            config,
            service,
            joiner,
            sponsor,
            rng: ChaCha20Rng::seed_from_u64(config.seed),
            link_rng: ChaCha20Rng::seed_from_u64(config.seed ^ 0x5eed),
            now: EPOCH,
            queue: BTreeMap::new(),
            order: 0,
            stream_tail: [EPOCH; 2],
            stream_generation: 0,
            in_flight_generation: BTreeMap::new(),
        })
    }

    /// The joiner's id.
    pub fn joiner_id(&self) -> KeyId {
        fixtures::device_id(JOINER_SEED)
    }

    /// The service (its store, for checks after a run).
    pub fn service(&self) -> &AssociationService<St, SoftwareSigner> {
        &self.service
    }

    fn push(&mut self, at: Instant, d: Delivery) -> u64 {
        self.order += 1;
        self.queue.insert((at, self.order), d);
        self.order
    }

    /// Sends `bytes` down the stream in random chunks, in order.
    fn stream(&mut self, to_sponsor: bool, bytes: Vec<u8>) {
        let dir = usize::from(!to_sponsor);
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let max = self.config.stream.max_chunk.min(rest.len()).max(1);
            let len = 1 + (self.link_rng.next_u64() as usize) % max;
            let (chunk, tail) = rest.split_at(len);
            rest = tail;
            let delay = self.link_rng.next_u64() % (self.config.stream.max_delay_ms + 1);
            let at = Instant(self.now.0 + delay)
                .max(self.stream_tail.get(dir).copied().unwrap_or(EPOCH));
            if let Some(t) = self.stream_tail.get_mut(dir) {
                *t = at;
            }
            let d = if to_sponsor {
                Delivery::ToSponsor(chunk.to_vec())
            } else {
                Delivery::ToJoiner(chunk.to_vec())
            };
            let id = self.push(at, d);
            self.in_flight_generation.insert(id, self.stream_generation);
        }
    }

    fn server_link(&mut self, d: impl Fn(Vec<u8>) -> Delivery, bytes: &[u8]) {
        let arrivals = self
            .config
            .server_link
            .arrivals(self.now, &mut self.link_rng);
        for at in arrivals {
            self.push(at, d(bytes.to_vec()));
        }
    }

    /// Runs until the joiner joins, or gives up after `max_handoffs`, or an hour of virtual
    /// time passes.
    pub fn run(&mut self) -> Result<HandoffOutcome, SimError> {
        let rt = crate::runtime()?;
        let mut out = HandoffOutcome {
            joined_with: None,
            handoffs: 0,
            server_requests: 0,
            broken_streams: 0,
            sponsor_events: Vec::new(),
            joiner_events: Vec::new(),
            ended_at: EPOCH,
        };
        self.push(self.now, Delivery::StartHandoff);
        let limit = Instant(EPOCH.0 + 3_600_000);
        while self.now < limit {
            // Next thing to happen: a delivery or a timer.
            let next_delivery = self.queue.keys().next().map(|k| k.0);
            let timers = [self.joiner.poll_timeout(), self.sponsor.poll_timeout()];
            let next_timer = timers.into_iter().flatten().min();
            let Some(at) = [next_delivery, next_timer].into_iter().flatten().min() else {
                break;
            };
            self.now = self.now.max(at);
            if next_timer.is_some_and(|t| t <= at) {
                self.joiner.handle_timeout(self.now);
                self.sponsor.handle_timeout(self.now, &mut self.rng);
            } else if let Some(((_, id), d)) = self.queue.pop_first() {
                let stale = self
                    .in_flight_generation
                    .remove(&id)
                    .is_some_and(|g| g != self.stream_generation);
                match d {
                    Delivery::StartHandoff => {
                        if out.handoffs >= self.config.max_handoffs {
                            break;
                        }
                        out.handoffs += 1;
                        self.stream_generation += 1;
                        self.stream_tail = [self.now; 2];
                        self.joiner.start(self.now, &mut self.rng);
                        self.sponsor.accept(self.now, &mut self.rng);
                    }
                    _ if stale => {}
                    Delivery::ToSponsor(b) => {
                        if self.link_rng.next_u32() % 1_000 < self.config.stream.break_per_mille {
                            // The stream breaks: both ends see it close; the joiner starts over.
                            out.broken_streams += 1;
                            self.stream_generation += 1;
                            let again = self.now.saturating_add(core::time::Duration::from_secs(1));
                            self.push(again, Delivery::StartHandoff);
                            continue;
                        }
                        self.sponsor.receive_local(self.now, &b, &mut self.rng);
                    }
                    Delivery::ToJoiner(b) => self.joiner.receive(self.now, &b, &mut self.rng),
                    Delivery::ToServer(b) => {
                        let identity = TransportIdentity::Direct {
                            transport: Transport::Https,
                            client_key: None,
                        };
                        let answer = rt.block_on(self.service.handle(
                            &b,
                            &identity,
                            self.now,
                            &mut self.rng,
                        ));
                        self.server_link(Delivery::FromServer, &answer);
                    }
                    Delivery::FromServer(b) => {
                        self.sponsor.receive_server(self.now, &b, &mut self.rng)
                    }
                }
            }
            self.pump(&mut out);
            if out.joined_with.is_some() {
                break;
            }
        }
        out.ended_at = self.now;
        Ok(out)
    }

    fn pump(&mut self, out: &mut HandoffOutcome) {
        while let Some(bytes) = self.joiner.poll_transmit() {
            self.stream(true, bytes);
        }
        while let Some(t) = self.sponsor.poll_transmit() {
            match t.destination {
                Destination::Joiner => self.stream(false, t.bytes),
                Destination::AssociationServer => {
                    out.server_requests += 1;
                    self.server_link(Delivery::ToServer, &t.bytes);
                }
            }
        }
        while let Some(e) = self.sponsor.poll_event() {
            out.sponsor_events.push(e);
        }
        while let Some(e) = self.joiner.poll_event() {
            match e {
                JoinerEvent::Join { passphrase, .. } => {
                    out.joined_with = Some(passphrase.expose_secret().to_vec());
                }
                JoinerEvent::Failed { .. } => {
                    out.joiner_events.push(e);
                    let again = self.now.saturating_add(core::time::Duration::from_secs(1));
                    self.push(again, Delivery::StartHandoff);
                }
                other => out.joiner_events.push(other),
            }
        }
    }
}
