package httpcap

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// grant is a parsed, normalised Grant.
type grant struct {
	pattern  string       // as written in ork.yaml, for messages
	host     string       // lower-case name, or the canonical IP literal (no brackets)
	wildcard bool         // "*.example.com": host holds the suffix ".example.com"
	prefix   netip.Prefix // valid for a CIDR entry ("10.0.0.0/8"); host is then its canonical form
	port     int          // 0: the scheme's default port (80 for http, 443 for https)
	headers  http.Header
}

// matches reports whether the grant covers host (normalised by
// normalizeHost) on port for scheme.
func (g *grant) matches(scheme, host string, port int) bool {
	if g.port != 0 {
		if port != g.port {
			return false
		}
	} else if port != defaultPort(scheme) {
		return false
	}
	if g.wildcard {
		return len(host) > len(g.host) && strings.HasSuffix(host, g.host)
	}
	if g.prefix.IsValid() {
		ip, err := netip.ParseAddr(host)
		return err == nil && g.prefix.Contains(ip)
	}
	return host == g.host
}

// isAddress reports whether the grant names addresses rather than host
// names: an IP literal or a CIDR block.
func (g *grant) isAddress() bool {
	if g.wildcard {
		return false
	}
	if g.prefix.IsValid() {
		return true
	}
	_, err := netip.ParseAddr(g.host)
	return err == nil
}

// coversAddr reports whether the grant is an address entry (IP literal or
// CIDR block) that allows ip on port for scheme.
func (g *grant) coversAddr(scheme string, ip netip.Addr, port int) bool {
	return g.isAddress() && g.matches(scheme, ip.WithZone("").Unmap().String(), port)
}

// moreSpecific reports whether g should win over h when both match: an
// exact host beats a wildcard or a CIDR block, a longer wildcard suffix
// beats a shorter one, a narrower block beats a wider one, and an explicit
// port beats the default ports.
func (g *grant) moreSpecific(h *grant) bool {
	if g.wildcard != h.wildcard {
		return !g.wildcard
	}
	if gp, hp := g.prefix.IsValid(), h.prefix.IsValid(); gp != hp {
		return !gp
	}
	if g.wildcard && len(g.host) != len(h.host) {
		return len(g.host) > len(h.host)
	}
	if g.prefix.IsValid() && g.prefix.Bits() != h.prefix.Bits() {
		return g.prefix.Bits() > h.prefix.Bits()
	}
	return g.port != 0 && h.port == 0
}

func (g *grant) key() string {
	return g.host + "|" + strconv.FormatBool(g.wildcard) + "|" + strconv.Itoa(g.port)
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// ValidatePattern reports whether p is a valid sandbox.allowed_hosts entry,
// with an error naming the entry and what to change. New applies the same
// check; ValidatePattern lets configuration loading report it early.
func ValidatePattern(p string) error {
	_, err := parsePattern(p)
	return err
}

func parsePattern(p string) (*grant, error) {
	bad := func(format string, args ...any) error {
		return &Error{Kind: KindInvalid, Msg: fmt.Sprintf("invalid allowed host %q: ", p) + fmt.Sprintf(format, args...)}
	}
	const shape = `write a host with an optional port, e.g. "api.example.com", "*.example.com", "127.0.0.1:8080", "[::1]:8080" or "10.0.0.0/8:5432"`
	if p == "" {
		return nil, bad("the entry is empty; " + shape)
	}
	if strings.ContainsAny(p, " \t\r\n") {
		return nil, bad("it contains white space; " + shape)
	}
	rest := p
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		return nil, bad("remove the scheme %q; entries name a host with an optional port, e.g. %q", p[:i+3], rest)
	}
	if g, ok, err := parseCIDR(p, rest, bad); ok || err != nil {
		return g, err
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return nil, bad("remove %q; entries name a host with an optional port, without a path, e.g. %q", rest[i:], rest[:i])
	}
	if strings.Contains(rest, "@") {
		return nil, bad("remove the user name (%q); entries name a host with an optional port", rest[:strings.LastIndex(rest, "@")+1])
	}

	host, portStr, hasPort := rest, "", false
	bracketed := false
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return nil, bad(`the IPv6 address has no closing "]"; write it as "[::1]" or "[::1]:8080"`)
		}
		host, bracketed = rest[1:end], true
		switch after := rest[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			portStr, hasPort = after[1:], true
		default:
			return nil, bad(`unexpected %q after the IPv6 address; write it as "[::1]" or "[::1]:8080"`, after)
		}
	case strings.Count(rest, ":") > 1:
		if _, err := netip.ParseAddr(rest); err == nil {
			return nil, bad(`write the IPv6 address in brackets, e.g. "[%s]" or "[%s]:8080"`, rest, rest)
		}
		return nil, bad("it has more than one \":\"; " + shape)
	case strings.Contains(rest, ":"):
		i := strings.LastIndex(rest, ":")
		host, portStr, hasPort = rest[:i], rest[i+1:], true
	}

	g := &grant{pattern: p}
	if hasPort {
		port, ok := parsePort(portStr)
		if !ok {
			return nil, bad("the port %q is not a number between 1 and 65535", portStr)
		}
		g.port = port
	}

	if host == "" {
		return nil, bad("it has no host; " + shape)
	}
	if bracketed {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return nil, bad("%q in brackets is not an IPv6 address; only IPv6 addresses are written in brackets", host)
		}
		if ip.Zone() != "" {
			return nil, bad("remove the zone %q from the IPv6 address", "%"+ip.Zone())
		}
		g.host = ip.Unmap().String()
		return g, nil
	}
	if strings.Contains(host, "*") {
		if !strings.HasPrefix(host, "*.") || strings.Contains(host[2:], "*") {
			return nil, bad(`a wildcard may only be the whole first label, as in "*.example.com"`)
		}
		suffix := strings.ToLower(strings.TrimSuffix(host[2:], "."))
		if _, err := netip.ParseAddr(suffix); err == nil {
			return nil, bad("a wildcard cannot cover IP addresses; list each address explicitly")
		}
		if msg := checkHostname(suffix); msg != "" {
			return nil, bad("%s", msg)
		}
		g.wildcard, g.host = true, "."+suffix
		return g, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		g.host = ip.String()
		return g, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if msg := checkHostname(name); msg != "" {
		return nil, bad("%s", msg)
	}
	g.host = name
	return g, nil
}

// parseCIDR parses an address block entry, "10.0.0.0/8", "10.1.2.0/24:5432",
// "fd00::/8" or "[fd00::/8]:5432". It reports false (and no error) when rest
// is not shaped like one, so that other checks explain what is wrong.
func parseCIDR(p, rest string, bad func(string, ...any) error) (*grant, bool, error) {
	slash := strings.Index(rest, "/")
	if slash < 0 || strings.ContainsAny(rest, "?#") {
		return nil, false, nil
	}
	addr, after, bracketed := rest[:slash], rest[slash+1:], false
	if strings.HasPrefix(addr, "[") {
		end := strings.Index(after, "]")
		if end < 0 {
			return nil, false, nil
		}
		addr, after, bracketed = addr[1:], after[:end]+after[end+1:], true
		if !strings.HasPrefix(rest[slash+1+end+1:], ":") && rest[slash+1+end+1:] != "" {
			return nil, false, nil
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, false, nil // not an address block: a host with a path
	}
	bits, portStr, hasPort := after, "", false
	if i := strings.Index(after, ":"); i >= 0 {
		bits, portStr, hasPort = after[:i], after[i+1:], true
	}
	if bracketed && !ip.Is6() {
		return nil, true, bad("only IPv6 address blocks are written in brackets; write %s/%s", addr, bits)
	}
	if ip.Zone() != "" {
		return nil, true, bad("remove the zone %q from the address block", "%"+ip.Zone())
	}
	n, ok := parsePort(bits) // a small decimal number
	if !ok && bits != "0" || n > ip.BitLen() {
		return nil, true, bad("the prefix length %q is not a number between 0 and %d", bits, ip.BitLen())
	}
	prefix := netip.PrefixFrom(ip, n)
	if prefix.Masked() != prefix {
		return nil, true, bad("the address block has bits set after its /%d prefix; write %s", n, prefix.Masked())
	}
	g := &grant{pattern: p, prefix: prefix, host: prefix.String()}
	if hasPort {
		port, ok := parsePort(portStr)
		if !ok {
			return nil, true, bad("the port %q is not a number between 1 and 65535", portStr)
		}
		g.port = port
	}
	return g, true, nil
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, _ := strconv.Atoi(s)
	return n, n >= 1 && n <= 65535
}

// checkHostname returns why name (lower case, without a trailing dot) is not
// a DNS host name, or "".
func checkHostname(name string) string {
	if name == "" {
		return "the host name is empty"
	}
	if len(name) > 253 {
		return "the host name is longer than 253 characters"
	}
	for _, c := range name {
		if c >= 0x80 {
			return fmt.Sprintf("%q contains non-ASCII characters; write an internationalised name in its punycode (xn--) form", name)
		}
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return fmt.Sprintf("%q has an empty label (two dots in a row, or a leading dot)", name)
		}
		if len(l) > 63 {
			return fmt.Sprintf("the label %q is longer than 63 characters", l)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("%q contains the character %q; host names use letters, digits, \"-\" and \".\"", name, c)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("the label %q starts or ends with \"-\"", l)
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return fmt.Sprintf("%q looks like an IP address but is not one; write IPv4 addresses as four decimal numbers, e.g. 127.0.0.1", name)
	}
	return ""
}

// normalizeHost lower-cases a URL host name (without brackets), drops a
// trailing dot, and writes IP addresses canonically (an IPv4-mapped IPv6
// address becomes its IPv4 form). It reports whether host is an IP address,
// or an error message when it is neither an IP address nor a host name.
func normalizeHost(host string) (norm string, ip netip.Addr, msg string) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, fmt.Sprintf("the IPv6 address %q has a zone (%%%s); zones are not supported", host, a.Zone())
		}
		a = a.Unmap()
		return a.String(), a, ""
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if m := checkHostname(name); m != "" {
		return "", netip.Addr{}, m
	}
	return name, netip.Addr{}, ""
}

// hostPort writes host and port as an allowed_hosts entry would: the port is
// left out when it is the scheme's default, IPv6 addresses are bracketed.
func hostPort(scheme, host string, port int) string {
	h := host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if port == defaultPort(scheme) {
		return h
	}
	return h + ":" + strconv.Itoa(port)
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
	ietf4     = netip.MustParsePrefix("192.0.0.0/24")
	siteLocal = netip.MustParsePrefix("fec0::/10")
	compat6   = netip.MustParsePrefix("::/96")        // IPv4-compatible (deprecated)
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // embeds an IPv4 address in the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // embeds an IPv4 address in bits 16..48
)

// specialKind names the class of a non-public address ("a loopback
// address", ...), or returns "" for an address reachable on the internet.
//
// Refused classes: loopback (127/8, ::1), private (10/8, 172.16/12,
// 192.168/16, fc00::/7, and the deprecated site-local fec0::/10), link-local
// (169.254/16 — cloud metadata services live here —, fe80::/10),
// unspecified (0.0.0.0, ::, and 0/8), multicast, shared address space
// (100.64/10, carrier-grade NAT), reserved (240/4 with broadcast, 192.0.0/24),
// and IPv6 addresses that embed one of these IPv4 addresses (IPv4-mapped,
// IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16).
func specialKind(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsUnspecified(), thisNet.Contains(ip):
		return "an unspecified address"
	case ip.IsPrivate(), siteLocal.Contains(ip):
		return "a private address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	case cgnat.Contains(ip):
		return "a shared (carrier-grade NAT) address"
	case reserved4.Contains(ip), ietf4.Contains(ip):
		return "a reserved address"
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 netip.Addr
		switch {
		case compat6.Contains(ip), nat64.Contains(ip):
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(ip):
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if v4.IsValid() {
			if k := specialKind(v4); k != "" {
				return k + " (embedded in the IPv6 address)"
			}
			if compat6.Contains(ip) {
				return "a reserved address"
			}
		}
	}
	return ""
}

// secretValues returns the distinct non-empty header values of the grants,
// longest first so that a redactor replacing them in order never leaves part
// of a longer secret behind.
func secretValues(gs []*grant) []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range gs {
		for _, vs := range g.headers {
			for _, v := range vs {
				if v != "" && !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}
