//! TLS over hyper-rustls (feature `rustls`): what a handshake negotiated, and the traced HTTPS
//! stack in one line.

use std::sync::Arc;

use hyper_rustls::builderstates::WantsProtocols1;
use hyper_rustls::{
    ConfigBuilderExt as _, HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream,
};
use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::crypto::CryptoProvider;

use super::connector::{InspectTls, TracingConnector};
use super::per_address::PerAddressConnector;
use super::transport::TracingTransport;
use crate::error::TlsSetupError;
use crate::event::TlsState;

/// An [`InspectTls`] for hyper-rustls' `MaybeHttpsStream`: reads the negotiated version, ALPN,
/// cipher suite, peer certificates and whether the session was resumed from the
/// `rustls::ClientConnection`.
///
/// ```
/// use httptrace::{connect::Rustls, TracingConnector};
/// # fn doc(https: hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>) {
/// let connector = TracingConnector::with_inspector(https, Rustls);
/// # drop(connector);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Rustls;

impl<T> InspectTls<MaybeHttpsStream<T>> for Rustls {
    fn tls_state(&self, io: &MaybeHttpsStream<T>) -> Option<TlsState> {
        let MaybeHttpsStream::Https(tls) = io else {
            return None;
        };
        let (_, conn) = tls.inner().get_ref();
        Some(TlsState {
            version: match conn.protocol_version()? {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            },
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            peer_certificates: conn
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
            server_name: None,
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        })
    }
}

/// The traced HTTPS (and HTTP) connector: hyper-rustls over a traced transport that dials each
/// address. See [`TracingConnector::https`] and [`HttpsStack::builder`].
pub type HttpsStack =
    TracingConnector<HttpsConnector<TracingTransport<PerAddressConnector<GaiResolver>>>, Rustls>;

impl HttpsStack {
    /// The traced connector for `https://` (and `http://`) URLs with the given TLS config:
    /// `DNSStart/Done`, one `ConnectStart/Done` per address attempt, `TLSHandshakeStart/Done`
    /// with what was negotiated, and the wire events above TLS.
    ///
    /// It offers by ALPN what the config's `alpn_protocols` name of `h2` and `http/1.1`; when
    /// they name neither, `h2` and `http/1.1` with the `http2` feature (hyper-util then speaks
    /// what the server picks), else `http/1.1` alone. Other protocols in the list are left out.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use httptrace::TracingConnector;
    /// # let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ///
    /// // `provider`: your stack's rustls `CryptoProvider`
    /// let roots = rustls::RootCertStore::empty(); // add your roots
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let connector = TracingConnector::https(config);
    /// # drop(connector);
    /// ```
    pub fn https(mut config: rustls::ClientConfig) -> Self {
        // hyper-rustls sets the ALPN list itself, and refuses a config that has one
        let versions = Versions::asked_by(&config.alpn_protocols);
        config.alpn_protocols.clear();
        versions.stack(
            HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http(),
        )
    }

    /// [`TracingConnector::https`] trusting the Mozilla roots of `webpki-roots`, with the
    /// process's default rustls `CryptoProvider`, or else the one the crate's `aws-lc-rs` or
    /// `ring` feature names. [`HttpsStack::builder`] chooses the provider, the roots and the
    /// HTTP versions.
    ///
    /// ```
    /// # let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    /// match httptrace::TracingConnector::https_webpki_roots() {
    ///     Ok(connector) => drop(connector),
    ///     // no provider: the process installed none, and no feature names a fallback
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// ```
    pub fn https_webpki_roots() -> Result<Self, TlsSetupError> {
        Self::builder().build()
    }

    /// A builder for the HTTPS stack: its crypto provider, the roots it trusts, the HTTP
    /// versions it offers.
    ///
    /// ```
    /// # let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    /// use httptrace::connect::HttpsStack;
    ///
    /// let http1_only = HttpsStack::builder().http1_only().build()?;
    /// # drop(http1_only);
    /// # Ok::<_, httptrace::error::TlsSetupError>(())
    /// ```
    pub fn builder() -> HttpsStackBuilder {
        HttpsStackBuilder {
            provider: None,
            roots: Roots::Webpki,
            versions: Versions::Default,
        }
    }
}

/// Builds an [`HttpsStack`]; see [`HttpsStack::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct HttpsStackBuilder {
    provider: Option<Arc<CryptoProvider>>,
    roots: Roots,
    versions: Versions,
}

#[derive(Debug)]
enum Roots {
    Webpki,
    Store(rustls::RootCertStore),
    Config(Box<rustls::ClientConfig>),
}

/// The HTTP versions offered by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versions {
    /// `h2` and `http/1.1` with the `http2` feature, else `http/1.1`.
    Default,
    Http1,
    #[cfg(feature = "http2")]
    Http2,
}

impl HttpsStackBuilder {
    /// The rustls crypto provider. Default: the process's
    /// ([`CryptoProvider::get_default`]), or else the one the crate's `aws-lc-rs` or `ring`
    /// feature names.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use httptrace::connect::HttpsStack;
    ///
    /// let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    /// let stack = HttpsStack::builder().provider(provider).build()?;
    /// # drop(stack);
    /// # Ok::<_, httptrace::error::TlsSetupError>(())
    /// ```
    pub fn provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Trust these roots instead of the Mozilla roots of `webpki-roots` (the default): a
    /// private CA, or a self-signed certificate.
    ///
    /// ```
    /// # let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    /// use httptrace::connect::HttpsStack;
    ///
    /// let mut roots = rustls::RootCertStore::empty();
    /// # let roots = roots;
    /// // roots.add(your_ca_der)?;
    /// let stack = HttpsStack::builder().root_certificates(roots).build()?;
    /// # drop(stack);
    /// # Ok::<_, httptrace::error::TlsSetupError>(())
    /// ```
    pub fn root_certificates(mut self, roots: rustls::RootCertStore) -> Self {
        self.roots = Roots::Store(roots);
        self
    }

    /// Use this TLS config as it is (its provider, roots, verifier, client auth); its
    /// `alpn_protocols` are read as in [`TracingConnector::https`] unless a version is chosen
    /// here. The provider and the roots set on this builder are then not used.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    /// use httptrace::connect::HttpsStack;
    ///
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(rustls::RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let stack = HttpsStack::builder().tls_config(config).build()?;
    /// # drop(stack);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.roots = Roots::Config(Box::new(config));
        self
    }

    /// Offer HTTP/1.1 only (no ALPN `h2`). Default: `h2` and `http/1.1` with the `http2`
    /// feature, else HTTP/1.1.
    pub fn http1_only(mut self) -> Self {
        self.versions = Versions::Http1;
        self
    }

    /// Offer HTTP/2 only (ALPN `h2` alone): a server that doesn't speak it fails the handshake
    /// or answers in HTTP/1.1, as it chooses; build the client `http2_only` too to insist.
    #[cfg(feature = "http2")]
    pub fn http2_only(mut self) -> Self {
        self.versions = Versions::Http2;
        self
    }

    /// The stack, or why it can't be made (no crypto provider, or one rustls can't use).
    pub fn build(self) -> Result<HttpsStack, TlsSetupError> {
        let mut config = match self.roots {
            Roots::Config(config) => *config,
            roots => {
                let provider = match self.provider {
                    Some(provider) => provider,
                    None => default_provider()?,
                };
                let builder = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(TlsSetupError::rustls)?;
                match roots {
                    Roots::Store(store) => builder.with_root_certificates(store),
                    _ => builder.with_webpki_roots(),
                }
                .with_no_client_auth()
            }
        };
        let versions = match self.versions {
            Versions::Default => Versions::asked_by(&config.alpn_protocols),
            chosen => chosen,
        };
        config.alpn_protocols.clear();
        Ok(versions.stack(
            HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http(),
        ))
    }
}

impl Versions {
    /// The versions an ALPN list asks for (`Default` when it names neither `h2` nor
    /// `http/1.1`).
    fn asked_by(alpn: &[Vec<u8>]) -> Self {
        let h1 = alpn.iter().any(|p| p == b"http/1.1");
        let h2 = alpn.iter().any(|p| p == b"h2");
        match (h1, h2) {
            (true, false) => Versions::Http1,
            #[cfg(feature = "http2")]
            (false, true) => Versions::Http2,
            _ => Versions::Default,
        }
    }

    /// The stack offering these versions.
    fn stack(self, https: HttpsConnectorBuilder<WantsProtocols1>) -> HttpsStack {
        let https = match self {
            Versions::Http1 => https.enable_http1().wrap_connector(transport()),
            #[cfg(feature = "http2")]
            Versions::Http2 => https.enable_http2().wrap_connector(transport()),
            #[cfg(feature = "http2")]
            Versions::Default => https.enable_all_versions().wrap_connector(transport()),
            #[cfg(not(feature = "http2"))]
            Versions::Default => https.enable_http1().wrap_connector(transport()),
        };
        TracingConnector::with_inspector(https, Rustls)
    }
}

/// The process's default crypto provider, or else the fallback a feature of the crate names.
fn default_provider() -> Result<Arc<CryptoProvider>, TlsSetupError> {
    if let Some(provider) = CryptoProvider::get_default() {
        return Ok(provider.clone());
    }
    fallback_provider().ok_or_else(TlsSetupError::no_provider)
}

#[cfg(feature = "aws-lc-rs")]
fn fallback_provider() -> Option<Arc<CryptoProvider>> {
    Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn fallback_provider() -> Option<Arc<CryptoProvider>> {
    // rustls 0.23.48 deprecates its ring provider (it has no post-quantum key exchange); it is
    // still what the user asked for with the `ring` feature
    #[allow(deprecated)]
    Some(Arc::new(rustls::crypto::ring::default_provider()))
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
fn fallback_provider() -> Option<Arc<CryptoProvider>> {
    None
}

fn transport() -> TracingTransport<PerAddressConnector<GaiResolver>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    TracingTransport::new(PerAddressConnector::new(http, GaiResolver::new()))
}

#[cfg(test)]
mod tests {
    use super::Versions;

    #[test]
    fn the_alpn_list_asks_for_versions() {
        let list = |names: &[&str]| -> Vec<Vec<u8>> {
            names.iter().map(|n| n.as_bytes().to_vec()).collect()
        };
        assert_eq!(Versions::asked_by(&list(&[])), Versions::Default);
        assert_eq!(Versions::asked_by(&list(&["http/1.1"])), Versions::Http1);
        assert_eq!(
            Versions::asked_by(&list(&["h2", "http/1.1"])),
            Versions::Default
        );
        assert_eq!(Versions::asked_by(&list(&["fancy"])), Versions::Default);
        #[cfg(feature = "http2")]
        assert_eq!(Versions::asked_by(&list(&["h2"])), Versions::Http2);
    }

    #[test]
    fn no_provider_is_an_error_that_says_what_to_do() {
        let e = crate::error::TlsSetupError::no_provider();
        assert!(e.is_no_provider());
        let msg = e.to_string();
        assert!(
            msg.contains("install_default") && msg.contains("aws-lc-rs"),
            "{msg}"
        );
        assert!(std::error::Error::source(&e).is_none());
    }
}
