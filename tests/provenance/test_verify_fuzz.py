"""Property test: the verifier never crashes on damaged logs and never accepts a changed one."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.settings import Settings
from privacy.redact import redact
from provenance.log import list_segments
from provenance.tracker import Tracker
from provenance.verify import trusted_keys, verify_log


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-home")
    s = Settings(home=home, checkpoint_every=3)
    t = Tracker(s, redactor=redact)
    for n in range(7):
        t.record_event("fuzz", n=n, note=f"record {n}")
    t.close()
    return s


mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("truncate"), st.floats(0, 0.999), st.just(0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=mutation)
def test_any_damage_is_reported_never_raised(pristine, tmp_path_factory, m):
    work = tmp_path_factory.mktemp("fuzz")
    folder = work / "provenance"
    shutil.copytree(pristine.provenance_dir, folder)
    seg = list_segments(folder)[-1]
    data = bytearray(seg.read_bytes())
    kind, where, arg = m
    pos = min(int(where * len(data)), len(data) - 1)
    if kind == "flip":
        data[pos] ^= arg
    elif kind == "delete":
        del data[pos:pos + arg]
    elif kind == "insert":
        data[pos:pos] = arg
    else:
        del data[pos:]
    seg.write_bytes(bytes(data))
    report = verify_log(folder, keys=trusted_keys(pristine))
    assert not report.ok, f"{kind} at {pos} went unnoticed"
    for f in report.failures:
        assert f.line >= 1
