//! The request's state and delivery, event by event.

use super::*;
use crate::Recorder;

fn failed(at: Instant) -> Event {
    Event::RequestFailed(RequestFailedInfo {
        at,
        error: SharedError::new("failed"),
    })
}

/// `ctx` got connection #3, a new one, at `at`.
fn got_fresh_conn(ctx: &RequestCtx, at: Instant) {
    ctx.deliver(&Event::GotConn(GotConnInfo {
        at,
        reused: false,
        was_idle: false,
        idle_time: std::time::Duration::ZERO,
        conn_id: 3,
        local_addr: None,
        remote_addr: None,
        http2: None,
        derived: None,
    }));
}

#[test]
fn one_terminal_event_and_nothing_in_progress_after_it() {
    let rec = Recorder::new();
    let ctx = RequestCtx::new(rec.trace());
    let now = crate::util::now();
    ctx.finish(|_| failed(now));
    ctx.finish(|_| failed(now));
    ctx.emit_in_progress(Event::WroteHeaders(WroteHeadersInfo { at: now }));
    ctx.response_finished(None);
    assert_eq!(rec.names(), ["RequestFailed"]);
}

#[test]
fn put_idle_conn_comes_before_the_body_done_stamped_at_the_last_read() {
    let rec = Recorder::new();
    let ctx = RequestCtx::new(rec.trace());
    let t0 = crate::util::now();
    got_fresh_conn(&ctx, t0);
    ctx.wrote(t0, true, true);
    ctx.read(t0, true);
    ctx.response_body(true, false);
    ctx.response_bytes(5);
    ctx.response_ended();
    ctx.response_finished(None);
    assert_eq!(
        rec.names(),
        [
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "PutIdleConn",
            "ResponseBodyDone"
        ]
    );
    let events = rec.events();
    assert_eq!(events[4].at(), t0);
    match &events[5] {
        Event::ResponseBodyDone(d) => assert!(d.bytes == 5 && d.error.is_none()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_upload_still_going_when_the_response_ends_comes_after_it() {
    let rec = Recorder::new();
    let ctx = RequestCtx::new(rec.trace());
    let t0 = crate::util::now();
    got_fresh_conn(&ctx, t0);
    ctx.read(t0, true);
    ctx.response_body(true, false);
    ctx.response_ended();
    ctx.response_finished(None);
    // the request keeps itself while its upload goes on
    assert_eq!(Arc::strong_count(&ctx), 2);
    let later = crate::util::now();
    ctx.wrote(later, false, true);
    assert_eq!(
        rec.names(),
        [
            "GotConn",
            "GotFirstResponseByte",
            "ResponseBodyDone",
            "WroteRequest",
            "PutIdleConn"
        ]
    );
    assert_eq!(rec.events()[4].at(), later);
    assert_eq!(Arc::strong_count(&ctx), 1);
    // nothing more after that
    ctx.wrote(crate::util::now(), true, true);
    assert_eq!(rec.names().len(), 5);
}

#[test]
fn a_body_dropped_before_its_end_is_canceled_and_pools_nothing() {
    let rec = Recorder::new();
    let ctx = RequestCtx::new(rec.trace());
    ctx.response_body(true, false);
    ctx.response_finished(None);
    let events = rec.events();
    assert_eq!(rec.names(), ["ResponseBodyDone"]);
    assert!(events[0]
        .error()
        .unwrap()
        .downcast_ref::<Canceled>()
        .is_some());
}

#[test]
fn a_cancellation_is_the_cause_only_when_nothing_else_failed() {
    let ctx = RequestCtx::new(ClientTrace::empty());
    let at = crate::util::now();
    let dns = |error: SharedError| {
        Event::DnsDone(DnsDoneInfo {
            at,
            addrs: Vec::new(),
            error: Some(error),
        })
    };
    ctx.deliver(&dns(SharedError::new(Canceled::new("DNS lookup"))));
    assert!(ctx.cause().is_some());
    ctx.deliver(&dns(SharedError::new("refused")));
    ctx.deliver(&dns(SharedError::new(Canceled::new("DNS lookup"))));
    assert_eq!(ctx.cause().unwrap().to_string(), "refused");
}

#[test]
fn hooks_are_told_the_request() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    struct Ids(Arc<Mutex<Vec<RequestId>>>);
    impl Hooks for Ids {
        fn on_request_event(&self, request: RequestId, _event: &Event) {
            self.0.lock().unwrap().push(request);
        }
    }
    let trace = ClientTrace::new(Ids(seen.clone()));
    let (a, b) = (RequestCtx::new(trace.clone()), RequestCtx::new(trace));
    let at = crate::util::now();
    a.emit(Event::WroteHeaders(WroteHeadersInfo { at }));
    b.emit(Event::WroteHeaders(WroteHeadersInfo { at }));
    assert_ne!(a.id(), b.id());
    assert_eq!(*seen.lock().unwrap(), [a.id(), b.id()]);
}
