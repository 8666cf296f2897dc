package pysnap

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

func TestDataRuns(t *testing.T) {
	img := make([]byte, 1000)
	img[0] = 1
	img[10] = 1  // within the gap: joins the first run
	img[500] = 1 // a new run
	img[999] = 1 // and another
	got := dataRuns(img, 64)
	want := []chunk{{0, 11}, {500, 501}, {999, 1000}}
	if len(got) != len(want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("runs %v, want %v", got, want)
		}
	}
	if r := dataRuns(make([]byte, 100), 64); len(r) != 0 {
		t.Errorf("runs of zeros: %v", r)
	}
	for _, v := range []int32{0, 1, 63, 64, -1, -64, -65, 1 << 20, -1 << 31, 1<<31 - 1} {
		r := &reader{b: appendS32(nil, v)}
		if got := int32(r.s64()); got != v || r.off != len(r.b) {
			t.Errorf("appendS32(%d) reads back as %d", v, got)
		}
	}
}

// The baked module is a snapshot on its own: any engine that applies data
// segments (here wazero, without pysnap's allocator) runs a task from it
// by writing the request and calling the entry.
func TestBakedModuleRunsATask(t *testing.T) {
	f := shared(t)
	ctx := context.Background()
	baked, err := f.snap.Bake()
	if err != nil {
		t.Fatal(err)
	}
	image, err := f.snap.readImage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("baked module: %d bytes, %d data segments for %d non-zero bytes of %d", len(baked), len(dataRuns(image, bakeGap)), f.snap.Meta.NonZeroBytes, len(image))
	if k := f.snap.BakedKey(); len(k) != 64 || k == f.snap.Meta.Key {
		t.Errorf("BakedKey %q is not a sha256 of its own", k)
	}
	eng, err := NewEngine(ctx, EngineConfig{MemoryLimitPages: testLimitPages, Cache: f.cache})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	cm, err := eng.rt.CompileModule(ctx, baked)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close(ctx)
	for i, code := range []string{"import json, sys; print(json.dumps(sys.argv)); sys.exit(4)", "print('again')"} {
		mounts := dirs(t, nil)
		req, err := f.snap.NewRequest(TaskSpec{Mounts: mounts, Argv: []string{"-c", "x"}, Code: code})
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		fs := wazero.NewFSConfig().WithReadOnlyDirMount(mounts[0].HostPath, "/").WithDirMount(mounts[1].HostPath, "/tmp")
		mod, err := eng.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions().
			WithFSConfig(fs).WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
			WithStdout(&stdout).WithStderr(&stderr))
		if err != nil {
			t.Fatal(err)
		}
		mem := mod.Memory()
		if mem.Size() != uint32(f.snap.size()) {
			t.Fatalf("memory %d bytes, image %d", mem.Size(), f.snap.size())
		}
		view, _ := mem.Read(0, mem.Size())
		if err := req.Write(view); err != nil {
			t.Fatal(err)
		}
		_, callErr := mod.ExportedFunction(EntryExport).Call(ctx)
		var ee *sys.ExitError
		if !errors.As(callErr, &ee) {
			t.Fatalf("task %d: %v; stderr %s", i, callErr, stderr.String())
		}
		want := map[int]string{0: "[\"-c\", \"x\"]\n", 1: "again\n"}[i]
		if code := map[int]uint32{0: 4, 1: 0}[i]; ee.ExitCode() != code || stdout.String() != want {
			t.Errorf("task %d: exit %d, stdout %q, stderr %q", i, ee.ExitCode(), stdout.String(), stderr.String())
		}
		_ = mod.Close(ctx)
	}
}
