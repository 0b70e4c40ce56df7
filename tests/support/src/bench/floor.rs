//! The floor under any tracer of these stacks that binds a request to its connection (and, on
//! HTTP/2, its stream) and reports 1xx responses: the bare client, plus what hyper-util and
//! hyper ask for that (hyper-util's `CaptureConnection`, read once; hyper's 1xx callback), one
//! shared state per request and the five instants of a keep-alive exchange (start, request
//! written, first byte, head, body end). No event is delivered, nothing is wrapped: what no
//! design can avoid.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use tower::Service;

use crate::loopback::{call, read_hello};

/// One GET on `client`, its body read to the end, paying the floor; `informational`: with
/// hyper's 1xx callback (a tracer that only times the phases needs none).
pub async fn get<S, B>(client: &mut S, mut req: Request<Empty<Bytes>>, informational: bool)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let state = Arc::new(Mutex::new([None::<Instant>; 5]));
    let mark = |i: usize| state.lock().expect("lock")[i] = Some(Instant::now());
    mark(0);
    let capture = hyper_util::client::legacy::connect::capture_connection(&mut req);
    if informational {
        let weak = Arc::downgrade(&state);
        hyper::ext::on_informational(&mut req, move |_| drop(weak.upgrade()));
    }
    let res = call(client, req).await;
    assert!(
        capture.connection_metadata().is_some(),
        "no connection captured"
    );
    mark(1);
    mark(2);
    mark(3);
    read_hello(res.into_body()).await;
    mark(4);
}
