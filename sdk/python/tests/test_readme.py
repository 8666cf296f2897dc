"""The README's examples run: its files are written into a scratch project,
and its test block is run against them."""

import inspect
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- (file: (?P<path>\S+)|test) -->\n```(?P<lang>\w+)\n(?P<body>.*?)\n```", re.S)


def blocks():
    files, tests = {}, []
    for m in BLOCK.finditer(README.read_text()):
        if m.group("path"):
            files[m.group("path")] = m.group("body") + "\n"
        else:
            tests.append(m.group("body"))
    return files, tests


def test_the_readme_has_examples():
    files, tests = blocks()
    assert {
        "executors/report.py",
        "ork.yaml",
        "tasks/clean.py",
        "tasks/clean.yaml",
        "tasks/eu_report.yaml",
        "tasks/sync.py",
    } <= set(files)
    assert len(tests) == 1


def test_readme_examples(project, pydantic_v1, tmp_path_factory):
    yaml = pytest.importorskip("yaml")
    files, (test_code,) = blocks()
    for path, text in files.items():
        project.write(path, text)

    # The prose and the test agree with the YAML files.
    ork_yaml = yaml.safe_load(files["ork.yaml"])
    assert ork_yaml["executors"]["report"]["config"] == {"currency": "EUR", "rate": 1.1}
    assert yaml.safe_load(files["tasks/clean.yaml"])["params"] == {"min_amount": 10}

    namespace = {"__name__": "readme_tests"}
    exec(compile(test_code, str(README), "exec"), namespace)
    tests = {k: v for k, v in namespace.items() if k.startswith("test_") and callable(v)}
    assert len(tests) == 4
    for name, func in tests.items():
        args = {}
        if "tmp_path" in inspect.signature(func).parameters:
            args["tmp_path"] = tmp_path_factory.mktemp(name)
        func(**args)
