"""The Python twin of testdata/guests/probe: a built-in python task whose
params pick a behaviour, so the same conformance table runs on both guests."""
import os
import socket
import sys
import time


def probe_trap():
    # The closest Python has to a trap: the interpreter aborts.
    os.abort()


def run(ctx, upstream, action, **params):
    if action == "echo":
        ctx.metrics.record("probe_calls", 1, labels={"task": ctx.task_name, "kind": "echo"})
        ctx.log.info("echo", extra={"n": 1})
        print("stdout line")
        print("stderr line", file=sys.stderr)
        return {
            "task": ctx.task_name,
            "workflow": ctx.workflow_name,
            "run_id": ctx.run_id,
            "attempt": ctx.attempt,
            "executor": ctx.executor_name,
            "config_file": ctx.config_file,
            "scratch_dir": str(ctx.scratch_dir),
            "output_dir": str(ctx.output_dir),
            "params": dict(params, action=action),
            "upstream": upstream,
        }
    if action == "fail":
        raise RuntimeError(params.get("message", "boom"))
    if action == "panic":
        raise AssertionError("probe panic")
    if action == "alloc":
        mb = params["mb"]
        block = bytearray(mb << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        return {"allocated_mb": mb}
    if action == "spin":
        n = 0
        while True:
            n += 1
    if action == "sleep":
        time.sleep(params["ms"] / 1000)
        return {"slept_ms": params["ms"]}
    if action == "read_file":
        try:
            with open(params["path"]) as f:
                return {"ok": True, "content": f.read()}
        except OSError as e:
            return {"ok": False, "error": str(e)}
    if action == "write_file":
        try:
            with open(params["path"], "w") as f:
                f.write(params["content"])
            return {"ok": True}
        except OSError as e:
            return {"ok": False, "error": str(e)}
    if action == "list_dir":
        try:
            return {"ok": True, "entries": sorted(os.listdir(params["path"]))}
        except OSError as e:
            return {"ok": False, "error": str(e)}
    if action == "env":
        return {"vars": {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}}
    if action == "net":
        host, port = params["addr"].rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return {"ok": True}
        except Exception as e:  # no sockets in the sandbox: AttributeError or OSError
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    if action == "exit":
        sys.stdout.flush()
        os._exit(params["code"])
    if action == "trap":
        probe_trap()
    if action == "time":
        return {"unix_ms": int(time.time() * 1000)}
    raise ValueError(f"unknown action {action!r}")
