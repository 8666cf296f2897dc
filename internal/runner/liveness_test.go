package runner

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/store"
)

func runningRun(pid int, proc string) store.Run {
	host, _ := os.Hostname()
	return store.Run{ID: "r", Status: StatusRunning, PID: pid, Host: host, Proc: proc}
}

// A run's process is recognised by its pid and, where /proc tells, by its
// boot id and start time, so that a pid reused after a crash or a reboot is
// not taken for the ork process that ran the run.
func TestRunLiveness(t *testing.T) {
	self := ProcessIdentity(os.Getpid())
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		require.NotEmpty(t, self)
		assert.Equal(t, self, ProcessIdentity(os.Getpid()), "stable for one process")
	}
	assert.Equal(t, ProcessAlive, RunLiveness(runningRun(os.Getpid(), self)))
	assert.Equal(t, ProcessAlive, RunLiveness(runningRun(os.Getpid(), "")), "runs recorded without an identity go by the pid")
	if self != "" {
		assert.Equal(t, ProcessGone, RunLiveness(runningRun(os.Getpid(), "another-boot/1")), "same pid, another boot")
		assert.Equal(t, ProcessGone, RunLiveness(runningRun(os.Getpid(), self+"0")), "same pid, started at another time")
	}

	// A process that exited (and was reaped) is gone.
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	assert.Equal(t, ProcessGone, RunLiveness(runningRun(cmd.Process.Pid, "")))

	other := runningRun(os.Getpid(), self)
	other.Host = "some-other-host"
	assert.Equal(t, ProcessUnknown, RunLiveness(other))
	done := runningRun(os.Getpid(), self)
	done.Status = StatusSucceeded
	assert.Equal(t, ProcessGone, RunLiveness(done))
	assert.Equal(t, StatusInterrupted, EffectiveStatus(runningRun(cmd.Process.Pid, "")))
}
