"""Closed sets of config names are StrEnums, read once where a config is built: every config holds
members (``cfg.arch is Arch.MLP``), a bad name is one ValueError line naming the setting and listing
the allowed values, and the record's ``config`` and the digests that name checkpoints are the same
bytes as when the configs held strings."""

import json
from pathlib import Path

import pytest

from genbounds.cli import build_parser
from genbounds.estimators.augment import AUGMENTATIONS
from genbounds.estimators.snn import FamilyName, PriorKind
from genbounds.experiments.cmi_runner import CMIConfig
from genbounds.experiments.config import (
    Arch,
    AugmentName,
    CMIArch,
    LangevinAlgorithm,
    MaskPrior,
    OptimizerName,
    ScheduleName,
    from_args,
)
from genbounds.experiments.langevin_runner import LangevinConfig
from genbounds.experiments.pac_bayes_runner import MLP_DIGITS, QUICKSTART, PacBayesConfig
from genbounds.experiments.recipes import RECIPES

ROOT = Path(__file__).resolve().parents[1]


def test_pac_bayes_config_holds_members():
    cfg = PacBayesConfig.flat(arch="mlp", prior="init", standardize=False, optimizer="adam", prior_optimizer="adam",
                              schedule="cosine", prior_schedule="cosine", family="laplace", mask_prior="uniform")
    assert cfg.arch is Arch.MLP and cfg.model.arch is Arch.MLP and cfg.prior.kind is PriorKind.INIT
    assert cfg.optimizer is OptimizerName.ADAM and cfg.prior_optimizer is OptimizerName.ADAM
    assert cfg.schedule is ScheduleName.COSINE and cfg.prior_schedule is ScheduleName.COSINE
    assert cfg.family is FamilyName.LAPLACE and cfg.mask_prior is MaskPrior.UNIFORM
    assert cfg.prior_augment is AugmentName.NONE
    assert PacBayesConfig.flat(prior_augment="shift-flip").prior_augment is AugmentName.SHIFT_FLIP
    q = QUICKSTART
    assert (q.arch, q.prior.kind, q.optimizer, q.prior_schedule, q.family, q.mask_prior) == (
        Arch.CNN, PriorKind.DATA, OptimizerName.SGD, ScheduleName.CONSTANT, FamilyName.GAUSSIAN, MaskPrior.MAGNITUDE)
    assert all(type(v) is not str for k, v in q.flat_items().items()
               if k in ("arch", "prior", "optimizer", "prior_optimizer", "schedule", "prior_schedule",
                        "mask_prior", "family", "prior_augment"))


def test_cmi_and_langevin_configs_hold_members():
    cmi = CMIConfig(arch="linear")
    assert cmi.arch is CMIArch.LINEAR and cmi.optimizer is OptimizerName.ADAM
    assert CMIConfig(arch="cnn").replace(arch="mlp").arch is CMIArch.MLP
    assert [a.value for a in CMIArch] == ["linear", "mlp", "cnn"]
    assert LangevinConfig().algorithm is LangevinAlgorithm.LANGEVIN
    assert LangevinConfig(algorithm="sgd", batch=10).algorithm is LangevinAlgorithm.SGD


def test_augment_names_are_the_augmentations():
    assert [a.value for a in AugmentName] == sorted(AUGMENTATIONS)


@pytest.mark.parametrize("make, name, allowed, value", [
    (lambda v: PacBayesConfig.flat(arch=v), "arch", "'mlp', 'cnn'", "linear"),
    (lambda v: PacBayesConfig.flat(prior=v), "prior", "'data', 'init', 'dp'", "date"),
    (lambda v: PacBayesConfig.flat(optimizer=v), "optimizer", "'sgd', 'adam'", "rmsprop"),
    (lambda v: PacBayesConfig.flat(prior_optimizer=v), "prior_optimizer", "'sgd', 'adam'", "rmsprop"),
    (lambda v: PacBayesConfig.flat(schedule=v), "schedule", "'constant', 'cosine'", "linear"),
    (lambda v: PacBayesConfig.flat(prior_schedule=v), "prior_schedule", "'constant', 'cosine'", "step"),
    (lambda v: PacBayesConfig.flat(mask_prior=v), "mask_prior", "'magnitude', 'uniform'", "random"),
    (lambda v: PacBayesConfig.flat(family=v), "family", "'gaussian', 'laplace', 'mask', 'matrix_normal'", "maskk"),
    (lambda v: PacBayesConfig.flat(prior_augment=v), "prior_augment", "'none', 'shift', 'shift-flip'", "rotate"),
    (lambda v: CMIConfig(arch=v), "arch", "'linear', 'mlp', 'cnn'", "rnn"),
    (lambda v: CMIConfig(optimizer=v), "optimizer", "'sgd', 'adam'", "adamw"),
    (lambda v: LangevinConfig(algorithm=v), "algorithm", "'langevin', 'sgd'", "sgld"),
])
def test_a_bad_name_is_one_line_naming_the_setting_and_the_allowed_values(make, name, allowed, value):
    with pytest.raises(ValueError) as err:
        make(value)
    assert str(err.value) == f"argument {name!r} must be one of ({allowed}), got {value!r}"


def test_a_refusal_that_names_a_choice_shows_its_value():
    with pytest.raises(ValueError, match=r"^argument 'prior' must be 'data' with family 'mask' .*, got 'init'$"):
        PacBayesConfig.flat(family="mask", prior="init", standardize=False)
    with pytest.raises(ValueError, match=r"^argument 'prior_augment' must be 'none' unless .*, got 'shift'$"):
        PacBayesConfig.flat(prior="init", standardize=False, prior_augment="shift")


def test_flags_offer_the_choices_and_give_members():
    parser = build_parser()
    args = parser.parse_args(["pac-bayes", "--arch", "mlp", "--prior", "data", "--family", "mask",
                              "--prior-augment", "shift", "--prior-schedule", "cosine", "--mask-prior", "uniform"])
    cfg = from_args(PacBayesConfig(), args)
    assert (cfg.arch, cfg.family, cfg.prior_augment, cfg.prior_schedule, cfg.mask_prior) == (
        Arch.MLP, FamilyName.MASK, AugmentName.SHIFT, ScheduleName.COSINE, MaskPrior.UNIFORM)
    assert cfg.arch is Arch.MLP and cfg.prior_augment is AugmentName.SHIFT
    assert from_args(CMIConfig(), parser.parse_args(["cmi", "--arch", "linear"])).arch is CMIArch.LINEAR
    assert from_args(LangevinConfig(), parser.parse_args(["langevin", "--algorithm", "sgd", "--batch", "8"])
                     ).algorithm is LangevinAlgorithm.SGD
    for command, flag in (("pac-bayes", "--arch"), ("cmi", "--arch"), ("langevin", "--algorithm")):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([command, flag, "rnn"])
        assert exit_.value.code == 2


#: Each config's (digest, prior digest), measured while the configs held strings: they name
#: checkpoints and sit in records.
DIGESTS = {
    "quickstart": ("029d23cd354d", "0610088c2c60"), "mlp-digits": ("e05dcc03fb87", "b9d84f1e1136"),
    "cmi": ("1992d437e30e", None), "langevin": ("7db943baaec8", None), "langevin-sgd": ("03ea4a0cb488", None),
    "dp-prior-fashion/data-free": ("3eb6a8b9e0e5", "aa17a194d0d9"),
    "dp-prior-fashion/dp-eps0.1": ("367c92e37926", "05609558439b"),
    "dp-prior-fashion/heldout": ("201b527a42a8", "ed3e05d78e5b"),
    "dr17-fashion-binary/t600": ("2f8633b98c7a", "c7758cea29cb"),
    "fcmi-fashion/fcmi": ("f4485ac25fdd", None),
    "masks-fashion/sparsity0.5": ("3f2c3de28716", "7450a4758d9a"),
    "masks-fashion/sparsity0.7": ("59d8cb02b600", "7450a4758d9a"),
    "masks-fashion/sparsity0.8": ("8592f7307753", "7450a4758d9a"),
    "masks-fashion/sparsity0.9": ("2f6868850b58", "7450a4758d9a"),
    "masks-fashion/sparsity0.95": ("9df017224f51", "7450a4758d9a"),
    "masks-fashion/uniform0.9": ("a394c2766f1d", "7450a4758d9a"),
    "matrix-normal-fashion/gaussian": ("9ed2c2f345a5", "7450a4758d9a"),
    "matrix-normal-fashion/matrix_normal": ("57dc07165dc2", "7450a4758d9a"),
    "pbb-fashion-cnn-aug/cnn": ("ed15acde67ba", "f49094ed13d1"),
    "pbb-fashion-cnn/cnn": ("b5d222bc0b74", "ca56e5412eab"),
    "pbb-fashion-fcn/fcn": ("1799135db514", "e0328e34b110"),
    "role-of-data-digits/alpha0.2": ("939d877ffd5c", "ed84c6112f5b"),
    "role-of-data-digits/alpha0.3": ("4305c596f6f0", "cb7bd15202c9"),
    "role-of-data-digits/alpha0.5": ("895f833670ba", "b9d84f1e1136"),
    "role-of-data-digits/alpha0.7": ("af2ca61a4af3", "cc23f6b19829"),
    "role-of-data-digits/alpha0.8": ("66dfbc410845", "52ad36c70a32"),
    "role-of-data-digits/dp-eps0.1": ("b75a2092e503", "0fd387283f0a"),
    "role-of-data-digits/dp-eps1.0": ("ae8ddb25be11", "8382f6964f71"),
}


def _configs() -> dict:
    out = {"quickstart": QUICKSTART, "mlp-digits": MLP_DIGITS, "cmi": CMIConfig(), "langevin": LangevinConfig(),
           "langevin-sgd": LangevinConfig(algorithm="sgd", batch=10)}
    out.update({f"{name}/{label}": cfg for name, r in RECIPES.items() for label, cfg in r.runs})
    return out


def test_digests_and_record_configs_are_the_bytes_they_were():
    configs = _configs()
    for name, (digest, prior_digest) in DIGESTS.items():
        cfg = configs[name]
        assert cfg.digest() == digest, name
        assert (cfg.prior_digest() if isinstance(cfg, PacBayesConfig) else None) == prior_digest, name
    for name, cfg in configs.items():
        flat = cfg.to_dict()
        assert json.dumps(cfg.flat_items()) == json.dumps(flat), name      # a member dumps as its value
        assert type(cfg).from_dict(flat) == cfg and type(cfg).from_dict(flat).digest() == cfg.digest(), name
        assert all(type(v) in (str, int, float, bool, list, type(None)) for v in flat.values()), name


def test_every_committed_record_config_still_loads_and_writes_itself():
    kinds = {"pac-bayes": PacBayesConfig, "cmi": CMIConfig, "langevin": LangevinConfig}
    seen = dict.fromkeys(kinds, 0)
    for path in sorted((ROOT / "paper_figures" / "results").rglob("*.json")):
        record = json.loads(path.read_text())
        if not (isinstance(record, dict) and record.get("kind") in kinds):
            continue
        cfg = kinds[record["kind"]].from_dict(record["config"])
        flat = cfg.to_dict()
        assert {k: flat[k] for k in record["config"]} == record["config"], path
        member = cfg.algorithm if record["kind"] == "langevin" else cfg.arch
        assert type(member) in (Arch, CMIArch, LangevinAlgorithm), path
        seen[record["kind"]] += 1
    assert seen["pac-bayes"] >= 20 and seen["cmi"] >= 1 and seen["langevin"] >= 1
