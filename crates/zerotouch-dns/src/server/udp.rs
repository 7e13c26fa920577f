//! The UDP listener: each query in its own task, a bounded number at once, so a slow store
//! never stalls the socket.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::debug;
use zerotouch_core::Signer;
use zerotouch_store::Store;

use super::packet::{Responder, Via};
use super::{drain, now_ms};

/// The largest query datagram read (queries are a few hundred bytes).
const MAX_QUERY: usize = 4096;

pub(crate) async fn run<St: Store, S: Signer + 'static>(
    socket: Arc<UdpSocket>,
    responder: Arc<Responder<St, S>>,
    mut stop: watch::Receiver<bool>,
    max_in_flight: usize,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            received = socket.recv_from(&mut buf) => {
                let (n, from) = match received {
                    Ok(r) => r,
                    Err(error) => {
                        debug!(%error, "UDP receive failed");
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    // The resolver asks again; queueing would only make every answer late.
                    debug!("UDP query dropped: too many in flight");
                    continue;
                };
                let request = buf.get(..n).unwrap_or_default().to_vec();
                let socket = Arc::clone(&socket);
                let responder = Arc::clone(&responder);
                tasks.spawn(async move {
                    let response = responder.respond(&request, from.ip(), Via::Udp, now_ms()).await;
                    if let Some(response) = response
                        && let Err(error) = socket.send_to(&response, from).await
                    {
                        debug!(%error, "UDP send failed");
                    }
                    drop(permit);
                });
            }
        }
    }
    drain(tasks, grace).await;
}
