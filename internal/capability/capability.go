// Package capability grants a task what ork.yaml allows its executor beyond
// the sandbox: outbound HTTP to listed hosts, secrets, and SQL connections.
// It serves the host ABI's capability operations (abi.Capabilities).
package capability

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/capability/httpcap"
	"github.com/orkrun/ork/internal/capability/sqlcap"
	"github.com/orkrun/ork/internal/project"
)

// Registry resolves a project's secrets and holds its database connections,
// shared by every task of a run. Close it when the run ends.
type Registry struct {
	proj *project.Project

	mu      sync.Mutex
	secrets map[string]string
	pool    *sqlcap.Pool
	poolErr error
	connErr map[string]error // connections that cannot be used: DSN, password or definition
	once    sync.Once
}

// NewRegistry returns a Registry for proj.
func NewRegistry(proj *project.Project) *Registry {
	return &Registry{proj: proj, secrets: map[string]string{}}
}

// Secret reads a defined secret (once) from where ork.yaml says.
func (r *Registry) Secret(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.secrets[name]; ok {
		return v, nil
	}
	s, ok := r.proj.Secrets[name]
	if !ok {
		return "", fmt.Errorf("secret %q is not defined under secrets: in ork.yaml", name)
	}
	var v string
	switch {
	case s.Env != "":
		val, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("secret %s: the environment variable %s is not set (ork.yaml secrets.%s.env); set it before ork run", name, s.Env, name)
		}
		v = val
	default:
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret %s: cannot read %s (ork.yaml secrets.%s.file): %v", name, s.File, name, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
	}
	r.secrets[name] = v
	return v, nil
}

// Values returns every secret value read so far (for redaction).
func (r *Registry) Values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.secrets))
	for _, v := range r.secrets {
		out = append(out, v)
	}
	return out
}

// RedactValues returns every value that must not leak from any task of the
// project: each secret ork.yaml defines that can be read (not only those
// granted to one executor: an executor may read another's secret from a
// shared table or file and print it), the values of the headers attached to
// every executor's allowed_hosts, and connection passwords. Secrets that
// cannot be read are skipped; a task cannot see them either.
func (r *Registry) RedactValues() []string {
	var out []string
	names := make([]string, 0, len(r.proj.Secrets))
	for n := range r.proj.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v, err := r.Secret(n); err == nil {
			out = append(out, v)
		}
	}
	lookup := func(n string) (string, error) {
		v, err := r.Secret(n)
		if err != nil {
			return "", nil
		}
		return v, nil
	}
	for _, ex := range r.proj.Executors {
		for _, g := range ex.Sandbox.AllowedHosts {
			for _, v := range g.Headers {
				if val, err := project.ExpandSecrets(v, lookup); err == nil {
					out = append(out, val)
				}
			}
		}
	}
	for _, c := range r.proj.Connections {
		if pw := r.dsnPassword(c); pw != "" {
			out = append(out, pw)
		}
	}
	return out
}

// dsnPassword returns the password written in a connection's DSN, if any
// (only a DSN read from the environment may hold one).
func (r *Registry) dsnPassword(c *project.Connection) string {
	if c.Type != project.ConnPostgres {
		return ""
	}
	dsn, err := connDSN(c)
	if err != nil || dsn == "" {
		return ""
	}
	return sqlcap.DSNPassword(dsn)
}

// connDSN returns a connection's DSN: as written in ork.yaml, or read from
// the environment variable dsn_env names.
func connDSN(c *project.Connection) (string, error) {
	if c.DSNEnv == "" {
		return c.DSN, nil
	}
	v, ok := os.LookupEnv(c.DSNEnv)
	if !ok || strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("connection %s: the environment variable %s is not set (ork.yaml connections.%s.dsn_env); set it to the PostgreSQL DSN, e.g. postgres://user:password@127.0.0.1:5432/db?sslmode=disable", c.Name, c.DSNEnv, c.Name)
	}
	return strings.TrimSpace(v), nil
}

func (r *Registry) sqlPool() (*sqlcap.Pool, error) {
	r.once.Do(func() {
		names := make([]string, 0, len(r.proj.Connections))
		for n := range r.proj.Connections {
			names = append(names, n)
		}
		sort.Strings(names)
		var conns []sqlcap.Connection
		// A connection that cannot be used fails only the tasks that use it.
		fail := func(n string, err error) {
			if r.connErr == nil {
				r.connErr = map[string]error{}
			}
			r.connErr[n] = err
		}
		for _, n := range names {
			c := r.proj.Connections[n]
			dsn, err := connDSN(c)
			if err != nil {
				fail(n, err)
				continue
			}
			sc := sqlcap.Connection{Name: n, Kind: sqlcap.Kind(c.Type), Path: c.Path, DSN: dsn, PasswordInDSN: c.DSNEnv != ""}
			if c.PasswordSecret != "" {
				pw, err := r.Secret(c.PasswordSecret)
				if err != nil {
					fail(n, fmt.Errorf("connection %s: %w", n, err))
					continue
				}
				sc.Password = pw
			}
			if err := sqlcap.Validate(sc); err != nil {
				// A malformed DSN (from the environment, say) must not take
				// the project's other connections down with it.
				fail(n, err)
				continue
			}
			conns = append(conns, sc)
		}
		r.pool, r.poolErr = sqlcap.NewPool(conns, sqlcap.Limits{})
	})
	return r.pool, r.poolErr
}

// Close closes the database connections.
func (r *Registry) Close() error {
	if r.pool != nil {
		return r.pool.Close()
	}
	return nil
}

// Set is what one executor's tasks may use.
type Set struct {
	reg      *Registry
	executor string
	http     *httpcap.Client
	secrets  map[string]bool
	conns    map[string]bool
}

var _ abi.Capabilities = (*Set)(nil)

// For builds the capability set of an executor, reading the secrets it needs
// now so that a missing one fails the run before any task starts.
func (r *Registry) For(ex *project.Executor) (*Set, error) {
	s := &Set{reg: r, executor: ex.Name, secrets: map[string]bool{}, conns: map[string]bool{}}
	for _, n := range ex.Sandbox.Secrets {
		if _, err := r.Secret(n); err != nil {
			return nil, fmt.Errorf("executor %s: %w", ex.Name, err)
		}
		s.secrets[n] = true
	}
	for _, n := range ex.Sandbox.Connections {
		s.conns[n] = true
	}
	if len(s.conns) > 0 {
		if _, err := r.sqlPool(); err != nil {
			return nil, fmt.Errorf("executor %s: %w", ex.Name, err)
		}
	}
	if len(ex.Sandbox.AllowedHosts) > 0 {
		var grants []httpcap.Grant
		for _, g := range ex.Sandbox.AllowedHosts {
			hdr := map[string]string{}
			for k, v := range g.Headers {
				val, err := project.ExpandSecrets(v, r.Secret)
				if err != nil {
					return nil, fmt.Errorf("executor %s: header %s of allowed host %s: %w", ex.Name, k, g.Pattern, err)
				}
				hdr[k] = val
			}
			grants = append(grants, httpcap.Grant{Pattern: g.Pattern, Headers: hdr})
		}
		c, err := httpcap.New(httpcap.Policy{Grants: grants, Key: sandboxKey(ex.Name, "allowed_hosts")})
		if err != nil {
			return nil, fmt.Errorf("executor %s: sandbox.allowed_hosts: %w", ex.Name, err)
		}
		s.http = c
	}
	return s, nil
}

// HTTP makes a request the executor's allowed_hosts permit.
func (s *Set) HTTP(ctx context.Context, req abi.HTTPRequest) (*abi.HTTPResponse, error) {
	if s.http == nil {
		return nil, fmt.Errorf("executor %q may not make HTTP requests (to %s); add the host to %s", s.executor, req.URL, sandboxKey(s.executor, "allowed_hosts"))
	}
	r := httpcap.Request{Method: req.Method, URL: req.URL, Headers: req.Headers, Timeout: time.Duration(req.TimeoutMS) * time.Millisecond}
	switch {
	case req.Body != nil && req.BodyBase64 != nil:
		return nil, fmt.Errorf("http.request: give body or body_base64, not both")
	case req.Body != nil:
		r.Body = []byte(*req.Body)
	case req.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*req.BodyBase64)
		if err != nil {
			return nil, fmt.Errorf("http.request: body_base64 is not valid base64: %v", err)
		}
		r.Body = b
	}
	resp, err := s.http.Do(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &abi.HTTPResponse{Status: resp.Status, Headers: resp.Headers, URL: resp.URL}
	if utf8.Valid(resp.Body) {
		t := string(resp.Body)
		out.Body = &t
	} else {
		b := base64.StdEncoding.EncodeToString(resp.Body)
		out.BodyBase64 = &b
	}
	return out, nil
}

// Secret returns a secret granted by sandbox.secrets.
func (s *Set) Secret(name string) (string, error) {
	if !s.secrets[name] {
		return "", fmt.Errorf("secret %q is not granted to executor %q; add it to %s", name, s.executor, sandboxKey(s.executor, "secrets"))
	}
	return s.reg.Secret(name)
}

func (s *Set) pool(conn string) (*sqlcap.Pool, error) {
	if !s.conns[conn] {
		return nil, fmt.Errorf("connection %q is not granted to executor %q; add it to %s", conn, s.executor, sandboxKey(s.executor, "connections"))
	}
	p, err := s.reg.sqlPool()
	if err != nil {
		return nil, err
	}
	if err := s.reg.connErr[conn]; err != nil {
		return nil, err
	}
	return p, nil
}

// SQLExecute runs a statement on a granted connection.
func (s *Set) SQLExecute(ctx context.Context, req abi.SQLRequest) (*abi.SQLExecuteResult, error) {
	p, err := s.pool(req.Connection)
	if err != nil {
		return nil, err
	}
	n, err := p.Execute(ctx, req.Connection, req.SQL, req.Params)
	if err != nil {
		return nil, err
	}
	return &abi.SQLExecuteResult{RowsAffected: n}, nil
}

// SQLQuery runs a query on a granted connection.
func (s *Set) SQLQuery(ctx context.Context, req abi.SQLRequest) (*abi.SQLQueryResult, error) {
	p, err := s.pool(req.Connection)
	if err != nil {
		return nil, err
	}
	res, err := p.Query(ctx, req.Connection, req.SQL, req.Params)
	if err != nil {
		return nil, err
	}
	rows := res.Rows
	if rows == nil {
		rows = [][]any{}
	}
	return &abi.SQLQueryResult{Columns: res.Columns, Rows: rows}, nil
}

// sandboxKey names an executor's sandbox key in ork.yaml, for messages:
// "executors.fetch.sandbox.allowed_hosts in ork.yaml".
func sandboxKey(executor, key string) string {
	return "executors." + executor + ".sandbox." + key + " in ork.yaml"
}
