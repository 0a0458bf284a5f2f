from pathlib import Path

from sesame.awsapi.coverage import render
from sesame.awsapi.spec import service_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "coverage.md"


def test_coverage_doc_is_current() -> None:
    assert DOC.read_text() == render(), "run: python -m sesame.awsapi.coverage > docs/coverage.md"


def test_coverage_doc_lists_every_operation() -> None:
    text = DOC.read_text()
    for service in ("ses", "sesv2"):
        for name in service_model(service).operation_names:
            assert f"] {name}\n" in text
