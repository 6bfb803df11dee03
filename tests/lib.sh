# shellcheck shell=bash
# The helpers every shell test suite shares (sourced, after `set -uo pipefail`):
#
#   source "$repo/tests/lib.sh"
#   suite [--prefix NAME] [--tail N] [--log-dir DIR]      (optional; defaults below)
#   check "what is checked" CMD...        one `ok - …` or `not ok - …` line
#   finish                                 `N passed, N failed`, exit 1 if any failed
#
# The closing line `N passed, N failed` is what tests/all counts
# (grep '^[0-9]+ passed, [0-9]+ failed').
#
#   ok WHAT               prints `ok - WHAT`, counts a pass
#   not_ok WHAT [DETAIL]  prints `not ok - WHAT` (and DETAIL's lines as `#   …`), counts a failure
#   check WHAT CMD...     runs CMD, output captured. Passed: ok. Failed: not_ok, then the last
#                         --tail lines (default 25) of its output as `#   …` on stdout.
#                         With --log-dir DIR, WHAT names a log instead: CMD's output goes to
#                         DIR/WHAT.log and the result is reported through log (stderr) as
#                         `WHAT: ok` or `WHAT: FAILED (tail of DIR/WHAT.log follows)` and the
#                         last --tail lines of the log — no `ok -` line (bindings suites).
#   log MSG...            `[PREFIX] MSG` on stderr (PREFIX from --prefix, default `test`)
#   report_count LINE     prints `# LINE` and appends LINE to the file $URUMI_COUNTS names (set by
#                         tests/all, which prints every suite's counts together at its end)
#   finish                prints `$passed passed, $failed failed`; exits 0 if none failed, else 1
#
# The counters are plain variables, `passed` and `failed`: a suite that reads a count from
# another runner (pytest, node --test) adds to them directly.

passed=0
failed=0
_lib_prefix="test"
_lib_tail=25
_lib_log_dir=

suite() { # suite [--prefix NAME] [--tail N] [--log-dir DIR]
  while [[ $# -gt 0 ]]; do
    case $1 in
      --prefix) _lib_prefix=$2 ;;
      --tail) _lib_tail=$2 ;;
      --log-dir) _lib_log_dir=$2 ;;
      *) echo "tests/lib.sh: suite: unknown option $1" >&2; return 2 ;;
    esac
    shift 2
  done
}

log() { printf '[%s] %s\n' "$_lib_prefix" "$*" >&2; }

report_count() {
  echo "# $*"
  if [[ -n ${URUMI_COUNTS:-} ]]; then echo "$*" >>"$URUMI_COUNTS"; fi
}

ok() { echo "ok - $*"; passed=$((passed + 1)); }

not_ok() { # not_ok WHAT [DETAIL]
  echo "not ok - $1"
  failed=$((failed + 1))
  if [[ $# -gt 1 && -n $2 ]]; then printf '%s\n' "$2" | sed 's/^/#   /'; fi
  return 0
}

check() { # check WHAT CMD...
  # Locals are prefixed: CMD may be a function of the suite reading its own globals (out, what).
  local _lib_what=$1 _lib_out
  shift
  if [[ -n $_lib_log_dir ]]; then
    if "$@" >"$_lib_log_dir/$_lib_what.log" 2>&1; then
      passed=$((passed + 1)); log "$_lib_what: ok"
    else
      failed=$((failed + 1)); log "$_lib_what: FAILED (tail of $_lib_log_dir/$_lib_what.log follows)"
      tail -n "$_lib_tail" "$_lib_log_dir/$_lib_what.log" >&2
    fi
    return 0
  fi
  if _lib_out=$("$@" 2>&1); then
    ok "$_lib_what"
  else
    not_ok "$_lib_what"
    printf '%s\n' "$_lib_out" | tail -n "$_lib_tail" | sed 's/^/#   /'
  fi
  return 0
}

finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit
}
