use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use crate::binding::{self, RequestCtx};
use crate::error::{Canceled, RequestError, SharedError};
use crate::event::{Event, RequestCanceledInfo, RequestFailedInfo, ResponseHeadersInfo};

pin_project! {
    /// The response future of [`Trace`](crate::Trace) over an `http` client (hyper-util's
    /// `Client`, any `Service<http::Request<_>>`).
    ///
    /// Dropped before it completes, it reports `RequestCanceled` (after the connect or lookup it
    /// was running, if any, reported its own cancellation).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        // declared first: dropped before `traced`, so a connect canceled with this future
        // reports before the request does; dropped as soon as it fails, for the same reason
        #[pin]
        inner: Option<F>,
        traced: Pending,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, traced: Pending) -> Self {
        Self {
            inner: Some(inner),
            traced,
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("traced", &self.traced.is_traced())
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    E: fmt::Display,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !this.traced.is_traced() {
            // the response goes straight through
            return match this.inner.as_pin_mut() {
                Some(inner) => inner.poll(cx).map_ok(|res| res.map(ResponseBody::untraced)),
                None => Poll::Pending,
            };
        }
        let (mut res, ctx) = match ready!(this.traced.poll(this.inner, cx)) {
            Ok(answered) => answered,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let Some(ctx) = ctx else {
            return Poll::Ready(Ok(res.map(ResponseBody::untraced)));
        };
        let keep_alive = response_head(&ctx, res.status(), res.version(), res.headers());
        ctx.insert_recorded(res.extensions_mut());
        Poll::Ready(Ok(res.map(|b| ResponseBody::traced(b, ctx, keep_alive))))
    }
}

/// A response, and its request if it is traced.
pub(crate) type Answered<R> = (R, Option<Arc<RequestCtx>>);

/// A traced request whose response head hasn't come: dropped so, it is canceled. The part of
/// every response future of the layer that doesn't depend on the client.
pub(crate) struct Pending(Option<Arc<RequestCtx>>, Entered);

/// The `tracing` span a hook asked the request's future to run in (feature `tracing`).
#[derive(Default)]
struct Entered(#[cfg(feature = "tracing")] Option<tracing::Span>);

impl Pending {
    /// An untraced request: nothing to do.
    pub(crate) fn untraced() -> Self {
        Self(None, Entered::default())
    }

    /// Calls the client (`call`) with `ctx` as the request whose task is calling it (the
    /// connector reads it there), and keeps the request for the future `call` returns; both in
    /// the span a hook asked for, if any.
    pub(crate) fn call<F>(ctx: Arc<RequestCtx>, call: impl FnOnce() -> F) -> (F, Self) {
        #[cfg(feature = "tracing")]
        let span = ctx.span();
        #[cfg(feature = "tracing")]
        let _entered = span.as_ref().map(tracing::Span::enter);
        let mut ctx = Some(ctx);
        let inner = binding::with_request(&mut ctx, call);
        #[cfg(feature = "tracing")]
        return (inner, Self(ctx, Entered(span.clone())));
        #[cfg(not(feature = "tracing"))]
        (inner, Self(ctx, Entered::default()))
    }

    pub(crate) fn is_traced(&self) -> bool {
        self.0.is_some()
    }

    /// Polls the client's future with the request current. Once it is ready: a response comes
    /// with its request (`None` if untraced), whose response head is for the caller to report;
    /// an error is reported here (`RequestFailed`, with the cause seen on the wire), after the
    /// client's future is dropped (what it was still doing, a connect cut off by a timeout,
    /// ends first).
    pub(crate) fn poll<F, R, E>(
        &mut self,
        mut inner: Pin<&mut Option<F>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Answered<R>, E>>
    where
        F: Future<Output = Result<R, E>>,
        E: fmt::Display,
    {
        let Some(future) = inner.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        if self.0.is_none() {
            return future.poll(cx).map_ok(|res| (res, None));
        }
        #[cfg(feature = "tracing")]
        let _entered = self.1 .0.as_ref().map(tracing::Span::enter);
        let result = ready!(binding::with_request(&mut self.0, || future.poll(cx)));
        if result.is_err() {
            inner.set(None);
        }
        // answered: no longer canceled when dropped
        let ctx = self.0.take();
        Poll::Ready(match (result, ctx) {
            (Ok(res), ctx) => Ok((res, ctx)),
            (Err(err), Some(ctx)) => {
                let error = RequestError::new(err.to_string(), ctx.cause());
                ctx.finish(|at| {
                    Event::RequestFailed(RequestFailedInfo {
                        at,
                        error: SharedError::new(error),
                    })
                });
                Err(err)
            }
            (Err(err), None) => Err(err),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(ctx) = self.0.take() {
            ctx.finish(|at| {
                Event::RequestCanceled(RequestCanceledInfo {
                    at,
                    error: SharedError::new(Canceled::new("request")),
                })
            });
        }
    }
}

/// The response head reached the caller: `ResponseHeaders`, stamped at the read that brought
/// it as far as reads are followed (its connection may be back in the pool already, and serving
/// another request, when the head reaches the caller); whether its connection may go back
/// to the pool after its body: not when the response hands it over (`101 Switching Protocols`,
/// or a `CONNECT` answered with success: a tunnel), nor when either side asked to close it.
pub(crate) fn response_head(
    ctx: &RequestCtx,
    status: http::StatusCode,
    version: http::Version,
    headers: &http::HeaderMap,
) -> bool {
    ctx.emit_parsed(|at| {
        Event::ResponseHeaders(ResponseHeadersInfo {
            at,
            status,
            version,
        })
    });
    let handed_over =
        status == http::StatusCode::SWITCHING_PROTOCOLS || (ctx.tunnel() && status.is_success());
    !handed_over && !ctx.req_close() && crate::util::keeps_alive(version, headers)
}
