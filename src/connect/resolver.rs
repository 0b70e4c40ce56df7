use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::binding::{self, DialCtx};
use crate::error::{Canceled, SharedError};

/// Wraps a hyper-util resolver (`Service<Name>`, e.g. `GaiResolver`) to report `DNSStart` and
/// `DNSDone` to the request whose connect is resolving. Give it to
/// `HttpConnector::new_with_resolver`, and wrap that connector in a
/// [`TracingConnector`](crate::TracingConnector).
///
/// ```
/// use httptrace::TracingResolver;
/// use hyper_util::client::legacy::connect::{dns::GaiResolver, HttpConnector};
///
/// let http = HttpConnector::new_with_resolver(TracingResolver::new(GaiResolver::new()));
/// # drop(http);
/// ```
#[derive(Debug, Clone)]
pub struct TracingResolver<R> {
    inner: R,
}

impl<R> TracingResolver<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner }
    }

    /// The inner resolver.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Unwraps the inner resolver.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R> Service<Name> for TracingResolver<R>
where
    R: Service<Name>,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Addrs<R::Response>;
    type Error = SharedError;
    type Future = ResolveFuture<R::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(SharedError::new)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        // under a PerAddressConnector, which reports the lookup itself, stay silent
        let dial = binding::current_dial().filter(|dial| !dial.uses_attempts());
        if let Some(dial) = &dial {
            dial.dns_start(name.as_str());
        }
        ResolveFuture {
            inner: self.inner.call(name),
            dial: dial.map(DnsGuard::new),
        }
    }
}

/// Reports a lookup's end to its dial ([`done`](Self::done)), or the lookup as canceled if its
/// future is dropped before it finished (`TracingResolver`'s, and reqwest's `TracingResolve`).
#[derive(Debug)]
pub(crate) struct DnsGuard {
    dial: Arc<DialCtx>,
    done: bool,
}

impl DnsGuard {
    pub(crate) fn new(dial: Arc<DialCtx>) -> Self {
        Self { dial, done: false }
    }

    /// The lookup ended with `result`: `DNSDone`.
    pub(crate) fn done(&mut self, result: Result<Vec<SocketAddr>, SharedError>) {
        self.done = true;
        self.dial.dns_done(result);
    }
}

impl Drop for DnsGuard {
    fn drop(&mut self) {
        if !self.done {
            self.dial
                .dns_done(Err(SharedError::new(Canceled::new("DNS lookup"))));
        }
    }
}

pin_project! {
    /// The future of [`TracingResolver`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct ResolveFuture<F> {
        #[pin]
        inner: F,
        dial: Option<DnsGuard>,
    }
}

impl<F, I, E> Future for ResolveFuture<F>
where
    F: Future<Output = Result<I, E>>,
    I: Iterator<Item = SocketAddr>,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = Result<Addrs<I>, SharedError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(guard) = this.dial.as_mut() else {
            return Poll::Ready(
                result
                    .map(|iter| Addrs(AddrsInner::Passthrough(iter)))
                    .map_err(SharedError::new),
            );
        };
        Poll::Ready(match result {
            Ok(iter) => {
                let addrs: Vec<SocketAddr> = iter.collect();
                guard.done(Ok(addrs.clone()));
                Ok(Addrs(AddrsInner::Collected(addrs.into_iter())))
            }
            Err(err) => {
                let err = SharedError::new(err);
                guard.done(Err(err.clone()));
                Err(err)
            }
        })
    }
}

/// The addresses a [`TracingResolver`] found: the inner resolver's, in its order.
#[derive(Debug)]
pub struct Addrs<I>(AddrsInner<I>);

#[derive(Debug)]
enum AddrsInner<I> {
    Passthrough(I),
    Collected(std::vec::IntoIter<SocketAddr>),
}

impl<I: Iterator<Item = SocketAddr>> Iterator for Addrs<I> {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        match &mut self.0 {
            AddrsInner::Passthrough(i) => i.next(),
            AddrsInner::Collected(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            AddrsInner::Passthrough(i) => i.size_hint(),
            AddrsInner::Collected(i) => i.size_hint(),
        }
    }
}
