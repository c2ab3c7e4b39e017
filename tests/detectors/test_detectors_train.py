"""Training: configuration precedence and validation, run folder contents, StepLR, best/last
checkpoints, resumption, reproducibility, bad inputs as one-line errors."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from detectors_cli import REPO, cli_env
from detectors import ConfigError
from detectors._cli import run_cli
from detectors._distributed import DistInfo
from detectors._trainer import Trainer
from detectors.config import DEFAULTS, list_presets, load_config
from detectors.predict import main as predict_main
from detectors.train import main as train_main


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _train(data, run, *extra):
    return train_main(["--config", "tiny", f"data.root={data}", f"run_dir={run}", *extra])


# ---- configuration ------------------------------------------------------------------------


def test_defaults_then_file_then_command_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "data:\n  batch_size: 3\ntrain:\n  epochs: 7\nmodel:\n  name: plain\n  backbone: tiny_cnn\n"
    )
    cfg = load_config(path, ["train.epochs=2", "optim.sam=false", "run_dir=R"])
    assert (
        cfg["train"]["epochs"] == 2
        and cfg["data"]["batch_size"] == 3
        and cfg["optim"]["sam"] is False
    )
    assert cfg["optim"]["lr"] == DEFAULTS["optim"]["lr"] and cfg["run_dir"] == "R"
    assert cfg["model"] == {"name": "plain", "backbone": "tiny_cnn"}


def test_presets_ship_the_paper_setting_and_the_tiny_smoke_run():
    assert {"tiny", "pgfdd-ff++"} <= set(list_presets())
    paper = load_config("pgfdd-ff++")
    assert paper["optim"] == {
        "base": "sgd",
        "sam": True,
        "rho": 0.05,
        "adaptive": False,
        "lr": 0.0005,
        "momentum": 0.9,
        "weight_decay": 0.005,
    }
    assert paper["sched"] == {"step_size": 60, "gamma": 0.9} and paper["train"]["epochs"] == 100
    assert paper["data"]["batch_size"] == 16 and paper["data"]["input_size"] == 256
    assert (
        paper["model"]["name"] == "pgfdd"
        and paper["model"]["variant"] == "faithful"
        and paper["model"]["backbone"] == "xception"
    )
    tiny = load_config("tiny")
    assert (
        tiny["device"] == "cpu"
        and tiny["data"]["input_size"] == 64
        and tiny["model"]["backbone"] == "tiny_cnn"
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epoch=3"], r"unknown config key 'train.epoch' \(known here: train.epochs"),
        (["trian.epochs=3"], r"unknown config key 'trian'"),
        (["train.epochs=three"], r"'train.epochs': expected a number, found 'three'"),
        (["train.epochs=2.5"], r"'train.epochs': expected an integer"),
        (["train.epochs=0"], r"'train.epochs': expected at least 1"),
        (["optim.sam=maybe"], r"'optim.sam': expected true or false"),
        (["train.amp=fp32"], r"'train.amp': expected one of none, bf16, fp16"),
        (["data.fakes=gan"], r"'data.fakes': expected one of csv, sbi"),
        (["epochs"], r"override 'epochs': expected KEY=VALUE"),
        (["data=3"], r"config key 'data': expected a section of keys"),
    ],
)
def test_bad_configuration_is_rejected_with_the_key_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", overrides)


def test_unknown_config_source_lists_the_presets():
    with pytest.raises(ConfigError, match=r"neither a YAML file nor a preset \(presets: .*tiny"):
        load_config("tinyy")
    with pytest.raises(ConfigError, match="no such file"):
        load_config("missing.yaml")


def test_switching_detector_on_the_command_line_drops_the_presets_detector_options():
    cfg = load_config("tiny", ["model.name=plain", "model.backbone=tiny_cnn"])
    assert cfg["model"] == {"name": "plain", "backbone": "tiny_cnn"}


# ---- one-line errors ----------------------------------------------------------------------


def _run(capsys, main, argv, prog="detectors.train"):
    code = run_cli(prog, main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_cli_errors_are_one_line_with_exit_code_2(capsys, tmp_path, small_data):
    cases = [
        (["--config", "tiny", "train.epoch=3"], "unknown config key 'train.epoch'"),
        (["--config", "tiny"], "data.root is not set"),
        (["--config", "tiny", f"data.root={tmp_path / 'nope'}"], "not a folder"),
        (
            ["--config", "tiny", f"data.root={small_data}", "model.lr=1"],
            "unknown option(s) lr for model 'pgfdd'",
        ),
        (
            ["--config", "tiny", f"data.root={small_data}", "device=cuda:7"]
            if not torch.cuda.is_available()
            else ["--config", "tiny", "device=tpu", f"data.root={small_data}"],
            "device",
        ),
        (
            ["--config", "tiny", f"data.root={small_data}", "data.dataset=celebdf"],
            "intersec_label must be a celebdf group id",
        ),
    ]
    for argv, message in cases:
        code, err = _run(capsys, train_main, argv + [f"run_dir={tmp_path / 'r'}"])
        assert (
            code == 2
            and len(err) == 1
            and err[0].startswith("detectors.train: error: ")
            and message in err[0]
        ), (argv, err)
    code, err = _run(
        capsys,
        predict_main,
        ["--checkpoint", str(tmp_path / "x.pt"), "--csv", "t.csv", "--out", str(tmp_path)],
        "detectors.predict",
    )
    assert code == 2 and len(err) == 1 and "checkpoint not found" in err[0]


def test_missing_training_image_names_file_and_row(capsys, tmp_path, small_data):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    first = _rows(data / "faketrain.csv")[2]["img_path"]
    (data / first).unlink()
    code, err = _run(
        capsys, train_main, ["--config", "tiny", f"data.root={data}", f"run_dir={tmp_path / 'r'}"]
    )
    assert code == 2 and len(err) == 1
    assert (
        f"image not found: {data / first}" in err[0]
        and "row 2 (line 4) of" in err[0]
        and "faketrain.csv" in err[0]
    )
    assert "--skip-bad-images" in err[0]


def test_command_line_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "detectors.train", "--config", "tiny", "train.epoch=3"],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    )
    assert proc.stderr.startswith("detectors.train: error: unknown config key 'train.epoch'")


# ---- a run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_epoch_run(small_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("two") / "run"
    assert _train(small_data, run, "train.epochs=2", "sched.step_size=1", "sched.gamma=0.5") == 0
    return run


def test_run_folder_holds_config_summary_and_checkpoints(two_epoch_run, small_data):
    files = {p.name for p in two_epoch_run.iterdir()}
    assert {"config.yaml", "summary.csv", "last.pt", "train.log"} <= files
    cfg = yaml.safe_load((two_epoch_run / "config.yaml").read_text())
    assert (
        cfg["data"]["root"] == str(small_data)
        and cfg["train"]["epochs"] == 2
        and cfg["model"]["backbone"] == "tiny_cnn"
    )
    rows = _rows(two_epoch_run / "summary.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for column in (
        "train_overall",
        "train_fusion",
        "train_demographic",
        "val_auc",
        "val_gender_fpr_range",
        "val_race_tpr_range",
        "val_gender+race_equalized_odds",
        "val_gender+race_auc_range",
        "val_loss",
        "skipped_images",
        "lr",
    ):
        assert column in rows[0]
    assert [float(r["lr"]) for r in rows] == pytest.approx(
        [0.002, 0.001]
    )  # StepLR(1, 0.5) stepped per epoch
    last = torch.load(two_epoch_run / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and not any(k.startswith("module.") for k in last["model"])
    assert last["scheduler"]["last_epoch"] == 2
    assert last["optimizer"]["base"]["state"], "base optimizer state (Adam moments) saved"
    aucs = [float(r["val_auc"]) for r in rows]
    best_epoch = int(np.argmax(aucs)) + 1
    best = torch.load(two_epoch_run / "best.pt", map_location="cpu", weights_only=True)
    assert best["epoch"] == best_epoch and best["best_metric"] == pytest.approx(max(aucs), abs=1e-5)
    assert last["model_options"]["group_counts"] == [
        int(x) for x in last["model_options"]["group_counts"]
    ]
    assert sum(last["model_options"]["group_counts"]) == len(
        _rows(small_data / "faketrain.csv")
    ) + len(_rows(small_data / "realtrain.csv"))


def test_an_existing_run_is_not_overwritten_silently(capsys, two_epoch_run, small_data):
    code, err = _run(
        capsys,
        train_main,
        ["--config", "tiny", f"data.root={small_data}", f"run_dir={two_epoch_run}"],
    )
    assert code == 2 and "already holds a run" in err[0]


def test_resume_continues_exactly_like_an_uninterrupted_run(two_epoch_run, small_data, tmp_path):
    run = tmp_path / "resumed"
    assert _train(small_data, run, "train.epochs=1", "sched.step_size=1", "sched.gamma=0.5") == 0
    assert (
        _train(
            small_data, run, "train.epochs=2", "sched.step_size=1", "sched.gamma=0.5", "--resume"
        )
        == 0
    )
    a, b = _rows(two_epoch_run / "summary.csv"), _rows(run / "summary.csv")
    assert len(b) == 2
    for row_a, row_b in zip(a, b):
        assert {k: v for k, v in row_a.items() if k != "seconds"} == {
            k: v for k, v in row_b.items() if k != "seconds"
        }
    ca = torch.load(two_epoch_run / "last.pt", map_location="cpu", weights_only=True)
    cb = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    for key in ca["model"]:
        assert torch.equal(ca["model"][key], cb["model"][key]), key


def test_resume_gives_the_same_next_step_loss(small_data, tmp_path):
    cfg = load_config("tiny", [f"data.root={small_data}", f"run_dir={tmp_path}"])
    cpu = torch.device("cpu")
    first = Trainer(cfg, DistInfo(), cpu)
    first.train_epoch(0)
    first.evaluate()
    first.scheduler.step()
    from detectors._checkpoint import save_atomic
    from detectors._seeding import rng_state

    save_atomic(first._checkpoint(1, [rng_state()]), tmp_path / "epoch1.pt")
    expected = first.train_step(first.prepare(next(first.epoch_batches(1))))

    torch.manual_seed(12345)  # a fresh process would start from other generator states
    second = Trainer(cfg, DistInfo(), cpu)
    second.resume(tmp_path / "epoch1.pt")
    got = second.train_step(second.prepare(next(second.epoch_batches(1))))
    assert set(got) == set(expected)
    for key in expected:
        assert got[key].item() == expected[key].item(), key
    third = Trainer(cfg, DistInfo(), cpu)  # without resuming, the step differs
    assert (
        third.train_step(third.prepare(next(third.epoch_batches(1))))["overall"].item()
        != expected["overall"].item()
    )


def test_same_seed_same_predictions(two_epoch_run, small_data, tmp_path):
    again = tmp_path / "again"
    assert _train(small_data, again, "train.epochs=2", "sched.step_size=1", "sched.gamma=0.5") == 0
    outs = []
    for run in (two_epoch_run, again):
        out = tmp_path / f"pred-{run.name}"
        assert (
            predict_main(
                [
                    "--checkpoint",
                    str(run / "last.pt"),
                    "--csv",
                    str(small_data / "test.csv"),
                    "--out",
                    str(out),
                    "--num-workers",
                    "0",
                ]
            )
            == 0
        )
        outs.append(np.load(out / "preds.npy"))
    assert np.array_equal(outs[0], outs[1])
    other = tmp_path / "other-seed"
    assert _train(small_data, other, "train.epochs=1", "seed=6") == 0
    out = tmp_path / "pred-other"
    assert (
        predict_main(
            [
                "--checkpoint",
                str(other / "last.pt"),
                "--csv",
                str(small_data / "test.csv"),
                "--out",
                str(out),
                "--num-workers",
                "0",
            ]
        )
        == 0
    )
    assert not np.array_equal(np.load(out / "preds.npy"), outs[0])


def test_skip_bad_images_counts_them_in_the_summary(small_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    fakes = _rows(data / "faketrain.csv")
    (data / fakes[0]["img_path"]).write_bytes(b"broken")
    (data / fakes[1]["img_path"]).unlink()
    run = tmp_path / "run"
    assert (
        train_main(
            [
                "--config",
                "tiny",
                f"data.root={data}",
                f"run_dir={run}",
                "train.epochs=1",
                "--skip-bad-images",
            ]
        )
        == 0
    )
    row = _rows(run / "summary.csv")[0]
    assert row["skipped_images"] == "1" and row["missing_images"] == "1"
    log = (run / "train.log").read_text()
    assert (
        "skipped 1 unreadable training" in log and "skipping 1 row(s) whose image is missing" in log
    )


@pytest.mark.parametrize(
    "extra",
    [
        ["optim.sam=false"],
        ["model.variant=fixed"],
        ["model.name=plain", "model.backbone=tiny_cnn", "model.loss=daw"],
    ],
)
def test_other_training_modes_run(small_data, tmp_path, extra):
    run = tmp_path / "run"
    assert _train(small_data, run, "train.epochs=1", *extra) == 0
    row = _rows(run / "summary.csv")[0]
    assert float(row["train_overall"]) > 0 and 0 <= float(row["val_auc"]) <= 1


def test_self_blended_fakes_plug_into_the_trainer(small_data, tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("detectors.sbi")
    run = tmp_path / "sbi"
    assert _train(small_data, run, "train.epochs=1", "data.fakes=sbi") == 0
    row = _rows(run / "summary.csv")[0]
    assert 0 <= float(row["val_auc"]) <= 1 and float(row["train_overall"]) > 0
