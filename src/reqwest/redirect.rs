//! A `Redirect` event per hop, through `reqwest::ClientBuilder::redirect`.

use std::error::Error as StdError;

use crate::binding;
use crate::event::{Event, RedirectInfo};

/// A redirect policy that follows up to `max` redirects, like `Policy::limited(max)`, and
/// reports each hop as a `Redirect` event: the events after it belong to the next hop.
///
/// ```
/// # httptrace_test_support::tls::install_provider();
/// let client = reqwest::Client::builder()
///     .redirect(httptrace::reqwest::redirect_policy(10))
///     .build();
/// # drop(client);
/// ```
pub fn redirect_policy(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let hop = attempt.previous().len();
        if let Some(ctx) = binding::current_request() {
            ctx.emit(Event::Redirect(RedirectInfo {
                at: crate::util::now(),
                status: attempt.status(),
                to: attempt.url().to_string(),
                hop,
            }));
        }
        if hop > max {
            attempt.error(TooManyRedirects(max))
        } else {
            attempt.follow()
        }
    })
}

/// More redirects than [`redirect_policy`] allows.
#[derive(Debug, Clone, Copy)]
pub struct TooManyRedirects(usize);

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} redirects", self.0)
    }
}

impl StdError for TooManyRedirects {}
