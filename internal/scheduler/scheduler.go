// Package scheduler runs a DAG of tasks: each task starts as soon as all of its
// dependencies succeeded, up to a concurrency limit; a failure skips
// everything downstream while independent branches finish.
package scheduler

import (
	"context"
	"fmt"
	"sync"
)

// Status is a task's final state.
type Status string

const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Skipped   Status = "skipped"   // a dependency did not succeed, or the run was cancelled first
	Cancelled Status = "cancelled" // it was running when the run was cancelled
)

// Node is a task in the graph.
type Node struct {
	Name      string
	DependsOn []string
	Pool      string // tasks of one pool share its limit (see Run); "" = none
	Done      bool   // already succeeded (a resumed run): not run again
}

// Func runs one task. It must return promptly once ctx is cancelled, with
// Cancelled (or any status it finds right).
type Func func(ctx context.Context, name string) Status

// SkipFunc is told about each task that will not run, and why.
type SkipFunc func(name string, reason string)

// Run executes the graph. nodes must be acyclic with known dependencies (the
// project loader guarantees it); their order breaks ties between ready tasks.
// At most concurrency tasks run at once, and at most pools[p] of the tasks
// whose Pool is p. Nodes marked Done count as succeeded without running. It
// returns every task's status.
func Run(ctx context.Context, nodes []Node, concurrency int, pools map[string]int, run Func, skip SkipFunc) (map[string]Status, error) {
	if concurrency < 1 {
		concurrency = 1
	}
	index := map[string]int{}
	for i, n := range nodes {
		if _, dup := index[n.Name]; dup {
			return nil, fmt.Errorf("duplicate task %q", n.Name)
		}
		index[n.Name] = i
	}
	remaining := make([]int, len(nodes))
	children := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, d := range n.DependsOn {
			j, ok := index[d]
			if !ok {
				return nil, fmt.Errorf("task %q depends on unknown task %q", n.Name, d)
			}
			remaining[i]++
			children[j] = append(children[j], i)
		}
	}

	status := make([]Status, len(nodes))
	finished := 0
	var ready []int
	var skipTree func(i int, reason string)
	skipTree = func(i int, reason string) {
		if status[i] != "" {
			return
		}
		status[i] = Skipped
		finished++
		if skip != nil {
			skip(nodes[i].Name, reason)
		}
		for _, c := range children[i] {
			skipTree(c, fmt.Sprintf("upstream task %q did not succeed", nodes[i].Name))
		}
	}
	complete := func(i int, s Status) {
		status[i] = s
		finished++
		for _, c := range children[i] {
			if s == Succeeded {
				remaining[c]--
				if remaining[c] == 0 && status[c] == "" {
					ready = append(ready, c)
				}
			} else {
				skipTree(c, fmt.Sprintf("upstream task %q %s", nodes[i].Name, s))
			}
		}
	}
	for i, n := range nodes {
		if n.Done {
			complete(i, Succeeded)
		}
	}
	ready = ready[:0]
	for i := range nodes {
		if status[i] == "" && remaining[i] == 0 {
			ready = append(ready, i)
		}
	}

	type done struct {
		i int
		s Status
	}
	results := make(chan done)
	var wg sync.WaitGroup
	running := 0
	inPool := map[string]int{}
	for finished < len(nodes) {
		if ctx.Err() != nil {
			// Start nothing new; wait for running tasks.
			for _, i := range ready {
				skipTree(i, "the run was cancelled before it started")
			}
			ready = nil
			if running == 0 {
				for i := range nodes {
					skipTree(i, "the run was cancelled before it started")
				}
				break
			}
		}
		for running < concurrency && len(ready) > 0 && ctx.Err() == nil {
			k := -1
			for j, i := range ready {
				p := nodes[i].Pool
				if limit := pools[p]; p == "" || limit <= 0 || inPool[p] < limit {
					k = j
					break
				}
			}
			if k < 0 {
				break // every ready task waits for its pool
			}
			i := ready[k]
			ready = append(ready[:k], ready[k+1:]...)
			inPool[nodes[i].Pool]++
			running++
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results <- done{i, run(ctx, nodes[i].Name)}
			}(i)
		}
		if running == 0 {
			break // nothing runnable: cannot happen on an acyclic graph
		}
		d := <-results
		running--
		inPool[nodes[d.i].Pool]--
		complete(d.i, d.s)
		sortByIndex(ready)
	}
	wg.Wait()
	out := make(map[string]Status, len(nodes))
	for i, n := range nodes {
		s := status[i]
		if s == "" {
			s = Skipped
		}
		out[n.Name] = s
	}
	return out, nil
}

func sortByIndex(s []int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
