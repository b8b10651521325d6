"""``bpf`` as a real program: the console script, ``python -m bpf.cli``, the README's commands,
exit codes, no traceback on bad input, files it writes, progress on a terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import EXAMPLES, ROOT, TINY, assert_png, bpf_script, run_program


def quickstart_commands() -> list[str]:
    """The commands of the README's Quickstart section, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:console|sh|shell|bash)\n(.*?)```", section, re.S)
    return [line.removeprefix("$ ").strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_quickstart_is_two_commands_install_and_demo_then_tests():
    assert quickstart_commands() == [
        "python -m pip install . && bpf demo",
        'python -m pip install ".[test]" && python -m pytest',
    ]


def test_the_quickstart_demo_runs_as_the_console_script(bpf_program, tmp_path):
    # The install half of the command is what set up this environment; run the other half.
    command = quickstart_commands()[0].split(" && ", 1)[1]
    result = bpf_program(*command.split()[1:], cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.err == ""
    assert "Refused, the gate lists what is missing:" in result.out
    assert "opportunity-gated v1: Opportunity Sales Process (gated)" in result.out
    assert (tmp_path / "bpf-demo.db").is_file()

    funnel = bpf_program("funnel", "--db", "sqlite:///bpf-demo.db", "-o", "funnel.png",
                         cwd=tmp_path)
    assert funnel.code == 0, funnel.err
    assert_png(tmp_path / "funnel.png")

    history = bpf_program("history", "--db", "sqlite:///bpf-demo.db", "opp-fabrikam",
                          cwd=tmp_path)
    assert history.code == 0, history.err
    assert history.out.startswith("opp-fabrikam: 2 flows\n")


def test_python_dash_m_bpf_cli_is_the_same_command(tmp_path):
    result = run_program([sys.executable, "-m", "bpf.cli", "--version"])
    assert result.code == 0
    assert result.out.startswith("bpf ")


def test_exit_codes_of_the_real_program(bpf_program, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(TINY)
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("stage: close", "stage: nowhere"))
    assert bpf_program("validate", good).code == 0
    assert bpf_program("validate", bad).code == 1
    assert bpf_program("validate", tmp_path / "missing.yaml").code == 2
    assert bpf_program("frobnicate").code == 2
    scenario = EXAMPLES / "opportunity-gate-refusal.yaml"
    assert bpf_program("run", "opportunity-gated", scenario).code == 0
    assert bpf_program("run", "opportunity-sales", scenario).code == 1  # no gate: surprises


@pytest.mark.parametrize(
    "args",
    [
        ["show", "no-such-process"],
        ["show", "missing.yaml"],
        ["diagram", "broken.yaml"],
        ["run", "opportunity-sales", "missing-scenario.yaml"],
        ["history", "--db", "sqlite:///missing.db", "opp-1"],
        ["funnel", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
    ],
)
def test_bad_input_is_one_line_on_stderr_without_traceback(bpf_program, tmp_path, args):
    (tmp_path / "broken.yaml").write_text("process: [\n")
    result = bpf_program(*args, cwd=tmp_path)
    assert result.code == 2
    assert result.out == ""
    assert "Traceback" not in result.err
    (line,) = result.err.splitlines()
    assert line.startswith("bpf: error: ")


def test_python_dash_m_reports_bad_input_the_same_way(tmp_path):
    result = run_program([sys.executable, "-m", "bpf.cli", "show", "no-such-process"])
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("bpf: error: no shipped process 'no-such-process'")
    assert len(result.err.splitlines()) == 1


def test_debug_shows_the_traceback_in_the_real_program(bpf_program):
    result = bpf_program("--debug", "show", "no-such-process")
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err


def _stderr_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``args`` with stderr on a pseudo-terminal; its exit status and what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=follower)
    finally:
        os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the program closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_long_runs_show_progress_on_a_terminal_only(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"p{i:02}.yaml").write_text(TINY.replace("tiny-deal", f"tiny-{i}"))
    steps = "".join(
        f"  - start: {{record: {{id: opp-{i}}}, actor: alice}}\n" for i in range(30)
    )
    scenario = tmp_path / "many.yaml"
    scenario.write_text(f"actors: {{alice: [salesperson]}}\nsteps:\n{steps}")
    script = str(bpf_script())

    code, shown = _stderr_on_a_terminal([script, "validate", str(folder)], tmp_path)
    assert code == 0
    assert "\rvalidating 1/30" in shown and "validating 30/30" in shown
    assert shown.endswith("\r\x1b[K")  # erased once done

    code, shown = _stderr_on_a_terminal([script, "run", str(tmp_path / "p.yaml"),
                                         str(scenario)], tmp_path)
    assert code == 2  # p.yaml does not exist; no progress before the error
    assert "step " not in shown

    (tmp_path / "p.yaml").write_text(TINY)
    code, shown = _stderr_on_a_terminal([script, "run", str(tmp_path / "p.yaml"),
                                         str(scenario)], tmp_path)
    assert code == 0
    assert "\rstep 1/30" in shown and "step 30/30" in shown

    piped = run_program([script, "validate", str(folder)])
    assert piped.err == ""
