"""Per-objective SSL recipes: each objective declares its own fields with defaults, a profile overrides shared
and per-objective values, and the recipe record that keys hash keeps its field set and values (key stability).
One 16-hex hash serves artifact folders and job identities."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields, replace

import pytest
import torch

from benchmark.config.errors import UserError
from benchmark.config.hashing import json_digest
from benchmark.config.profiles import PROFILES, SSLRecipe, omit_key_stable_defaults
from benchmark.services.artifacts import artifact_key
from benchmark.services.pretrain import _start, pretrain_key
from benchmark.store.identity import ssl_recipe_values
from methods.ssl.deepclusterv2 import DeepClusterV2Recipe
from methods.ssl.ssl_registry import get_ssl, recipe_record, ssl_names, ssl_recipe
from methods.ssl.swav import SwAVRecipe

SHARED = {f.name for f in fields(SSLRecipe)}


def test_each_objective_declares_its_own_fields_with_defaults():
    assert get_ssl("swav").own_fields() == {"freeze_prototypes_epochs": 2, "queue_length": 3840, "queue_start_epoch": 15,
                                            "sinkhorn_epsilon": 0.05, "sinkhorn_iterations": 3}
    assert get_ssl("deepclusterv2").own_fields() == {"kmeans_iterations": 10}
    paper = PROFILES["paper"]
    swav, dcv2 = ssl_recipe(paper, "swav"), ssl_recipe(paper, "deepclusterv2")
    assert type(swav) is SwAVRecipe and type(dcv2) is DeepClusterV2Recipe
    assert swav.sinkhorn_epsilon == 0.05 and dcv2.kmeans_iterations == 10 and not hasattr(dcv2, "sinkhorn_epsilon")
    assert {k: v for k, v in asdict(swav).items() if k in SHARED} == {**asdict(paper.ssl), **paper.ssl_overrides["swav"]}


def test_a_profile_overrides_shared_and_own_fields_per_objective():
    quick = PROFILES["quick"]
    swav, dcv2 = ssl_recipe(quick, "swav"), ssl_recipe(quick, "deepclusterv2")
    assert (swav.epochs, dcv2.epochs) == (16, 30)  # a shared field, departed from for DeepClusterV2 only
    assert (swav.sinkhorn_epsilon, swav.queue_length, swav.freeze_prototypes_epochs) == (0.02, 0, 1)
    tiny = PROFILES["tiny"]
    assert ssl_recipe(tiny, "deepclusterv2").epochs == 1 and ssl_recipe(tiny, "swav").sinkhorn_epsilon == 0.02
    tuned = replace(quick, ssl_overrides={**quick.ssl_overrides, "deepclusterv2": {"kmeans_iterations": 4}})
    assert ssl_recipe(tuned, "deepclusterv2").kmeans_iterations == 4 and ssl_recipe(tuned, "deepclusterv2").epochs == 16


def test_an_unknown_or_foreign_field_is_a_user_error():
    quick = PROFILES["quick"]
    with pytest.raises(UserError, match="deepclusterv2 has no recipe field sinkhorn_epsilon"):
        ssl_recipe(replace(quick, ssl_overrides={"deepclusterv2": {"sinkhorn_epsilon": 0.1}}), "deepclusterv2")
    with pytest.raises(UserError, match="swav has no recipe field nope"):
        ssl_recipe(replace(quick, ssl_overrides={"swav": {"nope": 1}}), "swav")


def test_an_objective_needs_its_own_recipe_type():
    with pytest.raises(TypeError, match="SwAVRecipe"):
        get_ssl("swav")(16, PROFILES["tiny"].ssl, n_samples=64)


def test_the_recipe_record_has_a_fixed_field_set_and_each_objectives_values():
    every_field = SHARED.union(*(get_ssl(name).own_fields() for name in ssl_names()))
    quick = PROFILES["quick"]
    for name in ssl_names():
        record = recipe_record(name, asdict(quick.ssl), quick.ssl_overrides)
        recipe = asdict(ssl_recipe(quick, name))
        # blur_probability only where it is not the default (so that older keys did not move)
        expected = every_field - ({"blur_probability"} if recipe["blur_probability"] == 0.5 else set())
        assert record.keys() == expected and record == {**record, **omit_key_stable_defaults(recipe)}
        assert record == ssl_recipe_values(quick.as_record(), name) == pretrain_key(name, "d", quick, 0, "s")["recipe"]
    # The other objective's own fields at that objective's values; shared fields at this objective's values.
    dcv2 = recipe_record("deepclusterv2", asdict(quick.ssl), quick.ssl_overrides)
    assert dcv2["sinkhorn_epsilon"] == 0.02 and dcv2["epochs"] == 30
    assert recipe_record("swav", asdict(quick.ssl), quick.ssl_overrides)["epochs"] == 16


def test_a_record_stored_with_one_recipe_of_every_field_reads_the_same():
    # quick as it was then: SwAV's views were the shared ones (crops of 30-100 %, blur)
    quick = replace(PROFILES["quick"], ssl_overrides={
        "swav": {"freeze_prototypes_epochs": 1, "queue_length": 0, "sinkhorn_epsilon": 0.02},
        "deepclusterv2": {"epochs": 30}})
    stored_then = {"ssl": recipe_record("swav", asdict(quick.ssl), quick.ssl_overrides),  # SwAV's was the shared one
                   "ssl_overrides": {"deepclusterv2": {"epochs": 30}}}
    assert len(stored_then["ssl"]) == 25
    for name in ssl_names():
        assert json.loads(json.dumps(ssl_recipe_values(stored_then, name))) == json.loads(
            json.dumps(ssl_recipe_values(quick.as_record(), name)))


@pytest.mark.parametrize(("profile", "ssl", "channels_last", "key"), [
    # quick's (and tiny's) SwAV views moved on 2026-12-07 (crops of 70-100 %, no blur: docs/LAB_NOTES.md, "Why the
    # target SSL features are weak here"); the other keys did not
    ("quick", "swav", False, "341e6765c781c4d5"), ("quick", "deepclusterv2", False, "c10722b3fb94dc61"),
    ("tiny", "swav", False, "bb9d746607cb5f4a"), ("paper", "deepclusterv2", True, "506fbeb88cce8eaa"),
    # quick (and tiny) train channels-last since 2026-11-29 (docs/PERFORMANCE.md, "The quick profile's speed")
    ("quick", "swav", True, "d1b77e437e3a580d"), ("quick", "deepclusterv2", True, "6746ffc3addbd01b"),
    ("tiny", "swav", True, "a52e496aa5a81fed"),
])
def test_ssl_artifact_keys_did_not_move(profile, ssl, channels_last, key):
    """Keys recorded at SSL_CODE_VERSION 2, when the SSL stem and the numerics fields (precision, channels_last,
    compile) joined the key (synth-wild, seed 0, train sha "abc"); quick and tiny were NCHW then."""
    the_profile = replace(PROFILES[profile], channels_last=channels_last)
    assert artifact_key(pretrain_key(ssl, "synth-wild", the_profile, 0, "abc")) == key


def test_the_ssl_backbone_and_its_key_use_the_ssl_stem_and_the_numerics(tmp_path):
    paper = PROFILES["paper"]
    key = pretrain_key("swav", "d", paper, 0, "s")
    assert (key["stem"], paper.stem) == ("clup", "imagenet")
    assert {name: key[name] for name in paper.numerics_fields()} == paper.numerics_fields()
    assert pretrain_key("swav", "d", replace(paper, precision="fp32"), 0, "s") != key
    assert pretrain_key("swav", "d", PROFILES["quick"], 0, "s")["stem"] == "imagenet"  # ssl_stem None: the stem
    images = torch.zeros(64, 3, 32, 32, dtype=torch.uint8)
    backbone = _start("swav", replace(PROFILES["tiny"], ssl_stem="clup"), images=images, seed=0,
                      checkpoint_dir=tmp_path).backbone
    assert backbone.conv1.stride == (1, 1) and isinstance(backbone.maxpool, torch.nn.Identity)


def test_one_hash_for_artifacts_and_identities():
    payload = {"b": [1, 2.5, None], "a": (0.3, 1.0), "p": object.__name__}
    text = json.dumps(payload, sort_keys=True, default=str)
    assert json_digest(payload) == hashlib.sha256(text.encode()).hexdigest()[:16] == artifact_key(payload)
    assert len(json_digest(["x"])) == 16
