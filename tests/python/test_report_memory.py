"""`foramen report` streams a recording: its peak memory does not grow with the
recording's length (issue 22). Recordings are generated here, in the format the recorder
writes (`crates/foramen-data/src/recording.rs`), at 60 fps with small masks."""

import struct
import subprocess

from test_hostile_inputs import peak_rss_mb

FPS = 60
MASK_W, MASK_H = 32, 24
SESSION = """format = 1
started_utc = "20261202-080000"
source = "generated"
width = 640
height = 480
fps = 60
model = "generated.onnx"
segment_s = 60
classes = ["background", "bone", "ligament", "disc"]
colors = [[0, 0, 0], [30, 60, 255], [230, 230, 0], [0, 190, 220]]
"""


def pattern(second):
    """Second `s`'s mask: (s % 4 + 1) * 100 pixels of class s % 3 + 1, the rest background."""
    n = (second % 4 + 1) * 100
    return bytes([second % 3 + 1] * n + [0] * (MASK_W * MASK_H - n))


def write_recording(root, minutes):
    """A recording of `minutes` at 60 fps: a mask every second frame, whose class pattern
    changes every second (so every second's shares are known)."""
    root.mkdir()
    (root / "session.toml").write_text(SESSION)
    frames = minutes * 60 * FPS
    with open(root / "masks.bin", "wb") as masks, open(root / "frames.csv", "w") as csv:
        csv.write("frame,pts_us,captured_at_us,segment,mask_frame,mask_age_ms,infer_ms\n")
        for i in range(frames):
            t_us = i * 1_000_000 // FPS
            mask = i - i % 2
            if i == mask:
                head = struct.pack("<4sQqQIIf", b"FMSK", i, t_us, t_us, MASK_W, MASK_H, 8.0)
                masks.write(head + pattern(t_us // 1_000_000))
            age = (i - mask) * 1000 / FPS
            csv.write(f"{i},{t_us},{t_us},{i // (60 * FPS)},{mask},{age:.1f},8.00\n")
    return frames


def test_report_memory_is_flat_in_the_recording_length(tmp_path, foramen_bin):
    peaks = {}
    for minutes in (2, 20):
        rec = tmp_path / f"rec{minutes}"
        frames = write_recording(rec, minutes)
        out = tmp_path / f"report{minutes}"
        code, peaks[minutes] = peak_rss_mb([foramen_bin, "report", rec, "--out", out])
        assert code == 0
        rows = (out / "timeline.csv").read_text().splitlines()
        assert len(rows) == 1 + minutes * 60, rows[-1]
        assert sum(int(r.split(",")[1]) for r in rows[1:]) == frames
        header = rows[0].split(",")
        for second in (0, 7, minutes * 60 - 1):
            row = dict(zip(header, rows[1 + second].split(",")))
            cls = ["bone", "ligament", "disc"][second % 3]
            share = (second % 4 + 1) * 100 / (MASK_W * MASK_H)
            assert abs(float(row[f"share_{cls}"]) - share) < 1e-6, row
            assert row["state"] == "on", row
    # Ten times longer (72,000 masks, 58 MB of masks.bin): the same memory, within the
    # per-second bins (1,200 more) and the figure's extra points.
    print(f"peak RSS: 2 min {peaks[2]:.1f} MB, 20 min {peaks[20]:.1f} MB")
    assert peaks[20] < peaks[2] + 8, peaks
    result = subprocess.run([foramen_bin, "report", tmp_path / "rec2", "--out", tmp_path / "r"], capture_output=True)
    assert b"nothing missing" in result.stdout, result.stdout
