package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func diamond() []Node {
	return []Node{
		{Name: "a"},
		{Name: "b", DependsOn: []string{"a"}},
		{Name: "c", DependsOn: []string{"a"}},
		{Name: "d", DependsOn: []string{"b", "c"}},
	}
}

func TestDiamondRunsInDependencyOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	got, err := Run(context.Background(), diamond(), 4, nil, func(ctx context.Context, name string) Status {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		return Succeeded
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]Status{"a": Succeeded, "b": Succeeded, "c": Succeeded, "d": Succeeded}, got)
	require.Len(t, order, 4)
	assert.Equal(t, "a", order[0])
	assert.Equal(t, "d", order[3])
}

func TestFailureSkipsDownstreamAndIndependentBranchesFinish(t *testing.T) {
	nodes := []Node{
		{Name: "a"},
		{Name: "b", DependsOn: []string{"a"}},
		{Name: "c", DependsOn: []string{"b"}},
		{Name: "x"},
		{Name: "y", DependsOn: []string{"x"}},
		{Name: "z", DependsOn: []string{"c", "y"}},
	}
	skipped := map[string]string{}
	got, err := Run(context.Background(), nodes, 2, nil, func(ctx context.Context, name string) Status {
		if name == "a" {
			return Failed
		}
		return Succeeded
	}, func(name, reason string) { skipped[name] = reason })
	require.NoError(t, err)
	assert.Equal(t, map[string]Status{"a": Failed, "b": Skipped, "c": Skipped, "x": Succeeded, "y": Succeeded, "z": Skipped}, got)
	assert.Equal(t, `upstream task "a" failed`, skipped["b"])
	assert.Equal(t, `upstream task "b" did not succeed`, skipped["c"])
}

func TestConcurrencyLimit(t *testing.T) {
	var nodes []Node
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		nodes = append(nodes, Node{Name: n})
	}
	var live, peak atomic.Int32
	_, err := Run(context.Background(), nodes, 3, nil, func(ctx context.Context, name string) Status {
		n := live.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		live.Add(-1)
		return Succeeded
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(3), peak.Load())
}

func TestCancellationStopsRunningAndSkipsTheRest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	nodes := []Node{{Name: "long"}, {Name: "after", DependsOn: []string{"long"}}, {Name: "queued"}}
	go func() {
		<-started
		cancel()
	}()
	got, err := Run(ctx, nodes, 1, nil, func(ctx context.Context, name string) Status {
		close(started)
		<-ctx.Done()
		return Cancelled
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]Status{"long": Cancelled, "after": Skipped, "queued": Skipped}, got)
}

func TestPoolsLimitTheirTasks(t *testing.T) {
	var nodes []Node
	for _, n := range []string{"a1", "a2", "a3", "a4", "b1", "b2"} {
		pool := "a"
		if n[0] == 'b' {
			pool = ""
		}
		nodes = append(nodes, Node{Name: n, Pool: pool})
	}
	var mu sync.Mutex
	live := map[string]int{}
	peak := map[string]int{}
	_, err := Run(context.Background(), nodes, 4, map[string]int{"a": 1}, func(ctx context.Context, name string) Status {
		p := name[:1]
		mu.Lock()
		live[p]++
		if live[p] > peak[p] {
			peak[p] = live[p]
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		live[p]--
		mu.Unlock()
		return Succeeded
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, peak["a"])
	assert.Equal(t, 2, peak["b"], "tasks outside the pool are not held back by it")
}

func TestDoneNodesAreNotRun(t *testing.T) {
	nodes := diamond()
	nodes[0].Done = true
	nodes[1].Done = true
	var ran []string
	var mu sync.Mutex
	got, err := Run(context.Background(), nodes, 2, nil, func(ctx context.Context, name string) Status {
		mu.Lock()
		ran = append(ran, name)
		mu.Unlock()
		return Succeeded
	}, nil)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"c", "d"}, ran)
	assert.Equal(t, Succeeded, got["a"])
	assert.Equal(t, Succeeded, got["d"])
}
