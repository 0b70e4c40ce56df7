use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::{RequestBody, ResponseBody};
use super::future::{Pending, ResponseFuture};
use super::informational::UserInformational;
use super::trace_layer::TraceLayer;
use hyper_util::client::legacy::connect::CaptureConnection;

use crate::binding::{self, RequestCtx, RequestFacts};
use crate::consumer::timings::Timings;
use crate::event::{Event, GetConnInfo};
use crate::trace::ClientTrace;

/// The service of [`TraceLayer`]: traces the requests it passes to `S`.
///
/// ```
/// use httptrace::Trace;
/// use tower::service_fn;
///
/// let svc = Trace::new(service_fn(|req: http::Request<httptrace::RequestBody<String>>| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
/// }));
/// # drop(svc);
/// ```
#[derive(Clone)]
pub struct Trace<S> {
    pub(crate) inner: S,
    pub(crate) layer: TraceLayer,
}

impl<S> Trace<S> {
    /// Traces the requests of `inner`, with the defaults of [`TraceLayer::new`].
    pub fn new(inner: S) -> Self {
        TraceLayer::new().layer_service(inner)
    }

    /// A [`TraceLayer`], for use with `tower::ServiceBuilder`.
    pub fn layer() -> TraceLayer {
        TraceLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl TraceLayer {
    fn layer_service<S>(self, inner: S) -> Trace<S> {
        Trace { inner, layer: self }
    }

    /// The request's trace (see `resolve`), and whether the request records `Timings`, which it
    /// fills itself (with an empty trace if there is no other: the request is traced). `None`:
    /// the request is not traced.
    pub(crate) fn trace_for(&self, own: Option<ClientTrace>) -> (Option<ClientTrace>, bool) {
        let trace = self.resolve(own);
        if !self.record_timings {
            return (trace, false);
        }
        // the request fills its `Timings` itself, after the hooks (binding::request): no hook to call
        (Some(trace.unwrap_or_else(ClientTrace::empty)), true)
    }

    fn resolve(&self, own: Option<ClientTrace>) -> Option<ClientTrace> {
        if self.factory.is_none() && self.default_trace.is_none() {
            // the common case, and the path of a request with no trace at all
            let current = ClientTrace::current();
            return match (own, current) {
                (Some(own), Some(current)) => Some(own.compose(current)),
                (own, current) => own.or(current),
            };
        }
        let mut trace = own;
        for next in [
            ClientTrace::current(),
            self.factory.as_ref().map(|f| f()),
            self.default_trace.clone(),
        ]
        .into_iter()
        .flatten()
        {
            trace = Some(match trace {
                Some(t) => t.compose(next),
                None => next,
            });
        }
        trace
    }
}

impl<S: fmt::Debug> fmt::Debug for Trace<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, B, RB> Service<Request<B>> for Trace<S>
where
    S: Service<Request<RequestBody<B>>, Response = Response<RB>>,
    S::Error: fmt::Display,
    B: http_body::Body,
    RB: http_body::Body,
{
    type Response = Response<ResponseBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // most requests carry no extensions at all: nothing to look up
        let (own, user_1xx) = if req.extensions().is_empty() {
            (None, None)
        } else {
            let own = req.extensions_mut().remove::<ClientTrace>();
            let user_1xx = match req.extensions().is_empty() {
                true => None,
                false => req.extensions_mut().remove::<UserInformational>(),
            };
            (own, user_1xx)
        };
        let (trace, record_timings) = self.layer.trace_for(own);

        let Some(trace) = trace else {
            if let Some(user) = user_1xx {
                hyper::ext::on_informational(&mut req, move |res| {
                    user.call(res.status(), res.version(), res.headers())
                });
            }
            let no_stream = refused_before_stream(&req);
            let req = req.map(|b| RequestBody::untraced(b).opens_no_stream(no_stream));
            let inner = self.inner.call(req);
            return ResponseFuture::new(inner, Pending::untraced());
        };

        let declared: Option<u64> = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        // what the caller left in the extensions (most requests: nothing) must survive the
        // values httptrace puts there
        let caller_extensions = !req.extensions().is_empty();
        let start = crate::util::now();
        let facts = RequestFacts {
            start,
            origin: crate::util::origin_key(req.uri()),
            port: crate::util::default_port(req.uri()),
            capture: match self.layer.http2_streams {
                true => capture_connection(&mut req, caller_extensions),
                false => None,
            },
            recorded: record_timings.then(|| Timings::recorded_from(start)),
            req_close: !crate::util::keeps_alive(req.version(), req.headers()),
            tunnel: req.method() == http::Method::CONNECT,
        };
        let informational = trace.wants_informational() || user_1xx.is_some();
        let ctx = RequestCtx::with_facts(trace, facts);
        // the request lends its URI to the event (no reference counts to touch), and gets it back
        let get_conn = Event::GetConn(GetConnInfo {
            at: ctx.start(),
            method: req.method().clone(),
            uri: std::mem::take(req.uri_mut()),
        });
        ctx.deliver(&get_conn);
        if let Event::GetConn(info) = get_conn {
            *req.uri_mut() = info.uri;
        }
        if informational {
            install_informational(&mut req, &ctx, user_1xx, caller_extensions);
        }
        let no_stream = refused_before_stream(&req);
        let req =
            req.map(|b| RequestBody::traced(b, ctx.clone(), declared).opens_no_stream(no_stream));
        let (inner, traced) = Pending::call(ctx, || self.inner.call(req));
        ResponseFuture::new(inner, traced)
    }
}

/// Whether hyper's HTTP/2 client refuses the request before it opens a stream (so that it uses
/// no stream id): a `CONNECT` with a body, that is whose `Content-Length`, read as hyper reads it
/// (every value, digits only, all equal), or else the body's exact size, is not zero.
fn refused_before_stream<B: http_body::Body>(req: &Request<B>) -> bool {
    if req.method() != http::Method::CONNECT {
        return false;
    }
    let values = req.headers().get_all(http::header::CONTENT_LENGTH);
    if values.iter().next().is_none() {
        return req.body().size_hint().exact().is_some_and(|n| n != 0);
    }
    let mut length = None;
    for value in values {
        let Ok(line) = value.to_str() else {
            return false;
        };
        for v in line.split(',') {
            let v = v.trim();
            let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
            let Some(n) = digits.then(|| v.parse::<u64>().ok()).flatten() else {
                return false;
            };
            if length.is_some_and(|l| l != n) {
                return false;
            }
            length = Some(n);
        }
    }
    length.is_some_and(|n| n != 0)
}

/// Puts one of httptrace's values among the request's extensions with `insert`, unless the
/// caller (`caller`: its extensions aren't empty) put one of that type there already: hyper and
/// hyper-util keep one per request, and the caller's stays. `None` then.
fn insert_unless_callers<B, R>(
    req: &mut Request<B>,
    caller: bool,
    insert: impl FnOnce(&mut Request<B>) -> R,
) -> Option<R> {
    let before = req.extensions().len();
    let saved = caller.then(|| req.extensions().clone());
    let ours = insert(req);
    match saved {
        Some(saved) if req.extensions().len() == before => {
            // ours replaced the caller's: put theirs back
            *req.extensions_mut() = saved;
            None
        }
        _ => Some(ours),
    }
}

/// hyper-util's `CaptureConnection` for the request: which connection it gets, and on HTTP/2
/// where its stream opens (binding, invariant 6). A capture the caller put there stays, and
/// this request's HTTP/2 stream is then not found (it is still counted: the others' are).
fn capture_connection<B>(req: &mut Request<B>, caller: bool) -> Option<CaptureConnection> {
    insert_unless_callers(
        req,
        caller,
        hyper_util::client::legacy::connect::capture_connection,
    )
}

/// Puts httptrace's 1xx callback in hyper's slot, unless the caller put one there already:
/// hyper keeps one callback per request and it can't be read back, so a callback set with
/// `hyper::ext::on_informational` stays, and this request reports no 1xx events. A callback set
/// with [`crate::on_informational`] is called after the hooks.
fn install_informational<B>(
    req: &mut Request<B>,
    ctx: &Arc<RequestCtx>,
    user: Option<UserInformational>,
    caller: bool,
) {
    let weak = Arc::downgrade(ctx);
    insert_unless_callers(req, caller, |req| {
        hyper::ext::on_informational(req, move |res| {
            binding::informational(&weak, res.status(), res.headers());
            if let Some(user) = &user {
                user.call(res.status(), res.version(), res.headers());
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::refused_before_stream;

    #[test]
    fn connect_with_a_body_opens_no_stream_as_hyper_reads_it() {
        let req = |method: &str, lengths: &[&str], body: &'static str| {
            let mut b = http::Request::builder()
                .method(method)
                .uri("http://a.test/");
            for l in lengths {
                b = b.header("content-length", *l);
            }
            b.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap()
        };
        assert!(refused_before_stream(&req("CONNECT", &["5"], "")));
        assert!(refused_before_stream(&req("CONNECT", &[], "hello")));
        assert!(refused_before_stream(&req("CONNECT", &["5", "5, 5"], "")));
        // hyper reads these as no length at all: it opens the stream
        assert!(!refused_before_stream(&req("CONNECT", &["+5"], "hello")));
        assert!(!refused_before_stream(&req("CONNECT", &["5", "6"], "")));
        assert!(!refused_before_stream(&req("CONNECT", &["0"], "hello")));
        assert!(!refused_before_stream(&req("CONNECT", &[], "")));
        assert!(!refused_before_stream(&req("POST", &["5"], "hello")));
    }
}
