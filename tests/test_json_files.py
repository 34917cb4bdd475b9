"""The shared reader: every malformed file is one UserInputError naming the file and the problem."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from robustattr.errors import UserInputError
from robustattr.json_files import (
    BASE64, FILE_NAME, INT, STR, dict_of, list_of, nullable, parse_json_text, read_json, read_json_lines, record,
)

SHAPE = record({"step": INT, "rng": record({"state": BASE64})},
               optional={"name": nullable(STR), "files": dict_of(INT, key=FILE_NAME), "ids": list_of(INT)})
GOOD = b'{"step": 3, "rng": {"state": "QUJD"}, "name": null, "files": {"a.npy": 1}, "ids": [1, 2]}'

BAD = [  # (file bytes, what the message must say)
    (b"", "invalid JSON at line 1 column 1"),
    (b'{"step": 3,', "invalid JSON at line 1"),
    (b"[]", "it must be an object, found a list"),
    (b'{"rng": {"state": "QUJD"}}', "it lacks the key 'step'"),
    (b'{"step": "3", "rng": {"state": "QUJD"}}', "'step' must be an integer, found the string \"3\""),
    (b'{"step": true, "rng": {"state": "QUJD"}}', "'step' must be an integer, found the boolean true"),
    (b'{"step": 3, "rng": {"state": "!!"}}', "'rng.state' must be base64 text"),
    (b'{"step": 3, "rng": {}}', "'rng' lacks the key 'state'"),
    (b'{"step": 3, "rng": {"state": "QUJD"}, "ids": [1, "x"]}', "'ids[1]' must be an integer"),
    (b'{"step": 3, "rng": {"state": "QUJD"}, "files": {"../x": 1}}', "'files' has the key \"../x\""),
    (b'{"step": 3, "rng": {"state": "QUJD"}, "files": {"/etc/passwd": 1}}', "which must be a file name"),
    (b'{"step": 3, "name": "\xff"}', "not UTF-8 text (byte 0xff on line 1)"),
    (b'{"step": ' + b"9" * 5000 + b"}", "an integer of 5000 digits"),
    (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "JSON nested deeper than 32 levels"),
    (b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}", "JSON nested deeper than 32 levels"),
]


@pytest.mark.parametrize(("content", "needle"), BAD, ids=[b[1] for b in BAD])
def test_malformed_files_are_one_line_naming_the_file(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "checkpoint-00000003.json"
    path.write_bytes(content)
    with pytest.raises(UserInputError) as info:
        read_json(path, SHAPE, kind="checkpoint sidecar", fix="delete it")
    message = str(info.value)
    assert message.startswith(f"checkpoint sidecar {path} is corrupt: ") and message.endswith("; delete it")
    assert needle in message and "\n" not in message


def test_a_good_file_reads(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_bytes(GOOD)
    assert read_json(tmp_path / "ok.json", SHAPE, kind="sidecar")["files"] == {"a.npy": 1}


def test_not_a_regular_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: outcome.append(
        pytest.raises(UserInputError, read_json, fifo, kind="config file").value))
    reader.daemon = True
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "is not a regular file" in str(outcome[0]) and str(fifo) in str(outcome[0])
    with pytest.raises(UserInputError, match=r"config file .* is a directory"):
        read_json(tmp_path, kind="config file")
    with pytest.raises(UserInputError, match=r"config file .*nope\.json not found"):
        read_json(tmp_path / "nope.json", kind="config file")


def test_json_lines_drop_only_a_last_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 0}\n\n{"step": 1}\n{"step": 2, "lo')
    assert read_json_lines(path, record({"step": INT}), kind="metrics log") == [{"step": 0}, {"step": 1}]
    path.write_bytes(b'{"step": 0}\n\xff\n{"step": 1}\n')
    with pytest.raises(UserInputError, match=r"metrics log .* is corrupt: line 2: not UTF-8 text"):
        read_json_lines(path, record({"step": INT}), kind="metrics log")
    path.write_bytes(b'{"step": 0}\n[1]\n')
    with pytest.raises(UserInputError, match=r"line 2: it must be an object, found a list"):
        read_json_lines(path, record({"step": INT}), kind="metrics log")


def test_set_values_get_the_same_limits() -> None:
    assert parse_json_text("[1, 2]") == [1, 2]
    for text, needle in (("[" * 5000 + "]" * 5000, "nested deeper"), ("9" * 5000, "5000 digits"), ("{x", "Expecting")):
        with pytest.raises(ValueError, match=needle):
            parse_json_text(text)
