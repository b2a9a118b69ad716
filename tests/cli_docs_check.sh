#!/usr/bin/env bash
# The command-line reference matches the code: every flag that
# `remora SUBCOMMAND --help` lists is documented in docs/configuration.md, in
# the section of that subcommand (a "## ..." heading naming `remora SUBCOMMAND`),
# and every subcommand has such a section.
#
#   tests/cli_docs_check.sh REMORA_BINARY SOURCE_DIR
set -euo pipefail
remora=$1
doc=$2/docs/configuration.md
status=0

# The subcommands, from the top-level help ("SUBCOMMANDS:" then one per line).
mapfile -t subs < <("$remora" --help | awk '/^[Ss][Uu][Bb][Cc][Oo][Mm][Mm][Aa][Nn][Dd][Ss]:/ {on = 1; next} on && NF {print $1}')
if ((${#subs[@]} < 5)); then
  echo "cli_docs_check: found only ${#subs[@]} subcommands in remora --help" >&2
  exit 1
fi

for sub in "${subs[@]}"; do
  # The doc's section(s) for this subcommand.
  section=$(awk -v want="\`remora $sub\`" '
    /^## / { on = index($0, want) > 0; next }
    on' "$doc")
  if [[ -z $section ]]; then
    echo "docs/configuration.md: no section for \`remora $sub\`" >&2
    status=1
    continue
  fi
  # Long options of the subcommand (CLI11 prints "  -o,--output TEXT ...",
  # and a negated flag as "--no-x{false}"). Only the option lines' first
  # words: examples in the footer are not flags.
  mapfile -t flags < <("$remora" "$sub" --help | grep -E '^ +-' | awk '{print $1}' |
                       tr ',' '\n' | sed 's/{[^}]*}$//' | grep -E '^--[a-z]' | sort -u)
  for flag in "${flags[@]}"; do
    [[ $flag == --help ]] && continue
    if ! grep -qF -- "\`$flag" <<<"$section"; then
      echo "docs/configuration.md: \`remora $sub\` section does not document $flag" >&2
      status=1
    fi
  done
done

# Every transport the code accepts is in --transport's help.
# (The help is read whole first: grep -q would stop reading at the match,
# and under pipefail the writer's SIGPIPE would fail the check.)
for sub in run processor; do
  help=$("$remora" "$sub" --help)
  if ! grep -qF -- "shm | tcp | rdma" <<<"$help"; then
    echo "remora $sub --help: --transport does not list shm | tcp | rdma" >&2
    status=1
  fi
done
exit $status
