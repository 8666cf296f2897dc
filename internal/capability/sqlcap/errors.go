package sqlcap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// ErrorKind tells what went wrong with a statement.
type ErrorKind string

// The kinds of Error.
const (
	// ErrUnknownConnection: no connection of that name is defined.
	ErrUnknownConnection ErrorKind = "unknown_connection"
	// ErrTimeout: the statement did not finish within Limits.Timeout, or
	// the caller's context ended first (then the Error unwraps to
	// context.Canceled or context.DeadlineExceeded).
	ErrTimeout ErrorKind = "timeout"
	// ErrTooLarge: the result passed Limits.MaxRows or MaxResultBytes.
	ErrTooLarge ErrorKind = "too_large"
	// ErrDatabase: the database refused the statement or could not be
	// reached; Msg carries its own message.
	ErrDatabase ErrorKind = "database"
)

// Error is the error of every Execute and Query. Msg is meant for the task's
// author: the database's own message, prefixed with the kind of database
// ("sqlite: no such table: users"), and never containing the password.
type Error struct {
	Kind       ErrorKind `json:"kind"`
	Connection string    `json:"connection"`
	Msg        string    `json:"message"`

	cause error // only a context's error, for errors.Is
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns context.Canceled or context.DeadlineExceeded when the
// caller's context ended the statement, and nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// tooLarge makes a too_large Error.
func (c *dbConn) tooLarge(what string) *Error {
	return &Error{Kind: ErrTooLarge, Connection: c.def.Name,
		Msg: fmt.Sprintf("%s: %s; select fewer rows or columns (LIMIT), or aggregate in SQL", c.def.Kind, what)}
}

// wrap turns an error of a call whose context is ctx into an *Error.
func (c *dbConn) wrap(ctx context.Context, timeout time.Duration, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	prefix := string(c.def.Kind) + ": "
	if ctx.Err() != nil {
		// Whatever the driver said (interrupted, canceling statement due
		// to user request, a closed connection), the context ended it.
		if cause := context.Cause(ctx); cause == errStatementTimeout {
			return &Error{Kind: ErrTimeout, Connection: c.def.Name,
				Msg: fmt.Sprintf("%sthe statement did not finish within %s (the SQL time limit)", prefix, formatDuration(timeout))}
		}
		why := "cancelled"
		if ctx.Err() == context.DeadlineExceeded {
			why = "the task's deadline passed"
		}
		return &Error{Kind: ErrTimeout, Connection: c.def.Name, cause: ctx.Err(),
			Msg: fmt.Sprintf("%sthe statement was stopped: %s", prefix, why)}
	}
	if err == errPoolClosed {
		return &Error{Kind: ErrDatabase, Connection: c.def.Name, Msg: prefix + err.Error()}
	}
	return &Error{Kind: ErrDatabase, Connection: c.def.Name, Msg: redact(c.redact, prefix+dbMessage(err))}
}

// formatDuration writes 60s rather than 1m0s, and 300ms as is.
func formatDuration(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// dbMessage is the database's own message in err.
func dbMessage(err error) string {
	var he *hintError
	if errors.As(err, &he) {
		return dbMessage(he.err) + " (" + he.hint + ")"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return sqliteMessage(se)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// Which server and user, and what it said:
		// failed to connect to `user=ork database=wh`: 127.0.0.1:5432
		// (127.0.0.1): failed SASL auth: FATAL: password authentication
		// failed for user "ork" (SQLSTATE 28P01)
		return ce.Error()
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgMessage(pe)
	}
	return err.Error()
}

// sqliteCodeSuffix ends the driver's messages: " (1)", " (5) (SQLITE_BUSY)".
var sqliteCodeSuffix = regexp.MustCompile(`( \(\d+\))+( \(SQLITE_[A-Z]+\))?$`)

// sqliteMessage is SQLite's message (sqlite3_errmsg) for an error: the
// driver's error reads "<what the code means>: <message> (<code>)", as in
// "SQL logic error: no such table: users (1)", and sqlite3_errstr's texts
// hold no ": ".
func sqliteMessage(se *sqlite.Error) string {
	msg := sqliteCodeSuffix.ReplaceAllString(se.Error(), "")
	if _, after, ok := strings.Cut(msg, ": "); ok && after != "" {
		msg = after
	}
	return msg
}

// pgMessage reads as psql prints an error, less the severity:
// relation "users" does not exist (SQLSTATE 42P01).
func pgMessage(pe *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString(pe.Message)
	if pe.Code != "" {
		fmt.Fprintf(&b, " (SQLSTATE %s)", pe.Code)
	}
	if pe.Detail != "" {
		b.WriteString(" DETAIL: " + pe.Detail)
	}
	if pe.Hint != "" {
		b.WriteString(" HINT: " + pe.Hint)
	}
	return b.String()
}

// redactor replaces a password, as written and as escaped in a URL, or is
// nil for no password.
func redactor(password string) *strings.Replacer {
	if password == "" {
		return nil
	}
	forms := []string{password}
	for _, f := range []string{url.QueryEscape(password), url.PathEscape(password), url.UserPassword("", password).String()[1:]} {
		if f != password && f != "" {
			forms = append(forms, f)
		}
	}
	var pairs []string
	for _, f := range forms {
		pairs = append(pairs, f, "[redacted]")
	}
	return strings.NewReplacer(pairs...)
}

func redact(r *strings.Replacer, s string) string {
	if r == nil {
		return s
	}
	return r.Replace(s)
}
