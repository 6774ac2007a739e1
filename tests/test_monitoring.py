"""The alert rules pass promtool, and every metric they or the dashboard use exists."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tomctl.metrics import Metrics

MONITORING = Path(__file__).parent.parent / "monitoring"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",)}


def exported_names() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_alert_rules_pass_promtool():
    assert shutil.which("promtool"), "needs promtool (apt-get install prometheus)"
    result = subprocess.run(["promtool", "check", "rules", str(MONITORING / "alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def queries() -> dict[str, list[str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return {"alerts.yml": [rule["expr"] for group in rules["groups"] for rule in group["rules"]],
            "grafana-dashboard.json": [target["expr"] for panel in dashboard["panels"]
                                       for target in panel["targets"]]}


def test_every_metric_used_is_exported():
    exported = exported_names()
    for name, expressions in queries().items():
        used = {metric for expr in expressions for metric in re.findall(r"\btom_[a-z0-9_]+", expr)}
        assert used, name
        assert used <= exported, f"{name} uses metrics TOM does not export: {used - exported}"


def test_the_check_can_fail():
    assert "tom_gpu_usage_ratio" not in exported_names()
