//! The layer's service as a `Service<reqwest::Request>`, and its response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpInfo;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::connector::registered;
use crate::binding::{RequestCtx, RequestFacts};
use crate::consumer::timings::Timings;
use crate::event::{Derived, Event, GetConnInfo, GotConnInfo, Http2Stream};
use crate::layer::{response_head, Pending, ResponseBody, Trace};
use crate::util::ConnAddrs;

impl<S> Service<reqwest::Request> for Trace<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response>,
    S::Error: fmt::Display,
{
    type Response = reqwest::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: reqwest::Request) -> Self::Future {
        let (trace, record_timings) = self.layer.trace_for(None);
        let Some(trace) = trace else {
            let inner = Some(self.inner.call(req));
            return ResponseFuture {
                inner,
                traced: Pending::untraced(),
            };
        };
        let start = crate::util::now();
        let uri = req.url().as_str().parse::<http::Uri>().unwrap_or_default();
        let ctx = RequestCtx::with_facts(
            trace,
            RequestFacts {
                start,
                recorded: record_timings.then(|| Timings::recorded_from(start)),
                req_close: !crate::util::keeps_alive(req.version(), req.headers()),
                tunnel: req.method() == http::Method::CONNECT,
                origin: crate::util::origin_key(&uri),
                port: crate::util::default_port(&uri),
                ..RequestFacts::starting_now()
            },
        );
        ctx.emit(Event::GetConn(GetConnInfo {
            at: ctx.start(),
            method: req.method().clone(),
            uri,
        }));
        let (inner, traced) = Pending::call(ctx, || self.inner.call(req));
        ResponseFuture {
            inner: Some(inner),
            traced,
        }
    }
}

pin_project! {
    /// The response future of [`Trace`](crate::Trace) over a `reqwest::Client`.
    ///
    /// Dropped before it completes, it reports `RequestCanceled`.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        // dropped as soon as it fails: a connect it was running ends before the request
        #[pin]
        inner: Option<F>,
        traced: Pending,
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

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<reqwest::Response, E>>,
    E: fmt::Display,
{
    type Output = Result<reqwest::Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !this.traced.is_traced() {
            return match this.inner.as_pin_mut() {
                Some(inner) => inner.poll(cx),
                None => Poll::Pending,
            };
        }
        let (mut res, ctx) = match ready!(this.traced.poll(this.inner, cx)) {
            Ok(answered) => answered,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let Some(ctx) = ctx else {
            return Poll::Ready(Ok(res));
        };
        got_conn(&ctx, &res);
        let keep_alive = response_head(&ctx, res.status(), res.version(), res.headers());
        ctx.insert_recorded(res.extensions_mut());
        Poll::Ready(Ok(traced(res, ctx, keep_alive)))
    }
}

/// The derived `GotConn`: which connection carried the response, and whether this request's
/// own connect made it.
fn got_conn(ctx: &RequestCtx, res: &reqwest::Response) {
    let addrs = ConnAddrs::from_info(res.extensions().get::<HttpInfo>());
    let own = ctx
        .dialled()
        .filter(|own| own.local.is_some() && own.local == addrs.local);
    let (reused, conn_id) = match own {
        Some(own) => (false, own.conn_id),
        None => {
            let id = addrs
                .local
                .and_then(|local| registered((local, addrs.remote)))
                .unwrap_or(0);
            (true, id)
        }
    };
    let http2 = (res.version() == http::Version::HTTP_2).then_some(Http2Stream {
        stream_id: None,
        streams_in_flight: 0,
        waited_for_connect: false,
    });
    let derived = match http2 {
        Some(_) => Derived::ReqwestHttp2,
        None => Derived::Reqwest,
    };
    // taken while the request waited, after its last event so far at the earliest
    ctx.got_conn_derived(|at| GotConnInfo {
        at,
        reused,
        was_idle: reused,
        idle_time: Duration::ZERO,
        conn_id,
        local_addr: addrs.local,
        remote_addr: addrs.remote,
        http2,
        derived: Some(derived),
    });
}

/// The response with its body traced.
fn traced(
    res: reqwest::Response,
    ctx: std::sync::Arc<RequestCtx>,
    keep_alive: bool,
) -> reqwest::Response {
    let url = res.url().clone();
    let res: http::Response<reqwest::Body> = res.into();
    let (mut parts, body) = res.into_parts();
    // reqwest keeps the final URL in an extension only its response builder sets
    use reqwest::ResponseBuilderExt as _;
    if let Ok(with_url) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(with_url.into_parts().0.extensions);
    }
    let body = reqwest::Body::wrap(ResponseBody::traced(body, ctx, keep_alive));
    reqwest::Response::from(http::Response::from_parts(parts, body))
}
