//! The TCP listener: two-byte length framing, several queries per connection, an idle
//! timeout and a cap on open connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tracing::{debug, warn};
use zerotouch_core::Signer;
use zerotouch_store::Store;

use super::packet::{Responder, Via};
use super::{drain, now_ms};

/// How long an accept error (too many open files) pauses the listener.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpLimits {
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) grace: Duration,
}

pub(crate) async fn run<St: Store, S: Signer + 'static>(
    listener: TcpListener,
    responder: Arc<Responder<St, S>>,
    mut stop: watch::Receiver<bool>,
    limits: TcpLimits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        warn!(%error, "TCP accept failed");
                        sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    debug!("TCP connection refused: too many open");
                    continue;
                };
                tasks.spawn(connection(
                    stream,
                    peer,
                    Arc::clone(&responder),
                    stop.clone(),
                    limits.idle_timeout,
                    permit,
                ));
            }
        }
    }
    drain(tasks, limits.grace).await;
}

/// Answers queries on one connection until the client closes it, idles, or the server stops.
async fn connection<St: Store, S: Signer + 'static>(
    mut stream: TcpStream,
    peer: SocketAddr,
    responder: Arc<Responder<St, S>>,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
    _permit: OwnedSemaphorePermit,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let mut len = [0u8; 2];
        tokio::select! {
            _ = stop.changed() => return,
            read = timeout(idle, stream.read_exact(&mut len)) => {
                if !matches!(read, Ok(Ok(_))) {
                    return;
                }
            }
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !matches!(
            timeout(idle, stream.read_exact(&mut request)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(response) = responder
            .respond(&request, peer.ip(), Via::Tcp, now_ms())
            .await
        else {
            continue;
        };
        let Ok(len) = u16::try_from(response.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(response.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        if !matches!(timeout(idle, stream.write_all(&framed)).await, Ok(Ok(()))) {
            debug!("TCP write failed");
            return;
        }
    }
}
