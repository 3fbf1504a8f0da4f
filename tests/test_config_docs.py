"""Config docs from one source: field docstrings feed `wf config show`, `wf config schema` and docs/config.md."""

import json

from backend.config.docs import DOCS_PAGE, fields, render_markdown
from backend.config.models import Config
from tests.helpers import wf


def test_docs_page_is_generated_from_the_code_and_not_stale():
    assert DOCS_PAGE.read_text() == render_markdown(), "docs/config.md is stale: run `wf config docs --write`"


def test_every_field_has_a_docstring():
    undocumented = [key for key, _, doc, _ in fields() if not doc.strip()]
    assert undocumented == []


def test_schema_carries_the_descriptions():
    res = wf("config", "schema")
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema == json.loads(json.dumps(Config.model_json_schema()))
    lr = schema["$defs"]["SACConfig"]["properties"]["learning_rate"]
    assert "learning rate" in lr["description"].lower()


def test_show_prints_resolved_values_with_meanings(tmp_path):
    res = wf("config", "show", "--config", "tmp/mini_config_v2_low_lr.json", "--set", "sac.gamma=0.95")
    assert res.exit_code == 0, res.output
    assert "sac.learning_rate = 0.0001" in res.output and "sac.gamma = 0.95" in res.output
    assert "# Adam learning rate" in res.output
    bad = wf("config", "show", "--set", "sac.gama=0.9")
    assert bad.exit_code == 2 and "did you mean 'sac.gamma'" in bad.output


def test_the_default_config_comes_from_the_working_tree(tmp_path, monkeypatch):
    local = tmp_path / "configs"
    local.mkdir()
    (local / "sac_intraday.json").write_text(json.dumps({"sac": {"learning_rat": 1}}))
    monkeypatch.chdir(tmp_path)
    res = wf("config", "show")
    assert res.exit_code == 2 and str(local / "sac_intraday.json") in res.output


def test_one_interval_list():
    import click

    from backend.cli.app import cli
    from backend.core.intervals import INTERVALS

    def interval_choices(cmd):
        for p in cmd.params:
            if p.name == "interval" and isinstance(p.type, click.Choice):
                yield tuple(p.type.choices)

    commands = [cli.commands["run"], cli.commands["sweep"], cli.commands["audit"], cli.commands["eval"]]
    commands += list(cli.commands["data"].commands.values())
    found = [c for cmd in commands for c in interval_choices(cmd)]
    assert found and all(c == INTERVALS for c in found)
    assert Config.model_json_schema()["$defs"]["DataConfig"]["properties"]["interval"]["enum"] == list(INTERVALS)
