"""rollguard-assign-v1 transcribed from docs/assignment.md into pure Python.

This file shares no code with the Rust core: it is the independent implementation the
shared vectors (tests/assignment/vectors.json) are generated from, and test_assign.py
checks both the file and the binding against it. Regenerate the vectors with

    python bindings/python/tests/assign_reference.py > tests/assignment/vectors.json

(only when the spec changes: a new spec is a new name, ``rollguard-assign-v2``).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Union

MASK = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
BUCKETS = 10_000


def fnv1a64(data: bytes, h: int = FNV_OFFSET) -> int:
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & MASK
    return h


def fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    h ^= h >> 33
    return h


def key_bytes(key: Union[str, bytes]) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def hash64(salt: int, key: Union[str, bytes]) -> int:
    return fmix64(fnv1a64(salt.to_bytes(8, "little") + key_bytes(key)))


def bucket(salt: int, key: Union[str, bytes]) -> int:
    return ((hash64(salt, key) >> 32) * BUCKETS) >> 32


def assign(salt: int, key: Union[str, bytes], weight_bp: int) -> str:
    return "candidate" if bucket(salt, key) < weight_bp else "stable"


def salt_for(policy_name: str, version_id: str, rollout_seq: int) -> int:
    data = (
        b"rollguard-salt-v1\x00"
        + policy_name.encode("utf-8")
        + b"\x00"
        + version_id.encode("utf-8")
        + b"\x00"
        + rollout_seq.to_bytes(8, "little")
    )
    return fmix64(fnv1a64(data))


def assign_from_table(
    table: Dict[str, Any],
    key: Union[str, bytes],
    session_started_at: Union[int, None] = None,
    now: Union[int, None] = None,
) -> Dict[str, Any]:
    """What a router holding ``Policy.routing_table()`` answers, from docs/assignment.md
    ("Routing tables") alone: ``Policy.assign`` without a session, ``assign_session``
    with one (``now`` is then required; the times are assumed valid)."""
    salt = table.get("salt")
    out: Dict[str, Any] = {"arm": "stable", "version": table["stable"], "weight_bp": 0, "pinned": False}
    if salt is not None:
        out["salt"] = salt
    if table["mode"] != "split":
        out["reason"] = table["mode"]
        return out
    weight_bp = table["weight_bp"]
    pinned = session_started_at is not None and now is not None and now - session_started_at < table["pin_max_ms"]
    if pinned:
        at_start = 0
        for w in table["weights"]:
            if w["at"] <= session_started_at:
                at_start = w["weight_bp"]
        weight_bp = min(weight_bp, at_start)
    arm = assign(int(salt or "0", 16), key, weight_bp)
    out.update(
        arm=arm,
        version=table["candidate"] if arm == "candidate" else table["stable"],
        reason=arm,
        weight_bp=weight_bp,
        pinned=pinned,
    )
    return out


def hex16(x: int) -> str:
    return f"{x:016x}"


# ---------------------------------------------------------------- the vectors

SALTS = [
    0x0000000000000000,
    0xFFFFFFFFFFFFFFFF,
    0x0123456789ABCDEF,
    0x9E3779B97F4A7C15,
    salt_for("checkout", "v2", 1),
]

KEYS: List[Union[str, bytes]] = [
    "",
    "a",
    "user-42",
    "tenant:acme/user:1234",
    "3f2b6c1e-8d4a-4e0b-9c7a-2f1e5d6b8a90",  # a UUID: 36 bytes
    "é",  # 2 bytes
    "日本語",  # 9 bytes
    "🦀 crab",  # a 4-byte code point
    "\u0000",  # one NUL byte
    "session/" + "x" * 1000,  # long
    b"\x00\xff\x80\xfe",  # not UTF-8: key_hex
    bytes(range(256)),  # every byte value
]

WEIGHTS = [0, 1, 2500, 5000, 9999, 10000]


def case(salt: int, key: Union[str, bytes], weight_bp: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {"salt": hex16(salt)}
    if isinstance(key, str):
        out["key"] = key
    else:
        out["key_hex"] = key.hex()
    out.update(
        weight_bp=weight_bp,
        hash=hex16(hash64(salt, key)),
        bucket=bucket(salt, key),
        arm=assign(salt, key, weight_bp),
    )
    return out


def first_key_with(salt: int, want: int) -> str:
    """The first key ``k0``, ``k1``, ... whose bucket is ``want``."""
    i = 0
    while bucket(salt, f"k{i}") != want:
        i += 1
    return f"k{i}"


def vectors() -> Dict[str, Any]:
    cases = []
    n = 0
    for key in KEYS:
        for salt in SALTS:
            cases.append(case(salt, key, WEIGHTS[n % len(WEIGHTS)]))
            n += 1
    # Boundaries: a key is on the candidate iff its bucket is below the weight.
    for salt in SALTS[:2]:
        for want in (0, 9999):
            key = first_key_with(salt, want)
            for weight in (want, want + 1):
                cases.append(case(salt, key, weight))
    for key, salt in (("user-42", SALTS[2]), ("3f2b6c1e-8d4a-4e0b-9c7a-2f1e5d6b8a90", SALTS[3])):
        b = bucket(salt, key)
        cases.append(case(salt, key, b))
        cases.append(case(salt, key, b + 1))
    salts = [
        {"policy_name": p, "version_id": v, "rollout_seq": s, "salt": hex16(salt_for(p, v, s))}
        for p, v, s in (
            ("checkout", "v2", 1),
            ("checkout", "v2", 2),
            ("checkout", "v3", 1),
            ("", "", 0),
            ("support-agent", "sha256:9c01", 18446744073709551615),
            ("agents/日本", "v2", 7),
        )
    ]
    errors = [
        {"salt": s, "weight_bp": 0, "code": "invalid_salt", "path": "salt"}
        for s in (
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
            "0x23456789abcdef",
            "+123456789abcdef",
            "-123456789abcdef",
            " 123456789abcdef",
            "0123456789abcdeg",
            "０１２３４５６７",
            "éééééééé",
        )
    ] + [
        {"salt": hex16(0), "weight_bp": w, "code": "weight_out_of_range", "path": "weight_bp"}
        for w in (-1, 10001, 65536)
    ]
    return {
        "name": "rollguard-assign-v1",
        "description": (
            "Shared vectors of rollguard's traffic assignment (docs/assignment.md), generated by "
            "bindings/python/tests/assign_reference.py, an independent transcription of the spec. "
            "cases: salt (16 lowercase hex digits), the key as a string (its UTF-8 bytes) or as "
            "key_hex (any bytes), weight_bp; expected hash (after fmix64, as 16 hex digits), "
            "bucket and arm. salts: salt_for(policy_name, version_id, rollout_seq). errors: "
            "inputs every binding refuses, with the error's code and path."
        ),
        "cases": cases,
        "salts": salts,
        "errors": errors,
    }


def vectors_text() -> str:
    """The vectors as JSON text, one case per line."""
    v = vectors()
    dump = lambda x: json.dumps(x, ensure_ascii=False)  # noqa: E731
    lines = ["{"]
    lines.append(f' "name": {dump(v["name"])},')
    lines.append(f' "description": {dump(v["description"])},')
    for i, field in enumerate(("cases", "salts", "errors")):
        items = ",\n".join(f"  {dump(item)}" for item in v[field])
        lines.append(f' "{field}": [\n{items}\n ]' + ("," if i < 2 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(vectors_text())
