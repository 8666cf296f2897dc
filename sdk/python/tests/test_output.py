"""Turning return values into the task's JSON output."""

import dataclasses
import datetime
import decimal
import enum
from typing import List, Optional

import pytest

from ork import OutputError
from ork._output import to_json
from ork.testing import MockHost


def output_of(value):
    outcome = MockHost().run_task(lambda ctx, upstream: value)
    assert outcome.succeeded, outcome.error
    assert outcome.output_set
    return outcome.output


def error_of(value):
    outcome = MockHost().run_task(lambda ctx, upstream: value)
    assert not outcome.succeeded
    assert outcome.error.kind == "output"
    assert not outcome.output_set
    return outcome.error.message


class Color(enum.IntEnum):
    RED = 1


class Name(str, enum.Enum):
    ADA = "ada"


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        (True, True),
        (0, 0),
        (2**70, 2**70),
        (1.5, 1.5),
        ("é", "é"),
        ([1, "a", None], [1, "a", None]),
        ((1, (2, 3)), [1, [2, 3]]),
        ({"a": {"b": [1.0]}}, {"a": {"b": [1.0]}}),
        ({1: "int keys become strings"}, {"1": "int keys become strings"}),
        (Color.RED, 1),
        (Name.ADA, "ada"),
    ],
)
def test_json_values(value, expected):
    assert output_of(value) == expected


def test_none_is_stored_as_null():
    outcome = MockHost().run_task(lambda ctx, upstream: None)
    assert outcome.output_set and outcome.output is None
    assert outcome.calls[-1] == "output.set"


@dataclasses.dataclass
class Row:
    id: int
    tags: List[str]
    parent: Optional["Row"] = None


def test_dataclasses():
    value = {"rows": [Row(1, ["a"]), Row(2, [], Row(3, ("x",)))]}
    assert output_of(value) == {
        "rows": [
            {"id": 1, "tags": ["a"], "parent": None},
            {"id": 2, "tags": [], "parent": {"id": 3, "tags": ["x"], "parent": None}},
        ]
    }


def test_a_dataclass_class_is_not_an_output():
    assert "output is a type;" in error_of(Row)


@pytest.mark.parametrize(
    "value, message",
    [
        (
            {"rows": [1, 2, 3, datetime.datetime(2024, 1, 1)]},
            'task output is not JSON-serializable: output["rows"][3] is a datetime.datetime; '
            "return JSON-compatible values (dict, list, str, int, float, bool, None), a dataclass or a pydantic model",
        ),
        ({"amount": decimal.Decimal("1.5")}, 'output["amount"] is a decimal.Decimal;'),
        ({1, 2}, "output is a set;"),
        (b"bytes", "output is a bytes;"),
        ([{"x": float("nan")}], 'output[0]["x"] is nan, and JSON has no NaN or infinity'),
        ({"inf": float("-inf")}, 'output["inf"] is -inf'),
        ({(1, 2): "tuple key"}, "output has a key of type tuple ((1, 2)); JSON object keys are strings"),
        ({"row": Row(1, [object()])}, 'output["row"].tags[0] is an object;'),
        ({'quote"key': {1.5: 1}}, 'output["quote\\"key"] has a key of type float'),
    ],
)
def test_errors_name_the_path_and_type(value, message):
    assert message in error_of(value)


def test_cycles_are_reported():
    a = []
    a.append({"self": a})
    assert 'output[0]["self"] contains itself' in error_of(a)


def test_shared_values_are_not_cycles():
    shared = [1]
    assert output_of({"a": shared, "b": shared}) == {"a": [1], "b": [1]}


def test_output_error_attributes():
    with pytest.raises(OutputError) as info:
        to_json({"a": [object()]})
    assert info.value.path == 'output["a"][0]'


def test_too_large_output():
    big = "x" * (16 << 20)
    message = error_of({"blob": big})
    assert message.startswith("task output is 16777227 bytes of JSON, more than the 16 MiB the host accepts")


def test_large_output_grows_the_mailbox():
    big = {"blob": "y" * 300_000}
    assert output_of(big) == big


def test_pydantic_v1_output(pydantic_v1):
    class Item(pydantic_v1.BaseModel):
        name: str
        when: datetime.date
        price: decimal.Decimal

    class TaskOutput(pydantic_v1.BaseModel):
        rows_affected: int
        items: List[Item]

    value = TaskOutput(rows_affected=2, items=[Item(name="a", when=datetime.date(2024, 1, 2), price="1.50")])
    assert output_of(value) == {
        "rows_affected": 2,
        "items": [{"name": "a", "when": "2024-01-02", "price": 1.5}],
    }
    assert output_of([value])[0]["rows_affected"] == 2


def test_pydantic_v1_unencodable_field(pydantic_v1):
    class Holder(pydantic_v1.BaseModel):
        thing: object

        class Config:
            arbitrary_types_allowed = True

    assert 'output["thing"] is an object' in error_of(Holder(thing=object()))

    class Bad(pydantic_v1.BaseModel):
        value: float

    assert 'output["value"] is nan' in error_of(Bad(value=float("nan")))


def test_pydantic_v2_output(pydantic_v2):
    class Out(pydantic_v2.BaseModel):
        when: datetime.date
        n: int

    assert output_of(Out(when=datetime.date(2024, 5, 6), n=1)) == {"when": "2024-05-06", "n": 1}
