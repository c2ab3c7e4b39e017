"""python -m detectors.prepare on real photos: research CSVs, frames without a face reported,
identity split, resume, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from detectors._cli import run_cli
from detectors.prepare import OUTPUT_FILES, main, prepare

RESEARCH = ["img_path", "label", "ismale", "isasian", "iswhite", "isblack", "intersec_label"]


def _csvs(data):
    return {name: pd.read_csv(data / name) for name in OUTPUT_FILES}


def _cli(argv, capsys):
    """Run the command line in this process; its console log handler writes to the test's stderr."""
    import logging

    logger = logging.getLogger("detectors")
    for handler in [h for h in logger.handlers if getattr(h, "_detectors_console", False)]:
        logger.removeHandler(handler)  # bound to an earlier test's captured stderr
    code = run_cli("detectors.prepare", main, [*argv, "--workers", "1"])
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("detectors.prepare: error:")]
    assert len(errors) == (code == 2), out.err
    return code, out


def test_csvs_have_the_research_schema_and_point_at_aligned_faces(prepared):
    data = prepared["data"]
    tables = _csvs(data)
    for name, table in tables.items():
        assert list(table.columns[:7]) == RESEARCH, name
        assert ("spe_label" in table.columns) == name.startswith("fake")
        assert {"video_id", "identity", "frame", "demographics"} <= set(table.columns)
    faces = pd.concat(tables.values())
    assert len(faces) == prepared["result"].summary["faces"] > 10
    assert (faces["label"] == 0).all() and (faces["demographics"] == "synthetic").all()
    for rel in faces["img_path"]:
        with Image.open(data / rel) as img:
            assert img.size == (128, 128) and img.mode == "RGB"
        points = np.load((data / rel).with_suffix(".npy"))
        assert points.shape == (68, 2) and (points > -10).all() and (points < 138).all()
    # research flags agree with the group id (ff++ coding: id = 4 * female + race)
    race = np.select([faces.isasian == 1, faces.iswhite == 1, faces.isblack == 1], [0, 1, 2], 3)
    assert (faces["intersec_label"] == 4 * (faces["ismale"] == -1) + race).all()


def test_frames_without_a_face_are_reported_and_not_replaced(prepared):
    data = prepared["data"]
    report = pd.read_csv(
        data / "report.csv", dtype={"no_face_frames": str}, keep_default_na=False
    ).set_index("video_id")
    clip = report.loc["astronaut_clip"]
    assert (
        clip["sampled"] == clip["read"] == 8
        and clip["no_face"] == 2
        and clip["no_face_frames"] == "3 6"
    )
    assert clip["faces"] == 6 and clip["status"] == "frames without a face"
    assert report.loc["coffee", "faces"] == 0 and report.loc["coffee", "status"] == "no face"
    faces = pd.concat(_csvs(data).values())
    clip_rows = faces[faces["video_id"] == "astronaut_clip"]
    assert sorted(clip_rows["frame"]) == [
        0,
        1,
        2,
        4,
        5,
        7,
    ]  # frames 3 and 6 are missing, not filled in
    assert (faces["video_id"] != "coffee").all()
    summary = prepared["result"].summary
    assert summary["frames_without_face"] == int(report["no_face"].sum()) >= 3


def test_no_identity_is_in_two_splits(prepared):
    tables = _csvs(prepared["data"])
    split_of = {
        "realtrain.csv": "train",
        "faketrain.csv": "train",
        "realval.csv": "val",
        "fakeval.csv": "val",
        "test.csv": "test",
    }
    where = {}
    for name, table in tables.items():
        for ident in table["identity"]:
            where.setdefault(ident, set()).add(split_of[name])
    assert all(len(s) == 1 for s in where.values())
    report = pd.read_csv(prepared["data"] / "report.csv").set_index("video_id")
    assert (
        report.loc["astronaut", "split"] == report.loc["astronaut_clip", "split"]
    )  # one person, one split
    assert set(report["split"]) == {"train", "val", "test"}


def test_a_second_run_resumes_without_reprocessing(prepared, monkeypatch, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(prepared["data"], data)
    import detectors.prepare as module

    def boom(*args, **kwargs):
        raise AssertionError("a finished video was processed again")

    monkeypatch.setattr(module, "process_source", boom)
    again = prepare(prepared["annotations"], data, settings=prepared["settings"], progress=False)
    assert again.counts == prepared["result"].counts
    assert _csvs(data)["realtrain.csv"].equals(_csvs(prepared["data"])["realtrain.csv"])


def test_a_half_done_run_redoes_only_the_unfinished_video(prepared, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(prepared["data"], data)
    (data / "faces" / "grace_hopper" / "faces.json").unlink()  # as if interrupted inside this video
    stamp = (data / "faces" / "astronaut" / "faces.json").stat().st_mtime_ns
    prepare(prepared["annotations"], data, settings=prepared["settings"], progress=False)
    assert (data / "faces" / "grace_hopper" / "faces.json").is_file()
    assert (data / "faces" / "astronaut" / "faces.json").stat().st_mtime_ns == stamp


def test_other_settings_on_a_prepared_folder_are_refused(prepared, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(prepared["data"], data)
    code, out = _cli(
        [
            "--annotations",
            str(prepared["annotations"]),
            "--out",
            str(data),
            "--size",
            "64",
            "--frames",
            "8",
            "--detector",
            "hog",
            "--no-progress",
        ],
        capsys,
    )
    assert (
        code == 2
        and "prepared with other settings (size 128 -> 64)" in out.err
        and "--overwrite" in out.err
    )


def _annotations(tmp_path, rows, columns=("path", "label", "identity", "gender", "race")):
    path = tmp_path / "ann.csv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "columns, rows, message",
    [
        (
            ("path", "label", "gender", "race"),
            [("a.png", 0, "male", "white")],
            "missing column(s) identity",
        ),
        (("path", "label", "identity"), [("a.png", 0, "p")], "missing column(s) demographics"),
        (
            ("path", "label", "identity", "gender", "race"),
            [("a.png", 2, "p", "male", "white")],
            "label must be 0/real or 1/fake; row 0 (line 2)",
        ),
        (
            ("path", "label", "identity", "gender", "race"),
            [("a.png", 0, "p", "male", "martian")],
            "race must be one of",
        ),
        (
            ("path", "label", "identity", "gender", "race"),
            [("gone.png", 0, "p", "male", "white")],
            "no such file or folder: ",
        ),
        (
            ("path", "label", "identity", "gender", "race"),
            [("a.png", 0, "p", "male", "white"), ("a.png", 0, "q", "male", "white")],
            "video_id 'a' of row 1 (line 3)",
        ),
    ],
)
def test_bad_annotations_give_one_line_naming_file_and_row(
    tmp_path, capsys, photo_paths, columns, rows, message
):
    shutil.copyfile(photo_paths["grace_hopper"], tmp_path / "a.png")
    ann = _annotations(tmp_path, rows, columns)
    code, out = _cli(
        [
            "--annotations",
            str(ann),
            "--out",
            str(tmp_path / "out"),
            "--detector",
            "hog",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and message in out.err, out.err
    assert str(ann) in out.err


def test_an_unreadable_video_names_file_and_row_and_can_be_skipped(tmp_path, capsys, photo_paths):
    shutil.copyfile(photo_paths["grace_hopper"], tmp_path / "hopper.jpg")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    ann = _annotations(
        tmp_path,
        [("hopper.jpg", 0, "gh", "female", "white"), ("broken.mp4", 1, "gh", "female", "white")],
    )
    argv = [
        "--annotations",
        str(ann),
        "--out",
        str(tmp_path / "out"),
        "--detector",
        "hog",
        "--no-progress",
    ]
    code, out = _cli(argv, capsys)
    assert (
        code == 2
        and "broken.mp4" in out.err
        and "row 1 (line 3)" in out.err
        and "--skip-bad" in out.err
    )
    code, out = _cli(argv + ["--skip-bad"], capsys)
    assert code == 0, out.err
    report = pd.read_csv(tmp_path / "out" / "report.csv").set_index("video_id")
    assert (
        report.loc["broken", "status"].startswith("unreadable: cannot open video")
        and report.loc["hopper", "faces"] == 1
    )
    assert "1 source(s) skipped" in out.out


def test_no_face_at_all_is_an_error(tmp_path, capsys, photo_paths):
    shutil.copyfile(photo_paths["coffee"], tmp_path / "coffee.png")
    ann = _annotations(tmp_path, [("coffee.png", 0, "nobody", "male", "white")])
    code, out = _cli(
        [
            "--annotations",
            str(ann),
            "--out",
            str(tmp_path / "out"),
            "--detector",
            "hog",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and "no face found in any of the 1 frame(s)" in out.err and str(ann) in out.err


def test_fakes_and_research_flag_annotations(tmp_path, capsys, photo_paths):
    """Annotations in the research flag form, with fakes and face-swap identities; fake files carry
    spe_label."""
    for k in range(5):
        shutil.copyfile(photo_paths["grace_hopper"], tmp_path / f"r{k}.jpg")
        shutil.copyfile(photo_paths["astronaut"], tmp_path / f"f{k}.png")
    rows = [(f"r{k}.jpg", "real", f"p{k}", "", -1, -1, 1, -1) for k in range(5)]
    rows += [
        (
            f"f{k}.png",
            "fake",
            f"p{k}+p{(k + 1) % 5}" if k < 2 else f"p{k}",
            "FaceSwap" if k % 2 else 4,
            1,
            1,
            -1,
            -1,
        )
        for k in range(5)
    ]
    ann = _annotations(
        tmp_path,
        rows,
        ("path", "label", "identity", "method", "ismale", "isasian", "iswhite", "isblack"),
    )
    code, out = _cli(
        [
            "--annotations",
            str(ann),
            "--out",
            str(tmp_path / "out"),
            "--detector",
            "hog",
            "--no-progress",
            "--seed",
            "1",
        ],
        capsys,
    )
    assert code == 0, out.err
    tables = _csvs(tmp_path / "out")
    fakes = pd.concat([tables["faketrain.csv"], tables["fakeval.csv"]])
    assert set(fakes["spe_label"]) <= {3, 4} and (fakes["intersec_label"] == 0).all()
    reals = pd.concat(
        [tables["realtrain.csv"], tables["realval.csv"], tables["test.csv"].query("label == 0")]
    )
    assert (reals["intersec_label"] == 5).all()  # female, white
    report = pd.read_csv(tmp_path / "out" / "report.csv")
    joined = report[report["identity"].isin(["p0", "p1", "p2", "p0+p1", "p1+p2"])]
    assert joined["split"].nunique() == 1  # p0, p1, p2 are joined by the swaps


@pytest.mark.slow
def test_command_line_with_two_workers_matches_one(prepared, tmp_path, cli_runner):
    out = tmp_path / "data"
    proc = cli_runner(
        "detectors.prepare",
        "--annotations",
        str(prepared["annotations"]),
        "--out",
        str(out),
        "--frames",
        "8",
        "--size",
        "128",
        "--detector",
        "hog",
        "--workers",
        "2",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert "frame(s) without a face" in proc.stdout and "split by identity" in proc.stdout
    for name in OUTPUT_FILES:
        mine, theirs = pd.read_csv(out / name), pd.read_csv(prepared["data"] / name)
        pd.testing.assert_frame_equal(mine, theirs)
    first = prepared["data"] / pd.read_csv(out / "realtrain.csv")["img_path"][0]
    assert np.array_equal(
        np.asarray(Image.open(out / first.relative_to(prepared["data"]))),
        np.asarray(Image.open(first)),
    )


def test_without_the_landmark_model_faces_are_cropped_by_their_box(
    prepared, tmp_path, monkeypatch, caplog
):
    """dlib-bin alone (no face-recognition-models): HOG detector, box crops, no landmark files."""
    import detectors.prepare as module
    from detectors.faces import _detect

    monkeypatch.setattr(_detect, "find_model_file", lambda name: None)
    monkeypatch.setattr(module, "_DETECTOR", None)
    photos = tmp_path / "p"
    photos.mkdir()
    shutil.copyfile(prepared["root"] / "photos" / "grace_hopper.jpg", photos / "gh.jpg")
    ann = _annotations(photos, [("gh.jpg", 0, "gh", "female", "white")])
    with caplog.at_level("WARNING", logger="detectors.prepare"):
        result = prepare(
            ann, tmp_path / "out", settings=module.PrepareSettings(size=64), progress=False
        )
    assert (
        result.summary["detector"]["detector"] == "hog"
        and result.summary["detector"]["landmark_model"] is None
    )
    assert "no landmark model" in caplog.text
    record = (tmp_path / "out" / "faces" / "gh" / "faces.json").read_text()
    assert '"aligned_by": "box"' in record
    assert (tmp_path / "out" / "faces" / "gh" / "000000.png").is_file() and not (
        tmp_path / "out" / "faces" / "gh" / "000000.npy"
    ).exists()
