package runtime

import (
	"context"
	"errors"
	"sync"
)

// Hosts hands out one Host per engine, each created on first use with the
// same options: a run whose executors use different engines shares one of
// each. It is safe for concurrent use.
type Hosts struct {
	def  string
	opts []Option

	mu     sync.Mutex
	hosts  map[string]*Host
	closed bool
}

// NewHosts returns the hosts of engine def (DefaultEngine when "") and of
// any other engine asked for, configured with opts.
func NewHosts(def string, opts ...Option) *Hosts {
	if def == "" {
		def = DefaultEngine
	}
	return &Hosts{def: def, opts: opts, hosts: map[string]*Host{}}
}

// Get returns the host of engine name ("" for the default), creating it
// the first time.
func (hs *Hosts) Get(name string) (*Host, error) {
	if name == "" {
		name = hs.def
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.closed {
		return nil, errors.New("runtime hosts are closed")
	}
	if h, ok := hs.hosts[name]; ok {
		return h, nil
	}
	h, err := New(append(append([]Option(nil), hs.opts...), WithEngine(name))...)
	if err != nil {
		return nil, err
	}
	hs.hosts[name] = h
	return h, nil
}

// Close closes every host created.
func (hs *Hosts) Close(ctx context.Context) error {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.closed = true
	var errs []error
	for _, h := range hs.hosts {
		errs = append(errs, h.Close(ctx))
	}
	return errors.Join(errs...)
}
