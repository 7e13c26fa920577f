//! Requests: which endpoint, who may call it, limits, and the bytes to and from the setup
//! and association services. No protocol decision is made here: device bytes go to a service
//! unchanged and its answer comes back unchanged, with an HTTP status taken from the error
//! code the device sees anyway.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{Instrument, info, info_span, warn};
use zerotouch_core::{BarcodePayload, ErrorCode, Instant, KeyId, Pin, Signer, Transport};
use zerotouch_server::{
    AssociationService, ReassociationProof, Registration, ServerError, SetupService,
    TransportIdentity,
};
use zerotouch_store::{AccountId, RegistrarCredential, Store};

use super::config::Limits;
use super::limits::RateLimiter;
use super::metrics::HttpMetrics;
use super::peer::{CertificateProblem, Peer, PeerRole};
use crate::api::{
    AuditRecord, RegistrationRequest, RegistrationResponse, RegistrationResult, from_cbor, to_cbor,
};
use crate::{
    AUDIT_PATH, CBOR, ERROR_HEADER, HEALTH_PATH, METRICS_PATH, PEER_VERIFY_PATH, READY_PATH,
    REGISTRAR_PATH, RELAY_PATH_PREFIX, REVOCATION_PATH, SETUP_PATH,
};

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Everything a request handler needs, shared by every connection.
pub(crate) struct ServerState<St, S> {
    pub(crate) service: Arc<SetupService<St, S>>,
    pub(crate) association: Arc<AssociationService<St, S>>,
    pub(crate) limits: Limits,
    pub(crate) per_address: RateLimiter<IpAddr>,
    pub(crate) per_certificate: RateLimiter<KeyId>,
    pub(crate) per_relay: RateLimiter<KeyId>,
    pub(crate) metrics: HttpMetrics,
    pub(crate) registry: Registry,
    pub(crate) operator_token_sha256: Option<[u8; 32]>,
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) next_request: AtomicU64,
}

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Setup,
    Revocation,
    Relay(Transport),
    PeerVerify,
    Registrar,
    Audit,
    Health,
    Ready,
    Metrics,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Setup => "setup",
            Endpoint::Revocation => "revocation",
            Endpoint::Relay(_) => "relay",
            Endpoint::PeerVerify => "peer_verify",
            Endpoint::Registrar => "registrar",
            Endpoint::Audit => "audit",
            Endpoint::Health => "healthz",
            Endpoint::Ready => "readyz",
            Endpoint::Metrics => "metrics",
        }
    }
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The mutual-TLS listener.
    Tls,
    /// The plain operations listener (metrics and probes only).
    Ops,
}

/// A refusal by the HTTP layer: a status, a stable code and a sentence.
#[derive(Debug)]
pub(crate) struct Rejection {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl Rejection {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn rate_limited(what: &str, wait: Duration) -> Self {
        Rejection {
            retry_after: Some(wait),
            ..Rejection::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this {what}; retry later"),
            )
        }
    }

    fn certificate(problem: CertificateProblem, role: PeerRole) -> Self {
        let ca = role.ca_name();
        match problem {
            CertificateProblem::Missing => Rejection::new(
                StatusCode::UNAUTHORIZED,
                "client_certificate_required",
                format!("this endpoint needs a client certificate from the {ca} CA"),
            ),
            CertificateProblem::NotTrusted => Rejection::new(
                StatusCode::FORBIDDEN,
                "certificate_not_trusted",
                format!("the client certificate is not issued by the {ca} CA"),
            ),
            CertificateProblem::Expired => Rejection::new(
                StatusCode::FORBIDDEN,
                "certificate_expired",
                "the client certificate has expired",
            ),
            CertificateProblem::NotYetValid => Rejection::new(
                StatusCode::FORBIDDEN,
                "certificate_not_yet_valid",
                "the client certificate is not valid yet",
            ),
            CertificateProblem::Unusable(why) => Rejection::new(
                StatusCode::FORBIDDEN,
                "certificate_unusable",
                format!("the client certificate cannot be used here: {why}"),
            ),
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut response = plain(self.status, format!("{}: {}\n", self.code, self.message));
        response
            .headers_mut()
            .insert(ERROR_HEADER, HeaderValue::from_static(self.code));
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

fn body(status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, text: String) -> HttpResponse {
    body(status, "text/plain; charset=utf-8", text.into_bytes())
}

fn route(listener: Listener, method: &Method, path: &str) -> Result<Endpoint, Rejection> {
    let (endpoint, allowed) = match (listener, path) {
        (_, HEALTH_PATH) => (Endpoint::Health, Method::GET),
        (_, READY_PATH) => (Endpoint::Ready, Method::GET),
        (Listener::Ops, METRICS_PATH) => (Endpoint::Metrics, Method::GET),
        (Listener::Tls, SETUP_PATH) => (Endpoint::Setup, Method::POST),
        (Listener::Tls, REVOCATION_PATH) => (Endpoint::Revocation, Method::POST),
        (Listener::Tls, PEER_VERIFY_PATH) => (Endpoint::PeerVerify, Method::POST),
        (Listener::Tls, REGISTRAR_PATH) => (Endpoint::Registrar, Method::POST),
        (Listener::Tls, AUDIT_PATH) => (Endpoint::Audit, Method::GET),
        (Listener::Tls, p) if p.starts_with(RELAY_PATH_PREFIX) => {
            let transport = match p.get(RELAY_PATH_PREFIX.len()..) {
                Some("ble") => Transport::Ble,
                Some("local-stream") => Transport::LocalStream,
                _ => {
                    return Err(Rejection::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "relays exist for ble and local-stream devices only",
                    ));
                }
            };
            (Endpoint::Relay(transport), Method::POST)
        }
        _ => {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no endpoint at {path}"),
            ));
        }
    };
    if *method != allowed {
        return Err(Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} takes {allowed} only"),
        ));
    }
    Ok(endpoint)
}

fn now_ms() -> Instant {
    Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

/// A per-request CSPRNG seeded from the operating system.
fn request_rng() -> Result<ChaCha20Rng, Rejection> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal",
            "the system random number generator failed",
        )
    })?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn bearer_token(request: &Request<Incoming>) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl<St: Store, S: Signer + 'static> ServerState<St, S> {
    /// Answers one request; never fails (every problem is a response).
    pub(crate) async fn handle(
        self: Arc<Self>,
        listener: Listener,
        peer: Arc<Peer>,
        request: Request<Incoming>,
    ) -> HttpResponse {
        let started = Clock::now();
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let routed = route(listener, request.method(), request.uri().path());
        let name = routed.as_ref().map_or("unknown", |e| e.name());
        let span = info_span!("http", request = id, remote = %peer.remote, endpoint = name);
        let response = async {
            let result = match routed {
                Ok(endpoint) => self.dispatch(endpoint, &peer, request).await,
                Err(rejection) => Err(rejection),
            };
            match result {
                Ok(response) => response,
                Err(rejection) => {
                    info!(
                        status = rejection.status.as_u16(),
                        code = rejection.code,
                        "rejected"
                    );
                    rejection.into_response()
                }
            }
        }
        .instrument(span)
        .await;
        self.metrics
            .request(name, response.status().as_u16(), started.elapsed());
        response
    }

    async fn dispatch(
        &self,
        endpoint: Endpoint,
        peer: &Peer,
        request: Request<Incoming>,
    ) -> Result<HttpResponse, Rejection> {
        if !matches!(
            endpoint,
            Endpoint::Health | Endpoint::Ready | Endpoint::Metrics
        ) {
            self.per_address
                .take(&peer.remote.ip(), Clock::now())
                .map_err(|wait| Rejection::rate_limited("address", wait))?;
        }
        match endpoint {
            Endpoint::Setup | Endpoint::Revocation | Endpoint::PeerVerify => {
                // A sponsor is a device too: the manufacturer CA's certificate, whose key the
                // association service checks against the request's signer.
                let key = peer
                    .authorize(PeerRole::Device)
                    .map_err(|p| Rejection::certificate(p, PeerRole::Device))?
                    .clone();
                self.per_certificate
                    .take(&key.key_id(), Clock::now())
                    .map_err(|wait| Rejection::rate_limited("certificate", wait))?;
                let bytes = self.read_body(request, CBOR).await?;
                let from = TransportIdentity::Direct {
                    transport: Transport::Https,
                    client_key: Some(key),
                };
                if endpoint == Endpoint::PeerVerify {
                    self.peer_verify(&bytes, &from).await
                } else {
                    self.protocol(&bytes, &from).await
                }
            }
            Endpoint::Relay(device_transport) => {
                let key = peer
                    .authorize(PeerRole::Provisioner)
                    .map_err(|p| Rejection::certificate(p, PeerRole::Provisioner))?;
                let relay = key.key_id();
                self.per_relay
                    .take(&relay, Clock::now())
                    .map_err(|wait| Rejection::rate_limited("relay", wait))?;
                let bytes = self.read_body(request, CBOR).await?;
                let from = TransportIdentity::Relayed {
                    relay,
                    device_transport,
                };
                self.protocol(&bytes, &from).await
            }
            Endpoint::Registrar => self.registrar(peer, request).await,
            Endpoint::Audit => self.audit(request).await,
            Endpoint::Health => Ok(plain(StatusCode::OK, "ok\n".into())),
            Endpoint::Ready => self.ready().await,
            Endpoint::Metrics => {
                let mut text = String::new();
                prometheus_client::encoding::text::encode(&mut text, &self.registry).map_err(
                    |_| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "metrics"),
                )?;
                Ok(body(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text.into_bytes(),
                ))
            }
        }
    }

    /// Reads a body of `content_type` within the size and time limits.
    async fn read_body(
        &self,
        request: Request<Incoming>,
        content_type: &'static str,
    ) -> Result<Vec<u8>, Rejection> {
        let limit = self.limits.max_body_bytes;
        let given = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if given.as_deref() != Some(content_type) {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("the body must be {content_type}"),
            ));
        }
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            Rejection::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is longer than {limit} bytes"),
            )
        };
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let read = Limited::new(request.into_body(), limit).collect();
        match tokio::time::timeout(self.limits.body_timeout, read).await {
            Err(_) => Err(Rejection::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body did not arrive in time",
            )),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) => Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                "the body could not be read",
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        }
    }

    /// Hands device bytes to the setup service and its answer back.
    async fn protocol(
        &self,
        bytes: &[u8],
        from: &TransportIdentity,
    ) -> Result<HttpResponse, Rejection> {
        let mut rng = request_rng()?;
        let answer = self.service.answer(bytes, from, now_ms(), &mut rng).await;
        Ok(body(
            status_of(answer.refusal.map(|r| r.code())),
            CBOR,
            answer.bytes,
        ))
    }

    /// Hands a sponsor's verification request to the association service and its answer back.
    async fn peer_verify(
        &self,
        bytes: &[u8],
        from: &TransportIdentity,
    ) -> Result<HttpResponse, Rejection> {
        let mut rng = request_rng()?;
        let answer = self
            .association
            .answer(bytes, from, now_ms(), &mut rng)
            .await;
        Ok(body(status_of(answer.code()), CBOR, answer.bytes))
    }

    async fn registrar(
        &self,
        peer: &Peer,
        request: Request<Incoming>,
    ) -> Result<HttpResponse, Rejection> {
        let credential = match bearer_token(&request) {
            Some(token) => RegistrarCredential::ApiTokenHash(Sha256::digest(token).into()),
            None if peer.has_certificate() => {
                let key = peer
                    .authorize(PeerRole::Registrar)
                    .map_err(|p| Rejection::certificate(p, PeerRole::Registrar))?;
                RegistrarCredential::Certificate(key.key_id())
            }
            None => {
                return Err(Rejection::new(
                    StatusCode::UNAUTHORIZED,
                    "registrar_credential_required",
                    "registrar endpoints need a registrar certificate or an API token",
                ));
            }
        };
        let limiter_key = match credential {
            RegistrarCredential::Certificate(k) => k,
            RegistrarCredential::ApiTokenHash(h) => KeyId(h),
        };
        self.per_certificate
            .take(&limiter_key, Clock::now())
            .map_err(|wait| Rejection::rate_limited("registrar", wait))?;
        let store = self.service.store();
        let registrar = store
            .registrar_by_credential(&credential)
            .await
            .map_err(|e| store_unavailable(&e))?
            .ok_or_else(|| {
                Rejection::new(
                    StatusCode::FORBIDDEN,
                    "unknown_registrar",
                    "no registrar holds this certificate or token",
                )
            })?;
        let bytes = self.read_body(request, CBOR).await?;
        let req: RegistrationRequest = from_cbor(&bytes).map_err(|e| {
            Rejection::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string())
        })?;
        let label = BarcodePayload::decode(&req.label).map_err(|e| {
            Rejection::new(StatusCode::BAD_REQUEST, "bad_label", format!("label: {e}"))
        })?;
        let proof = match (&req.pin, req.owner_consent) {
            (Some(pin), _) => ReassociationProof::Pin(Pin::new(pin).map_err(|_| {
                Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "bad_pin",
                    "the PIN is not 4-12 digits",
                )
            })?),
            (None, Some(owner)) => ReassociationProof::OwnerConsent {
                owner: AccountId(owner),
            },
            (None, None) => ReassociationProof::None,
        };
        let registration = self
            .service
            .register_device(
                registrar.id,
                &label,
                AccountId(req.account),
                proof,
                now_ms(),
            )
            .await
            .map_err(registrar_rejection)?;
        let (result, previous_accounts) = match registration {
            Registration::Added => (RegistrationResult::Added, vec![]),
            Registration::AlreadyRegistered => (RegistrationResult::AlreadyRegistered, vec![]),
            Registration::Reassociated { from } => (
                RegistrationResult::Reassociated,
                from.into_iter().map(|a| a.0).collect(),
            ),
        };
        let response = RegistrationResponse {
            result,
            previous_accounts,
        };
        let bytes = to_cbor(&response).map_err(|e| {
            Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?;
        Ok(body(StatusCode::OK, CBOR, bytes))
    }

    async fn audit(&self, request: Request<Incoming>) -> Result<HttpResponse, Rejection> {
        let Some(expected) = self.operator_token_sha256 else {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "operator endpoints are not enabled on this server",
            ));
        };
        let given: [u8; 32] = Sha256::digest(bearer_token(&request).unwrap_or("")).into();
        if !bool::from(given.ct_eq(&expected)) {
            warn!("operator endpoint with a wrong or missing token");
            return Err(Rejection::new(
                StatusCode::UNAUTHORIZED,
                "operator_token_required",
                "operator endpoints need the operator token",
            ));
        }
        let mut after = 0u64;
        let mut limit = 100usize;
        for pair in request.uri().query().unwrap_or("").split('&') {
            let bad = || {
                Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    "after and limit must be non-negative integers",
                )
            };
            match pair.split_once('=') {
                Some(("after", v)) => after = v.parse().map_err(|_| bad())?,
                Some(("limit", v)) => limit = v.parse().map_err(|_| bad())?,
                _ => {}
            }
        }
        let entries = self
            .service
            .store()
            .audit_log(after, limit.min(1000))
            .await
            .map_err(|e| store_unavailable(&e))?;
        let records: Vec<AuditRecord> = entries.iter().map(AuditRecord::of).collect();
        let wants_json = request
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        let internal = |e: String| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
        if wants_json {
            let text = serde_json::to_vec(&records).map_err(|e| internal(e.to_string()))?;
            Ok(body(StatusCode::OK, "application/json", text))
        } else {
            let bytes = to_cbor(&records).map_err(|e| internal(e.to_string()))?;
            Ok(body(StatusCode::OK, CBOR, bytes))
        }
    }

    async fn ready(&self) -> Result<HttpResponse, Rejection> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ));
        }
        match tokio::time::timeout(Duration::from_secs(2), self.service.store().server_keys()).await
        {
            Ok(Ok(_)) => Ok(plain(StatusCode::OK, "ready\n".into())),
            Ok(Err(e)) => Err(store_unavailable(&e)),
            Err(_) => Err(Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store did not answer in time",
            )),
        }
    }
}

/// The HTTP status of a protocol answer: it repeats the code in the (unsigned) error message,
/// never more.
fn status_of(code: Option<ErrorCode>) -> StatusCode {
    match code {
        None => StatusCode::OK,
        Some(ErrorCode::BadMessage)
        | Some(ErrorCode::UnsupportedVersion)
        | Some(ErrorCode::NoCommonSuite) => StatusCode::BAD_REQUEST,
        Some(ErrorCode::NotAuthorized) | Some(ErrorCode::NotAssociated) => StatusCode::FORBIDDEN,
        Some(ErrorCode::SessionExpired) => StatusCode::GONE,
        Some(ErrorCode::RateLimited) => StatusCode::TOO_MANY_REQUESTS,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn store_unavailable(e: &zerotouch_store::StoreError) -> Rejection {
    warn!(error = %e, "store failed");
    Rejection::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store is unavailable; retry later",
    )
}

fn registrar_rejection(e: ServerError) -> Rejection {
    let (status, code) = match &e {
        ServerError::RegistrarNotAllowed => (StatusCode::FORBIDDEN, "registrar_not_allowed"),
        ServerError::UnknownAccount => (StatusCode::NOT_FOUND, "unknown_account"),
        ServerError::UnknownDevice => (StatusCode::NOT_FOUND, "unknown_device"),
        ServerError::AmbiguousLabel => (StatusCode::CONFLICT, "ambiguous_label"),
        ServerError::LabelMismatch => (StatusCode::CONFLICT, "label_mismatch"),
        ServerError::ReassociationNeedsProof => (StatusCode::CONFLICT, "reassociation_needs_proof"),
        ServerError::WrongPin => (StatusCode::FORBIDDEN, "wrong_pin"),
        ServerError::Locked { .. } => (StatusCode::TOO_MANY_REQUESTS, "locked"),
        ServerError::ConsentNotFromOwner => (StatusCode::FORBIDDEN, "consent_not_from_owner"),
        ServerError::Store(err) => return store_unavailable(err),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let mut rejection = Rejection::new(status, code, e.to_string());
    if let ServerError::Locked { until_ms } = e {
        rejection.retry_after = Some(Duration::from_millis(until_ms.saturating_sub(now_ms().0)));
    }
    rejection
}
