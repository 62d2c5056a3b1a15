#!/usr/bin/env bash
# Create/refresh the isolated venv that runs the real LeRobot (lerobot==0.4.4) beside us:
# scripts/bench/lerobot_peer.py runs inside it (export verification, data-loading benchmark).
#
# Why a separate venv: lerobot 0.4.4 pins versions (numpy<2.3, packaging<26, datasets 4.x, ...)
# the project venv does not want, and its plain `pip install` would pull a multi-GB CUDA torch.
# Recipe (DESIGN.md, environment notes): torch==2.13.0 (local CPU wheel) FIRST, then
# `pip install --no-deps lerobot==0.4.4`, then its dependencies by hand with fixed bounds.
# The torchvision 0.28.0 wheel is a CUDA build; lerobot_peer.py defines the two op schemas it
# registers fakes for before importing lerobot (see there).
#
# Usage: bash scripts/bench/setup_lerobot_venv.sh
# Env overrides:
#   LEROBOT_PYTHON=/path/python3.11   interpreter (default /root/.pyenv/versions/3.11.7/bin/python)
#   TORCH_WHEEL_DIR=/opt/wheels       where the CPU torch wheel lies
#   LEROBOT_FORCE=1                   reinstall even if the stamp says up to date
#   LEROBOT_SKIP_APT=1                never call apt-get (ffmpeg for torchcodec)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV_DIR="${REPO_ROOT}/.venv-lerobot"
VPY="${VENV_DIR}/bin/python"
PYTHON_BIN="${LEROBOT_PYTHON:-/root/.pyenv/versions/3.11.7/bin/python}"
TORCH_WHEEL_DIR="${TORCH_WHEEL_DIR:-/opt/wheels}"
STAMP_FILE="${VENV_DIR}/.lerobot-bench-stamp"

TORCH_SPEC="torch==2.13.0+cpu" # "+cpu": pip may only take the CPU build, never CUDA
LEROBOT_SPEC="lerobot==0.4.4"
DEPS=(
    "torchvision==0.28.0"
    "diffusers>=0.27.2,<0.36"
    "einops>=0.8,<0.9"
    "draccus==0.10.0"
    "huggingface-hub>=0.34.2,<0.36"
    "datasets>=4,<5"
    "av>=15,<16"
    "opencv-python-headless>=4.9,<4.13"
    "gymnasium>=1.1.1,<2"
    "jsonlines"
    "deepdiff>=7,<9"
    "termcolor"
    "imageio[ffmpeg]"
    "safetensors"
    "packaging<26"
    "pyserial"
    "pynput"
    "accelerate>=1.10,<2"
    "setuptools<81"
    "numpy<2.3"
    "pandas"
    "pyarrow"
    "tqdm"
    "rerun-sdk>=0.24,<0.27"
    # lerobot's default video decoder; needs a system ffmpeg (apt below). Its wheels are built
    # per torch release: 0.13.0 loads on the CPU torch 2.13.0 with Debian 12's FFmpeg 5.1; 0.14+
    # link CUDA (libnvrtc.so.13) and <=0.11 fail on torch 2.13's ABI (lerobot's own pin <0.11).
    "torchcodec==0.13.0"
    # lerobot's `async` extra (gRPC async inference, lerobot_grpc_peer.py): its generated
    # transport/services_pb2*.py come from grpcio-tools 1.73.1 / protobuf 6.31 and refuse older
    # runtimes; these are the exact pins of lerobot 0.4.4's grpcio-dep extra.
    "grpcio==1.73.1"
    "protobuf>=6.31.1,<6.32"
)
STAMP_CONTENT="v2 ${TORCH_SPEC} ${LEROBOT_SPEC} ${DEPS[*]}"

# All output goes to stderr, so `setup_lerobot_venv.sh && lerobot_peer.py ...` keeps stdout clean.
exec 1>&2
log() { echo "[setup_lerobot_venv] $*"; }
die() {
    echo "[setup_lerobot_venv] ERROR: $*"
    exit 1
}

install_ffmpeg() {
    # torchcodec (lerobot's default video backend) loads the system FFmpeg libraries.
    if command -v ffmpeg >/dev/null 2>&1; then
        log "system ffmpeg present: $(command -v ffmpeg)"
        return 0
    fi
    if [[ "${LEROBOT_SKIP_APT:-0}" == "1" || "$(id -u)" -ne 0 ]] \
        || ! command -v apt-get >/dev/null 2>&1; then
        log "WARNING: no system ffmpeg; LeRobot video decoding via torchcodec will not work"
        log "WARNING: install it with: sudo apt-get install -y ffmpeg"
        return 0
    fi
    log "installing system ffmpeg (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 ffmpeg \
        || die "apt-get install ffmpeg failed"
}

pip_venv() {
    # pip in the venv, minus the noise a machine-wide pip.conf makes about local indexes.
    local rc=0
    "${VPY}" -m pip "$@" 2>&1 \
        | { grep -v -F 'is ignored: it is neither a file nor a directory' || true; } || rc=$?
    return "${rc}"
}

main() {
    local t0=${SECONDS}
    install_ffmpeg

    if [[ "${LEROBOT_FORCE:-0}" != "1" && -x "${VPY}" && -f "${STAMP_FILE}" ]] \
        && [[ "$(cat "${STAMP_FILE}")" == "${STAMP_CONTENT}" ]]; then
        log "up to date: ${VENV_DIR}"
        return 0
    fi
    [[ -x "${PYTHON_BIN}" ]] || PYTHON_BIN="$(command -v python3.11 || true)"
    [[ -n "${PYTHON_BIN}" ]] || die "no Python 3.11 (set LEROBOT_PYTHON=/path/to/python3.11)"
    "${PYTHON_BIN}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
        || die "${PYTHON_BIN} is not Python 3.11 (lerobot 0.4.4 + the cp311 torch wheel need it)"

    if [[ ! -x "${VPY}" ]]; then
        log "creating venv ${VENV_DIR} with ${PYTHON_BIN}"
        "${PYTHON_BIN}" -m venv "${VENV_DIR}"
    else
        log "reusing existing venv ${VENV_DIR}"
    fi
    # Keep the venv out of git whatever the repository's .gitignore says.
    echo '*' >"${VENV_DIR}/.gitignore"
    rm -f "${STAMP_FILE}"

    local find_links=()
    [[ -d "${TORCH_WHEEL_DIR}" ]] && find_links=(--find-links "${TORCH_WHEEL_DIR}")
    pip_venv install -q --progress-bar off --upgrade pip
    log "1/3 ${TORCH_SPEC} first (local CPU wheel in ${TORCH_WHEEL_DIR})"
    pip_venv install -q --progress-bar off "${find_links[@]}" "${TORCH_SPEC}" \
        || die "could not install ${TORCH_SPEC} (expected a CPU wheel in ${TORCH_WHEEL_DIR})"
    log "2/3 ${LEROBOT_SPEC} without its dependencies"
    pip_venv install -q --progress-bar off --no-deps "${LEROBOT_SPEC}"
    log "3/3 its dependencies with fixed bounds"
    pip_venv install -q --progress-bar off "${find_links[@]}" "${TORCH_SPEC}" "${DEPS[@]}"

    log "checking imports"
    "${VPY}" "${REPO_ROOT}/scripts/bench/lerobot_peer.py" check \
        || die "lerobot does not import in ${VENV_DIR} (see above)"
    echo "${STAMP_CONTENT}" >"${STAMP_FILE}"
    log "done in $((SECONDS - t0)) s; venv size: $(du -sh "${VENV_DIR}" | cut -f1)"
}

main "$@"
