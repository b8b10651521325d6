"""``bpf import dynamics`` as a real program: files written, losses printed, exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dynamics import xamlkit as k

T = "new_thing"
A, B = k.new_id(), k.new_id()
FLOW = k.workflow(
    k.entity(T, k.stage(A, "Submit", k.step("new_name", "Name", required=True),
                        k.action_step("Notify", "new_notify"), category=0, next_id=B)),
    k.entity(T, k.stage(B, "Decide", k.step("new_approved", "Approved",
                                             class_id=k.TWO_OPTIONS), category=7)),
)


def bpf(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / ("bpf.exe" if os.name == "nt" else "bpf")
    return subprocess.run([str(script), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def test_it_writes_one_yaml_per_flow_and_prints_the_losses(tmp_path):
    k.write_flow(tmp_path / "solution", FLOW, k.row("new_review", T, "Review"))
    done = bpf("import", "dynamics", "solution", "--out", "processes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "processes" / "new_review.yaml"
    assert done.stdout.splitlines() == [
        f"{Path('processes', 'new_review.yaml')}: Review (new_review): 2 stages, 2 steps "
        "(1 required), 0 conditional branches, 1 loss",
        "  lost: step 'Notify' is a button that runs the action or workflow 'new_notify': not "
        "converted (run it from an on_exit action)",
    ]
    assert written.is_file()
    checked = bpf("validate", written, cwd=tmp_path)
    assert (checked.returncode, checked.stdout.strip()) == (0, "1 file valid: new-review")


def test_the_current_directory_is_the_default_output(tmp_path):
    xaml = k.write_flow(tmp_path, FLOW, k.row("new_review", T, "Review"))
    assert bpf("import", "dynamics", xaml, cwd=tmp_path).returncode == 0
    assert (tmp_path / "new_review.yaml").is_file()


def test_a_source_that_is_not_a_flow_exits_1_without_a_traceback_and_others_convert(tmp_path):
    good = k.write_flow(tmp_path / "good", FLOW, k.row("new_review", T, "Review"))
    bad = k.write_flow(tmp_path / "bad", FLOW[:200])
    done = bpf("import", "dynamics", bad, good, "--out", "out", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"bpf: error: {bad}:1:")
    assert "malformed XML" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "out" / "new_review.yaml").is_file()


def test_usage_errors_exit_2(tmp_path):
    assert bpf("import", cwd=tmp_path).returncode == 2
    assert bpf("import", "dynamics", cwd=tmp_path).returncode == 2
    missing = bpf("import", "dynamics", "nope.xaml", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        2, "bpf: error: nope.xaml: no such file or directory\n")
    (tmp_path / "file").write_text("")
    xaml = k.write_flow(tmp_path, FLOW)
    assert bpf("import", "dynamics", xaml, "--out", "file", cwd=tmp_path).returncode == 2
