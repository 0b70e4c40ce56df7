//! [`Timeline`]: the events of many requests of one client, kept in a bounded log, drawn as a
//! Chrome / Perfetto trace ([`chrome`]) and as a self-contained HTML page ([`html`]).

mod chrome;
mod html;
mod view;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::event::{Event, Hooks, RequestId};
use crate::trace::ClientTrace;

/// The events of many requests of one client, kept for a picture of where their time went:
/// which connection served each, which waited for one, which dialled, how HTTP/2 streams
/// shared a socket. [`chrome_json`](Timeline::chrome_json) writes the Trace Event Format that
/// `ui.perfetto.dev` and `chrome://tracing` open (a track per connection, the requests it
/// served with their phases, the time each request spent before it had a connection, a flow
/// from each dial to the request that used it); [`html`](Timeline::html) writes one
/// self-contained page (a row per request on a shared time axis, and a summary).
///
/// Attach [`trace`](Timeline::trace) to every request of the client, as the layer's
/// [`default_trace`](crate::TraceLayer::default_trace). It keeps the last `capacity` requests
/// (older ones are dropped, and counted): its memory is bounded, and each event costs a lock
/// and a clone, cheap enough to leave on in a load test.
///
/// ```
/// use httptrace::{Timeline, TraceLayer};
///
/// let timeline = Timeline::new(1000);
/// let layer = TraceLayer::new().default_trace(timeline.trace());
/// // ... send requests through the layer, then:
/// let json = timeline.chrome_json(); // open in ui.perfetto.dev
/// let page = timeline.html();        // open in a browser
/// assert!(json.starts_with('{') && page.starts_with("<!DOCTYPE html>"));
/// # drop(layer);
/// ```
#[derive(Debug, Clone)]
pub struct Timeline {
    log: Arc<Log>,
}

#[derive(Debug)]
struct Log {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The requests kept, oldest first; `first` is the number of the oldest.
    requests: VecDeque<(RequestId, Vec<Event>)>,
    first: u64,
    /// Each kept request's number.
    index: HashMap<RequestId, u64>,
    dropped: u64,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hooks for Log {
    fn on_request_event(&self, request: RequestId, event: &Event) {
        let mut st = self.lock();
        if let Some(&n) = st.index.get(&request) {
            let at = (n - st.first) as usize;
            if let Some((_, events)) = st.requests.get_mut(at) {
                events.push(event.clone());
            }
            return;
        }
        // a request starts with GetConn; a late event of a dropped one is dropped too
        if !matches!(event, Event::GetConn(_)) || self.capacity == 0 {
            return;
        }
        if st.requests.len() == self.capacity {
            if let Some((old, _)) = st.requests.pop_front() {
                st.index.remove(&old);
            }
            st.first += 1;
            st.dropped += 1;
        }
        let n = st.first + st.requests.len() as u64;
        st.index.insert(request, n);
        st.requests.push_back((request, vec![event.clone()]));
    }
}

impl Timeline {
    /// A timeline that keeps the last `capacity` requests.
    pub fn new(capacity: usize) -> Self {
        Self {
            log: Arc::new(Log {
                capacity,
                state: Mutex::default(),
            }),
        }
    }

    /// The trace to attach to every request drawn (one for all: it tells them apart by their
    /// [`RequestId`]).
    pub fn trace(&self) -> ClientTrace {
        ClientTrace::shared(self.log.clone(), false)
    }

    /// The requests kept.
    ///
    /// ```
    /// assert_eq!(httptrace::Timeline::new(10).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.log.lock().requests.len()
    }

    /// No request kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The requests dropped to keep the capacity.
    pub fn dropped(&self) -> u64 {
        self.log.lock().dropped
    }

    /// The events of the requests kept, request by request, oldest first.
    pub fn requests(&self) -> Vec<(RequestId, Vec<Event>)> {
        self.log.lock().requests.iter().cloned().collect()
    }

    /// The Chrome / Perfetto trace (Trace Event Format, JSON): open it in `ui.perfetto.dev`
    /// or `chrome://tracing`. A process per connection, named by its id, addresses and
    /// protocol, whose threads hold the requests it served (one lane on HTTP/1, as many as
    /// streams overlap on HTTP/2) as slices with their phases nested (`write`, `server`,
    /// `body`), and `GotConn`, `GoAway`, `StreamReset` as instants; a process of requests
    /// waiting for a connection, a thread each, with their own dial's `dns`, `connect` (per
    /// address) and `tls`; a flow from each dial to the request that first used its
    /// connection. Times in microseconds from the first request's start.
    pub fn chrome_json(&self) -> String {
        chrome::write(&view::views(&self.requests()), self.dropped())
    }

    /// A self-contained HTML page (inline SVG and CSS, nothing fetched): a row per request in
    /// start order with its phases as coloured bars on a shared time axis, its connection
    /// (fresh, reused, HTTP/2 stream) beside it, the exact figures in each bar's title, a
    /// legend, and a summary (requests, connections dialled, reuse ratio, p50/p90/p99 per
    /// phase).
    pub fn html(&self) -> String {
        html::write(&view::views(&self.requests()), self.dropped())
    }
}
