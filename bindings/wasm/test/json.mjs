// JSON comparison of the conformance vectors (tests/vectors/README.md, "Comparison"), as
// `first_difference` in tests/conformance/src/lib.rs does it: key order is irrelevant,
// a missing key differs from `null`, arrays compare in order, numbers by value (in JS
// every JSON number is a double already, and no vector holds an integer above 2^53).

const kind = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** The first place where `expected` and `actual` differ, or null when they are equal. */
export function firstDifference(expected, actual, path = "") {
  const here = path || "(root)";
  const ke = kind(expected);
  const ka = kind(actual);
  if (ke !== ka) {
    return `at ${here}: expected ${JSON.stringify(expected)}, actual ${JSON.stringify(actual)}`;
  }
  if (ke === "object") {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
    for (const k of keys) {
      const p = path ? `${path}.${k}` : k;
      if (!Object.hasOwn(actual, k)) {
        return `at ${p}: expected ${JSON.stringify(expected[k])}, actual has no such key`;
      }
      if (!Object.hasOwn(expected, k)) {
        return `at ${p}: unexpected key, actual ${JSON.stringify(actual[k])}`;
      }
      const d = firstDifference(expected[k], actual[k], p);
      if (d) return d;
    }
    return null;
  }
  if (ke === "array") {
    const n = Math.min(expected.length, actual.length);
    for (let i = 0; i < n; i++) {
      const d = firstDifference(expected[i], actual[i], `${path}[${i}]`);
      if (d) return d;
    }
    if (expected.length !== actual.length) {
      return `at ${here}: expected ${expected.length} items, actual ${actual.length}`;
    }
    return null;
  }
  return expected === actual
    ? null
    : `at ${here}: expected ${JSON.stringify(expected)}, actual ${JSON.stringify(actual)}`;
}
