//! Flow 2's fallbacks on loopback: the association server cannot be reached (the home's
//! internet link is down), so the owner steps in. The sponsor and the joiner
//! (`zerotouch-peer`) talk over a local TCP connection carrying the Noise-encrypted channel;
//! the example plays the owner, reading what one device shows and answering on the other. Run:
//! `cargo run -p zerotouch-examples --example flow2_fallback [compare|joiner-shows|sponsor-shows|label]`
//! (default `label`: the code printed on the joiner's label, typed on the sponsor).

use std::error::Error;
use std::time::{Duration, Instant as Clock};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use zerotouch_core::flow2::{self, Fallback, HomeCredential};
use zerotouch_core::*;
use zerotouch_peer::*;

/// The code printed on the joiner's label at the factory (the device stores only its record).
const LABEL: &str = "2718 2818";
const HOME_PASSPHRASE: &[u8] = b"correct horse battery staple";

type AnyError = Box<dyn Error + Send + Sync>;

/// What the owner saw on one device, carried to the other by the owner's eyes and hands.
#[derive(Debug)]
enum Seen {
    /// A code to type.
    Code(String),
    /// A compared code.
    Compared(flow2::ShortAuthString),
}

/// The owner at one device: what that device asked, and what the owner saw on the other one.
/// The owner answers only once both are there (the other device may show its code before
/// this one has asked for it).
#[derive(Default)]
struct OwnerAt {
    asked: Option<OwnerPrompt>,
    seen: Option<Seen>,
}

/// What the owner does on this device: type the other device's code, or say whether the
/// two compared codes match.
enum Answer {
    Type(String),
    Confirm(bool),
}

impl OwnerAt {
    fn answer(&mut self) -> Option<Answer> {
        let answer = match (&self.asked, &self.seen) {
            (Some(OwnerPrompt::EnterShownCode), Some(Seen::Code(code))) => {
                Answer::Type(code.clone())
            }
            (Some(OwnerPrompt::CompareCode { code }), Some(Seen::Compared(theirs))) => {
                Answer::Confirm(code == theirs)
            }
            _ => return None,
        };
        self.asked = None;
        self.seen = None;
        Some(answer)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let fallback = match std::env::args().nth(1).as_deref() {
        None | Some("label") => Fallback::LabelCode,
        Some("compare") => Fallback::CompareCodes,
        Some("joiner-shows") => Fallback::JoinerShowsCode,
        Some("sponsor-shows") => Fallback::SponsorShowsCode,
        Some(other) => return Err(format!("unknown fallback {other:?}").into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(fallback)).map_err(|e| e.to_string().into())
}

/// A device's monotonic clock: milliseconds since the example started.
fn device_clock(started: Clock) -> Instant {
    Instant(started.elapsed().as_millis() as u64)
}

fn seeded() -> Result<ChaCha20Rng, AnyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("system RNG: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

async fn run(fallback: Fallback) -> Result<(), AnyError> {
    let started = Clock::now();
    let mut rng = seeded()?;
    let key = |rng: &mut ChaCha20Rng| -> Result<SoftwareSigner, AnyError> {
        Ok(SoftwareSigner::new(SigningKey::generate(
            SignatureAlgorithm::EcdsaP256Sha256,
            rng,
        )?))
    };
    // Both devices pin the association server's key; it will not answer today.
    let server = key(&mut rng)?;
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        server.public_key().clone(),
    )]);

    let joiner_id = key(&mut rng)?.key_id();
    let mut jc = JoinerConfig::new(joiner_id, DeviceSecret::generate(&mut rng), pinned.clone());
    jc.interface = OwnerInterface::FULL;
    jc.fallbacks = vec![fallback];
    jc.label_record = Some(LabelRecord::from_code(
        &PairingCode::parse(LABEL)?,
        &joiner_id,
    )?);
    let joiner = Joiner::new(jc, MemoryPeerState::new())?;

    let home = HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(HOME_PASSPHRASE)?,
    };
    let mut sc = SponsorConfig::new(home, pinned);
    sc.interface = OwnerInterface::FULL;
    sc.fallbacks = vec![fallback];
    // Short server timers so the example does not wait long for a server that is not there.
    sc.server_timeout = Duration::from_millis(300);
    sc.server_retries = 1;
    let sponsor = Sponsor::new(sc, key(&mut rng)?, MemoryPeerState::new())?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (to_sponsor, sponsor_sees) = unbounded_channel();
    let (to_joiner, joiner_sees) = unbounded_channel();
    let sponsor_task = tokio::spawn(run_sponsor(
        listener,
        sponsor,
        (to_joiner, sponsor_sees),
        started,
    ));
    let stream = TcpStream::connect(addr).await?;
    let joined = run_joiner(stream, joiner, (to_sponsor, joiner_sees), started).await?;
    let handed_over = sponsor_task.await??;
    match joined {
        Some(passphrase) if handed_over && passphrase == HOME_PASSPHRASE => {
            println!(
                "done: the joiner got \"home\" through the {fallback:?} fallback in {} ms",
                started.elapsed().as_millis()
            );
            Ok(())
        }
        _ => Err("the fallback did not complete".into()),
    }
}

type Owner = (UnboundedSender<Seen>, UnboundedReceiver<Seen>);

/// Drives the joiner over its stream until it joins or fails.
async fn run_joiner(
    mut stream: TcpStream,
    mut joiner: Joiner<MemoryPeerState>,
    (tell_sponsor, mut seen): Owner,
    started: Clock,
) -> Result<Option<Vec<u8>>, AnyError> {
    let mut rng = seeded()?;
    joiner.start(device_clock(started), &mut rng);
    let mut buf = vec![0u8; 4096];
    let mut owner = OwnerAt::default();
    loop {
        while let Some(event) = joiner.poll_event() {
            match event {
                JoinerEvent::OwnerAction { prompt, text, .. } => {
                    println!("joiner screen  {}", text.as_str());
                    match &prompt {
                        OwnerPrompt::ShowCode { code } => {
                            tell_sponsor.send(Seen::Code(code.grouped()))?
                        }
                        OwnerPrompt::CompareCode { code } => {
                            tell_sponsor.send(Seen::Compared(*code))?
                        }
                        _ => {}
                    }
                    owner.asked = Some(prompt);
                }
                JoinerEvent::Join {
                    ssid, passphrase, ..
                } => {
                    println!(
                        "joiner         proof checked: join {:?}",
                        String::from_utf8_lossy(&ssid)
                    );
                    return Ok(Some(passphrase.expose_secret().to_vec()));
                }
                JoinerEvent::Failed { reason } => {
                    println!("joiner         failed: {reason:?}");
                    return Ok(None);
                }
                other => println!("joiner         {other:?}"),
            }
        }
        let answer = owner.answer();
        let acted = answer.is_some();
        match answer {
            Some(Answer::Type(code)) => {
                println!("owner          types {code} on the joiner");
                joiner.enter_code(device_clock(started), &code, &mut rng)?;
            }
            Some(Answer::Confirm(same)) => {
                println!(
                    "owner          compares the two codes: same = {same}, answers on the joiner"
                );
                joiner.confirm_code(device_clock(started), same)?;
            }
            None => {}
        }
        if acted {
            // What the answer set off (events, messages) is handled first.
            continue;
        }
        while let Some(bytes) = joiner.poll_transmit() {
            stream.write_all(&bytes).await?;
        }
        let wait = joiner.poll_timeout().map_or(Duration::from_secs(60), |t| {
            Duration::from_millis(t.0.saturating_sub(device_clock(started).0))
        });
        tokio::select! {
            read = stream.read(&mut buf) => match read? {
                0 => return Ok(None),
                n => joiner.receive(device_clock(started), buf.get(..n).unwrap_or(&[]), &mut rng),
            },
            Some(saw) = seen.recv() => owner.seen = Some(saw),
            () = tokio::time::sleep(wait) => joiner.handle_timeout(device_clock(started)),
        }
    }
}

/// Accepts one joiner and drives the sponsor until it hands over or fails. Its association
/// server is unreachable: every request it sends is lost.
async fn run_sponsor(
    listener: TcpListener,
    mut sponsor: Sponsor<SoftwareSigner, MemoryPeerState>,
    (tell_joiner, mut seen): Owner,
    started: Clock,
) -> Result<bool, AnyError> {
    let mut rng = seeded()?;
    let (mut stream, peer) = listener.accept().await?;
    println!("sponsor        joiner connected from {peer}");
    sponsor.accept(device_clock(started), &mut rng);
    let mut buf = vec![0u8; 4096];
    let mut owner = OwnerAt::default();
    loop {
        while let Some(event) = sponsor.poll_event() {
            match event {
                SponsorEvent::OwnerAction { prompt, text, .. } => {
                    println!("sponsor screen {}", text.as_str());
                    match &prompt {
                        OwnerPrompt::ShowCode { code } => {
                            tell_joiner.send(Seen::Code(code.grouped()))?
                        }
                        OwnerPrompt::CompareCode { code } => {
                            tell_joiner.send(Seen::Compared(*code))?
                        }
                        OwnerPrompt::EnterLabelCode => {
                            println!(
                                "owner          reads the label: types {LABEL} on the sponsor"
                            );
                            sponsor.enter_code(device_clock(started), LABEL, &mut rng)?;
                        }
                        _ => {}
                    }
                    owner.asked = Some(prompt);
                }
                SponsorEvent::HandedOver { joiner_id } => {
                    while let Some(t) = sponsor.poll_transmit() {
                        stream.write_all(&t.bytes).await?;
                    }
                    println!(
                        "sponsor        credential handed to {joiner_id:?} inside the channel"
                    );
                    return Ok(true);
                }
                SponsorEvent::Failed { reason } => {
                    while let Some(t) = sponsor.poll_transmit() {
                        stream.write_all(&t.bytes).await?;
                    }
                    println!("sponsor        failed: {reason:?}");
                    return Ok(false);
                }
                other => println!("sponsor        {other:?}"),
            }
        }
        let answer = owner.answer();
        let acted = answer.is_some();
        match answer {
            Some(Answer::Type(code)) => {
                println!("owner          types {code} on the sponsor");
                sponsor.enter_code(device_clock(started), &code, &mut rng)?;
            }
            Some(Answer::Confirm(same)) => {
                println!(
                    "owner          compares the two codes: same = {same}, answers on the sponsor"
                );
                sponsor.confirm_code(device_clock(started), same)?;
            }
            None => {}
        }
        if acted {
            // What the answer set off (events, messages) is handled first.
            continue;
        }
        while let Some(t) = sponsor.poll_transmit() {
            match t.destination {
                Destination::Joiner => stream.write_all(&t.bytes).await?,
                Destination::AssociationServer => println!(
                    "sponsor        verification request ({} B) → association server: no route (internet down)",
                    t.bytes.len()
                ),
            }
        }
        let wait = sponsor.poll_timeout().map_or(Duration::from_secs(60), |t| {
            Duration::from_millis(t.0.saturating_sub(device_clock(started).0))
        });
        tokio::select! {
            read = stream.read(&mut buf) => match read? {
                0 => return Ok(false),
                n => sponsor.receive_local(device_clock(started), buf.get(..n).unwrap_or(&[]), &mut rng),
            },
            Some(saw) = seen.recv() => owner.seen = Some(saw),
            () = tokio::time::sleep(wait) => sponsor.handle_timeout(device_clock(started), &mut rng),
        }
    }
}
