"""The server's own numbers from its Prometheus /metrics, parsed with prometheus_client.

Latency quantiles come from the histograms' buckets as Prometheus' histogram_quantile()
computes them, over what changed since infertop attached (the first scrape is the
baseline), summed over the label sets (engines, models, DP ranks)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infertop.engine.backends.server.probe import ServerInfo, client

# (our name, the server's series) per kind
SERIES: dict[str, dict[str, str]] = {
    "vllm": {
        "ttft": "vllm:time_to_first_token_seconds",
        "itl": "vllm:inter_token_latency_seconds",
        "e2e": "vllm:e2e_request_latency_seconds",
        "queue": "vllm:request_queue_time_seconds",
        "running": "vllm:num_requests_running",
        "waiting": "vllm:num_requests_waiting",
        "kv_usage": "vllm:kv_cache_usage_perc",
    },
    "sglang": {
        "ttft": "sglang:time_to_first_token_seconds",
        "itl": "sglang:inter_token_latency_seconds",
        "e2e": "sglang:e2e_request_latency_seconds",
        "queue": "sglang:queue_time_seconds",
        "running": "sglang:num_running_reqs",
        "waiting": "sglang:num_queue_reqs",
        "kv_usage": "sglang:token_usage",
    },
}
HISTOGRAMS = ("ttft", "itl", "e2e", "queue")
GAUGES = ("running", "waiting", "kv_usage")


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (the last bound is +Inf), with count and sum."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]
    count: float
    total: float

    def minus(self, old: Histogram | None) -> Histogram:
        if old is None or old.bounds != self.bounds:
            return self
        return Histogram(
            self.bounds,
            tuple(a - b for a, b in zip(self.counts, old.counts, strict=True)),
            self.count - old.count,
            self.total - old.total,
        )

    def quantile(self, q: float) -> float:
        """Prometheus' histogram_quantile: linear within the bucket holding rank q*count."""
        if self.count <= 0 or not self.counts:
            return math.nan
        rank = q * self.counts[-1]
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound  # the top bucket has no upper end
                if count == lower_count:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                    count - lower_count
                )
            lower_bound, lower_count = bound, count
        return math.nan

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count > 0 else math.nan


@dataclass(frozen=True)
class ServerMetrics:
    """One scrape: histograms (since attaching) and gauges (now)."""

    histograms: dict[str, Histogram] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() of the scrape
    error: str = ""  # why the last scrape failed ("" when it worked)


def parse_metrics(text: str, kind: str) -> tuple[dict[str, Histogram], dict[str, float]]:
    """The kind's histograms and gauges in a /metrics text, summed over label sets."""
    wanted = {series: ours for ours, series in SERIES[kind].items()}
    buckets: dict[str, dict[float, float]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    gauges: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        ours = wanted.get(family.name)
        if ours is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                per = buckets.setdefault(ours, {})
                per[le] = per.get(le, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[ours] = counts.get(ours, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                sums[ours] = sums.get(ours, 0.0) + sample.value
            elif family.type == "gauge" and sample.name == family.name:
                gauges[ours] = gauges.get(ours, 0.0) + sample.value
    histograms = {
        name: Histogram(
            tuple(sorted(per)),
            tuple(per[b] for b in sorted(per)),
            counts.get(name, 0.0),
            sums.get(name, 0.0),
        )
        for name, per in buckets.items()
    }
    return histograms, gauges


class MetricsScraper:
    """Scrapes one server; call `scrape` from one thread at a time (off the UI thread)."""

    def __init__(self, info: ServerInfo) -> None:
        self.info = info
        self._http: httpx.Client | None = None
        self._baseline: dict[str, Histogram] | None = None

    def scrape(self) -> ServerMetrics:
        """Never raises: a failed scrape says why in `error`."""
        if self._http is None:
            self._http = client(self.info.target)
        try:
            response = self._http.get("/metrics")
            response.raise_for_status()
            histograms, gauges = parse_metrics(response.text, self.info.kind)
        except (httpx.HTTPError, ValueError) as e:
            return ServerMetrics(at=time.monotonic(), error=f"/metrics: {type(e).__name__}")
        if self._baseline is None:
            self._baseline = histograms
        since = {k: h.minus(self._baseline.get(k)) for k, h in histograms.items()}
        return ServerMetrics(since, gauges, time.monotonic())

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
