"""Installed (not run from a checkout), modelzoo still finds its zoo, class names and picture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import REPO


def test_wheel_carries_the_zoo_and_the_data(tmp_path):
    # built from a copy without the checkout's build/ folder, which setuptools would reuse (a package
    # missing from setup.cfg would still be in the wheel after any earlier build)
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv*", ".git", "build", "*.egg-info", "__pycache__",
                                                                 ".pytest_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("modelzoo-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = (
        "import json, modelzoo, modelzoo.resources as r\n"
        "from modelzoo.cli.info_dumper import main\n"
        "print(json.dumps({'pkg': modelzoo.__file__, 'classes': r.read_class_names(),\n"
        "                  'picture': str(r.demo_picture_path()), 'zoo': str(r.default_models_dir())}))\n"
        "main(['--name', 'retinanet-tf'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    first, rest = result.stdout.split("\n", 1)
    facts = json.loads(first)
    assert facts["pkg"].startswith(str(target))
    assert facts["zoo"] == str(target / "modelzoo" / "zoo")
    assert len(facts["classes"]) == 81 and facts["classes"][1] == "person"
    assert facts["picture"].startswith(str(target)) and os.path.getsize(facts["picture"]) > 1000
    [info] = json.loads(rest)
    assert info["model_config"] == str(target / "modelzoo/zoo/public/retinanet-tf/model.yml")
    assert (target / "modelzoo/zoo/public/retinanet-tf/README.md").is_file()
    # every package of the checkout is in the wheel (setup.cfg lists them by name)
    source = REPO / "tools" / "modelzoo"
    packages = {p.parent.relative_to(source) for p in source.rglob("__init__.py")}
    missing = sorted(str(p) for p in packages if not (target / "modelzoo" / p / "__init__.py").is_file())
    assert missing == []
