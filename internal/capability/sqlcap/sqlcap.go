// Package sqlcap runs SQL on a task's behalf against the database connections
// that ork.yaml defines: SQLite files and PostgreSQL servers.
//
// A task never holds a database connection: it sends the host a statement and
// its parameters, and the host runs it here, under a time limit and with caps
// on the size of what it reads back, and answers with the rows as JSON values.
// Which task may use which connection is the caller's decision; a Pool knows
// only the connections that are defined, and opens each one lazily, once, as a
// *sql.DB shared by every task that uses it.
//
// Each call is a unit of its own, run on one connection of the pool: the SQL
// may be several statements (an Execute without parameters), and may begin
// and commit a transaction, but a transaction it leaves open is rolled back
// and reported as an error, never carried over to the next call.
package sqlcap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kind is the kind of database a connection reaches.
type Kind string

// The kinds of connection.
const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// Connection is one database connection defined in ork.yaml.
type Connection struct {
	Name string
	Kind Kind
	// Path is a SQLite database's absolute file path; the file (and its
	// directory) is created if missing. ":memory:" is not allowed: each
	// connection of the pool would see a database of its own.
	Path string
	// DSN is a PostgreSQL connection string, as a URL
	// ("postgres://ork@127.0.0.1:5432/warehouse?sslmode=disable") or as
	// keyword=value pairs, without the password.
	DSN string
	// Password is PostgreSQL's password, from a secret the host resolved. It
	// is never part of an error: anything that would echo it is redacted.
	Password string
	// PasswordInDSN allows the DSN to carry the password (a DSN read from
	// the environment rather than written in ork.yaml); it is redacted like
	// Password. Password, when set too, wins.
	PasswordInDSN bool
}

// secret returns the password to redact from the connection's errors.
func (c Connection) secret() string {
	if c.Password == "" && c.PasswordInDSN {
		return DSNPassword(c.DSN)
	}
	return c.Password
}

// Limits bound every statement. A zero field takes its default.
type Limits struct {
	// Timeout bounds one call, from taking a connection to reading the last
	// row (default 60s).
	Timeout time.Duration
	// MaxRows is the most rows a query may return (default 100,000).
	MaxRows int
	// MaxResultBytes is the most a query's result may weigh, measured as
	// the size of its JSON encoding (default 64 MiB).
	MaxResultBytes int64
}

// The default limits.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultMaxRows        = 100_000
	DefaultMaxResultBytes = 64 << 20
)

// Result is what a query read: the names of its columns and its rows, each a
// slice of JSON-compatible values (int64, float64, string, bool, nil, or
// map[string]string{"base64": ...} for bytes that are not UTF-8 text).
type Result struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Pool holds the defined connections and the databases opened so far. It is
// safe for concurrent use.
type Pool struct {
	limits Limits
	conns  map[string]*dbConn

	mu     sync.Mutex
	closed bool
}

// dbConn is one defined connection and, once used, its database.
type dbConn struct {
	def    Connection
	redact *strings.Replacer // nil when there is nothing to hide

	mu sync.Mutex
	db *sql.DB // nil until first used
}

// NewPool checks the connections and the limits. It opens nothing: each
// database is opened when a statement first uses it.
func NewPool(conns []Connection, l Limits) (*Pool, error) {
	var errs []error
	switch {
	case l.Timeout < 0:
		errs = append(errs, fmt.Errorf("the SQL timeout must not be negative (it is %v)", l.Timeout))
	case l.Timeout == 0:
		l.Timeout = DefaultTimeout
	}
	switch {
	case l.MaxRows < 0:
		errs = append(errs, fmt.Errorf("the SQL row limit must not be negative (it is %d)", l.MaxRows))
	case l.MaxRows == 0:
		l.MaxRows = DefaultMaxRows
	}
	switch {
	case l.MaxResultBytes < 0:
		errs = append(errs, fmt.Errorf("the SQL result size limit must not be negative (it is %d)", l.MaxResultBytes))
	case l.MaxResultBytes == 0:
		l.MaxResultBytes = DefaultMaxResultBytes
	}
	p := &Pool{limits: l, conns: make(map[string]*dbConn, len(conns))}
	for _, c := range conns {
		if err := Validate(c); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := p.conns[c.Name]; dup {
			errs = append(errs, fmt.Errorf("connection %q is defined twice", c.Name))
			continue
		}
		p.conns[c.Name] = &dbConn{def: c, redact: redactor(c.secret())}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks one connection's definition without opening it.
func Validate(c Connection) error {
	if c.Name == "" {
		return errors.New("a connection has no name")
	}
	switch c.Kind {
	case SQLite:
		switch {
		case c.DSN != "" || c.Password != "":
			return fmt.Errorf("connection %q: a sqlite connection has a path, not a DSN or a password", c.Name)
		case c.Path == "":
			return fmt.Errorf("connection %q: a sqlite connection needs the path of its database file", c.Name)
		case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:"):
			return fmt.Errorf("connection %q: the path %q is not a file path: a sqlite connection needs a database file", c.Name, c.Path)
		case !filepath.IsAbs(c.Path):
			return fmt.Errorf("connection %q: the sqlite path %q is not absolute", c.Name, c.Path)
		}
	case Postgres:
		switch {
		case c.Path != "":
			return fmt.Errorf("connection %q: a postgres connection has a DSN, not a path", c.Name)
		case c.DSN == "":
			return fmt.Errorf("connection %q: a postgres connection needs a DSN", c.Name)
		case !c.PasswordInDSN && dsnHasPassword(c.DSN):
			return fmt.Errorf("connection %q: the DSN must not contain the password; give it as the connection's password secret", c.Name)
		}
		if _, err := pgConfig(c, 0); err != nil {
			return fmt.Errorf("connection %q: %s", c.Name, redact(redactor(c.secret()), err.Error()))
		}
	case "":
		return fmt.Errorf("connection %q has no kind (sqlite or postgres)", c.Name)
	default:
		return fmt.Errorf("connection %q: unknown kind %q (sqlite or postgres)", c.Name, c.Kind)
	}
	return nil
}

var keywordPassword = regexp.MustCompile(`(^|\s)password\s*=`)

// dsnHasPassword tells whether a PostgreSQL connection string carries a
// password, in a URL's user information or query, or as a keyword. A URL is
// read by hand: one with several hosts (postgres://u:p@h1,h2/db) is not one
// that net/url parses.
func dsnHasPassword(dsn string) bool {
	scheme, rest, isURL := strings.Cut(dsn, "://")
	if !isURL || (scheme != "postgres" && scheme != "postgresql") {
		return keywordPassword.MatchString(dsn)
	}
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if _, q, ok := strings.Cut(rest, "?"); ok {
		query, _, _ = strings.Cut(q, "#")
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 && strings.Contains(authority[:i], ":") {
		return true
	}
	if values, err := url.ParseQuery(query); err == nil {
		return values.Has("password")
	}
	return strings.Contains(query, "password=")
}

// Connections returns the names of the defined connections, sorted.
func (p *Pool) Connections() []string {
	return slices.Sorted(maps.Keys(p.conns))
}

// Limits returns the limits in force, defaults filled in.
func (p *Pool) Limits() Limits { return p.limits }

// Execute runs SQL that returns no rows (or whose rows are not wanted) on the
// named connection, binding params to its placeholders ($1, $2... for
// PostgreSQL, ? or ?NNN for SQLite), and returns the number of rows it
// changed. Without params, the SQL may be a script of several statements.
func (p *Pool) Execute(ctx context.Context, conn string, query string, params []any) (rowsAffected int64, err error) {
	err = p.run(ctx, conn, query, params, func(ctx context.Context, c *dbConn, sc *sql.Conn, args []any, _ context.CancelFunc) error {
		if len(args) == 0 && c.def.Kind == Postgres {
			// The simple protocol runs a script of several statements,
			// which a prepared statement cannot be.
			args = []any{pgSimpleProtocol}
		}
		if len(args) == 0 && c.def.Kind == SQLite && plainVacuum.MatchString(query) {
			return sqliteVacuum(ctx, sc, query)
		}
		res, err := sc.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		rowsAffected, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return rowsAffected, nil
}

// Query runs SQL that returns rows on the named connection, binding params
// to its placeholders, and returns them all, or fails with a too_large Error
// as soon as they pass Limits.MaxRows or Limits.MaxResultBytes.
func (p *Pool) Query(ctx context.Context, conn string, query string, params []any) (*Result, error) {
	var res *Result
	err := p.run(ctx, conn, query, params, func(ctx context.Context, c *dbConn, sc *sql.Conn, args []any, cancel context.CancelFunc) error {
		rows, err := sc.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		r, err := p.read(c, rows)
		if err != nil {
			// Stop the statement rather than read what is left of its
			// rows: closing PostgreSQL rows drains them otherwise.
			cancel()
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		res = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// read reads the rows into a Result, within the caps.
func (p *Pool) read(c *dbConn, rows *sql.Rows) (*Result, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: make([]string, len(types)), Rows: [][]any{}}
	dbTypes := make([]string, len(types))
	size := int64(len(`{"columns":[],"rows":[]}`))
	for i, t := range types {
		res.Columns[i] = t.Name()
		dbTypes[i] = strings.ToUpper(t.DatabaseTypeName())
		size += jsonStringSize(t.Name()) + 1
	}
	raw := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if len(res.Rows) == p.limits.MaxRows {
			return nil, c.tooLarge(fmt.Sprintf("the result has more than %d rows (the limit)", p.limits.MaxRows))
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]any, len(raw))
		size += 3 // [] and the comma after it
		for i, v := range raw {
			row[i] = jsonValue(v, dbTypes[i])
			size += jsonSize(row[i]) + 1
		}
		if size > p.limits.MaxResultBytes {
			return nil, c.tooLarge(fmt.Sprintf("the result is larger than %s (the limit)", formatBytes(p.limits.MaxResultBytes)))
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// errStatementTimeout is the cause of a context that Limits.Timeout ended.
var errStatementTimeout = errors.New("statement timeout")

// run runs f on a connection of the named database taken from its pool for
// the call, with the bound parameters and the time limit, then makes sure no
// transaction is left open on it, and turns any error into an *Error.
func (p *Pool) run(ctx context.Context, name, query string, params []any,
	f func(ctx context.Context, c *dbConn, sc *sql.Conn, args []any, cancel context.CancelFunc) error) error {
	c, ok := p.conns[name]
	if !ok {
		return &Error{Kind: ErrUnknownConnection, Connection: name,
			Msg: fmt.Sprintf("connection %q is not defined in ork.yaml connections", name)}
	}
	args, err := bindParams(params)
	if err != nil {
		return &Error{Kind: ErrDatabase, Connection: name, Msg: fmt.Sprintf("%s: %v", c.def.Kind, err)}
	}
	if c.def.Kind == Postgres {
		args = pgTextParams(args)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, p.limits.Timeout, errStatementTimeout)
	defer cancel()

	db, err := p.open(ctx, c)
	if err != nil {
		return c.wrap(ctx, p.limits.Timeout, err)
	}
	sc, err := db.Conn(ctx)
	if err != nil {
		return c.wrap(ctx, p.limits.Timeout, err)
	}
	defer sc.Close()
	err = f(ctx, c, sc, args, cancel)
	if err != nil && c.def.Kind == SQLite {
		err = sqliteAuthHint(err, query)
	}
	left, rerr := c.endTransaction(sc)
	switch {
	case err != nil:
		return c.wrap(ctx, p.limits.Timeout, err)
	case rerr != nil:
		return c.wrap(ctx, p.limits.Timeout, rerr)
	case left:
		return &Error{Kind: ErrDatabase, Connection: name,
			Msg: fmt.Sprintf("%s: the SQL left a transaction open, and it was rolled back: a transaction must begin and end (COMMIT) within one call", c.def.Kind)}
	}
	return nil
}

// open returns the connection's database, opening it on first use.
func (p *Pool) open(ctx context.Context, c *dbConn) (*sql.DB, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errPoolClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db != nil {
		return c.db, nil
	}
	var (
		db  *sql.DB
		err error
	)
	switch c.def.Kind {
	case SQLite:
		db, err = openSQLite(ctx, c.def.Path, p.limits.Timeout)
	case Postgres:
		db, err = openPostgres(c.def, p.limits.Timeout)
	default:
		err = fmt.Errorf("unknown kind %q", c.def.Kind)
	}
	if err != nil {
		return nil, err
	}
	// Close may have run meanwhile; it holds c.mu to close c.db.
	p.mu.Lock()
	closed = p.closed
	p.mu.Unlock()
	if closed {
		db.Close()
		return nil, errPoolClosed
	}
	c.db = db
	return db, nil
}

var errPoolClosed = errors.New("the SQL connection pool is closed")

// endTransaction rolls back a transaction that the call left open on sc, and
// tells whether there was one.
func (c *dbConn) endTransaction(sc *sql.Conn) (bool, error) {
	// The call's context may be over; the rollback gets a few seconds of
	// its own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch c.def.Kind {
	case SQLite:
		return sqliteEndTransaction(ctx, sc)
	case Postgres:
		return pgEndTransaction(ctx, sc)
	}
	return false, nil
}

// Close closes every database opened. Calls made after it fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	var errs []error
	for _, c := range p.conns {
		c.mu.Lock()
		if c.db != nil {
			if err := c.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing connection %q: %s", c.def.Name, redact(c.redact, err.Error())))
			}
			c.db = nil
		}
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}
