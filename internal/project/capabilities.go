package project

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/orkrun/ork/internal/capability/httpcap"
)

// Secret is one entry of ork.yaml's `secrets:`: where the host reads it.
type Secret struct {
	Name string
	Env  string // read from this environment variable of the ork process, or
	File string // from this file (absolute; relative paths are relative to the project root)
	Pos  Pos
}

// Connection is one entry of ork.yaml's `connections:`.
type Connection struct {
	Name           string
	Type           string // ConnSQLite or ConnPostgres
	Path           string // sqlite: absolute database file
	DSN            string // postgres: the DSN, without its password, or
	DSNEnv         string // postgres: the environment variable holding the DSN (read at run time; it may hold the password)
	PasswordSecret string // postgres: the secret holding the password
	Pos            Pos
}

// Connection types.
const (
	ConnSQLite   = "sqlite"
	ConnPostgres = "postgres"
)

// HostGrant is one entry of an executor's sandbox.allowed_hosts.
type HostGrant struct {
	Pattern string            // host with an optional :port; "*.example.com" for subdomains
	Headers map[string]string // added by the host; values may use {{ secret.NAME }}
}

var (
	secretKeys     = []string{"env", "file"}
	connectionKeys = []string{"type", "path", "dsn", "dsn_env", "password_secret"}
	grantKeys      = []string{"host", "headers"}
	dsnPassword    = regexp.MustCompile(`://[^/@]*:[^/@]*@`) // user:password@ in a URL
	secretRef      = regexp.MustCompile(`\{\{\s*secret\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
)

// SecretRefs returns the secret names a header template uses.
func SecretRefs(template string) []string {
	var out []string
	for _, m := range secretRef.FindAllStringSubmatch(template, -1) {
		out = append(out, m[1])
	}
	return out
}

// ExpandSecrets replaces {{ secret.NAME }} in template with lookup(NAME).
func ExpandSecrets(template string, lookup func(string) (string, error)) (string, error) {
	var firstErr error
	out := secretRef.ReplaceAllStringFunc(template, func(m string) string {
		name := secretRef.FindStringSubmatch(m)[1]
		v, err := lookup(name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	return out, firstErr
}

func (p *Project) decodeSecrets(d *fileDecoder, n *yaml.Node) {
	if !d.mapping(n, "secrets in ork.yaml", "a mapping of secret names to {env: VAR} or {file: path}", true) {
		return
	}
	for _, e := range d.pairs(n, "secret", "in secrets") {
		what := fmt.Sprintf("secret %q", e.Name)
		if !identRe.MatchString(e.Name) {
			d.errorf(e.Key, "invalid secret name %q; use letters, digits and \"_\", not starting with a digit", e.Name)
			continue
		}
		if !d.mapping(e.Value, what, "a mapping with env: VAR or file: path", false) {
			continue
		}
		s := &Secret{Name: e.Name, Pos: d.pos(e.Key)}
		kvs, covered := d.fields(e.Value, "in "+what, secretKeys)
		for _, f := range kvs {
			v, ok := d.str(f.Value, f.Name+" of "+what, "give an environment variable name or a file path")
			if !ok {
				continue
			}
			switch f.Name {
			case "env":
				if !identRe.MatchString(v) {
					d.errorf(f.Value, "invalid environment variable name %q for %s", v, what)
					continue
				}
				s.Env = v
			case "file":
				if !filepath.IsAbs(v) {
					v = filepath.Join(p.Root, v)
				}
				s.File = filepath.Clean(v)
			}
		}
		switch {
		case covered["env"] && covered["file"]:
			d.errorf(e.Key, "%s sets both env and file; keep one of them", what)
		case !covered["env"] && !covered["file"]:
			d.errorf(e.Key, "%s says neither where to read it; add env: VAR or file: path", what)
		default:
			p.Secrets[e.Name] = s
		}
	}
}

func (p *Project) decodeConnections(d *fileDecoder, n *yaml.Node) {
	if !d.mapping(n, "connections in ork.yaml", "a mapping of connection names to connections", true) {
		return
	}
	for _, e := range d.pairs(n, "connection", "in connections") {
		what := fmt.Sprintf("connection %q", e.Name)
		if !nameRe.MatchString(e.Name) {
			d.errorf(e.Key, "invalid connection name %q; use letters, digits, \"_\" and \"-\"", e.Name)
			continue
		}
		if !d.mapping(e.Value, what, "a mapping with the keys "+strings.Join(connectionKeys, ", "), false) {
			continue
		}
		c := &Connection{Name: e.Name, Pos: d.pos(e.Key)}
		kvs, covered := d.fields(e.Value, "in "+what, connectionKeys)
		var secretNode *yaml.Node
		for _, f := range kvs {
			v, ok := d.str(f.Value, f.Name+" of "+what, "see the README for the connection keys")
			if !ok {
				continue
			}
			switch f.Name {
			case "type":
				if v != ConnSQLite && v != ConnPostgres {
					d.errorf(f.Value, "invalid type %q of %s; use sqlite or postgres", v, what)
					continue
				}
				c.Type = v
			case "path":
				if !filepath.IsAbs(v) {
					v = filepath.Join(p.Root, v)
				}
				c.Path = filepath.Clean(v)
			case "dsn":
				if strings.Contains(v, "password=") || dsnPassword.MatchString(v) {
					d.errorf(f.Value, "the dsn of %s holds a password; move it to a secret and name it with password_secret:", what)
					continue
				}
				c.DSN = v
			case "dsn_env":
				if !identRe.MatchString(v) {
					d.errorf(f.Value, "invalid environment variable name %q for dsn_env of %s; use letters, digits and \"_\", not starting with a digit", v, what)
					continue
				}
				c.DSNEnv = v
			case "password_secret":
				c.PasswordSecret, secretNode = v, f.Value
			}
		}
		if !covered["type"] {
			d.errorf(e.Key, "%s has no type; add type: sqlite or type: postgres", what)
			continue
		}
		switch c.Type {
		case ConnSQLite:
			if !covered["path"] {
				d.errorf(e.Key, "%s of type sqlite has no path; add path: with the database file (relative to the project root)", what)
				continue
			}
			if covered["dsn"] || covered["dsn_env"] || covered["password_secret"] {
				d.errorf(e.Key, "%s of type sqlite takes only path:", what)
				continue
			}
		case ConnPostgres:
			if covered["dsn"] && covered["dsn_env"] {
				d.errorf(e.Key, "%s sets both dsn and dsn_env; keep one of them", what)
				continue
			}
			if !covered["dsn"] && !covered["dsn_env"] {
				d.errorf(e.Key, "%s of type postgres has no dsn; add dsn: postgres://user@host:5432/db, or dsn_env: VAR to read it from an environment variable when the run starts", what)
				continue
			}
			if covered["path"] {
				d.errorf(e.Key, "%s of type postgres takes dsn: (or dsn_env:) and password_secret:, not path:", what)
				continue
			}
		}
		if c.PasswordSecret != "" {
			d.later = append(d.later, func() {
				if _, ok := p.Secrets[c.PasswordSecret]; !ok {
					d.errorf(secretNode, "password_secret %q of %s is not defined under secrets:; %s", c.PasswordSecret, what, p.definedSecrets())
				}
			})
		}
		p.Connections[e.Name] = c
	}
}

func (p *Project) definedSecrets() string { return definedList("secrets", p.Secrets) }

func (p *Project) definedConnections() string { return definedList("connections", p.Connections) }

// definedList names what ork.yaml defines under a section, for messages.
func definedList[T any](what string, defined map[string]T) string {
	if len(defined) == 0 {
		return "no " + what + " are defined"
	}
	names := make([]string, 0, len(defined))
	for n := range defined {
		names = append(names, n)
	}
	sort.Strings(names)
	return "defined " + what + ": " + strings.Join(names, ", ")
}

// decodeNames reads a list of names (sandbox.secrets, sandbox.connections)
// and checks later that each is defined.
func (p *Project) decodeNames(d *fileDecoder, x *Executor, n *yaml.Node, key string) ([]string, bool) {
	what := fmt.Sprintf("sandbox %s of executor %q", key, x.Name)
	items, ok := d.sequence(n, what, "a list of names")
	if !ok {
		return nil, false
	}
	var out []string
	seen := map[string]bool{}
	for _, item := range items {
		name, good := d.str(item, "entry of "+what, "give a name defined under "+key+": in ork.yaml")
		if !good {
			ok = false
			continue
		}
		if seen[name] {
			d.errorf(item, "%q is listed twice in %s; remove the duplicate", name, what)
			ok = false
			continue
		}
		seen[name] = true
		out = append(out, name)
		node := item
		d.later = append(d.later, func() {
			var defined bool
			var list string
			if key == "secrets" {
				_, defined = p.Secrets[name]
				list = p.definedSecrets()
			} else {
				_, defined = p.Connections[name]
				list = p.definedConnections()
			}
			if !defined {
				d.errorf(node, "%s %q in %s is not defined under %s: in ork.yaml; %s", strings.TrimSuffix(key, "s"), name, what, key, list)
			}
		})
	}
	return out, ok
}

// decodeAllowedHosts reads sandbox.allowed_hosts: host patterns, or
// {host, headers} mappings whose header values may use {{ secret.NAME }}.
func (p *Project) decodeAllowedHosts(d *fileDecoder, x *Executor, n *yaml.Node) bool {
	what := fmt.Sprintf("sandbox allowed_hosts of executor %q", x.Name)
	items, ok := d.sequence(n, what, `a list of hosts ("api.example.com", "*.example.com", "127.0.0.1:8080") or {host, headers} mappings`)
	if !ok {
		return false
	}
	for i, item := range items {
		var g HostGrant
		nd := deref(item)
		if nd.Kind == yaml.MappingNode {
			entry := fmt.Sprintf("entry %d of %s", i+1, what)
			kvs, covered := d.fields(item, "in "+entry, grantKeys)
			for _, f := range kvs {
				switch f.Name {
				case "host":
					g.Pattern, _ = d.str(f.Value, "host of "+entry, "give a host such as api.example.com")
				case "headers":
					if !d.mapping(f.Value, "headers of "+entry, "a mapping of header names to values", false) {
						ok = false
						continue
					}
					g.Headers = map[string]string{}
					for _, h := range d.pairs(f.Value, "header", "in headers of "+entry) {
						v, good := d.str(h.Value, fmt.Sprintf("header %s of %s", h.Name, entry), "give the header's value")
						if !good {
							ok = false
							continue
						}
						for _, ref := range SecretRefs(v) {
							ref, node := ref, h.Value
							d.later = append(d.later, func() {
								if _, defined := p.Secrets[ref]; !defined {
									d.errorf(node, "header %s of %s uses secret %q, which is not defined under secrets:; %s", h.Name, entry, ref, p.definedSecrets())
								}
							})
						}
						g.Headers[h.Name] = v
					}
				}
			}
			if !covered["host"] {
				d.errorf(item, "%s has no host; add host: with the host to allow", entry)
				ok = false
				continue
			}
		} else {
			s, good := d.str(item, "entry of "+what, `give a host such as "api.example.com"`)
			if !good {
				ok = false
				continue
			}
			g.Pattern = s
		}
		if g.Pattern == "" {
			ok = false
			continue
		}
		if err := httpcap.ValidatePattern(g.Pattern); err != nil {
			at := item
			if nd.Kind == yaml.MappingNode {
				at = mappingValue(nd, "host")
			}
			d.errorf(at, "%v (in %s)", err, what)
			ok = false
			continue
		}
		x.Sandbox.AllowedHosts = append(x.Sandbox.AllowedHosts, g)
	}
	return ok
}

// mappingValue returns the value of key in mapping node n, or n itself.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return n
}
