"""The training command line never surprises (issue 11, section 3): number notations, overrides
anywhere, type errors at load time (one line each), spe_label checked before training,
--resume with changed settings, --overwrite clears the old run, threads, progress bar only on
a terminal, refusal before anything slow, groups without training rows, validation metrics by
fairaudit, the paper preset's initial weights."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score

from detectors import ConfigError
from detectors._cli import run_cli
from detectors._distributed import DistInfo
from detectors._trainer import Trainer
from detectors.config import load_config
from detectors.data import GROUP_CODINGS
from detectors.train import main as train_main
from detectors_cli import REPO, cli_env


def _run(capsys, argv):
    code = run_cli("detectors.train", train_main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def _errors(err):
    return [line for line in err if line.startswith("detectors.train: error: ")]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---- values and their notation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [("1e-3", 0.001), ("1E-3", 0.001), (".001", 0.001), ("1_000e-6", 0.001), ("0.001", 0.001)],
)
def test_every_python_number_notation_is_accepted(text, value):
    assert load_config("tiny", [f"optim.lr={text}"])["optim"]["lr"] == pytest.approx(value)


def test_integers_in_python_notations_and_model_options_are_converted():
    cfg = load_config("tiny", ["train.epochs=1_0", "seed=0x10", "data.batch_size=8.0"])
    assert (cfg["train"]["epochs"], cfg["seed"], cfg["data"]["batch_size"]) == (10, 16, 8)
    from detectors.models import check_model_config

    model = check_model_config({"name": "pgfdd", "tau1": "1e-3", "loss_weights": {"fusion": "2"}})
    assert model["tau1"] == 0.001 and model["loss_weights"] == {"fusion": 2.0}


def test_a_yaml_file_with_python_notation_works_too(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  weight_decay: 5e-3\n")
    cfg = load_config(path)
    assert cfg["optim"]["lr"] == 0.001 and cfg["optim"]["weight_decay"] == 0.005


def test_overrides_may_follow_flags(capsys):
    argv = ["--config", "tiny", "--overwrite", "data.input_size=96", "--print-config", "seed=3"]
    code, out, err = _run(capsys, argv)
    cfg = yaml.safe_load(out)
    assert code == 0 and cfg["data"]["input_size"] == 96 and cfg["seed"] == 3, err


def test_type_errors_are_found_at_load_time_one_line_each(capsys):
    code, out, err = _run(
        capsys, ["--config", "tiny", "--print-config", "data.input_size=abc", "run_dir=5"]
    )
    assert code == 2 and out == ""
    assert err == [
        "detectors.train: error: config key 'run_dir': expected a string, found 5",
        "detectors.train: error: config key 'data.input_size': expected a number, found 'abc'",
    ]
    code, _, err = _run(capsys, ["--config", "tiny", "--print-config", "model.feature_dim=big"])
    assert code == 2 and err == [
        "detectors.train: error: config key 'model.feature_dim': expected an integer, found 'big'"
    ]


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=nan", "'optim.lr': expected a number, found 'nan'"),
        ("optim.lr=0", "'optim.lr': expected a number > 0, found 0"),
        ("data.num_workers=-1", "'data.num_workers': expected an integer >= 0"),
        ("train.threads=0", "'train.threads': expected auto or an integer >= 1, found 0"),
        ("data.sbi.erode_mask=yes please", "'data.sbi.erode_mask': expected true or false"),
    ],
)
def test_out_of_range_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("tiny", [override])


def test_the_pgfdd_input_size_must_be_a_multiple_of_32(capsys, small_data, tmp_path):
    argv = [
        "--config",
        "tiny",
        f"data.root={small_data}",
        f"run_dir={tmp_path}",
        "data.input_size=48",
    ]
    code, _, err = _run(capsys, argv)
    assert code == 2 and _errors(err) == [
        "detectors.train: error: config key 'data.input_size': pgfdd needs a multiple of 32 "
        "(its decoder rebuilds the image from the feature map), found 48"
    ]
    assert not (tmp_path / "last.pt").exists()


# ---- the data, checked before training ---------------------------------------------------------


def test_spe_label_outside_the_specific_head_stops_before_training(capsys, small_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("faketrain.csv", "realtrain.csv", "fakeval.csv", "realval.csv"):
        frame = pd.read_csv(small_data / name)
        frame["img_path"] = [str(small_data / p) for p in frame["img_path"]]
        if name == "faketrain.csv":
            frame.loc[3, "spe_label"] = 6  # the specific head has 6 classes: 0 real, 1..5
        frame.to_csv(data / name, index=False)
    run = tmp_path / "run"
    code, _, err = _run(capsys, ["--config", "tiny", f"data.root={data}", f"run_dir={run}"])
    assert code == 2 and _errors(err) == err == [
        f"detectors.train: error: row 3 (line 5) of {data / 'faketrain.csv'}: spe_label 6 is not "
        "a manipulation id of the model (1..5: model.num_specific=6 classes, 0 being real); "
        "1 such row(s)"
    ]
    assert not (run / "last.pt").exists()
    assert (
        run_cli(  # a larger head accepts it
            "detectors.train",
            train_main,
            ["--config", "tiny", f"data.root={data}", f"run_dir={run}", "model.num_specific=7"]
            + ["train.epochs=1", "--overwrite"],
        )
        == 0
    )


def test_a_group_without_training_rows_is_warned_about(small_data, tmp_path, caplog):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("faketrain.csv", "realtrain.csv", "fakeval.csv", "realval.csv"):
        frame = pd.read_csv(small_data / name)
        frame["img_path"] = [str(small_data / p) for p in frame["img_path"]]
        if "train" in name:
            frame = frame[frame["intersec_label"] != 6]
        frame.to_csv(data / name, index=False)
    cfg = load_config("tiny", [f"data.root={data}", f"run_dir={tmp_path / 'run'}"])
    with caplog.at_level("WARNING", logger="detectors"):
        Trainer(cfg, DistInfo(), torch.device("cpu"))
    assert "group(s) nonmale,black of the ff++ coding have no training rows" in caplog.text


def test_synth_defaults_give_every_group_in_every_split(tmp_path):
    from detectors.synth import generate

    generate(tmp_path, 200)
    for name in ("faketrain.csv", "realtrain.csv", "fakeval.csv", "realval.csv", "test.csv"):
        frame = pd.read_csv(tmp_path / name)
        for label, part in frame.groupby("label"):
            assert sorted(part["intersec_label"].unique()) == list(range(8)), (name, label)


# ---- the run folder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_epoch_run(small_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    argv = ["--config", "tiny", f"data.root={small_data}", f"run_dir={run}", "train.epochs=1"]
    assert train_main(argv) == 0
    return run


def test_the_refusal_to_reuse_a_run_folder_comes_before_importing_torch(one_epoch_run, small_data):
    script = (
        "import sys\n"
        "from detectors._cli import run_cli\n"
        "from detectors.train import main\n"
        f"code = run_cli('detectors.train', main, ['--config', 'tiny', 'data.root={small_data}', "
        f"'run_dir={one_epoch_run}'])\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=cli_env(), capture_output=True, text=True
    )
    assert proc.stdout.split() == ["2", "False"], proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"detectors.train: error: run_dir {one_epoch_run} already holds a run: pass --resume to "
        "continue it, --overwrite to start again, or another run_dir"
    ]


def test_resume_refuses_changed_settings_naming_them(capsys, one_epoch_run, small_data):
    before = (one_epoch_run / "config.yaml").read_text()
    argv = ["--config", "tiny", f"data.root={small_data}", f"run_dir={one_epoch_run}", "--resume"]
    code, _, err = _run(capsys, argv + ["train.epochs=2", "optim.lr=0.01", "model.tau1=0.01"])
    assert code == 2 and err == [
        f"detectors.train: error: --resume {one_epoch_run / 'last.pt'}: the checkpoint was "
        "trained with other settings (optim.lr: 0.002 -> 0.01, model.tau1: None -> 0.01); "
        "resume with the checkpoint's values, or start a new run"
    ]
    assert (one_epoch_run / "config.yaml").read_text() == before  # nothing rewritten


def test_resume_applies_the_allowed_changes_and_says_so(small_data, tmp_path, caplog):
    run = tmp_path / "run"
    base = ["--config", "tiny", f"data.root={small_data}", f"run_dir={run}"]
    assert train_main(base + ["train.epochs=1"]) == 0
    with caplog.at_level("INFO", logger="detectors"):
        assert train_main(base + ["train.epochs=2", "--resume", "data.num_workers=1"]) == 0
    assert "resuming with changed settings: data.num_workers: 0 -> 1; train.epochs: 1 -> 2" in (
        caplog.text
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2
    assert [r["epoch"] for r in _rows(run / "summary.csv")] == ["1", "2"]


def test_overwrite_after_a_failed_start_leaves_nothing_of_the_old_run(capsys, small_data, tmp_path):
    run = tmp_path / "run"
    base = ["--config", "tiny", f"data.root={small_data}", f"run_dir={run}", "train.epochs=1"]
    assert run_cli("detectors.train", train_main, base) == 0
    assert {"last.pt", "best.pt", "summary.csv"} <= {p.name for p in run.iterdir()}
    # a new start that fails once the run folder is in use (the input size does not fit)
    code, _, err = _run(capsys, base + ["--overwrite", "data.input_size=80"])
    assert code == 2 and "data.input_size" in _errors(err)[0]
    assert not {"last.pt", "best.pt", "summary.csv"} & {p.name for p in run.iterdir()}
    assert run_cli("detectors.train", train_main, base + ["train.epochs=1"]) == 0  # no refusal


# ---- threads, progress, validation metrics, initial weights ------------------------------------


def test_threads_are_set_per_process_and_logged(small_data, tmp_path, caplog):
    from detectors._trainer import set_threads

    previous = torch.get_num_threads()
    try:
        assert set_threads(2, torch.device("cpu")) == 2 == torch.get_num_threads()
        with caplog.at_level("INFO", logger="detectors"):
            argv = ["--config", "tiny", f"data.root={small_data}", f"run_dir={tmp_path}"]
            assert train_main(argv + ["train.epochs=1", "train.threads=1"]) == 0
        assert torch.get_num_threads() == 1 and "1 process(es), 1 CPU thread(s) each" in caplog.text
    finally:
        torch.set_num_threads(previous)


def test_auto_threads_share_the_idle_cores_among_local_processes(monkeypatch):
    from detectors._trainer import set_threads

    previous = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    load = [0.0]
    monkeypatch.setattr("os.getloadavg", lambda: (load[0], 0.0, 0.0), raising=False)
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
        assert set_threads("auto", torch.device("cpu")) == 2
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
        assert set_threads("auto", torch.device("cpu")) == 4  # capped
        load[0] = 15.2  # a busy machine: one thread
        assert set_threads("auto", torch.device("cpu")) == 1
        assert set_threads("auto", torch.device("cuda")) == 1  # the CPU only feeds the GPU
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        torch.set_num_threads(3)
        assert set_threads("auto", torch.device("cpu")) == 3  # the environment decides
    finally:
        torch.set_num_threads(previous)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(small_data, tmp_path, monkeypatch, terminal):
    cfg = load_config("tiny", [f"data.root={small_data}", f"run_dir={tmp_path}"])
    trainer = Trainer(cfg, DistInfo(), torch.device("cpu"))
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    trainer.train_epoch(0)
    assert ("epoch 1/5" in stream.getvalue()) == terminal


def test_validation_metrics_are_fairaudits_and_match_an_independent_computation(
    small_data, tmp_path
):
    from detectors._engine import run_inference

    cfg = load_config("tiny", [f"data.root={small_data}", f"run_dir={tmp_path}"])
    trainer = Trainer(cfg, DistInfo(), torch.device("cpu"))
    trainer.train_epoch(0)
    got = trainer.evaluate()
    result = run_inference(trainer.model, trainer.val_loader, torch.device("cpu"))
    prob = torch.softmax(result["logits"], 1)[:, 1].numpy()
    labels, groups = result["label"].numpy(), result["group"].numpy()
    assert got["val_auc"] == pytest.approx(roc_auc_score(labels, prob), abs=1e-12)
    assert got["val_acc"] == pytest.approx(((prob >= 0.5) == labels).mean(), abs=1e-12)
    coding = GROUP_CODINGS["ff++"]
    for family, key in (("gender", 0), ("race", 1)):
        names = np.array([coding[g][key] for g in groups])

        def rates(label):  # per group with rows of that label (a group without any is undefined)
            kept = [(names == n) & (labels == label) for n in np.unique(names)]
            return [(prob[m] >= 0.5).mean() for m in kept if m.any()]

        fprs, tprs = rates(0), rates(1)
        assert got[f"val_{family}_fpr_range"] == pytest.approx(max(fprs) - min(fprs), abs=1e-12)
        eo = max(max(fprs) - min(fprs), max(tprs) - min(tprs))
        assert got[f"val_{family}_equalized_odds"] == pytest.approx(eo, abs=1e-12)


def test_the_paper_preset_asks_for_its_initial_weights(capsys, small_data, tmp_path):
    code, _, err = _run(capsys, ["--config", "pgfdd-ff++", "--print-config"])
    assert code == 2 and len(err) == 1 and "pass model.pretrained=FILE" in err[0]
    assert "model.pretrained=none to train from random weights" in err[0]
    code, out, _ = _run(
        capsys, ["--config", "pgfdd-ff++", "--print-config", "model.pretrained=none"]
    )
    assert code == 0 and yaml.safe_load(out)["model"]["pretrained"] is None


def test_the_initial_weights_are_logged(small_data, tmp_path, caplog):
    with caplog.at_level("INFO", logger="detectors"):
        argv = ["--config", "tiny", f"data.root={small_data}", f"run_dir={tmp_path}"]
        assert train_main(argv + ["train.epochs=1"]) == 0
    assert "initial weights: random (model.pretrained=none)" in caplog.text
