//! The connection to one server, with a bound on the bytes read per poll.
//!
//! The redis crate reads a reply until it is complete, whatever its size: a
//! server (or anything listening on its port) that declares a 300 MB bulk
//! string gets 300 MB buffered, then copied into a `Value` and again into
//! the INFO text. The crate has no limit of its own, but
//! [`MultiplexedConnection::new_with_config`] accepts any byte stream, so
//! perfwatch opens the stream itself (TCP, TLS as the crate does it, or a
//! unix socket) and hands the crate a [`Budgeted`] stream: reads stop with
//! an error once a poll has read [`ReplyBudget::limit`] bytes. The error
//! fails every request in flight and ends the connection; the collector
//! reports it as a protocol error naming the bound and reconnects on the
//! next poll.

use crate::tls::{CertRequested, TlsReady, TlsSettings};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

/// Most bytes one poll (or one connect handshake) may read, shared between
/// the collector, which starts each poll with [`ReplyBudget::reset`], and
/// the stream of the live connection, which spends it.
#[derive(Debug, Clone)]
pub(crate) struct ReplyBudget {
    inner: Arc<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    limit: usize,
    left: AtomicUsize,
    /// The server sent more than the budget since the last reset.
    exceeded: AtomicBool,
}

impl ReplyBudget {
    /// A budget of `limit` bytes per poll, full.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(BudgetState {
                limit,
                left: AtomicUsize::new(limit),
                exceeded: AtomicBool::new(false),
            }),
        }
    }

    /// The bound, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Fills the budget again: a new poll, or a new connection.
    pub(crate) fn reset(&self) {
        self.inner.left.store(self.inner.limit, Ordering::SeqCst);
        self.inner.exceeded.store(false, Ordering::SeqCst);
    }

    /// Bytes read since the last reset.
    pub(crate) fn used(&self) -> usize {
        self.inner.limit - self.inner.left.load(Ordering::SeqCst)
    }

    /// Whether the server sent more than the budget since the last reset
    /// (the failed request's error then says why only vaguely).
    pub(crate) fn exceeded(&self) -> bool {
        self.inner.exceeded.load(Ordering::SeqCst)
    }
}

/// A byte stream whose reads spend a [`ReplyBudget`]. Writes are not bounded
/// (perfwatch writes only its own small commands).
pub(crate) struct Budgeted<S> {
    inner: S,
    budget: ReplyBudget,
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let state = self.budget.inner.clone();
        let over = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply larger than max_reply_bytes ({} bytes)", state.limit),
            )
        };
        // Once over, stay over until the next reset: the crate may poll the
        // stream again after the error, and must not read on byte by byte.
        if state.exceeded.load(Ordering::SeqCst) {
            return Poll::Ready(Err(over()));
        }
        let left = state.left.load(Ordering::SeqCst);
        // With nothing left, still wait for one byte: an idle connection
        // between two polls is fine, a byte beyond the budget is not.
        let want = buf.remaining().min(left.max(1));
        // A sub-buffer of at most `want` bytes: the reader never pulls more
        // than the budget out of the socket. `take` keeps the bytes
        // uninitialized (zeroing the codec's whole spare capacity on every
        // read cost measurable CPU with large replies); this is how
        // tokio's own `Take` reader does it.
        let n = {
            let mut part = buf.take(want);
            let before = part.filled().as_ptr();
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut part))?;
            // The inner reader must fill the buffer it was given.
            assert_eq!(before, part.filled().as_ptr(), "reader swapped the buffer");
            part.filled().len()
        };
        if n > left {
            state.exceeded.store(true, Ordering::SeqCst);
            return Poll::Ready(Err(over()));
        }
        // SAFETY: the inner reader initialized (filled) `n` bytes at the start
        // of `buf`'s unfilled part, which `part` borrowed.
        unsafe {
            buf.assume_init(n);
        }
        state.left.fetch_sub(n, Ordering::SeqCst);
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
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
}

/// Any of the transports below, boxed.
trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// A connection and the task that drives it: dropping this ends both (the
/// socket closes with the task).
pub(crate) struct Session {
    /// The connection, as the crate's own connect would have made it.
    pub conn: MultiplexedConnection,
    driver: JoinHandle<()>,
    /// TLS without a client certificate: set if the server asked for one.
    pub cert_requested: Option<CertRequested>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects to `info` with reads spending `budget`: opens the transport,
/// then lets the crate run its handshake (AUTH, SELECT; HELLO for RESP3) on
/// it. Timeouts are the caller's job.
pub(crate) async fn connect(
    info: &ConnectionInfo,
    budget: &ReplyBudget,
    tls: Option<&TlsReady>,
) -> Result<Session, ConnectError> {
    let (stream, cert_requested) = open(info.addr(), tls).await?;
    let stream = Budgeted {
        inner: stream,
        budget: budget.clone(),
    };
    // The engine puts one deadline on the whole poll; a response timeout of
    // the crate would only add a second, different one.
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    let (conn, driver) =
        MultiplexedConnection::new_with_config(info.redis_settings(), stream, config)
            .await
            // TLS 1.3 servers check the client certificate after the
            // handshake: a missing one shows up on the first read here.
            .map_err(|e| match crate::tls::describe_failure(&e) {
                Some(why) => ConnectError::Tls(why),
                None if cert_requested.as_ref().is_some_and(CertRequested::get) => {
                    ConnectError::Tls(CertRequested::MESSAGE.into())
                }
                None => ConnectError::Redis(e),
            })?;
    // (The crate sends nothing on connect without a password or db: the
    // caller's first command is where a refused certificate shows.)
    Ok(Session {
        conn,
        driver: tokio::spawn(driver),
        cert_requested,
    })
}

/// Why a connection could not be made: the TLS handshake (in words, see
/// [`crate::tls::describe_failure`]) or anything else.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The TLS handshake failed; why.
    Tls(String),
    /// Connecting or the Redis handshake failed.
    Redis(RedisError),
}

impl From<RedisError> for ConnectError {
    fn from(e: RedisError) -> Self {
        Self::Redis(e)
    }
}

impl From<std::io::Error> for ConnectError {
    fn from(e: std::io::Error) -> Self {
        Self::Redis(e.into())
    }
}

/// Opens the byte stream: plain TCP, a unix socket, or TLS with perfwatch's
/// one TLS stack (`crate::tls`: the `[redis.tls]` table, else the system
/// roots and the url's host as the name checked and sent as SNI).
async fn open(
    addr: &ConnectionAddr,
    tls: Option<&TlsReady>,
) -> Result<(Box<dyn Transport>, Option<CertRequested>), ConnectError> {
    match addr {
        ConnectionAddr::Tcp(host, port) => Ok((
            Box::new(tokio::net::TcpStream::connect((host.as_str(), *port)).await?),
            None,
        )),
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            ..
        } => {
            // One way to turn checks off, the documented one.
            if *insecure {
                return Err(RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "rediss:// with #insecure is not supported: set insecure_skip_verify = true in [redis.tls]",
                ))
                .into());
            }
            let default;
            let tls = match tls {
                Some(t) => t,
                None => {
                    default = TlsSettings::default().validate().map_err(|p| {
                        RedisError::from((ErrorKind::InvalidClientConfig, "tls", format!("{p:?}")))
                    })?;
                    &default
                }
            };
            let (config, requested) = tls
                .client_config_noting_requests()
                .map_err(|e| RedisError::from((ErrorKind::InvalidClientConfig, "tls", e)))?;
            let name = rustls::pki_types::ServerName::try_from(host.as_str())
                .map_err(|e| {
                    ConnectError::Tls(format!("tls: \"{host}\" is not a server name: {e}"))
                })?
                .to_owned();
            let tcp = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| match crate::tls::describe_failure(&e) {
                    Some(why) => ConnectError::Tls(why),
                    None => ConnectError::Redis(e.into()),
                })?;
            Ok((Box::new(tls), requested))
        }
        ConnectionAddr::Unix(path) => {
            Ok((Box::new(tokio::net::UnixStream::connect(path).await?), None))
        }
        other => Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "unsupported address",
            format!("{other:?}"),
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn budgeted(
        limit: usize,
    ) -> (
        Budgeted<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        ReplyBudget,
    ) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let budget = ReplyBudget::new(limit);
        let stream = Budgeted {
            inner: ours,
            budget: budget.clone(),
        };
        (stream, theirs, budget)
    }

    #[tokio::test]
    async fn reads_up_to_the_budget_then_fails_and_reset_refills() {
        let (mut ours, mut theirs, budget) = budgeted(10);
        theirs.write_all(b"0123456789").await.unwrap();
        let mut got = [0u8; 64];
        let mut total = 0;
        while total < 10 {
            total += ours.read(&mut got[total..]).await.unwrap();
        }
        assert_eq!(&got[..10], b"0123456789");
        assert_eq!(budget.used(), 10);
        assert!(!budget.exceeded(), "exactly the budget is fine");
        // Between polls the next poll's budget is restored.
        budget.reset();
        theirs.write_all(b"abcdefghijk").await.unwrap();
        let mut total = 0;
        let err = loop {
            match ours.read(&mut got[total..]).await {
                Ok(n) => total += n,
                Err(e) => break e,
            }
        };
        assert_eq!(total, 10, "never more than the budget");
        assert!(budget.exceeded());
        assert!(
            err.to_string().contains("max_reply_bytes (10 bytes)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_read_never_asks_for_more_than_is_left() {
        let (mut ours, mut theirs, budget) = budgeted(4);
        theirs.write_all(&[7u8; 100]).await.unwrap();
        let mut got = [0u8; 100];
        let n = ours.read(&mut got).await.unwrap();
        assert!(n <= 4, "read {n}");
        assert!(budget.used() <= 4);
    }
}
