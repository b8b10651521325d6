"""``bpf show`` and ``bpf diagram``: a process explained as tables, and drawn."""

from __future__ import annotations

import shutil

import pytest

from bpf.cli import _diagram


def test_show_lists_stages_with_category_phase_probability_and_next(bpf_main, tiny):
    result = bpf_main("show", tiny)
    assert result.code == 0
    out = result.out
    assert out.startswith("tiny-deal v1: Tiny Deal\n")
    assert "entity opportunity · pipeline field stepname · roles salesperson · outcomes won, lost" \
        in out
    stage_lines = [line.split() for line in out.splitlines() if line[:1].isdigit() and
                   "  " in line]
    assert stage_lines[0][:7] == ["1", "Qualify", "qualify", "Qualify", "1-Qualify", "10%", "2"]
    assert "review if budgetamount > 100000; else close" in out


def test_show_marks_required_steps(bpf_main, tiny):
    out = bpf_main("show", tiny).out
    assert "  *  Estimated Budget  budgetamount  money" in out
    assert "     Capture Summary   description   text" in out
    assert out.rstrip().endswith("* required: the flow cannot leave the stage until it is "
                                 "filled in")


def test_show_a_shipped_process_by_name(bpf_main):
    result = bpf_main("show", "lead-to-opportunity")
    assert result.code == 0
    assert "ENTITY" in result.out  # a cross-entity process shows each stage's entity
    assert "2. Develop [develop] on opportunity" in result.out


def test_show_a_shipped_example_by_name(bpf_main):
    result = bpf_main("show", "opportunity-gated")
    assert result.code == 0
    assert "executive-review if budgetamount > 100000; else propose" in result.out


def test_mermaid_is_drawn_by_transitions_with_conditions_on_branches(bpf_main, tiny):
    result = bpf_main("diagram", tiny)
    assert result.code == 0
    out = result.out
    assert out.startswith('---\ntitle: "Tiny Deal"\n---\nstateDiagram-v2\n')
    assert 'state "Qualify (1-Qualify, 10%)" as qualify' in out
    assert "qualify --> review: next [budgetamount > 100000]" in out
    assert "qualify --> close: next [else]" in out
    assert "[*] --> qualify" in out
    assert "close --> [*]: finish (won, lost)" in out
    assert "s_active" not in out.split("classDef s_active")[1]  # no stage drawn as active


def test_mermaid_gives_stage_ids_it_cannot_read_a_safe_name(bpf_main):
    out = bpf_main("diagram", "opportunity-gated").out
    assert 'state "Executive Review (2-Develop, 50%)" as s3' in out
    assert "develop --> s3: next [budgetamount > 100000]" in out


def test_dot_groups_stages_by_entity_and_labels_branches(bpf_main, tiny):
    out = bpf_main("diagram", tiny, "--format", "dot").out
    assert out.startswith('digraph "tiny-deal" {')
    assert 'qualify -> review [label="next [budgetamount > 100000]"]' in out
    assert 'qualify -> close [label="next [else]"]' in out
    assert 'close -> __end [label="finish (won, lost)"]' in out
    cross = bpf_main("diagram", "lead-to-opportunity", "--format", "dot").out
    assert "subgraph cluster_0 {\n\t\tlabel=lead style=dashed\n\t\tqualify " in cross
    assert "label=opportunity style=dashed\n\t\tdevelop " in cross


def test_mermaid_and_dot_draw_the_same_graph_from_one_transitions_machine(bpf_main):
    def edges(text, arrow, names=None):
        """(source, target) of every edge between two stages."""
        found = set()
        for line in text.splitlines():
            if arrow in line and "__" not in line and "[*]" not in line:
                source, rest = line.split(arrow, 1)
                source, target = source.strip(), rest.split()[0].rstrip(":")
                found.add(tuple((names or {}).get(n, n).strip('"') for n in (source, target)))
        return found

    mermaid = bpf_main("diagram", "opportunity-gated").out
    dot = bpf_main("diagram", "opportunity-gated", "--format", "dot").out
    drawn = edges(mermaid, " --> ", {"s3": "executive-review"})
    assert drawn == edges(dot, " -> ")
    assert ("develop", "executive-review") in drawn and len(drawn) == 5
    assert "[label=\"next [budgetamount > 100000]\"]" in dot
    assert "next [budgetamount > 100000]" in mermaid


@pytest.mark.parametrize(("name", "start"), [("x.mmd", "---\n"), ("x.dot", "digraph ")])
def test_text_files_take_their_format_from_the_suffix(bpf_main, tiny, tmp_path, name, start):
    target = tmp_path / name
    result = bpf_main("diagram", tiny, "-o", target)
    assert result.code == 0
    assert result.out == f"wrote {target}\n"
    assert target.read_text().startswith(start)


def test_rendering_without_graphviz_says_how_to_install_it(bpf_main, tiny, tmp_path,
                                                           monkeypatch):
    monkeypatch.setattr(_diagram.shutil, "which", lambda name: None)
    result = bpf_main("diagram", tiny, "-o", tmp_path / "x.svg")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(f"bpf: error: cannot render {tmp_path / 'x.svg'}: Graphviz is not "
                           "installed; install Graphviz")
    assert "apt-get install graphviz" in line
    assert "pip install graphviz" in line
    assert not (tmp_path / "x.svg").exists()


def test_mermaid_cannot_be_rendered_to_an_image(bpf_main, tiny, tmp_path):
    result = bpf_main("diagram", tiny, "--format", "mermaid", "-o", tmp_path / "x.png")
    assert result.code == 2
    assert "images are rendered from dot" in result.err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_images_render_through_graphviz(bpf_main, tmp_path, suffix):
    target = tmp_path / f"gated.{suffix}"
    result = bpf_main("diagram", "opportunity-gated", "-o", target)
    assert result.code == 0, result.err
    data = target.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert b"<svg" in data and b"budgetamount &gt; 100000" in data
