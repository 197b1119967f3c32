import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def first_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_readme_opens_with_the_demo_and_the_tests():
    demo, tests = first_commands()
    assert "torch==2.13.0" in demo and "captum-mm demo" in demo
    assert "torch==2.13.0" in tests and "pytest" in tests
    assert (ROOT / "README.md").read_text().index("```bash") < 40


def test_ci_runs_the_readme_test_command():
    assert first_commands()[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_example_runs():
    example = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)[0]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["visual"].shape == namespace["batch"]["image"].shape
    assert namespace["cam"].shape == (8, 1, 8, 8)
    assert sorted(namespace["maps"]) == [5, 25, 128]


def test_readme_study_example_runs(tmp_path, monkeypatch):
    example = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)[1]
    assert "SyntheticVQA(64, seed=2)" in example
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    small = example.replace("SyntheticVQA(64, seed=2)", "SyntheticVQA(4, seed=2)")
    exec(compile(small, "README.md", "exec"), namespace)
    methods = {row["method"] for row in namespace["summary"]}
    assert methods == {"HadamardDeviation", "IntegratedGradients"}
    assert (tmp_path / "study_out" / "summary.md").exists()
