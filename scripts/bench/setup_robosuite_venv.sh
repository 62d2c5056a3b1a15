#!/usr/bin/env bash
# Create/refresh the isolated venv used by scripts/bench/robosuite_lift.py.
#
# robosuite 1.5.2 needs an older MuJoCo (3.3.7) than the main project venv, so it
# lives in its own venv at <repo>/.venv-robosuite (must stay git-ignored).
#
# Usage: bash scripts/bench/setup_robosuite_venv.sh
# Env overrides:
#   ROBOSUITE_PYTHON  interpreter used to create the venv (default: python3)
#   ROBOSUITE_FORCE=1 reinstall even if the stamp file says it is up to date
#   ROBOSUITE_SKIP_APT=1 never call apt-get
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV_DIR="${REPO_ROOT}/.venv-robosuite"
PYTHON_BIN="${ROBOSUITE_PYTHON:-python3}"
STAMP_FILE="${VENV_DIR}/.robosuite-bench-stamp"

# robosuite 1.5.2 only asks for mujoco>=3.3.0; an unpinned install pulls a MuJoCo
# major version it was never tested with, so pin the version it was released against.
PIP_SPECS=("robosuite==1.5.2" "mujoco==3.3.7")
# Stamp content: change PIP_SPECS (or this version tag) to force a reinstall.
STAMP_CONTENT="v1 ${PIP_SPECS[*]}"

# System libraries for headless rendering: EGL (Mesa, software or GPU) and OSMesa fallback.
GL_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)

# All output (ours, pip's, apt's) goes to stderr so that
# `setup_robosuite_venv.sh && robosuite_lift.py` leaves only the benchmark JSON on stdout.
exec 1>&2

log() { echo "[setup_robosuite_venv] $*"; }

install_gl_packages() {
    if [[ "${ROBOSUITE_SKIP_APT:-0}" == "1" ]]; then
        log "ROBOSUITE_SKIP_APT=1: not checking system GL packages"
        return 0
    fi
    if ! command -v dpkg >/dev/null 2>&1; then
        log "dpkg not found: skipping system GL package check (non-Debian system?)"
        return 0
    fi
    local missing=()
    local pkg
    for pkg in "${GL_PACKAGES[@]}"; do
        if ! dpkg -s "${pkg}" >/dev/null 2>&1; then
            missing+=("${pkg}")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "system GL packages present: ${GL_PACKAGES[*]}"
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "WARNING: missing system packages (${missing[*]}); not root or no apt-get."
        log "WARNING: install them manually, headless rendering may fail otherwise."
        return 0
    fi
    log "installing missing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"
}

main() {
    local t0=${SECONDS}
    install_gl_packages

    if [[ "${ROBOSUITE_FORCE:-0}" != "1" && -x "${VENV_DIR}/bin/python" && -f "${STAMP_FILE}" ]] \
        && [[ "$(cat "${STAMP_FILE}")" == "${STAMP_CONTENT}" ]]; then
        log "up to date: ${VENV_DIR} (${STAMP_CONTENT})"
        return 0
    fi

    if [[ ! -x "${VENV_DIR}/bin/python" ]]; then
        log "creating venv ${VENV_DIR} with $(command -v "${PYTHON_BIN}")"
        "${PYTHON_BIN}" -m venv "${VENV_DIR}"
    else
        log "reusing existing venv ${VENV_DIR}"
    fi
    rm -f "${STAMP_FILE}"

    log "installing ${PIP_SPECS[*]}"
    "${VENV_DIR}/bin/python" -m pip install --quiet --upgrade pip
    "${VENV_DIR}/bin/python" -m pip install --quiet "${PIP_SPECS[@]}"

    log "checking imports"
    # Import check only (no GL context is created; robosuite_lift.py picks MUJOCO_GL at runtime).
    "${VENV_DIR}/bin/python" - <<'EOF'
import mujoco
import robosuite

print(f"[setup_robosuite_venv] robosuite {robosuite.__version__}, mujoco {mujoco.__version__}")
EOF

    echo "${STAMP_CONTENT}" >"${STAMP_FILE}"
    log "done in $((SECONDS - t0)) s; venv size: $(du -sh "${VENV_DIR}" | cut -f1)"
}

main "$@"
