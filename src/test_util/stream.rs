use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use crate::connect::InspectTls;
use crate::event::TlsState;

pin_project! {
    /// The client's side of an in-memory connection of a
    /// [`MemoryConnector`](super::MemoryConnector): a tokio `duplex` stream, with the addresses,
    /// protocol and TLS state its [`Plan`](super::Plan) says.
    #[derive(Debug)]
    pub struct MemoryStream {
        #[pin]
        io: TokioIo<DuplexStream>,
        addrs: MemoryAddrs,
        http2: bool,
        tls: Option<TlsState>,
    }
}

/// The addresses an in-memory connection reports, in its `Connected` extras.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryAddrs {
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
}

impl MemoryStream {
    pub(super) fn new(
        io: DuplexStream,
        addrs: MemoryAddrs,
        http2: bool,
        tls: Option<TlsState>,
    ) -> Self {
        Self {
            io: TokioIo::new(io),
            addrs,
            http2,
            tls,
        }
    }

    /// The local address it reports.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs.local
    }

    /// The remote address it reports.
    pub fn remote_addr(&self) -> SocketAddr {
        self.addrs.remote
    }
}

impl Read for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl Write for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

impl Connection for MemoryStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.addrs);
        match self.http2 {
            true => connected.negotiated_h2(),
            false => connected,
        }
    }
}

/// Reads the TLS state a [`MemoryStream`]'s [`Plan`](super::Plan) reports, for
/// `TLSHandshakeDone` (see [`MemoryConnector::traced`](super::MemoryConnector::traced)).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryTls;

impl InspectTls<MemoryStream> for MemoryTls {
    fn tls_state(&self, io: &MemoryStream) -> Option<TlsState> {
        io.tls.clone()
    }
}

pin_project! {
    /// The server's side: fails every write once `left` bytes were written.
    pub(super) struct BreakAfter {
        #[pin]
        io: DuplexStream,
        left: Option<usize>,
    }
}

impl BreakAfter {
    pub(super) fn new(io: DuplexStream, left: Option<usize>) -> Self {
        Self { io, left }
    }
}

impl AsyncRead for BreakAfter {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl AsyncWrite for BreakAfter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let Some(left) = this.left else {
            return this.io.poll_write(cx, buf);
        };
        if *left == 0 {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let n = buf.len().min(*left);
        let written = std::task::ready!(this.io.poll_write(cx, &buf[..n]))?;
        *left -= written;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
