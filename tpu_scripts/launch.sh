#!/usr/bin/env bash
# Start `t5lab train` with the same gin files on every worker, in the background (nohup), so
# a dropped ssh connection does not stop it. JAX finds the other hosts of a TPU slice by
# itself. Gin files are read on the workers, relative to the installed checkout (or its
# gin/ folder); MODEL_DIR must be a gs:// path every worker can write. Anything after `--`
# goes to `t5lab train` (e.g. -- --gin.MODEL_DIR=gs://bucket/run --gin.TRAIN_STEPS=1000).
# shellcheck source-path=SCRIPTDIR
USAGE="usage: launch.sh --name=NAME --zone=ZONE --gin_file=FILE [--gin_file=FILE ...] \
[--project=ID] [--dry-run] [-- T5LAB_TRAIN_FLAGS...]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project" "" "gin_file" "$@"
require name zone
((${#REPEATED[@]})) || die "missing --gin_file ($USAGE)"
mapfile -t location < <(gcloud_location)

train=("$REMOTE_VENV/bin/t5lab" train)
for gin_file in "${REPEATED[@]}"; do
  train+=("--gin_file=$gin_file")
done
train+=("${EXTRA_ARGS[@]}" --quiet)
# The venv path keeps its ~ unquoted so the worker's shell expands it.
remote="cd $REMOTE_DIR && nohup ${train[0]} $(quote_all "${train[@]:1}") > $REMOTE_LOG 2>&1 < /dev/null &"
run gcloud compute tpus tpu-vm ssh "${OPT[name]}" --worker=all "${location[@]}" --command="$remote"
note "follow it with: logs.sh --name=${OPT[name]} --zone=${OPT[zone]}"
