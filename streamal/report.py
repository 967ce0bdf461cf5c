"""``streamal report``: one HTML page with PNG plots from ``streamal replay --json`` results.

The page is a single file with its images inlined, so it opens offline and
can be mailed around. It shows, per dataset and budget, accuracy against
labels used (learning curves), the budget spent and the threshold along the
stream with the drifts detected, and over everything the label efficiency.
Needs matplotlib (``pip install "streamal[report]"``).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = ["build_report"]

_BASELINES = ("random_sampling", "all_labels")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _first_runs(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One run per strategy (the first seed): curves of several seeds would hide each other."""
    runs: dict[str, dict[str, Any]] = {}
    for run in result["runs"]:
        if run.get("trace") and run["strategy"] not in runs:
            runs[run["strategy"]] = run
    return runs


def _curves(result: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 3.8))
    for name, run in _first_runs(result).items():
        t = run["trace"]
        style = "--" if name in _BASELINES else "-"
        ax1.plot([max(v, 1) for v in t["labels"]], t["accuracy"], style, label=name)
        if name != "all_labels":
            spent = [lab / pos for lab, pos in zip(t["labels"], t["position"], strict=True)]
            ax2.plot(t["position"], spent, style, label=name)
        if any(v is not None for v in t["threshold"]):
            ax3.plot(t["position"], t["threshold"], label=name)
            drifts = [p for p, a, b in zip(t["position"], [0, *t["drifts"]], t["drifts"],
                                           strict=False) if b > a]  # fmt: skip
            for p in drifts:
                ax3.axvline(p, color="grey", alpha=0.3, linewidth=0.8)
    ax1.set(xscale="log", xlabel="labels used", ylabel="prequential accuracy so far",
            title="accuracy against labels used")  # fmt: skip
    ax2.axhline(result["budget"], color="black", linewidth=0.8, linestyle=":")
    ax2.set(xlabel="records", ylabel="labels / records", title="budget spent over time")
    ax3.set(xlabel="records", ylabel="threshold", title="threshold (grey: drift detected)")
    ax1.legend(fontsize=7)
    return _png(fig)


def _efficiency(results: list[dict[str, Any]]) -> str | None:
    import matplotlib.pyplot as plt

    names = [r["strategy"] for r in results[0]["summary"] if r["strategy"] not in _BASELINES]
    groups = [f"{r.get('dataset', '?')}\n{r['budget']:.0%}" for r in results]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(names)) / 2), 3.8))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        values = []
        for r in results:
            row = next(s for s in r["summary"] if s["strategy"] == name)
            values.append(row.get("efficiency") or 0.0)
        ax.bar([i + k * width for i in range(len(groups))], values, width, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(groups))], groups,
                  fontsize=7)  # fmt: skip
    ax.set(ylabel="label efficiency", title="(accuracy − random) / (every label − random)")
    ax.legend(fontsize=7)
    return _png(fig)


def _table(result: dict[str, Any]) -> str:
    head = ("strategy", "accuracy", "± seeds", "live estimate", "labels used", "efficiency")
    rows = []
    for r in result["summary"]:
        eff = r.get("efficiency")
        est = r.get("estimated_accuracy")
        cells = (r["strategy"], f"{r['accuracy']:.4f}", f"{r['accuracy_std']:.4f}",
                 "-" if est is None else f"{est:.4f}", f"{r['labels_used']:.2%}",
                 "n/a" if eff is None else f"{eff:+.2f}")  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def build_report(results: list[dict[str, Any]], title: str = "streamal replay report") -> str:
    """The HTML page for a list of replay results (``{"results": [...]}["results"]``)."""
    if not results:
        raise ValueError("no results to report")
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        raise RuntimeError(
            'streamal report needs matplotlib: pip install "streamal[report]"'
        ) from None
    parts = [f"<h1>{html.escape(title)}</h1>"]
    eff = _efficiency(results)
    if eff:
        parts.append(f"<h2>Label efficiency</h2><img src='{eff}' alt='label efficiency'>")
    for r in results:
        name = html.escape(str(r.get("dataset", "")))
        parts.append(
            f"<h2>{name} — budget {r['budget']:.0%}</h2>"
            f"<p>{r['records']:,} records, {r['seeds']} seed(s), label delay {r['delay']}, "
            f"model {html.escape(str(r['model']))}</p>{_table(r)}"
        )
        if any(run.get("trace") for run in r["runs"]):
            parts.append(f"<img src='{_curves(r)}' alt='curves for {name}'>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}"
    )
    body = "\n".join(parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{body}</body></html>")  # fmt: skip
