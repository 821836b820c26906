"""The paper path end to end: real-format raw trees, the ``paper`` profile at its real sizes, through the CLI.

Only epochs are shrunk (``source.epochs``, ``ssl.epochs``, CluP's and SHOT's ``epochs``): image size (160), crops
(2 x 160 + 6 x 80), SwAV's 5000 prototypes, K = 1000, the stems (ImageNet for the source model, ``clup`` for the
SSL backbone) and each method's source network (the authors' head for CluP, SHOT's bottleneck for SHOT) stay at
paper values. The target train split (14 FER2013 faces, two per class) is
smaller than K and P: CluP's k-means then makes one cluster per face and SwAV works; DeepClusterV2 cannot make
5000 centroids from 14 faces and must say so, naming the setting (docs/PAPER.md, "The paper profile").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from benchmark.cli import main
from tests.raw_fixtures import make_afe, make_expw, make_fer2013, make_rafdb

SHRINK = ["--profile", "paper", "--set", "source.epochs=1", "--set", "ssl.epochs=1"]
#: CluP's settings here: one epoch, and Q = 0.5 so that 14 target faces keep more than the 2 pseudo-labels CluP
#: needs (Q = 0.8 keeps one or two of them).
CLUP = ["--set", "epochs=1", "--set", "q=0.5"]
#: The same settings for CluP's jobs in a sweep and its leaderboard (``hparams.<method>.<name>``).
CLUP_IN_SWEEPS = [arg if arg == "--set" else f"hparams.clup.{arg}" for arg in CLUP]


@pytest.fixture(scope="module")
def paper_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the four real-format raw trees prepared and a stand-in ImageNet weights file."""
    root = tmp_path_factory.mktemp("paper")
    patch = pytest.MonkeyPatch()
    weights = root / "resnet18-standin.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    patch.setenv("FERBENCH_HOME", str(root / "home"))
    patch.setenv("FERBENCH_IMAGENET_WEIGHTS", str(weights))
    patch.setenv("FERBENCH_QUIET", "1")
    raw = root / "raw"
    make_rafdb(raw / "rafdb", n_train=140, n_test=70)
    make_fer2013(raw / "fer2013", n_train=14, n_test=14)
    make_expw(raw / "expw", n_photos=120)
    make_afe(raw / "afe", n_train=140, n_test=70)
    for dataset in ("rafdb", "fer2013", "expw", "afe"):
        assert main(["data", "prepare", dataset, "--raw", str(raw / dataset)]) == 0
    yield root
    patch.undo()


def _json(capsys: pytest.CaptureFixture, argv: list[str]) -> dict | list:
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.slow(seconds=215)
def test_the_paper_path_from_raw_trees_to_a_leaderboard(paper_home: Path, capsys: pytest.CaptureFixture):
    source = _json(capsys, ["source", "--dataset", "rafdb", *SHRINK])
    assert source["recipe"]["name"] == "authors" and source["recipe"]["head"] == "linear_wn"
    assert source["stem"] == "imagenet" and source["image_size"] == 160 and source["recipe"]["epochs"] == 1

    swav = _json(capsys, ["pretrain", "--ssl", "swav", "--dataset", "fer2013", *SHRINK])
    assert swav["stem"] == "clup" and swav["recipe"]["prototypes"] == 5000 and swav["recipe"]["epochs"] == 1

    capsys.readouterr()
    assert main(["pretrain", "--ssl", "deepclusterv2", "--dataset", "fer2013", *SHRINK]) == 2
    error = capsys.readouterr().err.strip()
    assert "ssl.deepclusterv2.prototypes" in error and "Traceback" not in error and len(error.splitlines()) == 1

    clup = _json(capsys, ["run", "--method", "clup", "--setup", "raf_fer2013", *SHRINK, *CLUP])
    assert clup["profile"] == "paper" and clup["hparams"]["backbone"] == "swav" and clup["hparams"]["clusters"] == 1000
    assert clup["artifacts"]["backbone"] == swav["artifact"].rsplit("/", 1)[-1]  # the backbone pretrained above
    assert clup["profile_values"]["overrides"] == {"source.epochs": 1, "ssl.epochs": 1}
    assert clup["pseudo_labels"]["kept"] > 0

    confidence = _json(capsys, ["run", "--method", "clup", "--setup", "raf_fer2013", *SHRINK, *CLUP,
                                "--set", "score=confidence"])
    assert confidence["hparams"]["score"] == "confidence"
    assert confidence["pseudo_labels"]["kept"] > 0 and confidence["artifacts"]["backbone"] == clup["artifacts"]["backbone"]

    # SHOT on its release's network and source recipe (a source model of its own), freezing what SHOT freezes.
    shot = _json(capsys, ["run", "--method", "shot", "--setup", "raf_fer2013", *SHRINK, "--set", "epochs=1"])
    assert shot["artifacts"]["source"] != clup["artifacts"]["source"]
    assert shot["profile_values"]["source"]["name"] == "shot" and shot["profile_values"]["source"]["head"] == "shot"
    assert shot["profile_values"]["source"]["label_smoothing"] == 0.1
    assert shot["source_parts"] == {"backbone": "trained", "head.bottleneck": "trained", "head.classifier": "frozen"}
    assert clup["profile_values"]["source"]["name"] == "authors"

    probes = _json(capsys, ["probe", "--setup", "raf_fer2013", "--backbones", "random,imagenet,source,swav", *SHRINK])
    assert [p["backbone"] for p in probes] == ["random", "imagenet", "source", "swav"]
    assert all(p["available"] and 0 <= p["accuracy"] <= 100 for p in probes)

    capsys.readouterr()
    assert main(["sweep", "--experiment", "table4", "--setups", "raf_fer2013", "--seeds", "1", *SHRINK,
                 *CLUP_IN_SWEEPS]) == 0
    out = capsys.readouterr().out
    assert "5 jobs" in out and "0 failed" in out  # 4 backbone x score rows and the fresh-head variant
    board = paper_home / "boards"
    assert main(["leaderboard", "--out", str(board), "--experiments", "table4", *SHRINK,
                 *CLUP_IN_SWEEPS]) == 0
    table = (board / "table4.md").read_text()
    assert "raf_fer2013" in table and "83.90" in table  # the authors' RAF-DB source accuracy beside ours
