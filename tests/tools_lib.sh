# Shell helpers for the program tests (sourced by test_tools.sh and
# test_dfloat11_tools.sh): one-line failures and exit-status checks.

fail() { echo "FAIL: $*" >&2; exit 1; }
# run WANT_RC CMD...: runs CMD, stdout/stderr into out/err, checks status.
run() {
	local want=$1; shift
	set +e; "$@" >out 2>err; local rc=$?; set -e
	[ "$rc" -eq "$want" ] || fail "$* -> exit $rc, want $want; stderr: $(cat err)"
}
# one_line_err WORD: stderr is one line that names WORD.
one_line_err() {
	[ "$(wc -l <err)" -eq 1 ] || fail "expected one line on stderr, got: $(cat err)"
	grep -q "$1" err || fail "stderr does not name $1: $(cat err)"
}
