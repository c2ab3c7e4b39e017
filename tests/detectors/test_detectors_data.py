"""Data: CSV schema, group codings, pair sampler, [reals; fakes] layout, transforms, bad images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from detectors import DataError
from detectors.data import (
    GROUP_CODINGS,
    ImageListDataset,
    PairDataset,
    build_transform,
    collate_images,
    normalize_images,
    collate_pairs,
    group_counts,
    group_names,
    read_table,
    read_training_tables,
)


def _write_images(folder, n, color=(200, 100, 50), mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.new(mode, (20, 16), color if mode == "RGB" else 128).save(p)
        paths.append(p)
    return paths


def _csv(
    path,
    rows,
    columns=("img_path", "label", "ismale", "isasian", "iswhite", "isblack", "intersec_label"),
):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_group_codings_follow_spec_section_7():
    assert group_names("ff++") == [
        "male,asian",
        "male,white",
        "male,black",
        "male,others",
        "nonmale,asian",
        "nonmale,white",
        "nonmale,black",
        "nonmale,others",
    ]
    assert GROUP_CODINGS["dfdc"] == GROUP_CODINGS["ff++"]
    assert group_names("celebdf") == [
        "male,white",
        "male,black",
        "male,others",
        "nonmale,white",
        "nonmale,black",
        "nonmale,others",
    ]
    assert GROUP_CODINGS["dfd"] == GROUP_CODINGS["celebdf"]
    with pytest.raises(Exception, match="unknown dataset 'lfw'"):
        group_names("lfw")


def test_paths_relative_to_the_csv_folder_or_absolute(tmp_path):
    imgs = _write_images(tmp_path / "data" / "faces", 2)
    csv = _csv(
        tmp_path / "data" / "test.csv",
        [
            ["faces/img0.png", 0, 1, -1, 1, -1, 1],
            [str(imgs[1]), 1, -1, 1, -1, -1, 4],  # absolute
        ],
    )
    table = read_table(csv)
    assert table.paths == [str(imgs[0]), str(imgs[1])]
    assert table.labels.tolist() == [0, 1] and table.groups.tolist() == [1, 4]


def test_header_with_spaces_and_six_group_layout(tmp_path):
    _write_images(tmp_path, 1)
    (tmp_path / "test.csv").write_text(
        "img_path, label, ismale, iswhite, isblack, intersec_label\nimg0.png,1,1,-1,1,1\n"
    )
    table = read_table(tmp_path / "test.csv", dataset="celebdf")
    assert table.groups.tolist() == [1]
    (tmp_path / "bad.csv").write_text("img_path,label,intersec_label\nimg0.png,1,7\n")
    with pytest.raises(
        DataError, match=r"intersec_label must be a celebdf group id 0..5; row 0 \(line 2\) has 7"
    ):
        read_table(tmp_path / "bad.csv", dataset="celebdf")


@pytest.mark.parametrize(
    "content, role, message",
    [
        (
            "img_path,label,intersec_label\nimg0.png,2,0\n",
            "any",
            r"label must be 0 \(real\) or 1 \(fake\); row 0 \(line 2\) has 2",
        ),
        (
            "img_path,label,intersec_label\nimg0.png,0,0\n",
            "fake",
            r"label must be 1 in a fake file; row 0",
        ),
        ("img_path,intersec_label\nimg0.png,0\n", "any", r"missing column label"),
        ("path,label\nimg0.png,0\n", "any", r"missing column\(s\) img_path"),
        (
            "img_path,label,intersec_label\nimg0.png,x,0\n",
            "any",
            r"column label must hold integers; row 0 \(line 2\) has 'x'",
        ),
        ("img_path,label\nimg0.png,0\n", "any", r"missing column intersec_label"),
    ],
)
def test_bad_csv_content_names_file_row_and_value(tmp_path, content, role, message):
    _write_images(tmp_path, 1)
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        read_table(tmp_path / "t.csv", role=role)


def test_missing_image_names_file_and_row_or_is_skipped_and_counted(tmp_path):
    _write_images(tmp_path, 1)
    csv = _csv(
        tmp_path / "t.csv", [["img0.png", 0, 1, -1, 1, -1, 1], ["gone.png", 0, 1, -1, 1, -1, 1]]
    )
    with pytest.raises(
        DataError, match=r"image not found: .*gone.png \(row 1 \(line 3\) of .*t.csv\)"
    ):
        read_table(csv)
    table = read_table(csv, skip_missing=True)
    assert len(table) == 1 and table.skipped == 1 and table.skipped_rows == [1]


def test_unreadable_image_raises_naming_file_and_row_or_is_skipped(tmp_path):
    _write_images(tmp_path, 1)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    csv = _csv(
        tmp_path / "t.csv", [["img0.png", 0, 1, -1, 1, -1, 1], ["broken.png", 1, 1, -1, 1, -1, 1]]
    )
    table = read_table(csv)
    tf = build_transform(8)
    with pytest.raises(
        DataError, match=r"cannot read image .*broken.png \(row 1 \(line 3\) of .*t.csv\)"
    ):
        ImageListDataset(table, tf)[1]
    batch = collate_images([ImageListDataset(table, tf, skip_bad=True)[i] for i in range(2)])
    assert batch["index"].tolist() == [0] and batch["skipped"] == [1]


def test_images_are_converted_to_rgb_and_normalised(tmp_path):
    grey = _write_images(tmp_path / "g", 1, mode="L")[0]
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (10, 10), (255, 0, 0, 10)).save(rgba)
    from detectors.data import open_rgb

    tf = build_transform(32)
    for path in (grey, rgba):
        x = tf(open_rgb(str(path), "test"))
        assert x.shape == (3, 32, 32) and x.dtype == torch.uint8
    x = normalize_images(tf(open_rgb(str(rgba), "test"))[None], (0.5,) * 3, (0.5,) * 3)[0]
    assert torch.allclose(x[0], torch.ones(32, 32)) and torch.allclose(
        x[1], -torch.ones(32, 32)
    )  # (v/255 - .5)/.5
    imagenet = normalize_images(
        torch.full((1, 3, 2, 2), 255, dtype=torch.uint8),
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    assert imagenet[0, :, 0, 0].tolist() == pytest.approx(
        [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], rel=1e-6
    )


def test_augmentations_are_off_by_default_and_validated():
    tf = build_transform(16)
    names = [getattr(t, "__name__", type(t).__name__) for t in tf.transforms]
    assert names == ["_ResizeIfNeeded", "_to_uint8_tensor"]
    tf = build_transform(16, {"flip": True, "jpeg": True, "blur": True, "color": True})
    assert len(tf.transforms) == 6
    img = Image.new("RGB", (20, 20), (10, 200, 30))
    assert tf(img).shape == (3, 16, 16)
    with pytest.raises(DataError, match="unknown augmentation"):
        build_transform(16, {"rotate": True})


def test_pair_batches_are_reals_then_fakes_and_seeded(small_data):
    fakes, reals = read_training_tables(small_data, "train", dataset="ff++", skip_missing=False)
    tf = build_transform(64)
    ds = PairDataset(fakes, reals, tf, seed=3)
    batch = collate_pairs([ds[i] for i in range(3)])
    assert batch["image"].shape == (6, 3, 64, 64)
    assert batch["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert (
        batch["label_specific"][:3].tolist() == [0, 0, 0]
        and (batch["label_specific"][3:] >= 1).all()
    )
    assert batch["label_specific"][3:].tolist() == fakes.specific[:3].tolist()
    assert (
        batch["group"].tolist()
        == reals.groups[ds.partners[:3]].tolist() + fakes.groups[:3].tolist()
    )
    epoch0 = ds.partners.copy()
    ds.set_epoch(1)
    assert not np.array_equal(ds.partners, epoch0)  # a new random real per epoch
    ds.set_epoch(0)
    assert np.array_equal(ds.partners, epoch0)  # ... determined by (seed, epoch)
    assert ds.partners.min() >= 0 and ds.partners.max() < len(reals)


def test_validation_pairing_is_fixed_across_epochs(small_data):
    fakes, reals = read_training_tables(small_data, "val", dataset="ff++", skip_missing=False)
    tf = build_transform(64)
    a = PairDataset(fakes, reals, tf, seed=5, fixed=True)
    first = a.partners.copy()
    a.set_epoch(7)
    assert np.array_equal(a.partners, first)
    assert np.array_equal(PairDataset(fakes, reals, tf, seed=5, fixed=True).partners, first)


def test_pairs_with_an_unreadable_image_are_dropped_and_counted(tmp_path):
    _write_images(tmp_path, 2)
    (tmp_path / "bad.png").write_bytes(b"xx")
    fakes = read_table(
        _csv(
            tmp_path / "f.csv", [["img0.png", 1, 1, -1, 1, -1, 1], ["bad.png", 1, 1, -1, 1, -1, 1]]
        ),
        role="fake",
    )
    reals = read_table(_csv(tmp_path / "r.csv", [["img1.png", 0, 1, -1, 1, -1, 1]]), role="real")
    ds = PairDataset(fakes, reals, build_transform(8), seed=0, skip_bad=True)
    batch = collate_pairs([ds[0], ds[1]])
    assert batch["n_skipped"] == 1 and batch["image"].shape[0] == 2


def test_ldam_counts_come_from_the_training_csvs(small_data):
    fakes, reals = read_training_tables(small_data, "train", dataset="ff++", skip_missing=False)
    counts = group_counts([fakes, reals], 8)
    expected = np.bincount(np.concatenate([fakes.groups, reals.groups]), minlength=8)
    assert counts == expected.tolist() and sum(counts) == len(fakes) + len(reals)


def test_fake_file_without_spe_label_gets_one_manipulation_id(tmp_path, caplog):
    _write_images(tmp_path, 1)
    csv = _csv(tmp_path / "f.csv", [["img0.png", 1, 1, -1, 1, -1, 1]])
    table = read_table(csv, role="fake")
    assert table.specific.tolist() == [1]
    assert "no spe_label column" in caplog.text
