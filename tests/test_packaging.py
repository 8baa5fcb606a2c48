"""Install files agree with each other, and CI runs the README's command."""
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import yaml

from conftest import REPO


def name_of(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_exactly_the_pyproject_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda and "pip" in conda
    assert "-e ." in pip
    listed = {name_of(d) for d in conda if not d.startswith(("python=", "pip"))}
    listed |= {name_of(d) for d in pip if d != "-e ."}
    assert listed == {name_of(d) for d in project["dependencies"]}


def test_dependencies_are_ranges_not_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert "nbval" in {name_of(r) for r in project["optional-dependencies"]["dev"]}
    for requirement in requirements:
        assert ">=" in requirement and "==" not in requirement, requirement
    assert project["requires-python"] == ">=3.10"


def test_ci_runs_the_readme_test_command():
    script = (REPO / ".ci" / "run").read_text()
    assert "make test" in script
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
