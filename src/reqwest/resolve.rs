//! `DNSStart`/`DNSDone` through `reqwest::ClientBuilder::dns_resolver`.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name as HyperName};
use tower_service::Service;

use super::BoxError;
use crate::binding;
use crate::connect::DnsGuard;
use crate::error::SharedError;

/// A `reqwest::dns::Resolve` that reports `DNSStart` and `DNSDone` to the request whose connect
/// is resolving: on hyper-util's `GaiResolver` ([`TracingResolve::gai`]), or around your own
/// resolver ([`TracingResolve::new`]).
///
/// ```
/// # httptrace_test_support::tls::install_provider();
/// let client = reqwest::Client::builder()
///     .dns_resolver(httptrace::reqwest::TracingResolve::gai())
///     .connector_layer(httptrace::reqwest::connector_layer())
///     .build();
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct TracingResolve {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Gai(GaiResolver),
    User(Arc<dyn reqwest::dns::Resolve>),
}

impl std::fmt::Debug for TracingResolve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Gai(_) => "TracingResolve(GaiResolver)",
            Inner::User(_) => "TracingResolve(user)",
        })
    }
}

impl TracingResolve {
    /// Traces lookups made with the system's `getaddrinfo` (hyper-util's `GaiResolver`), as
    /// reqwest does by default.
    pub fn gai() -> Arc<Self> {
        Arc::new(Self {
            inner: Inner::Gai(GaiResolver::new()),
        })
    }

    /// Traces the lookups of `resolver`.
    pub fn new(resolver: impl reqwest::dns::Resolve + 'static) -> Arc<Self> {
        Arc::new(Self {
            inner: Inner::User(Arc::new(resolver)),
        })
    }
}

impl reqwest::dns::Resolve for TracingResolve {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dial = binding::current_dial();
        let host = name.as_str().to_owned();
        let lookup: reqwest::dns::Resolving = match &self.inner {
            Inner::User(r) => r.resolve(name),
            Inner::Gai(gai) => {
                let mut gai = gai.clone();
                Box::pin(async move {
                    let name: HyperName = host_name(name.as_str())?;
                    let addrs = gai.call(name).await?;
                    Ok(Box::new(addrs) as reqwest::dns::Addrs)
                })
            }
        };
        let Some(dial) = dial else { return lookup };
        dial.dns_start(&host);
        let mut guard = DnsGuard::new(dial);
        Box::pin(async move {
            match lookup.await {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    guard.done(Ok(addrs.clone()));
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(err) => {
                    let err = SharedError::new(err);
                    guard.done(Err(err.clone()));
                    Err(Box::new(err) as BoxError)
                }
            }
        })
    }
}

fn host_name(host: &str) -> Result<HyperName, BoxError> {
    host.parse::<HyperName>()
        .map_err(|e| Box::new(e) as BoxError)
}
