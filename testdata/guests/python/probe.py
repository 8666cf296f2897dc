"""The Python twin of testdata/guests/probe: a built-in python task whose
params pick a behaviour, so the same conformance table runs on both guests.

The capability actions (http, secret, sql_execute, sql_query) report the
host's answer instead of failing: {"ok": true, ...} or {"ok": false,
"error": "<the host's message>"}, with every key present (null when it does
not apply), exactly as the Rust probe does."""
import base64
import json
import os
import socket
import sys
import time

import ork


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
    if action == "config":
        # The executor's config: from ork.yaml, as executor.config answers.
        from ork import _abi

        return {"config": _abi.invoke(_abi.OP_EXECUTOR_CONFIG)}
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
    if action == "http":
        body = params.get("body")
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":"))
        timeout_ms = params.get("timeout_ms")
        return capability(
            lambda: ctx.http.request(
                params.get("method") or "GET",
                params["url"],
                headers=params.get("headers"),
                body=body,
                timeout=timeout_ms / 1000 if timeout_ms else None,
            ),
            lambda resp: {"status": resp.status, "body": resp.text},
            ("status", "body"),
        )
    if action == "secret":
        name = params["name"]
        result = capability(lambda: ctx.secret(name), lambda value: {"value": value}, ("value",))
        if result["ok"]:
            value = result["value"]
            if params.get("print"):
                print(f"secret {name} is {value}")
                ctx.log.info(f"secret {name} is {value}")
            if params.get("fail"):
                raise RuntimeError(f"failing with secret {name} = {value}")
        return result
    if action == "sql_execute":
        db = ctx.sql(params["connection"])
        return capability(
            lambda: db.execute(params["sql"], params.get("params")),
            lambda n: {"rows_affected": n},
            ("rows_affected",),
        )
    if action == "sql_query":
        db = ctx.sql(params["connection"])
        return capability(
            lambda: db.query(params["sql"], params.get("params")),
            lambda r: {"columns": r.columns, "rows": [[wire_value(v) for v in row] for row in r.rows]},
            ("columns", "rows"),
        )
    raise ValueError(f"unknown action {action!r}")


def capability(call, fields, keys):
    """``{"ok": True, "error": None, **fields(call())}``, or ``{"ok": False,
    "error": <the host's message>}`` with ``keys`` set to None."""
    try:
        value = call()
    except ork.HostError as e:
        return {**{k: None for k in keys}, "ok": False, "error": e.message}
    return {**fields(value), "ok": True, "error": None}


def wire_value(v):
    """A SQL value as the host sent it: bytes back to {"base64": ...}."""
    if isinstance(v, bytes):
        return {"base64": base64.b64encode(v).decode("ascii")}
    return v
