package capability

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/project"
)

// A connection that cannot be used (here a malformed DSN from the
// environment) fails the tasks that use it, and only those.
func TestBadConnectionFailsOnlyItsTasks(t *testing.T) {
	t.Setenv("ORK_TEST_BAD_DSN", "postgres://u@127.0.0.1:notaport/db")
	proj := &project.Project{Connections: map[string]*project.Connection{
		"local": {Name: "local", Type: project.ConnSQLite, Path: filepath.Join(t.TempDir(), "w.db")},
		"pg":    {Name: "pg", Type: project.ConnPostgres, DSNEnv: "ORK_TEST_BAD_DSN"},
	}}
	reg := NewRegistry(proj)
	defer reg.Close()
	ex := &project.Executor{Name: "sql", Sandbox: project.Sandbox{Connections: []string{"local", "pg"}}}
	set, err := reg.For(ex)
	require.NoError(t, err)

	ctx := context.Background()
	res, err := set.SQLExecute(ctx, abi.SQLRequest{Connection: "local", SQL: "CREATE TABLE t (x INTEGER)"})
	require.NoError(t, err, "the sqlite connection must not suffer from the postgres one")
	assert.Equal(t, int64(0), res.RowsAffected)

	_, err = set.SQLQuery(ctx, abi.SQLRequest{Connection: "pg", SQL: "SELECT 1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `connection "pg"`)
}
