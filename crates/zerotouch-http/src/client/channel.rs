//! One HTTPS connection to the server, kept alive between requests and opened again when the
//! server closed it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tracing::debug;

use crate::{ERROR_HEADER, HttpError};

/// Where a client connects.
#[derive(Debug, Clone)]
pub struct ServerEndpoint {
    /// The server's address.
    pub address: SocketAddr,
    /// The name its certificate must carry (ignored with a pinned key).
    pub server_name: String,
    /// The local address to connect from (a device's interface; tests spread load over
    /// loopback addresses). `None`: the system chooses.
    pub local_ip: Option<IpAddr>,
    /// Bound on connecting, the TLS handshake, and each request with its response.
    pub timeout: Duration,
    /// Longest response body accepted.
    pub max_response_bytes: usize,
}

impl ServerEndpoint {
    /// An endpoint at `address` named `server_name`, with 10 s timeouts and 64 KiB bodies.
    pub fn new(address: SocketAddr, server_name: impl Into<String>) -> Self {
        ServerEndpoint {
            address,
            server_name: server_name.into(),
            local_ip: None,
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
        }
    }
}

/// A response: its status, content type and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The content type, if given.
    pub content_type: Option<String>,
    /// The `zerotouch-error` code, if the server set one.
    pub error_code: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (error messages are UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Ok for 2xx, else [`HttpError::Status`].
    pub fn success(self) -> Result<Reply, HttpError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(HttpError::Status {
                status: self.status,
                code: self.error_code.clone().unwrap_or_default(),
                message: self.text().trim().to_string(),
            })
        }
    }
}

/// A kept-alive HTTPS connection to one server.
pub struct HttpsChannel {
    endpoint: ServerEndpoint,
    tls: Arc<ClientConfig>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl core::fmt::Debug for HttpsChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpsChannel")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.sender.is_some())
            .finish()
    }
}

impl HttpsChannel {
    /// A channel that connects on first use.
    pub fn new(endpoint: ServerEndpoint, tls: Arc<ClientConfig>) -> Self {
        HttpsChannel {
            endpoint,
            tls,
            sender: None,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &ServerEndpoint {
        &self.endpoint
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let addr = self.endpoint.address;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = self.endpoint.local_ip {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(self.endpoint.server_name.clone())
            .map_err(|_| HttpError::Config("server name is not a valid DNS name or address"))?;
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, tcp)
            .await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "connection closed");
            }
        });
        Ok(sender)
    }

    /// Sends one request and reads its response, opening a connection if there is none or
    /// the kept one was closed. Protocol messages are safe to send twice (the server answers
    /// an identical retransmission with its stored response), so one retry on a fresh
    /// connection is made when the kept one fails.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, HttpError> {
        let timeout = self.endpoint.timeout;
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        match tokio::time::timeout(timeout, self.request_once(&method, path, headers, &body)).await
        {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(e)) if reused => {
                debug!(error = %e, "request failed; retrying on a new connection");
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                self.sender = None;
                return Err(HttpError::Timeout("waiting for the server"));
            }
        }
        tokio::time::timeout(timeout, self.request_once(&method, path, headers, &body))
            .await
            .map_err(|_| {
                self.sender = None;
                HttpError::Timeout("waiting for the server")
            })?
    }

    async fn request_once(
        &mut self,
        method: &Method,
        path: &str,
        headers: &[(HeaderName, String)],
        body: &Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, HttpError> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender.ready().await?;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, self.endpoint.server_name.as_str());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let payload = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(CONTENT_TYPE, *content_type);
                Bytes::from(bytes.clone())
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|_| HttpError::Config("request header is not valid"))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let header = |name: &HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(&CONTENT_TYPE);
        let error_code = header(&ERROR_HEADER);
        let limit = self.endpoint.max_response_bytes;
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|_| HttpError::ResponseTooLarge { limit })?
            .to_bytes()
            .to_vec();
        // Keep the connection only after a complete exchange.
        self.sender = Some(sender);
        Ok(Reply {
            status,
            content_type,
            error_code,
            body,
        })
    }
}
