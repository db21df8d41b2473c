#!/bin/sh
# usage: cli_info_counts.sh DIGCL PARAM_COUNTS_TXT
# `digcl info --model NAME` must print the exact total and trainable counts of every
# line of tests/reference/param_counts.txt, for the short name, for upstream's
# constructor name (when the line gives a registered one) and, for -skip, -skipzero.
digcl=$1
counts=$2
checked=0
failed=0
while read -r model total _ trainable ctor rest; do
    case $model in '' | '#'*) continue ;; esac
    names=$model
    [ -z "$rest" ] && [ -n "$ctor" ] && [ "$ctor" != "$model" ] && names="$names $ctor"
    case $model in *-skip) names="$names ${model}zero" ;; esac
    for name in $names; do
        checked=$((checked + 1))
        if ! out=$("$digcl" info --model "$name" 2>&1); then
            echo "FAIL $name: digcl info exited non-zero: $out"
            failed=$((failed + 1))
        elif ! printf '%s\n' "$out" | grep -q "total $total (.*), trainable $trainable ("; then
            echo "FAIL $name: expected total $total, trainable $trainable; got:"
            printf '%s\n' "$out" | grep "total"
            failed=$((failed + 1))
        fi
    done
done < "$counts"
if [ "$failed" -eq 0 ] && [ "$checked" -gt 0 ]; then
    echo "all $checked preset names match param_counts.txt"
else
    echo "$failed of $checked preset names failed"
    exit 1
fi
