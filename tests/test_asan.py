"""AddressSanitizer on the lab's plugins: upper_v2, built against the edited header, reads past
the 12-byte lab_options the version-1 host allocates; upper does not."""

from __future__ import annotations

from pathlib import Path

import pytest

import labkit

QUIET = {"ASAN_OPTIONS": "detect_leaks=0"}


def test_asan_catches_the_v2_plugin_reading_past_the_hosts_struct(tmp_path: Path) -> None:
    built = labkit.build_asan_samples(tmp_path / "asan")
    fine = labkit.run_program([built["host"].path, built["upper"].path], env=QUIET)
    assert fine.ok and fine.stdout == "upper: HELLOHELLO\n"
    assert labkit.asan_report(fine.stderr) is None
    caught = labkit.run_program([built["host"].path, built["upper_v2"].path], env=QUIET)
    assert caught.returncode == 1 and caught.stdout == ""
    report = labkit.asan_report(caught.stderr)
    assert report is not None
    assert (report.kind, report.access, report.function) == ("heap-buffer-overflow", "READ", "create")
    assert report.location.startswith("upper.c:")
    assert report.where == "0 bytes after 12-byte region"
    assert report.allocated_by.startswith("main (options_host.c:")
    assert str(report).startswith("AddressSanitizer: heap-buffer-overflow: a READ in create (upper.c:")


def test_a_report_without_asan_is_none() -> None:
    assert labkit.asan_report("Segmentation fault\n") is None


@pytest.mark.parametrize(("said", "where"), [
    ("0 bytes to the right of 12-byte region", "0 bytes after 12-byte region"),  # GCC 12
    ("0 bytes after 12-byte region", "0 bytes after 12-byte region"),  # GCC 14
    ("16 bytes to the left of 8-byte region", "16 bytes before 8-byte region"),
    ("4 bytes inside of 32-byte region", "4 bytes inside of 32-byte region"),
])
def test_where_reads_the_same_in_every_runtime_s_words(said: str, where: str) -> None:
    stderr = ("==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1 at pc 0x2\n"
              "READ of size 4 at 0x1 thread T0\n"
              "    #0 0x3 in create /lab/plugins/c/upper.c:24\n"
              f"0x1 is located {said} [0x1,0xd)\n")
    report = labkit.asan_report(stderr)
    assert report is not None and report.where == where
    assert (report.function, report.location) == ("create", "upper.c:24")
