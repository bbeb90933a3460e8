#!/usr/bin/env bash
# Install t5lab on every worker of a TPU VM: the code (a git clone of --repo, or this
# checkout's committed HEAD), Python 3.11 in a venv, t5lab with the pinned dependencies and
# jax[tpu] (which brings libtpu).
# shellcheck source-path=SCRIPTDIR
USAGE="usage: install.sh --name=NAME --zone=ZONE [--repo=GIT_URL [--ref=BRANCH]] \
[--python=python3.11] [--project=ID] [--dry-run]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project repo ref python" "" "" "$@"
require name zone
[[ -z ${OPT[ref]:-} || -n ${OPT[repo]:-} ]] || die "--ref needs --repo"
python=${OPT[python]:-python3.11}
mapfile -t location < <(gcloud_location)

if [[ -n ${OPT[repo]:-} ]]; then
  fetch="rm -rf $REMOTE_DIR && git clone --depth=1 --branch=$(quote "${OPT[ref]:-main}") \
$(quote "${OPT[repo]}") $REMOTE_DIR"
else
  git -C "$REPO_ROOT" rev-parse --verify -q HEAD >/dev/null || die "$REPO_ROOT has no commit: pass --repo"
  archive=${TMPDIR:-/tmp}/t5lab-$$.tar.gz
  note "uploading the committed tree (git HEAD) of $REPO_ROOT"
  ((DRY_RUN)) || trap 'rm -f "$archive"' EXIT
  run git -C "$REPO_ROOT" archive --format=tar.gz -o "$archive" HEAD
  run gcloud compute tpus tpu-vm scp "$archive" "${OPT[name]}:t5lab.tar.gz" --worker=all "${location[@]}"
  fetch="rm -rf $REMOTE_DIR && mkdir -p $REMOTE_DIR && tar -xzf t5lab.tar.gz -C $REMOTE_DIR"
fi
setup="sudo apt-get update -qq && sudo apt-get install -y -qq $python $python-venv git \
&& $python -m venv $REMOTE_VENV && $REMOTE_VENV/bin/pip install -q --upgrade pip \
&& $REMOTE_VENV/bin/pip install -q -c $REMOTE_DIR/constraints.txt -e $REMOTE_DIR 'jax[tpu]' \
&& $REMOTE_VENV/bin/python -c 'import jax; print(jax.process_index(), jax.device_count())'"
run gcloud compute tpus tpu-vm ssh "${OPT[name]}" --worker=all "${location[@]}" \
  --command="$fetch && $setup"
