//! The one-line HTTPS stack speaks the HTTP versions it is told to, against a server that
//! offers both by ALPN, and takes a TLS config whose ALPN list is set already (hyper-rustls
//! refuses one: the stack reads it instead of panicking).
#![cfg(feature = "rustls")]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use httptrace::connect::HttpsStack;
use httptrace::{Event, Recorder, RequestBody, TraceLayer};
use httptrace_test_support::clients::{traced, Body};
use httptrace_test_support::tls::{alpn_server, cert_for, client_config, Cert};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

/// A TLS server on 127.0.0.1 offering `h2` and `http/1.1` by ALPN, and serving either.
async fn server_of_both(cert: &Cert) -> SocketAddr {
    alpn_server(cert, &[b"h2", b"http/1.1"], |_req| {
        Box::pin(async { http::Response::new(Full::new(Bytes::from_static(b"hello"))) })
    })
    .await
}

/// One GET through `stack`: the response's version and the ALPN the handshake agreed.
async fn get(stack: HttpsStack, addr: SocketAddr) -> (http::Version, Option<Vec<u8>>) {
    let client = Client::builder(TokioExecutor::new()).build::<_, RequestBody<Body>>(stack);
    let svc = TraceLayer::new().layer(client);
    let rec = Recorder::new();
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let res = svc.oneshot(traced(&url, rec.trace())).await.unwrap();
    let version = res.version();
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        b"hello"
    );
    let alpn = rec
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::TlsHandshakeDone(i) => Some(i.state.expect("negotiated").alpn),
            _ => None,
        })
        .expect("a handshake");
    (version, alpn)
}

fn trusting(cert: &Cert) -> rustls::ClientConfig {
    client_config(cert, rustls::DEFAULT_VERSIONS)
}

/// A certificate for 127.0.0.1, a server offering both versions with it, and a config that
/// trusts it.
async fn setup() -> (Cert, SocketAddr, rustls::ClientConfig) {
    let cert = cert_for(&["127.0.0.1"]);
    let addr = server_of_both(&cert).await;
    let config = trusting(&cert);
    (cert, addr, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_versions_by_default_and_the_server_picks_h2() {
    let (_, addr, config) = setup().await;
    let stack = HttpsStack::builder().tls_config(config).build().unwrap();
    assert_eq!(
        get(stack, addr).await,
        (http::Version::HTTP_2, Some(b"h2".to_vec()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_only_offers_no_h2() {
    let (_, addr, config) = setup().await;
    let stack = HttpsStack::builder()
        .tls_config(config)
        .http1_only()
        .build()
        .unwrap();
    assert_eq!(get(stack, addr).await, (http::Version::HTTP_11, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_only_offers_h2_alone() {
    let (_, addr, config) = setup().await;
    let stack = HttpsStack::builder()
        .tls_config(config)
        .http2_only()
        .build()
        .unwrap();
    assert_eq!(
        get(stack, addr).await,
        (http::Version::HTTP_2, Some(b"h2".to_vec()))
    );
}

/// A config that asks for `http/1.1` by ALPN itself: no panic, HTTP/1.1 offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_its_own_alpn_list_is_read_not_refused() {
    let (_, addr, mut config) = setup().await;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let stack = httptrace::TracingConnector::https(config);
    assert_eq!(get(stack, addr).await, (http::Version::HTTP_11, None));
}

/// Roots of its own (a private CA), with the provider given explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_and_provider_of_the_callers_choice() {
    let (cert, addr, _) = setup().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let stack = HttpsStack::builder()
        .provider(httptrace_test_support::tls::provider())
        .root_certificates(roots)
        .build()
        .unwrap();
    assert_eq!(
        get(stack, addr).await,
        (http::Version::HTTP_2, Some(b"h2".to_vec()))
    );
}
