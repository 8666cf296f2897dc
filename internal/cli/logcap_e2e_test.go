package cli_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/runner"
)

// TestGuestOutputIsBounded: a task printing far more than an attempt may log
// still succeeds, its stored log stops at the limit and ends with a line
// saying what was dropped; a line without end is cut with a marker.
func TestGuestOutputIsBounded(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", `name: loud
tasks:
  flood: {executor: python, config_file: tasks/flood.yaml}
  oneline: {executor: python, config_file: tasks/oneline.yaml}
`, map[string]string{
		// 20 MiB in 4 KiB lines, written 1 MiB at a time.
		"flood": "import sys\ndef run(ctx, upstream):\n    block = ('z' * 4095 + '\\n') * 256\n    for _ in range(20):\n        sys.stdout.write(block)\n    return 'done'\n",
		// 8 MiB with no newline, to stderr.
		"oneline": "import sys\ndef run(ctx, upstream):\n    for _ in range(8):\n        sys.stderr.write('q' * (1 << 20))\n    return 'done'\n",
	})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr[:min(len(r.stderr), 2000)])
	s := decodeSummary(t, r)
	assert.Equal(t, "succeeded", s.Tasks["flood"].Status)
	assert.Equal(t, "succeeded", s.Tasks["oneline"].Status)

	type logLine struct {
		Level, Source, Message string
	}
	logsOf := func(task string) []logLine {
		t.Helper()
		lr := ork(t, dir, "logs", s.RunID, task, "--json")
		require.Equal(t, 0, lr.code, lr.stderr)
		var out []logLine
		sc := bufio.NewScanner(strings.NewReader(lr.stdout))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l logLine
			require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
			out = append(out, l)
		}
		require.NoError(t, sc.Err())
		return out
	}

	flood := logsOf("flood")
	require.NotEmpty(t, flood)
	stored := 0
	for _, l := range flood {
		stored += len(l.Message) + 1
	}
	assert.LessOrEqual(t, stored, runner.MaxTaskLogBytes+200, "the stored log stops at the limit")
	assert.Greater(t, stored, runner.MaxTaskLogBytes-8192, "the log is filled up to the limit")
	last := flood[len(flood)-1]
	assert.Equal(t, "warn", last.Level)
	// 20 MiB written, 4096 lines of 4 KiB (16 MiB) kept, 4 MiB dropped.
	assert.Equal(t, "log limit reached: dropped the last 4 MiB (4194304 bytes) of this attempt's output; an attempt may log at most 16 MiB", last.Message)
	for _, l := range flood[:len(flood)-1] {
		if !assert.Equal(t, strings.Repeat("z", 4095), l.Message) {
			break
		}
	}

	one := logsOf("oneline")
	require.Len(t, one, 1, "one line, cut")
	assert.Equal(t, "stderr", one[0].Source)
	assert.True(t, strings.HasPrefix(one[0].Message, strings.Repeat("q", runner.MaxLogLineBytes)), "the line keeps its first %d bytes", runner.MaxLogLineBytes)
	assert.Equal(t, "… [line truncated: 8388608 bytes, the first 16384 kept]", one[0].Message[runner.MaxLogLineBytes:])

	// The task.log files hold the same bounded lines.
	fi, err := os.Stat(filepath.Join(dir, ".ork", "runs", s.RunID, "flood", "task.log"))
	require.NoError(t, err)
	assert.Less(t, fi.Size(), int64(runner.MaxTaskLogBytes+(4<<20)))
}
