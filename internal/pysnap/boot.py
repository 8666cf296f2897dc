# The boot script of a pysnap snapshot (internal/pysnap). It runs once, as
# `python -c`, imports the warm module set, defines the runner, prints what
# the host needs to find it, and calls the snapshot trigger, which never
# returns: every task starts later in _pysnap_run, called by the host through
# the trampoline on a copy of this interpreter's memory.
import atexit, builtins, gc, importlib.machinery, io, json, linecache, os, random, struct, sys, time, types

for _pysnap_name in json.loads(__PYSNAP_WARM__):
    __import__(_pysnap_name)
del _pysnap_name
__PYSNAP_EXTRA__

_PYSNAP_MAILBOX = bytearray(__PYSNAP_MAILBOX_SIZE__)
_PYSNAP_MAILBOX[0:8] = b"PYSNAPMB"
_PYSNAP_HDR = struct.Struct("<II")


_PYSNAP_FILE_FINDER = importlib.machinery.FileFinder
# The stdlib zip lives in the interpreter's embedded file system: it cannot
# change, so its zipimporters keep their directory caches.
_PYSNAP_STDLIB_ZIP = os.path.join(sys.prefix, "lib", f"python{sys.version_info[0]}{sys.version_info[1]}.zip")


def _pysnap_c_int(n):
    # What exit() receives when CPython ends with this status: a C int.
    return ((n & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000


def _pysnap_exit_code(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return _pysnap_c_int(code)
    try:
        sys.stderr.write(str(code) + "\n")
    except BaseException:
        pass
    return 1


def _pysnap_flush():
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if s is not None:
                s.flush()
        except BaseException:
            pass


def _pysnap_request():
    n, flags = _PYSNAP_HDR.unpack_from(_PYSNAP_MAILBOX, 0)
    if flags & 1:  # too big for the mailbox: on stdin
        chunks, left = [], n
        while left > 0:
            b = os.read(0, left)
            if not b:
                raise EOFError(f"the task request is {n} bytes, stdin ended after {n - left}")
            chunks.append(b)
            left -= len(b)
        data = b"".join(chunks)
    else:
        data = bytes(memoryview(_PYSNAP_MAILBOX)[16 : 16 + n])
    return json.loads(data)


def _pysnap_task():
    req = _pysnap_request()
    # Frozen at boot, made fresh per task.
    random.seed(int(req["seed"], 16))
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = list(req["argv"])
    if sys.argv[:1] == ["-c"]:
        sys.orig_argv = ["python", "-c", req["code"]] + sys.argv[1:]
    else:
        sys.orig_argv = ["python"] + sys.argv
    if req.get("path") is not None:
        sys.path[:] = req["path"]
    # Directory listings cached at boot (project mounts were empty then).
    # Not importlib.invalidate_caches(): that imports importlib.metadata and
    # rereads the stdlib zip's directory (~250 ms).
    cache = sys.path_importer_cache
    for key, finder in list(cache.items()):
        if isinstance(finder, _PYSNAP_FILE_FINDER):
            finder.invalidate_caches()
        elif not (isinstance(key, str) and key.startswith(_PYSNAP_STDLIB_ZIP)):
            del cache[key]  # made again on first use
    linecache.clearcache()
    if "logging" in sys.modules:
        sys.modules["logging"]._startTime = time.time()
    if "tempfile" in sys.modules:
        sys.modules["tempfile"]._name_sequence = None
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    main.__dict__["__spec__"] = None
    sys.modules["__main__"] = main
    rc = 0
    try:
        code = compile(req["code"], req.get("filename") or "<string>", "exec")
        exec(code, main.__dict__)
    except SystemExit as e:
        rc = _pysnap_exit_code(e)
    except BaseException as e:
        # Without this runner's frame, as `python -c` would print it.
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        try:
            e.__traceback__ = tb
            sys.excepthook(type(e), e, tb)
        except BaseException:
            pass
        rc = 1
    _pysnap_flush()
    try:
        atexit._run_exitfuncs()
    except SystemExit as e:
        rc = _pysnap_exit_code(e)
    except BaseException:
        pass
    _pysnap_flush_files()
    return rc


def _pysnap_flush_files():
    # The interpreter's shutdown would finalize (flush and close) files the
    # task left open; os._exit does not. gc.get_objects() leaves out the
    # boot's objects (frozen in the permanent generation), so this walks
    # only what the task made.
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            try:
                if not obj.closed:
                    obj.flush()
            except BaseException:
                pass


def _pysnap_run():
    rc = 70
    try:
        rc = _pysnap_task()
    except BaseException as e:
        try:
            sys.stderr.write(f"pysnap: the task runner failed: {type(e).__name__}: {e}\n")
        except BaseException:
            pass
        rc = 70
    finally:
        _pysnap_flush()
        try:
            os._exit(rc)
        finally:
            os._exit(70)


def _pysnap_probe():
    pass


def _pysnap_open_fds():
    fds = []
    for fd in range(0, 64):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
    return fds


gc.collect()
_PYSNAP_KEY = struct.pack("<I", __PYSNAP_MAGIC__)
print(
    "\n__PYSNAP_INFO__ "
    + json.dumps(
        {
            "runner": id(_pysnap_run),
            "function_type": id(type(_pysnap_run)),
            "runner_globals": id(_pysnap_run.__globals__),
            "runner_name": id(_pysnap_run.__name__),
            "runner_code": id(_pysnap_run.__code__),
            "probe": id(_pysnap_probe),
            "mailbox": id(_PYSNAP_MAILBOX),
            "bytearray_type": id(bytearray),
            "mailbox_size": len(_PYSNAP_MAILBOX),
            "key": id(_PYSNAP_KEY),
            "version": list(sys.version_info[:3]),
            "platform": sys.platform,
            "pointer_size": struct.calcsize("P"),
            "open_fds": _pysnap_open_fds(),
            "modules": len(sys.modules),
        }
    )
)
_pysnap_flush()
gc.collect()
gc.freeze()
time.clock_getres(id(_PYSNAP_KEY) + 16)
raise SystemExit("pysnap: the snapshot trigger returned: this host does not take snapshots")
