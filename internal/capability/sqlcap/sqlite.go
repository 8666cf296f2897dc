package sqlcap

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite pool sizes: readers run side by side in WAL mode, writers take
// turns (busy_timeout).
const (
	sqliteMaxOpen = 8
	sqliteMaxIdle = 4
)

// sqliteDSN makes the driver's data source name: a SQLite URI whose _pragma
// parameters the driver applies to every connection it opens. busy_timeout
// comes first so that the others (journal_mode needs a lock) wait for a busy
// database rather than failing; WAL lets readers and a writer, of this
// process or another, work at once; synchronous=FULL makes a statement's
// writes durable when it returns, as a task that succeeded expects.
func sqliteDSN(abs string, busy time.Duration) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume: file:/C:/...
	}
	// A URI path is percent-decoded by SQLite, and ends at ? or #.
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	q := []string{
		"_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_pragma=foreign_keys(ON)",
	}
	return "file:" + p + "?" + strings.Join(q, "&")
}

// sqliteConnector opens connections that may use only their own database
// file: an authorizer denies ATTACH, and so VACUUM INTO, which attaches the
// file it writes, so that SQL cannot read or write any other file the host
// can reach. (SQLite shows the authorizer no file name for an ATTACH whose
// file is an expression rather than a literal, so it refuses them all.) A
// plain VACUUM, which attaches a temporary database, runs with the ATTACH
// allowed: see sqliteVacuum.
type sqliteConnector struct{ driver.Connector }

func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ar, ok := dc.(sqlite.AuthorizerRegisterer)
	if !ok {
		dc.Close()
		return nil, errors.New("the sqlite driver has no authorizer")
	}
	if err := ar.RegisterAuthorizer(sqliteAuthorize); err != nil {
		dc.Close()
		return nil, err
	}
	return dc, nil
}

func sqliteAuthorize(action sqlite.AuthorizerActionCode, _, _, _, _ string) sqlite.AuthorizerReturnCode {
	if action == sqlite.AuthAttach {
		return sqlite.AuthorizerDeny
	}
	return sqlite.AuthorizerOK
}

func sqliteAllow(sqlite.AuthorizerActionCode, string, string, string, string) sqlite.AuthorizerReturnCode {
	return sqlite.AuthorizerOK
}

// plainVacuum matches a VACUUM of the main database, which names no file.
var plainVacuum = regexp.MustCompile(`(?i)^\s*vacuum(\s+(main|"main"))?\s*;?\s*$`)

// sqliteVacuum runs a plain VACUUM, with the ATTACH of its temporary
// database allowed for that statement only; a connection whose authorizer
// could not be put back is closed rather than returned to the pool.
func sqliteVacuum(ctx context.Context, sc *sql.Conn, query string) error {
	return sc.Raw(func(dc any) error {
		ar, ok1 := dc.(sqlite.AuthorizerRegisterer)
		ex, ok2 := dc.(driver.ExecerContext)
		if !ok1 || !ok2 {
			return errors.New("the sqlite driver has no authorizer")
		}
		if err := ar.RegisterAuthorizer(sqliteAllow); err != nil {
			return err
		}
		_, err := ex.ExecContext(ctx, query, nil)
		if rerr := ar.RegisterAuthorizer(sqliteAuthorize); rerr != nil {
			return driver.ErrBadConn
		}
		return err
	})
}

var attachOrVacuum = regexp.MustCompile(`(?i)\b(attach|vacuum)\b`)

// sqliteAuthHint explains the authorizer's refusal of an ATTACH or a VACUUM
// INTO, which SQLite reports only as "not authorized".
func sqliteAuthHint(err error, query string) error {
	if !isSQLiteCode(err, sqlite3.SQLITE_AUTH) || !attachOrVacuum.MatchString(query) {
		return err
	}
	return &hintError{err: err, hint: "ATTACH and VACUUM INTO are not allowed: SQL may use only its connection's own database"}
}

// hintError adds a hint to the database's message.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// openSQLite opens the database file at path, creating it and its directory
// if need be, and makes its first connection.
func openSQLite(ctx context.Context, path string, timeout time.Duration) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a database file", path)
	}
	base, err := sqlite.NewConnector(sqliteDSN(path, timeout))
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(sqliteConnector{base})
	db.SetMaxOpenConns(sqliteMaxOpen)
	db.SetMaxIdleConns(sqliteMaxIdle)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqliteConnect(ctx, db); err != nil {
		db.Close()
		if isSQLiteCode(err, sqlite3.SQLITE_NOTADB) {
			return nil, fmt.Errorf("%s is not a SQLite database file", path)
		}
		return nil, err
	}
	return db, nil
}

// sqliteConnect makes the first connection, retrying while the database is
// busy. The first connection to a new database turns it to WAL mode, which
// writes the file's header in a read transaction upgraded to a write one; an
// upgrade that meets another connection's lock (another process opening the
// same new file) fails at once with SQLITE_BUSY instead of waiting. Once one
// succeeds the file is in WAL mode for good, so trying again is enough.
func sqliteConnect(ctx context.Context, db *sql.DB) error {
	delay := time.Millisecond
	for {
		err := db.PingContext(ctx)
		if err == nil || !isSQLiteCode(err, sqlite3.SQLITE_BUSY) {
			return err
		}
		t := time.NewTimer(delay + rand.N(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func isSQLiteCode(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == code
}

// sqliteEndTransaction rolls back what the call left open. SQLite tells
// whether a transaction is open only through the C API, so this just tries:
// with none open, ROLLBACK fails and changes nothing.
func sqliteEndTransaction(ctx context.Context, sc *sql.Conn) (bool, error) {
	_, err := sc.ExecContext(ctx, "ROLLBACK")
	if err == nil {
		return true, nil
	}
	if strings.Contains(err.Error(), "no transaction is active") {
		return false, nil
	}
	return false, err
}
