"""One import name: a built wheel installs only `genbounds`, works from a folder with its own
`experiments/` and `estimators/`, and every public name of every package resolves."""

import importlib
import os
import pkgutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import genbounds

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["genbounds", "genbounds.bounds", "genbounds.estimators", "genbounds.estimators.iterative",
            "genbounds.estimators.snn", "genbounds.estimators.supersample", "genbounds.experiments",
            "genbounds.paper_figures"]


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"genbounds": "."}
    folders = {"genbounds." + ".".join(p.parent.relative_to(ROOT).parts)
               for p in ROOT.rglob("__init__.py") if p.parent != ROOT and "tests" not in p.parts
               and not any(part.startswith(".") or part in ("build", "dist") for part in p.parts)}
    assert set(config["packages"]) == folders | {"genbounds"}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    mod = importlib.import_module(package)
    assert mod.__all__ and len(set(mod.__all__)) == len(mod.__all__), package
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"


def test_every_module_declares_its_public_names():
    for info in pkgutil.walk_packages(genbounds.__path__, "genbounds."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        if info.name.split(".")[-1].startswith(("_", "fig_", "bench_")):
            continue                                     # private modules and scripts
        assert hasattr(mod, "__all__"), info.name
        for name in mod.__all__:
            assert hasattr(mod, name), f"{info.name}.{name}"


def _outer_site_dirs() -> list[str]:
    """The site-packages folders of the interpreter running the tests (a venv's own, plus the base
    interpreter's when that venv sees them, plus the user site when enabled): where the
    dependencies were installed, whether the tests run in a venv or in the system interpreter."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


@pytest.mark.integration
def test_wheel_in_a_clean_venv_installs_only_genbounds(tmp_path):
    """Build the wheel, install it (no dependencies: they come from the test interpreter's
    site-packages, listed in a .pth file of the new venv) into a fresh venv, then run the CLI and
    import the library from a folder that has its own `experiments/` and `estimators/` packages, as
    a user's project often does.

    ``venv --system-site-packages`` would not do: from inside a venv it reaches the *base*
    interpreter's site-packages, not the venv's where the dependencies are. Path lines of a .pth
    file are appended after the new venv's own site-packages and their .pth files are not run, so
    an editable genbounds of the test interpreter cannot shadow the wheel."""
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(wheels.glob("genbounds-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site_dir = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    (site_dir / "outer_site_packages.pth").write_text("".join(f"{d}\n" for d in _outer_site_dirs()))
    before = set(os.listdir(site_dir))
    inst = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-3000:]
    added = set(os.listdir(site_dir)) - before
    assert {a for a in added if not a.endswith(".dist-info")} == {"genbounds"}, added

    user = tmp_path / "user_project"
    for name in ("experiments", "estimators", "bounds"):
        (user / name).mkdir(parents=True)
        (user / name / "__init__.py").write_text(f"OWNER = 'user: {name}'\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run([py, "-c", (
        "import experiments, estimators, genbounds\n"
        "from genbounds.estimators.snn import certify_network\n"
        "from genbounds.estimators.supersample import bounds_from_runs\n"
        "from genbounds.bounds import seeger\n"
        "assert experiments.OWNER == 'user: experiments' and estimators.OWNER == 'user: estimators'\n"
        "print(genbounds.__file__)")], cwd=user, capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.strip().startswith(str(site_dir)), check.stdout       # the wheel, not the source tree
    cli = subprocess.run([venv / "bin" / "genbounds", "bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000",
                          "--n", "55000", "--format", "json"], cwd=user, capture_output=True, text=True, env=env)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert '"seeger"' in cli.stdout
    module = subprocess.run([py, "-m", "genbounds", "bound", "pac-bayes", "--emp-risk", "2", "--kl", "1", "--n", "9"],
                            cwd=user, capture_output=True, text=True, env=env)
    assert module.returncode == 2 and "'emp_risk'" in module.stderr and "Traceback" not in module.stderr
