#!/bin/sh
# make bench-jobs: the quickstart's wall time trained one run at a time
# (--jobs 1) and JOBS runs at a time (--jobs JOBS), one thread per run, on
# this machine; and whether the two write the same CSVs (every byte of
# gradients.csv and activations.csv, every column of metrics.csv but the
# wall-clock elapsed_s). Writes results/bench-jobs/jobs.csv and jobs.md.
# Run it with nothing else on the machine: the ratio is the point.
set -eu
bin=${GRADSCOPE:-target/release/gradscope}
exp=${EXPERIMENT:-experiments/quickstart.json}
jobs=${JOBS:-2}
work=target/bench-jobs
out=results/bench-jobs
rm -rf "$work"
mkdir -p "$work" "$out"
now() { date +%s.%N; }
wall() {
    start=$(now)
    "$bin" run "$exp" --out "$work/jobs-$1" --threads 1 --jobs "$1" --no-plot 2>"$work/jobs-$1.log"
    end=$(now)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }' 
}
one=$(wall 1)
many=$(wall "$jobs")
same=0
differ=0
for f in "$work"/jobs-1/runs/*/*.csv; do
    g="$work/jobs-$jobs/${f#"$work"/jobs-1/}"
    case "$f" in
    */metrics.csv) # every column but the last, elapsed_s
        if [ "$(head -1 "$f" | awk -F, '{print $NF}')" != elapsed_s ]; then
            echo "bench-jobs: $f: metrics.csv no longer ends with elapsed_s" >&2
            exit 1
        fi
        a=$(sed 's/,[^,]*$//' "$f" | cksum)
        b=$(sed 's/,[^,]*$//' "$g" | cksum) ;;
    *) a=$(cksum <"$f"); b=$(cksum <"$g") ;;
    esac
    if [ "$a" = "$b" ]; then same=$((same + 1)); else differ=$((differ + 1)); echo "differs: $f" >&2; fi
done
runs=$(ls -d "$work"/jobs-1/runs/*/ | wc -l)
ratio=$(awk -v a="$one" -v b="$many" 'BEGIN { printf "%.2f", a / b }')
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
cores=$(getconf _NPROCESSORS_ONLN)
{
    echo "experiment,runs,cores,jobs,threads_per_run,wall_s"
    printf '%s,%s,%s,1,1,%.1f\n' "$exp" "$runs" "$cores" "$one"
    printf '%s,%s,%s,%s,1,%.1f\n' "$exp" "$runs" "$cores" "$jobs" "$many"
} >"$out/jobs.csv.tmp"
mv "$out/jobs.csv.tmp" "$out/jobs.csv"
{
    echo "# run --jobs: $exp on $cores cores ($cpu)"
    echo
    echo "| --jobs | threads per run | wall time |"
    echo "|---|---|---|"
    printf '| 1 | 1 | %.1f s |\n' "$one"
    printf '| %s | 1 | %.1f s |\n' "$jobs" "$many"
    echo
    echo "Speed-up: ${ratio}× with --jobs $jobs ($runs runs)."
    echo "CSV files identical between the two: $same of $((same + differ))."
} >"$out/jobs.md.tmp"
mv "$out/jobs.md.tmp" "$out/jobs.md"
cat "$out/jobs.md"
[ "$differ" = 0 ]
