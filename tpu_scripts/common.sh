# Shared by every tpu_scripts/*.sh (sourced, not run): flag parsing, checks, dry runs.
#
# A script sets USAGE, then calls
#   parse_flags "valued flags" "boolean flags" "repeatable flags" "$@"
# Flags are --flag=VALUE or --flag VALUE; values land in OPT[flag], booleans in OPT[flag]=1,
# the values of the (one) repeatable flag in the array REPEATED, and whatever follows `--` in
# EXTRA_ARGS. --dry-run (every script) prints the commands instead of running them.
# shellcheck shell=bash disable=SC2034  # (variables here are for the scripts sourcing it)

set -euo pipefail

SCRIPT=$(basename "$0")
TPU_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$TPU_SCRIPTS_DIR")
DRY_RUN=0
declare -A OPT=()
EXTRA_ARGS=()
REPEATED=()

die() {
  echo "$SCRIPT: error: $*" >&2
  exit 2
}

note() {
  echo "$SCRIPT: $*" >&2
}

_has_word() {  # _has_word "a b c" b
  [[ " $1 " == *" $2 "* ]]
}

parse_flags() {
  local valued=$1 booleans=$2 repeatable=$3 arg name value
  shift 3
  while (($#)); do
    arg=$1
    shift
    case $arg in
      --dry-run) DRY_RUN=1 ;;
      -h | --help)
        echo "$USAGE"
        exit 0
        ;;
      --)
        EXTRA_ARGS=("$@")
        break
        ;;
      --*)
        name=${arg#--}
        name=${name%%=*}
        if _has_word "$booleans" "$name"; then
          [[ $arg != *=* ]] || die "--$name takes no value"
          OPT[$name]=1
          continue
        fi
        _has_word "$valued $repeatable" "$name" || die "unknown flag --$name ($USAGE)"
        if [[ $arg == *=* ]]; then
          value=${arg#*=}
        else
          [[ $# -gt 0 && $1 != --* ]] || die "--$name needs a value"
          value=$1
          shift
        fi
        [[ -n $value ]] || die "--$name needs a value"
        if _has_word "$repeatable" "$name"; then
          REPEATED+=("$value")
        else
          OPT[$name]=$value
        fi
        ;;
      *) die "unexpected argument '$arg' ($USAGE)" ;;
    esac
  done
}

require() {  # require name zone ...: fail early, naming the first missing flag
  local name
  for name in "$@"; do
    [[ -n ${OPT[$name]:-} ]] || die "missing --$name ($USAGE)"
  done
}

quote() {  # one argument as the shell would need it typed (--flag='value' for flags)
  if [[ $1 =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  elif [[ $1 =~ ^(--[A-Za-z0-9_.-]+=)(.*)$ ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
    quote "${BASH_REMATCH[2]}"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

quote_all() {
  local arg sep=""
  for arg in "$@"; do
    printf '%s' "$sep"
    quote "$arg"
    sep=" "
  done
}

run() {  # run CMD ARGS...: or print it, one line, with --dry-run
  if ((DRY_RUN)); then
    quote_all "$@"
    echo
    return 0
  fi
  if [[ $1 == gcloud ]] && ! command -v gcloud >/dev/null; then
    die "gcloud not found: install the Google Cloud CLI (cloud.google.com/sdk)"
  fi
  "$@"
}

gcloud_location() {  # the --zone and (optional) --project flags every gcloud call gets
  printf '%s\n' "--zone=${OPT[zone]}"
  if [[ -n ${OPT[project]:-} ]]; then
    printf '%s\n' "--project=${OPT[project]}"
  fi
}

# Where t5lab lives on every worker (install.sh puts it there, launch.sh runs it from there);
# the ~ expands on the worker.
# shellcheck disable=SC2088
REMOTE_DIR='~/t5lab'
# shellcheck disable=SC2088
REMOTE_VENV='~/t5lab-venv'
# shellcheck disable=SC2088
REMOTE_LOG='~/t5lab-train.log'
