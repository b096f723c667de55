"""The typed experiment layer: configs in sections with flat names, command-line flags generated
from the settings' metadata (every one with help and its default), and typed PAC-Bayes results
whose JSON is the record's."""

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from genbounds.cli import build_parser
from genbounds.experiments.cmi_runner import CMIConfig
from genbounds.experiments.config import from_args
from genbounds.experiments.langevin_runner import LangevinConfig
from genbounds.experiments.pac_bayes_runner import MLP_DIGITS, QUICKSTART, PacBayesConfig
from genbounds.experiments.recipes import RECIPES
from genbounds.experiments.results import PacBayesRecord

ROOT = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _subparsers(sub, f"{prefix}{name} ")


COMMANDS = dict(_subparsers(build_parser()))


@pytest.mark.parametrize("command", ["pac-bayes", "quickstart", "cmi", "langevin", "bound pac-bayes", "bound cmi",
                                     "reproduce", "report"])
def test_every_flag_has_help_that_shows_its_default(command):
    flags = [a for a in COMMANDS[command]._actions if a.option_strings and a.dest != "help"]
    assert flags
    no_help = [a.option_strings[0] for a in flags if not a.help]
    assert no_help == [], f"{command}: flags without help {no_help}"
    no_default = [a.option_strings[0] for a in flags
                  if not a.required and a.nargs != 0 and "default" not in a.help.lower()]
    assert no_default == [], f"{command}: flags whose help does not show the default {no_default}"


def test_the_help_shows_the_commands_own_defaults():
    text = " ".join(COMMANDS["pac-bayes"].format_help().split())
    assert "(default: cnn)" in text and "(default: 256 256)" in text and "(default: quad)" in text
    assert "--prior-epochs" in text and "--learn-prior-scale, --no-learn-prior-scale" in text
    assert "(default: 0.0001)" in text      # p_min
    assert "(default: 5 10 20 30 40 50)" in " ".join(COMMANDS["cmi"].format_help().split())


def _doc_commands() -> list[tuple[str, str]]:
    """Every runnable ``genbounds ...`` command line of the README and docs/ (code blocks, and inline
    code with flags; placeholders such as NAME or a | b alternatives and --help are skipped)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
        inline = [c for c in re.findall(r"`(genbounds [^`]+)`", text) if " --" in c]     # not names in prose
        lines = [ln for b in blocks for ln in b.splitlines()] + inline
        for line in lines:
            m = re.search(r"(?:^|\$ |&& )(genbounds \S.*)", line)
            if not m:
                continue
            cmd = m.group(1).split("  #")[0].split(" # ")[0].strip()
            if re.search(r"[\[|]|NAME|\.\.\.|--help", cmd):
                continue
            found.append((path.name, cmd))
    return found


DOC_COMMANDS = _doc_commands()


def test_the_docs_have_commands_to_check():
    assert len(DOC_COMMANDS) >= 20
    assert any("--prior-dropout 0 --objective quad seeger classic" in c for _, c in DOC_COMMANDS)


@pytest.mark.parametrize("where,command", DOC_COMMANDS)
def test_every_command_of_the_docs_still_parses(where, command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.func)


def _pac_bayes_config(argv: list[str]) -> PacBayesConfig:
    return from_args(PacBayesConfig(), build_parser().parse_args(["pac-bayes", *argv]))


def test_flags_become_the_same_config_as_before():
    assert _pac_bayes_config([]) == PacBayesConfig()
    assert _pac_bayes_config(["--arch", "mlp", "--prior-dropout", "0", "--objective", "quad", "seeger",
                              "classic"]) == MLP_DIGITS
    assert from_args(QUICKSTART, build_parser().parse_args(["quickstart", "--seed", "3"])) == QUICKSTART.replace(seed=3)
    cfg = _pac_bayes_config(["--dataset", "fashion-mnist", "--binary", "5", "6", "--prior", "init", "--no-standardize",
                             "--learn-prior-scale", "--shared-sample", "--mc-m", "0", "--prior-batch", "100"])
    assert (cfg.binary, cfg.prior.kind, cfg.standardize, cfg.learn_prior_scale, cfg.shared_sample, cfg.mc_m,
            cfg.prior.batch) == ((5, 6), "init", False, True, True, 0, 100)
    cmi = from_args(CMIConfig(), build_parser().parse_args(["cmi", "--classes", "2", "4", "--n", "75", "250", "--loo"]))
    assert cmi == CMIConfig(classes=(2, 4), n=(75, 250), loo=True)
    lv = from_args(LangevinConfig(), build_parser().parse_args(["langevin", "--v-inf", "1e-7", "--sigmas", "0.1"]))
    assert lv == LangevinConfig(v_inf=1e-7, sigmas=(0.1,))


# The digests name checkpoints (a resume must find them) and sit in committed records: measured
# on the flat configs before they had sections.
DIGESTS = {"quickstart": ("029d23cd354d", "0610088c2c60"), "mlp-digits": ("e05dcc03fb87", "b9d84f1e1136")}


def test_digests_and_the_flat_record_config_are_unchanged():
    assert (QUICKSTART.digest(), QUICKSTART.prior_digest()) == DIGESTS["quickstart"]
    assert (MLP_DIGITS.digest(), MLP_DIGITS.prior_digest()) == DIGESTS["mlp-digits"]
    flat = QUICKSTART.to_dict()
    assert len(flat) == 43 and flat["prior"] == "data" and flat["prior_epochs"] == 100 and flat["epochs"] == 50
    assert PacBayesConfig.from_dict(flat) == QUICKSTART
    for recipe in RECIPES.values():
        for _, cfg in recipe.runs:
            assert type(cfg).from_dict(cfg.to_dict()) == cfg
            assert type(cfg).from_dict(cfg.to_dict()).digest() == cfg.digest()


def test_sections_and_flat_names():
    cfg = PacBayesConfig.flat(arch="mlp", prior_epochs=3, epochs=4, batch=8, prior_batch=16)
    assert (cfg.model.arch, cfg.prior.epochs, cfg.posterior.epochs) == ("mlp", 3, 4)
    assert (cfg.batch, cfg.prior_batch) == (8, 16)               # flat names read through
    assert cfg.replace(epochs=1).posterior.epochs == 1 and cfg.replace(epochs=1).prior.epochs == 3
    with pytest.raises(TypeError, match="cfg.prior.kind"):
        cfg.prior == "data"                                    # noqa: B015  the section is not its kind
    with pytest.raises(ValueError, match="^argument 'epoch' is not a setting of PacBayesConfig$"):
        PacBayesConfig.flat(epoch=3)
    with pytest.raises(AttributeError):
        cfg.nonexistent                                        # noqa: B018


def _pac_bayes_records() -> list[dict]:
    out = []
    for path in sorted((ROOT / "paper_figures" / "results").rglob("*.json")):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and record.get("kind") == "pac-bayes":
            out.append(record)
    return out


def test_typed_records_write_the_json_they_read():
    records = _pac_bayes_records()
    assert len(records) >= 20
    for record in records:
        typed = PacBayesRecord.from_dict(record)
        assert json.dumps(typed.to_dict()) == json.dumps(record)      # same keys, same order, same numbers
    masks = next(PacBayesRecord.from_dict(r) for r in records if r["config"].get("family") == "mask")
    assert masks.results[0].masks.magnitude.certificate.kl == 0.0
    with_a = next(PacBayesRecord.from_dict(r) for r in records if r["results"][0].get("certificate_weights"))
    assert [label for label, _ in with_a.certificates()][:2] == [f"{with_a.results[0].objective} (b)",
                                                                 f"{with_a.results[0].objective} (a)"]
