use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::binding::{self, DialCtx};
use crate::error::{Canceled, SharedError};
use crate::util::{default_port, ip_literal, ConnAddrs};

/// A connector that dials each address of a name as its own attempt, the way Go's dialer and
/// RFC 8305 (Happy Eyeballs) do, so that a [`TracingConnector`](crate::TracingConnector) above it
/// reports `ConnectStart`/`ConnectDone` once per address attempt, with the address and, for a
/// failed attempt, its error.
///
/// It looks the name up with `R` (any hyper-util resolver, e.g. `GaiResolver`; reporting
/// `DNSStart`/`DNSDone` itself), orders the addresses alternating between IPv6 and IPv4 starting
/// with the resolver's first, starts the first attempt, and starts the next one when an attempt
/// fails or after the [Happy Eyeballs delay](PerAddressConnector::happy_eyeballs_delay) (300 ms,
/// as hyper-util). The first connection wins; the attempts still running are dropped and their
/// `ConnectDone` says [`Canceled`]. When every attempt fails, the error is the last one's.
///
/// Each attempt is made by the given `HttpConnector` with the address as an IP literal, so its
/// settings (nodelay, keepalive, local address, connect timeout, `enforce_http`...) apply.
///
/// ```
/// use httptrace::{connect::PerAddressConnector, TracingConnector};
/// use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
///
/// let mut http = HttpConnector::new();
/// http.set_nodelay(true);
/// let connector = TracingConnector::new(PerAddressConnector::new(http, GaiResolver::new()));
/// # drop(connector);
/// ```
#[derive(Clone)]
pub struct PerAddressConnector<R> {
    http: HttpConnector,
    resolver: R,
    delay: Duration,
}

impl<R> PerAddressConnector<R> {
    /// Dials with `http`, looks names up with `resolver`.
    pub fn new(http: HttpConnector, resolver: R) -> Self {
        Self {
            http,
            resolver,
            delay: Duration::from_millis(300),
        }
    }

    /// How long an attempt runs alone before the next address is tried too. Default: 300 ms.
    ///
    /// ```
    /// # use httptrace::connect::PerAddressConnector;
    /// # use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
    /// let c = PerAddressConnector::new(HttpConnector::new(), GaiResolver::new())
    ///     .happy_eyeballs_delay(std::time::Duration::from_millis(250));
    /// # drop(c);
    /// ```
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The `HttpConnector` that makes each attempt, to change its settings.
    pub fn http_mut(&mut self) -> &mut HttpConnector {
        &mut self.http
    }
}

impl<R> fmt::Debug for PerAddressConnector<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerAddressConnector")
            .field("happy_eyeballs_delay", &self.delay)
            .finish()
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, SharedError>> + Send>>;

impl<R> Service<http::Uri> for PerAddressConnector<R>
where
    R: Service<Name> + Clone + Send + 'static,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<Box<dyn StdError + Send + Sync>>,
    R::Future: Send,
{
    type Response = TokioIo<TcpStream>;
    type Error = SharedError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // the resolver is made ready on its clone, in the future
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let dial = binding::current_dial();
        if let Some(dial) = &dial {
            dial.use_attempts();
        }
        Box::pin(connect(
            dst,
            self.http.clone(),
            self.resolver.clone(),
            self.delay,
            dial,
        ))
    }
}

fn invalid(msg: &'static str) -> SharedError {
    SharedError::new(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

async fn connect<R>(
    dst: http::Uri,
    http: HttpConnector,
    mut resolver: R,
    delay: Duration,
    dial: Option<Arc<DialCtx>>,
) -> Result<TokioIo<TcpStream>, SharedError>
where
    R: Service<Name>,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let host = dst.host().ok_or_else(|| invalid("the URL has no host"))?;
    let port = default_port(&dst);
    let scheme = dst.scheme_str().unwrap_or("http").to_owned();
    let addrs = match ip_literal(host) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => {
            let name = Name::from_str(host).map_err(SharedError::new)?;
            let lookup = Lookup {
                dial: dial.clone(),
                done: false,
            };
            if let Some(dial) = &dial {
                dial.dns_start(host);
            }
            let found = async {
                poll_fn(|cx| resolver.poll_ready(cx)).await?;
                resolver.call(name).await
            }
            .await
            .map(|addrs| {
                addrs
                    .map(|a| SocketAddr::new(a.ip(), port))
                    .collect::<Vec<_>>()
            })
            .map_err(SharedError::new);
            lookup.done(found.clone())?
        }
    };
    if addrs.is_empty() {
        return Err(invalid("the name has no addresses"));
    }
    race(interleave(addrs), &scheme, http, delay, dial).await
}

/// Closes the lookup: DNSDone with its result, or canceled if dropped first.
struct Lookup {
    dial: Option<Arc<DialCtx>>,
    done: bool,
}

impl Lookup {
    fn done(
        mut self,
        found: Result<Vec<SocketAddr>, SharedError>,
    ) -> Result<Vec<SocketAddr>, SharedError> {
        self.done = true;
        if let Some(dial) = &self.dial {
            dial.dns_done(found.clone());
        }
        found
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        if let (false, Some(dial)) = (self.done, &self.dial) {
            dial.dns_done(Err(SharedError::new(Canceled::new("DNS lookup"))));
        }
    }
}

/// RFC 8305 §4: alternate address families, starting with the family of the first address.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(first.len() + second.len());
    first.reverse();
    second.reverse();
    loop {
        match (first.pop(), second.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// One address attempt; reports its Done once (canceled if dropped while running).
struct Attempt {
    addr: SocketAddr,
    fut: Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, SharedError>> + Send>>,
    dial: Option<Arc<DialCtx>>,
    done: bool,
}

impl Attempt {
    fn start(
        addr: SocketAddr,
        scheme: &str,
        http: &HttpConnector,
        dial: &Option<Arc<DialCtx>>,
    ) -> Self {
        if let Some(dial) = dial {
            dial.attempt_start(addr);
        }
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(addr.to_string())
            .path_and_query("/")
            .build();
        let mut http = http.clone();
        let fut: Pin<Box<dyn Future<Output = _> + Send>> = match uri {
            Ok(uri) => {
                let connecting = http.call(uri);
                Box::pin(async move { connecting.await.map_err(SharedError::new) })
            }
            Err(e) => {
                let e = SharedError::new(e);
                Box::pin(async move { Err(e) })
            }
        };
        Self {
            addr,
            fut,
            dial: dial.clone(),
            done: false,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<TokioIo<TcpStream>, SharedError>> {
        let res = std::task::ready!(self.fut.as_mut().poll(cx));
        self.done = true;
        if let Some(dial) = &self.dial {
            let report = match &res {
                Ok(io) => Ok(ConnAddrs::of(io)),
                Err(e) => Err(e.clone()),
            };
            dial.attempt_done(self.addr, report);
        }
        Poll::Ready(res)
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let (false, Some(dial)) = (self.done, &self.dial) {
            let canceled = SharedError::new(Canceled::new("connect attempt"));
            dial.attempt_done(self.addr, Err(canceled));
        }
    }
}

/// Runs the attempts: the next starts when one fails or after `delay`; the first success wins.
async fn race(
    order: Vec<SocketAddr>,
    scheme: &str,
    http: HttpConnector,
    delay: Duration,
    dial: Option<Arc<DialCtx>>,
) -> Result<TokioIo<TcpStream>, SharedError> {
    let mut queue = order.into_iter();
    let mut running: Vec<Attempt> = Vec::new();
    let mut last_err = None;
    let mut timer = Box::pin(tokio::time::sleep(delay));
    let mut start_next = true;
    poll_fn(|cx| loop {
        if start_next {
            start_next = false;
            if let Some(addr) = queue.next() {
                running.push(Attempt::start(addr, scheme, &http, &dial));
                timer.as_mut().reset(tokio::time::Instant::now() + delay);
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].poll(cx) {
                Poll::Ready(Ok(io)) => {
                    // the winner reported its Done; dropping the others reports theirs
                    running.clear();
                    return Poll::Ready(Ok(io));
                }
                Poll::Ready(Err(e)) => {
                    running.swap_remove(i);
                    last_err = Some(e);
                    start_next = true;
                }
                Poll::Pending => i += 1,
            }
        }
        if start_next {
            continue;
        }
        if running.is_empty() {
            let err = last_err
                .take()
                .unwrap_or_else(|| invalid("no address to connect to"));
            return Poll::Ready(Err(err));
        }
        if timer.as_mut().poll(cx).is_ready() {
            start_next = !queue.as_slice().is_empty();
            if !start_next {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + Duration::from_secs(3600));
            }
            continue;
        }
        return Poll::Pending;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::interleave;
    use std::net::SocketAddr;

    #[test]
    fn families_alternate_from_the_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let got = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("127.0.0.1:1"),
            a("127.0.0.2:1"),
        ]);
        assert_eq!(
            got,
            vec![
                a("[::1]:1"),
                a("127.0.0.1:1"),
                a("[::2]:1"),
                a("127.0.0.2:1"),
                a("[::3]:1")
            ]
        );
        let got = interleave(vec![a("127.0.0.1:1"), a("[::1]:1")]);
        assert_eq!(got, vec![a("127.0.0.1:1"), a("[::1]:1")]);
        assert!(interleave(vec![]).is_empty());
    }
}
