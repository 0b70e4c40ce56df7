use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::binding::ConnSide;

pin_project! {
    /// A connection's IO, as [`TracingConnector`](crate::TracingConnector) returns it: every
    /// `Read`/`Write` method is delegated (vectored writes included), and `connected()` is the
    /// inner connection's.
    ///
    /// It sees the bytes of each exchange: the writes of the request and the reads of its
    /// response, and reports them to the request being served (see the crate's binding rules).
    pub struct TracedIo<T> {
        #[pin]
        io: TokioIo<Wire<T>>,
    }
}

pin_project! {
    // The tokio-side view of the connection, where a read's length can be seen without unsafe
    // code: hyper-util's `TokioIo` converts in both directions.
    struct Wire<T> {
        #[pin]
        inner: TokioIo<T>,
        conn: ConnSide,
    }
}

impl<T> TracedIo<T> {
    pub(crate) fn new(inner: T, conn: ConnSide) -> Self {
        Self {
            io: TokioIo::new(Wire {
                inner: TokioIo::new(inner),
                conn,
            }),
        }
    }

    /// The inner connection.
    pub fn get_ref(&self) -> &T {
        self.io.inner().inner.inner()
    }

    /// The connection's id, as events name it (`GotConn`, `ConnectDone`...).
    pub fn conn_id(&self) -> u64 {
        self.io.inner().conn.conn_id()
    }
}

impl<T: fmt::Debug> fmt::Debug for TracedIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracedIo")
            .field("conn_id", &self.conn_id())
            .field("inner", self.get_ref())
            .finish()
    }
}

impl<T: Connection> Connection for TracedIo<T> {
    fn connected(&self) -> Connected {
        self.get_ref().connected()
    }
}

impl<T: Read + Write + Connection> Read for TracedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: Read + Write + Connection> Write for TracedIo<T> {
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

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
}

impl<T: Read> AsyncRead for Wire<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        this.conn.before_read();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        match &res {
            Poll::Ready(Ok(())) => this.conn.read(buf.filled().len() - before),
            Poll::Ready(Err(e)) => this.conn.read_failed(e),
            Poll::Pending => {}
        }
        res
    }
}

impl<T: Write + Connection> Wire<T> {
    fn note_write<R>(conn: &mut ConnSide, res: &Poll<io::Result<R>>) {
        if let Poll::Ready(Err(e)) = res {
            conn.write_failed(e);
        }
    }
}

impl<T: Write + Connection> AsyncWrite for Wire<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let inner = this.inner;
        this.conn
            .before_write(|| super::connector::addrs(inner.inner()));
        let res = inner.poll_write(cx, buf);
        Self::note_write(this.conn, &res);
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let inner = this.inner;
        this.conn
            .before_write(|| super::connector::addrs(inner.inner()));
        let res = inner.poll_write_vectored(cx, bufs);
        Self::note_write(this.conn, &res);
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let res = this.inner.poll_flush(cx);
        match &res {
            Poll::Ready(Ok(())) => this.conn.flushed(),
            other => Self::note_write(this.conn, other),
        }
        res
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
