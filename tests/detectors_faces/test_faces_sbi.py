"""Self-blended images: the fake differs from its real only near the face; the pair dataset keeps
the [reals; fakes] layout."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from detectors.data import PairDataset, build_transform, collate_pairs, read_table
from detectors.sbi import (
    BlendOptions,
    SelfBlendedPairDataset,
    blend_radius,
    ellipse_mask,
    load_landmarks,
    self_blend,
    write_self_blended,
)

PAD = (
    64  # background added around the 128 px crops, so that "outside the face" is most of the image
)


def _faces(prepared, n=4):
    table = pd.read_csv(prepared["data"] / "realtrain.csv")
    out = []
    for rel in table["img_path"][:n]:
        path = prepared["data"] / rel
        image = np.asarray(Image.open(path).convert("RGB"))
        out.append((path, image, load_landmarks(path)))
    return out


def _dilated(hull: np.ndarray, radius: int) -> np.ndarray:
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(hull.astype(np.uint8), disk) > 0


def test_fake_differs_from_its_real_only_inside_the_dilated_mask(prepared):
    for path, image, landmarks in _faces(prepared):
        padded = np.pad(image, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")
        points = landmarks + PAD
        size = padded.shape[0]
        radius = blend_radius(size)
        for seed in range(6):
            blend = self_blend(padded, points, np.random.default_rng(seed))
            differs = (blend.fake != blend.real).any(axis=2)
            near = _dilated(blend.hull, radius)
            assert near.mean() < 0.75  # the check below covers a real part of the image
            assert not differs[~near].any(), (path.name, seed)
            assert (blend.mask[~near] == 0).all()
            assert differs[blend.hull > 0].mean() > 0.3  # and the face itself did change
            assert 0 <= blend.mask.min() and blend.mask.max() <= 1
            assert blend.mask.max() == pytest.approx(blend.params["ratio"], abs=1e-3)
        assert blend.real.dtype == blend.fake.dtype == np.uint8 and blend.real.shape == padded.shape


def test_the_real_is_the_blend_target_and_the_fake_mixes_in_the_source(prepared):
    _, image, landmarks = _faces(prepared, 1)[0]
    seen = set()
    for seed in range(12):
        blend = self_blend(image, landmarks, np.random.default_rng(seed))
        seen.add(blend.params["altered"])
        if blend.params["altered"] == "source":
            assert np.array_equal(blend.real, image)  # the target is the untouched face
    assert seen == {"source", "target"}


def test_blends_are_reproducible_from_the_generator(prepared):
    _, image, landmarks = _faces(prepared, 1)[0]
    a = self_blend(image, landmarks, np.random.default_rng(7))
    b = self_blend(image, landmarks, np.random.default_rng(7))
    c = self_blend(image, landmarks, np.random.default_rng(8))
    assert np.array_equal(a.fake, b.fake) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.fake, c.fake)


def test_without_landmarks_the_mask_is_an_ellipse():
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    blend = self_blend(image, None, np.random.default_rng(0))
    assert blend.params["mask"] == "ellipse" and np.array_equal(blend.hull, ellipse_mask((96, 96)))
    assert not (blend.fake != blend.real).any(axis=2)[~_dilated(blend.hull, blend_radius(96))].any()


def _reals(prepared):
    return read_table(prepared["data"] / "realtrain.csv", role="real")


def test_pair_items_and_batches_match_the_pair_dataset(prepared):
    reals = _reals(prepared)
    tf = build_transform(64)
    sbi = SelfBlendedPairDataset(reals, tf, seed=0)
    reference = PairDataset(reals, reals, tf, seed=0)  # the existing dataset's item form
    item, ref = sbi[0], reference[0]
    assert item.keys() == ref.keys()
    for side in ("real", "fake"):
        assert item[side].keys() == ref[side].keys()
        assert (
            item[side]["image"].shape == ref[side]["image"].shape
            and item[side]["image"].dtype == ref[side]["image"].dtype
        )
    n = 4
    batch = collate_pairs([sbi[i] for i in range(n)])
    ref_batch = collate_pairs([reference[i] for i in range(n)])
    assert batch.keys() == ref_batch.keys()
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            assert v.shape == ref_batch[k].shape and v.dtype == ref_batch[k].dtype, k
    assert batch["label"].tolist() == [0] * n + [1] * n  # [reals; fakes]
    assert batch["label_specific"].tolist() == [0] * n + [1] * n
    groups = torch.as_tensor(reals.groups[:n])
    assert torch.equal(batch["group"][:n], groups) and torch.equal(batch["group"][n:], groups)
    assert batch["n_skipped"] == 0


@pytest.mark.parametrize("augment", [{"color": True}, {"flip": True, "blur": True, "jpeg": True}])
def test_training_augmentation_is_shared_by_a_real_and_its_fake(prepared, augment):
    reals = _reals(prepared)
    size = 128  # the crops' size: no resize, so pixels can be compared with the mask
    sbi = SelfBlendedPairDataset(reals, build_transform(size), seed=3, flip=False, augment=augment)
    changed = 0
    for i in range(6):
        blend = sbi.pair(i)
        item = sbi[i]
        near = _dilated(
            blend.hull, blend_radius(size) + 16
        )  # + a JPEG block of 16 px (4:2:0 chroma)
        near = torch.from_numpy(near | near[:, ::-1])  # wherever a flip put the face
        real, fake = item["real"]["image"], item["fake"]["image"]
        assert torch.equal(real[:, ~near], fake[:, ~near])
        assert not torch.equal(real[:, near], fake[:, near])
        changed += not torch.equal(real, torch.from_numpy(blend.real).permute(2, 0, 1))
    assert changed  # the augmentation did act


def test_unknown_augmentations_are_refused(prepared):
    from detectors import DataError

    with pytest.raises(DataError, match="unknown augmentation"):
        SelfBlendedPairDataset(
            _reals(prepared), build_transform(64), seed=0, augment={"mixup": True}
        )


def test_fakes_change_with_the_epoch_but_not_when_fixed(prepared):
    reals = _reals(prepared)
    tf = build_transform(64)
    train = SelfBlendedPairDataset(reals, tf, seed=1)
    first = train[0]["fake"]["image"]
    assert torch.equal(
        first, SelfBlendedPairDataset(reals, tf, seed=1)[0]["fake"]["image"]
    )  # seeded
    train.set_epoch(1)
    assert not torch.equal(first, train[0]["fake"]["image"])
    val = SelfBlendedPairDataset(reals, tf, seed=1, fixed=True)
    before = val[0]["fake"]["image"]
    val.set_epoch(5)
    assert torch.equal(before, val[0]["fake"]["image"])


def test_a_missing_landmark_file_gives_an_ellipse_and_a_warning(prepared, tmp_path, caplog):
    table = pd.read_csv(prepared["data"] / "realtrain.csv")
    path = tmp_path / "face.png"
    Image.open(prepared["data"] / table["img_path"][0]).save(path)  # no .npy next to it
    row = table.iloc[:1].copy()
    row["img_path"] = str(path)
    row.to_csv(tmp_path / "realtrain.csv", index=False)
    with caplog.at_level("WARNING", logger="detectors.sbi"):
        sbi = SelfBlendedPairDataset(
            read_table(tmp_path / "realtrain.csv", role="real"), build_transform(64), seed=0
        )
    assert sbi.without_landmarks == 1 and "1 of 1 image(s) have no landmark file" in caplog.text
    assert sbi.pair(0).params["mask"] == "ellipse"


def test_fakes_are_not_blended_again(prepared, tmp_path):
    from detectors import DataError

    bad = pd.read_csv(prepared["data"] / "realval.csv")
    bad["img_path"] = [str(prepared["data"] / p) for p in bad["img_path"]]
    bad["label"] = 1
    bad.to_csv(tmp_path / "fakes.csv", index=False)
    with pytest.raises(DataError, match="made from reals; row 0 .* has label 1"):
        SelfBlendedPairDataset(
            read_table(tmp_path / "fakes.csv", role="any"), build_transform(64), seed=0
        )


def test_fixed_self_blended_test_set(prepared, tmp_path, capsys):
    from detectors.sbi import main

    assert (
        main(
            [
                "--csv",
                str(prepared["data"] / "test.csv"),
                "--out",
                str(tmp_path / "sbi"),
                "--seed",
                "0",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'sbi' / 'test.csv'}"
    out = pd.read_csv(tmp_path / "sbi" / "test.csv")
    source = pd.read_csv(prepared["data"] / "test.csv")
    n = len(source)
    assert len(out) == 2 * n and out["label"].tolist() == [0] * n + [1] * n
    assert out["video_id"][n:].tolist() == [f"{v}-sbi" for v in source["video_id"]]
    assert (out["intersec_label"][n:].to_numpy() == source["intersec_label"].to_numpy()).all()
    table = read_table(tmp_path / "sbi" / "test.csv")  # every path resolves
    assert len(table) == 2 * n
    again = write_self_blended(prepared["data"] / "test.csv", tmp_path / "again", seed=0)
    first = np.asarray(Image.open(table.paths[n]))
    assert np.array_equal(first, np.asarray(Image.open(read_table(again).paths[n])))  # seeded


def test_blend_radius_grows_with_the_options():
    assert blend_radius(256) > blend_radius(128) > 0
    assert blend_radius(
        256, BlendOptions(blur_kernel=(3, 5), translate=(0.0, 0.0), scale=(1.0, 1.0))
    ) < blend_radius(256)


# ---- the paper's procedure -----------------------------------------------------------------


def test_the_mask_stays_inside_the_moved_hull_and_spills_without_erosion(prepared):
    """The paper erodes the mask before its final blur; blurring twice spills past the hull."""
    for _, image, landmarks in _faces(prepared, 2):
        spill = {True: [], False: []}
        for seed in range(8):
            for erode in (True, False):
                options = BlendOptions(erode_mask=erode)
                blend = self_blend(image, landmarks, np.random.default_rng(seed), options)
                region = blend.region > 0.5  # the hull after the affine map and the deformation
                peak = blend.mask / blend.mask.max()
                spill[erode].append(((peak > 0.05) & ~region).sum() / region.sum())
                if erode:
                    # the affine map moves the hull by at most its translation and scaling
                    shift = blend_radius(image.shape[0], BlendOptions(blur_kernel=(1, 1)))
                    assert not (blend.mask > 0.05)[~_dilated(blend.hull, shift)].any()
        assert max(spill[True]) == 0.0
        assert np.mean(spill[False]) > 0.05  # the former procedure's mask leaves the hull


def test_the_elastic_deformation_moves_the_mask_not_the_face():
    """With the same draws, deforming the source too changes the fake but not the mask; without
    it the fake is the source moved by the recorded affine map alone."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (128, 128, 3)).astype(np.float32)
    image = np.clip(cv2.GaussianBlur(noise, (0, 0), 6) * 4 - 380, 0, 255).astype(np.uint8)
    checked = 0
    for seed in range(40):
        paper = self_blend(image, None, np.random.default_rng(seed))
        if paper.params["altered"] != "target" or paper.params["ratio"] != 1.0:
            continue  # the source is the untouched face and fully blended in where mask == 1
        legacy = self_blend(
            image, None, np.random.default_rng(seed), BlendOptions(elastic_source=True)
        )
        assert np.array_equal(paper.mask, legacy.mask)
        core = paper.mask > 0.999
        scale, (tx, ty) = paper.params["scale"], paper.params["translate"]
        c = (128 - 1) / 2
        affine = np.array([[scale, 0, (1 - scale) * c + tx], [0, scale, (1 - scale) * c + ty]])
        moved = cv2.warpAffine(
            image, affine, (128, 128), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        paper_error = np.abs(paper.fake.astype(int) - moved)[core].mean()
        legacy_error = np.abs(legacy.fake.astype(int) - moved)[core].mean()
        assert paper_error < 1.0 < legacy_error, (seed, paper_error, legacy_error)
        checked += 1
    assert checked >= 2


def test_post_blend_augmentation_is_on_for_training_pairs_only(prepared):
    reals = _reals(prepared)
    size = 128
    augmented = SelfBlendedPairDataset(reals, build_transform(size), seed=3, flip=False)
    plain = SelfBlendedPairDataset(
        reals, build_transform(size), seed=3, flip=False, post_augment=False
    )
    fixed = SelfBlendedPairDataset(reals, build_transform(size), seed=3, flip=False, fixed=True)
    changed = 0
    for i in range(8):
        blend = augmented.pair(i)
        as_drawn = torch.from_numpy(blend.real).permute(2, 0, 1)
        assert torch.equal(plain[i]["real"]["image"], as_drawn)
        item = augmented[i]
        changed += not torch.equal(item["real"]["image"], as_drawn)
        near = torch.from_numpy(_dilated(blend.hull, blend_radius(size) + 16))
        assert torch.equal(item["real"]["image"][:, ~near], item["fake"]["image"][:, ~near])
        fixed_blend = fixed.pair(i)
        assert torch.equal(
            fixed[i]["real"]["image"], torch.from_numpy(fixed_blend.real).permute(2, 0, 1)
        )
    assert changed >= 2  # colour (p 0.3 each) or JPEG (p 0.5) acted on most pairs
