// Package httpcap makes HTTP requests on behalf of sandboxed tasks, only to
// the hosts an executor's sandbox.allowed_hosts in ork.yaml grants.
//
// # Matching
//
// A grant's Pattern is a host with an optional port:
//
//   - "api.example.com" matches that host name, case-insensitively (a
//     trailing dot is ignored);
//   - "*.example.com" matches every subdomain, at any depth
//     ("a.example.com", "a.b.example.com"), but not "example.com" itself;
//     the wildcard is only allowed as the whole first label;
//   - "127.0.0.1" and "[::1]" match that IP address literally (written
//     canonically; an IPv4-mapped IPv6 address counts as its IPv4 form);
//   - "10.0.0.0/8" and "fd00::/8" (CIDR notation; "[fd00::/8]:5432" with
//     a port) match every address of the block;
//   - a pattern with a port (":8080") matches only that port; a pattern
//     without a port matches only the default port of the URL's scheme,
//     80 for http and 443 for https. So "api.example.com" allows
//     http://api.example.com and https://api.example.com but not
//     https://api.example.com:8443, which needs "api.example.com:8443".
//
// When several grants match, the most specific one applies (and only its
// headers are added): an exact host beats a wildcard or an address block, a
// longer wildcard beats a shorter one, a narrower block beats a wider one,
// and a pattern with the port beats one without.
//
// # Addresses
//
// The host resolves a name itself, checks every address it resolves to, and
// then connects to a checked address, so DNS cannot smuggle in a target the
// policy refuses. Loopback, private (RFC 1918, fc00::/7), link-local
// (169.254/16, fe80::/10), unspecified, multicast, shared (CGNAT,
// 100.64/10) and reserved addresses (see specialKind) are reached only
// when the address itself is granted: by an IP literal ("127.0.0.1:8080",
// "[::1]:8080") or an address block in CIDR notation ("10.0.0.0/8",
// "10.1.2.0/24:5432", "fd00::/8"). A host name, exact or wildcard, never
// grants a non-public address on its own: "db.internal" resolving to
// 10.1.2.3 is refused unless "10.1.2.3" (or a block holding it) is listed
// too, with a port that covers the request. If any address of a name is
// refused the request is refused, because whoever controls the name's DNS
// could otherwise point it at the host's own services or a cloud metadata
// endpoint. The one exception is the name "localhost" listed as such
// ("localhost:9000"), which asks for loopback explicitly. "localhost" and
// names under it ("api.localhost") resolve to 127.0.0.1 and ::1 without
// asking DNS (RFC 6761).
//
// # Redirects
//
// Redirects (301, 302, 303, 307, 308) are followed up to
// Policy.MaxRedirects, and every hop is checked against the policy as if the
// guest had requested it: a redirect to a host that is not granted fails
// with a refused error naming the redirect target. Each hop carries the
// injected headers of the grant matching its own URL, never those of a
// previous hop, so a grant's secret headers are not forwarded to another
// host (or port) by a redirect. When a redirect changes host or port, the
// guest's own Authorization, Proxy-Authorization, Cookie and Cookie2 headers
// are dropped as well. 301 and 302 turn POST into GET, 303 turns every
// method but HEAD into GET (the body and its Content-* headers are dropped);
// 307 and 308 repeat the method and body.
//
// # Headers
//
// Grant headers override guest headers of the same name (compared
// case-insensitively). They are sent only over https, or over plain http to
// a loopback address (an IP literal such as 127.0.0.1 or [::1], or
// "localhost" and names under it), where nothing can read them on the way:
// a grant without a port also covers http on port 80, and a grant with a
// port covers both schemes on it, so a plain http request to another host
// under a grant with headers — asked for by the guest, or reached by a
// redirect — is refused with an error saying to use https, rather than sent
// with the secret in clear text or silently without it. Of the guest's headers, Host is refused (the host
// comes from the URL; setting it could reach a virtual host that was not
// granted), and the framing and hop-by-hop headers Content-Length,
// Transfer-Encoding, Connection, Keep-Alive, Proxy-Connection, TE, Trailer
// and Upgrade are ignored: the host frames the body and manages connections
// itself. Response headers are returned with canonical names
// ("Content-Type"); repeated headers are joined with ", ", except Set-Cookie,
// joined with "\n". No cookies are kept between requests.
//
// # Limits
//
// Request bodies over Policy.MaxRequestBytes are refused before anything is
// sent; a response body over Policy.MaxResponseBytes fails the request with
// a too_large error rather than being truncated (the limit applies to the
// decoded body when the host negotiated gzip itself). Each call to Do,
// redirects and reading the body included, is bounded by Policy.Timeout,
// or by Request.Timeout when that is shorter. Proxy settings from the
// environment are ignored; TLS uses the system roots; HTTP/1.1 and HTTP/2
// are both used.
package httpcap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error kinds.
const (
	KindRefused  = "refused"   // the policy does not allow the request
	KindInvalid  = "invalid"   // the request (or a pattern given to New) is malformed
	KindTooLarge = "too_large" // a body exceeds its limit
	KindTimeout  = "timeout"   // the request ran out of time
	KindNetwork  = "network"   // resolving, connecting, TLS, or the server failed
)

// Error is the error type of this package. Msg is written for the user and
// never contains an injected header value.
type Error struct {
	Kind string // one of the Kind constants
	Msg  string
	err  error // underlying cause, if any
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying cause (e.g. context.Canceled), if any.
func (e *Error) Unwrap() error { return e.err }

func errorf(kind string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), err: cause}
}

// Grant is one entry of an executor's sandbox.allowed_hosts.
type Grant struct {
	Pattern string            // "api.example.com", "*.googleapis.com", "127.0.0.1:8080", "localhost:9000", "[::1]:8080"
	Headers map[string]string // headers the host adds to requests matching this grant (values may hold secrets; never shown to the guest)
}

// Policy is what an executor may reach. Zero limits take the defaults.
type Policy struct {
	Grants           []Grant
	MaxRequestBytes  int64         // default 10 MiB
	MaxResponseBytes int64         // default 32 MiB
	Timeout          time.Duration // default 30 s, per call to Do, capped by the request's own timeout
	MaxRedirects     int           // default 5; negative: redirects are returned to the guest, not followed
	// Key names where the grants are configured, for refusal messages,
	// e.g. "executors.fetch.sandbox.allowed_hosts in ork.yaml". Default:
	// "sandbox.allowed_hosts in ork.yaml".
	Key string
}

// Defaults of Policy.
const (
	DefaultMaxRequestBytes  = 10 << 20
	DefaultMaxResponseBytes = 32 << 20
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRedirects     = 5
)

// Request is a guest's HTTP request.
type Request struct {
	Method  string // default GET
	URL     string // absolute http or https URL
	Headers map[string]string
	Body    []byte
	Timeout time.Duration // 0: the policy's timeout; otherwise the shorter of the two
}

// Response is the final response, after redirects.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
	URL     string // final URL after redirects
}

// Client makes requests under a Policy. It is safe for concurrent use.
type Client struct {
	grants       []*grant
	maxReq       int64
	maxResp      int64
	timeout      time.Duration
	maxRedirects int
	secrets      []string
	key          string // Policy.Key

	hc        *http.Client
	transport map[string]*http.Transport // by scheme, so that the dialer knows it

	// Seams for tests; production uses the system resolver and a net.Dialer.
	lookup func(ctx context.Context, host string) ([]net.IPAddr, error)
	dialIP func(ctx context.Context, network, addr string) (net.Conn, error)
}

// New checks the policy and returns a client for it. An error names the
// pattern or header that is wrong and how to fix it.
func New(p Policy) (*Client, error) {
	c := &Client{
		maxReq:       p.MaxRequestBytes,
		maxResp:      p.MaxResponseBytes,
		timeout:      p.Timeout,
		maxRedirects: p.MaxRedirects,
		key:          p.Key,
		lookup:       net.DefaultResolver.LookupIPAddr,
	}
	if c.key == "" {
		c.key = "sandbox.allowed_hosts in ork.yaml"
	}
	switch {
	case c.maxReq < 0:
		return nil, errorf(KindInvalid, nil, "the maximum request size %d is negative", c.maxReq)
	case c.maxResp < 0:
		return nil, errorf(KindInvalid, nil, "the maximum response size %d is negative", c.maxResp)
	case c.timeout < 0:
		return nil, errorf(KindInvalid, nil, "the request timeout %s is negative", c.timeout)
	}
	if c.maxReq == 0 {
		c.maxReq = DefaultMaxRequestBytes
	}
	if c.maxResp == 0 {
		c.maxResp = DefaultMaxResponseBytes
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxRedirects == 0 {
		c.maxRedirects = DefaultMaxRedirects
	}

	seen := map[string]string{}
	for _, pg := range p.Grants {
		g, err := parsePattern(pg.Pattern)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[g.key()]; dup {
			return nil, errorf(KindInvalid, nil, "allowed host %q is listed twice (also as %q); merge the two entries", pg.Pattern, prev)
		}
		seen[g.key()] = pg.Pattern
		g.headers = http.Header{}
		names := map[string]string{}
		for name, value := range pg.Headers {
			canon := http.CanonicalHeaderKey(name)
			if !validToken(name) {
				return nil, errorf(KindInvalid, nil, "header %q of allowed host %q is not a valid header name; use letters, digits and -", name, pg.Pattern)
			}
			if _, bad := refusedHeaders[canon]; bad {
				return nil, errorf(KindInvalid, nil, "header %s of allowed host %q cannot be set; the host comes from the URL", name, pg.Pattern)
			}
			if _, bad := ignoredHeaders[canon]; bad {
				return nil, errorf(KindInvalid, nil, "header %s of allowed host %q cannot be set; the host manages framing and connections itself", name, pg.Pattern)
			}
			if !validHeaderValue(value) {
				// Never echo the value: it may be a secret.
				return nil, errorf(KindInvalid, nil, "the value of header %s of allowed host %q contains a line break or control character", name, pg.Pattern)
			}
			if other, dup := names[canon]; dup {
				return nil, errorf(KindInvalid, nil, "header %s of allowed host %q is given twice (as %q and %q); keep one", canon, pg.Pattern, other, name)
			}
			names[canon] = name
			g.headers.Set(canon, value)
		}
		c.grants = append(c.grants, g)
	}
	c.secrets = secretValues(c.grants)

	c.transport = map[string]*http.Transport{"http": c.newTransport("http"), "https": c.newTransport("https")}
	c.hc = &http.Client{
		Transport: schemeRouter(c.transport),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // Do follows redirects itself, checking each hop
		},
	}
	return c, nil
}

func (c *Client) newTransport(scheme string) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.dial(ctx, scheme, network, addr)
		},
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12}, // RootCAs nil: the system roots
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           32,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// schemeRouter sends http and https requests to their own transport, whose
// dialer then knows the scheme (and so which default port patterns cover).
type schemeRouter map[string]*http.Transport

func (r schemeRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	t, ok := r[req.URL.Scheme]
	if !ok {
		return nil, errorf(KindRefused, nil, "only http and https URLs may be requested, not %s", req.URL.Scheme)
	}
	return t.RoundTrip(req)
}

// SecretValues returns the distinct header values the client injects, longest
// first, so the caller can redact them from logs and outputs.
func (c *Client) SecretValues() []string {
	return append([]string(nil), c.secrets...)
}

// CloseIdleConnections closes the connections kept for reuse.
func (c *Client) CloseIdleConnections() {
	for _, t := range c.transport {
		t.CloseIdleConnections()
	}
}

var (
	// refusedHeaders may not be set by the guest (nor by a grant).
	refusedHeaders = map[string]string{"Host": ""}
	// ignoredHeaders from the guest are dropped: the host frames the body and
	// manages connections itself. A grant may not set them.
	ignoredHeaders = map[string]string{
		"Content-Length": "", "Transfer-Encoding": "", "Connection": "", "Keep-Alive": "",
		"Proxy-Connection": "", "Te": "", "Trailer": "", "Upgrade": "",
	}
	// credentialHeaders of the guest are dropped when a redirect changes host or port.
	credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Cookie2"}
	// bodyHeaders are dropped when a redirect drops the body.
	bodyHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Content-Location"}
)

// target is a URL the policy allows, with the grant that allows it.
type target struct {
	url   *url.URL
	host  string // normalised
	port  int
	grant *grant
}

// Do makes the request, following redirects, and returns the final response.
// Every error is an *Error. A response with any status is a response, not an
// error.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validToken(method) {
		return nil, errorf(KindInvalid, nil, "%q is not a valid HTTP method; use e.g. GET, POST, PUT, PATCH or DELETE", method)
	}
	if strings.EqualFold(method, http.MethodConnect) {
		return nil, errorf(KindInvalid, nil, "the method CONNECT is not supported")
	}
	if r.Timeout < 0 {
		return nil, errorf(KindInvalid, nil, "the request timeout %s is negative", r.Timeout)
	}
	u, err := parseRequestURL(r.URL)
	if err != nil {
		return nil, err
	}
	hdr, err := guestHeaders(r.Headers)
	if err != nil {
		return nil, err
	}
	if int64(len(r.Body)) > c.maxReq {
		return nil, errorf(KindTooLarge, nil, "the request body is %s, more than the limit of %s", sizeString(int64(len(r.Body))), sizeString(c.maxReq))
	}
	t, err := c.authorize(u)
	if err != nil {
		return nil, err
	}

	timeout, own := c.timeout, false
	if r.Timeout > 0 && r.Timeout < timeout {
		timeout, own = r.Timeout, true
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var from *url.URL // the URL that redirected to the current one
	fail := func(err error, u *url.URL) error {
		var e *Error
		if errors.As(err, &e) {
			if e.Kind == KindRefused && from != nil {
				return errorf(e.Kind, e.err, "redirect from %s to %s refused: %s", show(from), show(u), e.Msg)
			}
			return e
		}
		switch {
		case parent.Err() != nil && errors.Is(parent.Err(), context.Canceled):
			return errorf(KindNetwork, parent.Err(), "the request to %s was canceled", show(u))
		case parent.Err() != nil:
			return errorf(KindTimeout, parent.Err(), "the task ran out of time during the request to %s", show(u))
		case ctx.Err() != nil && own:
			return errorf(KindTimeout, ctx.Err(), "the request to %s timed out after %s, the timeout the request set", show(u), timeout)
		case ctx.Err() != nil:
			return errorf(KindTimeout, ctx.Err(), "the request to %s timed out after %s, the HTTP limit per request", show(u), timeout)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errorf(KindTimeout, err, "the request to %s timed out: %v", show(u), unwrapURLError(err))
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return errorf(KindNetwork, err, "the TLS certificate of %s is not valid: %v", u.Host, cv.Err)
		}
		return errorf(KindNetwork, err, "the request to %s failed: %v", show(u), unwrapURLError(err))
	}

	body := r.Body
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, method, t.url.String(), bodyReader(body))
		if err != nil {
			return nil, errorf(KindInvalid, err, "cannot make the request to %s: %v", show(t.url), err)
		}
		req.URL, req.Host = t.url, t.url.Host
		req.Header = hdr.Clone()
		for k, v := range t.grant.headers {
			req.Header[k] = append([]string(nil), v...)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fail(err, t.url)
		}

		loc := resp.Header.Get("Location")
		if isRedirect(resp.StatusCode) && loc != "" && c.maxRedirects >= 0 {
			_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
			resp.Body.Close()
			from = t.url
			if hop >= c.maxRedirects {
				return nil, errorf(KindRefused, nil, "stopped after %d redirects, the limit (the last, from %s, points to %s)", c.maxRedirects, show(from), loc)
			}
			next, err := from.Parse(loc)
			if err != nil {
				return nil, errorf(KindNetwork, err, "the redirect from %s has an invalid Location %q: %v", show(from), loc, err)
			}
			next.Fragment, next.RawFragment = "", ""
			if next.Scheme != "http" && next.Scheme != "https" {
				return nil, errorf(KindRefused, nil, "redirect from %s to %s refused: only http and https URLs may be requested", show(from), show(next))
			}
			if next.User != nil {
				return nil, errorf(KindRefused, nil, "redirect from %s to %s refused: the Location contains credentials (user@)", show(from), show(next))
			}
			nt, err := c.authorize(next)
			if err != nil {
				e := err.(*Error)
				return nil, errorf(e.Kind, nil, "redirect from %s to %s refused: %s", show(from), show(next), e.Msg)
			}
			if resp.StatusCode == http.StatusSeeOther && method != http.MethodHead ||
				(resp.StatusCode == http.StatusMovedPermanently || resp.StatusCode == http.StatusFound) && method == http.MethodPost {
				method, body = http.MethodGet, nil
				for _, h := range bodyHeaders {
					hdr.Del(h)
				}
			}
			if nt.host != t.host || nt.port != t.port {
				for _, h := range credentialHeaders {
					hdr.Del(h)
				}
			}
			t = nt
			continue
		}

		out, err := c.readResponse(resp, method, t.url)
		if err != nil {
			if e, ok := err.(*Error); ok {
				return nil, e
			}
			return nil, fail(err, t.url)
		}
		return out, nil
	}
}

func (c *Client) readResponse(resp *http.Response, method string, u *url.URL) (*Response, error) {
	defer resp.Body.Close()
	if method != http.MethodHead && resp.ContentLength > c.maxResp {
		return nil, errorf(KindTooLarge, nil, "the response from %s is %s, more than the limit of %s", show(u), sizeString(resp.ContentLength), sizeString(c.maxResp))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > c.maxResp {
		return nil, errorf(KindTooLarge, nil, "the response from %s is more than the limit of %s", show(u), sizeString(c.maxResp))
	}
	out := &Response{Status: resp.StatusCode, Headers: make(map[string]string, len(resp.Header)), Body: b, URL: u.String()}
	for k, vs := range resp.Header {
		sep := ", "
		if k == "Set-Cookie" {
			sep = "\n"
		}
		out.Headers[k] = strings.Join(vs, sep)
	}
	return out, nil
}

func bodyReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// parseRequestURL checks a guest URL: absolute http(s), a valid host, no
// credentials. The fragment is dropped.
func parseRequestURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errorf(KindInvalid, nil, "the URL is empty; give an absolute http or https URL, e.g. https://api.example.com/v1")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errorf(KindInvalid, err, "the URL %q is not valid: %v", raw, unwrapURLError(err))
	}
	switch {
	case u.Scheme == "":
		return nil, errorf(KindInvalid, nil, "the URL %q has no scheme; give an absolute http or https URL, e.g. https://api.example.com/v1", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errorf(KindInvalid, nil, "the URL %q uses the scheme %s; only http and https are supported", raw, u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, errorf(KindInvalid, nil, "the URL %q has no host; write it as %s://host/path", raw, u.Scheme)
	case u.User != nil:
		return nil, errorf(KindInvalid, nil, "the URL %q contains credentials (user@); send them in an Authorization header instead", u.Redacted())
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// authorize checks a parsed URL against the grants.
func (c *Client) authorize(u *url.URL) (*target, error) {
	port := defaultPort(u.Scheme)
	if ps := u.Port(); ps != "" {
		p, ok := parsePort(ps)
		if !ok {
			return nil, errorf(KindInvalid, nil, "the port %q of %s is not a number between 1 and 65535", ps, show(u))
		}
		port = p
	}
	host, ip, msg := normalizeHost(u.Hostname())
	if msg != "" {
		return nil, errorf(KindInvalid, nil, "the host of %s is not valid: %s", show(u), msg)
	}
	g := c.match(u.Scheme, host, port)
	if g == nil {
		return nil, c.notAllowed(u.Scheme, host, ip, port)
	}
	if len(g.headers) > 0 && u.Scheme != "https" && !isLoopbackHost(host, ip) {
		https := *u
		https.Scheme = "https"
		if port == defaultPort(u.Scheme) {
			https.Host = hostPort("https", host, 443)
		}
		names := make([]string, 0, len(g.headers))
		for k := range g.headers {
			names = append(names, k)
		}
		slices.Sort(names)
		return nil, errorf(KindRefused, nil,
			"host %s is asked over plain http, but its entry %q in %s attaches headers (%s), which ork sends only over https (or plain http to a loopback address) so that nothing on the way can read them; request %s instead",
			hostPort(u.Scheme, host, port), g.pattern, c.key, strings.Join(names, ", "), show(&https))
	}
	return &target{url: u, host: host, port: port, grant: g}, nil
}

// isLoopbackHost reports whether a URL host (normalised) can only be a
// loopback address: a loopback IP literal, or a localhost name, which the
// dialer resolves to 127.0.0.1 and ::1 without asking DNS.
func isLoopbackHost(host string, ip netip.Addr) bool {
	if ip.IsValid() {
		return ip.IsLoopback()
	}
	return isLocalhostName(host)
}

// match returns the most specific grant covering host:port, or nil.
func (c *Client) match(scheme, host string, port int) *grant {
	var best *grant
	for _, g := range c.grants {
		if g.matches(scheme, host, port) && (best == nil || g.moreSpecific(best)) {
			best = g
		}
	}
	return best
}

func (c *Client) notAllowed(scheme, host string, ip netip.Addr, port int) error {
	entry := hostPort(scheme, host, port)
	if ip.IsValid() {
		if kind := specialKind(ip); kind != "" {
			return errorf(KindRefused, nil, "%s is %s; to allow it, add %q to %s", host, kind, entry, c.key)
		}
	}
	if isLocalhostName(host) {
		return errorf(KindRefused, nil, "%s is a loopback name; to allow it, add %q to %s", host, entry, c.key)
	}
	// The host may be granted on other ports; say which.
	var nums []int
	defaults := false
	for _, g := range c.grants {
		if g.prefix.IsValid() {
			continue
		}
		if !g.wildcard && g.host == host || g.wildcard && len(host) > len(g.host) && strings.HasSuffix(host, g.host) {
			if g.port == 0 {
				defaults = true
			} else if !slices.Contains(nums, g.port) {
				nums = append(nums, g.port)
			}
		}
	}
	slices.Sort(nums)
	var ports []string
	for _, n := range nums {
		ports = append(ports, strconv.Itoa(n))
	}
	if defaults {
		ports = append(ports, "80 (http) or 443 (https)")
	}
	if len(ports) > 0 {
		return errorf(KindRefused, nil, "host %s is not allowed on port %d (only on port %s); add %q to %s", host, port, strings.Join(ports, ", "), entry, c.key)
	}
	if entry == host {
		return errorf(KindRefused, nil, "host %s is not allowed; add it to %s", host, c.key)
	}
	return errorf(KindRefused, nil, "host %s is not allowed; add %q to %s", entry, entry, c.key)
}

// guestHeaders validates the guest's headers and drops the ignored ones.
func guestHeaders(in map[string]string) (http.Header, error) {
	h := http.Header{}
	names := map[string]string{}
	for name, value := range in {
		if !validToken(name) {
			return nil, errorf(KindInvalid, nil, "%q is not a valid header name; use letters, digits and -", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if _, bad := refusedHeaders[canon]; bad {
			return nil, errorf(KindInvalid, nil, "the header %s cannot be set; the host comes from the URL", name)
		}
		if !validHeaderValue(value) {
			return nil, errorf(KindInvalid, nil, "the value of header %s contains a line break or control character", name)
		}
		if other, dup := names[canon]; dup {
			return nil, errorf(KindInvalid, nil, "the header %s is given twice (as %q and %q); keep one", canon, other, name)
		}
		names[canon] = name
		if _, ignored := ignoredHeaders[canon]; ignored {
			continue
		}
		h.Set(canon, value)
	}
	return h, nil
}

// validToken reports whether s is an RFC 9110 token (method or header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue rejects control characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// show writes u for messages, without query and fragment (they may carry
// tokens).
func show(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery, v.Fragment, v.RawFragment = nil, "", false, "", ""
	return v.String()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n == 1:
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
