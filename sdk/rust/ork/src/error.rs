//! [`Error`], the one error type of task and executor code.

use std::error::Error as StdError;
use std::fmt;

/// `Result<T, ork::Error>`, the return type of task functions and executor
/// methods.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from task or executor code: a message plus the chain of errors
/// that caused it.
///
/// Like `anyhow::Error`, any `std::error::Error + Send + Sync + 'static`
/// converts into it, so `?` works on I/O, serde and most library errors:
///
/// ```
/// fn read(path: &str) -> ork::Result<String> {
///     let text = std::fs::read_to_string(path)?;
///     if text.is_empty() {
///         ork::bail!("{} is empty", path);
///     }
///     Ok(text)
/// }
/// assert!(read("/no/such/file").is_err());
/// ```
///
/// `Display` shows the message followed by each cause, separated by `: `
/// (`loading rows: No such file or directory (os error 2)`); that text becomes
/// the task's failure message. `Debug` lists the causes on separate lines.
pub struct Error {
    inner: Box<dyn StdError + Send + Sync + 'static>,
}

impl Error {
    /// An error with the given message and no cause.
    pub fn msg<M: fmt::Display>(message: M) -> Self {
        Error {
            inner: Box::new(Message(message.to_string())),
        }
    }

    /// Wraps a standard error, keeping it as the cause chain.
    pub fn new<E: StdError + Send + Sync + 'static>(error: E) -> Self {
        Error {
            inner: Box::new(error),
        }
    }

    /// Adds an outer message, keeping `self` as its cause:
    /// `err.context("loading rows")` displays as `loading rows: <err>`.
    pub fn context<M: fmt::Display>(self, message: M) -> Self {
        Error {
            inner: Box::new(Context {
                message: message.to_string(),
                source: self.inner,
            }),
        }
    }

    /// The errors of the chain, outermost first, starting with this error's
    /// own.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            next: Some(&*self.inner),
        }
    }

    /// The innermost cause (this error itself if it has none).
    pub fn root_cause(&self) -> &(dyn StdError + 'static) {
        self.chain().last().expect("a chain has at least one error")
    }

    /// The first error of type `E` in the chain (this error's own first,
    /// then its causes), if any:
    ///
    /// ```
    /// # fn demo(ctx: &ork::Context) {
    /// match ctx.secret("API_TOKEN") {
    ///     Ok(token) => println!("{} bytes", token.len()),
    ///     Err(e) => match e.downcast_ref::<ork::HostError>() {
    ///         Some(refused) => eprintln!("{} refused: {}", refused.op(), refused.message()),
    ///         None => eprintln!("{}", e),
    ///     },
    /// }
    /// # }
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.chain().find_map(|e| e.downcast_ref::<E>())
    }

    /// Whether the chain holds an error of type `E` (see
    /// [`downcast_ref`](Error::downcast_ref)).
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }
}

/// The ork host refused an operation: a capability that ork.yaml does not
/// grant (the message names the host, secret or connection and the ork.yaml
/// key to change), a request the host could not complete (a timeout, a
/// refused address, a body too large), an error of the database, or an
/// invalid metric.
///
/// It reaches task code inside an [`Error`]; find it with
/// [`Error::downcast_ref`]. It displays as the host's message alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    op: String,
    message: String,
}

impl HostError {
    /// An error of operation `op` with the host's `message`.
    pub fn new<O: Into<String>, M: Into<String>>(op: O, message: M) -> Self {
        HostError {
            op: op.into(),
            message: message.into(),
        }
    }

    /// The operation the host refused: `http.request`, `secret.get`,
    /// `sql.execute`, `sql.query`, `metrics.record`, …
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The host's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for HostError {}

impl<E: StdError + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error::new(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in self.chain() {
            if !first {
                f.write_str(": ")?;
            }
            first = false;
            write!(f, "{}", e)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)?;
        let causes: Vec<_> = self.chain().skip(1).collect();
        if !causes.is_empty() {
            f.write_str("\n\nCaused by:")?;
            for (i, e) in causes.iter().enumerate() {
                write!(f, "\n    {}: {}", i, e)?;
            }
        }
        Ok(())
    }
}

/// An iterator over an [`Error`]'s chain of causes; see [`Error::chain`].
pub struct Chain<'a> {
    next: Option<&'a (dyn StdError + 'static)>,
}

impl<'a> Iterator for Chain<'a> {
    type Item = &'a (dyn StdError + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let cur = self.next?;
        self.next = cur.source();
        Some(cur)
    }
}

/// A plain message without a cause.
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for Message {}

/// A message added by [`Error::context`] around a cause.
struct Context {
    message: String,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Returns early from a task or executor with an [`Error`] built like
/// `format!`: `ork::bail!("table {} not found", name)`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)+) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)+)))
    };
}

/// Returns early with an [`Error`] unless the condition holds:
/// `ork::ensure!(rows > 0, "no rows in {}", table)`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::bail!($($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::from(io).context("loading rows").context("task load");
        assert_eq!(e.to_string(), "task load: loading rows: gone");
        assert_eq!(e.root_cause().to_string(), "gone");
        assert_eq!(
            format!("{:?}", e),
            "task load\n\nCaused by:\n    0: loading rows\n    1: gone"
        );
        assert_eq!(format!("{:?}", Error::msg("plain")), "plain");
    }

    #[test]
    fn downcast_finds_errors_in_the_chain() {
        let e =
            Error::new(HostError::new("secret.get", "not granted")).context("reading the token");
        assert_eq!(e.to_string(), "reading the token: not granted");
        let host = e.downcast_ref::<HostError>().unwrap();
        assert_eq!((host.op(), host.message()), ("secret.get", "not granted"));
        assert!(e.is::<HostError>());
        assert!(!e.is::<std::io::Error>());
        assert!(!Error::msg("plain").is::<HostError>());
    }

    #[test]
    fn question_mark_and_macros() {
        fn parse(s: &str) -> Result<i64> {
            let n: i64 = s.parse()?;
            ensure!(n >= 0, "{} is negative", n);
            if n > 100 {
                bail!("{} is too large", n);
            }
            Ok(n)
        }
        assert_eq!(parse("7").unwrap(), 7);
        assert_eq!(
            parse("x").unwrap_err().to_string(),
            "invalid digit found in string"
        );
        assert_eq!(parse("-1").unwrap_err().to_string(), "-1 is negative");
        assert_eq!(parse("101").unwrap_err().to_string(), "101 is too large");
    }
}
