use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, ReadBuf};

use crate::binding::ConnSide;
use crate::util::ConnAddrs;

pin_project! {
    /// A connection's IO, as [`TracingConnector`](crate::TracingConnector) returns it: every
    /// `Read`/`Write` method is delegated (vectored writes included), and `connected()` is the
    /// inner connection's.
    ///
    /// It sees the bytes of each exchange: the writes of the request and the reads of its
    /// response, and reports them to the request being served (see the crate's binding rules).
    pub struct TracedIo<T> {
        #[pin]
        inner: T,
        conn: ConnSide,
    }
}

impl<T> TracedIo<T> {
    pub(crate) fn new(inner: T, conn: ConnSide) -> Self {
        Self { inner, conn }
    }

    /// The inner connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The connection's id, as events name it (`GotConn`, `ConnectDone`...).
    pub fn conn_id(&self) -> u64 {
        self.conn.conn_id()
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
        let connected = self.get_ref().connected();
        match self.conn.link(&connected) {
            Some(link) => connected.extra(link),
            None => connected,
        }
    }
}

/// A read seen through tokio's `ReadBuf`, where its length shows without unsafe code
/// (hyper-util's `TokioIo` converts between hyper's and tokio's traits both ways); on HTTP/2 its
/// bytes go to the frame reader.
struct Counted<'a, T> {
    inner: TokioIo<Pin<&'a mut T>>,
    n: usize,
    conn: &'a mut ConnSide,
}

impl<T: Read> AsyncRead for Counted<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.n = buf.filled().len() - before;
        if self.n > 0 && self.conn.is_h2() {
            self.conn.h2_read(&buf.filled()[before..]);
        }
        res
    }
}

impl<T: Read + Write + Connection> Read for TracedIo<T> {
    // not inlined into hyper's read loop: that loop, compiled for this IO type, then stays as
    // lean as it is for the bare connection (~100 instructions a request fewer, HTTP/1)
    #[inline(never)]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        this.conn.before_read();
        if !this.conn.traced_exchange() {
            // no traced request is served: that a read completed is all that matters
            let res = this.inner.poll_read(cx, buf);
            match &res {
                Poll::Ready(Ok(())) => this.conn.read_completed(),
                Poll::Ready(Err(e)) => this.conn.read_failed(e),
                Poll::Pending => {}
            }
            return res;
        }
        let mut counted = Counted {
            inner: TokioIo::new(this.inner),
            n: 0,
            conn: this.conn,
        };
        let res = Pin::new(&mut TokioIo::new(&mut counted)).poll_read(cx, buf);
        let n = counted.n;
        match &res {
            Poll::Ready(Ok(())) => this.conn.read(n),
            Poll::Ready(Err(e)) => this.conn.read_failed(e),
            Poll::Pending => {}
        }
        res
    }
}

impl<T: Read + Write + Connection> Write for TracedIo<T> {
    #[inline(never)]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let inner = this.inner;
        this.conn
            .before_write(buf, || ConnAddrs::of(inner.as_ref().get_ref()));
        let res = inner.poll_write(cx, buf);
        match &res {
            Poll::Ready(Ok(n)) if this.conn.is_h2() => {
                this.conn.h2_wrote(buf.get(..*n).unwrap_or(buf))
            }
            Poll::Ready(Err(e)) => this.conn.write_failed(e),
            _ => {}
        }
        res
    }

    #[inline(never)]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let inner = this.inner;
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        this.conn
            .before_write(first, || ConnAddrs::of(inner.as_ref().get_ref()));
        let res = inner.poll_write_vectored(cx, bufs);
        match &res {
            Poll::Ready(Ok(n)) if this.conn.is_h2() => {
                let mut left = *n;
                for b in bufs {
                    let take = left.min(b.len());
                    this.conn.h2_wrote(&b[..take]);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
            }
            Poll::Ready(Err(e)) => this.conn.write_failed(e),
            _ => {}
        }
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
            Poll::Ready(Err(e)) => this.conn.write_failed(e),
            Poll::Pending => {}
        }
        res
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
