# Renders the benchmark chart from fiberjob_bench --plot-data (scripts/bench.sh):
#   gnuplot -e "infile='bench/results/latest.dat'; outfile='docs/images/benchmarks.png'" bench/plot.gp
# One group per workload, one bar per peer: fiberjob's cost (time per unit of work) divided by
# the peer's, on a log scale. Below the dashed line at 1, fiberjob is faster.
if (!exists("infile")) infile = "bench/results/latest.dat"
if (!exists("outfile")) outfile = "docs/images/benchmarks.png"
if (!exists("subtitle")) subtitle = ""

set terminal pngcairo size 1100,600 font "sans,11"
set output outfile
set datafile separator "\t"
set datafile missing "-"
set key top left
set title "fiberjob vs peers (2 workers; median)\n{/*0.8 ".subtitle."}"
set ylabel "fiberjob cost ÷ peer cost (log scale; < 1: fiberjob faster)"
set logscale y
set yrange [0.001:20]
set grid ytics
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics nomirror noenhanced
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 linewidth 2
plot for [i=2:5] infile using i:xtic(1) title columnheader(i)
