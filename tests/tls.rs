//! TLS handshakes over hyper-rustls: Go's sequence, what was negotiated, and every way a
//! handshake fails.
#![cfg(feature = "rustls")]

use std::net::SocketAddr;
use std::time::Duration;

use httptrace::{
    connect::{HttpsStack, PerAddressConnector, Rustls, TracingTransport},
    error::Canceled,
    Event, Recorder, RequestBody, TraceLayer, TracingConnector,
};
use httptrace_test_support::clients::{get, traced, Body, StaticResolver};
use httptrace_test_support::events::{assert_paired, causes, got_conn, sequence};
use httptrace_test_support::tls::{cert_for, client_config, tls_server, Cert, Mode};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

type TlsClient = httptrace::Trace<
    Client<
        TracingConnector<
            hyper_rustls::HttpsConnector<TracingTransport<PerAddressConnector<StaticResolver>>>,
            Rustls,
        >,
        RequestBody<Body>,
    >,
>;

/// The HTTPS stack composed by hand, with a resolver that answers `addr` for every name.
fn tls_client(config: rustls::ClientConfig, addr: SocketAddr) -> TlsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let resolver = StaticResolver {
        addrs: Ok(vec![addr]),
        delay: Duration::ZERO,
    };
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(TracingTransport::new(PerAddressConnector::new(
            http, resolver,
        )));
    let client = Client::builder(TokioExecutor::new())
        .build(TracingConnector::with_inspector(https, Rustls));
    TraceLayer::new().record_timings(true).layer(client)
}

const HANDSHAKE: &[&str] = &[
    "GetConn",
    "DNSStart",
    "DNSDone",
    "ConnectStart",
    "ConnectDone",
    "TLSHandshakeStart",
    "TLSHandshakeDone",
];

fn tls_done(events: &[Event]) -> httptrace::event::TlsHandshakeDoneInfo {
    events
        .iter()
        .find_map(|e| match e {
            Event::TlsHandshakeDone(i) => Some(i.clone()),
            _ => None,
        })
        .expect("TLSHandshakeDone")
}

/// The rustls error the handshake failed with.
fn handshake_error(events: &[Event]) -> rustls::Error {
    let error = tls_done(events).error.expect("a failed handshake");
    rustls_error(error.get_ref()).expect("a rustls error")
}

/// The rustls error somewhere in `err`'s chain.
fn rustls_error(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    causes(err)
        .into_iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>().cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_tls_connection_then_reused() {
    let cert = cert_for(&["tls.test"]);
    let addr = tls_server(&cert, Mode::Serve).await;
    let client = tls_client(client_config(&cert, rustls::DEFAULT_VERSIONS), addr);
    let url = format!("https://tls.test:{}/", addr.port());

    let rec = Recorder::new();
    let parts = get(&client, &url, rec.trace()).await;
    let timings = parts
        .extensions
        .get::<httptrace::Timings>()
        .cloned()
        .unwrap();
    let events = rec.events();
    let mut expected = HANDSHAKE.to_vec();
    expected.extend([
        "GotConn",
        "WroteHeaders",
        "WroteRequest",
        "GotFirstResponseByte",
    ]);
    expected.extend(["ResponseHeaders", "PutIdleConn", "ResponseBodyDone"]);
    assert_eq!(sequence(&events), expected);

    match &events[5] {
        Event::TlsHandshakeStart(s) => assert_eq!(s.server_name.as_deref(), Some("tls.test")),
        other => panic!("{other:?}"),
    }
    let done = tls_done(&events);
    assert!(done.error.is_none());
    let state = done.state.expect("what was negotiated");
    assert_eq!(state.version, "TLSv1.3");
    assert!(
        state.cipher_suite.starts_with("TLS13_"),
        "{}",
        state.cipher_suite
    );
    assert_eq!(state.peer_certificates, vec![cert.der.to_vec()]);
    assert_eq!(state.server_name.as_deref(), Some("tls.test"));
    assert_eq!(state.alpn, None);
    assert!(!state.resumed);

    // the wire events are above TLS: the first response byte is the HTTP response (the server
    // waits 40 ms), never the TLS 1.3 session tickets sent right after the handshake
    let at = |n: &str| events.iter().find(|e| e.name() == n).unwrap().at();
    assert!(
        at("GotFirstResponseByte").duration_since(at("WroteRequest")) >= Duration::from_millis(40)
    );
    assert!(at("TLSHandshakeDone") <= at("GotConn"));

    let tls = timings.tls().expect("a TLS phase");
    assert_eq!(
        tls,
        at("TLSHandshakeDone").duration_since(at("TLSHandshakeStart"))
    );
    assert!(timings.appconnect().unwrap() >= timings.connected().unwrap());

    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = Recorder::new();
    get(&client, &url, again.trace()).await;
    assert_eq!(
        sequence(&again.events()),
        [
            "GetConn",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "ResponseHeaders",
            "PutIdleConn",
            "ResponseBodyDone"
        ]
    );
    assert!(got_conn(&again.events()).reused);
    assert_paired(&events);
}

/// Sends one request to `tls.test` on a server of `mode` presenting `cert`, from a client with
/// `config`, that must fail in the handshake; returns its events and the client error.
async fn failing(
    cert: &Cert,
    mode: Mode,
    config: rustls::ClientConfig,
) -> (Vec<Event>, hyper_util::client::legacy::Error) {
    let addr = tls_server(cert, mode).await;
    let client = tls_client(config, addr);
    let rec = Recorder::new();
    let url = format!("https://tls.test:{}/", addr.port());
    let err = client
        .clone()
        .oneshot(traced(&url, rec.trace()))
        .await
        .unwrap_err();
    let events = rec.events();
    let mut expected = HANDSHAKE.to_vec();
    expected.push("RequestFailed");
    assert_eq!(sequence(&events), expected);
    assert_paired(&events);
    // the client still serves nothing else here, but its pool is intact: no panic, no hang
    (events, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate() {
    let cert = cert_for(&["tls.test"]);
    let other = cert_for(&["tls.test"]);
    let (events, err) = failing(
        &cert,
        Mode::Serve,
        client_config(&other, rustls::DEFAULT_VERSIONS),
    )
    .await;
    let cause = handshake_error(&events);
    assert!(
        matches!(
            cause,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                | rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
        ),
        "{cause:?}"
    );
    assert!(err.is_connect());
    assert_eq!(
        rustls_error(&err),
        Some(cause.clone()),
        "the request fails with that cause"
    );
    let failed = events.last().unwrap().error().unwrap();
    let reported = std::error::Error::source(failed).and_then(rustls_error);
    assert_eq!(
        reported,
        Some(cause),
        "RequestFailed's cause is the handshake's error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_mismatch() {
    let cert = cert_for(&["other.test"]);
    let (events, _) = failing(
        &cert,
        Mode::Serve,
        client_config(&cert, rustls::DEFAULT_VERSIONS),
    )
    .await;
    let cause = handshake_error(&events);
    assert!(
        matches!(
            cause,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{cause:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_mismatch() {
    let cert = cert_for(&["tls.test"]);
    let (events, _) = failing(
        &cert,
        Mode::Tls12Only,
        client_config(&cert, &[&rustls::version::TLS13]),
    )
    .await;
    let cause = handshake_error(&events);
    assert!(
        matches!(
            cause,
            rustls::Error::AlertReceived(_) | rustls::Error::PeerIncompatible(_)
        ),
        "{cause:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_cut_off() {
    let cert = cert_for(&["tls.test"]);
    let (events, _) = failing(
        &cert,
        Mode::Hangup,
        client_config(&cert, rustls::DEFAULT_VERSIONS),
    )
    .await;
    let err = tls_done(&events).error.unwrap();
    let io_kind = causes(err.get_ref())
        .into_iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
        .last();
    assert!(
        matches!(
            io_kind,
            Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_handshake() {
    let cert = cert_for(&["tls.test"]);
    let addr = tls_server(&cert, Mode::Silent).await;
    let client = tls_client(client_config(&cert, rustls::DEFAULT_VERSIONS), addr);
    let rec = Recorder::new();
    let url = format!("https://tls.test:{}/", addr.port());
    let fut = client.oneshot(traced(&url, rec.trace()));
    assert!(tokio::time::timeout(Duration::from_millis(150), fut)
        .await
        .is_err());
    let events = rec.events();
    let mut expected = HANDSHAKE.to_vec();
    expected.push("RequestCanceled");
    assert_eq!(sequence(&events), expected);
    let done = tls_done(&events);
    assert!(done
        .error
        .unwrap()
        .get_ref()
        .downcast_ref::<Canceled>()
        .is_some());
    assert_paired(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_stacks_build() {
    let cert = cert_for(&["localhost"]);
    let addr = tls_server(&cert, Mode::Serve).await;
    let client = Client::builder(TokioExecutor::new()).build::<_, RequestBody<Body>>(
        HttpsStack::https(client_config(&cert, rustls::DEFAULT_VERSIONS)),
    );
    let client = TraceLayer::new().layer(client);
    let rec = Recorder::new();
    // an IP literal: no lookup, one attempt; SNI can't be an IP for this cert, so expect the
    // name error, through the one-line stack
    let url = format!("https://{addr}/");
    let _ = client.clone().oneshot(traced(&url, rec.trace())).await;
    let events = rec.events();
    assert_eq!(
        &sequence(&events)[..6],
        [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "TLSHandshakeStart",
            "TLSHandshakeDone",
            "RequestFailed"
        ]
    );
    assert!(HttpsStack::https_webpki_roots().is_ok());
}
