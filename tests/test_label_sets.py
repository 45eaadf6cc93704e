"""Conditioning on several label sets ("a 7 moving NE"), the image stage and its hand-over to the video model."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from data.annotations import find_class_names, read_list_file
from models.diffusion import labels as label_sets
from models.diffusion.diffusion_module import image_weights
from models.diffusion.dit import VideoDiT, image_to_video_state_dict

from .conftest import compose_config

COMPASS = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]
DIGITS = [str(k) for k in range(10)]


def dit(**kwargs) -> VideoDiT:
    args = dict(input_size=8, num_frames=4, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4,
                label_embed_std=1.0, timestep_embed_init="torch")
    return VideoDiT(**{**args, **kwargs})


def randomise_(model: VideoDiT, std: float = 0.1) -> VideoDiT:
    """Move every weight off its (often zero) initialisation, so equalities below are not 0 == 0."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(std * torch.randn_like(param))
    return model


def test_balanced_grid_covers_every_combination_and_balances_every_prefix():
    grid = label_sets.balanced_grid({"digit": 10, "direction": 8}, 256)
    pairs = collections.Counter(zip(grid["digit"], grid["direction"]))
    assert len(pairs) == 80 and set(pairs.values()) == {3, 4}  # 256 = 3 x 80 + 16
    assert set(collections.Counter(grid["direction"]).values()) == {32}
    assert set(collections.Counter(grid["digit"]).values()) == {25, 26}
    for n in (8, 16, 40, 80, 100):  # every prefix is as balanced as its length allows
        for name, size in (("digit", 10), ("direction", 8)):
            counts = collections.Counter(grid[name][:n])
            assert max(counts.values()) - min(counts.get(k, 0) for k in range(size)) <= 1, (name, n)
    assert label_sets.balanced_grid({"label": 3}, 5) == {"label": [0, 1, 2, 0, 1]}
    with pytest.raises(ValueError, match="count >= 1"):
        label_sets.balanced_grid({"digit": 10}, 0)


def test_label_requests_take_names_or_indices_and_leave_other_sets_free():
    classes = {"digit": DIGITS, "direction": COMPASS}
    sizes = {"digit": 10, "direction": 8}
    assert label_sets.parse_request({"digit": "7", "direction": "NE"}, classes, sizes) == {"digit": 7, "direction": 1}
    assert label_sets.parse_request({"direction": "3"}, {"direction": None}, sizes) == {"digit": 10, "direction": 3}
    with pytest.raises(ValueError, match="direction='NNE' is not a class"):
        label_sets.parse_request({"direction": "NNE"}, classes, sizes)
    with pytest.raises(ValueError, match=r"\['colour'\] are not among"):
        label_sets.parse_request({"colour": "red"}, classes, sizes)


def test_label_dropout_is_drawn_per_set():
    labels = {"digit": torch.full((4000,), 3), "direction": torch.full((4000,), 5)}
    dropped = label_sets.drop(labels, {"digit": 10, "direction": 8}, {"digit": 0.5, "direction": 0.0},
                              generator=torch.Generator().manual_seed(0))
    assert torch.equal(dropped["direction"], labels["direction"])  # p = 0: never
    share = (dropped["digit"] == 10).double().mean().item()
    assert 0.47 < share < 0.53 and set(dropped["digit"].tolist()) == {3, 10}
    both = label_sets.drop(labels, {"digit": 10, "direction": 8}, 0.3, generator=torch.Generator().manual_seed(1))
    null_digit, null_direction = both["digit"] == 10, both["direction"] == 8
    assert 0.27 < null_digit.double().mean() < 0.33 and 0.27 < null_direction.double().mean() < 0.33
    together = (null_digit & null_direction).double().mean().item()
    assert 0.07 < together < 0.11  # independent draws: 0.3 x 0.3


def test_several_label_sets_add_their_embeddings_and_a_missing_set_is_null():
    model = randomise_(dit(num_classes={"digit": 10, "direction": 8}))
    assert model.null_label == {"digit": 10, "direction": 8}
    digits, directions = torch.tensor([7, 0, 3]), torch.tensor([1, 4, 7])
    tables = {name: embedder.embedding_table.weight for name, embedder in model.y_embedders.items()}
    expected = tables["digit"][digits] + tables["direction"][directions]  # the closed form: a sum of table rows
    got = model.embed_labels({"digit": digits, "direction": directions}, 3, torch.device("cpu"))
    assert torch.allclose(got, expected)
    x, timesteps = torch.randn(3, 4, 4, 8, 8), torch.tensor([3, 300, 900])
    only_digit = model(x, timesteps, {"digit": digits})
    assert torch.equal(only_digit, model(x, timesteps, {"digit": digits, "direction": torch.full((3,), 8)}))
    assert not torch.allclose(only_digit, model(x, timesteps, {"digit": digits, "direction": directions}))
    with pytest.raises(ValueError, match="pass a dict"):
        model(x, timesteps, digits)
    with pytest.raises(ValueError, match=r"\['colour'\] are not among"):
        model(x, timesteps, {"colour": digits})


def test_one_label_set_keeps_dits_module_names_so_old_checkpoints_load():
    keys = dit(num_classes=8).state_dict().keys()
    assert "y_embedder.embedding_table.weight" in keys and not any(key.startswith("y_embedders") for key in keys)
    multi = dit(num_classes={"digit": 10, "direction": 8}).state_dict().keys()
    assert {"y_embedders.digit.embedding_table.weight", "y_embedders.direction.embedding_table.weight"} <= set(multi)


@pytest.mark.parametrize("image_sets, convs", [({"digit": 10}, {}), (10, {}),
                                               ({"digit": 10}, {"conv_stem_depth": 2, "final_conv": True})])
def test_image_weights_start_the_video_model_as_the_image_model_on_every_frame(image_sets, convs):
    torch.manual_seed(0)
    image = randomise_(dit(num_frames=1, num_classes=image_sets, layout="space_only", temporal_pos_embed="none",
                           **convs))
    video_sets = {"digit": 10, "direction": 8} if isinstance(image_sets, dict) else 10
    video = dit(num_frames=4, num_classes=video_sets, layout="divided", temporal_pos_embed="learned", **convs)
    video.load_state_dict(image_to_video_state_dict(image.state_dict(), video), strict=True)
    x, timesteps = torch.randn(3, 4, 4, 8, 8), torch.tensor([10, 500, 990])
    digits = torch.tensor([1, 2, 3])
    if isinstance(image_sets, dict):
        out = video(x, timesteps, {"digit": digits, "direction": torch.tensor([0, 5, 7])})  # direction adds 0 at first
        per_frame = [image(x[:, :, k : k + 1], timesteps, {"digit": digits}) for k in range(4)]
    else:
        out = video(x, timesteps, digits)
        per_frame = [image(x[:, :, k : k + 1], timesteps, digits) for k in range(4)]
    assert torch.allclose(out, torch.cat(per_frame, dim=2), atol=1e-6)
    # ... and the temporal layers are still trainable (their output projection gets a gradient)
    video(x, timesteps, {"digit": digits} if isinstance(image_sets, dict) else digits).square().mean().backward()
    assert video.blocks[0].temporal_attn.proj.weight.grad.abs().sum() > 0


def test_new_label_init_normal_keeps_the_video_models_own_table_for_a_set_the_image_model_lacks():
    torch.manual_seed(0)
    image = randomise_(dit(num_frames=1, num_classes={"digit": 10}, layout="space_only", temporal_pos_embed="none"))
    video = dit(num_frames=4, num_classes={"digit": 10, "direction": 8}, layout="divided", temporal_pos_embed="learned",
                label_embed_std=1.0)
    own = video.state_dict()["y_embedders.direction.embedding_table.weight"].clone()
    zero = image_to_video_state_dict(image.state_dict(), video)
    normal = image_to_video_state_dict(image.state_dict(), video, new_label_init="normal")
    key = "y_embedders.direction.embedding_table.weight"
    assert zero[key].abs().max() == 0 and torch.equal(normal[key], own)
    assert abs(normal[key].std().item() - 1.0) < 0.2  # N(0, label_embed_std), one row per class and the null row
    for name in zero:  # everything else is mapped the same way
        if name != key:
            assert torch.equal(zero[name], normal[name]), name
    # the directions now change the output at step 0 (with zero tables they do not)
    x, timesteps, digits = torch.randn(2, 4, 4, 8, 8), torch.tensor([100, 700]), torch.tensor([3, 3])
    outputs = {}
    for init, state in (("zero", zero), ("normal", normal)):
        video.load_state_dict(state, strict=True)
        with torch.no_grad():
            east, west = (video(x, timesteps, {"digit": digits, "direction": torch.tensor([d, d])}) for d in (0, 4))
        outputs[init] = (east - west).abs().max().item()
    assert outputs["zero"] == 0 and outputs["normal"] > 1e-3
    with pytest.raises(ValueError, match="new_label_init='ones' must be one of"):
        image_to_video_state_dict(image.state_dict(), video, new_label_init="ones")


def test_temporal_label_sets_reach_only_the_temporal_attentions():
    torch.manual_seed(0)
    sets = {"digit": 10, "direction": 8}
    image = randomise_(dit(num_frames=1, num_classes={"digit": 10}, layout="space_only", temporal_pos_embed="none"))
    video = dit(num_frames=4, num_classes=sets, layout="divided", temporal_pos_embed="learned",
                temporal_label_sets=["direction"])
    video.load_state_dict(image_to_video_state_dict(image.state_dict(), video, new_label_init="normal"), strict=True)
    x, timesteps, digits = torch.randn(3, 4, 4, 8, 8), torch.tensor([10, 500, 990]), torch.tensor([1, 2, 3])
    per_frame = torch.cat([image(x[:, :, k : k + 1], timesteps, {"digit": digits}) for k in range(4)], dim=2)
    for direction in (0, 5):  # a random direction table, yet at step 0 the image model on every frame, exactly
        out = video(x, timesteps, {"digit": digits, "direction": torch.full((3,), direction)})
        assert torch.allclose(out, per_frame, atol=1e-6)
    # a few SGD steps later the direction table learns, each class its own way (no zero-table saddle)
    table = video.y_embedders["direction"].embedding_table.weight
    optimizer = torch.optim.SGD(video.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        video(x, timesteps, {"digit": digits, "direction": torch.tensor([0, 1, 2])}).sub(x).square().mean().backward()
        optimizer.step()
    assert (table.grad[0] - table.grad[1]).abs().max() > 1e-6 and table.grad[3:].abs().max() == 0
    # with every weight moved off its init but the temporal projections zero, the direction changes nothing ...
    randomise_(video)
    with torch.no_grad():
        for block in video.blocks:
            block.temporal_attn.proj.weight.zero_()
            block.temporal_attn.proj.bias.zero_()
        east, west = (video(x, timesteps, {"digit": digits, "direction": torch.full((3,), d)}) for d in (0, 4))
    assert torch.equal(east, west)
    # ... whereas a model whose direction reaches every layer (DiT's summed c) with the same weights depends on it
    summed = dit(num_frames=4, num_classes=sets, layout="divided", temporal_pos_embed="learned")
    summed.load_state_dict(video.state_dict())
    with torch.no_grad():
        assert (summed(x, timesteps, {"digit": digits, "direction": torch.full((3,), 0)}) - east).abs().max() > 1e-3
        # and a zero direction table makes the two models one and the same
        table.zero_(), summed.y_embedders["direction"].embedding_table.weight.zero_()
        randomise_(video.blocks[0].temporal_attn), summed.load_state_dict(video.state_dict())
        labels = {"digit": digits, "direction": torch.tensor([0, 3, 8])}
        assert torch.allclose(video(x, timesteps, labels), summed(x, timesteps, labels), atol=1e-6)
    with pytest.raises(ValueError, match=r"temporal_label_sets \['speed'\] are not among"):
        dit(num_classes=sets, temporal_label_sets=["speed"])
    with pytest.raises(ValueError, match="needs separate temporal attentions"):
        dit(num_classes=sets, layout="space_only", temporal_label_sets=["direction"])


def test_a_guidance_scale_per_label_set_is_nested_guidance():
    from models.diffusion.denoising import guided_prediction

    torch.manual_seed(0)
    net = randomise_(dit(num_classes={"digit": 10, "direction": 8})).eval()
    x, timesteps = torch.randn(2, 4, 4, 8, 8), torch.tensor([30, 600])
    labels = {"digit": torch.tensor([3, 7]), "direction": torch.tensor([1, 6])}
    null = {"digit": torch.tensor([10, 10]), "direction": torch.tensor([8, 8])}
    with torch.no_grad():  # the slow reference: each prediction on its own (InstructPix2Pix eq. 3)
        e0 = net(x, timesteps, null)
        e1 = net(x, timesteps, {"digit": labels["digit"], "direction": null["direction"]})
        e2 = net(x, timesteps, labels)
        nested = guided_prediction(net, x, timesteps, labels, {"digit": 4.0, "direction": 1.5})
        assert torch.allclose(nested, e0 + 4.0 * (e1 - e0) + 1.5 * (e2 - e1), atol=1e-5)
        reverse = guided_prediction(net, x, timesteps, labels, {"direction": 4.0, "digit": 1.5})  # order matters
        e1_dir = net(x, timesteps, {"digit": null["digit"], "direction": labels["direction"]})
        assert torch.allclose(reverse, e0 + 4.0 * (e1_dir - e0) + 1.5 * (e2 - e1_dir), atol=1e-5)
        given_direction = guided_prediction(net, x, timesteps, labels, {"direction": 1.0, "digit": 4.0})
        assert torch.allclose(given_direction, e1_dir + 4.0 * (e2 - e1_dir), atol=1e-5)  # e_0 is skipped, not needed
        joint = guided_prediction(net, x, timesteps, labels, 3.0)  # equal scales telescope to joint guidance
        assert torch.allclose(guided_prediction(net, x, timesteps, labels, {"digit": 3.0, "direction": 3.0}), joint,
                              atol=1e-5)
        assert torch.equal(guided_prediction(net, x, timesteps, labels, {"digit": 1, "direction": 1}), e2)
    with pytest.raises(ValueError, match="one scale for every set"):
        guided_prediction(net, x, timesteps, labels, {"digit": 4.0})
    with pytest.raises(ValueError, match="several label sets"):
        guided_prediction(net, x, timesteps, labels["digit"], {"digit": 4.0})


def test_frame_guidance_adds_the_given_frames_term_with_every_label_given():
    from models.diffusion.denoising import guided_prediction

    torch.manual_seed(0)
    net = randomise_(dit(num_classes={"digit": 10, "direction": 8})).eval()
    x, timesteps = torch.randn(2, 4, 4, 8, 8), torch.tensor([30, 600])
    x_null = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:]], dim=2)  # frame 0 given as the zero frame
    labels = {"digit": torch.tensor([3, 7]), "direction": torch.tensor([1, 6])}
    null = {"digit": torch.tensor([10, 10]), "direction": torch.tensor([8, 8])}
    with torch.no_grad():  # the slow reference: each prediction on its own
        e0, e1 = net(x, timesteps, null), net(x, timesteps, {"digit": null["digit"], "direction": labels["direction"]})
        e2, e_null = net(x, timesteps, labels), net(x_null, timesteps, labels)
        scales = {"direction": 1.5, "digit": 4.0}
        guided = guided_prediction(net, x, timesteps, labels, scales, frame_guidance_scale=2.5, num_cond_frames=1)
        nested = e0 + 1.5 * (e1 - e0) + 4.0 * (e2 - e1)
        assert torch.allclose(guided, nested + 1.5 * (e2 - e_null), atol=1e-5)
        joint = guided_prediction(net, x, timesteps, labels, 3.0, frame_guidance_scale=2.0, num_cond_frames=1)
        assert torch.allclose(joint, e0 + 3.0 * (e2 - e0) + (e2 - e_null), atol=1e-5)
        only = guided_prediction(net, x, timesteps, labels, 1.0, frame_guidance_scale=2.0, num_cond_frames=1)
        assert torch.allclose(only, e_null + 2.0 * (e2 - e_null), atol=1e-5)  # plain guidance on the frame
        batches = []
        hook = net.register_forward_hook(lambda module, args, output: batches.append(len(args[0])))
        assert torch.allclose(guided_prediction(net, x, timesteps, labels, scales, frame_guidance_scale=1.0,
                                                num_cond_frames=1), nested, atol=1e-5)
        guided_prediction(net, x, timesteps, labels, scales, frame_guidance_scale=2.5, num_cond_frames=1)
        hook.remove()
        assert batches == [3 * 2, 4 * 2]  # one batched pass each; the frame term is one prediction more
    with pytest.raises(ValueError, match="no frames are given"):
        guided_prediction(net, x, timesteps, labels, scales, frame_guidance_scale=2.0)
    with pytest.raises(ValueError, match="finite"):
        guided_prediction(net, x, timesteps, labels, scales, frame_guidance_scale=float("nan"), num_cond_frames=1)


def test_sample_videos_reads_a_guidance_scale_per_set():
    from scripts.sample_videos import parse_args

    base = ["--ckpt", "c", "--num-samples", "1", "--out", "o", "--guidance-scale"]
    scales = parse_args([*base, "digit=4,direction=1"]).guidance_scale
    assert scales == {"digit": 4.0, "direction": 1.0} and list(scales) == ["digit", "direction"]
    assert parse_args([*base, "2.5"]).guidance_scale == 2.5
    with pytest.raises(SystemExit):
        parse_args([*base, "digit=,direction=1"])


def test_image_weights_that_do_not_fit_raise_with_the_key():
    image = dit(num_frames=1, num_classes={"digit": 10}, layout="space_only", temporal_pos_embed="none")
    with pytest.raises(ValueError, match="not 'interleaved'"):
        image_to_video_state_dict(image.state_dict(), dit(num_classes={"digit": 10}, layout="interleaved"))
    with pytest.raises(ValueError, match="does not fit"):
        image_to_video_state_dict(image.state_dict(), dit(num_classes={"digit": 10}, embed_dim=64))
    video = dit(num_classes={"digit": 10}, layout="divided")
    with pytest.raises(ValueError, match="temporal attention layers"):
        image_to_video_state_dict(video.state_dict(), video)


def test_a_video_checkpoint_restarts_from_its_ema_weights_and_one_of_another_net_raises(tmp_path):
    video = dit(num_classes={"digit": 10, "direction": 8}, layout="divided")
    with torch.no_grad():
        for param in video.parameters():
            param.normal_()
    path = tmp_path / "video.ckpt"
    torch.save({"state_dict": {f"ema.{key}": value for key, value in video.state_dict().items()}}, path)
    fresh = dit(num_classes={"digit": 10, "direction": 8}, layout="divided")
    fresh.load_state_dict(image_weights(path, fresh), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), video.state_dict().values()))
    with pytest.raises(ValueError, match="video-stage checkpoint whose weights do not fit"):
        image_weights(path, dit(num_classes={"digit": 10, "direction": 8}, layout="divided", embed_dim=64))


def test_a_video_checkpoint_of_another_recipe_is_refused_by_name(tmp_path, caplog):
    """Switches without parameters (RoPE, first-frame attention, the label sets' order) leave names and shapes as
    they are; the recipe saved beside the weights is what tells such a run apart."""
    from hydra.utils import instantiate

    video = dit(num_classes={"digit": 10, "direction": 8}, layout="divided")
    weights = {f"ema.{key}": value for key, value in video.state_dict().items()}
    path = tmp_path / "video.ckpt"
    torch.save({"state_dict": weights, "net_recipe": video.recipe}, path)
    same = dit(num_classes={"digit": 10, "direction": 8}, layout="divided")
    same.load_state_dict(image_weights(path, same), strict=True)
    with pytest.raises(ValueError, match="temporal_rope: False there, True here"):
        image_weights(path, dit(num_classes={"digit": 10, "direction": 8}, layout="divided", temporal_rope=True))
    with pytest.raises(ValueError, match="first_frame_attention: 'none' there, 'temporal' here"):
        image_weights(path, dit(num_classes={"digit": 10, "direction": 8}, layout="divided",
                                first_frame_attention="temporal"))
    with pytest.raises(ValueError, match="num_classes"):  # same tables, other order: other class layout
        image_weights(path, dit(num_classes={"direction": 8, "digit": 10}, layout="divided"))
    torch.save({"state_dict": weights}, path)  # saved before the recipe was recorded: names and shapes only
    with caplog.at_level("WARNING"):
        image_weights(path, dit(num_classes={"digit": 10, "direction": 8}, layout="divided", temporal_rope=True))
    assert "no recorded net recipe" in caplog.text
    older = {key: value for key, value in video.recipe.items() if key != "first_frame_attention"}
    torch.save({"state_dict": weights, "net_recipe": older}, path)  # saved before a switch joined the recipe
    caplog.clear()
    with caplog.at_level("WARNING"):
        image_weights(path, dit(num_classes={"digit": 10, "direction": 8}, layout="divided"))
    assert "predates ['first_frame_attention']" in caplog.text
    with pytest.raises(ValueError, match="temporal_rope"):  # the switches it did save are still compared
        image_weights(path, dit(num_classes={"digit": 10, "direction": 8}, layout="divided", temporal_rope=True))
    # the LightningModule writes the recipe into every checkpoint, and it loads as plain data
    cfg = compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=null", "model.net.depth=2",
                                   "model.net.embed_dim=32", "model.net.num_heads=4",
                                   "model.net.first_frame_attention=temporal"])
    module = instantiate(cfg.model)
    checkpoint = {}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    assert torch.load(path, weights_only=True)["net_recipe"] == module.net.recipe
    assert "rng_state" in checkpoint  # ExactResume's part of the checkpoint is still written
    assert module.net.recipe["first_frame_attention"] == "temporal"


def write_multi_set_cache(folder: Path, num_clips: int = 32, frames: int = 8) -> Path:
    """A latent cache with direction as its own labels and digit as a further set (as cache_latents writes it)."""
    from data.latents import CACHE_FORMAT_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    record = {"latents": torch.randn(num_clips, 4, frames, 16, 16, generator=generator),
              "labels": torch.arange(num_clips) % 8, "paths": [f"{i}.mp4" for i in range(num_clips)],
              "label_sets": {"digit": (torch.arange(num_clips) * 3) % 10, "direction": torch.arange(num_clips) % 8},
              "meta": {"format_version": CACHE_FORMAT_VERSION, "downsample_factor": 4, "label_set": "direction",
                       "label_set_classes": {"digit": DIGITS, "direction": COMPASS}}}
    for split in ("train", "val", "test"):
        torch.save(record, folder / f"{split}.pt")
    (folder / "classes.txt").write_text("\n".join(COMPASS) + "\n")
    return folder


def test_cache_label_sets_single_frames_and_time_reversal(tmp_path):
    from data.latents import LatentDataModule

    root = write_multi_set_cache(tmp_path / "cache")
    module = LatentDataModule(str(root), time_reversal=True, seed=1)
    module.setup("fit")
    train, raw = module.datasets["train"], module.datasets["val"]
    flipped = 0
    for index in range(32):
        item = train[(index, 2)]
        assert item["label_digit"] == raw.label_sets["digit"][index]  # a reversed 7 is still a 7
        assert item["label_direction"] == item["label"]  # the cache's own set is relabelled with it
        flipped += int(item["label"] != raw.labels[index])
    assert 6 <= flipped <= 26
    assert module.label_set_classes == {"digit": DIGITS, "direction": COMPASS}

    frames = LatentDataModule(str(root), num_frames=1, single_frames=True)
    frames.setup("fit")
    dataset = frames.datasets["train"]
    assert len(dataset) == 32 * 8
    item = dataset[(8 * 5 + 3, 0)]  # frame 3 of clip 5
    assert torch.equal(item["latents"], raw.latents[5][:, 3:4]) and item["label_digit"] == raw.label_sets["digit"][5]
    with pytest.raises(ValueError, match="single_frames=true serves one frame"):
        LatentDataModule(str(root), num_frames=8, single_frames=True)


def test_first_frames_are_where_each_clip_as_played_starts(tmp_path):
    from data.compass import opposite_directions
    from data.latents import LatentClipDataset, LatentDataModule

    root = write_multi_set_cache(tmp_path / "cache")
    raw = LatentClipDataset(root / "train.pt")
    module = LatentDataModule(str(root), num_frames=1, first_frames=True, time_reversal=True, seed=3)
    module.setup("fit")
    train = module.datasets["train"]
    assert len(train) == 32  # one item per clip
    opposite = opposite_directions(COMPASS)
    forward = backward = 0
    for index in range(32):
        item = train[(index, 1)]
        direction, digit = int(raw.labels[index]), raw.label_sets["digit"][index]
        assert item["latents"].shape == (4, 1, 16, 16) and item["label_digit"] == digit
        if item["label"] == direction:  # played forwards: frame 1 of the clip
            assert torch.equal(item["latents"], raw.latents[index][:, :1])
            forward += 1
        else:  # played backwards: the clip's last frame, starting the opposite direction
            assert item["label"] == opposite[direction] == item["label_direction"]
            assert torch.equal(item["latents"], raw.latents[index][:, -1:])
            backward += 1
    assert forward and backward
    evaluation = module.load_split("val")
    assert torch.equal(evaluation[5]["latents"], raw.latents[5][:, :1])  # plain keys are never reversed
    with pytest.raises(ValueError, match="first_frames=true serves each clip's first frame"):
        LatentDataModule(str(root), num_frames=8, first_frames=True)
    with pytest.raises(ValueError, match="exclude each other"):
        LatentClipDataset(root / "train.pt", single_frames=True, first_frames=True)


def test_label_sets_are_matched_to_the_encoded_clips_by_path(tmp_path):
    from data.latents import split_label_set

    (tmp_path / "a.mp4").touch()
    (tmp_path / "b.mp4").touch()
    (tmp_path / "test_digit.txt").write_text("b.mp4 7\na.mp4 2\n")
    paths = [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert split_label_set(paths, tmp_path / "test_digit.txt", tmp_path).tolist() == [2, 7]
    with pytest.raises(ValueError, match="has no label for"):
        split_label_set([*paths, str(tmp_path / "c.mp4")], tmp_path / "test_digit.txt", tmp_path)


def test_specific_class_files_win_over_classes_txt(tmp_path):
    (tmp_path / "classes.txt").write_text("E\nW\n")
    (tmp_path / "classes_digit.txt").write_text("0\n1\n")
    assert find_class_names(tmp_path / "samples_digit.txt") == ["0", "1"]
    assert find_class_names(tmp_path / "samples.txt") == ["E", "W"]


def multi_set_config(cache: Path, autoencoder: Path, out: Path, *overrides: str):
    return compose_config("train", [
        "experiment=mmnist_dit_digits", f"data.root={cache}", "data.batch_size=4", "data.num_workers=0",
        f"model.autoencoder_path={autoencoder}", "model.net.embed_dim=32", "model.net.num_heads=4",
        "model.net.depth=2", "model.num_log_samples=2", "model.sampling.num_inference_steps=2",
        "callbacks.motion_curve.every_n_steps=2", "callbacks.motion_curve.num_samples=8",
        "callbacks.motion_curve.num_inference_steps=2", "trainer.max_steps=2", "trainer.limit_val_batches=1",
        "trainer.check_val_every_n_epoch=1", "test=false", f"paths.output_dir={out}", "~callbacks.progress_bar",
        "+trainer.enable_model_summary=false", *overrides,
    ])


def test_image_stage_then_video_model_asked_for_digit_and_direction(tmp_path, tiny_autoencoder):
    from models.diffusion.generate import generate_to_folder, load_model
    from models.callbacks.motion_curve import CURVE_FILE
    from train import train

    cache = write_multi_set_cache(tmp_path / "cache")
    image_run = tmp_path / "image"
    train(multi_set_config(cache, tiny_autoencoder, image_run, "experiment=mmnist_dit_image", "model.init_from=null",
                           "callbacks.motion_curve.every_n_steps=1000"))
    video_run = tmp_path / "video"
    train(multi_set_config(cache, tiny_autoencoder, video_run,  # the direction reaches the temporal layers only
                           f"model.init_from={image_run / 'checkpoints' / 'last.ckpt'}",
                           "model.new_label_init=normal", "model.net.temporal_label_sets=[direction]"))
    assert (video_run / CURVE_FILE).read_text().splitlines()[0] == "step,flow_direction_accuracy,speed_px_per_frame"

    # the video run started from the image run's EMA weights: its spatial weights moved only by two steps
    image = load_model(image_run / "checkpoints" / "last.ckpt").ema.state_dict()
    video = load_model(video_run / "checkpoints" / "last.ckpt")
    assert video.hparams.conditioning == ["digit", "direction"]
    drift = (video.net.state_dict()["blocks.0.attn.qkv.weight"] - image["blocks.0.attn.qkv.weight"]).abs().max()
    assert drift < 0.05

    out = generate_to_folder(video_run / "checkpoints" / "last.ckpt", tmp_path / "grid", num_samples=10, steps=2,
                             batch_size=4, grey=True, progress=False)
    assert out.name == "samples.txt" and find_class_names(out) == COMPASS  # the data's own set: direction
    directions = [s.label for s in read_list_file(out, out.parent)]
    digits = [s.label for s in read_list_file(out.parent / "samples_digit.txt", out.parent)]
    grid = label_sets.balanced_grid({"digit": 10, "direction": 8}, 10)
    assert digits == grid["digit"] and directions == grid["direction"]
    assert find_class_names(out.parent / "samples_digit.txt") == DIGITS

    assert video.net.temporal_label_sets == ("direction",)
    asked = generate_to_folder(video_run / "checkpoints" / "last.ckpt", tmp_path / "asked", num_samples=2, steps=2,
                               progress=False, requests=[{"digit": "7", "direction": "NE"}],
                               guidance_scale={"direction": 1.0, "digit": 3.0})
    assert [s.label for s in read_list_file(asked, asked.parent)] == [1, 1]
    assert [s.label for s in read_list_file(asked.parent / "samples_digit.txt", asked.parent)] == [7, 7]
    with pytest.raises(ValueError, match="not a class"):
        generate_to_folder(video_run / "checkpoints" / "last.ckpt", tmp_path / "bad", num_samples=1, steps=2,
                           progress=False, requests=[{"direction": "up"}])

    # what the run uses: scripts/loss_probe.py on its latent cache, with a result record
    from scripts import loss_probe

    assert loss_probe.main([str(video_run), "--num-clips", "8", "--bands", "2", "--out", str(tmp_path / "probe.json"),
                            "--record", "probe_test", "--results-dir", str(tmp_path / "results")]) == 0
    probe = json.loads((tmp_path / "probe.json").read_text())["loss"]
    record = json.loads((tmp_path / "results" / "probe_test.json").read_text())
    assert list(probe) == ["as given", "digit null", "digit wrong", "direction null", "direction wrong",
                           "temporal attention off", "frames reversed"]
    assert record["rows"]["video: as given"]["ratio 0-500"]["value"] == 1.0
    assert record["rows"]["video: digit wrong"]["loss 500-1000"]["value"] == probe["digit wrong"]["500-1000"]

    # --step0 builds the run's net as it started: the image run's EMA weights exactly, temporal outputs at zero
    from models.run import load_run

    ema_net = load_run(video_run, "last.ckpt").build_net(prefix="ema.").state_dict()  # what the probe reads
    assert torch.equal(ema_net["blocks.0.attn.qkv.weight"], video.ema.state_dict()["blocks.0.attn.qkv.weight"])
    step0_net = loss_probe.step0_net(load_run(video_run, "last.ckpt"), "zero", seed=0).state_dict()
    assert torch.equal(step0_net["blocks.0.attn.qkv.weight"], image["blocks.0.attn.qkv.weight"])
    assert not step0_net["blocks.0.temporal_attn.proj.weight"].any()
    assert not torch.equal(video.net.state_dict()["blocks.0.attn.qkv.weight"], image["blocks.0.attn.qkv.weight"])
    # --step0: the run as it started is the image model on every frame (temporal layers at zero output, no frame
    # index), so neither temporal attention nor frame order changes its loss, and neither does the direction, whose
    # table (zero or random) reaches only the temporal layers (model.net.temporal_label_sets=[direction])
    for init in ("zero", "normal"):
        out = tmp_path / f"step0_{init}.json"
        assert loss_probe.main([str(video_run), "--step0", "--new-label-init", init, "--num-clips", "8", "--bands", "2",
                                "--out", str(out)]) == 0
        step0 = json.loads(out.read_text())["loss"]
        for name in ("temporal attention off", "frames reversed", "direction wrong"):
            assert step0[name] == pytest.approx(step0["as given"], rel=1e-5), (init, name)
    with pytest.raises(SystemExit, match="with --step0 only"):
        loss_probe.main([str(video_run), "--new-label-init", "zero"])
    with pytest.raises(SystemExit, match="needs a run started from an image stage"):
        loss_probe.main([str(image_run), "--step0"])

    # eval.py takes a guidance scale per label set from the command line
    from eval import evaluate

    metrics = evaluate(compose_config("eval", [f"ckpt_path={video_run / 'checkpoints' / 'last.ckpt'}", "num_samples=2",
                                               "steps=2", "guidance_scale={direction: 1, digit: 3}",
                                               f"paths.output_dir={tmp_path / 'eval'}"]))
    assert len(read_list_file(metrics["samples"], Path(metrics["samples"]).parent)) == 2


def test_conditioning_and_class_counts_must_agree():
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    cfg = compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=null", "model.net.depth=2"])
    OmegaConf.update(cfg, "model.num_classes", {"digit": 10}, merge=False)
    OmegaConf.update(cfg, "model.net.num_classes", {"digit": 10}, merge=False)
    with pytest.raises(InstantiationException, match="exactly those sets"):
        instantiate(cfg.model)
    cfg = compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=/nowhere.ckpt",
                                   "model.net.depth=2"])
    module = instantiate(cfg.model)  # the image weights are read when training starts
    with pytest.raises(FileNotFoundError, match="model.init_from=/nowhere.ckpt"):
        module.setup("fit")


def test_one_call_scores_motion_against_directions_and_digits_against_digits(tiny_mmnist, tmp_path):
    from models.metrics.evaluate import evaluate_videos
    from models.metrics.identity import frame_predictions
    from models.recognition.scoring import RecognitionModel

    from .test_metrics_identity import make_frame_run

    make_frame_run(tmp_path / "frame_digit")
    ckpt = tmp_path / "frame_digit" / "checkpoints" / "best.ckpt"
    result = evaluate_videos(tiny_mmnist / "test_direction.txt", digit_labels=tiny_mmnist / "test_digit.txt",
                             digit_classifier=ckpt, groups=["accuracy"], progress=False)
    assert result.metrics["flow_direction_accuracy"] == 1.0  # real clips move the way their direction says
    digits = torch.tensor([s.label for s in read_list_file(tiny_mmnist / "test_digit.txt", tiny_mmnist)])
    videos = [s.path for s in read_list_file(tiny_mmnist / "test_direction.txt", tiny_mmnist)]
    predictions = frame_predictions(RecognitionModel(ckpt), _decode_all_listed(videos))  # (b t)
    expected = (predictions == digits[:, None]).double().mean(dim=1)  # against the digits, not the directions
    key = "digit_accuracy[frameclassifier:frame_digit]"
    torch.testing.assert_close(torch.tensor(result.per_clip[key], dtype=torch.float64), expected)
    (tmp_path / "other.txt").write_text("".join(f"{p} 0\n" for p in videos[:-1]))
    with pytest.raises(ValueError, match="same order"):
        evaluate_videos(tiny_mmnist / "test_direction.txt", digit_labels=tmp_path / "other.txt",
                        digit_classifier=ckpt, groups=["accuracy"], progress=False)


def _decode_all_listed(paths: list[str]) -> torch.Tensor:
    from data.decoding import read_clip

    return torch.stack([read_clip(path, range(8))[:1].float() / 255.0 for path in paths])  # (b 1 t h w)


def test_the_learning_curve_scores_digits_and_identity_with_a_digit_classifier(tmp_path, tiny_autoencoder):
    from models.callbacks.motion_curve import CURVE_FILE
    from train import train

    from .test_metrics_identity import make_frame_run

    make_frame_run(tmp_path / "frame_digit")
    cache = write_multi_set_cache(tmp_path / "cache")
    run = tmp_path / "video"
    train(multi_set_config(cache, tiny_autoencoder, run, "model.init_from=null",
                           f"callbacks.motion_curve.digit_classifier={tmp_path / 'frame_digit/checkpoints/best.ckpt'}"))
    rows = (run / CURVE_FILE).read_text().splitlines()
    assert rows[0] == "step,flow_direction_accuracy,speed_px_per_frame,digit_accuracy,identity_consistency"
    assert [int(row.split(",")[0]) for row in rows[1:]] == [2]
    assert all(0.0 <= float(value) <= 1.0 for value in rows[1].split(",")[3:])


def test_single_frame_samples_skip_the_temporal_metrics_and_still_score_digits(tmp_path):
    from models.diffusion.video_io import write_clips
    from models.metrics.evaluate import evaluate_videos

    from .test_metrics_identity import make_frame_run

    make_frame_run(tmp_path / "frame_digit")
    images = torch.randint(0, 256, (4, 1, 1, 64, 64), dtype=torch.uint8)  # (b c t h w), one frame each
    lines = write_clips(tmp_path / "images", images, [0, 1, 2, 3])
    (tmp_path / "images" / "samples.txt").write_text("\n".join(lines) + "\n")
    result = evaluate_videos(tmp_path / "images" / "samples.txt", groups=["temporal", "accuracy"], progress=False,
                             digit_classifier=tmp_path / "frame_digit" / "checkpoints" / "best.ckpt")
    assert "needs at least 2" in result.skipped["temporal_flickering"]
    assert 0.0 <= result.metrics["digit_accuracy[frameclassifier:frame_digit]"] <= 1.0


def test_trainable_temporal_moves_only_what_the_video_model_adds():
    """AnimateDiff-style training: after real AdamW steps the image layers and the spatial/MLP rows of every adaLN
    linear are bit-identical, and the temporal attentions, the temporal adaLN rows and the label tables moved."""
    from hydra.utils import instantiate

    cfg = compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=null", "model.net.depth=2",
                                   "model.net.embed_dim=32", "model.net.num_heads=4", "model.trainable=temporal",
                                   "model.optimizer.fused=false", "model.optimizer.lr=1e-2"])
    module = instantiate(cfg.model)
    net = module.net
    randomise_(net)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimizer = torch.optim.AdamW(module.parameter_groups(), lr=1e-2, weight_decay=0.05)  # decay must not leak
    x = torch.randn(2, 4, 8, 16, 16)
    labels = {"digit": torch.tensor([1, 2]), "direction": torch.tensor([3, 4])}
    for _ in range(3):
        optimizer.zero_grad()
        net(x, torch.tensor([100, 700]), labels).square().mean().backward()
        optimizer.step()
    after = dict(net.named_parameters())
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert "blocks.0.temporal_attn.qkv.weight" in moved and "blocks.1.temporal_attn.proj.weight" in moved
    assert "y_embedders.direction.embedding_table.weight" in moved and "temp_embed" in moved
    frozen = [name for name in before if ".temporal_attn." not in name and "adaLN_modulation" not in name
              and not name.startswith("y_embedders.") and name != "temp_embed"]
    assert frozen and not moved & set(frozen), sorted(moved & set(frozen))
    dim = 32
    for index in range(2):
        name = f"blocks.{index}.adaLN_modulation.1.weight"
        rows_time = slice(3 * dim, 6 * dim)  # divided: (space, time, mlp) x (shift, scale, gate)
        assert not torch.equal(before[name][rows_time], after[name][rows_time])
        assert torch.equal(before[name][: 3 * dim], after[name][: 3 * dim])
        assert torch.equal(before[name][6 * dim :], after[name][6 * dim :])


def test_trainable_temporal_needs_temporal_layers():
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    with pytest.raises(InstantiationException, match="model.trainable='temporal'.*space_only"):
        instantiate(compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=null",
                                             "model.net.depth=2", "model.trainable=temporal",
                                             "model.net.layout=space_only"]).model)
    with pytest.raises(InstantiationException, match="model.trainable='frozen' must be one of"):
        instantiate(compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=null",
                                             "model.net.depth=2", "model.trainable=frozen"]).model)
    with pytest.raises(InstantiationException, match="model.new_label_init='random' must be one of"):
        instantiate(compose_config("train", ["experiment=mmnist_dit_digits", "model.init_from=null",
                                             "model.net.depth=2", "model.new_label_init=random"]).model)
