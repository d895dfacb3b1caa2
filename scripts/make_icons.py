#!/usr/bin/env python3
"""Generate the status page's PWA / notification icons into static/icons/.

Usage:  python scripts/make_icons.py [--out static/icons]

Design: a green heartbeat (pulse) line on a dark slate rounded square.
Everything is drawn at 4x and downsampled with LANCZOS for clean anti-aliasing.
Outputs (all PNG):
  icon-192.png, icon-512.png    purpose "any": rounded square, transparent corners
  icon-maskable-512.png         purpose "maskable": full-bleed background, glyph inside
                                the 80% safe-zone circle so any mask shape keeps it whole
  apple-touch-icon.png          180x180, opaque RGB (iOS adds its own rounding)
  badge-96.png                  white glyph on transparent: Android uses only the alpha
  favicon-32.png                thick-stroked small variant
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SLATE = (15, 23, 42)  # #0f172a
SLATE_EDGE = (30, 41, 59)  # #1e293b (subtle inner ring)
GREEN = (34, 197, 94)  # #22c55e
WHITE = (255, 255, 255)
SS = 4  # supersampling factor

# Heartbeat polyline in a unit box (x right, y down).
PULSE = [
    (0.00, 0.55),
    (0.26, 0.55),
    (0.34, 0.40),
    (0.42, 0.55),
    (0.48, 0.55),
    (0.56, 0.10),
    (0.66, 0.92),
    (0.74, 0.55),
    (1.00, 0.55),
]


def _pulse(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    width: float,
    color,
) -> None:
    x0, y0, x1, y1 = box
    pts = [(x0 + px * (x1 - x0), y0 + py * (y1 - y0)) for px, py in PULSE]
    w = max(1, round(width))
    draw.line(pts, fill=color, width=w, joint="curve")
    r = width / 2
    for x, y in (pts[0], pts[-1]):  # round caps
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)


def _render(
    size: int,
    *,
    full_bleed: bool,
    glyph_frac: float,
    stroke_frac: float,
    radius_frac: float = 0.22,
    ring: bool = True,
    mode: str = "RGBA",
) -> Image.Image:
    S = size * SS
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if full_bleed:
        d.rectangle((0, 0, S, S), fill=SLATE + (255,))
    else:
        d.rounded_rectangle(
            (0, 0, S - 1, S - 1), radius=S * radius_frac, fill=SLATE + (255,)
        )
        if ring:
            inset = S * 0.03
            d.rounded_rectangle(
                (inset, inset, S - 1 - inset, S - 1 - inset),
                radius=S * (radius_frac - 0.02),
                outline=SLATE_EDGE + (255,),
                width=max(1, round(S * 0.012)),
            )
    g = S * glyph_frac
    off = (S - g) / 2
    _pulse(d, (off, off, off + g, off + g), S * stroke_frac, GREEN + (255,))
    out = img.resize((size, size), Image.LANCZOS)
    if mode == "RGB":
        bg = Image.new("RGB", out.size, SLATE)
        bg.paste(out, mask=out.split()[3])
        return bg
    return out


def _badge(size: int) -> Image.Image:
    S = size * SS
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    g = S * 0.84
    off = (S - g) / 2
    _pulse(d, (off, off, off + g, off + g), S * 0.11, WHITE + (255,))
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent.parent / "static" / "icons"),
    )
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)

    files = {
        "icon-192.png": _render(
            192, full_bleed=False, glyph_frac=0.64, stroke_frac=0.06
        ),
        "icon-512.png": _render(
            512, full_bleed=False, glyph_frac=0.64, stroke_frac=0.06
        ),
        # Safe zone: a circle of radius 0.4*size. The glyph box (0.5*size square) has a
        # half-diagonal of ~0.354*size, comfortably inside it.
        "icon-maskable-512.png": _render(
            512, full_bleed=True, glyph_frac=0.50, stroke_frac=0.05, mode="RGB"
        ),
        "apple-touch-icon.png": _render(
            180, full_bleed=True, glyph_frac=0.62, stroke_frac=0.06, mode="RGB"
        ),
        "badge-96.png": _badge(96),
        "favicon-32.png": _render(
            32,
            full_bleed=False,
            glyph_frac=0.80,
            stroke_frac=0.11,
            radius_frac=0.2,
            ring=False,
        ),
    }
    for name, im in files.items():
        im.save(out / name, optimize=True)
        print(f"{out / name}  {im.size[0]}x{im.size[1]} {im.mode}")


if __name__ == "__main__":
    main()
