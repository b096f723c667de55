"""Every PAC-Bayes certificate committed under paper_figures/results, of every posterior family and
with or without a differentially private prior, can be recomputed from what its record holds."""

import json
import math
from pathlib import Path

from genbounds.bounds import Certificate, union_minimum
from genbounds.bounds._array import recomputes_to

RESULTS = Path(__file__).resolve().parents[1] / "paper_figures" / "results"


def test_every_committed_pac_bayes_certificate_recomputes_from_its_recorded_inputs():
    """Delta audit over every family's records: each certificate's delta parts sum to at most its delta,
    and recomputing it from what it records (empirical risk, Monte Carlo count, KL, n, delta parts, prior
    grid, DP adjustment) gives its value (to the last bits a CPU's log and exp may change), so nothing it depends
    on is missing from the record."""
    seen, kinds, bounds_seen = 0, set(), set()
    for path in sorted(RESULTS.rglob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") != "pac-bayes":
            continue
        for r in record["results"]:
            found = [r["certificate"], r.get("certificate_weights"), r.get("certificate_excess")]
            found += [m["certificate"] for k, m in r.get("masks", {}).items() if k in ("magnitude", "thresholded")]
            for c in filter(None, found):
                cert = Certificate.from_dict(c)
                assert math.fsum(cert.delta_parts.values()) <= cert.delta, path.name
                assert recomputes_to(union_minimum([cert]).value, cert.value), path.name
                kinds.add((c["details"].get("prior", {}).get("family", "gaussian"), "dp_prior" in c["details"]))
                bounds_seen.add(cert.bound)
                seen += 1
    assert seen >= 50
    assert {("mask", False), ("matrix_normal", False), ("gaussian", True), ("gaussian", False)} <= kinds
    assert "excess_unexpected_bernstein" in bounds_seen           # the combined certificate over the prior network
