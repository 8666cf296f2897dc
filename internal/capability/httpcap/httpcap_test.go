package httpcap

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every server in these tests listens on 127.0.0.1. Names are resolved by a
// fake resolver (fakeNet); addresses in 192.0.2.0/24 (TEST-NET-1, a public
// address as far as the policy is concerned) and ::1 are connected to
// 127.0.0.1 instead, so that the policy sees the address it would see in
// production while the bytes stay on this machine.

type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (r *recorder) add(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, b)
}

func (r *recorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *recorder) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("the server received no request")
	}
	return r.reqs[len(r.reqs)-1], r.body[len(r.body)-1]
}

// server starts a server on 127.0.0.1 that records requests, then calls h
// (or answers "ok").
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *recorder, int) {
	t.Helper()
	rec := &recorder{}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, rec, l.Addr().(*net.TCPAddr).Port
}

func newClient(t *testing.T, p Policy) *Client {
	t.Helper()
	c, err := New(p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func grants(patterns ...string) []Grant {
	var gs []Grant
	for _, p := range patterns {
		gs = append(gs, Grant{Pattern: p})
	}
	return gs
}

// fakeNet makes c resolve names from hosts and connect to 127.0.0.1 for
// addresses in 192.0.2.0/24 and for ::1. It returns the addresses dialed.
func fakeNet(c *Client, hosts map[string][]string) *[]string {
	var mu sync.Mutex
	dialed := &[]string{}
	c.lookup = func(ctx context.Context, host string) ([]net.IPAddr, error) {
		addrs, ok := hosts[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []net.IPAddr
		for _, a := range addrs {
			out = append(out, net.IPAddr{IP: net.ParseIP(a)})
		}
		return out, nil
	}
	testNet := netip.MustParsePrefix("192.0.2.0/24")
	c.dialIP = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		*dialed = append(*dialed, addr)
		mu.Unlock()
		ap := netip.MustParseAddrPort(addr)
		if testNet.Contains(ap.Addr()) || ap.Addr() == netip.IPv6Loopback() {
			addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return dialed
}

func get(t *testing.T, c *Client, rawURL string) (*Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Do(ctx, Request{Method: "GET", URL: rawURL})
}

type result struct {
	resp *Response
	err  error
}

func r(resp *Response, err error) result { return result{resp, err} }

func mustOK(t *testing.T, x result) *Response {
	t.Helper()
	resp, err := x.resp, x.err
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("status %d, body %q", resp.Status, resp.Body)
	}
	return resp
}

// mustFail checks that err is an *Error of kind with a message containing
// every one of parts.
func mustFail(t *testing.T, err error, kind string, parts ...string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("expected a %s error, got none", kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind %q, want %q (message: %s)", e.Kind, kind, e.Msg)
	}
	for _, p := range parts {
		if !strings.Contains(e.Msg, p) {
			t.Fatalf("message %q does not contain %q", e.Msg, p)
		}
	}
	return e
}

func TestAllowedExactHostWithPort(t *testing.T) {
	_, rec, port := server(t, nil)
	p := strconv.Itoa(port)

	t.Run("IP literal", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:" + p)})
		resp := mustOK(t, r(get(t, c, "http://127.0.0.1:"+p+"/a?x=1")))
		if string(resp.Body) != "ok" || resp.URL != "http://127.0.0.1:"+p+"/a?x=1" {
			t.Fatalf("got %q from %s", resp.Body, resp.URL)
		}
		if resp.Headers["Content-Type"] == "" {
			t.Fatalf("response headers %v lack Content-Type", resp.Headers)
		}
	})
	t.Run("name, case-insensitive", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("API.Example.test:" + p)})
		dialed := fakeNet(c, map[string][]string{"api.example.test": {"192.0.2.10"}})
		mustOK(t, r(get(t, c, "http://api.EXAMPLE.test:"+p+"/")))
		mustOK(t, r(get(t, c, "http://api.example.test.:"+p+"/"))) // trailing dot
		if len(*dialed) == 0 || (*dialed)[0] != "192.0.2.10:"+p {
			t.Fatalf("dialed %v, want the resolved address 192.0.2.10:%s", *dialed, p)
		}
		req, _ := rec.last(t)
		if req.Host != "api.example.test.:"+p {
			t.Fatalf("Host %q", req.Host)
		}
	})
	t.Run("other port refused", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("api.example.test:" + p)})
		fakeNet(c, map[string][]string{"api.example.test": {"192.0.2.10"}})
		_, err := get(t, c, "http://api.example.test:1/")
		mustFail(t, err, KindRefused, "host api.example.test is not allowed on port 1 (only on port "+p+")", `add "api.example.test:1"`)
		_, err = get(t, c, "http://api.example.test/")
		mustFail(t, err, KindRefused, "on port 80")
	})
}

func TestWildcard(t *testing.T) {
	_, _, port := server(t, nil)
	p := strconv.Itoa(port)
	c := newClient(t, Policy{Grants: grants("*.example.test:" + p)})
	fakeNet(c, map[string][]string{
		"a.example.test":   {"192.0.2.1"},
		"a.b.example.test": {"192.0.2.2"},
		"example.test":     {"192.0.2.3"},
		"badexample.test":  {"192.0.2.4"},
	})
	mustOK(t, r(get(t, c, "http://a.example.test:"+p+"/")))
	mustOK(t, r(get(t, c, "http://A.B.example.test:"+p+"/")))
	_, err := get(t, c, "http://example.test:"+p+"/")
	mustFail(t, err, KindRefused, "host example.test:"+p+" is not allowed; add \"example.test:"+p+"\" to sandbox.allowed_hosts in ork.yaml")
	_, err = get(t, c, "http://badexample.test:"+p+"/")
	mustFail(t, err, KindRefused, "badexample.test")
}

func TestMatchRules(t *testing.T) {
	c := newClient(t, Policy{Grants: []Grant{
		{Pattern: "api.example.com"},
		{Pattern: "*.example.com", Headers: map[string]string{"X-Which": "wild"}},
		{Pattern: "*.eu.example.com", Headers: map[string]string{"X-Which": "eu"}},
		{Pattern: "api.example.com:8443", Headers: map[string]string{"X-Which": "8443"}},
		{Pattern: "*.example.com:9000", Headers: map[string]string{"X-Which": "wild9000"}},
		{Pattern: "10.1.2.3"},
		{Pattern: "[2001:db8::1]:8080"},
		{Pattern: "10.0.0.0/8:5432"},
		{Pattern: "10.1.2.0/24:5432"},
		{Pattern: "10.1.2.3:5432"},
		{Pattern: "[fd00::/8]:5432"},
	}})
	tests := []struct {
		scheme, host string
		port         int
		want         string // pattern of the grant, "" for none
	}{
		{"https", "api.example.com", 443, "api.example.com"},
		{"http", "api.example.com", 80, "api.example.com"},
		{"http", "api.example.com", 443, ""}, // default ports are per scheme
		{"https", "api.example.com", 80, ""},
		{"https", "api.example.com", 8443, "api.example.com:8443"},
		{"https", "x.example.com", 443, "*.example.com"},
		{"https", "x.y.example.com", 443, "*.example.com"},
		{"https", "x.eu.example.com", 443, "*.eu.example.com"},
		{"https", "example.com", 443, ""},
		{"https", "x.example.com", 9000, "*.example.com:9000"},
		{"https", "api.example.com", 9000, "*.example.com:9000"},
		{"https", "notexample.com", 443, ""},
		{"http", "10.1.2.3", 80, "10.1.2.3"},
		{"http", "10.1.2.3", 8080, ""},
		{"http", "2001:db8::1", 8080, "[2001:db8::1]:8080"},
		{"http", "2001:db8::1", 80, ""},
		{"http", "10.9.9.9", 5432, "10.0.0.0/8:5432"},
		{"http", "10.1.2.9", 5432, "10.1.2.0/24:5432"}, // the narrower block wins
		{"http", "10.1.2.3", 5432, "10.1.2.3:5432"},    // an exact address beats a block
		{"http", "10.9.9.9", 80, ""},
		{"http", "fd00::5", 5432, "[fd00::/8]:5432"},
		{"http", "a.10.0.0.0", 5432, ""},
	}
	for _, tt := range tests {
		g := c.match(tt.scheme, tt.host, tt.port)
		got := ""
		if g != nil {
			got = g.pattern
		}
		if got != tt.want {
			t.Errorf("match(%s, %s, %d) = %q, want %q", tt.scheme, tt.host, tt.port, got, tt.want)
		}
	}
}

func TestRefusedHost(t *testing.T) {
	_, rec, port := server(t, nil)
	p := strconv.Itoa(port)
	c := newClient(t, Policy{Grants: grants("api.example.test:" + p), Key: "executors.fetch.sandbox.allowed_hosts in ork.yaml"})
	fakeNet(c, map[string][]string{"api.evil.test": {"192.0.2.66"}})
	_, err := get(t, c, "https://api.evil.test/x")
	mustFail(t, err, KindRefused, "host api.evil.test is not allowed; add it to executors.fetch.sandbox.allowed_hosts in ork.yaml")
	_, err = get(t, c, "http://api.evil.test:"+p+"/x")
	mustFail(t, err, KindRefused, `host api.evil.test:`+p+` is not allowed; add "api.evil.test:`+p+`" to executors.fetch.sandbox.allowed_hosts in ork.yaml`)
	if rec.n() != 0 {
		t.Fatalf("the server received %d requests", rec.n())
	}
}

func TestLoopback(t *testing.T) {
	_, rec, port := server(t, nil)
	p := strconv.Itoa(port)
	hosts := map[string][]string{
		"loop.example.test":  {"127.0.0.1"},
		"mixed.example.test": {"192.0.2.1", "127.0.0.1"},
		"meta.example.test":  {"169.254.169.254"},
		"ten.example.test":   {"10.0.0.1"},
	}

	t.Run("literal address not granted", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("*.example.test:" + p)})
		fakeNet(c, hosts)
		_, err := get(t, c, "http://127.0.0.1:"+p+"/")
		mustFail(t, err, KindRefused, `127.0.0.1 is a loopback address; to allow it, add "127.0.0.1:`+p+`" to sandbox.allowed_hosts in ork.yaml`)
		_, err = get(t, c, "http://127.0.0.1/")
		mustFail(t, err, KindRefused, `add "127.0.0.1" to`)
		_, err = get(t, c, "http://10.0.0.1/")
		mustFail(t, err, KindRefused, "10.0.0.1 is a private address")
		_, err = get(t, c, "http://169.254.169.254/")
		mustFail(t, err, KindRefused, "169.254.169.254 is a link-local address")
	})
	t.Run("name granted only by wildcard", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("*.example.test:" + p)})
		dialed := fakeNet(c, hosts)
		_, err := get(t, c, "http://loop.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "host loop.example.test resolves to 127.0.0.1, a loopback address, and is allowed only by the wildcard \"*.example.test:"+p+"\"; a host name never allows loopback, private, link-local or other non-public addresses by itself; to allow the address, add \"127.0.0.1:"+p+"\" to sandbox.allowed_hosts in ork.yaml")
		_, err = get(t, c, "http://mixed.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "resolves to 127.0.0.1")
		_, err = get(t, c, "http://meta.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "169.254.169.254, a link-local address")
		_, err = get(t, c, "http://ten.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "10.0.0.1, a private address")
		if len(*dialed) != 0 || rec.n() != 0 {
			t.Fatalf("dialed %v, server saw %d requests", *dialed, rec.n())
		}
	})
	t.Run("name not granted", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:" + p)})
		fakeNet(c, hosts)
		_, err := get(t, c, "http://loop.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "host loop.example.test:"+p+" is not allowed; add")
	})
	t.Run("literal address granted", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:" + p)})
		mustOK(t, r(get(t, c, "http://127.0.0.1:"+p+"/")))
		// IPv4-mapped IPv6 is the same address.
		mustOK(t, r(get(t, c, "http://[::ffff:127.0.0.1]:"+p+"/")))
	})
	t.Run("name granted explicitly, address not", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("*.example.test:"+p, "loop.example.test:"+p, "meta.example.test", "ten.example.test:"+p, "mixed.example.test:"+p, "127.0.0.1:1"),
			Key: "executors.fetch.sandbox.allowed_hosts in ork.yaml"})
		dialed := fakeNet(c, hosts)
		before := rec.n()
		_, err := get(t, c, "http://loop.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "host loop.example.test resolves to 127.0.0.1, a loopback address, and is allowed only by the name \"loop.example.test:"+p+"\"; a host name never allows loopback, private, link-local or other non-public addresses by itself; to allow the address, add \"127.0.0.1:"+p+"\" to executors.fetch.sandbox.allowed_hosts in ork.yaml")
		_, err = get(t, c, "http://meta.example.test/")
		mustFail(t, err, KindRefused, "host meta.example.test resolves to 169.254.169.254, a link-local address", `add "169.254.169.254" to executors.fetch`)
		_, err = get(t, c, "http://ten.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "resolves to 10.0.0.1, a private address")
		_, err = get(t, c, "http://mixed.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "resolves to 127.0.0.1, a loopback address,")
		if len(*dialed) != 0 || rec.n() != before {
			t.Fatalf("dialed %v, server saw %d requests", *dialed, rec.n()-before)
		}
	})
	t.Run("name and address granted", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("loop.example.test:"+p, "127.0.0.1:"+p)})
		dialed := fakeNet(c, hosts)
		mustOK(t, r(get(t, c, "http://loop.example.test:"+p+"/")))
		if len(*dialed) != 1 || (*dialed)[0] != "127.0.0.1:"+p {
			t.Fatalf("dialed %v, want the checked address", *dialed)
		}
		// The address entry must cover the port too.
		c = newClient(t, Policy{Grants: grants("loop.example.test:"+p, "127.0.0.1")})
		fakeNet(c, hosts)
		_, err := get(t, c, "http://loop.example.test:"+p+"/")
		mustFail(t, err, KindRefused, `add "127.0.0.1:`+p+`" to`)
	})
	t.Run("address block granted", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("*.example.test:"+p, "127.0.0.0/8:"+p, "10.0.0.0/8")})
		fakeNet(c, hosts)
		mustOK(t, r(get(t, c, "http://loop.example.test:"+p+"/")))
		mustOK(t, r(get(t, c, "http://127.0.0.1:"+p+"/")))
		// The block on the default ports does not cover this port.
		_, err := get(t, c, "http://ten.example.test:"+p+"/")
		mustFail(t, err, KindRefused, `add "10.0.0.1:`+p+`" to`)
		_, err = get(t, c, "http://meta.example.test:"+p+"/")
		mustFail(t, err, KindRefused, "169.254.169.254, a link-local address")
	})
	t.Run("names under localhost are loopback", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("api.localhost:" + p)})
		fakeNet(c, map[string][]string{"api.localhost": {"192.0.2.1"}}) // DNS is not asked
		_, err := get(t, c, "http://api.localhost:"+p+"/")
		mustFail(t, err, KindRefused, "host api.localhost resolves to 127.0.0.1, a loopback address; ::1, a loopback address, and is allowed only by the name", `add "127.0.0.1:`+p+`" and "[::1]:`+p+`" to`)
		c = newClient(t, Policy{Grants: grants("api.localhost:"+p, "127.0.0.1:"+p, "[::1]:"+p)})
		dialed := fakeNet(c, map[string][]string{"api.localhost": {"192.0.2.1"}})
		mustOK(t, r(get(t, c, "http://api.localhost:"+p+"/")))
		if (*dialed)[0] != "127.0.0.1:"+p {
			t.Fatalf("dialed %v", *dialed)
		}
	})
}

func TestLocalhost(t *testing.T) {
	// The system resolver: localhost resolves to 127.0.0.1 (and maybe ::1,
	// where nothing listens; the dialer then tries the next address).
	_, rec, port := server(t, nil)
	p := strconv.Itoa(port)
	for _, pattern := range []string{"*.example.test", "127.0.0.1:" + p, "localhost", "localhost:1"} {
		c := newClient(t, Policy{Grants: grants(pattern)})
		_, err := get(t, c, "http://localhost:"+p+"/")
		mustFail(t, err, KindRefused, "localhost")
	}
	c := newClient(t, Policy{Grants: grants("*.example.test")})
	_, err := get(t, c, "http://localhost:"+p+"/")
	mustFail(t, err, KindRefused, `localhost is a loopback name; to allow it, add "localhost:`+p+`" to sandbox.allowed_hosts in ork.yaml`)
	if rec.n() != 0 {
		t.Fatalf("the server received %d requests", rec.n())
	}

	c = newClient(t, Policy{Grants: grants("LocalHost:" + p)})
	resp := mustOK(t, r(get(t, c, "http://localhost:"+p+"/")))
	if string(resp.Body) != "ok" {
		t.Fatalf("body %q", resp.Body)
	}
}

func TestIPv6Loopback(t *testing.T) {
	_, _, port := server(t, nil)
	p := strconv.Itoa(port)

	c := newClient(t, Policy{Grants: grants("127.0.0.1:"+p, "*.example.test:"+p)})
	fakeNet(c, map[string][]string{"six.example.test": {"::1"}})
	_, err := get(t, c, "http://[::1]:"+p+"/")
	mustFail(t, err, KindRefused, `::1 is a loopback address; to allow it, add "[::1]:`+p+`" to sandbox.allowed_hosts in ork.yaml`)
	_, err = get(t, c, "http://[0:0::1]:"+p+"/")
	mustFail(t, err, KindRefused, "::1 is a loopback address")
	_, err = get(t, c, "http://six.example.test:"+p+"/")
	mustFail(t, err, KindRefused, "resolves to ::1, a loopback address")
	_, err = get(t, c, "http://[fe80::1%25eth0]:"+p+"/")
	mustFail(t, err, KindInvalid, "zone")

	c = newClient(t, Policy{Grants: grants("[::1]:" + p)})
	dialed := fakeNet(c, nil)
	mustOK(t, r(get(t, c, "http://[::1]:"+p+"/")))
	mustOK(t, r(get(t, c, "http://[0:0:0::1]:"+p+"/")))
	if (*dialed)[0] != "[::1]:"+p {
		t.Fatalf("dialed %v", *dialed)
	}
	_, err = get(t, c, "http://127.0.0.1:"+p+"/")
	mustFail(t, err, KindRefused, "127.0.0.1 is a loopback address")
}

func TestRedirects(t *testing.T) {
	var bURL string
	_, recB, portB := server(t, nil)
	bURL = fmt.Sprintf("http://127.0.0.1:%d", portB)
	_, recA, portA := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-b":
			http.Redirect(w, r, bURL+"/landed?q=1", http.StatusFound)
		case "/relative":
			http.Redirect(w, r, "/final", http.StatusMovedPermanently)
		case "/see-other":
			http.Redirect(w, r, "/final", http.StatusSeeOther)
		case "/temporary":
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://127.0.0.1/x", http.StatusFound)
		case "/to-wild":
			http.Redirect(w, r, fmt.Sprintf("http://loop.example.test:%d/", portB), http.StatusFound)
		default:
			_, _ = io.WriteString(w, "final")
		}
	})
	a := fmt.Sprintf("http://127.0.0.1:%d", portA)
	pa, pb := strconv.Itoa(portA), strconv.Itoa(portB)

	t.Run("to a refused host", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:"+pa, "*.example.test:"+pb)})
		fakeNet(c, map[string][]string{"loop.example.test": {"127.0.0.1"}})
		before := recB.n()
		_, err := get(t, c, a+"/to-b")
		mustFail(t, err, KindRefused, "redirect from "+a+"/to-b to "+bURL+"/landed refused", "127.0.0.1 is a loopback address", `"127.0.0.1:`+pb+`"`)
		_, err = get(t, c, a+"/to-wild")
		mustFail(t, err, KindRefused, "redirect from "+a+"/to-wild to http://loop.example.test:"+pb+"/ refused", "resolves to 127.0.0.1")
		_, err = get(t, c, a+"/to-ftp")
		mustFail(t, err, KindRefused, "ftp://127.0.0.1/x", "only http and https")
		if recB.n() != before {
			t.Fatal("the refused server received a request")
		}
	})
	t.Run("within allowed hosts", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:"+pa, "127.0.0.1:"+pb)})
		resp := mustOK(t, r(get(t, c, a+"/to-b")))
		if string(resp.Body) != "ok" || resp.URL != bURL+"/landed?q=1" {
			t.Fatalf("got %q from %s", resp.Body, resp.URL)
		}
		resp = mustOK(t, r(get(t, c, a+"/relative")))
		if string(resp.Body) != "final" || resp.URL != a+"/final" {
			t.Fatalf("got %q from %s", resp.Body, resp.URL)
		}
	})
	t.Run("methods and bodies", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:" + pa)})
		ctx := context.Background()
		post := func(path string) (*http.Request, []byte) {
			t.Helper()
			mustOK(t, r(c.Do(ctx, Request{Method: "POST", URL: a + path, Body: []byte("payload"), Headers: map[string]string{"Content-Type": "text/plain"}})))
			return recA.last(t)
		}
		req, body := post("/see-other")
		if req.Method != "GET" || len(body) != 0 || req.Header.Get("Content-Type") != "" {
			t.Fatalf("after 303: %s with body %q and Content-Type %q", req.Method, body, req.Header.Get("Content-Type"))
		}
		req, body = post("/relative")
		if req.Method != "GET" || len(body) != 0 {
			t.Fatalf("after 301: %s with body %q", req.Method, body)
		}
		req, body = post("/temporary")
		if req.Method != "POST" || string(body) != "payload" || req.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("after 307: %s with body %q", req.Method, body)
		}
	})
	t.Run("limit", func(t *testing.T) {
		c := newClient(t, Policy{Grants: grants("127.0.0.1:" + pa), MaxRedirects: 2})
		_, err := get(t, c, a+"/loop")
		mustFail(t, err, KindRefused, "stopped after 2 redirects")
		c = newClient(t, Policy{Grants: grants("127.0.0.1:" + pa), MaxRedirects: -1})
		resp, err := get(t, c, a+"/to-b")
		if err != nil || resp.Status != http.StatusFound || resp.Headers["Location"] != bURL+"/landed?q=1" {
			t.Fatalf("with redirects off: %+v, %v", resp, err)
		}
	})
}

func TestInjectedHeaders(t *testing.T) {
	var bURL string
	_, recB, portB := server(t, nil)
	bURL = fmt.Sprintf("http://127.0.0.1:%d", portB)
	_, recA, portA := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/to-b" {
			http.Redirect(w, r, bURL+"/", http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/final", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "a")
	})
	a := fmt.Sprintf("http://127.0.0.1:%d", portA)
	c := newClient(t, Policy{Grants: []Grant{
		{Pattern: "127.0.0.1:" + strconv.Itoa(portA), Headers: map[string]string{"X-Api-Key": "secret-a", "authorization": "Bearer s3cret-token"}},
		{Pattern: "127.0.0.1:" + strconv.Itoa(portB)},
	}})
	ctx := context.Background()
	guest := map[string]string{"x-api-key": "guest", "AUTHORIZATION": "Basic guest", "X-Trace": "t1", "Cookie": "c=1"}

	// Guest cannot override injected headers.
	mustOK(t, r(c.Do(ctx, Request{URL: a + "/", Headers: guest})))
	req, _ := recA.last(t)
	if got := req.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != "secret-a" {
		t.Fatalf("X-Api-Key %q", got)
	}
	if got := req.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer s3cret-token" {
		t.Fatalf("Authorization %q", got)
	}
	if req.Header.Get("X-Trace") != "t1" || req.Header.Get("Cookie") != "c=1" {
		t.Fatalf("guest headers lost: %v", req.Header)
	}

	// Same-host redirect keeps them.
	mustOK(t, r(c.Do(ctx, Request{URL: a + "/same"})))
	req, _ = recA.last(t)
	if req.URL.Path != "/final" || req.Header.Get("X-Api-Key") != "secret-a" {
		t.Fatalf("after a same-host redirect: %s %v", req.URL.Path, req.Header)
	}

	// A cross-host redirect carries none of them, nor the guest's credentials.
	resp := mustOK(t, r(c.Do(ctx, Request{URL: a + "/to-b", Headers: guest})))
	if resp.URL != bURL+"/" {
		t.Fatalf("final URL %s", resp.URL)
	}
	req, _ = recB.last(t)
	for name, vs := range req.Header {
		for _, v := range vs {
			if strings.Contains(v, "secret") {
				t.Fatalf("server B received the injected %s: %q", name, v)
			}
		}
	}
	for _, h := range []string{"Authorization", "Cookie"} { // the guest's credentials do not follow either
		if v := req.Header.Values(h); len(v) != 0 {
			t.Fatalf("server B received %s: %q", h, v)
		}
	}
	// The guest's own headers do (its X-Api-Key was overridden at A only).
	if req.Header.Get("X-Trace") != "t1" || req.Header.Get("X-Api-Key") != "guest" {
		t.Fatalf("server B received %v", req.Header)
	}

	if got := c.SecretValues(); len(got) != 2 || got[0] != "Bearer s3cret-token" || got[1] != "secret-a" {
		t.Fatalf("SecretValues() = %q", got)
	}
}

// TestGrantHeadersOnlyOverHTTPS: a grant's headers carry secrets, so they
// go only over https, or over plain http to a loopback address. Plain http
// to any other host under a grant with headers is refused before anything
// is sent: asked for directly (the grant without a port covers http on 80,
// the grant with one covers both schemes) or reached by a redirect from
// https on the same host.
func TestGrantHeadersOnlyOverHTTPS(t *testing.T) {
	tlsRec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsRec.add(r)
		if r.URL.Path == "/downgrade" {
			http.Redirect(w, r, "http://"+r.Host+"/plain", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "tls "+r.Header.Get("Authorization"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain http request to it is refused anyway
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate()) // valid for *.example.com
	const token = "Bearer tok-9b1d"
	hdr := map[string]string{"Authorization": token}
	hosts := map[string][]string{"api.example.com": {"192.0.2.10"}, "bq.example.com": {"192.0.2.11"}}

	c := newClient(t, Policy{Grants: []Grant{
		{Pattern: "api.example.com:" + port, Headers: hdr},
		{Pattern: "bq.example.com", Headers: hdr},
	}, Key: "executors.bq.sandbox.allowed_hosts in ork.yaml"})
	c.transport["https"].TLSClientConfig.RootCAs = pool
	dialed := fakeNet(c, hosts)

	// https gets the header.
	resp := mustOK(t, r(get(t, c, "https://api.example.com:"+port+"/q")))
	if string(resp.Body) != "tls "+token {
		t.Fatalf("body %q: the grant's header was not sent over https", resp.Body)
	}

	// Plain http to a public host is refused, with the header names and
	// the https URL, never the value.
	before := len(*dialed)
	_, err := get(t, c, "http://bq.example.com/bigquery/v2/projects?token=x")
	e := mustFail(t, err, KindRefused, `host bq.example.com is asked over plain http, but its entry "bq.example.com" in executors.bq.sandbox.allowed_hosts in ork.yaml attaches headers (Authorization), which ork sends only over https (or plain http to a loopback address) so that nothing on the way can read them; request https://bq.example.com/bigquery/v2/projects instead`)
	_, err = get(t, c, "http://api.example.com:"+port+"/q")
	mustFail(t, err, KindRefused, "host api.example.com:"+port+" is asked over plain http", "request https://api.example.com:"+port+"/q instead")
	if strings.Contains(e.Msg, "tok-9b1d") {
		t.Fatalf("the message shows the header value: %s", e.Msg)
	}
	if len(*dialed) != before {
		t.Fatalf("a refused request connected: %v", (*dialed)[before:])
	}

	// A redirect from https to http on the same host and port is refused
	// too, before the second hop connects or sends anything.
	n := tlsRec.n()
	_, err = get(t, c, "https://api.example.com:"+port+"/downgrade")
	mustFail(t, err, KindRefused, "redirect from https://api.example.com:"+port+"/downgrade to http://api.example.com:"+port+"/plain refused: host api.example.com:"+port+" is asked over plain http", "attaches headers (Authorization)")
	if got := tlsRec.n() - n; got != 1 {
		t.Fatalf("the server received %d requests, want only the first hop", got)
	}

	// Plain http to loopback keeps its headers: an address literal, or a
	// localhost name (which never asks DNS).
	_, rec, lport := server(t, nil)
	lp := strconv.Itoa(lport)
	c = newClient(t, Policy{Grants: []Grant{
		{Pattern: "127.0.0.1:" + lp, Headers: hdr},
		{Pattern: "localhost:" + lp, Headers: hdr},
	}})
	c.dialIP = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp4", "127.0.0.1:"+lp) // ::1 may not listen here
	}
	for _, u := range []string{"http://127.0.0.1:" + lp + "/", "http://localhost:" + lp + "/"} {
		mustOK(t, r(get(t, c, u)))
		req, _ := rec.last(t)
		if req.Header.Get("Authorization") != token {
			t.Fatalf("%s: Authorization %q", u, req.Header.Get("Authorization"))
		}
	}

	// A grant without headers is unchanged: plain http to a public host
	// goes out.
	c = newClient(t, Policy{Grants: grants("plain.example.com:" + lp)})
	fakeNet(c, map[string][]string{"plain.example.com": {"192.0.2.12"}})
	mustOK(t, r(get(t, c, "http://plain.example.com:"+lp+"/")))
}

func TestGuestHeaders(t *testing.T) {
	_, rec, port := server(t, nil)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := newClient(t, Policy{Grants: grants("127.0.0.1:" + strconv.Itoa(port))})
	ctx := context.Background()

	mustOK(t, r(c.Do(ctx, Request{Method: "PUT", URL: u, Body: []byte("abc"), Headers: map[string]string{
		"Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "close", "Upgrade": "h2c", "X-Ok": "yes",
	}})))
	req, body := rec.last(t)
	if string(body) != "abc" || req.ContentLength != 3 || len(req.TransferEncoding) != 0 || req.Header.Get("Upgrade") != "" || req.Header.Get("X-Ok") != "yes" {
		t.Fatalf("server saw %q, length %d, TE %v, headers %v", body, req.ContentLength, req.TransferEncoding, req.Header)
	}

	_, err := c.Do(ctx, Request{URL: u, Headers: map[string]string{"Host": "internal.example.com"}})
	mustFail(t, err, KindInvalid, "the header Host cannot be set; the host comes from the URL")
	_, err = c.Do(ctx, Request{URL: u, Headers: map[string]string{"Bad Name": "x"}})
	mustFail(t, err, KindInvalid, `"Bad Name" is not a valid header name`)
	_, err = c.Do(ctx, Request{URL: u, Headers: map[string]string{"X-A": "a\r\nX-Injected: 1"}})
	mustFail(t, err, KindInvalid, "header X-A contains a line break")
	_, err = c.Do(ctx, Request{URL: u, Headers: map[string]string{"X-A": "1", "x-a": "2"}})
	mustFail(t, err, KindInvalid, "X-A is given twice")
}

func TestResponseSizeCap(t *testing.T) {
	_, _, port := server(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for i := 0; i < n; i += 100 {
			_, _ = io.WriteString(w, strings.Repeat("x", min(100, n-i)))
			w.(http.Flusher).Flush()
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d/?n=", port)
	c := newClient(t, Policy{Grants: grants("127.0.0.1:" + strconv.Itoa(port)), MaxResponseBytes: 1024})

	resp := mustOK(t, r(get(t, c, base+"1024")))
	if len(resp.Body) != 1024 {
		t.Fatalf("body of %d bytes", len(resp.Body))
	}
	resp = mustOK(t, r(get(t, c, base+"1024&chunked=1")))
	if len(resp.Body) != 1024 {
		t.Fatalf("body of %d bytes", len(resp.Body))
	}
	_, err := get(t, c, base+"1025")
	mustFail(t, err, KindTooLarge, "is 1025 bytes, more than the limit of 1 KiB")
	_, err = get(t, c, base+"5000&chunked=1")
	mustFail(t, err, KindTooLarge, "more than the limit of 1 KiB")
}

func TestRequestSizeCap(t *testing.T) {
	_, rec, port := server(t, nil)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := newClient(t, Policy{Grants: grants("127.0.0.1:" + strconv.Itoa(port)), MaxRequestBytes: 16})
	ctx := context.Background()
	mustOK(t, r(c.Do(ctx, Request{Method: "POST", URL: u, Body: []byte(strings.Repeat("b", 16))})))
	_, body := rec.last(t)
	if len(body) != 16 {
		t.Fatalf("server received %d bytes", len(body))
	}
	_, err := c.Do(ctx, Request{Method: "POST", URL: u, Body: []byte(strings.Repeat("b", 17))})
	mustFail(t, err, KindTooLarge, "the request body is 17 bytes, more than the limit of 16 bytes")
	if rec.n() != 1 {
		t.Fatalf("the server received %d requests", rec.n())
	}
}

func TestTimeout(t *testing.T) {
	_, _, port := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	g := grants("127.0.0.1:" + strconv.Itoa(port))

	c := newClient(t, Policy{Grants: g})
	start := time.Now()
	_, err := c.Do(context.Background(), Request{URL: u, Timeout: 100 * time.Millisecond})
	mustFail(t, err, KindTimeout, "timed out after 100ms, the timeout the request set")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v does not wrap context.DeadlineExceeded", err)
	}

	// The policy's limit caps a longer request timeout.
	c = newClient(t, Policy{Grants: g, Timeout: 100 * time.Millisecond})
	_, err = c.Do(context.Background(), Request{URL: u, Timeout: time.Hour})
	mustFail(t, err, KindTimeout, "timed out after 100ms, the HTTP limit per request")

	// The caller's context (the task's deadline) also bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c = newClient(t, Policy{Grants: g})
	_, err = c.Do(ctx, Request{URL: u})
	mustFail(t, err, KindTimeout, "the task ran out of time")

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.Do(ctx, Request{URL: u})
	mustFail(t, err, KindNetwork, "was canceled")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v does not wrap context.Canceled", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	c := newClient(t, Policy{Grants: grants("api.example.com")})
	tests := []struct {
		method, url string
		timeout     time.Duration
		want        string
	}{
		{"GET", "", 0, "the URL is empty"},
		{"GET", "api.example.com/x", 0, "has no scheme"},
		{"GET", "/relative", 0, "has no scheme"},
		{"GET", "ftp://api.example.com/x", 0, "uses the scheme ftp; only http and https are supported"},
		{"GET", "file:///etc/passwd", 0, "uses the scheme file"},
		{"GET", "http://", 0, "has no host"},
		{"GET", "http:api.example.com", 0, "has no host"},
		{"GET", "http://user:pw@api.example.com/", 0, "contains credentials"},
		{"GET", "http://api.example.com:99999/", 0, `the port "99999"`},
		{"GET", "http://api.example.com:0/", 0, `the port "0"`},
		{"GET", "http://exa mple.com/", 0, "is not valid"},
		{"GET", "http://bücher.example/", 0, "punycode"},
		{"GET", "http://0x7f.1/", 0, "looks like an IP address"},
		{"GET", "http://127.1/", 0, "looks like an IP address"},
		{"GET", "http://127.0.0.1/", 0, "127.0.0.1 is a loopback address"},
		{"GET", "http://[fe80::1%25eth0]/", 0, "zone"},
		{"GE T", "https://api.example.com/", 0, `"GE T" is not a valid HTTP method`},
		{"GET\r\n", "https://api.example.com/", 0, "is not a valid HTTP method"},
		{"CONNECT", "https://api.example.com/", 0, "CONNECT is not supported"},
		{"GET", "https://api.example.com/", -time.Second, "the request timeout -1s is negative"},
	}
	for _, tt := range tests {
		_, err := c.Do(context.Background(), Request{Method: tt.method, URL: tt.url, Timeout: tt.timeout})
		if err == nil {
			t.Errorf("%s %q: no error", tt.method, tt.url)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, tt.want) {
			t.Errorf("%s %q: %v, want a message containing %q", tt.method, tt.url, err, tt.want)
		}
		if e != nil && e.Kind != KindInvalid && !strings.Contains(tt.want, "loopback") {
			t.Errorf("%s %q: kind %s", tt.method, tt.url, e.Kind)
		}
	}
}

func TestBadPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{"", "the entry is empty"},
		{"https://api.example.com/v1", `remove the scheme "https://"; entries name a host with an optional port, e.g. "api.example.com"`},
		{"api.example.com/v1", `remove "/v1"`},
		{"api.example.com?x=1", `remove "?x=1"`},
		{"user@api.example.com", `remove the user name ("user@")`},
		{" api.example.com", "white space"},
		{"*", "a wildcard may only be the whole first label"},
		{"*example.com", "a wildcard may only be the whole first label"},
		{"api.*.com", "a wildcard may only be the whole first label"},
		{"*.*.example.com", "a wildcard may only be the whole first label"},
		{"*.", "the host name is empty"},
		{"*.127.0.0.1", "a wildcard cannot cover IP addresses"},
		{"api.example.com:http", `the port "http" is not a number between 1 and 65535`},
		{"api.example.com:", `the port "" is not a number`},
		{"api.example.com:0", `the port "0"`},
		{"api.example.com:65536", `the port "65536"`},
		{"api.example.com:+80", `the port "+80"`},
		{":8080", "it has no host"},
		{"::1", `write the IPv6 address in brackets, e.g. "[::1]" or "[::1]:8080"`},
		{"[::1", `no closing "]"`},
		{"[::1]x", `unexpected "x"`},
		{"[127.0.0.1]:80", "is not an IPv6 address"},
		{"[fe80::1%eth0]:80", "remove the zone"},
		{"api..example.com", "empty label"},
		{"-api.example.com", `starts or ends with "-"`},
		{"api!.example.com", `contains the character '!'`},
		{"bücher.de", "punycode"},
		{"1.2.3", "looks like an IP address"},
		{"a:b:c", `more than one ":"`},
		{"10.0.0.0/33", `the prefix length "33" is not a number between 0 and 32`},
		{"10.0.0.0/", `the prefix length "" is not a number`},
		{"10.0.0.0/x8", `the prefix length "x8"`},
		{"10.1.2.3/24", "the address block has bits set after its /24 prefix; write 10.1.2.0/24"},
		{"10.0.0.0/8:99999", `the port "99999" is not a number between 1 and 65535`},
		{"fd00::/129", `not a number between 0 and 128`},
		{"[10.0.0.0/8]:80", "only IPv6 address blocks are written in brackets"},
		{"127.0.0.1/path", `the prefix length "path"`},
	}
	for _, tt := range tests {
		_, err := New(Policy{Grants: grants(tt.pattern)})
		if err == nil {
			t.Errorf("New(%q): no error", tt.pattern)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid {
			t.Errorf("New(%q): %v is not an invalid *Error", tt.pattern, err)
			continue
		}
		if !strings.Contains(e.Msg, fmt.Sprintf("invalid allowed host %q: ", tt.pattern)) || !strings.Contains(e.Msg, tt.want) {
			t.Errorf("New(%q): %q, want it to name the pattern and contain %q", tt.pattern, e.Msg, tt.want)
		}
		if ValidatePattern(tt.pattern) == nil {
			t.Errorf("ValidatePattern(%q) accepts it", tt.pattern)
		}
	}

	for _, ok := range []string{"api.example.com", "API.example.com.", "*.googleapis.com", "127.0.0.1:8080", "localhost:9000", "[::1]:8080", "[2001:db8::1]", "10.0.0.1", "my_host.internal:443", "*.s3.eu-west-1.amazonaws.com",
		"10.0.0.0/8", "10.1.2.0/24:5432", "fd00::/8", "[fd00::/8]:5432", "0.0.0.0/0"} {
		if err := ValidatePattern(ok); err != nil {
			t.Errorf("ValidatePattern(%q): %v", ok, err)
		}
	}

	other := []struct {
		grants []Grant
		want   string
	}{
		{grants("api.example.com", "API.example.com."), `allowed host "API.example.com." is listed twice (also as "api.example.com")`},
		{[]Grant{{Pattern: "a.example.com", Headers: map[string]string{"X Bad": "v"}}}, `header "X Bad" of allowed host "a.example.com" is not a valid header name`},
		{[]Grant{{Pattern: "a.example.com", Headers: map[string]string{"host": "v"}}}, `header host of allowed host "a.example.com" cannot be set`},
		{[]Grant{{Pattern: "a.example.com", Headers: map[string]string{"Connection": "v"}}}, `header Connection of allowed host "a.example.com" cannot be set`},
		{[]Grant{{Pattern: "a.example.com", Headers: map[string]string{"X-Key": "top\nsecret"}}}, `the value of header X-Key of allowed host "a.example.com" contains a line break`},
		{[]Grant{{Pattern: "a.example.com", Headers: map[string]string{"X-Key": "1", "x-key": "2"}}}, `header X-Key of allowed host "a.example.com" is given twice`},
	}
	for _, tt := range other {
		_, err := New(Policy{Grants: tt.grants})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%v): %v, want %q", tt.grants, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error %q shows a header value", err)
		}
	}
	if _, err := New(Policy{MaxResponseBytes: -1}); err == nil {
		t.Error("a negative limit is accepted")
	}
}

func TestSpecialKind(t *testing.T) {
	tests := map[string]string{
		"127.0.0.1":        "loopback",
		"127.255.0.9":      "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.1": "loopback",
		"10.2.3.4":         "private",
		"172.16.0.1":       "private",
		"172.31.255.255":   "private",
		"192.168.1.1":      "private",
		"fd00::2":          "private",
		"fec0::1":          "private",
		"169.254.169.254":  "link-local",
		"fe80::1":          "link-local",
		"0.0.0.0":          "unspecified",
		"0.1.2.3":          "unspecified",
		"::":               "unspecified",
		"224.0.0.1":        "multicast",
		"ff02::1":          "multicast",
		"100.64.0.1":       "carrier-grade NAT",
		"100.127.255.255":  "carrier-grade NAT",
		"255.255.255.255":  "reserved",
		"240.0.0.1":        "reserved",
		"64:ff9b::7f00:1":  "loopback",
		"64:ff9b::a00:1":   "private",
		"2002:a9fe:a9fe::": "link-local",
		"::7f00:1":         "loopback",
		"8.8.8.8":          "",
		"172.32.0.1":       "",
		"100.128.0.1":      "",
		"192.0.2.10":       "",
		"2001:4860::8888":  "",
		"64:ff9b::808:808": "",
	}
	for a, want := range tests {
		got := specialKind(netip.MustParseAddr(a))
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("specialKind(%s) = %q, want %q", a, got, want)
		}
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		_, _ = io.WriteString(w, "tls")
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted handshake below is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)

	c := newClient(t, Policy{Grants: grants(u.Host)})
	// Without the test CA, the certificate is not trusted (system roots).
	_, err := get(t, c, srv.URL+"/")
	mustFail(t, err, KindNetwork, "certificate")

	c = newClient(t, Policy{Grants: grants(u.Host)})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.transport["https"].TLSClientConfig.RootCAs = pool
	resp := mustOK(t, r(get(t, c, srv.URL+"/")))
	if string(resp.Body) != "tls" || resp.Headers["X-Proto"] != "HTTP/2.0" {
		t.Fatalf("got %q over %s", resp.Body, resp.Headers["X-Proto"])
	}
	// A pattern with a port covers both schemes on it: plain http reaches
	// the TLS server, which answers 400.
	resp, err = get(t, c, "http://"+u.Host+"/")
	if err != nil || resp.Status != http.StatusBadRequest {
		t.Fatalf("http on the granted port: %+v, %v", resp, err)
	}
}

func TestNoProxyFromEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	_, _, port := server(t, nil)
	c := newClient(t, Policy{Grants: grants("127.0.0.1:" + strconv.Itoa(port))})
	mustOK(t, r(get(t, c, fmt.Sprintf("http://127.0.0.1:%d/", port))))
}

func TestNetworkErrors(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	p := strconv.Itoa(port)
	c := newClient(t, Policy{Grants: grants("127.0.0.1:"+p, "gone.example.test:"+p)})
	_, err = get(t, c, "http://127.0.0.1:"+p+"/")
	mustFail(t, err, KindNetwork, "cannot connect to 127.0.0.1:"+p)
	fakeNet(c, map[string][]string{})
	_, err = get(t, c, "http://gone.example.test:"+p+"/")
	mustFail(t, err, KindNetwork, "cannot resolve host gone.example.test")
}

func TestConcurrent(t *testing.T) {
	var hits atomic.Int64
	_, _, port := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, r.URL.Query().Get("i"))
	})
	c := newClient(t, Policy{Grants: []Grant{{Pattern: "127.0.0.1:" + strconv.Itoa(port), Headers: map[string]string{"X-Key": "k"}}}})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Do(context.Background(), Request{URL: fmt.Sprintf("http://127.0.0.1:%d/?i=%d", port, i)})
			if err != nil || string(resp.Body) != strconv.Itoa(i) {
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if hits.Load() != 20 {
		t.Fatalf("%d hits", hits.Load())
	}
}
