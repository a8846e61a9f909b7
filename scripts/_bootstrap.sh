# Sourced by scripts/serve and scripts/test: make sure uv exists, then install the locked environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UV_VERSION="0.13.9"
if command -v uv >/dev/null 2>&1; then
  UV=uv
else
  if [ ! -x .tools/bin/uv ]; then
    python3 -m venv .tools
    .tools/bin/pip install --quiet "uv==${UV_VERSION}"
  fi
  UV="$PWD/.tools/bin/uv"
fi
export UV
"$UV" sync --frozen --quiet
