//! The controller's cap on open connections, so that what clients can make it hold is
//! bounded whoever they are.
//!
//! Every accepted TCP connection takes a permit from [`ConnectionLimit`] before anything
//! else happens (the TLS handshake included) and gives it back when the connection
//! closes ([`Limited`] carries it). A connection past the cap is closed at once, and
//! the refusals are logged at most once a second with their count.
//!
//! # The memory bound
//! A connection that has not authenticated can make the controller hold, besides its
//! socket and task, what HTTP/2 lets a peer send ahead: the connection's receive window
//! ([`CONNECTION_WINDOW`]; streams are refused on their headers, before their bodies
//! are read) and the request headers ([`MAX_HEADER_LIST`]), plus the TLS and HTTP/2
//! read buffers. [`BYTES_PER_CONNECTION`] is that sum with room for the rest, so the
//! controller's growth under a flood of strangers stays below `max_connections ×
//! BYTES_PER_CONNECTION` (`tests/connection_flood.rs` measures it on the real binary).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// Open connections at once unless `--max-connections` says otherwise: room for a
/// fleet of a few thousand agents and its operators.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The HTTP/2 connection receive window the controller grants (all streams together).
pub(crate) const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// The HTTP/2 stream receive window the controller grants.
pub(crate) const STREAM_WINDOW: u32 = 1024 * 1024;

/// The largest request header block the controller reads.
pub(crate) const MAX_HEADER_LIST: u32 = 16 * 1024;

/// What one unauthenticated connection can make the controller hold, at most: the
/// connection window, the header block, and 512 KiB for read buffers, the TLS session
/// and the connection's task.
pub const BYTES_PER_CONNECTION: u64 =
    CONNECTION_WINDOW as u64 + MAX_HEADER_LIST as u64 + 512 * 1024;

/// How many connections may be open at once.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: usize,
}

impl ConnectionLimit {
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

/// A connection holding its permit: closing it gives the permit back.
#[derive(Debug)]
pub(crate) struct Limited<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
}

impl<S> Limited<S> {
    pub(crate) fn new(inner: S, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            _permit: permit,
        }
    }
}

/// A TCP connection that got a permit, with its peer's address.
pub(crate) type Admitted = (TcpStream, SocketAddr, OwnedSemaphorePermit);

/// Accept connections on `listener` while permits last; past the cap each is closed at
/// once. Ends when `shutdown` is cancelled or the receiver is dropped.
pub(crate) fn admit(
    listener: TcpListener,
    limit: ConnectionLimit,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Admitted> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut refusals = Refusals::default();
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
            };
            match limit.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    if tx.send((tcp, peer, permit)).await.is_err() {
                        break;
                    }
                }
                Err(_) => {
                    drop(tcp);
                    refusals.count(peer, limit.max);
                }
            }
        }
    });
    rx
}

/// Plain TCP connections, each holding its permit.
pub(crate) fn plain(
    listener: TcpListener,
    limit: ConnectionLimit,
    shutdown: CancellationToken,
) -> ReceiverStream<io::Result<Limited<TcpStream>>> {
    let mut admitted = admit(listener, limit, shutdown);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some((tcp, _, permit)) = admitted.recv().await {
            if tx.send(Ok(Limited::new(tcp, permit))).await.is_err() {
                break;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Refused connections, logged at most once a second.
#[derive(Debug, Default)]
struct Refusals {
    since_log: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    fn count(&mut self, peer: SocketAddr, max: usize) {
        self.since_log += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            tracing::warn!(
                %peer,
                refused = self.since_log,
                "connection refused: {max} connections are open (--max-connections)"
            );
            self.since_log = 0;
            self.last_log = Some(now);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Limited<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_cap_a_connection_is_closed_and_a_closed_one_frees_its_place() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let mut admitted = admit(listener, ConnectionLimit::new(2), shutdown.clone());
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let first = admitted.recv().await.unwrap();
        let _second = admitted.recv().await.unwrap();
        // The third is closed by the controller: reading it ends at once.
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut c, &mut buf).await;
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        // Closing an admitted connection gives its permit back.
        drop(first);
        let _d = TcpStream::connect(addr).await.unwrap();
        let (_, _, _permit) = admitted.recv().await.unwrap();
        shutdown.cancel();
    }
}
