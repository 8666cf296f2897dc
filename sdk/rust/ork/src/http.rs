//! HTTP requests that the ork host makes on the task's behalf
//! ([`Context::http`](crate::Context::http)).
//!
//! The sandbox has no sockets. A task asks the host (operation
//! `http.request`), which makes the request only to hosts that ork.yaml
//! grants the task's executor (`sandbox.allowed_hosts`), adds the headers
//! attached to the grant (e.g. an `Authorization` built from a secret the
//! guest never sees), follows redirects to granted hosts, and caps sizes and
//! durations.
//!
//! ```no_run
//! use std::time::Duration;
//! use ork::http::HttpRequest;
//! use ork::serde_json::{json, Value};
//!
//! # fn demo(ctx: &ork::Context) -> ork::Result<()> {
//! let jobs: Value = ctx.http().get("https://api.example.com/v1/jobs")?.error_for_status()?.json()?;
//!
//! let resp = ctx.http().request(
//!     HttpRequest::post("https://api.example.com/v1/jobs")
//!         .header("X-Request-Id", ctx.run_id())
//!         .json(&json!({ "name": "load" }))
//!         .timeout(Duration::from_secs(30)),
//! )?;
//! ctx.info(format!("HTTP {}: {}", resp.status(), resp.text()));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::abi::{self, op};
use crate::{base64, Error, HostError, Result};

/// HTTP requests made by the ork host; get it from
/// [`Context::http`](crate::Context::http).
///
/// Only hosts listed under the executor's `sandbox.allowed_hosts` in
/// ork.yaml can be reached; any other request is an [`Error`] holding a
/// [`HostError`] whose message names the host and that setting.
#[derive(Debug)]
pub struct Http {
    pub(crate) _private: (),
}

impl Http {
    /// Makes `request` and returns its response, whatever its status (see
    /// [`HttpResponse::error_for_status`]).
    ///
    /// Fails with a [`HostError`] when the host refuses or cannot make the
    /// request: a host not granted, a refused address, a timeout, a body too
    /// large.
    pub fn request(&self, request: HttpRequest) -> Result<HttpResponse> {
        let req = request.to_wire()?;
        let resp = abi::call(op::HTTP_REQUEST, &req)?;
        HttpResponse::from_wire(resp, request.method)
    }

    /// `GET url`.
    pub fn get<U: Into<String>>(&self, url: U) -> Result<HttpResponse> {
        self.request(HttpRequest::get(url))
    }

    /// `POST url` with `body` serialized as JSON (and `Content-Type:
    /// application/json`).
    pub fn post_json<U: Into<String>, T: Serialize + ?Sized>(
        &self,
        url: U,
        body: &T,
    ) -> Result<HttpResponse> {
        self.request(HttpRequest::post(url).json(body))
    }
}

/// An HTTP request, built step by step:
/// `HttpRequest::get(url).header("Accept", "text/csv").timeout(Duration::from_secs(10))`.
///
/// Problems found while building (a body that cannot be serialized, a zero
/// timeout) are reported when the request is made.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    json: bool,
    timeout: Option<Duration>,
    problem: Option<String>,
}

impl HttpRequest {
    /// A request with `method` (upper-cased) to `url`, without headers or
    /// body.
    pub fn new<M: AsRef<str>, U: Into<String>>(method: M, url: U) -> Self {
        HttpRequest {
            method: method.as_ref().trim().to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            json: false,
            timeout: None,
            problem: None,
        }
    }

    /// A `GET` request.
    pub fn get<U: Into<String>>(url: U) -> Self {
        HttpRequest::new("GET", url)
    }

    /// A `POST` request.
    pub fn post<U: Into<String>>(url: U) -> Self {
        HttpRequest::new("POST", url)
    }

    /// A `PUT` request.
    pub fn put<U: Into<String>>(url: U) -> Self {
        HttpRequest::new("PUT", url)
    }

    /// A `PATCH` request.
    pub fn patch<U: Into<String>>(url: U) -> Self {
        HttpRequest::new("PATCH", url)
    }

    /// A `DELETE` request.
    pub fn delete<U: Into<String>>(url: U) -> Self {
        HttpRequest::new("DELETE", url)
    }

    /// A `HEAD` request.
    pub fn head<U: Into<String>>(url: U) -> Self {
        HttpRequest::new("HEAD", url)
    }

    /// Sets header `name` (replacing a header of the same name, whatever its
    /// case).
    pub fn header<K: Into<String>, V: Into<String>>(mut self, name: K, value: V) -> Self {
        let name = name.into();
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body: text (`&str`, `String`) or bytes (`Vec<u8>`, `&[u8]`).
    /// Bodies that are not UTF-8 travel to the host in base64.
    pub fn body<B: Into<Vec<u8>>>(mut self, body: B) -> Self {
        self.body = Some(body.into());
        self.json = false;
        self
    }

    /// Sets the body to `value` serialized as JSON, with `Content-Type:
    /// application/json` unless a `Content-Type` header is set.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = Some(body);
                self.json = true;
            }
            Err(e) => self.problem = Some(format!("cannot serialize the JSON body: {}", e)),
        }
        self
    }

    /// Sets how long the host waits for the response (rounded up to whole
    /// milliseconds; the host caps it, and uses its own default when none is
    /// set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if timeout.is_zero() {
            self.problem = Some("the timeout must be positive".to_string());
        }
        self.timeout = Some(timeout);
        self
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers set so far, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body set so far.
    pub fn body_bytes(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The request as `http.request` sends it.
    fn to_wire(&self) -> Result<Value> {
        if let Some(problem) = &self.problem {
            return Err(Error::msg(format!(
                "{} {}: {}",
                self.method, self.url, problem
            )));
        }
        if self.method.is_empty() {
            return Err(Error::msg(format!(
                "HTTP request to {}: the method is empty",
                self.url
            )));
        }
        let mut req = Map::new();
        req.insert("method".into(), Value::String(self.method.clone()));
        req.insert("url".into(), Value::String(self.url.clone()));
        let mut headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if self.json
            && !self
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.insert(
                "Content-Type".into(),
                Value::String("application/json".into()),
            );
        }
        if !headers.is_empty() {
            req.insert("headers".into(), Value::Object(headers));
        }
        if let Some(body) = &self.body {
            match std::str::from_utf8(body) {
                Ok(text) => req.insert("body".into(), Value::String(text.to_string())),
                Err(_) => req.insert("body_base64".into(), Value::String(base64::encode(body))),
            };
        }
        if let Some(t) = self.timeout {
            let ms = t.as_millis() + u128::from(t.subsec_nanos() % 1_000_000 != 0);
            req.insert(
                "timeout_ms".into(),
                Value::from(ms.min(i64::MAX as u128) as u64),
            );
        }
        Ok(Value::Object(req))
    }
}

/// The response to an HTTP request (any status).
#[derive(Clone, PartialEq)]
pub struct HttpResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    url: String,
    body: Vec<u8>,
    method: String,
}

impl HttpResponse {
    /// A response, e.g. for tests of code that handles one.
    pub fn new<U: Into<String>>(
        status: u16,
        url: U,
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> Self {
        HttpResponse {
            status,
            headers,
            url: url.into(),
            body,
            method: "GET".into(),
        }
    }

    fn from_wire(resp: Value, method: String) -> Result<HttpResponse> {
        let bad = |resp: &Value| {
            let mut text = resp.to_string();
            if text.len() > 200 {
                let mut end = 200;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            Error::new(HostError::new(
                op::HTTP_REQUEST,
                format!("unexpected response from the host: {}", text),
            ))
        };
        let status = match resp["status"].as_u64() {
            Some(s) if s <= u64::from(u16::MAX) => s as u16,
            _ => return Err(bad(&resp)),
        };
        let mut headers = BTreeMap::new();
        match &resp["headers"] {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some(v) => headers.insert(k.clone(), v.to_string()),
                        None => return Err(bad(&resp)),
                    };
                }
            }
            _ => return Err(bad(&resp)),
        }
        let url = match &resp["url"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            _ => return Err(bad(&resp)),
        };
        let body = match (&resp["body"], &resp["body_base64"]) {
            (Value::String(s), _) => s.clone().into_bytes(),
            (Value::Null, Value::String(b)) => base64::decode(b).map_err(|e| {
                Error::new(HostError::new(
                    op::HTTP_REQUEST,
                    format!("the host's body_base64 does not decode: {}", e),
                ))
            })?,
            (Value::Null, Value::Null) => Vec::new(),
            _ => return Err(bad(&resp)),
        };
        Ok(HttpResponse {
            status,
            headers,
            url,
            body,
            method,
        })
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The headers, by name as the server sent them. Use
    /// [`header`](HttpResponse::header) for a lookup that ignores case.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// The value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request's method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The body as text: decoded as UTF-8, invalid bytes replaced by U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body as bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken out of the response.
    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }

    /// The body parsed as JSON into `T` (e.g. `serde_json::Value` or your own
    /// `#[derive(Deserialize)]` type).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::msg(format!(
                "the response from {} (HTTP {}) is not the JSON expected: {}",
                self.url, self.status, e
            ))
        })
    }

    /// The response if its status is 2xx; otherwise an [`Error`] holding a
    /// [`StatusError`] (`POST https://…: HTTP 404 Not Found: <start of the
    /// body>`), so calls chain:
    /// `ctx.http().get(url)?.error_for_status()?.json()?`.
    pub fn error_for_status(self) -> Result<HttpResponse> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::new(StatusError {
                response: Box::new(self),
            }))
        }
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
}

/// An HTTP status outside 2xx, from [`HttpResponse::error_for_status`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatusError {
    response: Box<HttpResponse>,
}

impl StatusError {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The response.
    pub fn response(&self) -> &HttpResponse {
        &self.response
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.response;
        write!(f, "{} {}: HTTP {}", r.method, r.url, r.status)?;
        if let Some(reason) = reason(r.status) {
            write!(f, " {}", reason)?;
        }
        let text = r.text();
        let text = text.trim();
        if !text.is_empty() {
            let mut chars = text.char_indices();
            match chars.nth(200) {
                Some((end, _)) => write!(f, ": {}...", &text[..end])?,
                None => write!(f, ": {}", text)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {}

/// The standard phrase of an HTTP status.
fn reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_of_a_minimal_request() {
        let req = HttpRequest::get("https://a.example.com/x");
        assert_eq!(
            req.to_wire().unwrap(),
            json!({ "method": "GET", "url": "https://a.example.com/x" })
        );
    }

    #[test]
    fn wire_with_everything() {
        let req = HttpRequest::new("patch", "https://a/x")
            .header("X-A", "1")
            .header("x-a", "2")
            .body("é")
            .timeout(Duration::from_micros(1500));
        assert_eq!(
            req.to_wire().unwrap(),
            json!({ "method": "PATCH", "url": "https://a/x", "headers": { "x-a": "2" }, "body": "é", "timeout_ms": 2 })
        );
        let bin = HttpRequest::post("u")
            .body(vec![0u8, 0xff])
            .timeout(Duration::from_secs(3));
        assert_eq!(
            bin.to_wire().unwrap(),
            json!({ "method": "POST", "url": "u", "body_base64": "AP8=", "timeout_ms": 3000 })
        );
    }

    #[test]
    fn json_bodies_set_the_content_type_unless_given() {
        let req = HttpRequest::post("u").json(&json!({ "a": [1] }));
        assert_eq!(
            req.to_wire().unwrap(),
            json!({ "method": "POST", "url": "u", "body": "{\"a\":[1]}", "headers": { "Content-Type": "application/json" } })
        );
        let req = HttpRequest::post("u")
            .header("content-type", "application/x+json")
            .json(&[1, 2]);
        assert_eq!(
            req.to_wire().unwrap()["headers"],
            json!({ "content-type": "application/x+json" })
        );
        // A later plain body replaces the JSON one, and its content type.
        let req = HttpRequest::post("u").json(&1).body("x");
        assert!(req.to_wire().unwrap().get("headers").is_none());
    }

    #[test]
    fn problems_surface_when_sent() {
        let e = HttpRequest::get("u")
            .timeout(Duration::ZERO)
            .to_wire()
            .unwrap_err();
        assert_eq!(e.to_string(), "GET u: the timeout must be positive");
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1);
        let e = HttpRequest::post("u").json(&bad).to_wire().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("POST u: cannot serialize the JSON body"),
            "{}",
            e
        );
        let e = HttpRequest::new(" ", "u").to_wire().unwrap_err();
        assert_eq!(e.to_string(), "HTTP request to u: the method is empty");
    }

    #[test]
    fn responses_from_the_wire() {
        let r = HttpResponse::from_wire(
            json!({ "status": 200, "headers": { "Content-Type": "application/json" }, "url": "u", "body": "{\"a\":1}" }),
            "GET".into(),
        )
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("nope"), None);
        assert_eq!(r.json::<Value>().unwrap(), json!({ "a": 1 }));
        assert_eq!(r.text(), "{\"a\":1}");
        let r = HttpResponse::from_wire(
            json!({ "status": 200, "headers": {}, "url": "u", "body": null, "body_base64": "/2hp" }),
            "GET".into(),
        )
        .unwrap();
        assert_eq!(r.bytes(), b"\xffhi");
        assert_eq!(r.text(), "\u{fffd}hi");
        for bad in [
            json!({ "status": "200" }),
            json!({ "status": 70000 }),
            json!({ "status": 200, "headers": { "a": 1 } }),
            json!({ "status": 200, "body": 1 }),
            json!({ "status": 200, "body": null, "body_base64": "!" }),
        ] {
            let e = HttpResponse::from_wire(bad.clone(), "GET".into()).unwrap_err();
            assert!(e.is::<HostError>(), "{}", bad);
        }
    }

    #[test]
    fn status_errors() {
        let ok = HttpResponse::new(204, "u", BTreeMap::new(), Vec::new());
        assert!(ok.is_success());
        assert!(ok.error_for_status().is_ok());
        let mut r = HttpResponse::new(
            404,
            "https://a/x",
            BTreeMap::new(),
            b"{\"error\": \"no job\"}".to_vec(),
        );
        r.method = "POST".into();
        let e = r.error_for_status().unwrap_err();
        assert_eq!(
            e.to_string(),
            "POST https://a/x: HTTP 404 Not Found: {\"error\": \"no job\"}"
        );
        assert_eq!(e.downcast_ref::<StatusError>().unwrap().status(), 404);
        let long = HttpResponse::new(599, "u", BTreeMap::new(), vec![b'x'; 500]);
        let msg = long.error_for_status().unwrap_err().to_string();
        assert_eq!(msg, format!("GET u: HTTP 599: {}...", "x".repeat(200)));
    }
}
