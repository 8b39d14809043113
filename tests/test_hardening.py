"""Hardening: hostile and mistaken input gets one clear line and exit 2 (never a traceback, never
lost work), outputs are checked before simulating, sizes have limits, resume checks each run
file, the Dask cluster ``abm`` starts is not open to other users, and every run can be
reproduced from what it wrote."""

from __future__ import annotations

import os
import stat

from abm.run import atomic_write_bytes


def test_written_files_get_the_mode_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o600
