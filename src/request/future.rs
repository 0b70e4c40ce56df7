use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use crate::binding::{self, RequestCtx};
use crate::error::{Canceled, RequestError, SharedError};
use crate::event::{Event, RequestCanceledInfo, RequestFailedInfo, ResponseHeadersInfo};

pin_project! {
    /// The response future of [`Trace`](crate::Trace).
    ///
    /// Dropped before it completes, it reports `RequestCanceled` (after the connect or lookup it
    /// was running, if any, reported its own cancellation).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        // declared first: dropped before `traced`, so a connect canceled with this future
        // reports before the request does
        #[pin]
        inner: F,
        traced: Pending,
    }
}

/// A traced request whose response head hasn't come: dropped so, it is canceled.
struct Pending(Option<Arc<RequestCtx>>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(ctx) = self.0.take() {
            ctx.finish(Event::RequestCanceled(RequestCanceledInfo {
                at: Instant::now(),
                error: SharedError::new(Canceled::new("request")),
            }));
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn untraced(inner: F) -> Self {
        Self {
            inner,
            traced: Pending(None),
        }
    }

    /// Calls the client (`call`) with `ctx` as the request whose task is calling it (the
    /// connector reads it there), and traces the future it returns. The layer's `Timings` and
    /// whether the request asked to close its connection are in `ctx`.
    pub(crate) fn call_traced(ctx: Arc<RequestCtx>, call: impl FnOnce() -> F) -> Self {
        let mut ctx = Some(ctx);
        let inner = binding::with_request(&mut ctx, call);
        Self {
            inner,
            traced: Pending(ctx),
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("traced", &self.traced.0.is_some())
            .finish()
    }
}

/// A traced request, as [`TraceResponse`] implementations see it.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct RequestHandle(pub(crate) Arc<RequestCtx>);

/// A response the [`Trace`](crate::Trace) service can trace: hyper's and tower's
/// `http::Response<B>`, and `reqwest::Response` with the `reqwest` feature.
pub trait TraceResponse: Sized {
    /// The response handed back to the caller.
    type Traced;

    #[doc(hidden)]
    fn untraced(self) -> Self::Traced;

    #[doc(hidden)]
    fn head(&self) -> (http::StatusCode, http::Version, &http::HeaderMap);

    #[doc(hidden)]
    fn extensions_mut(&mut self) -> &mut http::Extensions;

    /// Emits what the response reveals before its head is reported (e.g. a derived `GotConn`).
    #[doc(hidden)]
    fn before_head(&self, _req: &RequestHandle) {}

    #[doc(hidden)]
    fn traced(self, req: RequestHandle, keep_alive: bool) -> Self::Traced;
}

impl<B: http_body::Body> TraceResponse for Response<B> {
    type Traced = Response<ResponseBody<B>>;

    fn untraced(self) -> Self::Traced {
        self.map(ResponseBody::untraced)
    }

    fn head(&self) -> (http::StatusCode, http::Version, &http::HeaderMap) {
        (self.status(), self.version(), self.headers())
    }

    fn extensions_mut(&mut self) -> &mut http::Extensions {
        Response::extensions_mut(self)
    }

    fn traced(self, req: RequestHandle, keep_alive: bool) -> Self::Traced {
        self.map(|b| ResponseBody::traced(b, req.0, keep_alive))
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<R, E>>,
    R: TraceResponse,
    E: fmt::Display,
{
    type Output = Result<R::Traced, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.traced.0.is_none() {
            return this.inner.poll(cx).map(|r| r.map(TraceResponse::untraced));
        }
        let inner = this.inner;
        let result = ready!(binding::with_request(&mut this.traced.0, || inner.poll(cx)));
        // answered: no longer canceled when dropped
        let Some(ctx) = this.traced.0.take() else {
            return Poll::Ready(result.map(TraceResponse::untraced));
        };
        Poll::Ready(match result {
            Ok(mut res) => {
                let req = RequestHandle(ctx);
                res.before_head(&req);
                let (status, version, headers) = res.head();
                req.0.emit(Event::ResponseHeaders(ResponseHeadersInfo {
                    at: Instant::now(),
                    status,
                    version,
                }));
                let keep_alive = !req.0.req_close() && super::keeps_alive(version, headers);
                if let Some(timings) = req.0.timings() {
                    res.extensions_mut().insert(timings.clone());
                }
                Ok(res.traced(req, keep_alive))
            }
            Err(err) => {
                let error = RequestError::new(err.to_string(), ctx.cause());
                ctx.finish(Event::RequestFailed(RequestFailedInfo {
                    at: Instant::now(),
                    error: SharedError::new(error),
                }));
                Err(err)
            }
        })
    }
}
