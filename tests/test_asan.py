"""AddressSanitizer on the lab's plugins: upper_v2, built against the edited header, reads past
the 12-byte lab_options the version-1 host allocates; upper does not."""

from __future__ import annotations

from pathlib import Path

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
    assert report.where == "0 bytes to the right of 12-byte region"
    assert report.allocated_by.startswith("main (options_host.c:")
    assert str(report).startswith("AddressSanitizer: heap-buffer-overflow: a READ in create (upper.c:")


def test_a_report_without_asan_is_none() -> None:
    assert labkit.asan_report("Segmentation fault\n") is None
