//! A self-signed TLS loopback server and the client config that trusts it (rustls with ring,
//! directly: nothing here needs httptrace's `rustls` feature).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// The tests' rustls provider: ring (rustls 0.23.48 deprecates it for its lack of
/// post-quantum key exchange; the tests need no more, and it builds without a C toolchain's
/// extras).
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs [`provider`] as the process's default, unless one is installed already.
pub fn install_provider() {
    let _ = Arc::unwrap_or_clone(provider()).install_default();
}

/// A self-signed certificate and its key.
pub struct Cert {
    /// The certificate.
    pub der: CertificateDer<'static>,
    /// Its private key.
    pub key: PrivatePkcs8KeyDer<'static>,
}

/// A self-signed certificate for `names` (an IP address is taken as one).
pub fn cert_for(names: &[&str]) -> Cert {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    Cert {
        der: ck.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
    }
}

/// What [`tls_server`] does with each connection.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// TLS, then HTTP/1 answering `hello` after 40 ms
    Serve,
    /// TLS 1.2 only
    Tls12Only,
    /// accept TCP, then close at once
    Hangup,
    /// accept TCP, then say nothing
    Silent,
}

/// A TLS server on `127.0.0.1` presenting `cert`, doing what `mode` says with every connection.
pub async fn tls_server(cert: &Cert, mode: Mode) -> SocketAddr {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match mode {
        Mode::Tls12Only => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert, versions)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match mode {
                    Mode::Hangup => drop(tcp),
                    Mode::Silent => {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        drop(tcp);
                    }
                    Mode::Serve | Mode::Tls12Only => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let svc = hyper::service::service_fn(|_req| async {
                            tokio::time::sleep(Duration::from_millis(40)).await;
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                                b"hello",
                            ))))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// A server config presenting `cert`, for `versions`.
pub fn server_config(
    cert: &Cert,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(cert.key.clone_key()),
        )
        .unwrap()
}

/// A client config that trusts `trusted` only, for `versions`.
pub fn client_config(
    trusted: &Cert,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.der.clone()).unwrap();
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// What an [`alpn_server`] answers each request with.
pub type Answer = fn(
    http::Request<hyper::body::Incoming>,
) -> Pin<Box<dyn Future<Output = http::Response<Full<Bytes>>> + Send>>;

/// A TLS server on 127.0.0.1 presenting `cert`, offering `alpn` (`h2`, `http/1.1`) and serving
/// whichever the handshake agrees (HTTP/1.1 when none) with `answer`.
pub async fn alpn_server(cert: &Cert, alpn: &[&[u8]], answer: Answer) -> SocketAddr {
    let mut config = server_config(cert, rustls::DEFAULT_VERSIONS);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}
