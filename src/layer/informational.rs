use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, StatusCode, Version};

type Callback = dyn Fn(&http::Response<()>) + Send + Sync;

/// A 1xx callback set with [`on_informational`].
#[derive(Clone)]
pub(crate) struct UserInformational(Arc<Callback>);

impl UserInformational {
    pub(crate) fn call(&self, status: StatusCode, version: Version, headers: &HeaderMap) {
        let mut res = http::Response::new(());
        *res.status_mut() = status;
        *res.version_mut() = version;
        *res.headers_mut() = headers.clone();
        (self.0)(&res)
    }
}

impl fmt::Debug for UserInformational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserInformational")
    }
}

/// Sets a callback for the request's informational (1xx) responses that works together with
/// httptrace.
///
/// hyper keeps one 1xx callback per request (`hyper::ext::on_informational`) and it can't be
/// read back: if you set one there yourself, the [`TraceLayer`](crate::TraceLayer) leaves it in
/// place and the request reports no `Got100Continue`/`Got1xxResponse`. Set it with this function
/// instead and the layer installs it, calling it after the hooks when the request is traced.
/// The callback is called on the connection's task, with the informational response's head.
///
/// ```
/// let mut req = http::Request::new(());
/// httptrace::on_informational(&mut req, |res: &http::Response<()>| println!("{}", res.status()));
/// ```
pub fn on_informational<B, F>(req: &mut http::Request<B>, callback: F)
where
    F: Fn(&http::Response<()>) + Send + Sync + 'static,
{
    req.extensions_mut()
        .insert(UserInformational(Arc::new(callback)));
}
