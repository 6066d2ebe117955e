#!/usr/bin/env bash
# Create .venv in the repository and install the toolkit into it.
#   bash scripts/setup.sh          the toolkit
#   bash scripts/setup.sh --test   the toolkit and the test tools
# PyTorch is installed first, pinned to the CPU wheel (torch==2.13.0), so that nothing later
# pulls the multi-GB CUDA build. On a GPU machine, install the torch build you want into
# .venv before running this script: a torch that satisfies the requirement is kept.
# The audio path renders MIDI with FluidSynth: when its library or a General MIDI sound font is
# missing and this runs as root on Debian/Ubuntu, they are installed with apt-get (6 MB);
# elsewhere the script says what to install (SKIP_SYSTEM=1 skips this step).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi

# (not grep -q: under pipefail its early exit makes ldconfig fail with SIGPIPE)
have_fluidsynth() { ldconfig -p 2>/dev/null | grep "libfluidsynth\.so" >/dev/null; }
have_soundfont() {
  [ -n "${GENRE_SOUNDFONT:-}" ] && return 0
  for f in /usr/share/sounds/sf2/*.sf2 /usr/share/sounds/sf3/*.sf3 /usr/share/soundfonts/*.sf2; do [ -f "$f" ] && return 0; done
  return 1
}
if [ -z "${SKIP_SYSTEM:-}" ] && ! { have_fluidsynth && have_soundfont; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing FluidSynth and a General MIDI sound font (apt-get install libfluidsynth3 timgm6mb-soundfont)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libfluidsynth3 timgm6mb-soundfont >/dev/null
  else
    echo "note: FluidSynth or a General MIDI sound font is missing; \`genre render\` and the audio tests that render need them:" >&2
    echo "      Debian/Ubuntu: sudo apt-get install libfluidsynth3 timgm6mb-soundfont   macOS: brew install fluid-synth" >&2
  fi
fi

# The browser test (tests/test_report.py) opens a listening report in headless Chromium: with
# --test, as root on Debian/Ubuntu, Chromium and its WebDriver are installed when missing (apt-get,
# ~120 MB download, ~380 MB installed); elsewhere the test is skipped and says why.
if [ -n "$extras" ] && [ -z "${SKIP_SYSTEM:-}" ] && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the browser test (apt-get install chromium chromium-driver)"
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null; } || echo "note: Chromium could not be installed; the browser test will be skipped" >&2
  else
    echo "note: the browser test needs Chromium and chromedriver (Debian/Ubuntu: sudo apt-get install chromium chromium-driver)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# (this workplace's pip config names local mirrors that may be absent: drop those warnings only)
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu picks PyTorch's CPU wheels on machines
  # whose pip would otherwise fetch the CUDA build
  pip install "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
pip install -e ".${extras}"
.venv/bin/python -c "import torch, symusic, h5py; from cli.main import main" \
  || { echo "setup failed: the toolkit does not import (see the pip output above)" >&2; exit 1; }
echo "installed: $(.venv/bin/genre --version) with torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') in .venv"
