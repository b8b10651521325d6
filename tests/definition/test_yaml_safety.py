"""Reading YAML: any malformed or hostile input is a located DefinitionError, never a traceback."""

from __future__ import annotations

import textwrap
import time
import tracemalloc

import pytest

import bpf

VALID = """\
process: tiny
name: Tiny
entity: account
stages:
  - id: only
    name: Only
"""


def problems(text: str | bytes, source: str = "<string>") -> list[str]:
    if isinstance(text, str):
        text = textwrap.dedent(text)
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(text, source)
    return [str(p) for p in info.value.problems]


def test_syntax_error_is_located_where_the_parser_stopped():
    assert problems("""\
        process: broken
        name: [Broken
        entity: account
        """) == [
        "<string>:3:7: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 2, column 7)"
    ]


def test_bad_indentation_is_a_syntax_error():
    (problem,) = problems("""\
        process: broken
        name: Broken
          entity: account
        """)
    assert problem.startswith("<string>:3:9: invalid YAML: mapping values are not allowed")


def test_duplicate_keys_are_reported_not_silently_overwritten():
    assert problems("""\
        process: twice
        name: First
        entity: account
        name: Second
        stages:
          - id: only
            name: Only
            name: Again
        """) == [
        "<string>:4:1: duplicate key 'name': it is already set at line 2, column 1 "
        "(YAML would silently keep only the last one)",
        "<string>:8:5: duplicate key 'name': it is already set at line 7, column 5 "
        "(YAML would silently keep only the last one)",
    ]


def test_python_tags_are_refused():
    assert problems(VALID + "description: !!python/object/apply:os.system ['echo hi']\n") == [
        "<string>:7:14: the tag !!python/object/apply:os.system is not allowed: a process "
        "definition holds plain values only (text, numbers, true/false, dates, lists, mappings)",
    ]


def test_unknown_tags_are_refused():
    assert problems(VALID + "description: !secret hello\n") == [
        "<string>:7:14: the tag !secret is not allowed: a process definition holds plain values "
        "only (text, numbers, true/false, dates, lists, mappings)"
    ]


def test_set_and_binary_tags_are_refused():
    found = problems(VALID + "roles: !!set {a, b}\ndescription: !!binary aGVsbG8=\n")
    assert found[0].startswith("<string>:7:8: the tag !!set is not allowed")
    assert found[1].startswith("<string>:8:14: the tag !!binary is not allowed")


def test_explicit_plain_tags_are_fine():
    definition = bpf.loads_process(VALID + "description: !!str 12\nversion: !!int '3'\n")
    assert (definition.description, definition.version) == ("12", 3)


def test_anchors_and_aliases_are_expanded():
    definition = bpf.loads_process(textwrap.dedent("""\
        process: shared-steps
        name: Shared Steps
        entity: account
        stages:
          - id: one
            name: One
            steps: &common
              - {field: owner, label: Owner, type: lookup}
          - id: two
            name: Two
            steps: *common
        """))
    assert definition.stage("two").steps == definition.stage("one").steps


def test_problems_inside_an_alias_are_located_where_the_alias_is_used():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages: &s
          - id: one
            name: One
        description: *s
        """) == ["<string>:7:14: `description` must be text, not a list"]


def test_unknown_alias_is_reported():
    assert problems(VALID + "description: *nowhere\n") == [
        "<string>:7:14: unknown alias *nowhere: no anchor &nowhere is defined before it"
    ]


def test_recursive_alias_is_refused():
    assert problems(VALID + "roles: &r [a, *r]\n")[0] == (
        "<string>:7:15: the alias *r refers to a list or mapping that contains it: recursive "
        "structures are not allowed"
    )


def test_merge_keys_are_not_supported():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - <<: {id: one}
            name: One
        """)[0] == (
        "<string>:5:5: merge keys (<<) are not supported: write the keys out, or use `extends` "
        "to build on another process"
    )


def test_keys_must_be_text():
    assert problems(VALID + "yes: 1\n? [a, b]\n: c\n") == [
        "<string>:7:1: the key 'yes' is read by YAML as true: keys must be text, quote it",
        "<string>:8:3: a key must be text, not a list",
    ]


def test_impossible_date_is_a_located_problem():
    assert problems(VALID + "description: 2024-02-30\n") == [
        "<string>:7:14: cannot read '2024-02-30' as a date; quote it to keep it as text"
    ]


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"  # expands to 9**10 (3.4 billion) strings


def test_alias_bomb_is_refused_quickly():
    started = time.perf_counter()
    found = problems(_alias_bomb())
    assert time.perf_counter() - started < 1.0  # typically 0.1 s
    assert found == [
        # a4 stands for 9**5 values: expanding its use in a5 goes over the budget.
        "<string>:6:10: the document expands to more than 100000 values through its aliases "
        "(*a4): refused"
    ]


def test_alias_bomb_is_refused_in_little_memory():
    tracemalloc.start()
    try:
        problems(_alias_bomb())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_deep_nesting_is_refused_without_recursion():
    found = problems("[" * 100_000)
    assert len(found) == 1
    assert found[0].startswith("<string>:1:")


def test_block_nesting_beyond_the_depth_cap_is_refused():
    assert problems("- " * 150 + "x\n") == [
        "<string>:1:201: lists and mappings are nested more than 100 levels deep: too deep for "
        "a process definition"
    ]


def test_too_many_values_are_refused():
    text = "roles: [" + "a, " * 100_001 + "a]\n"
    assert problems(text)[0].endswith(
        "the file holds more than 100000 values: too large for a process definition"
    )


def test_files_over_one_mebibyte_are_refused():
    text = VALID + "description: " + "x" * (1024 * 1024) + "\n"
    assert problems(text) == [
        "<string>:1:1: the file is larger than 1 MiB: a process definition may be at most "
        "1,048,576 bytes"
    ]


def test_empty_file():
    assert problems("") == [
        "<string>:1:1: the file is empty: a process definition is a mapping with at least "
        "`process`, `name`, `entity` and `stages`"
    ]


def test_file_with_only_comments_is_empty():
    assert problems("# nothing yet\n")[0].startswith("<string>:1:1: the file is empty")


def test_empty_document():
    assert problems("---\n") == [
        "<string>:1:1: the document is empty: a process definition is a mapping with at least "
        "`process`, `name`, `entity` and `stages`"
    ]


def test_a_list_instead_of_a_mapping():
    assert problems("- process: p\n- name: P\n") == [
        "<string>:1:1: the process definition must be a mapping (key: value), not a list"
    ]


def test_a_plain_text_instead_of_a_mapping():
    assert problems("hello world\n") == [
        "<string>:1:1: the process definition must be a mapping (key: value), not the text "
        "'hello world'"
    ]


def test_multi_document_streams_are_refused():
    assert problems(VALID + "---\nprocess: second\n") == [
        "<string>:7:1: a second YAML document starts here: a process file holds exactly one "
        "document (remove this '---' and what follows, or split the file)"
    ]


def test_explicit_single_document_markers_are_fine():
    assert bpf.loads_process("---\n" + VALID + "...\n").process == "tiny"


def test_invalid_utf8_is_located():
    assert problems(b"process: p\nname: caf\xe9\n") == [
        "<string>:2:10: the file is not UTF-8 text: byte 0xe9 cannot be decoded "
        "(is it a binary file?)"
    ]


def test_nul_bytes_are_binary_data():
    assert problems(b"process: p\nname: P\x00\x01\x02\n") == [
        "<string>:2:8: the file contains a NUL byte: it is binary data, not YAML text"
    ]


def test_control_characters_are_refused():
    assert problems("process: p\nname: \x1b[31mred\n") == [
        "<string>:2:7: the file contains the control character U+001B: it is binary data, "
        "not YAML text"
    ]


def test_utf8_bom_and_non_ascii_text_are_fine():
    text = ("\ufeff" + VALID.replace("name: Tiny", "name: Opportunità")).encode("utf-8")
    assert bpf.loads_process(text).name == "Opportunità"


def test_columns_count_characters_not_bytes():
    assert problems("process: p\nname: Opportunità\nentity: [x\n") == [
        "<string>:4:1: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 3, column 9)"
    ]


def test_a_big_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(VALID + "description: " + "x" * (8 * 1024 * 1024) + "\n")
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(path)
    assert str(info.value) == (
        f"{path}:1:1: the file is larger than 1 MiB: a process definition may be at most "
        "1,048,576 bytes"
    )


def test_binary_garbage_from_a_file(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(path)
    (problem,) = info.value.problems
    assert problem.source == str(path)
    assert (problem.line, problem.column) == (1, 1)
