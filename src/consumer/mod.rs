//! Ready-made consumers of the events: [`Recorder`] keeps them, [`Timings`] turns them into
//! phases, [`Timeline`] draws many requests.

#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
pub(crate) mod recorder;
#[cfg(feature = "tracing")]
pub(crate) mod spans;
pub(crate) mod timeline;
pub(crate) mod timings;

/// OpenTelemetry's `error.type` for an event that reports a failure: a low-cardinality class.
#[cfg(any(feature = "tracing", feature = "opentelemetry"))]
fn error_type(event: &crate::event::Event) -> Option<&'static str> {
    use crate::event::Event;
    let err = event.error()?;
    if err.downcast_ref::<crate::error::Canceled>().is_some() {
        return Some("canceled");
    }
    Some(match event {
        Event::DnsDone(_) => "dns",
        Event::ConnectDone(_) => "connect",
        Event::TlsHandshakeDone(_) => "tls",
        Event::WroteRequest(_) | Event::ConnectionClosed(_) => "io",
        Event::ResponseBodyDone(_) => "body",
        _ => "_OTHER",
    })
}

/// The start of the connect a `ConnectDone` for `addr` ends, taken out of `open`: the attempt to
/// that address, or else the one that didn't know its address (attempts may overlap).
#[cfg(feature = "opentelemetry")]
fn connect_started(
    open: &mut Vec<(Option<std::net::SocketAddr>, std::time::Instant)>,
    addr: Option<std::net::SocketAddr>,
) -> Option<(Option<std::net::SocketAddr>, std::time::Instant)> {
    let found = open
        .iter()
        .position(|(a, _)| a.is_some() && *a == addr)
        .or_else(|| open.iter().position(|(a, _)| a.is_none()))?;
    Some(open.remove(found))
}

/// `url.full` as the conventions want it: no userinfo, and the query redacted on request.
#[cfg(any(feature = "tracing", feature = "opentelemetry"))]
fn url_full(uri: &http::Uri, redact_query: bool) -> String {
    let mut url = String::new();
    if let Some(scheme) = uri.scheme_str() {
        url.push_str(scheme);
        url.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        // drop the userinfo
        url.push_str(authority.as_str().rsplit('@').next().unwrap_or(""));
    }
    url.push_str(uri.path());
    if let Some(query) = uri.query() {
        url.push('?');
        url.push_str(if redact_query { "REDACTED" } else { query });
    }
    url
}

/// An error's text as a consumer may record it: every URL in it as `url.full` has it (no
/// userinfo; the query redacted on request). Clients write the request's URL into their errors
/// (reqwest's "error sending request for url (...)"), query and all.
#[cfg(any(feature = "tracing", feature = "opentelemetry"))]
fn redacted_error(text: &str, redact_query: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["http://", "https://", "ws://", "wss://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        out.push_str(&rest[..at]);
        let url = &rest[at..];
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        out.push_str(&redacted_url(url, redact_query));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// One URL written in text: its userinfo dropped, its query redacted on request (its fragment
/// with it).
#[cfg(any(feature = "tracing", feature = "opentelemetry"))]
fn redacted_url(url: &str, redact_query: bool) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit('@').next().unwrap_or("");
    let mut out = format!("{scheme}://{host}");
    match path.split_once('?') {
        Some((path, _)) if redact_query => {
            out.push_str(path);
            out.push_str("?REDACTED");
        }
        _ => out.push_str(path),
    }
    out
}

#[cfg(all(test, any(feature = "tracing", feature = "opentelemetry")))]
mod tests {
    #[test]
    fn urls_in_error_text_are_redacted_as_url_full() {
        let text = "error sending request for url (http://user:pw@127.0.0.1:8/p?token=abc&x=1)";
        assert_eq!(
            super::redacted_error(text, true),
            "error sending request for url (http://127.0.0.1:8/p?REDACTED)"
        );
        assert_eq!(
            super::redacted_error(text, false),
            "error sending request for url (http://127.0.0.1:8/p?token=abc&x=1)"
        );
        let two = "redirect from https://a.test/x?k=1 to \"https://u@b.test/?s=2\" failed";
        assert_eq!(
            super::redacted_error(two, true),
            "redirect from https://a.test/x?REDACTED to \"https://b.test/?REDACTED\" failed"
        );
        assert_eq!(super::redacted_error("no url here", true), "no url here");
    }

    #[test]
    fn url_full_drops_userinfo_and_redacts_the_query() {
        let uri: http::Uri = "http://user:pw@example.test:8080/a/b?token=x"
            .parse()
            .unwrap();
        assert_eq!(
            super::url_full(&uri, true),
            "http://example.test:8080/a/b?REDACTED"
        );
        assert_eq!(
            super::url_full(&uri, false),
            "http://example.test:8080/a/b?token=x"
        );
        let uri: http::Uri = "https://example.test/".parse().unwrap();
        assert_eq!(super::url_full(&uri, true), "https://example.test/");
    }
}
