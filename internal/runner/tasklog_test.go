package runner

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/redact"
)

type logObserver struct {
	mu    sync.Mutex
	lines []LogLine
}

func (o *logObserver) TaskStarted(string)               {}
func (o *logObserver) TaskFinished(string, *TaskResult) {}
func (o *logObserver) TaskSkipped(string, string)       {}
func (o *logObserver) TaskLog(_ string, l LogLine) {
	o.mu.Lock()
	o.lines = append(o.lines, l)
	o.mu.Unlock()
}
func (o *logObserver) messages() (out []string) {
	for _, l := range o.lines {
		out = append(out, l.Message)
	}
	return out
}

func TestLineWriterCutsLongLines(t *testing.T) {
	var got []string
	var raws []int
	w := &lineWriter{emit: func(s string, raw int) { got, raws = append(got, s), append(raws, raw) }}
	// One line far longer than the limit, written in pieces, then a short
	// one ending in \r\n, then an unterminated one as long as the limit
	// that ends in the middle of a two-byte character.
	chunk := bytes.Repeat([]byte("x"), 4096)
	for range 100 {
		_, _ = w.Write(chunk)
	}
	assert.LessOrEqual(t, cap(w.buf), 2*MaxLogLineBytes, "a long line is not held in memory")
	_, _ = w.Write([]byte("\nshort\r\n" + strings.Repeat("a", MaxLogLineBytes-1) + "é tail"))
	w.Flush()
	require.Len(t, got, 3)
	// (compared as bools: a failure would print 16 KiB lines)
	assert.True(t, got[0] == strings.Repeat("x", MaxLogLineBytes)+"… [line truncated: 409600 bytes, the first 16384 kept]", got[0][MaxLogLineBytes-10:])
	assert.Equal(t, "short", got[1])
	assert.True(t, got[2] == strings.Repeat("a", MaxLogLineBytes-1)+"… [line truncated: 16390 bytes, the first 16383 kept]",
		"the cut does not split a UTF-8 sequence: %q", got[2][MaxLogLineBytes-10:])
	assert.Equal(t, []int{409601, 7, MaxLogLineBytes + 6}, raws)
	assert.True(t, len(w.last) == 3 && w.last[1] == "short", "the last lines are kept for failure messages")
}

func TestLineWriterMasksASecretTheCutHalves(t *testing.T) {
	var got []string
	w := &lineWriter{red: redact.New("hunter2-secret"), emit: func(s string, _ int) { got = append(got, s) }}
	_, _ = w.Write([]byte(strings.Repeat("p", MaxLogLineBytes-4) + "hunter2-secret and more\n"))
	require.Len(t, got, 1)
	assert.Equal(t, "pppp[redacted]… [line truncated: 16403 bytes, the first 16384 kept]", got[0][MaxLogLineBytes-8:])
}

func TestTaskLogDropsBeyondItsLimit(t *testing.T) {
	obs := &logObserver{}
	var file bytes.Buffer
	l := newTaskLog("t", 1, obs, &file, &recorder{}, nil)
	l.limit = 100
	w := &lineWriter{emit: func(s string, raw int) { l.add("info", "stdout", s, nil, raw) }}
	for range 10 {
		_, _ = w.Write([]byte(strings.Repeat("y", 29) + "\n")) // 30 bytes a line
	}
	l.line("info", "log", "after the limit", nil)
	l.close()
	msgs := obs.messages()
	require.Len(t, msgs, 4, "three lines fit, then one saying what was dropped")
	assert.Equal(t, strings.Repeat("y", 29), msgs[2])
	assert.Equal(t, "log limit reached: dropped the last 226 B (226 bytes) of this attempt's output; an attempt may log at most 100 B", msgs[3])
	assert.Equal(t, 4, strings.Count(file.String(), "\n"), "task.log holds the same lines")
	assert.Contains(t, file.String(), "log limit reached")
}
