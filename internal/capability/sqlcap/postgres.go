package sqlcap

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL pool sizes, per connection of ork.yaml.
const (
	pgMaxOpen = 10
	pgMaxIdle = 4
)

// pgSimpleProtocol, as the first argument, has pgx run the SQL with the
// simple protocol, which takes a script of several statements.
const pgSimpleProtocol = pgx.QueryExecModeSimpleProtocol

// pgConfig parses the connection's DSN and gives it the password. Unless the
// DSN chooses otherwise, statements are described on every execution rather
// than cached (default_query_exec_mode): tasks run arbitrary SQL, possibly
// changing the schema, and a cached statement whose table changed fails; the
// server ends a statement that outlives the call by 10s (statement_timeout), a
// backstop for when ork cannot cancel it; and sessions are named "ork"
// (application_name).
func pgConfig(c Connection, timeout time.Duration) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(c.DSN)
	if err != nil {
		return nil, err
	}
	if c.Password != "" {
		cfg.Password = c.Password
	}
	if !strings.Contains(c.DSN, "default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	}
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok && timeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt((timeout + 10*time.Second).Milliseconds(), 10)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "ork"
	}
	return cfg, nil
}

// openPostgres makes the connection's pool; it connects when first used.
func openPostgres(c Connection, timeout time.Duration) (*sql.DB, error) {
	cfg, err := pgConfig(c, timeout)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxOpen)
	db.SetMaxIdleConns(pgMaxIdle)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}

// pgEndTransaction rolls back a transaction the call left open, which the
// server reports with every answer.
func pgEndTransaction(ctx context.Context, sc *sql.Conn) (bool, error) {
	left := false
	err := sc.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok || c.Conn().IsClosed() {
			return nil
		}
		pc := c.Conn().PgConn()
		if pc.TxStatus() == 'I' {
			return nil
		}
		left = true
		return pc.Exec(ctx, "ROLLBACK").Close()
	})
	return left, err
}

// pgTextParams sends numbers and booleans as text, as libpq does, for the
// server to read as whatever type the statement gives the parameter: 5 is
// then a fine value for an integer, numeric, real or text column, true for a
// boolean or a text one, where pgx's binary encodings would refuse any pair
// but the exact one. Bytes stay binary; strings are text already.
func pgTextParams(args []any) []any {
	for i, a := range args {
		switch v := a.(type) {
		case int64:
			args[i] = strconv.FormatInt(v, 10)
		case float64:
			args[i] = pgFloatText(v)
		case bool:
			args[i] = strconv.FormatBool(v)
		}
	}
	return args
}

// pgFloatText writes a float as PostgreSQL reads one, shortest exact form.
func pgFloatText(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// DSNPassword returns the password a PostgreSQL DSN holds (or that the
// PGPASSWORD variable supplies), or "" — for redaction.
func DSNPassword(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.Password
}
