use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::binding::{self, RequestCtx};
use crate::error::SharedError;

pin_project! {
    /// The request body that [`Trace`](crate::Trace) passes to the client: the caller's body,
    /// unchanged on the wire (`size_hint` and `is_end_stream` are forwarded, so hyper keeps its
    /// framing).
    ///
    /// It also tells the connection which request it is about to write: hyper asks it
    /// `is_end_stream()` on the connection's task right before it writes the request, so build
    /// hyper-util's client for `RequestBody<B>`.
    ///
    /// ```
    /// use http_body::Body;
    /// use httptrace::RequestBody;
    ///
    /// let body = RequestBody::new(String::from("hello"));
    /// assert_eq!(body.size_hint().exact(), Some(5));
    /// ```
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        ctx: Option<Arc<RequestCtx>>,
        // HANDED_OFF, SIZE_ASKED, NO_STREAM
        flags: AtomicU8,
    }
}

/// hyper's dispatcher looked at the body: the request was handed to its connection.
const HANDED_OFF: u8 = 1;
/// `size_hint()` was asked before that: hyper's HTTP/2 dispatch task asks it first.
const SIZE_ASKED: u8 = 2;
/// hyper refuses the request before it opens an HTTP/2 stream (a `CONNECT` with a body).
const NO_STREAM: u8 = 4;

impl<B> RequestBody<B> {
    /// Wraps a body of a request that is not traced.
    pub fn new(inner: B) -> Self {
        Self::untraced(inner)
    }

    pub(crate) fn untraced(inner: B) -> Self {
        Self {
            inner,
            ctx: None,
            flags: AtomicU8::new(0),
        }
    }

    /// hyper will refuse the request before it opens an HTTP/2 stream for it.
    pub(crate) fn opens_no_stream(self, yes: bool) -> Self {
        if yes {
            self.flags.fetch_or(NO_STREAM, Ordering::Relaxed);
        }
        self
    }

    /// `declared`: the request's `Content-Length`, if it has one.
    pub(crate) fn traced(inner: B, ctx: Arc<RequestCtx>, declared: Option<u64>) -> Self
    where
        B: Body,
    {
        ctx.set_body_length(declared.or_else(|| inner.size_hint().exact()));
        Self {
            inner,
            ctx: Some(ctx),
            flags: AtomicU8::new(0),
        }
    }

    /// The caller's body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// Unwraps the caller's body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Default> Default for RequestBody<B> {
    fn default() -> Self {
        Self::untraced(B::default())
    }
}

impl<B: fmt::Debug> fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .field("traced", &self.ctx.is_some())
            .finish()
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(ctx) = this.ctx.as_ref() {
            match &frame {
                None => ctx.set_body_done(),
                Some(Ok(f)) if f.is_trailers() => ctx.set_body_done(),
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        ctx.body_data(data.remaining() as u64);
                    }
                }
                _ => {}
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let eos = self.inner.is_end_stream();
        // hyper's dispatcher asks this first, on the connection's task, right before it writes
        // the request head (HTTP/1) or opens its stream (HTTP/2): the moment to hand the request
        // to the connection (binding, invariants 4 and 6) ... and not a layer between
        // httptrace and the client, on the request's own task
        if self.flags.load(Ordering::Relaxed) & HANDED_OFF == 0 && !binding::in_request_task() {
            let flags = self.flags.fetch_or(HANDED_OFF, Ordering::Relaxed);
            if flags & HANDED_OFF == 0 {
                binding::hand_off(
                    self.ctx.as_ref(),
                    flags & SIZE_ASKED != 0,
                    flags & NO_STREAM == 0,
                );
            }
        }
        if eos {
            if let Some(ctx) = &self.ctx {
                ctx.set_body_done();
            }
        }
        eos
    }

    fn size_hint(&self) -> SizeHint {
        if self.flags.load(Ordering::Relaxed) & (HANDED_OFF | SIZE_ASKED) == 0 {
            // asked before the request is handed off: hyper's HTTP/2 dispatch task
            self.flags.fetch_or(SIZE_ASKED, Ordering::Relaxed);
        }
        self.inner.size_hint()
    }
}

pin_project! {
    /// The response body that [`Trace`](crate::Trace) returns: the client's body, unchanged.
    ///
    /// For a traced request it reports `ResponseBodyDone` (bytes received, or the error, or
    /// [`Canceled`] when dropped before its end) and then `PutIdleConn` when the connection goes
    /// back to the pool.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        // the traced request, until its body is done with
        ctx: Option<Arc<RequestCtx>>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(ctx) = this.project().ctx.take() {
                // complete if it had ended (an empty body needs no poll), canceled if not
                ctx.response_finished(None);
            }
        }
    }
}

impl<B> ResponseBody<B> {
    /// Wraps a body of a response that is not traced.
    pub fn new(inner: B) -> Self {
        Self::untraced(inner)
    }

    pub(crate) fn untraced(inner: B) -> Self {
        Self { inner, ctx: None }
    }

    pub(crate) fn traced(inner: B, ctx: Arc<RequestCtx>, keep_alive: bool) -> Self
    where
        B: Body,
    {
        ctx.response_body(keep_alive, inner.is_end_stream());
        Self {
            inner,
            ctx: Some(ctx),
        }
    }

    /// The client's body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("traced", &self.ctx.is_some())
            .finish()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Error: fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        let Some(ctx) = this.ctx.as_ref() else {
            return Poll::Ready(frame);
        };
        let finished = match &frame {
            None => {
                ctx.response_ended();
                None
            }
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    ctx.response_bytes(data.remaining() as u64);
                }
                if !f.is_trailers() && !this.inner.is_end_stream() {
                    return Poll::Ready(frame);
                }
                ctx.response_ended();
                None
            }
            Some(Err(e)) => Some(SharedError::new(crate::error::RequestError::new(
                e.to_string(),
                ctx.cause(),
            ))),
        };
        if let Some(ctx) = this.ctx.take() {
            ctx.response_finished(finished);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
