//! TLS over hyper-rustls (feature `rustls`): what a handshake negotiated, and the traced HTTPS
//! stack in one line.

use std::sync::Arc;

use hyper_rustls::builderstates::WantsProtocols1;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::client::legacy::connect::HttpConnector;

use super::connector::{InspectTls, TracingConnector};
use super::per_address::PerAddressConnector;
use super::transport::TracingTransport;
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
/// address. See [`TracingConnector::https`].
pub type HttpsStack =
    TracingConnector<HttpsConnector<TracingTransport<PerAddressConnector<GaiResolver>>>, Rustls>;

impl HttpsStack {
    /// The traced connector for `https://` (and `http://`) URLs with the given TLS config:
    /// `DNSStart/Done`, one `ConnectStart/Done` per address attempt, `TLSHandshakeStart/Done`
    /// with what was negotiated, and the wire events above TLS. With the `http2` feature (a
    /// default) it offers ALPN `h2` and `http/1.1`, and hyper-util speaks what the server picks.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use httptrace::TracingConnector;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let roots = rustls::RootCertStore::empty(); // add your roots
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let connector = TracingConnector::https(config);
    /// # drop(connector);
    /// ```
    pub fn https(config: rustls::ClientConfig) -> Self {
        stack(
            HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http(),
        )
    }

    /// [`TracingConnector::https`] trusting the Mozilla roots of `webpki-roots`, with rustls'
    /// `ring` provider.
    ///
    /// ```
    /// let connector = httptrace::TracingConnector::https_webpki_roots().unwrap();
    /// # drop(connector);
    /// ```
    pub fn https_webpki_roots() -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(stack(
            HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)?
                .https_or_http(),
        ))
    }
}

/// The stack over `https`: ALPN `h2` and `http/1.1` with the `http2` feature, else HTTP/1 only.
fn stack(https: HttpsConnectorBuilder<WantsProtocols1>) -> HttpsStack {
    #[cfg(feature = "http2")]
    let https = https.enable_all_versions();
    #[cfg(not(feature = "http2"))]
    let https = https.enable_http1();
    TracingConnector::with_inspector(https.wrap_connector(transport()), Rustls)
}

fn transport() -> TracingTransport<PerAddressConnector<GaiResolver>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    TracingTransport::new(PerAddressConnector::new(http, GaiResolver::new()))
}
