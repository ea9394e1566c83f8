"""Rendering a report in headless Chromium: a screenshot and the DOM.

Also a tool: `python3 tests/python/browser.py REPORT.html OUT.png [--width W --height H --colors N]`
takes the screenshot (docs/report.png is made this way, quantised to N colours to stay small).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]


def find_chromium():
    chosen = os.environ.get("UNDERSPEC_CHROMIUM")
    if chosen:
        return chosen
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _flags(profile):
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--disable-extensions", "--disable-background-networking", "--mute-audio"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return flags


def run_chromium(args, timeout=90):
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("chromium not found (apt-get install chromium; or set UNDERSPEC_CHROMIUM, "
                           "or UNDERSPEC_SKIP_BROWSER_TESTS=1 to skip the browser tests)")
    with tempfile.TemporaryDirectory(prefix="underspec-chromium-") as profile:
        try:
            return subprocess.run([exe, *_flags(profile), *args], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"cannot run {exe}: {e}") from e


def screenshot(html_path, png_path, width=1200, height=3000):
    proc = run_chromium([f"--screenshot={png_path}", f"--window-size={width},{height}",
                         Path(html_path).resolve().as_uri()])
    if proc.returncode != 0 or not Path(png_path).is_file():
        raise RuntimeError(f"chromium could not take a screenshot (status {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def dump_dom(html_path):
    proc = run_chromium(["--dump-dom", "--window-size=1200,3000", Path(html_path).resolve().as_uri()])
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium could not load the page (status {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, proc.stderr


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("html")
    p.add_argument("png")
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--colors", type=int, default=0, help="quantise to this many colours (0: keep)")
    a = p.parse_args()
    screenshot(a.html, a.png, a.width, a.height)
    if a.colors:
        from PIL import Image

        img = Image.open(a.png).convert("RGB")
        img.quantize(colors=a.colors, method=Image.Quantize.FASTOCTREE).save(a.png, optimize=True)
    print(a.png, os.path.getsize(a.png), "bytes", file=sys.stderr)
