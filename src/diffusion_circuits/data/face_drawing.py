"""Drawing one procedural face and its part-label map (the helpers of ``synthetic``).

A face is painted with Pillow on a canvas ``SCALE`` times the target size, so that the
LANCZOS downsampling anti-aliases every edge. The part-label map is painted with the
same calls (same geometry) on a second, single-channel canvas and reduced by a
plurality vote over each ``SCALE x SCALE`` block, ties going to the part painted later
(mouth > nose > eyes > face > hair > background), so a part at least one target pixel
thick always keeps at least one pixel.

Painting order, back to front (a later shape wins a pixel in both the image and the
labels): background gradient; shoulders and neck (label ``background``); hair behind
the head (long, past the chin, for women; a short cap for men); ears (men only, long
hair hides them; label ``face``); face oval; fringe (``hair``); wrinkles (old; image
only); beard or moustache (``hair``); eyes (whites and pupils, ``eyes``) and brows
(image only); glasses (image only: they are no part, the labels under them stay);
nose; mouth.

Every random number of a face is drawn by :func:`random_layout` in a fixed order,
whatever the attributes, so two attribute rows drawn with equal generators share their
layout and differ only where their attributes differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from diffusion_circuits.data.faceset import PART_LABELS

__all__ = ["SCALE", "HAIR_RGB", "FaceLayout", "random_layout", "draw_face"]

SCALE = 4  # supersampling factor of the painting canvas
# Hair colours, chosen so that their ITU-R 601 luminances (about 25, 80, 165, 210) stay
# four distinct levels: the default pipeline is greyscale.
HAIR_RGB = {
    "black": (28, 24, 22),
    "brown": (112, 72, 40),
    "blond": (205, 163, 80),
    "grey": (212, 212, 210),
}
_LIGHT_SKIN = np.array([242, 208, 178])
_DARK_SKIN = np.array([118, 78, 54])
_OLD_SKIN = np.array([190, 182, 178])  # old skin is mixed 25% toward this pale grey
_GLASSES_RGB = (22, 22, 28)
_PAINT_ORDER = ("background", "hair", "face", "eyes", "nose", "mouth")
# Plurality-vote candidates, later-painted parts first so that np.argmax breaks ties to them.
_VOTE_LABELS = np.array([PART_LABELS[part] for part in reversed(_PAINT_ORDER)], np.uint8)


@dataclass(frozen=True)
class FaceLayout:
    """Random layout of one face, in pixels of the supersampled canvas (colours in RGB)."""

    cx: float  # face centre
    cy: float
    half_w: float  # face oval half-axes
    half_h: float
    yaw: float  # horizontal offset of the features inside the oval (head turn)
    eye_dx: float  # half the distance between the eyes
    eye_y: float
    eye_r: float
    gaze: float  # pupil offset from the eye centre
    brow_gap: float  # brow height above the eye centre
    nose_w: float  # half-width of the nose base
    nose_y: float  # nose base
    mouth_y: float
    mouth_w: float  # half-width of the mouth
    fringe: float  # fringe edge above the centre, in units of half_h
    hair_volume: float  # half-width of the hair around the head, in units of half_w
    hair_length: float  # long hair's end below the centre, in units of half_h
    beard_style: int  # 0, 1: full beard and moustache; 2: moustache and goatee
    skin: np.ndarray
    background_top: np.ndarray
    background_bottom: np.ndarray
    clothing: np.ndarray


def random_layout(canvas: int, rng: np.random.Generator) -> FaceLayout:
    """Draw the layout of one face on a ``canvas`` x ``canvas`` grid (fixed draw order)."""
    half_w = canvas * rng.uniform(0.21, 0.26)
    half_h = half_w * rng.uniform(1.18, 1.34)
    cx = canvas * (0.5 + rng.uniform(-0.05, 0.05))
    cy = canvas * (0.47 + rng.uniform(-0.03, 0.03))
    eye_r = half_w * rng.uniform(0.13, 0.17)
    eye_y = cy - half_h * rng.uniform(0.08, 0.2)
    mouth_y = cy + half_h * rng.uniform(0.46, 0.56)
    level = rng.uniform(70, 185)  # muted background: a grey level plus a small tint
    top = np.clip(level + rng.uniform(-28, 28, 3), 0, 255)
    return FaceLayout(
        cx=cx,
        cy=cy,
        half_w=half_w,
        half_h=half_h,
        yaw=half_w * rng.uniform(-0.08, 0.08),
        eye_dx=half_w * rng.uniform(0.36, 0.46),
        eye_y=eye_y,
        eye_r=eye_r,
        gaze=eye_r * rng.uniform(-0.3, 0.3),
        brow_gap=eye_r * rng.uniform(1.5, 1.9),
        nose_w=half_w * rng.uniform(0.12, 0.18),
        nose_y=eye_y + (mouth_y - eye_y) * rng.uniform(0.58, 0.7),
        mouth_y=mouth_y,
        mouth_w=half_w * rng.uniform(0.3, 0.46),
        fringe=rng.uniform(0.56, 0.72),
        hair_volume=rng.uniform(1.12, 1.32),
        hair_length=rng.uniform(1.15, 1.6),
        beard_style=int(rng.integers(3)),
        skin=_LIGHT_SKIN + (_DARK_SKIN - _LIGHT_SKIN) * rng.uniform(),
        background_top=top,
        background_bottom=np.clip(top * rng.uniform(0.72, 1.12), 0, 255),
        clothing=rng.uniform(35, 210, 3),
    )


def _rgb(colour: np.ndarray | tuple[float, ...], factor: float = 1.0) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(round(c * factor), 0, 255)) for c in colour)
    return r, g, b


def _box(x: float, y: float, rx: float, ry: float) -> tuple[float, float, float, float]:
    return (x - rx, y - ry, x + rx, y + ry)


class _Pen:
    """Paints every shape on the image and, when it is a part, on the label canvas."""

    def __init__(self, image: Image.Image, labels: Image.Image) -> None:
        self.image, self.labels = ImageDraw.Draw(image), ImageDraw.Draw(labels)

    def __call__(self, shape: str, xy, fill, part: str | None = None, **kwargs) -> None:
        getattr(self.image, shape)(xy, fill=fill, **kwargs)
        if part is not None:
            label = PART_LABELS[part]
            if "outline" in kwargs:  # an outline belongs to its part
                kwargs = {**kwargs, "outline": label}
            getattr(self.labels, shape)(xy, fill=label, **kwargs)


def _gradient(canvas: int, top: np.ndarray, bottom: np.ndarray) -> Image.Image:
    weight = np.linspace(0.0, 1.0, canvas)[:, None, None]
    rows = top * (1 - weight) + bottom * weight
    return Image.fromarray(np.broadcast_to(rows, (canvas, canvas, 3)).round().astype(np.uint8))


def _hair_and_body(
    pen: _Pen, g: FaceLayout, hair, male: bool, skin: np.ndarray, canvas: int
) -> None:
    # A darker edge keeps the hair visible on a background or skin of its own luminance.
    edge = {"outline": _rgb(hair, 0.6), "width": max(1, round(canvas / 64))}
    shoulders_y = g.cy + g.half_h * 1.3
    pen(
        "ellipse",
        _box(g.cx, shoulders_y + g.half_h * 1.2, g.half_w * 2.1, g.half_h * 1.2),
        _rgb(g.clothing),
    )
    top = g.cy - g.half_h * 1.14
    if male:  # short cap whose sides end near the eyes
        pen(
            "ellipse",
            _box(g.cx, g.cy - g.half_h * 0.25, g.half_w * 1.07, g.half_h * 0.9),
            hair,
            "hair",
            **edge,
        )
    else:  # long hair, falling over the shoulders
        pen(
            "rounded_rectangle",
            (
                g.cx - g.half_w * g.hair_volume,
                top,
                g.cx + g.half_w * g.hair_volume,
                g.cy + g.half_h * g.hair_length,
            ),
            hair,
            "hair",
            radius=int(g.half_w * 0.9),
            **edge,
        )
    neck = (
        g.cx - g.half_w * 0.4,
        g.cy + g.half_h * 0.5,
        g.cx + g.half_w * 0.4,
        shoulders_y + g.half_h * 0.1,
    )
    pen("rectangle", neck, _rgb(skin, 0.82))
    if male:  # ears; long hair hides them
        for side in (-1, 1):
            ear = _box(
                g.cx + side * g.half_w * 0.97,
                g.eye_y + g.half_h * 0.12,
                g.half_w * 0.15,
                g.half_h * 0.17,
            )
            pen("ellipse", ear, _rgb(skin, 0.92), "face")


def _head(pen: _Pen, g: FaceLayout, hair, skin: np.ndarray, canvas: int) -> None:
    outline = max(1, round(canvas / 48))
    pen(
        "ellipse",
        _box(g.cx, g.cy, g.half_w, g.half_h),
        _rgb(skin),
        "face",
        outline=_rgb(skin, 0.72),
        width=outline,
    )
    # Fringe: the upper half of an ellipse whose chord is the fringe's lower edge.
    edge = g.cy - g.half_h * g.fringe
    fringe = _box(g.cx, edge, g.half_w * 1.04, edge - (g.cy - g.half_h * 1.14))
    pen("chord", fringe, hair, "hair", start=180, end=360)


def _facial_hair(pen: _Pen, g: FaceLayout, hair) -> None:
    beard = _rgb(hair, 0.68)
    mx = g.cx + g.yaw
    if g.beard_style < 2:  # full beard along the jaw, up to the cheeks
        pen(
            "chord",
            _box(g.cx, g.cy + g.half_h * 0.15, g.half_w * 0.99, g.half_h * 0.85),
            beard,
            "hair",
            start=15,
            end=165,
        )
    else:  # goatee
        pen(
            "chord",
            _box(mx, g.mouth_y, g.mouth_w * 0.9, g.half_h * 0.42),
            beard,
            "hair",
            start=0,
            end=180,
        )
    moustache = (
        mx - g.mouth_w * 1.1,
        g.mouth_y - g.half_h * 0.17,
        mx + g.mouth_w * 1.1,
        g.mouth_y - g.half_h * 0.05,
    )
    pen("rounded_rectangle", moustache, beard, "hair", radius=int(g.half_h * 0.05))


def _wrinkles(pen: _Pen, g: FaceLayout, skin: np.ndarray, canvas: int) -> None:
    colour, width = _rgb(skin, 0.66), max(1, round(canvas / 44))
    x = g.cx + g.yaw
    fringe, brow = g.cy - g.half_h * g.fringe, g.eye_y - g.brow_gap
    for k in (0.35, 0.7):  # forehead lines, between the fringe and the brows
        y = fringe + (brow - fringe) * k
        pen("line", (x - g.half_w * 0.36, y, x + g.half_w * 0.36, y), colour, width=width)
    for side in (-1, 1):  # nasolabial folds, beside the nose wing down past the mouth corner
        start = (x + side * g.nose_w * 1.5, g.nose_y)
        end = (x + side * (g.mouth_w + g.half_w * 0.08), g.mouth_y + g.half_h * 0.04)
        pen("line", (*start, *end), colour, width=width)
        under_eye = _box(x + side * g.eye_dx, g.eye_y + g.eye_r * 0.8, g.eye_r * 1.1, g.eye_r * 0.7)
        pen("arc", under_eye, colour, start=20, end=160, width=width)


def _eyes(pen: _Pen, g: FaceLayout, hair, glasses: bool, canvas: int) -> None:
    rim = max(2, round(canvas / 34))
    for side in (-1, 1):
        ex = g.cx + g.yaw + side * g.eye_dx
        pen("ellipse", _box(ex, g.eye_y, g.eye_r * 1.3, g.eye_r * 0.85), (245, 245, 242), "eyes")
        pen(
            "ellipse",
            _box(ex + g.gaze, g.eye_y, g.eye_r * 0.62, g.eye_r * 0.62),
            (30, 26, 26),
            "eyes",
        )
        brow_y = g.eye_y - g.brow_gap
        brow = (ex - g.eye_r * 1.35, brow_y + g.eye_r * 0.15, ex + g.eye_r * 1.35, brow_y)
        pen("line", brow, _rgb(hair, 0.68), width=max(1, round(canvas / 36)))
        if glasses:
            pen(
                "ellipse",
                _box(ex, g.eye_y, g.eye_r * 2.0, g.eye_r * 1.6),
                None,
                outline=_GLASSES_RGB,
                width=rim,
            )
            # Temple arm from the outer rim to the side of the face.
            outer = ex + side * g.eye_r * 2.0
            pen(
                "line",
                (outer, g.eye_y, g.cx + side * g.half_w * 0.98, g.eye_y - g.eye_r * 0.3),
                _GLASSES_RGB,
                width=rim,
            )
    if glasses:
        x = g.cx + g.yaw
        bridge = (x - g.eye_dx + g.eye_r * 2.0, g.eye_y, x + g.eye_dx - g.eye_r * 2.0, g.eye_y)
        pen("line", bridge, _GLASSES_RGB, width=rim)


def _nose_and_mouth(pen: _Pen, g: FaceLayout, skin: np.ndarray, smiling: bool) -> None:
    x = g.cx + g.yaw * 1.3  # the nose sticks out, so a head turn moves it most
    nose = [(x, g.eye_y + g.eye_r * 0.9), (x - g.nose_w, g.nose_y), (x + g.nose_w, g.nose_y)]
    pen("polygon", nose, _rgb(skin, 0.74), "nose")
    lips = _rgb(0.45 * skin + 0.55 * np.array([150, 45, 52]), 0.8)
    x = g.cx + g.yaw
    if smiling:  # open smile: lower half-ellipse with a row of teeth, corners up
        top = g.mouth_y - g.half_h * 0.07
        pen("chord", _box(x, top, g.mouth_w, g.half_h * 0.2), lips, "mouth", start=0, end=180)
        pen(
            "chord",
            _box(x, top, g.mouth_w * 0.78, g.half_h * 0.1),
            (248, 248, 244),
            start=0,
            end=180,
        )
    else:  # closed mouth: a straight band at least one target pixel thick
        half = max(SCALE * 0.55, g.half_h * 0.045)
        pen(
            "rectangle",
            (x - g.mouth_w * 0.85, g.mouth_y - half, x + g.mouth_w * 0.85, g.mouth_y + half),
            lips,
            "mouth",
        )


def _vote(labels: np.ndarray, size: int) -> np.ndarray:
    blocks = labels.reshape(size, SCALE, size, SCALE)
    counts = np.stack([(blocks == label).sum(axis=(1, 3)) for label in _VOTE_LABELS])
    return _VOTE_LABELS[counts.argmax(axis=0)]


def draw_face(
    attributes: Mapping[str, object], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one face with the given attributes.

    Parameters
    ----------
    attributes : Mapping
        ``gender``, ``age``, ``expression``, ``facial_hair``, ``glasses`` and
        ``hair_colour`` with the values of :func:`synthetic.sample_attributes`
        (an attribute-table row or a dict).
    size : int
        Side of the output in pixels.
    rng : numpy.random.Generator
        Source of the layout (position, size, skin tone, colours, jitters).

    Returns
    -------
    image : numpy.ndarray
        uint8 [size, size, 3] RGB.
    labels : numpy.ndarray
        uint8 [size, size] part labels (:data:`PART_LABELS`).

    Examples
    --------
    >>> row = {"gender": "male", "age": "old", "expression": "smiling",
    ...        "facial_hair": True, "glasses": True, "hair_colour": "grey"}
    >>> image, labels = draw_face(row, 32, np.random.default_rng(0))
    >>> image.shape, labels.shape, int(labels[16, 16]) != PART_LABELS["background"]
    ((32, 32, 3), (32, 32), True)
    """
    canvas = size * SCALE
    g = random_layout(canvas, rng)
    old = attributes["age"] == "old"
    skin = 0.75 * g.skin + 0.25 * _OLD_SKIN if old else g.skin
    hair = HAIR_RGB[str(attributes["hair_colour"])]
    image = _gradient(canvas, g.background_top, g.background_bottom)
    labels = Image.new("L", (canvas, canvas), PART_LABELS["background"])
    pen = _Pen(image, labels)
    _hair_and_body(pen, g, hair, attributes["gender"] == "male", skin, canvas)
    _head(pen, g, hair, skin, canvas)
    if old:
        _wrinkles(pen, g, skin, canvas)
    if attributes["facial_hair"]:
        _facial_hair(pen, g, hair)
    _eyes(pen, g, hair, bool(attributes["glasses"]), canvas)
    _nose_and_mouth(pen, g, skin, attributes["expression"] == "smiling")
    small = image.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.uint8), _vote(np.asarray(labels), size)
