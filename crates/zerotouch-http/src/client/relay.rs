//! The provisioner's side of the relay endpoint: a router or sponsor that received a device's
//! message over a transport without TLS (BLE) forwards it unchanged, authenticated by its own
//! certificate, and hands the answer back to the device.

use std::sync::Arc;

use hyper::Method;
use rustls::ClientConfig;
use zerotouch_core::Transport;
use zerotouch_device::Path;

use super::channel::{HttpsChannel, ServerEndpoint};
use super::device::{Exchange, answer_of};
use crate::{CBOR, HttpError, relay_path};

/// Forwards device messages to the server's relay endpoint.
#[derive(Debug)]
pub struct RelayClient {
    channel: HttpsChannel,
    device_transport: Transport,
}

impl RelayClient {
    /// A relay for devices that reach it over `device_transport`, with the provisioner's TLS
    /// configuration from [`client_tls_config`](crate::client_tls_config).
    pub fn new(
        server: ServerEndpoint,
        tls: Arc<ClientConfig>,
        device_transport: Transport,
    ) -> Result<Self, HttpError> {
        relay_path(device_transport).ok_or(HttpError::Config(
            "devices on this transport reach the server directly, not through a relay",
        ))?;
        Ok(RelayClient {
            channel: HttpsChannel::new(server, tls),
            device_transport,
        })
    }

    /// Forwards one device message byte for byte and returns the server's answer.
    pub async fn forward(&mut self, device_message: Vec<u8>) -> Result<Vec<u8>, HttpError> {
        let path = relay_path(self.device_transport).ok_or(HttpError::Config(
            "devices on this transport reach the server directly, not through a relay",
        ))?;
        answer_of(
            self.channel
                .request(Method::POST, path, &[], Some((CBOR, device_message)))
                .await?,
        )
    }
}

impl Exchange for RelayClient {
    type Error = HttpError;

    /// Both of the device's paths go through the relay: a device that only has the relay's
    /// transport (BLE) reports its outcome the same way.
    async fn exchange(&mut self, _path: Path, message: Vec<u8>) -> Result<Vec<u8>, HttpError> {
        self.forward(message).await
    }
}
