//! Clients for the registrar and operator endpoints.

use std::sync::Arc;

use hyper::Method;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderName};
use rustls::ClientConfig;
use zeroize::Zeroizing;

use super::channel::{HttpsChannel, ServerEndpoint};
use crate::api::{AuditRecord, RegistrationRequest, RegistrationResponse, from_cbor, to_cbor};
use crate::{AUDIT_PATH, CBOR, HttpError, REGISTRAR_PATH};

fn bearer(token: &Option<Zeroizing<String>>) -> Vec<(HeaderName, String)> {
    token
        .as_ref()
        .map(|t| vec![(AUTHORIZATION, format!("Bearer {}", t.as_str()))])
        .unwrap_or_default()
}

/// A registrar (a shop's scanner, a phone app) registering scanned devices to accounts. It
/// authenticates with its client certificate (in `tls`) or an API token.
pub struct RegistrarClient {
    channel: HttpsChannel,
    token: Option<Zeroizing<String>>,
}

impl core::fmt::Debug for RegistrarClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RegistrarClient")
            .field("channel", &self.channel)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl RegistrarClient {
    /// A registrar using the certificate in `tls`, or `token` if given.
    pub fn new(
        server: ServerEndpoint,
        tls: Arc<ClientConfig>,
        token: Option<Zeroizing<String>>,
    ) -> Self {
        RegistrarClient {
            channel: HttpsChannel::new(server, tls),
            token,
        }
    }

    /// Registers a scanned label to an account.
    pub async fn register(
        &mut self,
        request: &RegistrationRequest,
    ) -> Result<RegistrationResponse, HttpError> {
        let body = to_cbor(request)?;
        let reply = self
            .channel
            .request(
                Method::POST,
                REGISTRAR_PATH,
                &bearer(&self.token),
                Some((CBOR, body)),
            )
            .await?
            .success()?;
        from_cbor(&reply.body)
    }
}

/// An operator reading the audit log with the operator token.
pub struct OperatorClient {
    channel: HttpsChannel,
    token: Zeroizing<String>,
}

impl core::fmt::Debug for OperatorClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OperatorClient")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl OperatorClient {
    /// An operator client; `tls` need not carry a client certificate.
    pub fn new(server: ServerEndpoint, tls: Arc<ClientConfig>, token: Zeroizing<String>) -> Self {
        OperatorClient {
            channel: HttpsChannel::new(server, tls),
            token,
        }
    }

    /// Audit entries after position `after`, at most `limit`.
    pub async fn audit(&mut self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, HttpError> {
        let path = format!("{AUDIT_PATH}?after={after}&limit={limit}");
        let mut headers = bearer(&Some(self.token.clone()));
        headers.push((ACCEPT, CBOR.to_string()));
        let reply = self
            .channel
            .request(Method::GET, &path, &headers, None)
            .await?
            .success()?;
        from_cbor(&reply.body)
    }
}
