"""`snakemake --lint` reports nothing for the workflow (snakemake-workflows convention)."""

from workflow_workspace import run_snakemake


def test_lint_is_clean(demo_workspace):
    proc = run_snakemake(demo_workspace, "--lint", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "Lints for" not in out, out
    assert "Congratulations, your workflow is in a good condition!" in out
