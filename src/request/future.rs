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
use crate::consumer::timings::Timings;
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
        traced: Option<Traced>,
    }
}

struct Traced {
    ctx: Arc<RequestCtx>,
    timings: Option<Timings>,
    req_close: bool,
    done: bool,
}

impl Drop for Traced {
    fn drop(&mut self) {
        if !self.done {
            self.ctx.finish(Event::RequestCanceled(RequestCanceledInfo {
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
            traced: None,
        }
    }

    pub(crate) fn traced(
        inner: F,
        ctx: Arc<RequestCtx>,
        timings: Option<Timings>,
        req_close: bool,
    ) -> Self {
        Self {
            inner,
            traced: Some(Traced {
                ctx,
                timings,
                req_close,
                done: false,
            }),
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("traced", &self.traced.is_some())
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
        let Some(t) = this.traced.as_mut() else {
            return this
                .inner
                .poll(cx)
                .map(|r| r.map(|res| res.map(ResponseBody::untraced)));
        };
        let inner = this.inner;
        let result = ready!(binding::with_request(&t.ctx, || inner.poll(cx)));
        t.done = true;
        Poll::Ready(match result {
            Ok(mut res) => {
                t.ctx.emit(Event::ResponseHeaders(ResponseHeadersInfo {
                    at: Instant::now(),
                    status: res.status(),
                    version: res.version(),
                }));
                if let Some(timings) = t.timings.take() {
                    res.extensions_mut().insert(timings);
                }
                let keep_alive = !t.req_close && super::keeps_alive(res.version(), res.headers());
                let ctx = t.ctx.clone();
                Ok(res.map(|b| ResponseBody::traced(b, ctx, keep_alive)))
            }
            Err(err) => {
                let error = RequestError::new(err.to_string(), t.ctx.cause());
                t.ctx.finish(Event::RequestFailed(RequestFailedInfo {
                    at: Instant::now(),
                    error: SharedError::new(error),
                }));
                Err(err)
            }
        })
    }
}
