//! The dial of one connection (invariants 3 and 5): the lookup, the connect or its per-address
//! attempts, and the TLS handshake, reported to the request whose task called the connector,
//! each Start closed by exactly one Done whichever layer of the connector stack sees the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::request::{Detach, RequestCtx};
use crate::error::{Canceled, SharedError};
use crate::event::*;
use crate::util::ConnAddrs;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A new connection id, unique in the process.
pub(crate) fn next_conn_id() -> u64 {
    NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)
}

/// One traced connector call: the dial of one connection, shared by the layers of a connector
/// stack (the outer [`TracingConnector`](crate::TracingConnector), a transport under TLS, a
/// per-address dialer, the resolver).
#[derive(Debug)]
pub(crate) struct DialCtx {
    req: ReqLink,
    /// The request that dials.
    request_id: RequestId,
    /// The id the connection will have, if this dial makes one.
    pub(crate) conn_id: u64,
    call_at: Instant,
    /// The port dialled, when the connector's request tells it.
    port: Option<u16>,
    state: Mutex<DialState>,
}

/// The request a dial reports to, until that request ends: a dial that goes on in the
/// background then holds nothing of it (its trace is released).
#[derive(Debug)]
struct ReqLink(Mutex<Option<Arc<RequestCtx>>>);

impl ReqLink {
    fn get(&self) -> Option<Arc<RequestCtx>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `decide` under the request's lock and delivers the events it returns, if the
    /// request is still in progress: what the dial marks done and the report of it are one step
    /// for the request's end, which reports ended what the dial still has open (`detach`).
    /// Without a request, `decide` still runs (the dial's state stays whole).
    fn emit_decided(&self, decide: impl FnOnce() -> Vec<Event>) {
        match self.get() {
            Some(req) => req.emit_decided(decide),
            None => drop(decide()),
        }
    }

    fn release(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[derive(Debug, Default)]
struct DialState {
    /// The port dialled, learnt from a lookup of the request's own host when the connector's
    /// request didn't tell it (reqwest's).
    port: Option<u16>,
    connect_started: bool,
    connect_done: bool,
    dns_open: bool,
    dns_failed: bool,
    /// The addresses of the per-address attempts started and not yet done.
    open_attempts: Vec<SocketAddr>,
    /// The request ended: what was open was reported ended then, and nothing more is.
    detached: bool,
    /// A per-address dialer reports each attempt: no connect-wide Start/Done.
    attempts: bool,
    /// The address the connect-wide ConnectStart named.
    addr: Option<SocketAddr>,
    /// The addresses of the connection made, once a layer read them.
    conn_addrs: Option<ConnAddrs>,
    server_name: Option<String>,
    tls_started: bool,
    tls_done: bool,
}

/// The result of a connect, as its Done reports it.
pub(crate) type DialResult = Result<ConnAddrs, SharedError>;

impl DialCtx {
    pub(crate) fn new(req: Arc<RequestCtx>, port: Option<u16>) -> Arc<Self> {
        let dial = Arc::new(Self {
            request_id: req.id(),
            req: ReqLink(Mutex::new(Some(req.clone()))),
            conn_id: next_conn_id(),
            call_at: crate::util::now(),
            port,
            state: Mutex::new(DialState::default()),
        });
        let weak: Weak<dyn Detach> = Arc::downgrade(&dial) as Weak<dyn Detach>;
        req.add_dial(weak);
        dial
    }

    /// The request that dials, while it is in progress.
    pub(crate) fn request(&self) -> Option<Arc<RequestCtx>> {
        self.req.get()
    }

    fn lock(&self) -> MutexGuard<'_, DialState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request that dials.
    pub(crate) fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// A per-address dialer takes over the connect events (one Start/Done per attempt).
    pub(crate) fn use_attempts(&self) {
        self.lock().attempts = true;
    }

    /// A per-address dialer reports this dial (and its lookup).
    pub(crate) fn uses_attempts(&self) -> bool {
        self.lock().attempts
    }

    /// ConnectStart, right away: the address is known without a lookup.
    pub(crate) fn connect_start(&self, addr: Option<SocketAddr>) {
        self.req.emit_decided(|| {
            let mut st = self.lock();
            if st.connect_started || st.attempts || st.detached {
                return Vec::new();
            }
            st.connect_started = true;
            st.addr = addr;
            vec![Event::ConnectStart(ConnectStartInfo {
                at: crate::util::now(),
                network: "tcp",
                addr,
            })]
        });
    }

    /// DNSStart of `host`. When the dial doesn't know its port (reqwest's connector hides its
    /// destination), a lookup of the request's own host is for the request's own connect (a
    /// proxy's is of another name): its port is the request's.
    pub(crate) fn dns_start(&self, host: &str) {
        let port = match self.port {
            Some(_) => None,
            None => self.req.get().and_then(|req| req.port_if_host(host)),
        };
        self.req.emit_decided(|| {
            let mut st = self.lock();
            if st.detached {
                return Vec::new();
            }
            st.dns_open = true;
            st.port = port;
            vec![Event::DnsStart(DnsStartInfo {
                at: crate::util::now(),
                host: host.to_owned(),
            })]
        });
    }

    /// DNSDone; on success the connect starts right after it.
    pub(crate) fn dns_done(&self, result: Result<Vec<SocketAddr>, SharedError>) {
        let at = crate::util::now();
        self.req.emit_decided(|| {
            let mut st = self.lock();
            if st.detached {
                return Vec::new();
            }
            st.dns_open = false;
            match result {
                Ok(addrs) => {
                    let start = !st.connect_started && !st.attempts;
                    st.connect_started |= start;
                    let addr = match (addrs.as_slice(), self.port.or(st.port)) {
                        ([only], Some(port)) => Some(SocketAddr::new(only.ip(), port)),
                        _ => None,
                    };
                    if start {
                        st.addr = addr;
                    }
                    let addrs = addrs.iter().map(SocketAddr::ip).collect();
                    let mut events = vec![Event::DnsDone(DnsDoneInfo {
                        at,
                        addrs,
                        error: None,
                    })];
                    if start {
                        events.push(Event::ConnectStart(ConnectStartInfo {
                            at,
                            network: "tcp",
                            addr,
                        }));
                    }
                    events
                }
                Err(error) => {
                    st.dns_failed = true;
                    vec![Event::DnsDone(DnsDoneInfo {
                        at,
                        addrs: Vec::new(),
                        error: Some(error),
                    })]
                }
            }
        });
    }

    /// ConnectStart of one address attempt.
    pub(crate) fn attempt_start(&self, addr: SocketAddr) {
        self.req.emit_decided(|| {
            let mut st = self.lock();
            if st.detached {
                return Vec::new();
            }
            st.open_attempts.push(addr);
            vec![Event::ConnectStart(ConnectStartInfo {
                at: crate::util::now(),
                network: "tcp",
                addr: Some(addr),
            })]
        });
    }

    /// The addresses of the connection made, if a layer already read them (each read costs two
    /// system calls).
    pub(crate) fn conn_addrs(&self) -> Option<ConnAddrs> {
        self.lock().conn_addrs
    }

    fn note_addrs(&self, result: &DialResult) {
        if let Ok(addrs) = result {
            self.lock().conn_addrs = Some(*addrs);
        }
    }

    /// ConnectDone of one address attempt; a success names the connection.
    pub(crate) fn attempt_done(&self, addr: SocketAddr, result: DialResult) {
        self.note_addrs(&result);
        self.req.emit_decided(|| {
            let mut st = self.lock();
            let Some(open) = st.open_attempts.iter().position(|a| *a == addr) else {
                return Vec::new();
            };
            st.open_attempts.swap_remove(open);
            drop(st);
            vec![Event::ConnectDone(self.done_info(Some(addr), result))]
        });
    }

    fn done_info(&self, dialled: Option<SocketAddr>, result: DialResult) -> ConnectDoneInfo {
        let at = crate::util::now();
        match result {
            Ok(addrs) => ConnectDoneInfo {
                at,
                network: "tcp",
                addr: addrs.remote.or(dialled),
                local_addr: addrs.local,
                conn_id: Some(self.conn_id),
                error: None,
            },
            Err(error) => ConnectDoneInfo {
                at,
                network: "tcp",
                addr: dialled,
                local_addr: None,
                conn_id: None,
                error: Some(error),
            },
        }
    }

    /// The transport (TCP) connect finished: ConnectDone, preceded by ConnectStart if nothing
    /// started it. Nothing after a failed lookup (there was no connect, as in Go), nor when a
    /// per-address dialer reported the attempts. Only the first call counts.
    pub(crate) fn transport_done(&self, result: DialResult) {
        self.note_addrs(&result);
        self.req.emit_decided(|| {
            let mut st = self.lock();
            if st.connect_done || st.detached {
                return Vec::new();
            }
            st.connect_done = true;
            if st.attempts || (st.dns_failed && result.is_err()) {
                return Vec::new();
            }
            let start = !st.connect_started;
            st.connect_started = true;
            let dialled = st.addr;
            drop(st);
            let mut events = Vec::with_capacity(2);
            if start {
                events.push(Event::ConnectStart(ConnectStartInfo {
                    at: self.call_at,
                    network: "tcp",
                    addr: None,
                }));
            }
            events.push(Event::ConnectDone(self.done_info(dialled, result)));
            events
        });
    }

    /// The TLS handshake starts (a transport under a TLS connector connected).
    pub(crate) fn tls_start(&self, server_name: Option<String>) {
        self.req.emit_decided(|| {
            let mut st = self.lock();
            if st.tls_started || st.detached {
                return Vec::new();
            }
            st.tls_started = true;
            st.server_name = server_name.clone();
            vec![Event::TlsHandshakeStart(TlsHandshakeStartInfo {
                at: crate::util::now(),
                server_name,
            })]
        });
    }

    /// The whole connector finished: closes what is still open (the connect, if no transport
    /// reported it; the TLS handshake, if one started).
    pub(crate) fn finish(&self, result: Result<Option<TlsState>, SharedError>, addrs: DialResult) {
        let st = self.lock();
        if st.detached {
            return;
        }
        let connect_done = st.connect_done;
        let tls_open = st.tls_started && !st.tls_done;
        let server_name = st.server_name.clone();
        drop(st);
        if !connect_done {
            self.transport_done(addrs);
            return;
        }
        if tls_open {
            self.req.emit_decided(|| {
                let mut st = self.lock();
                if st.tls_done || st.detached {
                    return Vec::new();
                }
                st.tls_done = true;
                let (state, error) = match result {
                    Ok(state) => (
                        state.map(|mut s| {
                            s.server_name = s.server_name.or(server_name);
                            s
                        }),
                        None,
                    ),
                    Err(e) => (None, Some(e)),
                };
                vec![Event::TlsHandshakeDone(TlsHandshakeDoneInfo {
                    at: crate::util::now(),
                    state,
                    error,
                })]
            });
        }
    }

    /// The connector's future was dropped before it finished. A connect that nothing had
    /// started yet (no lookup told, no address known: an opaque connector such as reqwest's)
    /// was attempted all the same: it starts and ends here.
    pub(crate) fn canceled(&self) {
        let st = self.lock();
        let open = (st.connect_started && !st.connect_done) || (st.tls_started && !st.tls_done);
        let unseen = !st.connect_started && !st.connect_done && !st.attempts && !st.dns_failed;
        drop(st);
        if open || unseen {
            let canceled = SharedError::new(Canceled::new("connect"));
            self.finish(Err(canceled.clone()), Err(canceled));
        }
    }

    /// A transport's future was dropped before it finished.
    pub(crate) fn transport_canceled(&self) {
        let st = self.lock();
        let open = st.connect_started && !st.connect_done;
        drop(st);
        if open {
            self.transport_done(Err(SharedError::new(Canceled::new("connect"))));
        }
    }
}

impl Detach for DialCtx {
    /// The request ends while its dial goes on (an idle connection served it first): what the
    /// dial has open is reported ended now (canceled, for this request: the connection, if
    /// made, goes to the pool), and the dial lets the request go.
    fn detach(&self, at: Instant) -> Vec<Event> {
        let mut st = self.lock();
        if st.detached {
            return Vec::new();
        }
        st.detached = true;
        let left = || {
            Some(SharedError::new(Canceled::new(
                "the request's wait for this dial",
            )))
        };
        let mut events = Vec::new();
        if st.dns_open {
            st.dns_open = false;
            events.push(Event::DnsDone(DnsDoneInfo {
                at,
                addrs: Vec::new(),
                error: left(),
            }));
        }
        for addr in std::mem::take(&mut st.open_attempts) {
            events.push(Event::ConnectDone(ConnectDoneInfo {
                at,
                network: "tcp",
                addr: Some(addr),
                local_addr: None,
                conn_id: None,
                error: left(),
            }));
        }
        if st.connect_started && !st.connect_done && !st.attempts {
            st.connect_done = true;
            events.push(Event::ConnectDone(ConnectDoneInfo {
                at,
                network: "tcp",
                addr: st.addr,
                local_addr: None,
                conn_id: None,
                error: left(),
            }));
        }
        if st.tls_started && !st.tls_done {
            st.tls_done = true;
            events.push(Event::TlsHandshakeDone(TlsHandshakeDoneInfo {
                at,
                state: None,
                error: left(),
            }));
        }
        drop(st);
        self.req.release();
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recorder;

    #[test]
    fn dial_events_pair_up() {
        let rec = Recorder::new();
        let req = RequestCtx::new(rec.trace());
        // a lookup, then a connect that is dropped
        let dial = DialCtx::new(req.clone(), Some(80));
        dial.dns_start("example.test");
        dial.dns_done(Ok(vec!["127.0.0.1:0".parse().unwrap()]));
        dial.canceled();
        dial.canceled();
        assert_eq!(
            rec.names(),
            ["DNSStart", "DNSDone", "ConnectStart", "ConnectDone"]
        );
        match &rec.events()[2] {
            Event::ConnectStart(s) => assert_eq!(s.addr, Some("127.0.0.1:80".parse().unwrap())),
            other => panic!("{other:?}"),
        }
        // a failed lookup: no connect at all, as in Go
        rec.clear();
        let dial = DialCtx::new(req, Some(80));
        dial.dns_start("example.test");
        dial.dns_done(Err(SharedError::new("nope")));
        dial.finish(
            Err(SharedError::new("dns error")),
            Err(SharedError::new("dns error")),
        );
        dial.canceled();
        assert_eq!(rec.names(), ["DNSStart", "DNSDone"]);
    }

    #[test]
    fn attempts_transport_and_tls() {
        let rec = Recorder::new();
        let req = RequestCtx::new(rec.trace());
        let dial = DialCtx::new(req, Some(443));
        dial.use_attempts();
        dial.connect_start(None); // ignored: the attempts tell
        dial.dns_start("example.test");
        dial.dns_done(Ok(vec![
            "127.0.0.2:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ]));
        let (dead, live) = (
            "127.0.0.2:443".parse().unwrap(),
            "127.0.0.1:443".parse().unwrap(),
        );
        let live_addrs = ConnAddrs {
            remote: Some(live),
            local: None,
        };
        dial.attempt_start(dead);
        dial.attempt_done(dead, Err(SharedError::new("refused")));
        dial.attempt_start(live);
        dial.attempt_done(live, Ok(live_addrs));
        dial.transport_done(Ok(live_addrs));
        dial.tls_start(Some("example.test".into()));
        dial.finish(Ok(None), Ok(live_addrs));
        dial.canceled();
        assert_eq!(
            rec.names(),
            [
                "DNSStart",
                "DNSDone",
                "ConnectStart",
                "ConnectDone",
                "ConnectStart",
                "ConnectDone",
                "TLSHandshakeStart",
                "TLSHandshakeDone"
            ]
        );
        match &rec.events()[5] {
            Event::ConnectDone(d) => {
                assert_eq!(d.conn_id, Some(dial.conn_id));
                assert_eq!(d.addr, Some(live));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_handshake_dropped_midway_is_done_once() {
        let rec = Recorder::new();
        let dial = DialCtx::new(RequestCtx::new(rec.trace()), Some(443));
        dial.connect_start(Some("127.0.0.1:443".parse().unwrap()));
        dial.transport_done(Ok(ConnAddrs::default()));
        dial.tls_start(None);
        dial.canceled();
        dial.canceled();
        assert_eq!(
            rec.names(),
            [
                "ConnectStart",
                "ConnectDone",
                "TLSHandshakeStart",
                "TLSHandshakeDone"
            ]
        );
        let done = rec.events().pop().unwrap();
        assert!(done.error().unwrap().downcast_ref::<Canceled>().is_some());
    }
}
