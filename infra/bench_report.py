"""A ``make bench`` run as printed lines, one per figure, and as docs/performance.md's tables."""

from __future__ import annotations

from typing import Any


def _kinds(images: dict[str, Any]) -> str:
    return ", ".join(f"{v} {k}" for k, v in images["kinds"].items())


def _sizes(batches: dict[str, Any]) -> str:
    sizes = " ".join(f"{k}x{v}" for k, v in batches["sizes"].items())
    return f"{batches['count']} batches, mean {batches['mean']:g} (size x count: {sizes})"


def _cpu(cpu: dict[str, float]) -> str:
    parts = ", ".join(f"{k} {v:g}" for k, v in cpu.items() if k != "cores_busy")
    return f"{parts} ms; {cpu['cores_busy']:g} cores busy"


def _mix_lines(mix: str, d: dict[str, Any]) -> list[str]:
    i, b, e = d["images"], d["bare"], d["end_to_end"]
    lines = [
        f"{mix} mix: {i['count']} photos ({_kinds(i)}; mean {i['mean_bytes'] / 1e6:.2f} MB)",
        f"bare decode+inference, {mix}: {b['rate_ips']:.1f} img/s, {b['cpu_ms_per_image']:g} ms "
        f"CPU per image (passes {' / '.join(f'{x:.1f}' for x in b['passes_ips'])})",
        f"end to end, {mix}: {e['rate_ips']:.1f} img/s = {e['ratio_to_bare']:.2f} x bare "
        f"({e['images']} photos, 4 concurrent POST /jobs + GET ?wait=20 from another process, "
        f"{e['seconds']:.1f} s; {e['succeeded']} succeeded, top-1 = bare on "
        f"{e['agree_with_bare']}; classify {_sizes(e['classify_batches'])}, handler "
        f"{e['classify_handler_ms_per_image']:g} ms/image)",
        f"CPU per image, end to end, {mix}: {_cpu(e['cpu_ms_per_image'])}",
    ]
    for r in d["drains"]:
        lines.append(
            f"drain, {mix}, window {r['window_s']:g} s ({r['path']}): {r['rate_ips']:.1f} img/s "
            f"= {r['ratio_to_bare']:.2f} x bare ({r['queued_before_start']} queued first, "
            f"{r['succeeded']} succeeded; {_sizes(r['batches'])}; handler "
            f"{r['handler_ms_per_image']:g} ms/image)"
        )
        if "cpu_ms_per_image" in r:
            lines.append(
                f"CPU per image, drain, {mix}, window {r['window_s']:g} s: "
                f"{_cpu(r['cpu_ms_per_image'])}"
            )
    return lines


def _cost_lines(c: dict[str, Any]) -> list[str]:
    lines = [
        f"cost per million images, {line['item']}: ${line['usd_per_million']:.4f} "
        f"({line['per_image']:.4g} x ${line['unit_usd']:.4g})"
        for line in c["lines"]
    ]
    return [
        *lines,
        f"cost per million images, total (us-east-1 list prices of {c['prices_as_of']}): "
        f"${c['total_usd_per_million']:.2f}; beside it Rekognition DetectLabels "
        f"${c['rekognition_usd_per_million']:,.0f}",
    ]


def summary(doc: dict[str, Any]) -> list[str]:
    """The printed lines."""
    m, lat = doc["machine"], doc["latency"]
    calls, logs = doc["aws_calls_per_job"], doc["logs_per_job"]
    lp, sa, cold, mem = (
        doc[k] for k in ("long_poll", "status_vs_api", "cold_start", "classifier_memory")
    )
    pw, hook = lat["prefer_wait"], lat["webhook"]
    lines = [
        f"bench: {doc['date']}, {m['cpus']} cores, load average {m['load_average_before'][0]} "
        f"before, {m['load_average_after'][0]} after; model {doc['model']['name']} "
        f"{doc['model']['version']}; {doc['command']}"
    ]
    for mix, d in doc["mixes"].items():
        lines += _mix_lines(mix, d)
    lines += [
        f"latency, POST /jobs with Prefer: wait=10 to SUCCEEDED, one {pw['image']} at a time: "
        f"p50 {pw['p50_ms']:.0f} ms, p95 {pw['p95_ms']:.0f} ms ({pw['count']}, "
        f"{pw['answered_200']} answered 200)",
        f"latency, POST /jobs to the signed webhook received: p50 {hook['p50_ms']:.0f} ms, p95 "
        f"{hook['p95_ms']:.0f} ms ({hook['count']}, {hook['verified']} signatures verified)",
        f"AWS calls per job ({calls['jobs']} ordinary jobs end to end): "
        + ", ".join(f"{k} {v:g}" for k, v in calls["all"].items()),
        "  of which the classifier's: "
        + ", ".join(f"{k} {v:g}" for k, v in calls["classify"].items()),
        f"logs per job: {logs['bytes']:g} bytes ({logs['json_bytes']:g} of them JSON lines), "
        f"{logs['lines']:g} lines",
        *_cost_lines(doc["cost_per_million_images"]),
    ]
    for mix, eff in doc["classifier_efficiency"].items():
        lines.append(
            f"classifier efficiency, {mix} drain: the worker process's CPU (utime+stime) "
            f"{eff['worker_cpu_ms_per_image']:g} ms per image vs bare "
            f"{eff['bare_cpu_ms_per_image']:g} ms on the same {eff['images']} images: "
            f"{eff['ratio']:.2f}x (target <= {eff['target']:g}x)"
        )
    s, a = sa["status"], sa["api"]
    lines += [
        f"long poll: a {lp['seconds']:g} s wait on a job that never finishes made "
        f"{lp['get_item_calls']} GetItem calls ({lp['reads_per_s']:g} reads/s), {lp['gb_s']:g} "
        f"GB-s at {lp['memory_mb']} MB: ${lp['usd_per_million_waits']:g} per million waits",
        f"status function vs API function: import {s['import_ms']:g} vs {a['import_ms']:g} ms, "
        f"RSS after import {s['rss_after_import_mb']:g} vs {a['rss_after_import_mb']:g} MB, "
        f"GET /jobs/{{id}} median {s['get_median_ms']:g} vs {a['get_median_ms']:g} ms (Chalice "
        f"test client, same emulator); over HTTP through the runtime "
        f"{s['http_get_median_ms']:g} ms",
        "kept state, the writes of one job (image, record, start, result): "
        f"{doc['durability']['memory']['wall_ms_per_job']:.1f} ms in memory, "
        f"{doc['durability']['journal']['wall_ms_per_job']:.1f} ms journaled "
        f"(+{doc['durability']['extra_emulator_cpu_ms_per_job']:.1f} ms of emulator CPU, "
        f"{doc['durability']['journal']['journal_kib_per_job']:.0f} KiB of journal per job)",
        f"cold start of the classifier: {cold['total_ms']:.0f} ms (import {cold['import_ms']:.0f},"
        f" session {cold['session_ms']:.0f}, first result {cold['first_result_ms']:.0f}); "
        f"{cold['process_wall_ms']:.0f} ms from spawning the process",
        f"classifier process peak RSS: {mem['peak_rss_mb']:.0f} MB of {mem['lambda_memory_mb']} "
        f"MB over the runs; {mem['worst_batch']['images']} 48 MP RGBA PNGs: "
        f"{mem['worst_batch']['peak_rss_mb']:.0f} MB ({mem['worst_batch']['succeeded']} "
        "succeeded)",
    ]
    return lines


def _mix_rows(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    mixes = doc["mixes"]

    def each(fn: Any) -> tuple[str, ...]:
        return tuple(fn(mixes[m]) for m in mixes)

    rows = [
        ("photos", *each(lambda d: f"{d['images']['count']} ({_kinds(d['images'])})")),
        ("bare decode + inference", *each(lambda d: f"{d['bare']['rate_ips']:.1f} img/s")),
        ("bare CPU per image", *each(lambda d: f"{d['bare']['cpu_ms_per_image']:g} ms")),
        (
            "end to end, submissions included (4 concurrent clients, another process)",
            *each(lambda d: f"{d['end_to_end']['rate_ips']:.1f} img/s"),
        ),
        ("**end to end / bare**", *each(lambda d: f"**{d['end_to_end']['ratio_to_bare']:.2f}**")),
        (
            "classify batches end to end (mean size)",
            *each(lambda d: f"{d['end_to_end']['classify_batches']['mean']:g}"),
        ),
        (
            "CPU ms per image end to end: classifier / runtime / emulator / client; cores busy",
            *each(lambda d: _cpu_cell(d["end_to_end"]["cpu_ms_per_image"])),
        ),
        (
            "CPU ms per image, drain at window 0: classifier / runtime / emulator; cores busy",
            *each(lambda d: _cpu_cell(d["drains"][0]["cpu_ms_per_image"])),
        ),
    ]
    windows = sorted(
        {(r["window_s"], r["path"]) for d in mixes.values() for r in d["drains"]},
        key=lambda wp: (wp[1] != "runtime", wp[0]),  # the runtime's drains first
    )
    for window, path in windows:

        def cell(d: dict[str, Any], w: float = window, p: str = path) -> str:
            found = [r for r in d["drains"] if (r["window_s"], r["path"]) == (w, p)]
            if not found:
                return "-"
            r = found[0]
            rate, ratio, mean = r["rate_ips"], r["ratio_to_bare"], r["batches"]["mean"]
            return f"{rate:.1f} img/s, {ratio:.2f}; batches {mean:g}"

        rows.append((f"drain, window {window:g} s ({path}): rate, / bare; mean batch", *each(cell)))
    eff = doc["classifier_efficiency"]
    rows.append(
        (
            "classifier CPU per image in the drain / bare (target 1.15)",
            *(f"{eff[m]['worker_cpu_ms_per_image']:g} ms, {eff[m]['ratio']:.2f}" for m in mixes),
        )
    )
    return rows


def _cpu_cell(cpu: dict[str, float]) -> str:
    parts = " / ".join(f"{v:g}" for k, v in cpu.items() if k != "cores_busy")
    return f"{parts}; {cpu['cores_busy']:g}"


def markdown(doc: dict[str, Any]) -> str:
    """The tables of one run, as docs/performance.md shows them."""
    m, lat, lp, sa = doc["machine"], doc["latency"], doc["long_poll"], doc["status_vs_api"]
    cold, mem, c = doc["cold_start"], doc["classifier_memory"], doc["cost_per_million_images"]
    head = (
        f"`{doc['command']}`, {doc['date']}, {m['cpus']} cores (shared), load average "
        f"{m['load_average_before'][0]} before and {m['load_average_after'][0]} after"
    )
    mixes = list(doc["mixes"])
    table = [
        f"| figure | {' | '.join(f'{x} mix' for x in mixes)} |",
        "|---" * (len(mixes) + 1) + "|",
    ]
    table += [f"| {' | '.join(row)} |" for row in _mix_rows(doc)]
    calls = ", ".join(f"{k} {v:g}" for k, v in doc["aws_calls_per_job"]["all"].items())
    s, a = sa["status"], sa["api"]
    pw, hook, worst = lat["prefer_wait"], lat["webhook"], mem["worst_batch"]
    rows = [
        (
            "latency, `Prefer: wait=10` to SUCCEEDED (p50 / p95)",
            f"{pw['p50_ms']:.0f} / {pw['p95_ms']:.0f} ms",
        ),
        (
            "latency, POST to the signed webhook received (p50 / p95)",
            f"{hook['p50_ms']:.0f} / {hook['p95_ms']:.0f} ms",
        ),
        ("AWS calls per job (ordinary mix, end to end)", calls),
        ("log bytes per job", f"{doc['logs_per_job']['bytes']:g}"),
        (
            f"long poll: reads in a {lp['wait_s']} s wait; GB-s at {lp['memory_mb']} MB",
            f"{lp['get_item_calls']} ({lp['reads_per_s']:g}/s); {lp['gb_s']:g}",
        ),
        (
            "status vs API function: import; RSS after it; GET median (test client)",
            f"{s['import_ms']:g} vs {a['import_ms']:g} ms; {s['rss_after_import_mb']:g} vs "
            f"{a['rss_after_import_mb']:g} MB; {s['get_median_ms']:g} vs {a['get_median_ms']:g} ms",
        ),
        (
            "classifier cold start (import + session + first result)",
            f"{cold['total_ms']:.0f} ms ({cold['import_ms']:.0f} + {cold['session_ms']:.0f} + "
            f"{cold['first_result_ms']:.0f})",
        ),
        (
            f"classifier peak RSS over the runs; {worst['images']} 48 MP RGBA PNGs",
            f"{mem['peak_rss_mb']:.0f} MB; {worst['peak_rss_mb']:.0f} MB (of "
            f"{mem['lambda_memory_mb']})",
        ),
    ]
    other = ["| figure | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    bill = ["| line item | per image | unit | per million images |", "| --- | --- | --- | --- |"]
    bill += [
        f"| {x['item']} | {x['per_image']:.4g} | {x['unit']} at ${x['unit_usd']:.4g} | "
        f"${x['usd_per_million']:.4f} |"
        for x in c["lines"]
    ]
    bill += [
        f"| **total** | | | **${c['total_usd_per_million']:.2f}** |",
        f"| Amazon Rekognition DetectLabels, for comparison | 1 | image | "
        f"${c['rekognition_usd_per_million']:,.0f} |",
    ]
    return "\n".join([head, "", *table, "", *other, "", *bill])
