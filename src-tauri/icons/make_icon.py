#!/usr/bin/env python3
"""Draws the fleetdash app icon (a dark rounded tile with a teal map pin ring and heading
arrow) as icon-source.png, with no image library; `npx tauri icon` derives the sizes."""
import math, struct, sys, zlib

N = 1024
BG = (13, 17, 23)
TILE = (22, 30, 41)
TEAL = (45, 212, 191)
AMBER = (251, 191, 36)


def rounded_rect_alpha(x, y, r, size):
    """Coverage of a rounded square of the given size centred in the canvas."""
    m = (N - size) / 2
    cx = min(max(x, m + r), N - m - r)
    cy = min(max(y, m + r), N - m - r)
    d = math.hypot(x - cx, y - cy) - r
    return max(0.0, min(1.0, 0.5 - d))


def blend(a, b, t):
    return tuple(int(a[i] * (1 - t) + b[i] * t) for i in range(3))


def pixel(x, y):
    a = rounded_rect_alpha(x + 0.5, y + 0.5, 180, 920)
    if a == 0:
        return (0, 0, 0, 0)
    c = TILE
    # faint grid like a map
    if (x % 128) < 3 or (y % 128) < 3:
        c = blend(c, (40, 52, 68), 0.8)
    d = math.hypot(x - 512, y - 512)
    ring = max(0.0, min(1.0, 1 - abs(d - 300) / 40 + 0.5))
    if ring > 0:
        c = blend(c, TEAL, min(1.0, ring))
    # heading arrow (triangle pointing north-east)
    ang = math.radians(-45)
    ux, uy = x - 512, y - 512
    rx = ux * math.cos(ang) - uy * math.sin(ang)
    ry = ux * math.sin(ang) + uy * math.cos(ang)
    if -170 < ry < 190 and abs(rx) < (190 - ry) * 0.55:
        c = AMBER
    dot = math.hypot(x - 512, y - 512)
    if dot < 60:
        c = BG
    return c + (int(255 * a),)


def main(out):
    raw = bytearray()
    for y in range(N):
        raw.append(0)
        for x in range(N):
            raw.extend(pixel(x, y))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", N, N, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    open(out, "wb").write(png)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "icon-source.png")
