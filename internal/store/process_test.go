package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The child side of the cross-process tests: the test binary runs itself
// with -test.run=^TestChildProcess$ and these variables set.
const (
	envChild  = "ORK_STORE_TEST_CHILD" // "write" or "forever"
	envDB     = "ORK_STORE_TEST_DB"
	envPrefix = "ORK_STORE_TEST_PREFIX"
	envStart  = "ORK_STORE_TEST_START" // unix nanoseconds at which to open the database
)

const (
	procIterations = 40
	procBatch      = 4
)

func TestChildProcess(t *testing.T) {
	mode := os.Getenv(envChild)
	if mode == "" {
		return // only a child runs this
	}
	ctx := context.Background()
	if ns, err := strconv.ParseInt(os.Getenv(envStart), 10, 64); err == nil {
		time.Sleep(time.Until(time.Unix(0, ns)))
	}
	s, err := Open(ctx, os.Getenv(envDB))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	prefix := os.Getenv(envPrefix)
	switch mode {
	case "write":
		if err := s.CreateRun(ctx, sampleRun("shared")); err != nil && !errors.Is(err, ErrExists) {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		if err := writeRuns(ctx, s, prefix, procIterations, procBatch); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		s.Close()
		os.Exit(0)
	case "forever":
		// Record attempts until killed; say which were committed.
		if err := s.CreateRun(ctx, sampleRun(prefix)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		for i := 1; ; i++ {
			start := time.Now()
			if err := s.StartAttempt(ctx, Attempt{RunID: prefix, Task: "t", Attempt: i, StartedAt: start}); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				os.Exit(3)
			}
			end := time.Now()
			if err := s.FinishAttempt(ctx, Attempt{RunID: prefix, Task: "t", Attempt: i, Status: "failed", Reason: "exit",
				Error: ptr("exit 1"), StartedAt: start, EndedAt: &end, DurationMS: 1},
				[]Metric{{Name: "a", Value: float64(i), Time: end}, {Name: "b", Value: float64(-i), Time: end}}); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				os.Exit(3)
			}
			fmt.Printf("committed %d\n", i)
		}
	}
	os.Exit(2)
}

func child(ctx context.Context, t *testing.T, mode, db, prefix string, start time.Time) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	if _, err := os.Stat(os.Args[0]); err == nil {
		exe = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envDB+"="+db, envPrefix+"="+prefix,
		envStart+"="+strconv.FormatInt(start.UnixNano(), 10))
	return cmd
}

// Two child processes and this one open a new database at the same moment,
// which migrates it once, and then all write runs, attempts and logs
// (including logs of one shared run) concurrently. Every write succeeds and
// is there afterwards.
func TestCrossProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "sub", "ork.db")

	type result struct {
		name string
		out  []byte
		err  error
	}
	// All three open the new database at about the same moment.
	start := time.Now().Add(500 * time.Millisecond)
	results := make(chan result, 2)
	for _, name := range []string{"c1", "c2"} {
		cmd := child(ctx, t, "write", db, name, start)
		go func() {
			out, err := cmd.CombinedOutput()
			results <- result{name, out, err}
		}()
	}

	time.Sleep(time.Until(start))
	s, err := Open(ctx, db)
	require.NoError(t, err)
	defer s.Close()
	if err := s.CreateRun(ctx, sampleRun("shared")); err != nil {
		require.ErrorIs(t, err, ErrExists)
	}
	require.NoError(t, writeRuns(ctx, s, "parent", procIterations, procBatch))

	for range 2 {
		r := <-results
		require.NoError(t, r.err, "child %s: %s", r.name, r.out)
	}
	for _, p := range []string{"parent", "c1", "c2"} {
		checkRuns(t, s, p, procIterations)
	}
	checkShared(t, s, 3*procIterations*procBatch)
	var v int
	require.NoError(t, s.db.QueryRow("PRAGMA user_version").Scan(&v))
	assert.Equal(t, SchemaVersion(), v)
}

// A child records attempts until it is killed with SIGKILL: every attempt it
// said was committed (FinishAttempt returned) is in the database afterwards,
// whole, with its metrics.
func TestKilledWriterLosesNothingCommitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "ork.db")
	cmd := child(ctx, t, "forever", db, "victim", time.Now())
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	last := 0
	sc := bufio.NewScanner(stdout)
	for last < 30 && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			last, err = strconv.Atoi(n)
			require.NoError(t, err)
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	require.Equal(t, 30, last, "child: %v; %s", err, stderr.String())

	s, err := Open(context.Background(), db)
	require.NoError(t, err)
	defer s.Close()
	atts, err := s.Attempts(context.Background(), "victim")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(atts), last)
	ms, err := s.Metrics(context.Background(), "victim")
	require.NoError(t, err)
	count := map[int]int{}
	for _, m := range ms {
		count[m.Attempt]++
	}
	for i, a := range atts {
		if i < last {
			assert.Equal(t, i+1, a.Attempt)
			assert.Equal(t, "failed", a.Status)
			assert.Equal(t, 2, count[a.Attempt], "attempt %d", a.Attempt)
		}
		// An attempt whose transaction was cut short is all or nothing.
		if a.Status == "failed" {
			assert.Equal(t, 2, count[a.Attempt], "attempt %d", a.Attempt)
		} else {
			assert.Equal(t, 0, count[a.Attempt], "attempt %d", a.Attempt)
		}
	}
}
