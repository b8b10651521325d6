"""``bpf validate``: every problem located, exit 1 on any, JSON for editors and CI."""

from __future__ import annotations

import json

from clitools import ROOT, TINY

BAD = """\
process: bad
name: Bad
entity: opportunity
stages:
  - id: qualify
    name: Qualify
    categori: Qualify
    next:
      - stage: nowhere
"""


def test_a_valid_file_exits_0(bpf_main, tiny):
    result = bpf_main("validate", tiny)
    assert result.code == 0
    assert result.out == "1 file valid: tiny-deal\n"
    assert result.err == ""


def test_every_problem_is_file_line_col_message_and_exit_1(bpf_main, write):
    path = write("bad.yaml", BAD)
    result = bpf_main("validate", path)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].startswith(f"{path}:7:5: unknown key `categori` in stage")
    assert lines[1] == f"{path}:9:16: stage 'nowhere' does not exist; stages: qualify"
    assert lines[-1] == "2 problems in 1 of 1 file"


def test_a_directory_is_searched_for_yaml_files(bpf_main, write):
    write("procs/a.yaml", TINY)
    write("procs/nested/b.yml", TINY.replace("tiny-deal", "tiny-b"))
    write("procs/notes.txt", "not a process")
    bad = write("procs/nested/c.yaml", BAD)
    result = bpf_main("validate", bad.parent.parent)
    assert result.code == 1
    assert result.out.splitlines()[-1] == "2 problems in 1 of 3 files"


def test_the_shipped_processes_are_valid(bpf_main):
    result = bpf_main("validate", ROOT / "processes")
    assert result.code == 0, result.out
    assert "opportunity-sales" in result.out


def test_json_lists_files_and_located_problems(bpf_main, tiny, write):
    bad = write("bad.yaml", BAD)
    result = bpf_main("validate", "--format", "json", tiny, bad)
    assert result.code == 1
    report = json.loads(result.out)
    assert report["valid"] is False
    good, wrong = report["files"]
    assert good == {"file": str(tiny), "process": "tiny-deal", "valid": True, "problems": []}
    assert wrong["valid"] is False and wrong["process"] is None
    first = wrong["problems"][0]
    assert first["file"] == str(bad)
    assert (first["line"], first["column"], first["severity"]) == (7, 5, "error")
    assert "categori" in first["message"]


def test_json_of_clean_files_says_valid(bpf_main, tiny):
    result = bpf_main("validate", "--format", "json", tiny)
    assert result.code == 0
    assert json.loads(result.out)["valid"] is True


def test_broken_yaml_is_a_located_problem(bpf_main, write):
    path = write("broken.yaml", "process: [\n")
    result = bpf_main("validate", path)
    assert result.code == 1
    assert result.out.startswith(f"{path}:2:1: ")


def test_a_missing_path_is_bad_input(bpf_main, tmp_path):
    result = bpf_main("validate", tmp_path / "nope")
    assert result.code == 2
    assert result.err == f"bpf: error: {tmp_path / 'nope'}: no such file or directory\n"


def test_a_directory_without_yaml_is_bad_input(bpf_main, tmp_path):
    result = bpf_main("validate", tmp_path)
    assert result.code == 2
    assert "no .yaml or .yml files" in result.err


def test_no_progress_line_when_stderr_is_not_a_terminal(bpf_main, write):
    for i in range(25):
        write(f"many/p{i:02}.yaml", TINY.replace("tiny-deal", f"tiny-{i}"))
    result = bpf_main("validate", write("many/p00.yaml", TINY).parent)
    assert result.code == 0
    assert result.err == ""
    assert result.out == "25 files valid\n"


def test_warnings_are_located_but_leave_the_file_valid(bpf_main, write):
    stages = "\n".join(f"  - {{id: s{i}, name: S{i}}}" for i in range(31))
    path = write("big.yaml", f"process: big\nname: Big\nentity: x\nstages:\n{stages}\n")
    result = bpf_main("validate", path)
    assert result.code == 0
    first, last = result.out.splitlines()
    assert first.startswith(f"{path}:4:1: warning: 31 stages: Dynamics 365 allows at most 30")
    assert last == "1 file valid: big"
    report = json.loads(bpf_main("validate", "--format", "json", path).out)
    assert report["valid"] is True
    assert report["files"][0]["problems"][0]["severity"] == "warning"


def test_scenario_files_in_a_directory_are_not_validated_as_processes(bpf_main, write):
    write("mixed/deal.yaml", TINY)
    write("mixed/try.yaml", "actors:\n  maria: [salesperson]\nsteps:\n  - start: {record: {}}\n")
    other = write("mixed/other.yaml", TINY.replace("tiny-deal", "b"))
    result = bpf_main("validate", other.parent)
    assert result.code == 0
    assert result.out == "2 files valid: tiny-deal, b\n"
    # Named on its own, a scenario is still checked as a process, and fails.
    assert bpf_main("validate", write("mixed/try.yaml", "steps: []\n")).code == 1


def test_a_directory_of_scenarios_only_is_bad_input(bpf_main):
    result = bpf_main("validate", ROOT / "examples")
    assert result.code == 2
    assert "only scenario files here" in result.err


RISKY = """\
process: change
name: Change
entity: change
stages:
  - id: assess
    name: Assess
    steps:
      - {field: risk, label: Risk, type: choice, choices: [low, high], required: true}
    next:
      - when: {field: riks, equals: high}
        stage: cab-review
      - stage: done
  - {id: cab-review, name: CAB Review}
  - {id: done, name: Done}
"""


def test_strict_turns_warnings_into_errors(bpf_main, write):
    path = write("change.yaml", RISKY)
    assert bpf_main("validate", path).code == 0
    result = bpf_main("validate", "--strict", path)
    assert result.code == 1
    first, last = result.out.splitlines()
    assert first == (f"{path}:10:23: no step declares the field 'riks' (did you mean `risk`?): "
                     "the condition reads it from the record as it is (check the spelling)")
    assert last == "1 problem in 1 of 1 file"
    report = json.loads(bpf_main("validate", "--strict", "--format", "json", path).out)
    assert report["valid"] is False
    assert report["files"][0]["problems"][0]["severity"] == "error"


def test_strict_passes_the_shipped_processes(bpf_main):
    assert bpf_main("validate", "--strict", str(ROOT / "processes")).code == 0
