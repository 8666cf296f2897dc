package httpcap

import (
	"context"
	"net"
	"net/netip"
	"strconv"
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
	// Every address must pass, not just the one we would use: a name that
	// resolves to a mix of public and internal addresses is a rebinding
	// attempt or a misconfiguration either way.
	if g.wildcard {
		for _, a := range ips {
			if kind := specialKind(a); kind != "" {
				return nil, errorf(KindRefused, nil,
					"host %s resolves to %s, %s, and is allowed only by the wildcard %q; wildcards never allow loopback, private, link-local or other non-public addresses; list the host explicitly in sandbox.allowed_hosts (e.g. %q) to allow it",
					host, a.WithZone(""), kind, g.pattern, hostPort(scheme, host, port))
			}
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
