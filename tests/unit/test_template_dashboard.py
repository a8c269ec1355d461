"""The packaged template's CloudWatch dashboard: valid JSON once deployed, every queue's backlog
and age on it, and only metrics the code really emits, with the dimensions it emits them with."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib import telemetry
from tests.sam_template import load_sam

REGION = "eu-west-1"
GRID_WIDTH = 24  # a CloudWatch dashboard is 24 units wide
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Resolver:
    """Resolves the intrinsic functions a dashboard body uses, as CloudFormation would.

    ``Ref`` gives a fake physical id, ``Fn::GetAtt ... QueueName`` the queue's declared name;
    anything else raises, so the dashboard cannot use what this test does not understand.
    """

    def __init__(self, resources: dict[str, Any], *, region: str) -> None:
        self._resources = resources
        self._pseudo = {"AWS::Region": region, "AWS::Partition": "aws"}

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its string."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        key = next(iter(value), "")
        if len(value) != 1 or not (key == "Ref" or key.startswith("Fn::")):
            return {k: self.resolve(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            return self._get_att(*argument)
        if function == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(self.resolve(items))
        if function == "Fn::Sub":
            return self._sub(argument)
        raise AssertionError(f"the resolver does not know {function}")

    def _ref(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        assert name in self._resources, f"Ref to unknown {name}"
        return f"{name}-physical-id"

    def _get_att(self, name: str, attribute: str) -> str:
        assert name in self._resources, f"Fn::GetAtt of unknown {name}"
        resource = self._resources[name]
        assert (resource["Type"], attribute) == ("AWS::SQS::Queue", "QueueName"), (name, attribute)
        return str(resource["Properties"]["QueueName"])

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        given = {k: str(self.resolve(v)) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in given:
                return given[name]
            if "." in name:
                return self._get_att(*name.split(".", 1))
            return self._ref(name)

        return _SUB_VARIABLE.sub(replace, text)


def metric_rows(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """A metric widget's rows as (namespace, name, dimensions, options), "." shorthands expanded."""
    rows = []
    previous: list[Any] = []
    for row in widget["properties"].get("metrics", []):
        options = row[-1] if isinstance(row[-1], dict) else {}
        fields = row[:-1] if options else list(row)
        fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
        previous = fields
        dims = dict(zip(fields[2::2], fields[3::2], strict=True))
        rows.append((fields[0], fields[1], dims, options))
    return rows


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_sam()["Resources"])


@pytest.fixture(scope="module")
def dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    (found,) = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = Resolver(resources, region=REGION).resolve(found["Properties"]["DashboardBody"])
    assert isinstance(body, str), "DashboardBody must resolve to a JSON string"
    return dict(json.loads(body))


@pytest.fixture(scope="module")
def rows(dashboard: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    return [r for w in dashboard["widgets"] if w["type"] == "metric" for r in metric_rows(w)]


@pytest.fixture
def emitted(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The EMF blob a function writes after recording every metric telemetry declares."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    telemetry.flush()
    capsys.readouterr()
    for name in telemetry._METRICS:
        if name.endswith("_ms"):
            telemetry.observe_ms(name, 1.0)
        else:
            telemetry.count(name)
    telemetry.flush()
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def test_the_dashboard_body_resolves_to_json_with_the_region_in_every_metric_widget(
    dashboard: dict[str, Any],
) -> None:
    metric_widgets = [w for w in dashboard["widgets"] if w["type"] == "metric"]
    assert len(metric_widgets) >= 6
    assert {w["properties"]["region"] for w in metric_widgets} == {REGION}
    for widget in metric_widgets:
        assert widget["properties"]["title"]
        assert metric_rows(widget), widget["properties"]["title"]


def test_every_queue_shows_its_backlog_and_the_age_of_its_oldest_message(
    resources: dict[str, Any], rows: list[tuple[str, str, dict[str, str], dict[str, Any]]]
) -> None:
    queues = {
        r["Properties"]["QueueName"] for r in resources.values() if r["Type"] == "AWS::SQS::Queue"
    }
    shown = {(name, dims.get("QueueName")) for ns, name, dims, _ in rows if ns == "AWS/SQS"}

    assert len(queues) == 8  # jobs, ingest, notify, webhooks and a DLQ each
    for queue in queues:
        assert ("ApproximateNumberOfMessagesVisible", queue) in shown, queue
        assert ("ApproximateAgeOfOldestMessage", queue) in shown, queue
    assert {q for _, q in shown} == queues  # and no queue the stack does not have


def test_every_imgcls_metric_is_emitted_by_the_code_with_the_same_dimensions(
    rows: list[tuple[str, str, dict[str, str], dict[str, Any]]], emitted: dict[str, Any]
) -> None:
    (directive,) = emitted["_aws"]["CloudWatchMetrics"]
    (dimension_names,) = directive["Dimensions"]  # Powertools: one set, the service
    emitted_dimensions = {d: emitted[d] for d in dimension_names}
    ours = [(name, dims) for ns, name, dims, _ in rows if ns == directive["Namespace"]]

    assert emitted_dimensions == {"service": telemetry.SERVICE}
    assert {name for name, _ in ours} <= telemetry.emf_metric_names(emitted)
    for name, dims in ours:
        # CloudWatch matches dimensions exactly: one more or one less and the graph is empty.
        assert dims == emitted_dimensions, name
    assert {ns for ns, *_ in rows} == {"AWS/SQS", telemetry.NAMESPACE}


def test_jobs_latency_dead_letters_and_webhooks_are_drawn_per_minute(
    rows: list[tuple[str, str, dict[str, str], dict[str, Any]]], dashboard: dict[str, Any]
) -> None:
    drawn = {(name, options.get("stat")) for ns, name, _, options in rows if ns != "AWS/SQS"}
    periods = {w["properties"]["period"] for w in dashboard["widgets"] if w["type"] == "metric"}

    assert {
        ("JobsSucceeded", "Sum"),
        ("JobsFailed", "Sum"),
        ("ClassificationLatency", "p50"),
        ("ClassificationLatency", "p95"),
        ("DeadLetters", "Sum"),
        ("WebhooksDelivered", "Sum"),
        ("WebhooksFailed", "Sum"),
    } <= drawn
    assert periods == {60}


def test_widgets_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for widget in dashboard["widgets"]:
        x, y, w, h = (widget[k] for k in ("x", "y", "width", "height"))
        assert x >= 0, widget
        assert x + w <= GRID_WIDTH, widget
        cells = {(col, row) for col in range(x, x + w) for row in range(y, y + h)}
        assert not cells & taken, widget
        taken |= cells


def test_the_console_link_names_the_dashboard(resources: dict[str, Any]) -> None:
    outputs = load_sam()["Outputs"]
    (name,) = [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    url = Resolver(resources, region=REGION).resolve(outputs["OperationsDashboardUrl"]["Value"])

    assert url.startswith(f"https://{REGION}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith(f"#dashboards:name={name}-physical-id")
