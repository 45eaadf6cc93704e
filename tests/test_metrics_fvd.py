"""Set-level feature metrics: the Fréchet distance, FVD extractors (I3D protocol, recognition checkpoints) and
VBench-style feature consistency on per-frame encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import _compute_fid

from models.metrics.checks import to_uint8_frames
from models.metrics.consistency import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TorchScriptImageEncoder,
    feature_consistency,
    load_image_encoder,
    metric_name,
    video_feature_consistency,
)
from models.metrics.fvd import (
    ClipFeatureExtractor,
    I3DExtractor,
    compute_fvd,
    frechet_distance,
    fvd,
    gaussian_statistics,
)
from models.recognition.scoring import RecognitionExtractor, load_recognition_model
from tests.test_metrics_recognition import CROP, NUM_FRAMES, make_run, normalise

# The I3D port and exported CLIP/DINO towers exist only as TorchScript; torch 2.15 flags every torch.jit call.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

# ---------------------------------------------------------------------------------------------- Fréchet distance


def random_covariance(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_identical_sets_give_zero():
    x = np.random.default_rng(0).standard_normal((200, 8)) * [1, 2, 3, 4, 5, 6, 7, 8]
    assert fvd(x, x) == pytest.approx(0, abs=1e-8)
    assert fvd(torch.from_numpy(x).float(), torch.from_numpy(x).float()) == pytest.approx(0, abs=1e-5)


def test_diagonal_and_commuting_covariances_match_the_closed_form():
    rng = np.random.default_rng(1)
    d = 6
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    closed_form = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed_form, rel=1e-10)
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]  # same eigenvectors: the covariances commute
    assert frechet_distance(mu1, q @ np.diag(s1) @ q.T, mu2, q @ np.diag(s2) @ q.T) == pytest.approx(closed_form,
                                                                                                       rel=1e-8)


def test_general_covariances_match_torchmetrics_and_are_symmetric():
    rng = np.random.default_rng(3)
    d = 10
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    sigma1, sigma2 = random_covariance(d, rng), random_covariance(d, rng)
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    reference = _compute_fid(*(torch.from_numpy(a) for a in (mu1, sigma1, mu2, sigma2)))  # eigenvalue route
    assert ours == pytest.approx(float(reference), rel=1e-9)
    assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(ours, rel=1e-9)
    x, y = rng.standard_normal((50, d)), 2 * rng.standard_normal((70, d)) + 1
    assert fvd(x, y) == pytest.approx(fvd(y, x), rel=1e-9)


def test_samples_of_shifted_unit_gaussians_give_the_squared_shift():
    rng = np.random.default_rng(4)
    n, d = 20000, 4
    mu, delta = rng.standard_normal(d), np.array([1.0, -0.5, 0.25, 0.75])
    real = rng.standard_normal((n, d)) + mu
    fake = rng.standard_normal((n, d)) + mu + delta
    assert fvd(real, fake) == pytest.approx(delta @ delta, abs=0.05)  # sampling error ≈ 2‖δ‖·sqrt(2/n) ≈ 0.03


def test_statistics_and_singular_covariances():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 5))
    mu, sigma = gaussian_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False, bias=True), rtol=1e-12)  # StyleGAN-V: divide by n
    np.testing.assert_allclose(gaussian_statistics(x, ddof=1)[1], np.cov(x, rowvar=False), rtol=1e-12)  # pytorch-fid
    few = rng.standard_normal((4, 16))  # fewer clips than dimensions: singular covariances
    value = fvd(few, rng.standard_normal((4, 16)))
    assert np.isfinite(value) and value > 0
    assert fvd(few, few) == pytest.approx(0, abs=1e-4)
    with pytest.raises(ValueError, match="n >= 2"):
        gaussian_statistics(x[:1])
    with pytest.raises(ValueError, match="feature size"):
        fvd(x, x[:, :4])


# ------------------------------------------------------------------------------------------------ extractors


class I3DStandIn(nn.Module):
    """Records what it is given, one row per clip: input dtype/shape/range, the range after its own rescale/resize
    (as the real detector does them), and the keyword arguments."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        b, c, t, h, w = x.shape
        raw = x.float()
        y = raw / 127.5 - 1 if rescale else raw
        if resize:
            y = F.interpolate(y, size=[t, 224, 224], mode="trilinear", align_corners=False)
        flags = torch.tensor([float(x.dtype == torch.uint8), float(c), float(t), float(h), float(w),
                              float(y.shape[-2]), float(y.shape[-1]), float(rescale), float(resize),
                              float(return_features)])
        return torch.cat([flags.expand(b, -1), raw.flatten(1).amin(1, keepdim=True),
                          raw.flatten(1).amax(1, keepdim=True), raw.flatten(1).mean(1, keepdim=True),
                          y.flatten(1).amin(1, keepdim=True), y.flatten(1).amax(1, keepdim=True)], dim=1)


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(I3DStandIn()), str(path))
    return path


def test_i3d_extractor_feeds_the_stylegan_v_protocol(i3d_file):
    extractor = I3DExtractor(i3d_file)
    assert isinstance(extractor, ClipFeatureExtractor) and extractor.name == "i3d_torchscript"
    assert extractor.protocol["num_frames"] == 16 and extractor.protocol["resolution"] == 224
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 20, 32, 40, generator=gen) * 0.5 + 0.25  # frames 0-15 in [0.25, 0.75]
    video[:, :, 16:] = 1.0  # frames past the 16th must not be seen
    rows = extractor(video)
    assert rows.shape == (2, 15) and rows.dtype == torch.float32
    flags = torch.tensor([1, 3, 16, 32, 40, 224, 224, 1, 1, 1], dtype=torch.float32)
    torch.testing.assert_close(rows[:, :10], flags.expand(2, -1))
    stored = to_uint8_frames(video[:, :, :16]).float().flatten(1)  # round(255 x)
    torch.testing.assert_close(rows[:, 10], stored.amin(1))
    torch.testing.assert_close(rows[:, 11], stored.amax(1))
    torch.testing.assert_close(rows[:, 12], stored.mean(1))
    assert (rows[:, 13] >= -1).all() and (rows[:, 14] <= 1).all() and (rows[:, 14] > 0).all()
    grey = video[:, :1]
    torch.testing.assert_close(extractor(grey), extractor(grey.expand(-1, 3, -1, -1, -1)))
    with pytest.raises(ValueError, match="16"):
        extractor(video[:, :, :15])


def test_i3d_extractor_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        I3DExtractor(tmp_path / "nowhere.pt")


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # the stand-in's constant columns: singular covariances
def test_compute_fvd_carries_extractor_and_protocol(i3d_file):
    extractor = I3DExtractor(i3d_file)
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.rand(6, 3, 16, 8, 8, generator=gen), torch.rand(5, 3, 16, 8, 8, generator=gen) ** 2
    result = compute_fvd(extractor, real, fake, batch_size=4)
    # Reference, independent of our extractor and fvd(): the detector called by hand on uint8 clips as StyleGAN-V
    # feeds it, then the Fréchet distance from the closed form with numpy/scipy.
    def detector_features(video):
        clips = (video * 255).round().to(torch.uint8)
        return torch.jit.load(str(i3d_file))(clips, rescale=True, resize=True, return_features=True).double().numpy()

    def closed_form(a, b):
        from scipy import linalg

        mu_a, mu_b = a.mean(0), b.mean(0)
        cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = linalg.sqrtm(cov_a @ cov_b).real
        return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))

    expected = closed_form(detector_features(real), detector_features(fake))
    assert result.value == pytest.approx(expected, rel=1e-5) and result.value > 0  # sqrtm of a singular product
    assert (result.num_real, result.num_fake, result.extractor) == (6, 5, "i3d_torchscript")
    assert result.key == "fvd[i3d_torchscript]" and result.as_dict()["protocol"]["num_frames"] == 16
    batches = [(real[:3], None), (real[3:], None)]  # (video, labels) pairs as video_set.iter_batches yields
    assert compute_fvd(extractor, batches, fake).value == pytest.approx(result.value, rel=1e-12)  # batched alike


def test_recognition_extractor_gives_the_checkpoints_features(tmp_path):
    net = make_run(tmp_path / "cls_run")
    extractor = RecognitionExtractor(tmp_path / "cls_run" / "checkpoints" / "best.ckpt")
    assert extractor.name == "timesformer:cls_run"
    assert extractor.protocol["num_frames"] == NUM_FRAMES and extractor.protocol["resolution"] == CROP
    video = torch.rand(3, 3, NUM_FRAMES, CROP, CROP, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = net.forward_features(normalise(video))
    torch.testing.assert_close(extractor(video), expected, rtol=1e-5, atol=1e-5)
    shared = RecognitionExtractor(load_recognition_model(tmp_path / "cls_run"))  # reuse a loaded classifier
    torch.testing.assert_close(shared(video), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------ feature consistency


def consistency_loop(features: torch.Tensor) -> torch.Tensor:
    """VBench's per-video loop, written plainly."""
    scores = []
    for clip in features:
        total = 0.0
        for i in range(1, clip.shape[0]):
            to_previous = max(0.0, float(F.cosine_similarity(clip[i - 1], clip[i], dim=0)))
            to_first = max(0.0, float(F.cosine_similarity(clip[0], clip[i], dim=0)))
            total += (to_previous + to_first) / 2
        scores.append(total / (clip.shape[0] - 1))
    return torch.tensor(scores)


def test_consistency_formula_matches_a_plain_loop():
    features = torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(0))  # some cosines < 0 get clamped
    torch.testing.assert_close(feature_consistency(features), consistency_loop(features))
    per_frame = feature_consistency(features, per_frame=True)
    assert per_frame.shape == (4, 6) and (per_frame >= 0).all() and (per_frame <= 1).all()
    torch.testing.assert_close(per_frame.mean(dim=1), feature_consistency(features))


def test_consistency_of_identical_frames_and_a_known_pair():
    same = torch.randn(2, 1, 8).expand(-1, 5, -1)
    torch.testing.assert_close(feature_consistency(same), torch.ones(2))
    angle = torch.tensor(0.3)
    pair = torch.tensor([[[1.0, 0.0], [float(torch.cos(angle)), float(torch.sin(angle))]]])
    torch.testing.assert_close(feature_consistency(pair), torch.cos(angle).view(1))
    opposite = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    assert float(feature_consistency(opposite)) == 0.0
    with pytest.raises(ValueError, match="t >= 2"):
        feature_consistency(torch.randn(2, 1, 8))


class MeanColourEncoder(nn.Module):
    """(n 3 H W) -> (n 4): per-channel means plus the image width, and declares a DINO-style protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.image_size = 16
        self.center_crop = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        width = torch.full_like(images[:, :1, 0, 0], float(images.shape[-1]))
        return torch.cat([images.mean(dim=(2, 3)), width], dim=1)


def test_torchscript_image_encoder_preprocesses_and_scores(tmp_path):
    path = tmp_path / "mean_colour.pt"
    torch.jit.save(torch.jit.script(MeanColourEncoder()), str(path))
    encoder = load_image_encoder(path, preset="dino")
    assert isinstance(encoder, TorchScriptImageEncoder)
    assert (encoder.image_size, encoder.center_crop) == (16, False)  # declared by the file
    assert encoder.mean == pytest.approx(IMAGENET_MEAN) and metric_name(encoder) == "feature_consistency[mean_colour]"
    clip_encoder = TorchScriptImageEncoder(path, image_size=8, center_crop=True)  # arguments beat the declaration
    assert clip_encoder.mean == pytest.approx(CLIP_MEAN) and clip_encoder.std == pytest.approx(CLIP_STD)

    video = torch.rand(2, 3, 5, 32, 48, generator=torch.Generator().manual_seed(1))
    frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)
    resized = F.interpolate(frames, size=(16, 24), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    by_hand = torch.cat([((resized - mean) / std).mean(dim=(2, 3)), torch.full((10, 1), 24.0)], dim=1)
    torch.testing.assert_close(encoder(frames), by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(encoder.frame_features(video, batch_size=4), by_hand.unflatten(0, (2, 5)),
                               rtol=1e-5, atol=1e-5)
    expected = consistency_loop(by_hand.unflatten(0, (2, 5)))
    torch.testing.assert_close(video_feature_consistency(video, encoder, batch_size=3), expected, rtol=1e-5, atol=1e-5)
    assert clip_encoder(frames)[:, 3].eq(8).all()  # centre-cropped to 8x8

    still = video[:, :, :1].expand(-1, -1, 4, -1, -1)
    torch.testing.assert_close(video_feature_consistency(still, encoder), torch.ones(2))


def test_missing_image_encoder_path_raises_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="image encoder not found: .*clip_b32.pt"):
        load_image_encoder(tmp_path / "clip_b32.pt")
