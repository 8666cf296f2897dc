"""Shared fixtures for the ork Python SDK tests (run with `python3 -m pytest`
from sdk/python)."""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SDK_DIR = Path(__file__).resolve().parent.parent
if str(SDK_DIR) not in sys.path:
    sys.path.insert(0, str(SDK_DIR))

PYDANTIC_V1 = "pydantic==1.10.19"


class Project:
    """A scratch project directory: the working directory and on sys.path,
    like the project root in the sandbox."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return rel


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield Project(tmp_path)
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        paths = [getattr(module, "__file__", None) or ""] + list(getattr(module, "__path__", None) or [])
        if any(str(p).startswith(str(tmp_path)) for p in paths):
            del sys.modules[name]


@pytest.fixture(autouse=True)
def clean_logging_and_transport():
    """Every test leaves logging and the transport as it found them."""
    from ork import _abi

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    transport = _abi._transport
    yield
    assert _abi._transport is transport, "a test left a transport installed"
    assert root.handlers == handlers, "a test left logging handlers installed"
    assert root.level == level


def _is_pydantic_module(name: str) -> bool:
    return name in ("pydantic", "typing_extensions", "pydantic_core") or name.startswith(("pydantic.", "pydantic_core."))


@pytest.fixture(scope="session")
def pydantic_v1_site(tmp_path_factory):
    """A directory holding pydantic 1.10 (pure Python, as used in the
    sandbox), downloaded from PyPI once per session; ORK_TEST_WHEELS may name
    a directory of wheels to install from instead. Skips when neither works."""
    base = tmp_path_factory.mktemp("pydantic1")
    wheels = os.environ.get("ORK_TEST_WHEELS")
    if not wheels:
        wheels = str(base / "wheels")
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--platform", "any",
             "--python-version", "3.12", "--implementation", "py", "--no-deps",
             PYDANTIC_V1, "typing_extensions", "-d", wheels],
            capture_output=True, text=True, timeout=300,
        )
        if download.returncode != 0:
            pytest.skip(f"cannot download {PYDANTIC_V1}: {download.stderr.strip()[-300:]}")
    site = base / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--find-links", wheels,
         "--target", str(site), PYDANTIC_V1, "typing_extensions"],
        capture_output=True, text=True, timeout=300,
    )
    if install.returncode != 0:
        pytest.skip(f"cannot install {PYDANTIC_V1}: {install.stderr.strip()[-300:]}")
    return site


@pytest.fixture
def pydantic_v1(pydantic_v1_site):
    """``import pydantic`` gives pydantic 1.10 for the duration of the test."""
    saved = {k: v for k, v in sys.modules.items() if _is_pydantic_module(k)}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(pydantic_v1_site))
    try:
        import pydantic

        assert pydantic.VERSION.startswith("1."), pydantic.VERSION
        yield pydantic
    finally:
        sys.path.remove(str(pydantic_v1_site))
        for k in [k for k in sys.modules if _is_pydantic_module(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture
def pydantic_v2():
    """pydantic v2 as installed on the test machine (skips without it)."""
    if any(k == "pydantic" for k in sys.modules):
        import pydantic
    else:
        pydantic = pytest.importorskip("pydantic")
    if not str(pydantic.VERSION).startswith("2."):
        pytest.skip(f"pydantic {pydantic.VERSION} is not v2")
    return pydantic
