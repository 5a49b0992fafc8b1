#!/usr/bin/env bash
# Validate docker-compose.yml offline, without a Docker engine.
#
# Installs docker-compose 1.29.2 from PyPI into .tools/compose-venv (once), then runs
# `docker-compose config -q` with .env.example as the variables file. docker-compose 1.29 checks
# the file against its own schema: unknown keys, wrong types, bad depends_on conditions. That is a
# basic check, not a full Compose Specification validation.
# PyYAML 5.4, which docker-compose 1.29 pins, only builds on Python 3.11 with Cython below 3.
set -euo pipefail

project_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${project_dir}/.tools"
venv_dir="${tools_dir}/compose-venv"
python="${PYTHON:-python3}"

if [[ ! -x "${venv_dir}/bin/docker-compose" ]]; then
    echo "installing docker-compose 1.29.2 into ${venv_dir}" >&2
    mkdir -p "${tools_dir}"
    "${python}" -m venv "${venv_dir}"
    constraint="${tools_dir}/compose-build-constraints.txt"
    echo "cython<3" > "${constraint}"
    PIP_CONSTRAINT="${constraint}" "${venv_dir}/bin/pip" install --quiet "docker-compose==1.29.2"
fi

cd "${project_dir}"
"${venv_dir}/bin/docker-compose" --env-file .env.example -f docker-compose.yml config -q
echo "docker-compose.yml is valid (docker-compose 1.29.2 schema)"
