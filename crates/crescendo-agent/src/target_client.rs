//! The client for the load's requests: hyper's pooled client over rustls (webpki
//! roots), HTTP/1.1 keep-alive, HTTP/2 to a target that offers it by ALPN, no
//! redirects followed, and one timeout over each whole exchange (the answer's head
//! and its body).
//!
//! Requests come prepared (`crate::request`): an `http::Request` with its URI,
//! headers and body built once per step where the templates allow, so the hot path
//! clones no client and parses no URL. The OAuth token fetch keeps its own client.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A request to the target.
pub(crate) type TargetRequest = Request<Full<Bytes>>;

/// One run's client; cheap to share by reference, never cloned per request.
#[derive(Debug, Clone)]
pub(crate) struct TargetClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

/// A complete answer: its head and its whole body.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A request that got no complete answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No complete answer within the target's timeout.
    #[error("operation timed out")]
    Timeout,
    /// The request could not be sent, or its answer's head not read.
    #[error("error sending request")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// The answer's body could not be read to its end.
    #[error("error reading the body")]
    Body(#[source] hyper::Error),
    /// The templates rendered a request that cannot be sent (a bad URL or header).
    #[error("the request could not be built")]
    Build(#[source] BuildError),
}

/// Why a rendered request cannot be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// (The URL is not named: its query may hold a secret.)
    #[error("invalid URL")]
    Url,
    #[error("invalid value for header {0}")]
    HeaderValue(http::HeaderName),
}

impl TargetClient {
    /// A client that keeps up to `max_idle` idle connections to the target and gives
    /// each exchange `timeout`.
    pub(crate) fn new(timeout: Duration, max_idle: usize) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(max_idle)
            .build(https);
        Self { client, timeout }
    }

    /// The per-exchange timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Send `request` and read its answer to the end, within the timeout.
    pub(crate) async fn send(&self, request: TargetRequest) -> Result<Answered, SendError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(SendError::Request)?;
            let (head, body) = response.into_parts();
            let body = body.collect().await.map_err(SendError::Body)?.to_bytes();
            Ok(Answered {
                status: head.status,
                headers: head.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(SendError::Timeout))
    }
}
