"""The adversarial corpus (tests/adversarial/corpus.py) against every command-line tool.

Every case must end in a clear error: exit status 2, no traceback, the file and the row, column or
configuration key named, nothing partial left, the previous output intact, no injected code run.
The default suite runs the corpus in-process through each CLI's ``main()`` (one run, shared by the
per-case tests and the summary); a few cases also run as real subprocesses.  Cases whose defect
belongs to the pipeline refactor and is still open are expected to fail (``xfail``, strict=False:
they pass as soon as it is fixed); the list is ``PIPELINE_OWNED``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .corpus import MARKER, all_cases, run_case, summarise

#: Defects the pipeline helper's refactor (fitconfig / pipeline/) fixes and that are still open;
#: the other config-type cases of issue 18 (seed: true, cv: 5, ols: fast, ...) pass and are checked.
#: 'features' may name a column the dataset ships (kept, not recomputed), so an unknown name is
#: only known to be wrong once the data is read; that message does not name the config file yet.
PIPELINE_OWNED = {"config/features-unknown"}
FIT_STAGE: set = set()
#: Cases that would run a whole fit (40-80 s) if they were wrongly accepted.
SLOW_WHILE_OPEN: set = set()

CASES = [c for c in all_cases() if c.name not in SLOW_WHILE_OPEN and not c.slow]
SLOW_CASES = [c for c in all_cases() if c.name in SLOW_WHILE_OPEN or c.slow]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return {case.name: run_case(case, root / f"{i:04d}") for i, case in enumerate(CASES)}


def _marks(case):
    if case.name in PIPELINE_OWNED:
        return [pytest.mark.xfail(reason="config type checks belong to the pipeline refactor "
                                         "(fitconfig/pipeline), issue 18", strict=False)]
    return []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_marks(c)) for c in CASES])
def test_case_is_a_clear_error(case, outcomes):
    outcome = outcomes[case.name]
    assert outcome.verdict == "clear", f"{outcome.verdict}: {outcome.detail}\n{outcome.stderr[-2000:]}"


def test_corpus_is_large_and_summary(outcomes, capsys):
    counts = summarise(list(outcomes.values()))
    with capsys.disabled():
        print("\nadversarial corpus (default suite): " + json.dumps(counts))
    assert counts["inputs tried"] >= 200
    assert counts["code-ran"] == 0
    hostile = [o for o in outcomes.values() if o.case.name not in PIPELINE_OWNED | FIT_STAGE]
    assert all(o.verdict == "clear" for o in hostile), [
        (o.case.name, o.verdict) for o in hostile if o.verdict != "clear"]


SUBPROCESS_SAMPLE = ["table/csv/latin-1-byte", "config/formula-import",
                     "predict/string-residual-variance"]


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_subprocess_sample(name, tmp_path):
    case = next(c for c in all_cases() if c.name == name)
    outcome = run_case(case, tmp_path / "case", subprocess_run=True)
    assert outcome.verdict == "clear", f"{outcome.verdict}: {outcome.detail}\n{outcome.stderr[-2000:]}"
    assert not (tmp_path / "case" / MARKER).exists()


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_marks(c)) for c in SLOW_CASES])
def test_slow_case_is_a_clear_error(case, tmp_path):
    outcome = run_case(case, tmp_path / "case")
    assert outcome.verdict == "clear", f"{outcome.verdict}: {outcome.detail}\n{outcome.stderr[-2000:]}"


def test_ctrl_c_during_start_up_is_a_message_not_a_traceback(tmp_path):
    import signal
    import time

    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-m", "xltstats.fit", "--data", str(tmp_path / "absent.csv"),
                             "--out", str(tmp_path / "out")], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    time.sleep(0.5)  # past Python's own start-up, inside the imports of numpy/pandas/xltstats
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    if "not an existing results file" in err:
        # the machine was fast: the run had reported its error before the signal came; the signal
        # then found it exiting (2) or in the interpreter's shutdown (killed by SIGINT)
        assert proc.returncode in (2, -signal.SIGINT), (proc.returncode, err)
    else:
        assert proc.returncode == 130 and "interrupted" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
