import json
import re

from backend.core.jsonio import write_json
from backend.evaluation import selection as sel
from backend.evaluation.sweep_report import HOW_TO_READ, build_sweep_report
from tests.test_selection import make_sweep


def images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page)


def test_report_uses_the_sweeps_selection_and_is_self_contained(tmp_path):
    rows = make_sweep(tmp_path, {"edge": 0.0004, "noise": 0.0}, seeds=2, windows=4)
    doc = json.loads((tmp_path / "sweep.json").read_text())
    doc["selection"] = sel.selection_from_rows(rows, reps=200, n_boot=300)
    write_json(tmp_path / "sweep.json", doc)
    path = build_sweep_report(tmp_path)
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report.html"
    assert images(page) == ["window Sharpe heatmap", "equity curves", "IQM and probability of improvement", "PBO plots"]
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing to fetch
    assert "Best config: edge" in page and sel.SKILL in page
    for text in HOW_TO_READ.values():
        assert text.replace("'", "&#x27;").replace('"', "&quot;") in page
    assert "PBO = 0.000" in page and "S = 16 blocks" in page
    assert page.count("<tr>") >= 1 + 2 + 1 + 2 + 1 + 4  # configs, snooping, members tables


def test_report_computes_the_statistics_when_the_sweep_did_not(tmp_path):
    rows = make_sweep(tmp_path, {"a": 0.0, "b": 0.0, "c": 0.0}, seeds=1, windows=2, seed=4)
    for r in rows:  # written by a sweep started in another directory
        r["path"] = f"runs/elsewhere/{r['name']}"
    write_json(tmp_path / "sweep.json", {"schema_version": 1, "members": rows})
    page = build_sweep_report(tmp_path).read_text(encoding="utf-8")
    assert "Statistics status: <b>ok</b>" in page and len(images(page)) == 4
    assert "seeds 0;" in page


def test_report_of_a_sweep_whose_members_all_failed(tmp_path):
    rows = make_sweep(tmp_path, {"a": 0.0}, seeds=2, windows=1)
    for r in rows:
        r.update(status="failed", error="Training [w01] — ValueError: boom")
    write_json(tmp_path / "sweep.json", {"schema_version": 1, "members": rows})
    page = build_sweep_report(tmp_path).read_text(encoding="utf-8")
    assert images(page) == []
    assert "No selection statistics: no member with out-of-sample returns" in page
    assert "ValueError: boom" in page and "status failed; left out" in page


def test_report_shows_refusals_of_a_thin_sweep(tmp_path):
    make_sweep(tmp_path, {"only": 0.0}, seeds=1, windows=1, sessions=1)
    page = build_sweep_report(tmp_path).read_text(encoding="utf-8")
    assert "PBO refused: PBO needs at least 2 configs" in page
    assert "refused: SPA needs at least 100 bars" in page
    assert sel.UNDETERMINED in page
