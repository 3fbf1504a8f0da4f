"""report.html stands alone; docs/outputs.md and the TensorBoard list of docs/sweeps.md match what a real
run writes; HParams records every hyperparameter so that TensorBoard's "differs" is right."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from backend.evaluation import report
from tests.conftest import TINY_CONFIG, TINY_WINDOWS, tiny_cfg
from tests.helpers import strict_json, wf

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """A real tiny multi-seed run (2 seeds × 2 windows) with a benchmark and a gate: every optional block."""
    root = tmp_path_factory.mktemp("report")
    (root / "tiny_cfg.json").write_text(json.dumps(TINY_CONFIG))
    (root / "w.json").write_text(json.dumps(TINY_WINDOWS))
    res = wf(
        "run", "--config", root / "tiny_cfg.json", "--windows", root / "w.json", "--seeds", "2", "--workers", "2",
        "--benchmark", "SPY", "--set", "evaluation.gates.min_trades=1", "--output-dir", root / "run", "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return root / "run"


# ----------------------------------------------------------------------------- report.html


def test_report_stands_alone(seeds_run):
    page = (seeds_run / "s1" / "report.html").read_text()
    assert "<title>SPY 15m — tiny_cfg, seed 1 — walk-forward report</title>" in page
    assert "<h1>SPY 15m — tiny_cfg, seed 1</h1>" in page
    for text in (
        "stitched out-of-sample curve",
        "Is the Sharpe real?",
        "PSR",
        "Sharpe 95% CI",
        "Annualisation: 6,552 bars a year",
        "buy &amp; hold (intraday)",
        "random (agent&#x27;s turnover)",
        "momentum (intraday)",
        ">flat<",
        "beaten in",
        "Against the benchmark SPY",
        "information ratio",
        "Cost sensitivity",
        "0x costs: return",
        "2x: Sharpe",
        "Diagnostics and gates",
        "min_trades",
        "Per window",
        "config.resolved.json",
    ):
        assert text in page, text
    assert page.count("<img") == 3  # the stitched curve and one plot per window
    summary = strict_json(seeds_run / "s1" / "summary.json")
    ci = summary["statistics"]["sharpe_ci_low"]
    assert f"[{report.fmt_num(ci)}, " in page


def test_stitched_curve_marks_window_boundaries(seeds_run):
    import pandas as pd

    frames = [report._read_equity(seeds_run / "s0" / w / "equity.csv") for w in ("w01", "w02")]
    stitched = pd.concat(frames, ignore_index=True)
    fig = report._figure(stitched, "t", "America/New_York", [(0, "w01"), (len(frames[0]), "w02")])
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_xdata()[0] for ln in lines] == [len(frames[0]) - 0.5]
    assert [t.get_text() for t in fig.axes[0].texts] == ["w01", "w02"]
    report._plt().close(fig)


def test_one_window_shows_one_plot_and_flags_a_collapse(seeds_run, tmp_path):
    run = tmp_path / "one"
    shutil.copytree(seeds_run / "s0", run)
    summary = json.loads((run / "summary.json").read_text())
    summary["windows"][1].update(status="failed", error={"stage": "training", "type": "X", "message": "boom"})
    summary["windows"][0]["diagnostics"]["warnings"] = ["policy collapsed: zero trades on the test span"]
    summary["gates"] = {"windows_passed": 0, "windows_checked": 1}
    (run / "summary.json").write_text(json.dumps(summary))
    page = report.build_report(run).read_text()
    assert page.count("<img") == 1 and "Per window" not in page
    assert "Policy collapsed in 1 of 2 windows" in page and "zero trades on the test span" in page
    assert "<b>Gates</b>: 0 of 1 windows passed" in page
    assert "1 window(s) did not complete: w02" in page and "X: boom" in page
    assert (run / "aggregate.png").read_bytes() == (run / "w01" / "report.png").read_bytes()


# ----------------------------------------------------------------------------- docs/outputs.md


def _documented(section: str) -> tuple[set[str], set[str]]:
    """Backticked paths of a section's field tables: (all, conditional = "only when …" rows)."""
    paths, conditional = set(), set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = line.split(" | ")
        found = set(re.findall(r"`([^`]+)`", cells[0]))
        paths |= found
        if len(cells) > 1 and "only when" in cells[1]:
            conditional |= found
    return paths, conditional


def _sections() -> dict[str, str]:
    text = (DOCS / "outputs.md").read_text()
    parts = re.split(r"^## ", text, flags=re.M)
    return {p.splitlines()[0].strip(): p for p in parts[1:]}


def _metric_keys() -> set[str]:
    section = next(v for k, v in _sections().items() if k.startswith("Metrics"))
    return {re.findall(r"`([^`]+)`", line)[0] for line in section.splitlines() if line.startswith("| `")}


def _real_paths(doc: dict, documented: set[str], metrics: set[str]) -> set[str]:
    """Every field path of ``doc``; map keys as ``*`` and metric keys as ``<metric>`` where the docs say so."""
    prefixes = {p.rsplit(".", k)[0] for p in documented for k in range(p.count(".") + 1)}
    out: set[str] = set()

    def walk(obj, path: str) -> None:
        if isinstance(obj, dict):
            is_map = f"{path}.*" in prefixes
            has_metrics = f"{path}.<metric>" in prefixes
            for key, value in obj.items():
                seg = "*" if is_map else ("<metric>" if has_metrics and key in metrics else key)
                sub = f"{path}.{seg}" if path else seg
                out.add(sub)
                walk(value, sub)
        elif isinstance(obj, list):
            for item in obj:
                if isinstance(item, dict):
                    walk(item, f"{path}[]")

    walk(doc, "")
    return out


def _check(doc: dict, section_title: str) -> None:
    section = _sections()[section_title]
    documented, conditional = _documented(section)
    real = _real_paths(doc, documented, _metric_keys())
    known = {p.rsplit(".", k)[0] for p in documented for k in range(p.count(".") + 1)}
    known |= {p[:-2] for p in known if p.endswith("[]")}
    undocumented = sorted(p for p in real if p not in known)
    assert not undocumented, f"fields written but not in docs/outputs.md ({section_title}): {undocumented}"
    stale = sorted(p for p in documented - conditional if p not in real)
    assert not stale, f"fields in docs/outputs.md ({section_title}) that a run does not write: {stale}"


def test_every_summary_field_is_documented_and_every_documented_field_exists(seeds_run):
    summary = strict_json(seeds_run / "s0" / "summary.json")
    assert summary["benchmark"]["available"] and summary["gates"]  # the optional blocks are exercised
    _check(summary, "summary.json")
    assert set(_metric_keys()) == set(summary["windows"][0]["evaluation"]) - {"deterministic"}


def test_the_multi_seed_summary_is_documented(seeds_run):
    top = strict_json(seeds_run / "summary.json")
    assert top["kind"] == "multi_seed"
    _check(top, "Multi-seed summary (`wf run --seeds N`)")


def test_the_docs_check_catches_drift():
    documented = {"a", "b.c", "m.<metric>", "s.*"}
    real = _real_paths({"a": 1, "b": {"c": 1, "d": 2}, "m": {"sharpe": 1}, "s": {"w01": 1}}, documented, {"sharpe"})
    assert real == {"a", "b", "b.c", "b.d", "m", "m.<metric>", "s", "s.*"}  # b.d would be reported


# ----------------------------------------------------------------------------- TensorBoard


def _scalar_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_tensorboard_tags_in_docs_match_a_real_run(seeds_run):
    section = (DOCS / "sweeps.md").read_text().split("## TensorBoard")[1].split("\n## ")[0]
    listed = set(re.findall(r"`((?:train|time|rollout|episode|eval|baseline|hparam)/[^`]+)`", section))
    written = _scalar_tags(seeds_run / "s0" / "tensorboard" / "w01") | _scalar_tags(
        seeds_run / "s0" / "tensorboard" / "hparams"
    )
    names = ("buy_and_hold", "flat", "random", "momentum")
    expanded = {t for t in listed if "<name>" not in t and "|" not in t}
    expanded |= {t.replace("<name>", n) for t in listed if "<name>" in t for n in names}
    not_written = {"rollout/ep_rew_mean", "baseline/flat/sharpe"}  # named in the docs as never written
    assert expanded - not_written == written, (sorted(expanded - not_written - written), sorted(written - expanded))
    assert "episode/reward" in written and "rollout/ep_rew_mean" not in written


def _session_hparams(root: Path) -> dict[str, dict]:
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins.hparams import metadata

    mux = plugin_event_multiplexer.EventMultiplexer().AddRunsFromDirectory(str(root))
    mux.Reload()
    return {run: tags for run, tags in mux.PluginRunToTagToContent(metadata.PLUGIN_NAME).items()}


def _hparam_infos(root: Path) -> dict:
    from tensorboard.plugins.hparams import backend_context

    return {i.name: i for i in backend_context.Context(None)._compute_hparam_infos(_session_hparams(root))}


def test_hparams_differ_between_runs_with_different_learning_rates(tmp_path):
    from tensorboard.plugins.hparams import metadata

    from backend.training.tb import log_hparams

    log_hparams(tmp_path / "low" / "tensorboard", tiny_cfg(sac={"learning_rate": 1e-4}), {"sharpe": 1.0})
    log_hparams(tmp_path / "high" / "tensorboard", tiny_cfg(), {"sharpe": -1.0})
    runs = _session_hparams(tmp_path)
    assert set(runs) == {"low/tensorboard/hparams", "high/tensorboard/hparams"}
    assert all(metadata.EXPERIMENT_TAG not in tags for tags in runs.values())  # TensorBoard computes differs
    starts = {
        run: metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG]).hparams
        for run, tags in runs.items()
    }
    assert starts["low/tensorboard/hparams"]["sac.learning_rate"].number_value == 1e-4
    assert starts["high/tensorboard/hparams"]["sac.learning_rate"].number_value == 3e-4
    infos = _hparam_infos(tmp_path)
    assert infos["sac.learning_rate"].differs and not infos["sac.gamma"].differs
    assert infos["sac.learning_rate"].domain_interval.min_value == 1e-4
    assert "env.reward" in infos and "training.seed" in infos and "sac.net_arch" in infos


def test_real_seed_runs_differ_in_seed_only(seeds_run):
    infos = _hparam_infos(seeds_run)
    assert infos["training.seed"].differs
    assert [name for name, info in infos.items() if info.differs] == ["training.seed"]
