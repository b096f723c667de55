"""Choosing settings honestly: a search that sees only the prior's data.

Picking the settings of a PAC-Bayes run by comparing certificates computed on its bound set is a
choice after seeing the bound set: unless a union bound is paid over every setting tried, the
winning certificate is too low. :func:`search_on_prior_data` avoids that: each candidate config
runs on the *prior's* share of the training set only, split again (with the same ``alpha``) into
a pseudo-prior part and a pseudo-bound part, and candidates are ranked by the certificate on the
pseudo-bound part. The real bound set is never read, so the chosen config's real certificate needs
no correction. (Standardised inputs use the whole prior share's statistics, which is also prior
data.)

``python -m genbounds.experiments.search --round K`` runs round K of the search behind the
quickstart's defaults (each from the MLP on digits, :data:`~genbounds.experiments.pac_bayes_runner.
MLP_DIGITS`, with three objectives) and writes its record (every candidate with its
pseudo-certificates) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from ..bounds import Certificate, union_minimum
from .config import Arch
from .pac_bayes_runner import (
    MLP_DIGITS,
    PacBayesConfig,
    Setup,
    certify_stage,
    posterior_stage,
    prepare,
    prior_split_size,
    prior_stage,
)
from .records import new_record, write_record

__all__ = ["prior_data_setup", "pseudo_certificate", "search_on_prior_data", "QUICKSTART_GRID", "QUICKSTART_GRID_2",
           "QUICKSTART_GRID_3", "QUICKSTART_GRID_4"]

#: The candidates tried for the quickstart (each a set of changes to :data:`QUICKSTART`).
QUICKSTART_GRID: tuple[dict, ...] = tuple(
    {"prior_dropout": d, "standardize": s, "prior_scale": p}
    for d in (0.0, 0.2) for s in (False, True) for p in (0.02, 0.03))


#: A second round around the first round's choice: width, prior learning rate and epochs.
QUICKSTART_GRID_2: tuple[dict, ...] = tuple(
    {"widths": w, "prior_lr": lr, "prior_epochs": e}
    for w in ((256, 256), (512, 512)) for lr in (0.05, 0.1) for e in (100, 300))


#: A third round: the posterior's learning rate, epochs and the surrogate's p_min.
QUICKSTART_GRID_3: tuple[dict, ...] = tuple(
    {"lr": lr, "epochs": e, "p_min": p} for lr in (0.01, 0.03) for e in (50, 100) for p in (1e-4, 1e-2))


#: A fourth round: the architecture (the CNN of PBB, on 8 x 8 digits) with and without prior dropout.
#: (Names as values: each candidate's changes are written into the search record as they are.)
QUICKSTART_GRID_4: tuple[dict, ...] = tuple(
    {"arch": a.value, "prior_dropout": d} for a in (Arch.MLP, Arch.CNN) for d in (0.0, 0.2))


def prior_data_setup(setup: Setup, out: Path) -> Setup:
    """The run restricted to its prior's data: that share becomes the training set and is split
    again by ``alpha`` (key ``fold_in(split key, 1)``) into pseudo-prior and pseudo-bound parts."""
    if setup.prior_idx.size == 0:
        raise ValueError("argument 'cfg': a search on the prior's data needs a data-dependent prior (prior='data')")
    train = setup.data.train.take(setup.prior_idx)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(setup.keys["split"], 1), len(train)))
    idx = np.sort(perm[: prior_split_size(setup.cfg.alpha, len(train))])
    return setup._replace(data=setup.data._replace(train=train), prior_idx=idx, out=out,
                          ckpt=out / "checkpoints" / setup.cfg.digest())


def pseudo_certificate(cfg: PacBayesConfig, out: Path, *, log: Callable[[str], None] = print) -> dict:
    """Run ``cfg`` on its prior's data only (:func:`prior_data_setup`); returns each objective's
    pseudo-certificate (b) and their union-bound minimum (the selection score)."""
    setup = prior_data_setup(prepare(cfg, out, log=lambda m: None), out)
    pr = prior_stage(setup, progress=False, log=lambda m: None)
    certs: dict[str, Certificate] = {}
    for obj in cfg.objectives:
        state, history, seconds = posterior_stage(setup, pr, obj, progress=False, log=log)
        certs[obj] = certify_stage(setup, pr, obj, state, history, seconds).certificate
    best = union_minimum(list(certs.values()), list(certs))
    return {"certificates": {k: c.value for k, c in certs.items()}, "score": best.value,
            "n_pseudo_bound": best.n_bound, "n_pseudo_prior": best.n_prior}


def search_on_prior_data(base: PacBayesConfig, grid: Sequence[dict], out: str | os.PathLike, *,
                         log: Callable[[str], None] = print) -> dict:
    """Score every ``base`` modified by one entry of ``grid`` with :func:`pseudo_certificate`; the
    record lists them all and names the lowest score's changes as ``chosen``."""
    out = Path(out)
    rows = []
    for i, changes in enumerate(grid):
        cfg = base.replace(**changes)
        t0 = time.perf_counter()
        res = pseudo_certificate(cfg, out / f"candidate-{i}", log=lambda m: None)
        rows.append({"changes": changes, **res, "seconds": time.perf_counter() - t0})
        log(f"{changes}: score {res['score']:.4f} {res['certificates']}")
    chosen = min(rows, key=lambda r: r["score"])
    record = new_record("search", base.to_dict(), base.seed, rows)
    record["rule"] = ("lowest union-bound minimum of the pseudo-certificates, computed on the prior's data only "
                      "(the real bound set is never read)")
    record["chosen"] = chosen["changes"]
    write_record(out / "search.json", record)
    return record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/search-quickstart")
    parser.add_argument("--round", type=int, choices=(1, 2, 3, 4), default=1,
                        help="1: prior dropout x standardisation x prior scale; 2: width x prior lr x epochs; "
                        "3: posterior lr x epochs x p_min; 4: architecture x prior dropout")
    args = parser.parse_args(argv)
    base = MLP_DIGITS.replace(mc_m=0)
    if args.round == 1:
        base = base.replace(standardize=False, prior_scale=0.02, prior_dropout=0.0)
    grid = {1: QUICKSTART_GRID, 2: QUICKSTART_GRID_2, 3: QUICKSTART_GRID_3, 4: QUICKSTART_GRID_4}[args.round]
    record = search_on_prior_data(base, grid, args.out)
    print(json.dumps(record["chosen"]))


if __name__ == "__main__":
    main()
