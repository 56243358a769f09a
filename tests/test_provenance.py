from smart import provenance


def test_config_hash_ignores_key_order_and_detects_changes():
    a = {"x": 1, "y": {"b": 2, "a": [1, 2]}}
    b = {"y": {"a": [1, 2], "b": 2}, "x": 1}
    assert provenance.config_hash(a) == provenance.config_hash(b)
    assert provenance.config_hash(a) != provenance.config_hash({**a, "x": 2})


def test_provenance_records_seed_versions_and_sha():
    rec = provenance.provenance({"k": 1}, seed=3)
    assert rec["seed"] == 3 and len(rec["config_hash"]) == 16
    assert "torch" in rec["versions"] and rec["git_sha"]
