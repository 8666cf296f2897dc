package httpcap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dialTimeout bounds each connection attempt. The transport dials with a
// context detached from the request's deadline (so that a connection can
// serve a later request), hence the separate bound.
const dialTimeout = 10 * time.Second

var netDialer = &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}

// dial is the transports' DialContext: it checks host:port against the
// policy again (connections are pooled per scheme and host:port, so the
// check made here holds for every request that reuses the connection),
// resolves the host itself, checks every address, and connects only to a
// checked address literal — never to a name, so no second resolution can
// return something else.
func (c *Client) dial(ctx context.Context, scheme, network, addr string) (net.Conn, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, errorf(KindInvalid, err, "cannot connect to %q: %v", addr, err)
	}
	port, ok := parsePort(ps)
	host, ip, msg := normalizeHost(h)
	if !ok || msg != "" {
		return nil, errorf(KindInvalid, nil, "cannot connect to %q: not a valid host and port", addr)
	}
	g := c.match(scheme, host, port)
	if g == nil {
		return nil, c.notAllowed(scheme, host, ip, port)
	}

	var ips []netip.Addr
	if ip.IsValid() {
		ips = []netip.Addr{ip}
	} else if isLocalhostName(host) {
		// RFC 6761: localhost names are the loopback addresses, never
		// something DNS says.
		ips = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	} else {
		addrs, err := c.lookup(ctx, host)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, errorf(KindNetwork, err, "cannot resolve host %s: %v", host, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				ips = append(ips, ip.Unmap().WithZone(a.Zone))
			}
		}
		if len(ips) == 0 {
			return nil, errorf(KindNetwork, nil, "cannot resolve host %s: it has no addresses", host)
		}
	}
	if !ip.IsValid() {
		if err := c.checkAddrs(scheme, host, port, g, ips); err != nil {
			return nil, err
		}
	}

	dialIP := c.dialIP
	if dialIP == nil {
		dialIP = netDialer.DialContext
	}
	var errs []error
	for _, a := range ips {
		conn, err := dialIP(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	what := net.JoinHostPort(host, strconv.Itoa(port))
	if len(ips) == 1 {
		return nil, errorf(KindNetwork, errs[0], "cannot connect to %s: %v", what, errs[0])
	}
	return nil, errorf(KindNetwork, errs[0], "cannot connect to %s at any of its %d addresses: %v", what, len(ips), errs[0])
}

// isLocalhostName reports whether host (normalised) is "localhost" or a
// name under it, which resolve to the loopback addresses (RFC 6761).
func isLocalhostName(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// checkAddrs refuses a name whose addresses include a non-public one that
// no address entry (an IP literal or a CIDR block) of the policy allows on
// this port. Every address must pass, not just the one we would use: a name
// that resolves to a mix of public and internal addresses is a rebinding
// attempt or a misconfiguration either way. The one name exempt is
// "localhost" itself, listed explicitly: that entry asks for loopback (and
// loopback is all it resolves to).
func (c *Client) checkAddrs(scheme, host string, port int, g *grant, ips []netip.Addr) error {
	if host == "localhost" && !g.wildcard {
		return nil
	}
	var bad, entries []string
	for _, a := range ips {
		kind := specialKind(a)
		if kind == "" || c.addrAllowed(scheme, a, port) {
			continue
		}
		a = a.WithZone("").Unmap()
		entry := hostPort(scheme, a.String(), port)
		if slices.Contains(entries, strconv.Quote(entry)) {
			continue
		}
		bad = append(bad, a.String()+", "+kind)
		entries = append(entries, strconv.Quote(entry))
	}
	if len(bad) == 0 {
		return nil
	}
	by := fmt.Sprintf("the name %q", g.pattern)
	if g.wildcard {
		by = fmt.Sprintf("the wildcard %q", g.pattern)
	}
	return errorf(KindRefused, nil,
		"host %s resolves to %s, and is allowed only by %s; a host name never allows loopback, private, link-local or other non-public addresses by itself; to allow the address, add %s to %s",
		host, strings.Join(bad, "; "), by, strings.Join(entries, " and "), c.key)
}

// addrAllowed reports whether an address entry allows ip on port.
func (c *Client) addrAllowed(scheme string, ip netip.Addr, port int) bool {
	for _, g := range c.grants {
		if g.coversAddr(scheme, ip, port) {
			return true
		}
	}
	return false
}
