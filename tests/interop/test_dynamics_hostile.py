"""Hostile and broken inputs: refused with a located error, quickly, never a traceback."""

from __future__ import annotations

import time
import zipfile

import pytest
from dynamics import xamlkit as k

import bpf
from bpf.interop.dynamics import convert

T = "new_thing"
S = k.new_id()
GOOD = k.workflow(k.entity(T, k.stage(S, "Only", k.step("new_name", "Name", required=True))))


def refused(path) -> bpf.Problem:
    with pytest.raises(bpf.DefinitionError) as error:
        convert(path)
    (problem,) = error.value.problems
    return problem


def test_a_classic_workflow_named_explicitly_is_not_a_business_process_flow(tmp_path):
    path = k.write_flow(tmp_path, GOOD, k.row("new_sendmail", T, "Send Mail", category=0))
    problem = refused(path)
    assert problem.source.endswith("Flow.xaml.data.xml")
    assert "not a business process flow: its process row says category 0 (a classic " \
           "workflow)" in problem.message


def test_a_workflow_without_stages_is_not_a_business_process_flow(tmp_path):
    xaml = k.workflow(k._ref("SetEntityProperty", k._properties()))
    problem = refused(k.write_flow(tmp_path, xaml))
    assert problem.message.startswith("not a business process flow: the workflow has no "
                                      "stages")
    assert problem.line == 2  # the <mxswa:Workflow> element


def test_a_solution_converts_its_flows_and_skips_its_classic_workflows(tmp_path):
    k.write_flow(tmp_path, GOOD, k.row("new_flow", T, "Flow"))
    classic = k.workflow(k._ref("SetEntityProperty", k._properties()),
                         flow_id="11111111-2222-3333-4444-555555555555")
    k.write_flow(tmp_path, classic, k.row("new_mail", T, "Mail", category=0,
                                          xaml="Mail.xaml"), name="Mail.xaml")
    assert [c.process for c in convert(tmp_path)] == ["new_flow"]


def test_a_folder_without_flows_says_so(tmp_path):
    (tmp_path / "Other").mkdir()
    problem = refused(tmp_path)
    assert "no business process flow here" in problem.message


def test_truncated_xaml_is_malformed_xml_located(tmp_path):
    problem = refused(k.write_flow(tmp_path, GOOD[: len(GOOD) // 2]))
    assert problem.message.startswith("malformed XML: ")
    assert problem.line >= 2


def test_a_binary_file_is_malformed_xml(tmp_path):
    path = k.write_flow(tmp_path, "")
    path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    assert refused(path).message.startswith("malformed XML: ")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Activity>&lol9;</Activity>
"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE Workflow [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Workflow Name="&secret;"><Category>4</Category></Workflow>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL,
                                  '<!DOCTYPE Activity SYSTEM "http://example.com/x.dtd">'
                                  "<Activity/>"],
                         ids=["billion laughs", "external entity", "external DTD"])
def test_xml_with_a_dtd_or_entities_is_refused_quickly(tmp_path, text):
    path = k.write_flow(tmp_path, text)
    started = time.perf_counter()
    problem = refused(path)
    assert time.perf_counter() - started < 1
    assert "declares a DTD or entities" in problem.message
    assert problem.line == 2 or problem.line == 1


def test_a_process_row_with_an_entity_is_refused_too(tmp_path):
    path = k.write_flow(tmp_path, GOOD, EXTERNAL)
    problem = refused(path)
    assert problem.source.endswith("Flow.xaml.data.xml")
    assert "declares a DTD or entities" in problem.message


def test_a_zip_bomb_is_refused_without_expanding_it(tmp_path):
    archive = tmp_path / "solution.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Workflows/Flow.xaml", GOOD + " " * (64 * 1024 * 1024))
    assert archive.stat().st_size < 1024 * 1024
    started = time.perf_counter()
    problem = refused(archive)
    assert time.perf_counter() - started < 2
    assert problem.source == f"{archive}!Workflows/Flow.xaml"
    assert "refused as a zip bomb" in problem.message


def test_a_broken_zip_is_not_a_readable_zip(tmp_path):
    archive = tmp_path / "solution.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Workflows/Flow.xaml", GOOD)
    data = archive.read_bytes()
    archive.write_bytes(data[:30] + b"\0" * 40 + data[70:])
    problem = refused(archive)
    assert problem.source.startswith(str(archive))


def test_a_file_that_is_neither_xaml_nor_zip_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert "not a Dynamics business process flow" in refused(path).message
