//! The recipe for unit-testing a middleware with httptrace, written as a user's test: a retry
//! policy keyed on the time to the first response byte, over the real hyper-util client on
//! in-memory connections (`test_util`), under a paused clock. The server "takes" 100 ms then
//! 10 ms; the test takes no real time, and every instant is exact.
#![cfg(feature = "test-util")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httptrace::test_util::{MemoryConnector, Plan};
use httptrace::{ClientTrace, Event, Recorder, RequestBody, Timings, TraceLayer};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

// ---------------------------------------------------------------------------------------------
// The middleware under test: if the first response byte hasn't come `limit` after an attempt
// started, give the attempt up and try once more. It learns of the first byte from httptrace's
// `GotFirstResponseByte`, through a trace of its own composed with the caller's.

#[derive(Clone)]
struct RetrySlowFirstByteLayer {
    limit: Duration,
    /// Called with each attempt's number (from 1): the trace that attempt carries too.
    on_attempt: Arc<dyn Fn(u32) -> ClientTrace + Send + Sync>,
}

impl<S> Layer<S> for RetrySlowFirstByteLayer {
    type Service = RetrySlowFirstByte<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RetrySlowFirstByte {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
struct RetrySlowFirstByte<S> {
    inner: S,
    layer: RetrySlowFirstByteLayer,
}

type Req = http::Request<Empty<Bytes>>;

impl<S, B> Service<Req> for RetrySlowFirstByte<S>
where
    S: Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        let layer = self.layer.clone();
        let (parts, _) = req.into_parts();
        Box::pin(async move {
            for attempt in 1u32.. {
                let first_byte = Arc::new(AtomicBool::new(false));
                let seen = first_byte.clone();
                let watch = ClientTrace::from_fn(move |e: &Event| {
                    if let Event::GotFirstResponseByte(_) = e {
                        seen.store(true, Ordering::SeqCst);
                    }
                });
                let mut req = http::Request::from_parts(parts.clone(), Empty::new());
                req.extensions_mut()
                    .insert((layer.on_attempt)(attempt).compose(watch));
                let mut svc = inner.clone();
                let call = svc.ready().await?.call(req);
                tokio::pin!(call);
                if attempt == 2 {
                    return call.await;
                }
                tokio::select! {
                    res = &mut call => return res,
                    () = tokio::time::sleep(layer.limit) => {}
                }
                if first_byte.load(Ordering::SeqCst) {
                    return call.await;
                }
                // too slow: dropping the call cancels the attempt
            }
            unreachable!("the second attempt returns")
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The test.

#[tokio::test(start_paused = true)]
async fn a_slow_first_byte_is_retried_once() {
    let ms = Duration::from_millis;
    // the server: the first request takes 100 ms, the next ones 10 ms
    let served = Arc::new(AtomicU32::new(0));
    let server = hyper::service::service_fn(move |_req| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(if n == 0 { ms(100) } else { ms(10) }).await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    // every connection takes 5 ms to connect and 8 ms to shake hands
    let connector =
        MemoryConnector::new(server).plan(move |_n| Plan::new().connect(ms(5)).tls(ms(8)));
    let client = Client::builder(TokioExecutor::new())
        .build::<_, RequestBody<Empty<Bytes>>>(connector.clone().traced());

    let attempts: Arc<Mutex<Vec<Recorder>>> = Arc::default();
    let record = attempts.clone();
    let svc = ServiceBuilder::new()
        .layer(RetrySlowFirstByteLayer {
            limit: ms(50),
            on_attempt: Arc::new(move |_| {
                let rec = Recorder::new();
                record.lock().unwrap().push(rec.clone());
                rec.trace()
            }),
        })
        .layer(TraceLayer::new().record_timings(true))
        .service(client);

    let started = tokio::time::Instant::now().into_std();
    let real = std::time::Instant::now();
    let req = http::Request::get("https://api.test/")
        .body(Empty::new())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let timings = res.extensions().get::<Timings>().cloned().unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");

    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    let at = |events: &[Event]| -> Vec<(&'static str, Duration)> {
        events
            .iter()
            .map(|e| (e.name(), e.at() - started))
            .collect()
    };
    // the first attempt: connected and written at 13 ms, no first byte by 50 ms: canceled
    assert_eq!(
        at(&attempts[0].events()),
        [
            ("GetConn", ms(0)),
            ("ConnectStart", ms(0)),
            ("ConnectDone", ms(5)),
            ("TLSHandshakeStart", ms(5)),
            ("TLSHandshakeDone", ms(13)),
            ("GotConn", ms(13)),
            ("WroteHeaders", ms(13)),
            ("WroteRequest", ms(13)),
            ("RequestCanceled", ms(50)),
        ]
    );
    // the second: its own connection (the first is still busy), answered in 10 ms
    assert_eq!(
        at(&attempts[1].events()),
        [
            ("GetConn", ms(50)),
            ("ConnectStart", ms(50)),
            ("ConnectDone", ms(55)),
            ("TLSHandshakeStart", ms(55)),
            ("TLSHandshakeDone", ms(63)),
            ("GotConn", ms(63)),
            ("WroteHeaders", ms(63)),
            ("WroteRequest", ms(63)),
            ("GotFirstResponseByte", ms(73)),
            ("ResponseHeaders", ms(73)),
            ("PutIdleConn", ms(73)),
            ("ResponseBodyDone", ms(73)),
        ]
    );
    // the response's Timings are the second attempt's, exact to the nanosecond
    assert_eq!(timings.connect(), Some(ms(5)));
    assert_eq!(timings.tls(), Some(ms(8)));
    assert_eq!(timings.server_processing(), Some(ms(10)));
    assert_eq!(timings.total(), Some(ms(23)));
    assert_eq!(connector.connections(), 2);
    // 73 ms of the test's clock in far less of the wall's
    assert!(
        real.elapsed() < Duration::from_millis(500),
        "{:?}",
        real.elapsed()
    );
}
