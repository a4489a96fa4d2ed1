# Shared by scripts/demo and scripts/test: a local virtual environment with djust installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {  # apt_install COMMAND PACKAGE...: install PACKAGEs when COMMAND is missing
  local command="$1"; shift
  command -v "$command" >/dev/null 2>&1 && return 0
  echo "== installing $* with apt-get"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv 2>/dev/null || { apt_install false python3-venv; rm -rf .venv; "$PYTHON" -m venv .venv; }
fi
# Reinstall only when the dependency list changed.
STAMP=".venv/.djust-$1-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "== installing djust and its $1 dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$1]"
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
