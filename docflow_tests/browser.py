"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium (installed by `make setup` as root),
driven by Playwright, with the flags this sandbox needs (no GPU, no background network)."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
