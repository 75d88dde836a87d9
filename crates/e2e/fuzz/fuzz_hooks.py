"""The fuzzer's hooks module (SCHEMATHESIS_HOOKS=fuzz_hooks, with this directory on
PYTHONPATH): a fix for the one cause of "flaky" findings seen, and a report of any other.

**The cause: `ast.parse` from two threads at once.** The fuzzer runs two workers (threads).
Hypothesis, while drawing a value through a filter, reads the filter lambda's source with
`ast.parse` (hypothesis.internal.reflection, to tell an identity filter). CPython 3.11 keeps
the AST constructor's recursion depth in one per-interpreter state, so two parses at once
can leave it wrong, and one of them raises `SystemError: AST constructor recursion depth
mismatch` (python/cpython#106905). Hypothesis took that error, raised while generating a
query for GET /availability, as a failure; on replay the draw went otherwise
(`FlakyStrategyDefinition`), and the operation was counted as failed with nothing to show:
the "27 passed, 1 failed" of the PostgreSQL runs (2 of 3 runs here before this fix, each
with this report). `ast.parse` is serialised below; nothing else changes.

**The report.** Schemathesis runs each operation's hypothesis test with hypothesis's own report silenced,
and when hypothesis ends it with `Flaky` — a failure that did not happen again when the
example was replayed, or data generation that went differently on replay — it counts the
operation as failed and shows nothing: no check failed on the replay, so there is no
failing exchange to print ("27 passed, 1 failed", and no example). Here the silenced
report is kept instead, and on `Flaky` it is written with the exception (each failure
hypothesis saw, with its traceback and notes) to the file HOUSEBOOK_FUZZ_REPORT names,
which crates/e2e/tests/public_api.rs prints when the fuzzer fails.
"""

import ast
import contextlib
import os
import threading
import traceback

import hypothesis.errors
from hypothesis.reporting import with_reporter
from schemathesis.engine.phases.unit import _executor

_LOCK = threading.Lock()
_PARSE_LOCK = threading.Lock()
_parse = ast.parse


def _serialised_parse(*args, **kwargs):
    with _PARSE_LOCK:
        return _parse(*args, **kwargs)


ast.parse = _serialised_parse


@contextlib.contextmanager
def _keep_hypothesis_output():
    lines = []
    with with_reporter(lambda line: lines.append(str(line))):
        try:
            yield
        except hypothesis.errors.Flaky as exc:
            _write(lines, exc)
            raise


def _write(lines, exc):
    path = os.environ.get("HOUSEBOOK_FUZZ_REPORT")
    if not path:
        return
    parts = [f"FLAKY: {type(exc).__name__}: {exc}"]
    parts += [f"hypothesis: {line}" for line in lines]
    for sub in getattr(exc, "exceptions", None) or [exc]:
        parts.append("".join(traceback.format_exception(sub)))
    for note in getattr(exc, "__notes__", []):
        parts.append(f"note: {note}")
    with _LOCK, open(path, "a") as f:
        f.write("\n".join(parts) + "\n\n")


_executor.ignore_hypothesis_output = _keep_hypothesis_output
