"""rollguard.assign: the shared vectors, and the binding against an independent
pure-Python transcription of the spec (assign_reference.py, which generates the vectors)."""

from __future__ import annotations

import doctest
import json
import random
from pathlib import Path
from typing import Any, Dict, Union

import pytest

import assign_reference as ref
import rollguard
from rollguard import InputError

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "assignment" / "vectors.json"
DATA: Dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))


def key_of(case: Dict[str, Any]) -> Union[str, bytes]:
    return case["key"] if "key" in case else bytes.fromhex(case["key_hex"])


def test_the_vectors_are_what_the_reference_generates() -> None:
    # The file is reproducible from the spec's transcription, not from the Rust code.
    assert VECTORS.read_text(encoding="utf-8") == ref.vectors_text()
    assert DATA["name"] == rollguard.ASSIGN_VERSION == "rollguard-assign-v1"
    assert len(DATA["cases"]) >= 60


@pytest.mark.parametrize("case", DATA["cases"], ids=lambda c: f"{c['salt']}-{c['weight_bp']}-{c['bucket']}")
def test_vector_case(case: Dict[str, Any]) -> None:
    key = key_of(case)
    assert rollguard.assign_bucket(key, salt=case["salt"]) == case["bucket"]
    assert rollguard.assign(key, salt=case["salt"], weight_bp=case["weight_bp"]) == case["arm"]


@pytest.mark.parametrize("case", DATA["salts"], ids=lambda c: f"{c['policy_name']}-{c['version_id']}-{c['rollout_seq']}")
def test_vector_salt(case: Dict[str, Any]) -> None:
    assert rollguard.salt_for(case["policy_name"], case["version_id"], case["rollout_seq"]) == case["salt"]


@pytest.mark.parametrize("case", DATA["errors"], ids=lambda c: f"{c['code']}-{c['salt']!r}-{c['weight_bp']}")
def test_vector_error(case: Dict[str, Any]) -> None:
    with pytest.raises(InputError) as e:
        rollguard.assign("key", salt=case["salt"], weight_bp=case["weight_bp"])
    assert (e.value.code, e.value.path) == (case["code"], case["path"])


def random_key(rng: random.Random) -> Union[str, bytes]:
    n = rng.choice([0, 1, 2, 7, 16, 36, 64, 300])
    if rng.random() < 0.5:
        return bytes(rng.getrandbits(8) for _ in range(n))
    # Code points from every UTF-8 length, no surrogates (a str with one has no UTF-8).
    points = [rng.choice([rng.randrange(0x80), rng.randrange(0x80, 0x800), rng.randrange(0xE000, 0x10000),
                          rng.randrange(0x10000, 0x110000)]) for _ in range(n)]
    return "".join(map(chr, points))


def test_the_binding_equals_the_reference_on_10000_random_inputs() -> None:
    rng = random.Random(20261206)
    for _ in range(10_000):
        key = random_key(rng)
        salt = rng.choice([0, 2**64 - 1, rng.getrandbits(64), rng.getrandbits(8)])
        weight = rng.choice([0, 1, 9999, 10_000, rng.randrange(10_001)])
        hexsalt = f"{salt:016x}"
        assert rollguard.assign_bucket(key, salt=hexsalt) == ref.bucket(salt, key), (key, hexsalt)
        assert rollguard.assign(key, salt=hexsalt, weight_bp=weight) == ref.assign(salt, key, weight), (key, hexsalt, weight)
        name, version, seq = random_key(rng), random_key(rng), rng.getrandbits(rng.choice([0, 8, 53, 64]))
        if isinstance(name, str) and isinstance(version, str):
            assert rollguard.salt_for(name, version, seq) == f"{ref.salt_for(name, version, seq):016x}"


def test_a_str_key_is_its_utf8_bytes() -> None:
    salt = "0123456789abcdef"
    for key in ["", "user-42", "日本語", "🦀"]:
        assert rollguard.assign_bucket(key, salt=salt) == rollguard.assign_bucket(key.encode(), salt=salt)


def test_bad_arguments_are_refused_with_codes_or_type_errors() -> None:
    salt = "0000000000000000"
    for weight in (-(2**70), 2**70, -1, 10_001):
        with pytest.raises(InputError) as e:
            rollguard.assign("k", salt=salt, weight_bp=weight)
        assert (e.value.code, e.value.path) == ("weight_out_of_range", "weight_bp")
    with pytest.raises(InputError) as e:
        rollguard.assign("\ud800", salt=salt, weight_bp=0)
    assert (e.value.code, e.value.path) == ("invalid_json", "key")
    for seq in (-1, 2**64):
        with pytest.raises(InputError) as e:
            rollguard.salt_for("p", "v", seq)
        assert (e.value.code, e.value.path) == ("invalid_json", "rollout_seq")
    assert isinstance(e.value, ValueError)
    with pytest.raises(TypeError):
        rollguard.assign(42, salt=salt, weight_bp=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rollguard.assign("k", salt=salt, weight_bp=25.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rollguard.assign("k", salt=0, weight_bp=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rollguard.assign("k", salt, 0)  # type: ignore[misc]


@pytest.mark.parametrize("fn", [rollguard.assign, rollguard.assign_bucket, rollguard.salt_for], ids=lambda f: f.__name__)
def test_docstring_examples_run(fn: Any) -> None:
    test = doctest.DocTestParser().get_doctest(fn.__doc__, {"rollguard": rollguard}, fn.__name__, None, 0)
    assert test.examples
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
