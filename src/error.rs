//! The errors httptrace creates and passes on.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// An error shared between the client, which gets it back, and an event that reports it.
///
/// httptrace wraps the errors of the connectors and resolvers it wraps in this type, so that the
/// event (for example [`ConnectDone`](crate::Event::ConnectDone)) reports the very error the client
/// sees. It is transparent: `Display` and `source()` are those of the original error, so a
/// chain of causes reads as if it weren't there; when you walk a chain to downcast, use
/// [`SharedError::get_ref`] to reach the original. [`Event::error`](crate::Event::error) gives
/// the original directly.
///
/// ```
/// use httptrace::error::SharedError;
/// use std::error::Error as _;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let err = SharedError::new(io);
/// assert_eq!(err.to_string(), "refused");
/// assert!(err.get_ref().downcast_ref::<std::io::Error>().is_some());
/// assert!(err.source().is_none());
/// ```
#[derive(Clone)]
pub struct SharedError {
    inner: Arc<dyn StdError + Send + Sync + 'static>,
}

impl SharedError {
    /// Wraps an error (a `SharedError` is taken as it is, not wrapped twice).
    pub fn new(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        let err = err.into();
        match err.downcast::<SharedError>() {
            Ok(shared) => *shared,
            Err(err) => Self {
                inner: Arc::from(err),
            },
        }
    }

    /// The original error.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

/// Something was dropped before it finished: a request future, a response body, a connect attempt
/// or a DNS lookup.
///
/// ```
/// # async fn doc(rec: httptrace::Recorder) {
/// use httptrace::{error::Canceled, Event};
///
/// for event in rec.events() {
///     if let Some(err) = event.error() {
///         if let Some(canceled) = err.downcast_ref::<Canceled>() {
///             println!("{}: {canceled}", event.name());
///         }
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceled {
    what: &'static str,
}

impl Canceled {
    pub(crate) const fn new(what: &'static str) -> Self {
        Self { what }
    }

    /// What was dropped, e.g. `"response body"`.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for Canceled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dropped before it finished", self.what)
    }
}

impl StdError for Canceled {}

/// The error of a request that failed, as reported by [`RequestFailed`](crate::Event::RequestFailed).
///
/// Its `Display` is the client's error (e.g. hyper-util's `client error (Connect)`); `source()`
/// is the cause httptrace observed for this request (the connect or DNS error, an I/O error on
/// the wire), when there is one.
#[derive(Debug, Clone)]
pub struct RequestError {
    message: String,
    cause: Option<SharedError>,
}

impl RequestError {
    pub(crate) fn new(message: String, cause: Option<SharedError>) -> Self {
        Self { message, cause }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for RequestError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_ref()
            .map(|c| c.get_ref() as &(dyn StdError + 'static))
    }
}

/// A faithful copy of an I/O error, for an event, while the original goes on to hyper.
pub(crate) fn copy_io_error(err: &std::io::Error) -> SharedError {
    match err.raw_os_error() {
        Some(code) => SharedError::new(std::io::Error::from_raw_os_error(code)),
        None => SharedError::new(std::io::Error::new(err.kind(), err.to_string())),
    }
}

/// Why a one-line HTTPS stack can't be made ([`HttpsStack`](crate::connect::HttpsStack),
/// feature `rustls`): no rustls crypto provider is installed in the process and no feature of
/// the crate names a fallback, or rustls refused the provider.
///
/// ```
/// use httptrace::error::TlsSetupError;
///
/// fn explain(e: &TlsSetupError) -> String {
///     format!("can't set up TLS: {e}")
/// }
/// # let _ = explain;
/// ```
#[cfg(feature = "rustls")]
#[derive(Debug)]
pub struct TlsSetupError {
    rustls: Option<rustls::Error>,
}

#[cfg(feature = "rustls")]
impl TlsSetupError {
    pub(crate) fn no_provider() -> Self {
        Self { rustls: None }
    }

    pub(crate) fn rustls(e: rustls::Error) -> Self {
        Self { rustls: Some(e) }
    }

    /// Whether it failed for want of a crypto provider.
    pub fn is_no_provider(&self) -> bool {
        self.rustls.is_none()
    }
}

#[cfg(feature = "rustls")]
impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rustls {
            None => f.write_str(
                "no rustls crypto provider: install one for the process \
                 (rustls::crypto::CryptoProvider::install_default), give one to \
                 HttpsStack::builder().provider(..), or enable httptrace's `aws-lc-rs` or `ring` \
                 feature",
            ),
            Some(e) => write!(f, "rustls refused the crypto provider: {e}"),
        }
    }
}

#[cfg(feature = "rustls")]
impl StdError for TlsSetupError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.rustls.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}
